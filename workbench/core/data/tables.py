"""CSV tables: a header row, numeric feature columns and one label column.

The label column is `label_column` or the last one. It is read as the spec's `data.target`
says: a quantity (a regression target), categories (classes, named by their sorted values),
or, for "auto", as `guess_target` guesses from its values: text, or few distinct values
(at most 20), are categories; numbers with more distinct values than that (214 whole-number
disease scores, or a column of measurements) are a quantity. CSVs in this app are small, so
the whole file is read even to describe it.
"""

from __future__ import annotations

import csv
import math
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.core.data.errors import DataError

MAX_CLASS_VALUES = 20
MAX_CLASSES = 1_000
# Features are stored as float32 and normalized; targets are squared by the loss. Values past
# these overflow float32 on the way (1e300 became inf, then a NaN loss): refused instead.
MAX_FEATURE = 1e30
MAX_TARGET = 1e15
MAX_BYTES = 512 << 20  # CSVs here are read whole into memory


@dataclass(frozen=True)
class TargetReading:
    """How a CSV's label column is read, and why: what the Data tab shows beside its choice.

    `kind` is the reading in use ("quantity" or "category"), `guess` what "auto" would pick
    and `reason` why, in a sentence; `declared` is the spec's `data.target`. `numeric` says
    whether every label is a number (only then can it be a quantity), `distinct` how many
    different labels there are."""

    column: str
    declared: str
    kind: str
    guess: str
    reason: str
    distinct: int
    numeric: bool


@dataclass(frozen=True)
class Table:
    features: np.ndarray  # float32 (N, F)
    labels: np.ndarray  # int64 (N,) class indices, or float32 (N, 1) for regression
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]  # () for regression
    target: TargetReading | None = None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _too_large(path: Path, line: int, column: str, text: str, limit: float) -> DataError:
    return DataError(f"{path}: row {line}, column {column!r}: {text.strip()[:40]!r} is too "
                     f"large (beyond ±{limit:g}); rescale the column")


def _class_name(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _span(values: np.ndarray) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:.6g} to {hi:.6g}"


def guess_target(labels: list[str]) -> tuple[str, str]:
    """("quantity" or "category", why) for a label column's texts, as "auto" reads it.

    Text is categories. Numbers with at most MAX_CLASS_VALUES distinct values are
    categories (digits, ratings, 0/1); with more, they are a quantity, whole numbers
    (`151`, also written `151.0`) as much as decimals: few datasets have more than 20 classes
    named by numbers, and many measure something in whole units."""
    numbers = [_number(t) for t in labels]
    if not all(v is not None for v in numbers):
        text = next(t for t, v in zip(labels, numbers, strict=True) if v is None)
        return "category", (f"it holds text ({text[:40]!r}), so its values are categories; "
                            "a quantity must be numbers")
    values = np.unique(np.array(numbers, dtype=np.float64))
    whole = all(float(v).is_integer() for v in values)
    kind = "whole numbers" if whole else "numbers"
    if len(values) <= MAX_CLASS_VALUES:
        return "category", (f"{len(values)} distinct {kind} ({_span(values)}): few enough to "
                            "be categories; declare a quantity if they measure something")
    return "quantity", (f"{len(values):,} distinct {kind} ({_span(values)}): more than "
                        f"{MAX_CLASS_VALUES} values, read as a quantity to predict; declare "
                        "categories if each value is a class")


def read_csv(path: str | Path, label_column: str | None = None,
             target: str = "auto") -> Table:
    """Read and check a CSV; every error names the file, the row (file line) and the column.
    `target` is the spec's `data.target`: "auto", "quantity" or "category"."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(info.st_mode):  # a folder, or a device or pipe that never ends
        raise DataError(f"{path}: not a plain file")
    size = info.st_size
    if size > MAX_BYTES:
        raise DataError(f"{path}: is {size:,} bytes; CSV files up to {MAX_BYTES:,} bytes are "
                        f"read")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [(i, row) for i, row in enumerate(csv.reader(f), start=1)
                    if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV file ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not rows:
        raise DataError(f"{path}: the file is empty (a header row is needed)")
    header = [name.strip() for name in rows[0][1]]
    if len(header) < 2:
        raise DataError(f"{path}: needs at least one feature column and a label column")
    if label_column is None:
        label_at = len(header) - 1
    elif label_column in header:
        label_at = header.index(label_column)
    else:
        raise DataError(f"data.label_column: {label_column!r} is not a column of {path.name} "
                        f"(columns: {', '.join(header)})")
    body = rows[1:]
    if not body:
        raise DataError(f"{path}: has a header but no data rows")
    feature_at = [j for j in range(len(header)) if j != label_at]
    features = np.empty((len(body), len(feature_at)), dtype=np.float32)
    label_text: list[str] = []
    for r, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{path}: row {line} has {len(row)} cells, the header has "
                            f"{len(header)}")
        for c, j in enumerate(feature_at):
            value = _number(row[j].strip())
            if value is None:
                raise DataError(f"{path}: row {line}, column {header[j]!r}: "
                                f"{row[j].strip()[:40]!r} is not a number")
            if abs(value) > MAX_FEATURE:
                raise _too_large(path, line, header[j], row[j], MAX_FEATURE)
            features[r, c] = value
        label = row[label_at].strip()
        if not label:
            raise DataError(f"{path}: row {line}, column {header[label_at]!r}: the label is "
                            f"empty")
        label_text.append(label)
    column = header[label_at]
    guess, reason = guess_target(label_text)
    kind = guess if target == "auto" else target
    numbers = [_number(t) for t in label_text]
    numeric = all(v is not None for v in numbers)
    reading = TargetReading(column, target, kind, guess, reason, len(set(
        numbers if numeric else label_text)), numeric)
    if kind == "quantity":
        if not numeric:
            line, text = next((body[r][0], t) for r, t in enumerate(label_text)
                              if numbers[r] is None)
            raise DataError(f"{path}: row {line}, column {column!r}: {text[:40]!r} is not a "
                            "number, and data.target reads the column as a quantity; set "
                            "data.target to category (or auto)")
        labels = np.array(numbers, dtype=np.float32).reshape(-1, 1)
        big = int(np.argmax(np.abs(labels[:, 0])))
        if abs(float(numbers[big] or 0.0)) > MAX_TARGET:
            raise _too_large(path, body[big][0], column, label_text[big], MAX_TARGET)
        return Table(features, labels, tuple(header[j] for j in feature_at), (), reading)
    labels, class_names = _labels(label_text, path, column, numeric)
    return Table(features, labels, tuple(header[j] for j in feature_at), class_names, reading)


def _labels(text: list[str], path: Path, column: str,
            numeric: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices and class names (sorted: numbers by value, text alphabetically)."""
    if numeric:
        values = np.array([_number(t) for t in text], dtype=np.float64)
        distinct = np.unique(values)
        index = np.searchsorted(distinct, values)
        names = tuple(_class_name(float(v)) for v in distinct)
    else:
        names = tuple(sorted(set(text)))
        lookup = {name: k for k, name in enumerate(names)}
        index = np.array([lookup[t] for t in text])
    if len(names) < 2:
        raise DataError(f"{path}: column {column!r} holds only one class ({names[0][:40]!r}); "
                        f"a classifier needs at least two")
    if len(names) > MAX_CLASSES:
        other = "; set data.target to quantity to predict it as a number" if numeric else ""
        raise DataError(f"{path}: column {column!r} holds {len(names):,} different labels; "
                        f"at most {MAX_CLASSES:,} classes are allowed (is it the label "
                        f"column?){other}")
    return index.astype(np.int64), names
