"""The Search panel's Trials tab: a row per trial, coloured by its state; a double-click (or
Open run) opens the trial's run, Open best run the best one's."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.gui.tools.search.presenter import SearchState
from workbench.gui.widgets.style import ACCENT, ERROR, GREY, TEXT

STATE_COLORS = {"complete": TEXT, "running": ACCENT, "pruned": GREY, "failed": ERROR,
                "waiting": GREY}


class TrialsPage(QWidget):
    """`openRequested(table row)` for a trial's run; `bestRequested` for the best one's."""

    openRequested = Signal(int)
    bestRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.cellDoubleClicked.connect(self._double_clicked)
        v.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open run")
        self.open_button.clicked.connect(self._open_clicked)
        self.best_button = QPushButton("Open best run")
        self.best_button.clicked.connect(self.bestRequested)
        row.addWidget(self.open_button)
        row.addWidget(self.best_button)
        row.addStretch(1)
        v.addLayout(row)
        note = QLabel("Opening a run loads its experiment into the editor.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        v.addWidget(note)

    def _double_clicked(self, row: int, _column: int) -> None:
        self.openRequested.emit(row)

    def _open_clicked(self) -> None:
        self.openRequested.emit(self.table.currentRow())

    def fill(self, state: SearchState) -> None:
        headers, rows = state.table()
        table = self.table
        selected = table.currentRow()
        table.setColumnCount(len(headers))
        table.setHorizontalHeaderLabels(headers)
        table.setRowCount(len(rows))
        for r, (row, cells) in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setForeground(pg.mkColor(STATE_COLORS.get(row.state, TEXT)))
                if c == len(cells) - 1 and row.error:
                    item.setToolTip(row.error)
                table.setItem(r, c, item)
        table.resizeColumnsToContents()
        if 0 <= selected < len(rows):
            table.selectRow(selected)
