"""Chart axes tell the truth and stay readable: no hidden scale factor (pyqtgraph's automatic SI
prefix wrote "learning rate (x0.001)" and "weight value (x0.001)"), ticks that say their real
values on log axes (0.001, not "10⁻³" or "6·10"), labels that never overlap at any size (the
Compress frontier read "6·10⁷·10 8·10 9·10 10²"), and colour that carries a value with a
scale. Each check is shown to catch pyqtgraph's own axis on the same chart."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("PySide6")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QRectF  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from workbench.gui.views.axes import (  # noqa: E402
    ColourScale,
    attach_scale,
    axis_problems,
    chart_problems,
    colour_problems,
    linear_strings,
    number_text,
    parse_number,
    plot_widget,
    tick_labels,
)


def test_numbers_are_written_as_they_are():
    assert [number_text(x) for x in (0.001, 0.01, 1, 10, 20, 0.025, 1e-7, 3e5, 12_500, 0.1 + 0.2)
            ] == ["0.001", "0.01", "1", "10", "20", "0.025", "1e-7", "3e5", "12,500", "0.3"]
    assert linear_strings([-0.4, -0.2, 0.0, 0.2], 0.2) == ["-0.4", "-0.2", "0", "0.2"]
    assert linear_strings([0.0, 2e-4, 4e-4], 2e-4) == ["0", "0.0002", "0.0004"]
    assert linear_strings([5e-5, 1e-4, 1.5e-4], 5e-5) == ["5e-5", "1e-4", "1.5e-4"]
    assert linear_strings([0, 25_000, 50_000], 25_000) == ["0", "25,000", "50,000"]
    assert linear_strings([0, 2e-5, 4e-5], 2e-5) == ["0", "2e-5", "4e-5"]
    assert [parse_number(t) for t in ("1e-7", "25,000", "-0.5")] == [1e-7, 25_000, -0.5]
    assert parse_number("10⁻³") is None and parse_number("6·10") is None


def _show(qtbot, plot, size):
    qtbot.addWidget(plot)
    plot.resize(*size)
    plot.show()
    qtbot.waitExposed(plot)
    plot.grab()  # a first paint sizes the axes for their labels
    QApplication.processEvents()
    return plot


def _log_chart(make, x_log: bool, xs, ys, size, qtbot):
    plot = make()
    plot.setLogMode(x=x_log, y=not x_log)
    plot.plot(xs, ys)
    return _show(qtbot, plot, size)


# (what, log on x, xs, ys): the charts whose log axes the issue saw
LOG_CHARTS = [
    ("rate finder", True, np.logspace(-7, 1, 300), np.linspace(2.5, 1.0, 300)),
    ("frontier, a decade", True, np.array([8e6, 2e7, 9e7]), np.array([94.0, 94.5, 95.0])),
    ("frontier, under a decade", True, np.array([55.0, 70.0, 95.0]), np.array([1.0, 2, 3])),
    ("gradient norms", False, np.arange(50.0), np.logspace(-12, 1, 50)),
    ("validation loss", False, np.arange(50.0), np.linspace(0.3, 2.5, 50)),
]


@pytest.mark.parametrize(("what", "x_log", "xs", "ys"), LOG_CHARTS, ids=[c[0] for c in LOG_CHARTS])
@pytest.mark.parametrize("size", [(260, 130), (420, 220), (760, 400)])
def test_log_axes_say_real_values_and_never_overlap(qtbot, what, x_log, xs, ys, size):
    plot = _log_chart(plot_widget, x_log, xs, ys, size, qtbot)
    axis = plot.getAxis("bottom" if x_log else "left")
    labels = tick_labels(axis)
    assert len(labels) >= 2, f"{what}: {[t for _, t in labels]}"
    assert axis_problems(axis) == []
    lo, hi = (min(xs), max(xs)) if x_log else (min(ys), max(ys))
    for rect, text in labels:  # each label is its tick's value, on the data's scale
        value = parse_number(text)
        assert value is not None and lo / 2 <= value <= hi * 2, (what, text)
        centre = rect.center().x() if x_log else rect.center().y()
        log_value = math.log10(value)
        a, b = axis.range
        length = axis.geometry().width() if x_log else axis.geometry().height()
        place = (log_value - a) / (b - a) * length
        assert abs((place if x_log else length - place) - centre) < 1.0, (what, text)


def test_pyqtgraphs_own_log_axis_is_caught(qtbot):
    """The checks fail on the axes the app had: "6·10⁷" labels, overlapping at this width."""
    plot = _log_chart(pg.PlotWidget, True, np.array([8e6, 2e7, 9e7]), np.array([1.0, 2, 3]),
                      (260, 130), qtbot)
    problems = axis_problems(plot.getAxis("bottom"))
    assert any("overlap" in p for p in problems)
    assert any("not a plain number" in p for p in problems)


def test_no_axis_hides_a_scale_factor(qtbot):
    """A weight histogram's values around 1e-4: the ticks say them, the label adds nothing."""
    for make, hidden in ((plot_widget, False), (pg.PlotWidget, True)):
        plot = make()
        plot.plot(np.linspace(-4e-4, 2e-4, 50), np.arange(50.0))
        plot.setLabel("bottom", "weight value")
        _show(qtbot, plot, (420, 220))
        axis = plot.getAxis("bottom")
        problems = axis_problems(axis)
        assert any("hidden scale factor" in p for p in problems) is hidden, problems
        if not hidden:
            assert axis.labelString().endswith("weight value </span>")
            values = [parse_number(t) for _, t in tick_labels(axis)]
            assert values and all(-4e-4 <= v <= 2e-4 for v in values)
            axis.enableAutoSIPrefix(True)  # asking for it changes nothing
            assert axis_problems(axis) == []


