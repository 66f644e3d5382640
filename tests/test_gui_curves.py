"""Live curves: the y axes hold still while the data fits them (each move re-renders an axis),
follow the data when it leaves, and leave a plot alone once the person zooms it; long curves are
drawn in chunks, a finished chunk set once, and downsampled to the pixels they span."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("PySide6")

from workbench.core.training.events import EpochEnded, Progress  # noqa: E402
from workbench.gui.views.curves import (  # noqa: E402
    CHUNK,
    REDRAW_MS,
    CurvesView,
    LiveCurve,
    StickyRange,
)

STEPS = 100


def progress(i: int, loss: float, rate: float = 1000.0) -> Progress:
    return Progress(epoch=i // STEPS, step=i % STEPS, steps_per_epoch=STEPS, global_step=i,
                    total_steps=10 * STEPS, train_loss=loss, train_accuracy=0.5, lr=0.01,
                    samples_per_sec=rate, elapsed=i / 100, eta=1.0)


def y_range(plot) -> tuple[float, float]:
    return tuple(plot.vb.viewRange()[1])


def test_sticky_range_holds_while_the_data_fits_and_grows_with_headroom():
    sticky = StickyRange(headroom=0.1)
    assert sticky.update(np.array([1.0, 2.0])) == pytest.approx((0.9, 2.1))
    assert sticky.update(np.array([1.0, 2.0, 1.5, 2.05])) is None  # still inside
    low, high = sticky.update(np.array([1.0, 2.0, 3.0]))  # left at the top: grows
    assert low == pytest.approx(0.8) and high == pytest.approx(3.2)
    sticky.reset()
    assert sticky.update(np.array([5.0])) is not None


def test_sticky_range_from_zero_ignores_non_finite_values_and_widens_a_flat_line():
    sticky = StickyRange(include_zero=True)
    assert sticky.update(np.array([2.0, math.nan, math.inf, 1.0])) == pytest.approx((0.0, 2.2))
    assert StickyRange().update(np.array([math.nan])) is None
    low, high = StickyRange().update(np.array([3.0, 3.0]))
    assert low < 3.0 < high
    assert StickyRange(include_zero=True).update(np.array([-1.0, 1.0]))[0] < -1.0


def test_live_curves_move_their_axes_rarely_and_always_show_the_data(qtbot):
    view = CurvesView()
    qtbot.addWidget(view)
    view.set_run_length(10)
    rng = np.random.default_rng(0)
    losses = []
    for i in range(1, 400):
        loss = 2.0 / (1 + i / 20) + abs(rng.normal()) * 0.05
        losses.append(loss)
        view.add_progress(progress(i, loss, rate=1000 + rng.normal() * 50))
        view.redraw()
    assert view.redraws >= 399
    assert view.range_changes <= 12  # pyqtgraph's auto-range would move on most redraws
    low, high = y_range(view.loss_plot)
    assert low <= min(losses) and max(losses) <= high
    assert low == pytest.approx(0.0, abs=1e-9)
    rate_low, rate_high = y_range(view.rate_plot)
    assert rate_low == pytest.approx(0.0, abs=1e-9) and rate_high > 1000


def test_a_zoomed_plot_keeps_its_range_until_its_auto_button(qtbot):
    view = CurvesView()
    qtbot.addWidget(view)
    for i in range(1, 50):
        view.add_progress(progress(i, 1.0))
    view.add_epoch(EpochEnded(epoch=1, global_step=50, train_loss=1.0, train_accuracy=0.5,
                              val_loss=0.9, val_accuracy=0.6, lr=0.01, grad_norm=1.0,
                              samples_per_sec=1000.0, epoch_seconds=1.0, elapsed=1.0))
    view.redraw()
    view.loss_plot.vb.setYRange(0.95, 1.05, padding=0)
    view.loss_plot.vb.sigRangeChangedManually.emit([False, True])  # what a wheel zoom sends
    view.add_progress(progress(50, 5.0))  # far outside the zoomed range
    view.redraw()
    assert y_range(view.loss_plot) == pytest.approx((0.95, 1.05))
    view.loss_plot.autoBtn.clicked.emit(view.loss_plot.autoBtn)
    view.redraw()
    low, high = y_range(view.loss_plot)
    assert low <= 0.9 and high >= 5.0
    view.clear()  # a new run follows the data again on every plot
    assert all(view.following.values())


def test_live_redraws_are_spaced_but_the_first_comes_at_once(qtbot):
    view = CurvesView()
    qtbot.addWidget(view)
    view.add_progress(progress(1, 1.0))
    assert view._timer.remainingTime() <= 2 * REDRAW_MS  # nothing drawn yet: draw soon
    qtbot.waitUntil(lambda: view.redraws == 1, timeout=2000)
    view.add_progress(progress(2, 0.9))
    assert view._timer.remainingTime() > 4 * REDRAW_MS  # just drawn: the next waits its turn
    qtbot.waitUntil(lambda: view.redraws == 2, timeout=3000)
    assert view.point_count("train_loss") == 2


def _plot():
    import pyqtgraph as pg

    widget = pg.PlotWidget()
    widget.resize(600, 400)
    return widget, widget.plotItem


def _points(curve):
    """Every chunk's points in order, the shared boundary point once."""
    xs: list[float] = []
    for i, item in enumerate(curve.items):
        x = list(item.xData)
        xs += x if i == 0 else x[1:]
    return xs


