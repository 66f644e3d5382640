"""Network health while it trains: gradient norm per layer, a weight histogram, dead ReLUs.

Fed `Health` events (a few an epoch). The per-layer curves are created once per run, when the
first event names the layers, and drawn as `LiveCurve`s (chunked, downsampled, clipped to the
view, like the training curves): a redraw hands the plot only the newest points. A warning
from the monitor shows as a banner above the plots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.core.training.events import Health, LayerHealth
from workbench.gui.views.axes import add_plot
from workbench.gui.views.curves import REDRAW_MS, LiveCurve, new_plot
from workbench.gui.widgets.layouts import Placeholder
from workbench.gui.widgets.style import (
    TAB10,
    TRAIN,
    VALIDATION,
    legend_html,
    notice_label_style,
    rgba,
)
from workbench.spec.layers import layer_label

LAYER_COLORS = TAB10
WARNING_STYLE = notice_label_style(6)
TINY = 1e-12  # a zero gradient norm, drawn on the log axis
NO_DATA = ("No health data yet: train to see each layer's gradient norm, its weights and its "
           "dead ReLU units.")


class HealthView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.warning.hide()
        self.layer_box = QComboBox()  # as wide as its longest layer's name, never cut
        self.layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_box.currentIndexChanged.connect(self._draw_histogram)
        self.step_label = QLabel("")
        self.step_label.setObjectName("hint")
        top = QHBoxLayout()
        top.addWidget(self.step_label, 1)
        top.addWidget(QLabel("Weights of"))
        top.addWidget(self.layer_box)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.legend = QLabel()  # the layers' colours, beside the curves rather than over them
        self.legend.setWordWrap(True)
        self.legend.setContentsMargins(8, 0, 8, 0)
        # the histogram and the dead units sit side by side; the dead units' chart is shown
        # only for a network that has a ReLU
        self.hist_graphics = pg.GraphicsLayoutWidget()
        self.hist_graphics.setBackground("w")
        self.dead_graphics = pg.GraphicsLayoutWidget()
        self.dead_graphics.setBackground("w")
        below = QHBoxLayout()
        below.setSpacing(0)
        below.addWidget(self.hist_graphics, 1)
        below.addWidget(self.dead_graphics, 1)
        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.setSpacing(0)
        body_layout.addLayout(top)
        body_layout.addWidget(self.legend)
        body_layout.addWidget(self.graphics, 1)  # half each: on a laptop the charts below
        body_layout.addLayout(below, 1)  # need the height for their axes' titles
        self.placeholder = Placeholder(body, NO_DATA)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.warning)
        layout.addWidget(self.placeholder, 1)
        self.grad_plot = new_plot(self.graphics.ci, "Gradient norm (L2) per layer",
                                  left="norm (log)", log_y=True)
        self.grad_plot.addLegend().hide()  # the legend above the chart names the layers
        # decades labelled, and 2..9 only where they fit loosely (not 0.06 0.07 0.08 0.09)
        self.grad_plot.getAxis("left").setStyle(textFillLimits=[(0, 0.8), (2, 0.25)])
        self.hist_plot = add_plot(self.hist_graphics.ci, title="Weight histogram")
        self.hist_plot.setLabel("bottom", "weight value")
        self.hist_plot.setLabel("left", "count")  # of the layer's weights in each bin
        self.hist_curve = self.hist_plot.plot(stepMode="center", fillLevel=0,
                                              brush=rgba(TRAIN, 120), pen=TRAIN)
        self.dead_plot = add_plot(self.dead_graphics.ci, title="Dead ReLU units")
        self.dead_plot.setLabel("left", "% dead")  # of the ReLU's units
        self.dead_plot.setLabel("bottom", "ReLU layer")
        self.dead_plot.setYRange(0, 100, padding=0.02)
        self.dead_plot.setMouseEnabled(x=False, y=False)
        self.dead_bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=VALIDATION)
        self.dead_plot.addItem(self.dead_bars)
        self.names: list[str] = []
        self._dead_ticks: list[list[tuple[int, str]]] = []
        self.curves: list[LiveCurve] = []
        self.latest: Health | None = None
        self.count = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)

    def clear(self) -> None:
        for curve in self.curves:
            curve.remove()
        self.grad_plot.legend.clear()
        self.names, self.curves = [], []
        self.latest = None
        self.count = 0
        self.layer_box.clear()
        self.warning.hide()
        self.hist_curve.setData([0.0, 1.0], [0.0])
        self.dead_bars.setOpts(x=[], height=[])
        self._dead_ticks = []
        self.dead_plot.getAxis("bottom").setTicks([])
        self.legend.setText("")
        self.step_label.setText("")
        self.placeholder.show_content(False)

    def add_health(self, health: Health) -> None:
        names = [h.name for h in health.layers]
        if names != self.names:
            self.clear()
            self._make_layers(names)
        for curve, layer in zip(self.curves, health.layers, strict=True):
            norm = layer.grad_norm if np.isfinite(layer.grad_norm) else np.nan
            curve.append(health.epoch, max(norm, TINY))
        self.latest = health
        self.count += 1
        if not self._timer.isActive():
            self._timer.start()

    def _make_layers(self, names: list[str]) -> None:
        self.names = names
        for i, name in enumerate(names):
            pen = pg.mkPen(LAYER_COLORS[i % len(LAYER_COLORS)], width=1.5)
            self.curves.append(LiveCurve(self.grad_plot, name=name, pen=pen, z=i))
        self.layer_box.blockSignals(True)
        self.layer_box.addItems(names)
        self.layer_box.blockSignals(False)
        self.legend.setText(legend_html([(LAYER_COLORS[i % len(LAYER_COLORS)], name, False)
                                         for i, name in enumerate(names)]))
        self.dead_plot.setXRange(-0.6, len(names) - 0.4, padding=0)

    def redraw(self) -> None:
        self._timer.stop()
        for curve in self.curves:
            curve.draw()
        health = self.latest
        if health is None:
            return
        self.placeholder.show_content(True)
        self.step_label.setText(f"Epoch {health.epoch:.2f} · step {health.global_step}")
        if health.warning:
            self.warning.setText("\u26a0 " + health.warning)
            self.warning.show()
        else:
            self.warning.hide()
        dead = [(i, 100.0 * h.dead_fraction, dead_bar_label(h))
                for i, h in enumerate(health.layers) if h.dead_fraction is not None]
        self.dead_bars.setOpts(x=[i for i, _, _ in dead], height=[v for _, v, _ in dead])
        ticks = [[(i, label) for i, _, label in dead]]
        if ticks != self._dead_ticks:  # a bar per ReLU, named as the editor numbers it
            self._dead_ticks = ticks
            self.dead_plot.getAxis("bottom").setTicks(ticks)
        self.dead_graphics.setVisible(bool(dead))
        self._draw_histogram()

    def _draw_histogram(self, *_: Any) -> None:
        health = self.latest
        index = self.layer_box.currentIndex()
        if health is None or not 0 <= index < len(health.layers):
            return
        layer = health.layers[index]
        self.hist_curve.setData(np.asarray(layer.edges), np.asarray(layer.weight_hist))
        _set_title(self.hist_plot, f"Weight histogram: {layer.name}")


def dead_bar_label(health: LayerHealth) -> str:
    """A dead-units bar's name: the ReLU's layer as the editor numbers it (`3 ReLU`)."""
    if health.relu_index is not None:
        return layer_label(health.relu_index, "ReLU")
    return f"after {health.name}"


def _set_title(plot: pg.PlotItem, title: str) -> None:
    """Set a plot's title only when it changes: each change re-lays out the plot."""
    if plot.titleLabel.text != title:
        plot.setTitle(title)


if __name__ == "__main__":
    from workbench.core.training.monitors import HealthMonitor
    from workbench.gui.demo import example_spec, run_demo

    def _make(_runner: Any) -> tuple[QWidget, Any]:
        view = HealthView()
        return view, lambda e: isinstance(e, Health) and view.add_health(e)

    raise SystemExit(run_demo("Health", _make, spec=example_spec("mnist_small_cnn"),
                              callbacks=[HealthMonitor()]))
