"""The search space as a table a person edits: a row per field, its type, range or choices."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.tools.search import KINDS
from workbench.gui.tools.search.presenter import SPACE_COLUMNS, cell_text, cell_value


class SpaceEditor(QWidget):
    """The search space as a table a person edits; `raw()` is the JSON document it stands for."""

    def __init__(self, fields: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields = fields
        self.table = QTableWidget(0, len(SPACE_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(SPACE_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()  # each column as wide as its header and cells;
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)  # the choices take what is left (or scroll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)

    def add_row(self, path: str = "optim.lr", entry: dict[str, Any] | None = None) -> None:
        entry = entry or {"type": "float", "low": 1e-4, "high": 0.1, "log": True}
        row = self.table.rowCount()
        self.table.insertRow(row)
        field = QComboBox()
        field.setEditable(True)
        field.setMinimumContentsLength(12)  # the popup lists the longer paths whole
        field.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        field.addItems(self.fields)
        field.setCurrentText(path)
        kind = QComboBox()
        kind.addItems(list(KINDS))
        kind.setCurrentText(str(entry.get("type", "float")))
        log = QCheckBox()
        log.setChecked(bool(entry.get("log", False)))
        self.table.setCellWidget(row, 0, field)
        self.table.setCellWidget(row, 1, kind)
        for col, key in ((2, "low"), (3, "high")):
            self.table.setItem(row, col, QTableWidgetItem(cell_text(entry.get(key))))
        self.table.setCellWidget(row, 4, log)
        self.table.setItem(row, 5, QTableWidgetItem(cell_text(entry.get("step"))))
        choices = entry.get("choices")
        self.table.setItem(row, 6, QTableWidgetItem(
            ", ".join(cell_text(c) for c in choices) if isinstance(choices, list) else ""))

    def remove_row(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)

    def set_raw(self, raw: dict[str, Any]) -> None:
        self.table.setRowCount(0)
        for path, entry in raw.get("params", {}).items():
            self.add_row(path, entry)

    def raw(self) -> dict[str, Any]:
        """The space's `params`, from the table (cells are read as JSON when they parse)."""
        params: dict[str, Any] = {}
        for row in range(self.table.rowCount()):
            path = self.table.cellWidget(row, 0).currentText().strip()
            kind = self.table.cellWidget(row, 1).currentText()
            if not path:
                continue
            entry: dict[str, Any] = {"type": kind}
            if kind == "categorical":
                text = self.table.item(row, 6).text()
                entry["choices"] = [cell_value(t) for t in text.split(",") if t.strip()]
            else:
                for col, key in ((2, "low"), (3, "high")):
                    entry[key] = cell_value(self.table.item(row, col).text())
                if self.table.cellWidget(row, 4).isChecked():
                    entry["log"] = True
                step = self.table.item(row, 5).text().strip()
                if step:
                    entry["step"] = cell_value(step)
            params[path] = entry
        return {"params": params}
