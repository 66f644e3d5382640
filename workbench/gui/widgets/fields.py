"""Small shared widgets: spin boxes whose ranges are the spec's bounds, and a binder that ties
editors to spec fields.

Every editor of a spec number takes its range from `spec.BOUNDS` (layer parameters from their
`ParamDef`), so the app cannot produce a value the validator refuses, and a spec it opens
(validated against the same bounds) is never clamped by a widget. The binder is the one place
where an editor writes to the experiment (through an undo command) and where a model change is
written back to the editor (with its signals blocked, so displaying a value never creates an
edit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoStack, QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QSpinBox,
    QWidget,
)

from workbench.gui.document.experiment_model import ExperimentModel
from workbench.gui.document.undo import push_value
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


class Binder(QObject):
    """Two-way ties between editors and spec fields, through the undo stack."""

    def __init__(self, model: ExperimentModel, stack: QUndoStack, parent: QObject | None = None
                 ) -> None:
        super().__init__(parent)
        self.model, self.stack = model, stack
        self._show: dict[str, Callable[[Any], None]] = {}
        self.editors: dict[str, list[QWidget]] = {}  # the widgets that edit each field
        model.valueChanged.connect(self._on_value)
        model.specReplaced.connect(self.refresh)

    def write(self, path: str, value: Any) -> None:
        push_value(self.stack, self.model, path, value)

    def register(self, path: str, *widgets: QWidget) -> None:
        """Record which widgets edit `path` (spin boxes are checked against its bound)."""
        self.editors.setdefault(path, []).extend(widgets)

    def spin(self, box: QSpinBox | QDoubleSpinBox, path: str, cast: type = float) -> None:
        box.valueChanged.connect(lambda v: self.write(path, cast(v)))
        self._tie(path, box, lambda v: box.setValue(v))
        self.register(path, box)

    def check(self, box: QCheckBox, path: str) -> None:
        box.toggled.connect(lambda v: self.write(path, bool(v)))
        self._tie(path, box, lambda v: box.setChecked(bool(v)))

    def combo(self, box: QComboBox, path: str) -> None:
        """Items carry the field's value as their data."""
        box.currentIndexChanged.connect(lambda i: self.write(path, box.itemData(i)))
        self._tie(path, box, lambda v: box.setCurrentIndex(max(0, box.findData(v))))

    def optional(self, toggle: QCheckBox, box: QSpinBox | QDoubleSpinBox, path: str,
                 cast: type = float) -> None:
        """A field that may be null: unchecked writes None, checked writes the box's value."""
        def write(*_: Any) -> None:
            self.write(path, cast(box.value()) if toggle.isChecked() else None)

        def show(v: Any) -> None:
            toggle.setChecked(v is not None)
            box.setEnabled(v is not None)
            if v is not None:
                box.setValue(v)

        toggle.toggled.connect(write)
        toggle.toggled.connect(box.setEnabled)
        box.valueChanged.connect(write)
        self._tie(path, [toggle, box], show)
        self.register(path, box)

    def custom(self, path: str, show: Callable[[Any], None]) -> None:
        """A view-only reaction to a field (showing or hiding related editors)."""
        previous = self._show.get(path)

        def both(v: Any) -> None:
            if previous is not None:
                previous(v)
            show(v)

        self._show[path] = both
        both(self.model.value(path))

    def refresh(self) -> None:
        for path in self._show:
            self._on_value(path, self.model.value(path))

    def _tie(self, path: str, widgets: Any, show: Callable[[Any], None]) -> None:
        group = widgets if isinstance(widgets, list) else [widgets]

        def quiet(v: Any) -> None:
            blocked = [w.blockSignals(True) for w in group]
            try:
                show(v)
            finally:
                for w, b in zip(group, blocked, strict=True):
                    w.blockSignals(b)

        self.custom(path, quiet)

    def _on_value(self, path: str, value: Any) -> None:
        show = self._show.get(path)
        if show is not None:
            show(value)
