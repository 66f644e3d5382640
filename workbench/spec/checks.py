"""The spec's one error type and the value checks every part of the spec shares.

Kept apart from the document so the catalogues (`layers`, `datasets`) can use them without
importing the document that reads them.
"""

from __future__ import annotations

import math
from typing import Any


class SpecError(ValueError):
    """A spec that cannot run; the message starts with the field's path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_number(path: str, v: Any, *, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False) -> None:
    if not _is_number(v):
        raise SpecError(path, f"must be a number, got {v!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise SpecError(path, f"must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise SpecError(path, f"must be {'<' if hi_open else '<='} {hi}, got {v!r}")


def check_int(path: str, v: Any, *, lo: int | None = None, what: str = "an integer") -> None:
    if not _is_int(v) or (lo is not None and v < lo):
        raise SpecError(path, f"must be {what}, got {v!r}")


def check_choice(path: str, v: Any, choices: tuple[str, ...]) -> None:
    if v not in choices:
        raise SpecError(path, f"must be one of {', '.join(choices)}, got {v!r}")
