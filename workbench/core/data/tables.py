"""CSV tables: a header row, numeric feature columns and one label column.

The label column is `label_column` or the last one. Labels that are text, or whole numbers,
or few distinct values are classes (named by their sorted values); numbers with more than
20 distinct values, not all whole, make a regression target. CSVs in this app are small, so
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
class Table:
    features: np.ndarray  # float32 (N, F)
    labels: np.ndarray  # int64 (N,) class indices, or float32 (N, 1) for regression
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]  # () for regression


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


def read_csv(path: str | Path, label_column: str | None = None) -> Table:
    """Read and check a CSV; every error names the file, the row (file line) and the column."""
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
    labels, class_names = _labels(label_text, path, header[label_at])
    if not class_names:
        big = int(np.argmax(np.abs(labels[:, 0])))
        if abs(float(_number(label_text[big]) or 0.0)) > MAX_TARGET:
            raise _too_large(path, body[big][0], header[label_at], label_text[big], MAX_TARGET)
    return Table(features, labels, tuple(header[j] for j in feature_at), class_names)


def _labels(text: list[str], path: Path, column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    numbers = [_number(t) for t in text]
    if all(v is not None for v in numbers):
        values = np.array(numbers, dtype=np.float64)
        distinct = np.unique(values)
        if len(distinct) > MAX_CLASS_VALUES and not all(v.is_integer() for v in distinct):
            return values.astype(np.float32).reshape(-1, 1), ()
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
        raise DataError(f"{path}: column {column!r} holds {len(names):,} different labels; "
                        f"at most {MAX_CLASSES:,} classes are allowed (is it the label column?)")
    return index.astype(np.int64), names
