"""The Search panel's three plots: the best value so far, the fields' importances and the
trials in parallel coordinates, drawn from a `SearchState`."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from workbench.core.fields import shown
from workbench.core.tools.search import best_so_far
from workbench.gui.tools.search.presenter import SearchState
from workbench.gui.widgets.style import ACCENT, FAINT, HINT, LABEL_FILL, MUTED, TEXT


def new_plot(left: str, bottom: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)
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
    trials coloured from worst (dark) to best (yellow), pruned ones grey and dashed."""
    plot.clear()
    names, lines = state.parallel_lines()
    if not lines:
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
    plot.getAxis("bottom").setTicks([[(i, shown(n)) for i, n in enumerate(names)]])
    plot.setXRange(-0.3, len(names) - 0.7, padding=0)
    plot.setYRange(-0.08, 1.08, padding=0)
