"""Reading JSON that a person, another program or a crash may have damaged.

Every file the app reads as JSON (specs, comparisons, a run's summary and metrics) comes
through here, so each failure is one `JSONFileError` line whatever the damage: a file too
large, not UTF-8 (a UTF-8 byte-order mark is accepted, as the CSV reader does), not JSON,
nested deeper than any document of ours, a number too long or too large to read, or (where
the document has no use for them) NaN and Infinity, which JSON itself does not allow.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

MAX_DEPTH = 32  # a spec nests five deep; nothing of ours needs more
MAX_LINE = 1 << 20  # bytes of one line of a JSON-lines log


class JSONFileError(ValueError):
    """A JSON document that cannot be read; the message says why in one line."""


def _depth_ok(value: Any, max_depth: int) -> bool:
    """Whether lists and objects nest at most `max_depth` deep (without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return True


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    if not _depth_ok(value, max_depth):
        raise JSONFileError(f"nested more than {max_depth} levels deep")


def _refuse_constant(name: str) -> float:
    raise JSONFileError(f"holds {name}, which is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONFileError(f"holds the number {text[:40]}, too large to represent")
    return value


def parse_json(data: bytes | str, *, allow_nan: bool = False,
               max_depth: int = MAX_DEPTH) -> Any:
    """The document in `data`; JSONFileError naming what is wrong with it."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise JSONFileError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                                f"{exc.start:,})") from None
    else:
        text = data.removeprefix("\ufeff")
    hooks: dict[str, Any] = {} if allow_nan else {"parse_constant": _refuse_constant,
                                                  "parse_float": _finite_float}
    try:
        value = json.loads(text, **hooks)
    except JSONFileError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONFileError(f"not valid JSON (line {exc.lineno}, column {exc.colno}): "
                            f"{exc.msg}") from None
    except RecursionError:
        raise JSONFileError(f"nested more than {max_depth} levels deep") from None
    except ValueError as exc:  # an integer past Python's digit limit
        raise JSONFileError(f"holds a number too long to read ({str(exc).split(';')[0]})") \
            from None
    check_depth(value, max_depth)
    return value


def _regular_file(path: Path) -> os.stat_result:
    """Stat `path`, refusing what is not a plain file (a folder, a pipe that never ends)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise JSONFileError(f"cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise JSONFileError("not a plain file")
    return info


def read_json(path: str | Path, *, max_bytes: int, allow_nan: bool = False) -> Any:
    """Parse the JSON file at `path`, refusing one larger than `max_bytes`."""
    path = Path(path)
    size = _regular_file(path).st_size
    if size > max_bytes:
        raise JSONFileError(f"too large: {size:,} bytes, more than the {max_bytes:,} allowed")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise JSONFileError(f"cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise JSONFileError(f"too large: more than the {max_bytes:,} bytes allowed")
    return parse_json(data, allow_nan=allow_nan)


def read_json_lines(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a log, one a line; a line that is torn, undecodable, overlong or
    not an object (a crash mid-write, a damaged disk) is skipped. NaN is kept: a diverged
    loss is logged as NaN. JSONFileError when the file itself cannot be read."""
    records: list[dict[str, Any]] = []
    _regular_file(Path(path))
    try:
        with open(path, "rb") as f:
            while line := f.readline(MAX_LINE):
                if len(line) == MAX_LINE and not line.endswith(b"\n"):
                    while (rest := f.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                        pass
                    continue
                try:
                    record = parse_json(line, allow_nan=True)
                except JSONFileError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError as exc:
        raise JSONFileError(f"cannot read ({exc.strerror or exc})") from None
    return records


__all__ = ["MAX_DEPTH", "JSONFileError", "check_depth", "parse_json", "read_json",
           "read_json_lines"]
