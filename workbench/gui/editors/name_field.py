"""The experiment's name, edited where a person sees it: at the top of the Experiment dock.

Runs take this name (the Runs list shows it, the run folder takes a file-safe form of it).
A name is committed when editing finishes, as one undo step; the spec's own rule
(`spec.check_name`) decides what is allowed, and a refused name is put back with the reason
beside the field, so nothing changes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from workbench.gui.document.experiment_model import ExperimentModel
from workbench.gui.document.undo import push_value
from workbench.spec import SpecError, check_name


class NameField(QWidget):
    def __init__(self, model: ExperimentModel, stack: QUndoStack,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model, self.stack = model, stack
        label = QLabel("&Name")
        self.edit = QLineEdit()
        self.edit.setObjectName("experimentName")
        self.edit.setToolTip("The experiment's name: every run you train from it is listed "
                             "under this name")
        label.setBuddy(self.edit)
        self.problem = QLabel("")
        self.problem.setObjectName("problem")
        self.problem.setWordWrap(True)
        self.problem.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(label)
        row.addWidget(self.edit, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 2)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.problem)
        self.edit.editingFinished.connect(self.commit)
        self.edit.textEdited.connect(self._editing)
        model.valueChanged.connect(self._value_changed)
        model.specReplaced.connect(self.show_name)
        self.show_name()

    def show_name(self) -> None:
        """Show the model's name (after an undo, an open, a refused edit)."""
        name = self.model.live.name
        if self.edit.text() != name:
            self.edit.setText(name)
        self.edit.setCursorPosition(0)

    def commit(self) -> bool:
        """Write the typed name through the undo stack; refuse it, with the spec's reason,
        when the spec would not accept it."""
        name = self.edit.text().strip()
        try:
            check_name(name)
        except SpecError as exc:
            self.problem.setText(f"Name not changed: {exc.reason}.")
            self.problem.show()
            self.show_name()
            return False
        self.problem.hide()
        push_value(self.stack, self.model, "name", name)
        self.show_name()
        return True

    def _editing(self, _text: str) -> None:
        self.problem.hide()

    def _value_changed(self, path: str, _value: Any) -> None:
        if path == "name":
            self.show_name()
