"""The Compare panel's Results tab: a sortable table, a row per variant in its colour."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from workbench.core.tools.compare import ResultRow
from workbench.gui.tools.compare.presenter import (
    COLUMNS,
    STATUS_COLUMN,
    TARGET_COLUMNS,
    row_cells,
    target_headers,
)
from workbench.gui.widgets.style import ERROR, series_color

REASON_CHARS = 60  # a failure's reason in its cell; the whole of it in the tooltip


def elide(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


class NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number (missing values last), shows it formatted."""

    def __init__(self, value: float | None, text: str) -> None:
        super().__init__(text)
        self.value = math.inf if value is None or math.isnan(value) else value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)


class ResultsTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        # the race's order until the person sorts by a column (a header's click)
        self.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Interactive)  # sized to the contents, then the person's
        self.resizeColumnsToContents()  # every header whole before any row

    def fill(self, rows: Sequence[ResultRow], target_accuracy: float) -> None:
        self.setSortingEnabled(False)
        fresh = self.rowCount() != len(rows)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, cell in enumerate(row_cells(row)):
                item = QTableWidgetItem(cell) if isinstance(cell, str) else NumberItem(*cell)
                if c == 0:
                    item.setForeground(pg.mkColor(series_color(r)))
                if c == STATUS_COLUMN and row.reason:  # a failure says why where it shows
                    item.setText(elide(f"{row.status}: {row.reason}", REASON_CHARS))
                    item.setToolTip(row.reason)
                    item.setForeground(pg.mkColor(ERROR))
                self.setItem(r, c, item)
        self.setSortingEnabled(True)
        headers = target_headers(target_accuracy)
        header = self.horizontalHeaderItem(TARGET_COLUMNS[0])
        if header is None or header.text() != headers[0]:
            fresh = True
            for column, text in zip(TARGET_COLUMNS, headers, strict=True):
                self.setHorizontalHeaderItem(column, QTableWidgetItem(text))
        if fresh:  # new variants or target: fit the columns once, then leave them to the person
            self.resizeColumnsToContents()
