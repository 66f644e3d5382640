"""The Search panel's three plots: the best value so far, the fields' importances and the
trials in parallel coordinates, drawn from a `SearchState`."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from workbench.core.fields import shown
from workbench.core.tools.search import best_so_far
from workbench.gui.tools.search.presenter import SearchState
from workbench.gui.views.axes import ColourScale, attach_scale, carries_colour, plot_widget
from workbench.gui.widgets.style import ACCENT, FAINT, HINT, LABEL_FILL, MUTED, TEXT


def new_plot(left: str, bottom: str) -> pg.PlotWidget:
    plot = plot_widget()
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    plot.setMenuEnabled(False)
    return plot


def draw_best(plot: pg.PlotWidget, state: SearchState) -> None:
    """Each completed trial's value, and the best so far as a line."""
    plot.clear()
    done = state.completed()
    plot.setLabel("left", f"best {state.objective} so far")
    if not done:
        return
    done.sort(key=lambda r: r.number)
    plot.plot([r.number for r in done], [r.value for r in done], pen=None, symbol="o",
              symbolSize=6, symbolBrush=FAINT, symbolPen=None)
    xs, ys = best_so_far(list(state.rows.values()), state.direction)
    plot.plot(xs, ys, pen=pg.mkPen(ACCENT, width=2), stepMode=None, symbol="o",
              symbolSize=7, symbolBrush=ACCENT, symbolPen=None)


def draw_importance(plot: pg.PlotWidget, values: dict[str, float]) -> None:
    """A bar per field, the most important on top, its name and share above it."""
    plot.clear()
    if not values:
        plot.addItem(pg.TextItem("Importances appear once two trials have completed with "
                                 "different results.", color=HINT))
        return
    names = list(values)[::-1]  # the most important on top
    widths = [values[n] for n in names]
    plot.addItem(pg.BarGraphItem(x0=0, y=list(range(len(names))), height=0.5,
                                 width=widths, brush=ACCENT, pen=None))
    for i, name in enumerate(names):  # the name above its bar: long paths stay readable
        label = pg.TextItem(f"{name}   {100 * values[name]:.0f}%", color=TEXT, anchor=(0, 1))
        label.setPos(0, i + 0.28)
        plot.addItem(label)
    plot.setXRange(0, 1, padding=0.02)
    plot.setYRange(-0.5, len(names) - 0.1, padding=0)


def draw_parallel(plot: pg.PlotWidget, state: SearchState) -> None:
    """A line per finished trial across one axis per field and the objective; complete
    trials coloured from worst (dark) to best (yellow) on the colour bar beside them,
    pruned ones grey and dashed."""
    plot.clear()
    names, lines = state.parallel_lines()
    if not lines:
        _show_scale(plot, state, [])
        return
    xs = np.arange(len(names), dtype=float)
    for x, (low, high) in zip(xs, state.parallel_ends(names, lines), strict=True):
        plot.addItem(pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen(MUTED, width=1)))
        for y, text, anchor in ((0.0, low, (0.5, 0)), (1.0, high, (0.5, 1))):
            label = pg.TextItem(text, color=HINT, anchor=anchor, fill=LABEL_FILL)
            label.setPos(x, y)
            plot.addItem(label)
    cmap = pg.colormap.get("viridis")
    for row, ys in lines:  # the best drawn last, on top
        if row.state != "complete":
            plot.plot(xs, ys, pen=pg.mkPen(MUTED, width=1, style=Qt.PenStyle.DashLine))
    sign = 1 if state.direction == "maximize" else -1
    for row, ys in sorted(lines, key=lambda line: line[1][-1] * sign):
        if row.state == "complete":
            t = state.shade(ys[-1], lines)
            plot.plot(xs, ys, pen=pg.mkPen(cmap.map(t, mode="qcolor"), width=2))
    _show_scale(plot, state, [row.value for row, _ys in lines
                              if row.state == "complete" and row.value is not None])
    plot.getAxis("bottom").setTicks([[(i, shown(n)) for i, n in enumerate(names)]])
    plot.setXRange(-0.5, len(names) - 0.5, padding=0)  # room for the end axes' names
    plot.setYRange(-0.08, 1.08, padding=0)


def _show_scale(plot: pg.PlotWidget, state: SearchState, values: list[float]) -> None:
    """The objective's colour bar beside the lines: its values, the best at the yellow end
    (the top when maximizing, the bottom when minimizing); hidden with no complete trial."""
    item = plot.getPlotItem()
    scale = getattr(plot, "objective_scale", None)
    if scale is None:
        scale = attach_scale(item, ColourScale("viridis", "", scale_of="objective"))
        plot.objective_scale = scale
    what = f"{state.objective} (yellow: best)"
    carries_colour(item, "objective")
    cmap = pg.colormap.get("viridis")  # shared: reversed as a copy
    scale.setColorMap(cmap if state.direction == "maximize" else cmap.getSubset(1.0, -1.0))
    scale.getAxis("left").setLabel(what)
    finite = [v for v in values if math.isfinite(v)]
    scale.setVisible(bool(finite))
    if finite:
        scale.set_values(min(finite), max(finite))
