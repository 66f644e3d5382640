"""Live training curves: loss, accuracy, learning rate and throughput against epochs.

Every curve is a `LiveCurve`: points go into preallocated numpy arrays that double when full,
and the curve is drawn as chunks of `CHUNK` points (pyqtgraph's examples/scrollingPlots.py
habit): a finished chunk gets its data once and is never set again, so a redraw hands the
plot only the points of the chunk still growing, checks them for non-finite values only once,
and each chunk downsamples itself to the pixels it spans and is skipped when it lies outside
the view. A run of 100,000 steps redraws as quickly as one of 1,000. A single-shot timer
redraws at most twice a second, and only the curves that got new points; the y axes move
only when the data leaves them (`StickyRange`): re-rendering an axis costs more than drawing
every curve, and following each new point would do it on almost every update. The compare
and health views draw with the same `LiveCurve`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGraphicsItem, QLabel, QVBoxLayout, QWidget

from workbench.core.store.metrics import MetricSeries
from workbench.core.training.events import EpochEnded, Progress
from workbench.gui.views.axes import add_plot
from workbench.gui.widgets.layouts import Placeholder
from workbench.gui.widgets.style import GREY, TRAIN, VALIDATION, legend_html

REDRAW_MS = 33  # points that arrive together go into one redraw
# At most two live redraws a second: each one calls into Python ~150 times from Qt's paint
# code, and every call takes the GIL from the training thread (see
# benchmarks/gui_responsiveness.py, which reports the share of time it spends waiting).
MIN_GAP_S = 0.5
MAX_SYMBOLS = 300  # past this many points a marker per point costs more than it shows
DOWNSAMPLE_FACTOR = 1.0  # samples per pixel column kept by peak downsampling (min and max)
CHUNK = 16384  # points per chunk of a LiveCurve: a live redraw costs at most this many
TRAIN_COLOR, VAL_COLOR = TRAIN, VALIDATION
TRAIN_PEN = pg.mkPen(TRAIN_COLOR, width=1.5)
VAL_PEN = pg.mkPen(VAL_COLOR, width=2)
VAL_BRUSH = pg.mkBrush(VAL_COLOR)
BRANCH_COLOR = GREY  # a fork's parent, behind the fork's own curves
NO_DATA = "No data yet: press Train to watch loss, accuracy, learning rate and throughput."
# each curve's stored metric: (curve, table, column) of `core.store.metrics.MetricSeries`
METRIC_COLUMNS = (("train_loss", "steps", "train_loss"), ("train_acc", "steps", "train_accuracy"),
                  ("lr", "steps", "lr"), ("rate", "steps", "samples_per_sec"),
                  ("val_loss", "epochs", "val_loss"), ("val_acc", "epochs", "val_accuracy"))


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


class StickyRange:
    """A y range that holds until the data leaves it, then grows with `headroom` to spare.

    The series only grow between clears, so the range never has to shrink, and `update` may
    be given only the values that are new since its last call (or everything again: values
    seen before change nothing); `reset` starts over. With `include_zero`, non-negative data
    (losses, rates) is shown from zero.
    """

    def __init__(self, *, headroom: float = 0.1, include_zero: bool = False) -> None:
        self.headroom = headroom
        self.include_zero = include_zero
        self.range: tuple[float, float] | None = None
        self._seen: tuple[float, float] | None = None  # the data's extent so far

    def reset(self) -> None:
        self.range = None
        self._seen = None

    def update(self, *ys: np.ndarray) -> tuple[float, float] | None:
        """The new range if the values `ys` no longer fit the current one, else None."""
        finite = [y[np.isfinite(y)] for y in ys]
        finite = [y for y in finite if y.size]
        if not finite:
            return None
        lo = min(float(y.min()) for y in finite)
        hi = max(float(y.max()) for y in finite)
        if self._seen is not None:
            lo, hi = min(lo, self._seen[0]), max(hi, self._seen[1])
        self._seen = (lo, hi)
        from_zero = self.include_zero and lo >= 0
        if from_zero:
            lo = 0.0
        if self.range is not None and self.range[0] <= lo and hi <= self.range[1]:
            return None
        span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1  # a flat line: a band around it
        self.range = (lo if from_zero else lo - self.headroom * span, hi + self.headroom * span)
        return self.range


class LiveCurve:
    """A growing curve on `plot`, drawn as chunks of `chunk` points.

    `append`/`extend` add points (cheap, nothing is drawn); `draw` hands what is new to the
    plot: chunks that filled up since the last draw get their final data (a copy, so they
    keep no old array alive) and the growing chunk gets views of the arrays. Neighbouring
    chunks share their boundary point, so the line is unbroken. `keep` drops points before
    they are stored (for a log axis: the positive ones only); non-finite values break the
    line there, as pyqtgraph's `connect="finite"` does. Every chunk is stacked at `z`, so a
    curve's later chunks do not cover the curves made after it.
    """

    def __init__(self, plot: pg.PlotItem, *, name: str | None = None, chunk: int = CHUNK,
                 keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                 z: float = 0.0, **style: Any) -> None:
        if chunk < 2:
            raise ValueError("a chunk needs at least two points")
        self.plot = plot
        self.chunk = chunk
        self.keep = keep
        self.z = z
        self.style = style
        self.series = GrowingSeries()
        self.items: list[pg.PlotDataItem] = [self._new_item(name)]
        self._start = 0  # where the growing chunk starts in the series
        self._drawn = 0  # points handed to the plot so far

    @property
    def n(self) -> int:
        return self.series.n

    def append(self, x: float, y: float) -> None:
        if self.keep is None:
            self.series.append(x, y)
        else:
            self.extend(np.array([x]), np.array([y]))

    def extend(self, xs: Any, ys: Any) -> None:
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if self.keep is not None:
            ok = self.keep(xs, ys)
            xs, ys = xs[ok], ys[ok]
        self.series.extend(xs, ys)

    @property
    def dirty(self) -> bool:
        return self._drawn != self.series.n

    def draw(self) -> bool:
        """Hand the new points to the plot; False when there were none."""
        n = self.series.n
        if n == self._drawn:
            return False
        x, y = self.series.x, self.series.y
        while n - self._start > self.chunk:  # the growing chunk is full: finish it
            end = self._start + self.chunk
            self._set(self.items[-1], x[self._start:end + 1].copy(), y[self._start:end + 1].copy())
            self._start = end
            self.items.append(self._new_item(None))
        self._set(self.items[-1], x[self._start:n], y[self._start:n])
        self._drawn = n
        return True

    def _new_item(self, name: str | None) -> pg.PlotDataItem:
        item = self.plot.plot(name=name, **self.style)
        # peak downsampling keeps each pixel column's extremes, so one bucket per pixel draws
        # the same picture as pyqtgraph's default of five, with a fifth of the lines
        item.opts["autoDownsampleFactor"] = DOWNSAMPLE_FACTOR
        item.setZValue(self.z)
        return item

    @staticmethod
    def _set(item: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
        finite = bool(np.isfinite(y).all() and np.isfinite(x).all())
        item.setData(x, y, connect="all" if finite else "finite", skipFiniteCheck=finite)

    def set_symbol(self, symbol: str | None) -> None:
        """Markers on every chunk (or none); set only when it changes."""
        if self.style.get("symbol") == symbol:
            return
        self.style["symbol"] = symbol
        for item in self.items:
            item.setSymbol(symbol)

    def clear(self) -> None:
        """No points; the first chunk (the one a legend names) stays, empty."""
        for item in self.items[1:]:
            self.plot.removeItem(item)
        del self.items[1:]
        self.items[0].setData([], [])
        self.series.clear()
        self._start = self._drawn = 0

    def remove(self) -> None:
        """Take every chunk off the plot (the curve is done with)."""
        for item in self.items:
            self.plot.removeItem(item)
        self.items = []


def new_plot(layout: pg.GraphicsLayout, title: str | None, *, left: str = "",
             log_y: bool = False, colspan: int = 1) -> pg.PlotItem:
    """A plot set up for long curves: auto downsampling, clipping to view, a light grid."""
    plot = add_plot(layout, title=title, colspan=colspan)
    plot.setDownsampling(auto=True, mode="peak")
    plot.setClipToView(True)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", "epoch")
    if left:
        plot.setLabel("left", left)
    plot.setLogMode(y=log_y)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # unchanged: a blit
        axis.setStyle(maxTickLevel=0)  # the minor levels' grid lines triple an axis's render
    return plot


class CurvesView(QWidget):
    """Four plots fed by `add_progress` / `add_epoch`, or by a stored run's metric records."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.legend = QLabel(legend_html([(TRAIN_COLOR, "training", False),
                                          (VAL_COLOR, "validation (after each epoch)", True)]))
        self.legend.setObjectName("hint")
        self.legend.setContentsMargins(8, 2, 8, 0)
        charts = QWidget()
        charts_layout = QVBoxLayout(charts)
        charts_layout.setContentsMargins(0, 0, 0, 0)
        charts_layout.setSpacing(0)
        charts_layout.addWidget(self.legend)  # beside the curves, never over them
        charts_layout.addWidget(self.graphics, 1)
        self.placeholder = Placeholder(charts, NO_DATA)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.placeholder)
        g = self.graphics.ci
        self.loss_plot = new_plot(g, "Loss", left="loss")
        self.acc_plot = new_plot(g, "Accuracy", left="accuracy (0–1)")
        g.nextRow()
        self.lr_plot = new_plot(g, "Learning rate", left="learning rate")
        self.rate_plot = new_plot(g, "Throughput", left="samples / s")
        self.acc_plot.setYRange(0, 1, padding=0.02)
        self.curves: dict[str, LiveCurve] = {}
        for key, plot, pen, name in (
            ("train_loss", self.loss_plot, TRAIN_PEN, "training"),
            ("val_loss", self.loss_plot, VAL_PEN, "validation"),
            ("train_acc", self.acc_plot, TRAIN_PEN, "training"),
            ("val_acc", self.acc_plot, VAL_PEN, "validation"),
            ("lr", self.lr_plot, TRAIN_PEN, None),
            ("rate", self.rate_plot, TRAIN_PEN, None),
        ):
            symbol = {"symbol": "o", "symbolSize": 5, "symbolBrush": VAL_BRUSH,
                      "symbolPen": None} if key.startswith("val") else {}
            self.curves[key] = LiveCurve(plot, name=name, pen=pen, z=1 if symbol else 0,
                                         **symbol)
        self.series = {key: curve.series for key, curve in self.curves.items()}
        self.ranges = {  # the plots whose y range follows the data; accuracy stays 0..1
            self.loss_plot: (StickyRange(include_zero=True), ("train_loss", "val_loss")),
            self.lr_plot: (StickyRange(include_zero=True), ("lr",)),
            self.rate_plot: (StickyRange(include_zero=True), ("rate",)),
        }
        self.following = {plot: True for plot in self.ranges}
        for plot in self.ranges:  # methods, not lambdas holding the view: see _sent_by
            plot.vb.sigRangeChangedManually.connect(self._held_by_hand)
            plot.autoBtn.clicked.connect(self._auto_pressed)
        self._ranged: dict[str, int] = {}  # points of each series its StickyRange has seen
        self.branch_items: list[tuple[pg.PlotItem, Any]] = []  # a fork's parent, drawn behind
        self.redraws = 0
        self.range_changes = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.redraw)
        self._last_redraw = -MIN_GAP_S

    # -- data in ------------------------------------------------------------------------
    def clear(self) -> None:
        self._restart()
        self.set_run_length(None)
        self.redraw()

    def _restart(self) -> None:
        """Empty every series; the y axes follow the new data again, even after a zoom."""
        for curve in self.curves.values():
            curve.clear()
        self._ranged.clear()
        for plot, item in self.branch_items:
            plot.removeItem(item)
        self.branch_items.clear()
        for plot in self.ranges:
            self._follow(plot)

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
        if e.val_loss is not None:
            self.series["val_loss"].append(e.epoch, e.val_loss)
        if e.val_accuracy is not None:
            self.series["val_acc"].append(e.epoch, e.val_accuracy)
        self._schedule()

    def load_metrics(self, stored: MetricSeries) -> None:
        """Show a stored run's metrics (`core.store.metrics.read_series`)."""
        self._restart()
        self.set_run_length(None)
        for key, table, column in METRIC_COLUMNS:
            self.series[key].extend(*stored.points(table, "epoch", column))
        self.redraw()

    def add_history(self, stored: MetricSeries) -> None:
        """A resumed run's curves before the resume, put before the live points (the view
        holds none yet: the first live point comes after them)."""
        for key, table, column in METRIC_COLUMNS:
            self.series[key].extend(*stored.points(table, "epoch", column))
        self._schedule()

    def show_branch(self, parent: MetricSeries, fork_epoch: int,
                    label: str = "parent") -> None:
        """A forked run: draw its parent's curves in grey behind its own, and mark the epoch
        where it branched off."""
        thin = pg.mkPen(BRANCH_COLOR, width=1)
        dashed = pg.mkPen(BRANCH_COLOR, width=1.5, style=Qt.PenStyle.DashLine)
        for plot, table, key, pen in ((self.loss_plot, "steps", "train_loss", thin),
                                      (self.loss_plot, "epochs", "val_loss", dashed),
                                      (self.acc_plot, "steps", "train_accuracy", thin),
                                      (self.acc_plot, "epochs", "val_accuracy", dashed)):
            name = label if key == "train_loss" else None
            item = pg.PlotDataItem(*parent.points(table, "epoch", key), pen=pen, name=name)
            item.setZValue(-10)
            plot.addItem(item)
            self.branch_items.append((plot, item))
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot, self.rate_plot):
            line = pg.InfiniteLine(pos=fork_epoch, angle=90, pen=pg.mkPen(BRANCH_COLOR, width=1,
                                                                          style=Qt.PenStyle.DotLine))
            if plot is self.loss_plot:
                line.label = pg.InfLineLabel(line, text=f"fork @ {fork_epoch}", position=0.9,
                                             color=BRANCH_COLOR)
            plot.addItem(line)
            self.branch_items.append((plot, line))
        self._schedule()

    # -- drawing ------------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._timer.isActive():
            wait = MIN_GAP_S - (time.monotonic() - self._last_redraw)
            self._timer.start(max(REDRAW_MS, int(wait * 1000)))

    def redraw(self) -> None:
        """Hand the new points to their curves (only the growing chunk of each is set) and
        move a y axis only when the data has left it; Qt repaints on its own time."""
        self._timer.stop()
        self._last_redraw = time.monotonic()
        self.redraws += 1
        for key, curve in self.curves.items():
            if key.startswith("val") and curve.dirty:
                curve.set_symbol("o" if curve.n <= MAX_SYMBOLS else None)
            curve.draw()
        for plot, (sticky, keys) in self.ranges.items():
            if not self.following[plot]:
                continue
            fresh = [self.series[k].y[self._ranged.get(k, 0):] for k in keys]
            for k in keys:
                self._ranged[k] = self.series[k].n
            new = sticky.update(*fresh)
            if new is not None:
                plot.setYRange(*new, padding=0)
                self.range_changes += 1
        self._show_empty()

    def _show_empty(self) -> None:
        """A line of text until there is data; the accuracy chart says when a run has none."""
        has_data = self.series["train_loss"].n > 0 or self.series["val_loss"].n > 0
        if has_data != self.placeholder.showing_content:
            self.placeholder.show_content(has_data)
        no_accuracy = has_data and not (self.series["train_acc"].n or self.series["val_acc"].n)
        title = "Accuracy: none (a regression run)" if no_accuracy else "Accuracy"
        if self.acc_plot.titleLabel.text != title:
            self.acc_plot.setTitle(title)

    def _sent_by(self) -> pg.PlotItem | None:
        """The plot whose view box or auto-range button sent the signal being handled. (A
        lambda holding the view, connected to its own items' signals, kept a view without a
        parent alive for good, and the interpreter's exit then tore it down from inside its
        own view box: a segmentation fault after benchmarks/gui_responsiveness.py's work.)"""
        sender = self.sender()
        return next((plot for plot in self.ranges
                     if sender is plot.vb or sender is plot.autoBtn), None)

    def _held_by_hand(self, *_: Any) -> None:
        plot = self._sent_by()
        if plot is not None:
            self._hold(plot)

    def _auto_pressed(self, *_: Any) -> None:
        plot = self._sent_by()
        if plot is not None:
            self._follow(plot)

    def _hold(self, plot: pg.PlotItem) -> None:
        """The user zoomed or panned: leave this plot's range to them."""
        self.following[plot] = False

    def _follow(self, plot: pg.PlotItem) -> None:
        """Follow the data again (a new run, or the plot's auto-range button)."""
        self.following[plot] = True
        self.ranges[plot][0].reset()
        for key in self.ranges[plot][1]:
            self._ranged[key] = 0  # the range starts over from every point
        self._schedule()

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
