"""The binder: the one place where an editor writes to the experiment (through an undo
command) and where a model change is written back to the editor (with its signals blocked, so
displaying a value never creates an edit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox, QWidget

from workbench.gui.document.experiment_model import ExperimentModel, same_value
from workbench.gui.document.undo import push_value


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

    def write(self, path: str, value: Any, also: dict[str, Any] | None = None) -> None:
        """Set `path` (and the fields `also` names, in the same undo step)."""
        changes = {path: value, **(also or {})}
        changing = {p: v for p, v in changes.items()
                    if not same_value(self.model.value(p), v)}
        if len(changing) <= 1:
            push_value(self.stack, self.model, path, value)
            return
        self.stack.beginMacro(f"Set {path} to {value}")
        try:
            for p, v in changing.items():
                push_value(self.stack, self.model, p, v)
        finally:
            self.stack.endMacro()

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

    def combo(self, box: QComboBox, path: str,
              also: Callable[[Any], dict[str, Any]] | None = None) -> None:
        """Items carry the field's value as their data; `also(value)` names fields that
        change with it, in the same undo step (a dataset that takes no declared target)."""
        def write(i: int) -> None:
            value = box.itemData(i)
            self.write(path, value, also(value) if also is not None else None)

        box.currentIndexChanged.connect(write)
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
