"""The Compress panel's Value ranges tab: layer by layer, the histogram of log2|x| on the
calibration sample against the span 8 bits cover (as MATLAB's Deep Network Quantizer shows)."""

from __future__ import annotations

import html
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.tools.compress_settings import DEFAULT_CALIBRATION, MAX_CALIBRATION
from workbench.gui.tools.compress.presenter import (
    RANGE_COLUMNS,
    UNDERFLOW_WARN,
    range_cells,
    ranges_note,
)
from workbench.gui.views.axes import plot_widget
from workbench.gui.widgets.layouts import FlowLayout, Placeholder
from workbench.gui.widgets.style import ACTIVATIONS, ALERT, WEIGHTS

NO_RANGES = ("No value ranges yet: Measure value ranges runs a sample of the training data "
             "through the run and shows each layer's histogram here.")


class RangesPage(QWidget):
    """`measureRequested` when Measure value ranges is pressed; `show_ranges(ranges)` shows
    what was measured."""

    measureRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ranges: list[Any] = []
        layout = QVBoxLayout(self)
        row_box = QWidget()  # wraps onto more lines when the panel is narrow
        row = FlowLayout(row_box, spacing=10, line_spacing=4)
        self.ranges_button = QPushButton("Measure value ranges")
        self.samples = QSpinBox()
        self.samples.setRange(1, MAX_CALIBRATION)
        self.samples.setValue(DEFAULT_CALIBRATION)
        self.samples.setSuffix(" calibration samples")
        self.layer = QComboBox()
        self.layer.setMinimumContentsLength(24)
        row.addWidget(self.ranges_button)
        row.addWidget(self.samples)
        row.add_group(QLabel("Show"), self.layer)
        layout.addWidget(row_box)
        explain = QLabel("Shaded: the span 8 bits cover at each tensor's scale (weights "
                         "symmetric per tensor, activations over min..max); values left of it "
                         "round to zero.")
        explain.setObjectName("hint")
        explain.setWordWrap(True)
        layout.addWidget(explain)
        self.hist_legend = QLabel("")  # beside the bars, never over them
        self.hist_legend.setWordWrap(True)
        layout.addWidget(self.hist_legend)
        self.hist = plot_widget()
        self.hist.setLabel("bottom", "log2 |value|")
        self.hist.setLabel("left", "share (%)")  # of the tensor's values, per bin
        self.hist.showGrid(x=True, y=True, alpha=0.3)
        self.hist.setMinimumHeight(130)
        self.placeholder = Placeholder(self.hist, NO_RANGES)
        layout.addWidget(self.placeholder, 1)
        self.note = QLabel("Measure the ranges on a sample of the run's training data.")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.range_table = QTableWidget(0, len(RANGE_COLUMNS))
        self.range_table.setHorizontalHeaderLabels(RANGE_COLUMNS)
        self.range_table.verticalHeader().setVisible(False)
        self.range_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.range_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        header = self.range_table.horizontalHeader()  # each column as wide as its header
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.range_table.setMaximumHeight(200)
        layout.addWidget(self.range_table)
        self.ranges_button.clicked.connect(self.measureRequested)
        self.layer.currentIndexChanged.connect(self._layer_changed)
        self.range_table.currentCellChanged.connect(self._row_changed)

    def clear(self) -> None:
        """A new run: nothing measured on it yet."""
        self.ranges = []
        self.layer.clear()
        self.range_table.setRowCount(0)
        self.hist.clear()

    def show_ranges(self, ranges: list[Any]) -> None:
        self.ranges = ranges
        self.layer.blockSignals(True)
        self.layer.clear()
        for label in dict.fromkeys(r.label for r in ranges):
            self.layer.addItem(label)
        self.layer.blockSignals(False)
        self.range_table.setRowCount(len(ranges))
        for row, r in enumerate(ranges):
            for col, text in enumerate(range_cells(r)):
                item = QTableWidgetItem(text)
                if col >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if col == 5 and r.underflow > UNDERFLOW_WARN:
                    item.setForeground(pg.mkColor(ALERT))
                self.range_table.setItem(row, col, item)
        self.note.setText(ranges_note(ranges, self.samples.value()))
        self.draw()

    def _layer_changed(self, _index: int) -> None:
        self.draw()

    def _row_changed(self, row: int, *_: Any) -> None:
        if 0 <= row < len(self.ranges):
            index = self.layer.findText(self.ranges[row].label)
            if index >= 0:
                self.layer.setCurrentIndex(index)

    def draw(self) -> None:
        self.hist.clear()
        label = self.layer.currentText()
        chosen = [r for r in self.ranges if r.label == label]
        legend = []
        width = 0.4
        for offset, r in zip((-width / 2, width / 2), chosen, strict=False):
            if not r.counts:
                continue
            total = max(1, sum(r.counts))
            color = pg.mkColor(WEIGHTS if r.tensor == "weights" else ACTIVATIONS)
            bars = pg.BarGraphItem(x=[e + 0.5 + offset for e in r.exponents],
                                   height=[100.0 * c / total for c in r.counts], width=width,
                                   brush=color, pen=pg.mkPen(color))
            self.hist.addItem(bars)
            legend.append(f"<span style='color:{color.name()}'>■</span>&nbsp;"
                          f"{html.escape(r.tensor)}: {r.underflow:.1%} round to zero")
            low, high = r.covered
            shade = pg.mkColor(color)
            shade.setAlpha(35)
            edge = pg.mkColor(color)
            edge.setAlpha(160)
            self.hist.addItem(pg.LinearRegionItem(values=(low - 1, high), movable=False,
                                                  brush=pg.mkBrush(shade), pen=pg.mkPen(edge)))
        self.hist_legend.setText("&nbsp;&nbsp; ".join(legend))
        self.placeholder.show_content(bool(legend))
        if chosen:
            self.hist.enableAutoRange()
