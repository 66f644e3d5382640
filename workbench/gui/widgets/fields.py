"""Small shared widgets: spin boxes whose ranges are the spec's bounds.

Every editor of a spec number takes its range from `spec.BOUNDS` (layer parameters from their
`ParamDef`), so the app cannot produce a value the validator refuses, and a spec it opens
(validated against the same bounds) is never clamped by a widget.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDoubleSpinBox,
    QSpinBox,
)

from workbench.spec import BOUNDS, Bound


class SciSpinBox(QDoubleSpinBox):
    """A float that spans decades (learning rates, eps): shown as 0.001 or 1e-08, stepped
    through 1-2-5 per decade."""

    def __init__(self, lo: float = 0.0, hi: float = 1e6, parent: Any = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(lo, hi)
        self.setKeyboardTracking(False)
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToPreviousValue)

    @classmethod
    def for_field(cls, path: str) -> SciSpinBox:
        """A rate-like spec field (`optim.lr`), its range the field's bound."""
        bound = BOUNDS[path]
        _check_decimals(bound, 12)
        return cls(bound.lo, bound.hi)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        stripped = text.strip()
        try:
            v = float(stripped)
        except ValueError:
            ok = all(c in "0123456789.eE-+" for c in stripped)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        value = self.value()
        for _ in range(abs(steps)):
            value = _next_125(value, up=steps > 0)
        self.setValue(min(max(value, self.minimum()), self.maximum()))


def _next_125(value: float, up: bool) -> float:
    if value <= 0:
        return 1e-6 if up else 0.0
    exp = math.floor(math.log10(value))
    candidates = [m * 10.0 ** e for e in (exp - 1, exp, exp + 1) for m in (1, 2, 5)]
    if up:
        return min(c for c in candidates if c > value * (1 + 1e-9))
    return max(c for c in candidates if c < value * (1 - 1e-9))


def int_spin(lo: int, hi: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setKeyboardTracking(False)
    box.setGroupSeparatorShown(True)
    return box


def float_spin(lo: float, hi: float, step: float, decimals: int = 3) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setKeyboardTracking(False)
    return box


def _check_decimals(bound: Bound, decimals: int) -> None:
    """A spin box rounds its range to its decimals: the bound must survive that exactly."""
    for end in (bound.lo, bound.hi):
        if round(end, decimals) != end:
            raise ValueError(f"{end} needs more than {decimals} decimals")


def bound_spin(bound: Bound, step: float = 1, decimals: int = 3) -> QSpinBox | QDoubleSpinBox:
    """A spin box whose range is exactly `bound`."""
    if bound.integer:
        return int_spin(int(bound.lo), int(bound.hi), max(1, int(step)))
    _check_decimals(bound, decimals)
    return float_spin(bound.lo, bound.hi, step, decimals)


def field_spin(path: str, step: float = 1, decimals: int = 3) -> QSpinBox | QDoubleSpinBox:
    """A spin box for a spec field (`train.epochs`), its range the field's bound."""
    return bound_spin(BOUNDS[path], step, decimals)
