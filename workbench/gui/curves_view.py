"""Live training curves: loss, accuracy, learning rate and throughput against epochs.

Curves are created once; data goes into preallocated numpy arrays that double when full; a
single-shot timer redraws at most ~30 times a second with `setData`, and the plots downsample
and clip to the view, so a run of 100,000 steps draws as quickly as one of 100
(pyqtgraph's scrollingPlots.py habit).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGraphicsItem, QVBoxLayout, QWidget

from workbench.core.events import EpochEnded, Progress

REDRAW_MS = 33
MAX_SYMBOLS = 300  # past this many points a marker per point costs more than it shows
TRAIN_PEN = pg.mkPen("#1f77b4", width=1.5)
VAL_PEN = pg.mkPen("#d62728", width=2)
VAL_BRUSH = pg.mkBrush("#d62728")


class GrowingSeries:
    """x/y values appended one at a time into arrays that double, never copied per point."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self._x):
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._x[self.n] = x
        self._y[self.n] = y
        self.n += 1

    def extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """Append many points at once (a stored run, a benchmark)."""
        xs = np.asarray(xs, dtype=float)
        ys = np.asarray(ys, dtype=float)
        if xs.shape != ys.shape or xs.ndim != 1:
            raise ValueError("x and y must be 1-D arrays of the same length")
        end = self.n + len(xs)
        if end > len(self._x):
            capacity = max(len(self._x), 1)
            while capacity < end:
                capacity *= 2
            self._x = np.concatenate([self._x[:self.n], np.empty(capacity - self.n)])
            self._y = np.concatenate([self._y[:self.n], np.empty(capacity - self.n)])
        self._x[self.n:end] = xs
        self._y[self.n:end] = ys
        self.n = end

    def clear(self) -> None:
        self.n = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[:self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[:self.n]


def new_plot(layout: pg.GraphicsLayout, title: str, *, left: str = "",
             log_y: bool = False, colspan: int = 1) -> pg.PlotItem:
    """A plot set up for long curves: auto downsampling, clipping to view, a light grid."""
    plot = layout.addPlot(title=title, colspan=colspan)
    plot.setDownsampling(auto=True, mode="peak")
    plot.setClipToView(True)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", "epoch")
    if left:
        plot.setLabel("left", left)
    plot.setLogMode(y=log_y)
    for name in ("left", "bottom"):  # an axis whose range did not change is a pixmap blit
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    return plot


class CurvesView(QWidget):
    """Four plots fed by `add_progress` / `add_epoch`, or by a stored run's metric records."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        g = self.graphics.ci
        self.loss_plot = new_plot(g, "Loss")
        self.acc_plot = new_plot(g, "Accuracy")
        g.nextRow()
        self.lr_plot = new_plot(g, "Learning rate")
        self.rate_plot = new_plot(g, "Samples per second")
        self.acc_plot.setYRange(0, 1, padding=0.02)
        self.loss_plot.addLegend(offset=(-10, 10))  # loss falls: the top right stays clear
        self.acc_plot.addLegend(offset=(-10, -10))  # accuracy rises: the bottom right does
        self.series: dict[str, GrowingSeries] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for key, plot, pen, name in (
            ("train_loss", self.loss_plot, TRAIN_PEN, "training"),
            ("val_loss", self.loss_plot, VAL_PEN, "validation"),
            ("train_acc", self.acc_plot, TRAIN_PEN, "training"),
            ("val_acc", self.acc_plot, VAL_PEN, "validation"),
            ("lr", self.lr_plot, TRAIN_PEN, None),
            ("rate", self.rate_plot, TRAIN_PEN, None),
        ):
            self.series[key] = GrowingSeries()
            symbol = {"symbol": "o", "symbolSize": 5, "symbolBrush": VAL_BRUSH,
                      "symbolPen": None} if key.startswith("val") else {}
            self.curves[key] = plot.plot(pen=pen, name=name, **symbol)
        self.redraws = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)

    # -- data in ------------------------------------------------------------------------
    def clear(self) -> None:
        for series in self.series.values():
            series.clear()
        self.set_run_length(None)
        self.redraw()

    def set_run_length(self, epochs: float | None) -> None:
        """Fix the epoch axis to the whole run, so the curves grow into it and the axes are
        not re-laid out on every update (None: follow the data)."""
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot, self.rate_plot):
            if epochs:
                plot.setXRange(0, epochs, padding=0.02)
            else:
                plot.enableAutoRange(x=True)

    def add_progress(self, p: Progress) -> None:
        x = p.global_step / max(1, p.steps_per_epoch)
        self.series["train_loss"].append(x, p.train_loss)
        if p.train_accuracy is not None:
            self.series["train_acc"].append(x, p.train_accuracy)
        self.series["lr"].append(x, p.lr)
        self.series["rate"].append(x, p.samples_per_sec)
        self._schedule()

    def add_epoch(self, e: EpochEnded) -> None:
        self.series["val_loss"].append(e.epoch, e.val_loss)
        if e.val_accuracy is not None:
            self.series["val_acc"].append(e.epoch, e.val_accuracy)
        self._schedule()

    def load_metrics(self, records: Iterable[dict[str, Any]], steps_per_epoch: int) -> None:
        """Show a stored run: its `step` and `epoch` records from `Run.metrics()`."""
        for series in self.series.values():
            series.clear()
        self.set_run_length(None)
        for r in records:
            if r.get("kind") == "step":
                x = r["global_step"] / max(1, r.get("steps_per_epoch", steps_per_epoch))
                self.series["train_loss"].append(x, r["train_loss"])
                if r.get("train_accuracy") is not None:
                    self.series["train_acc"].append(x, r["train_accuracy"])
                self.series["lr"].append(x, r["lr"])
                self.series["rate"].append(x, r["samples_per_sec"])
            elif r.get("kind") == "epoch":
                self.series["val_loss"].append(r["epoch"], r["val_loss"])
                if r.get("val_accuracy") is not None:
                    self.series["val_acc"].append(r["epoch"], r["val_accuracy"])
        self.redraw()

    # -- drawing ------------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def redraw(self) -> None:
        """Hand the arrays to the curves (views, not copies); Qt repaints on its own time."""
        self._timer.stop()
        self.redraws += 1
        for key, curve in self.curves.items():
            s = self.series[key]
            if key.startswith("val"):
                curve.setSymbol("o" if s.n <= MAX_SYMBOLS else None)
            curve.setData(s.x, s.y)
        lr = self.series["lr"]
        if lr.n:  # from zero, so a constant rate reads as one, not as noise around it
            top = float(np.nanmax(lr.y))
            if np.isfinite(top) and top > 0:
                self.lr_plot.setYRange(0, top * 1.1, padding=0)

    def point_count(self, key: str) -> int:
        return self.series[key].n


if __name__ == "__main__":
    from workbench.gui.demo import run_demo

    def _make(_runner: Any) -> tuple[QWidget, Any]:
        view = CurvesView()

        def feed(event: object) -> None:
            if isinstance(event, Progress):
                view.add_progress(event)
            elif isinstance(event, EpochEnded):
                view.add_epoch(event)
        return view, feed

    raise SystemExit(run_demo("Curves", _make))
