"""The Compress panel's frontier: every measured variant as test accuracy against file size or
latency (log scale), marked by its kind, hollow when pruned, a cross when refused; the Pareto
front dashed through them; hovering a point shows its numbers, a click selects it."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from workbench.gui.tools.compress.presenter import (
    describe,
    front_line,
    frontier_spots,
    highlight_at,
    is_regression,
)
from workbench.gui.views.axes import plot_widget
from workbench.gui.widgets.layouts import Placeholder
from workbench.gui.widgets.style import ALERT, TEXT, VARIANT_COLORS, WHITE

NO_FRONTIER = ("No variants measured yet: Measure variants exports this run and those pruned "
               "from it, quantizes each and plots test accuracy against size here.")


class FrontierPlot(QWidget):
    """`clicked(index)` when the point of variant `index` is clicked."""

    clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.variants: list[Any] = []
        self.plot = plot_widget()
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("left", "test accuracy (%)")
        self.plot.getAxis("bottom").setLogMode(True)
        self.plot.setMinimumHeight(150)
        self.front_curve = self.plot.plot([], [], pen=pg.mkPen(TEXT, width=2,
                                                               style=Qt.PenStyle.DashLine),
                                          name="Pareto front")
        self.scatter = pg.ScatterPlotItem(hoverable=True, tip=self.tip, hoverSize=14,
                                          hoverPen=pg.mkPen(TEXT, width=2))
        self.scatter.sigClicked.connect(self._on_clicked)
        self.plot.addItem(self.scatter)
        self.highlight = pg.ScatterPlotItem(size=20, symbol="o", brush=None,
                                            pen=pg.mkPen(ALERT, width=3))
        self.plot.addItem(self.highlight)
        self.placeholder = Placeholder(self.plot, NO_FRONTIER)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.placeholder)

    def draw(self, variants: list[Any], axis: str, label: str) -> list[Any]:
        """Plot `variants` against `axis`; the Pareto front (its variants)."""
        from workbench.core.tools.compress import pareto

        self.variants = variants
        self.plot.setLabel("bottom", label)
        regression = is_regression(variants)
        self.plot.setLabel("left", "minus test MSE" if regression else "test accuracy (%)")
        spots = []
        for spot in frontier_spots(variants, axis):
            if spot.refused:
                spots.append({"pos": (spot.x, spot.y), "data": spot.index, "symbol": "x",
                              "size": 12, "brush": pg.mkBrush(ALERT), "pen": pg.mkPen(ALERT)})
            else:
                color = VARIANT_COLORS.get(spot.kind, TEXT)
                spots.append({"pos": (spot.x, spot.y), "data": spot.index, "symbol": "o",
                              "size": 11, "brush": pg.mkBrush(WHITE if spot.pruned else color),
                              "pen": pg.mkPen(color, width=2.5)})
        self.scatter.setData(spots)
        front = pareto(variants, axis) if variants else []
        self.front_curve.setData(*front_line(front, axis, regression), stepMode=None)
        if spots:  # at once, not at the next paint: a click may come before it
            self.plot.getPlotItem().vb.autoRange(padding=0.08)
        return front

    def highlight_variant(self, variant: Any, axis: str) -> None:
        """Ring the selected variant's point (none: no ring)."""
        if variant is None or variant not in self.variants:
            self.highlight.setData([])
            return
        self.highlight.setData([{"pos": highlight_at(variant, axis)}])

    def tip(self, x: float, y: float, data: Any) -> str:
        if isinstance(data, int) and 0 <= data < len(self.variants):
            return describe(self.variants[data])
        return ""

    def _on_clicked(self, _item: Any, points: Any, *_: Any) -> None:
        if len(points):
            self.clicked.emit(points[0].data())