def test_tick_labels_leave_room_between_them_on_a_narrow_linear_axis(qtbot):
    plot = plot_widget()
    plot.plot([0, 123_456], [0, 1])
    _show(qtbot, plot, (160, 120))
    labels = tick_labels(plot.getAxis("bottom"))
    assert labels and axis_problems(plot.getAxis("bottom")) == []
    spans = sorted((r.left(), r.right()) for r, _ in labels)
    assert all(b[0] - a[1] >= 5 for a, b in zip(spans, spans[1:], strict=False))


def test_colour_that_carries_a_value_has_a_scale(qtbot):
    """An image's colour without a scale is a problem; a log colour scale drives the image
    and its ticks say the values (a loss of 0.1 to 10, not log10 of it)."""
    plot = plot_widget()
    image = pg.ImageItem(axisOrder="row-major")
    plot.addItem(image)
    losses = np.logspace(-1, 1, 400).reshape(20, 20)
    image.setImage(np.log10(losses))
    image.setRect(QRectF(-1, -1, 2, 2))
    _show(qtbot, plot, (520, 360))
    assert colour_problems(plot.scene().items()) == [
        "an image whose colour carries a value has no scale"]
    scale = attach_scale(plot.getPlotItem(), ColourScale("viridis", "loss", log=True), image)
    scale.set_values(-1.0, 1.0)
    plot.grab()
    QApplication.processEvents()
    assert chart_problems(plot) == []
    assert tuple(image.levels) == (-1.0, 1.0)  # the image's colours are the bar's
    ticks = [parse_number(t) for _, t in tick_labels(scale.axis)]
    assert 0.1 in ticks and 1.0 in ticks and 10.0 in ticks


def test_a_label_or_title_the_chart_cuts_off_is_found(qtbot):
    plot = pg.PlotWidget()  # pyqtgraph's own axis draws the title past the axis's ends
    plot.plot([0, 1], [0, 1])
    plot.setLabel("left", "a title far longer than the axis it names")
    _show(qtbot, plot, (300, 120))
    assert any("its title needs" in p for p in chart_problems(plot))


def test_a_title_longer_than_its_axis_is_cut_with_its_whole_text_in_the_tooltip(qtbot):
    """A short chart (the Health tab on a laptop, under an eight-row Runs list) drew 'dead (%)'
    past the ends of a 34 px axis; now the title ends in "…" and its tooltip says it whole,
    and a chart made taller shows it whole again."""
    title = "a title far longer than the axis it names"
    plot = plot_widget()
    plot.plot([0, 1], [0, 1])
    plot.setLabel("left", title)
    _show(qtbot, plot, (300, 120))
    label = plot.getAxis("left").label
    assert chart_problems(plot) == []
    assert label.toPlainText().strip().endswith("\u2026") and label.toolTip() == title
    plot.resize(300, 600)
    qtbot.waitUntil(lambda: label.toPlainText().strip() == title)
    assert label.toolTip() == "" and chart_problems(plot) == []
