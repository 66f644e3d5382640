"""The Inspect tool's pictures: maps (weight images, attribution maps, neuron maps, a layer's
channels) each with its colour scale, tables whose cells' colours carry their values beside
their colour bar, and horizontal bar charts by name. Where colour carries a value there is a
colour bar with the scale's numbers (pyqtgraph's `ColorBarItem`, its axis without SI
prefixes); hovering a map says the value under the pointer (`hovered(text)`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from workbench.gui.tools.inspect.presenter import (
    MapView,
    ValueGrid,
    cell_text,
    scale_ticks,
    tick_text,
)
from workbench.gui.widgets.style import ALERT, GREY, TEXT, WHITE

COLOUR_MAPS = {"diverging": "CET-D1A", "sequential": "viridis", "grey": "CET-L1"}
BAR = 12  # a colour bar's thickness
TITLE = 16  # a map's title row
H_BAR = 56  # a horizontal colour bar with its numbers and label
V_BAR = 74  # a vertical colour bar with its numbers and label


def plain_axis(axis: pg.AxisItem) -> None:
    """No SI prefix on `axis`: 0.002, not 2 with "m". (pyqtgraph 0.14's
    `enableAutoSIPrefix(False)` alone keeps the scale it computes on the way from the range
    the axis has then: a colour bar from 0 to 0.178 read 0 to 178.)"""
    if hasattr(axis, "setSIPrefixEnableRanges"):
        axis.setSIPrefixEnableRanges(())
    axis.enableAutoSIPrefix(False)


def colour_map(scale: str) -> pg.ColorMap:
    return pg.colormap.get(COLOUR_MAPS[scale])


def colour_bar(levels: tuple[float, float], scale: str, label: str, *,
               horizontal: bool = False) -> pg.ColorBarItem:
    """A colour bar with its numbers (no SI prefix: 0.002, not 2 with "m")."""
    bar = pg.ColorBarItem(values=levels, colorMap=colour_map(scale), label=label,
                          interactive=False, orientation="horizontal" if horizontal else
                          "vertical", width=BAR, colorMapMenu=False)
    for side in ("left", "right", "top", "bottom"):
        plain_axis(bar.getAxis(side))
    if horizontal:  # a map's own bar is narrow: a few round values, never overlapping
        bar.axis.setTicks([[(v, tick_text(v)) for v in scale_ticks(*levels)], []])
    return bar


def bar_label(view: MapView) -> str:
    return view.label + (" (ends: that or beyond)" if view.clipped else "")


class MapGrid(pg.GraphicsLayoutWidget):
    """Maps in a grid, `columns` wide, each `side` pixels: one shared colour bar on the
    right (`shared`: every map on the same scale), or each its own under it."""

    hovered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.ci.setContentsMargins(2, 2, 2, 10)  # room for the end ticks of a bar
        self.ci.setSpacing(3)
        self.maps: list[tuple[pg.ViewBox, MapView]] = []
        self.bars: list[pg.ColorBarItem] = []
        self.scene().sigMouseMoved.connect(self._moved)

    def set_maps(self, maps: Sequence[MapView], *, columns: int, side: int,
                 shared: bool) -> None:
        """Draw `maps`, each fitting a `side`-pixel square (a wide one as wide, less
        high)."""
        self.clear()
        self.maps, self.bars = [], []
        columns = max(1, min(columns, len(maps)))
        own_bar = not shared and any(m.scale != "rgb" for m in maps)
        per_row = 2 + (1 if own_bar else 0)  # title, map, (bar)
        images = []
        for k, view in enumerate(maps):
            r, c = divmod(k, columns)
            title = pg.LabelItem(view.title, size="8pt", color=TEXT)
            self.addItem(title, row=per_row * r, col=c)
            box = self.addViewBox(row=per_row * r + 1, col=c, lockAspect=True, invertY=True,
                                  enableMouse=False)
            box.setMenuEnabled(False)
            image = pg.ImageItem(axisOrder="row-major")
            box.addItem(image)
            if view.scale == "rgb":
                image.setImage((np.asarray(view.values) * 255).astype(np.uint8),
                               autoLevels=False, levels=(0, 255))
            else:
                image.setImage(np.asarray(view.values, dtype=np.float64), autoLevels=False,
                               levels=view.levels)
                image.setColorMap(colour_map(view.scale))
                images.append(image)
                if own_bar:
                    bar = colour_bar(view.levels, view.scale, bar_label(view), horizontal=True)
                    self.addItem(bar, row=per_row * r + 2, col=c)
                    bar.setImageItem(image)
                    self.bars.append(bar)
            box.autoRange(padding=0)
            self.maps.append((box, view))
        rows = math.ceil(len(maps) / columns)
        aspect = max((m.values.shape[0] / max(1, m.values.shape[1]) for m in maps),
                     default=1.0)  # height / width
        cell_h = max(24, round(side * min(1.0, aspect)))
        cell_w = max(24, round(side * min(1.0, 1 / aspect)))
        grid = self.ci.layout
        for r in range(rows):
            grid.setRowFixedHeight(per_row * r, TITLE)
            grid.setRowMinimumHeight(per_row * r + 1, cell_h)
            grid.setRowPreferredHeight(per_row * r + 1, cell_h)
            if own_bar:
                grid.setRowFixedHeight(per_row * r + 2, H_BAR)
        for c in range(columns):
            grid.setColumnMinimumWidth(c, min(cell_w, 60))
            grid.setColumnPreferredWidth(c, cell_w)
        if shared and images:
            first = next(m for m in maps if m.scale != "rgb")
            bar = colour_bar(first.levels, first.scale, bar_label(first))
            self.addItem(bar, row=0, col=columns, rowspan=per_row * rows)
            bar.setImageItem(images)
            self.bars.append(bar)
        need = self.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize)  # spacing, margins, axes
        height = max(rows * (cell_h + TITLE + (H_BAR if own_bar else 0)) + 14,
                     math.ceil(need.height()) + 2)
        width = columns * cell_w + (V_BAR if shared and images else 0) + 8
        self.setMinimumSize(max(min(width, 260), math.ceil(need.width()) + 2), height)
        self.setFixedHeight(height)
        self.setMaximumWidth(max(width + 40, 200))

    def _moved(self, pos: QPointF) -> None:
        for box, view in self.maps:
            if box.sceneBoundingRect().contains(pos):
                point = box.mapSceneToView(pos)
                text = view.at(int(math.floor(point.y())), int(math.floor(point.x())))
                if text is not None:
                    self.hovered.emit(text)
                return


def fit_table_height(table: QTableWidget, rows: int, most: int = 12) -> None:
    """A table as high as its rows (up to `most`, then it scrolls)."""
    header = table.horizontalHeader().sizeHint().height()
    scroll = table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(header + min(rows, most) * table.verticalHeader().defaultSectionSize()
                         + scroll + 2 * table.frameWidth() + 2)


class ValueTable(QWidget):
    """A table whose cells' colours carry their values, beside the colour bar that reads
    them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.bar_view = pg.GraphicsLayoutWidget()
        self.bar_view.setBackground("w")
        self.bar_view.setFixedWidth(V_BAR + 12)
        self.bar: pg.ColorBarItem | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.bar_view)
        layout.addStretch(0)
        self.grid: ValueGrid | None = None

    def set_grid(self, grid: ValueGrid, scale: str = "diverging") -> None:
        self.grid = grid
        cmap = colour_map(scale if grid.levels[0] < 0 else "sequential")
        lo, hi = grid.levels
        self.table.clear()
        self.table.setRowCount(len(grid.rows))
        self.table.setColumnCount(len(grid.columns))
        self.table.setHorizontalHeaderLabels(list(grid.columns))
        self.table.setVerticalHeaderLabels(list(grid.rows))
        for (r, c), value in np.ndenumerate(grid.cells):
            item = QTableWidgetItem(cell_text(float(value)))
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            t = (float(grid.colours[r, c]) - lo) / (hi - lo) if hi > lo else 0.5
            colour = cmap.map(min(1.0, max(0.0, t)), mode="qcolor")
            item.setBackground(QBrush(colour))
            item.setForeground(QBrush(QColor(WHITE if colour.lightness() < 110 else TEXT)))
            item.setToolTip(f"{grid.rows[r]}, {grid.columns[c]}: {float(value):.6g}")
            self.table.setItem(r, c, item)
        self.bar_view.clear()
        self.bar = colour_bar(grid.levels, "diverging" if lo < 0 else "sequential", grid.label)
        self.bar_view.addItem(self.bar)
        self.table.resizeColumnsToContents()
        columns = sum(self.table.columnWidth(c) for c in range(self.table.columnCount()))
        self.table.setMaximumWidth(columns + self.table.verticalHeader().sizeHint().width()
                                   + self.table.verticalScrollBar().sizeHint().width()
                                   + 2 * self.table.frameWidth() + 4)
        fit_table_height(self.table, len(grid.rows))
        self.bar_view.setFixedHeight(max(240, self.table.height()))  # its label whole


