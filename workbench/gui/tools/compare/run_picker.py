"""Pick stored runs to add to a comparison."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.store.runs import RunInfo, RunStore
from workbench.gui.run_rules import run_labels


class RunPicker(QDialog):
    """Pick stored runs to add to the comparison (those `infos` names: the Runs list's, or
    the store's as a task listed them), labelled as the Runs list labels them."""

    def __init__(self, runs: RunStore, parent: QWidget | None = None, *,
                 infos: list[RunInfo]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add past runs")
        self.list = QListWidget()
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        offered = [info for info in infos if info.error is None]
        for info, label in zip(offered, run_labels(offered), strict=True):
            s = info.summary
            acc = s.get("best_val_accuracy")
            text = (f"{label}   {s.get('dataset', '?')}   {s.get('status', '?')}"
                    + (f"   best val {100 * acc:.2f}%" if isinstance(acc, float) else ""))
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, str(info.path))
            item.setToolTip(str(info.path))
            self.list.addItem(item)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Runs in {runs.root}"))
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(640, 400)

    def chosen(self) -> list[str]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems()]
