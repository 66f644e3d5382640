"""The spec's one error type and the value checks every part of the spec shares.

Kept apart from the document so the catalogues (`layers`, `datasets`) can use them without
importing the document that reads them. Every number a spec holds has a `Bound`: the
validator refuses what lies outside it, and the app's editors take their ranges from it, so
the app cannot produce a spec the validator refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class SpecError(ValueError):
    """A spec that cannot run; the message starts with the field's path, then, for a layer,
    the layer as a person sees it: `model.layers[5].out, layer 6 (Linear): must be ...`."""

    def __init__(self, path: str, reason: str, where: str | None = None) -> None:
        place = f"{path}, {where}" if path and where else path or where or ""
        super().__init__(f"{place}: {reason}" if place else reason)
        self.path = path
        self.reason = reason
        self.where = where


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    """A real number; ints of any size count (comparing them with a bound needs no float)."""
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def show(v: Any, limit: int = 40) -> str:
    """`repr` of a value for a one-line message, cut short when it is long (a 400-digit int)."""
    if _is_int(v) and abs(v) >= 10**limit:
        return f"a {len(str(abs(v)))}-digit integer"
    text = repr(v)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def key_name(key: str) -> str:
    """A document's key as part of a field path: as it is when it reads like a name, else
    quoted and cut short (an empty key, a key of a thousand characters)."""
    return key if key.isidentifier() and len(key) <= 40 else show(key)


def fmt(x: float) -> str:
    """A bound as people write it: 100,000 and 0.9 and 1e-08."""
    if float(x).is_integer() and abs(x) < 1e12:
        return f"{int(x):,}"
    return f"{x:g}"


@dataclass(frozen=True)
class Bound:
    """The values a number may take: from `lo` to `hi`, both included; whole numbers or not."""

    lo: float
    hi: float
    integer: bool = False

    def text(self) -> str:
        """`a whole number from 1 to 100,000`, `a number from 1e-12 to 1,000,000`."""
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} from {fmt(self.lo)} to {fmt(self.hi)}"

    def contains(self, v: Any) -> bool:
        if not (_is_int(v) if self.integer else _is_number(v)):
            return False
        return bool(self.lo <= v <= self.hi)

    def check(self, path: str, v: Any) -> None:
        if not self.contains(v):
            raise SpecError(path, f"must be {self.text()}, got {show(v)}")


def check_number(path: str, v: Any, *, lo: float, hi: float) -> None:
    Bound(lo, hi).check(path, v)


def check_int(path: str, v: Any, *, lo: int, hi: int) -> None:
    Bound(lo, hi, integer=True).check(path, v)


def check_choice(path: str, v: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(v, str) or v not in choices:
        raise SpecError(path, f"must be one of {', '.join(choices)}, got {show(v)}")


def check_text(path: str, v: Any, *, max_length: int, optional: bool = False) -> None:
    """Text of at most `max_length` characters, without NUL (no file name may hold one)."""
    if v is None and optional:
        return
    if not isinstance(v, str):
        raise SpecError(path, f"must be text{' or null' if optional else ''}, got {show(v)}")
    if len(v) > max_length:
        raise SpecError(path, f"must be at most {max_length:,} characters, got {len(v):,}")
    if "\0" in v:
        raise SpecError(path, "must not contain a NUL character")
