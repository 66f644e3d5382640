"""The Prune panel's sensitivity sweep: validation accuracy as each layer alone is pruned,
step by step, a curve per layer and one for the whole network, filled as the sweep goes."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from workbench.core.tools.prune import SENSITIVITY_AMOUNTS, SensitivityPoint
from workbench.gui.tools.prune.presenter import WHOLE_NETWORK, sweep_point
from workbench.gui.views.axes import plot_widget
from workbench.gui.widgets.layouts import Placeholder
from workbench.gui.widgets.style import TEXT, legend_html, series_color

NO_SWEEP = ("No sweep yet: Analyze sensitivity prunes each layer alone, step by step, and plots "
            "what the validation accuracy does.")


class SensitivityBox(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Sensitivity: validation accuracy as each layer alone is pruned",
                         parent)
        self.curves: dict[int | None, pg.PlotDataItem] = {}
        self.points: dict[int | None, list[tuple[float, float]]] = {}
        self.total = 0
        layout = QVBoxLayout(self)
        # the panel places the button with its other controls, in view above the table
        self.sweep_button = QPushButton("Analyze sensitivity")
        self.status = QLabel("")
        layout.addWidget(self.status)
        self.plot = plot_widget()
        self.plot.setLabel("bottom", "amount pruned (%)")
        self.plot.setLabel("left", "accuracy %")  # on the validation split, as the title says
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setXRange(0, 100)
        self.plot.setMinimumHeight(120)
        self.legend = QLabel()  # the layers' colours, above the curves, not over them
        self.legend.setWordWrap(True)
        layout.addWidget(self.legend)
        self.placeholder = Placeholder(self.plot, NO_SWEEP)
        layout.addWidget(self.placeholder, 1)

    def clear(self) -> None:
        self.plot.clear()
        self.legend.setText("")
        self.placeholder.show_content(False)
        self.curves.clear()
        self.points.clear()
        self.status.setText("")

    def start(self, targets: list[Any]) -> None:
        """A curve per layer of `targets` and one for the whole network, empty."""
        self.clear()
        self.total = (len(targets) + 1) * len(SENSITIVITY_AMOUNTS)
        for i, lay in enumerate(targets):
            color = series_color(i)
            self.curves[lay.index] = self.plot.plot([], [], pen=pg.mkPen(color, width=2),
                                                     name=lay.label, symbol="o", symbolSize=5,
                                                     symbolBrush=color)
        self.curves[None] = self.plot.plot([], [], pen=pg.mkPen(TEXT, width=3),
                                            name=WHOLE_NETWORK)
        self.legend.setText(legend_html(
            [(series_color(i), lay.label, True) for i, lay in enumerate(targets)]
            + [(TEXT, WHOLE_NETWORK, False)]))
        self.placeholder.show_content(True)

    def add_point(self, point: SensitivityPoint) -> None:
        pts = self.points.setdefault(point.layer, [])
        pts.append(sweep_point(point))
        xs, ys = zip(*pts, strict=True)
        self.curves[point.layer].setData(list(xs), list(ys))
        done = sum(len(v) for v in self.points.values())
        self.status.setText(f"{done} / {self.total} evaluations")
        if point.val_accuracy is None:
            self.plot.setLabel("left", "val loss")

    def done(self, count: int) -> None:
        self.status.setText(f"done: {count} evaluations"
                            + ("" if count == self.total else " (stopped)"))