class NamedBars(pg.PlotWidget):
    """Horizontal bars by name, the first on top, each value written beside its bar; red
    for a positive value, blue for a negative one (or `highlight` in red, the rest grey)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        for side in ("left", "bottom"):
            plain_axis(self.getAxis(side))
        self.showGrid(x=True, y=False, alpha=0.2)
        self.getPlotItem().invertY(True)

    def set_bars(self, names: Sequence[str], values: Sequence[float], title: str, *,
                 highlight: Sequence[bool] | None = None, marks: Sequence[bool] = (),
                 span: tuple[float, float] | None = None, show_names: bool = True) -> None:
        self.clear()
        values = [float(v) for v in values]
        ys = list(range(len(values)))
        if highlight is not None:
            brushes = [pg.mkBrush(ALERT if h else GREY) for h in highlight]
        else:
            brushes = [pg.mkBrush(ALERT if v >= 0 else "#2c7bb6") for v in values]
        self.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.7, width=values, brushes=brushes,
                                     pen=None))
        low = min([0.0, *values]) if span is None else span[0]
        high = max([0.0, *values]) if span is None else span[1]
        room = (high - low) or 1.0
        for y, v in zip(ys, values, strict=True):
            label = pg.TextItem(f"{v:.3g}", color=TEXT, anchor=(0, 0.5) if v >= 0 else (1, 0.5))
            label.setPos(v + (0.01 if v >= 0 else -0.01) * room, y)
            self.addItem(label)
        ticks = [(y, (("✓ " if y < len(marks) and marks[y] else "") + n) if show_names else "")
                 for y, n in zip(ys, names, strict=True)]
        self.getAxis("left").setTicks([ticks])
        self.setTitle(title, size="9pt", color=TEXT)
        right = 0.12 if span is not None else 0.4  # room for the numbers beside the bars
        self.setXRange(low - 0.45 * room * (low < 0), high + right * room * (high > 0),
                       padding=0)
        self.setYRange(-0.6, len(values) - 0.4, padding=0)
        self.setFixedHeight(max(110, 64 + 22 * len(values)))


__all__ = ["MapGrid", "NamedBars", "ValueTable", "colour_bar", "colour_map",
           "fit_table_height", "plain_axis"]