def test_a_live_curve_sets_a_finished_chunk_once_and_keeps_the_line_unbroken(qtbot):
    widget, plot = _plot()
    qtbot.addWidget(widget)
    curve = LiveCurve(plot, chunk=8)
    curve.extend(np.arange(30.0), np.arange(30.0) ** 0.5)
    assert curve.dirty and curve.draw() and not curve.dirty
    assert len(curve.items) == 4  # 0-8, 8-16, 16-24, 24-29: neighbours share a point
    assert _points(curve) == list(np.arange(30.0))
    finished = [item.xData for item in curve.items[:-1]]
    for i in range(30, 45):
        curve.append(float(i), float(i) ** 0.5)
    curve.draw()
    assert [item.xData for item in curve.items[:3]] == finished  # the very same arrays
    assert not curve.draw()  # nothing new: nothing is set
    assert _points(curve) == list(np.arange(45.0))
    assert all(item.opts["skipFiniteCheck"] and item.opts["connect"] == "all"
               for item in curve.items)


def test_non_finite_values_break_the_line_and_a_filter_drops_points(qtbot):
    widget, plot = _plot()
    qtbot.addWidget(widget)
    curve = LiveCurve(plot, chunk=4)
    curve.extend([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, math.nan, 3.0, 4.0, 5.0])
    curve.draw()
    first, second = curve.items
    assert first.opts["connect"] == "finite" and not first.opts["skipFiniteCheck"]
    assert second.opts["connect"] == "all"  # a chunk without them skips the check
    log = LiveCurve(plot, keep=lambda x, y: np.isfinite(y) & (y > 0))
    log.extend([0.0, 1.0, 2.0, 3.0], [1.0, 0.0, -2.0, math.inf])
    log.append(4.0, 0.5)
    assert list(log.series.x) == [0.0, 4.0]
    log.draw()
    curve.clear()
    assert len(curve.items) == 1 and curve.items[0].xData is None and curve.n == 0
    curve.append(0.0, 1.0)
    curve.draw()
    assert list(curve.items[0].xData) == [0.0]


def test_a_long_run_redraws_only_its_growing_chunks_downsampled_to_the_pixels(qtbot):
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    points = 100_000
    view.set_run_length(points / 1000)
    rng = np.random.default_rng(1)
    for series in view.series.values():
        series.extend(np.arange(points) / 1000, 1 + np.abs(rng.normal(size=points)))
    view.redraw()
    for curve in view.curves.values():
        assert len(curve.items) == -(-(points - 1) // CHUNK)
    finished = {key: [item.xData for item in curve.items[:-1]]
                for key, curve in view.curves.items()}
    for series in view.series.values():  # what add_progress appends, a step later
        series.append(points / 1000, 1.5)
    view.redraw()
    for key in ("train_loss", "train_acc", "lr", "rate"):
        curve = view.curves[key]
        assert [item.xData for item in curve.items[:-1]] == finished[key]
        assert curve.n == points + 1
    width = view.loss_plot.vb.width()
    drawn = sum(len(item.curve.xData) for item in view.curves["train_loss"].items)
    assert drawn <= 4 * width + 4 * len(view.curves["train_loss"].items)  # min and max a pixel


def test_health_curves_grow_per_layer_and_start_over_for_a_new_network(qtbot):
    from workbench.core.training.events import Health, LayerHealth
    from workbench.gui.views.health import HealthView

    view = HealthView()
    qtbot.addWidget(view)

    def health(step, names, norm=1.0):
        layers = tuple(LayerHealth(n, norm, (1.0, 2.0), (0.0, 1.0, 2.0), 0.1) for n in names)
        return Health(step, step / 10, layers)

    for step in range(1, 41):
        view.add_health(health(step, ["0", "2"], norm=0.0 if step == 5 else 1.0 / step))
    view.redraw()
    assert [c.n for c in view.curves] == [40, 40]
    assert min(view.curves[0].series.y) > 0  # a zero norm sits at the bottom of the log axis
    view.add_health(health(1, ["0", "2", "4"]))
    view.redraw()
    assert [c.n for c in view.curves] == [1, 1, 1] and view.layer_box.count() == 3


def test_dead_relu_bars_name_the_relu_layers_as_the_editor_numbers_them(qtbot, tmp_path):
    """A real run of Flatten, Linear, ReLU, Linear, ReLU, Linear: the editor's layers 3 and 5
    are the ReLUs whose units the bars count (they were labelled 2 and 4, the Linear layers
    before them); the histogram's layers are named as the editor's rows."""
    from workbench import spec as specmod
    from workbench.core.store.runs import RunStore
    from workbench.core.training.events import Health
    from workbench.core.training.loop import Trainer
    from workbench.core.training.monitors import HealthMonitor
    from workbench.gui.views.axes import chart_problems, tick_labels
    from workbench.gui.views.health import HealthView

    spec = specmod.from_dict({
        "name": "mlp", "data": {"name": "mnist_small", "val_fraction": 0.1},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 16},
                             {"type": "ReLU"}, {"type": "Linear", "out": 16},
                             {"type": "ReLU"}, {"type": "Linear", "out": 10}]},
        "train": {"epochs": 1, "batch_size": 256, "seed": 0}})
    events = Trainer(spec, runs=RunStore(tmp_path), callbacks=[HealthMonitor(min_interval=0)],
                     threads=1).events()
    view = HealthView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    for event in events:
        if isinstance(event, Health):
            view.add_health(event)
    view.redraw()
    view.grab()
    assert [t for _, t in tick_labels(view.dead_plot.getAxis("bottom"))] == ["3 ReLU", "5 ReLU"]
    assert [view.layer_box.itemText(i) for i in range(view.layer_box.count())] == [
        "layer 2 (Linear)", "layer 4 (Linear)", "layer 6 (Linear)"]
    assert chart_problems(view) == []
