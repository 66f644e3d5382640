"""Every chart's axes: real values on the ticks, no hidden scale factor, no overlapping labels,
and a colour scale for colour that carries a value.

pyqtgraph's own axis divides the values by an SI factor it names only at the label's end
("learning rate (x0.001)", ticks 0.001..100 meaning 1e-6..0.1), writes log ticks as
"6·10", and labels a log axis's minor ticks whether they fit or not ("6·10⁷·10 8·10").
`ValueAxis` never scales, writes each tick as the number it is (0.001, 0.01, 20, 1e-7), and
decides per draw which labels fit: the main level's labels thinned evenly (every second
decade, every second step) until none touches its neighbour, a finer level labelled only
when all its labels fit, a log axis's 2..9 marks unlabelled unless there is room. Every
chart of the app is made here (`plot_widget`, `add_plot`, `ColourScale`), and
`chart_problems` measures what every axis under a widget draws and whether its colours have
a scale, for the layout test, the charts' test and the gallery.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter, QPicture
from PySide6.QtWidgets import QGraphicsView, QWidget

GAP_ALONG_X = 6.0  # px between two labels side by side (about a space)
GAP_ALONG_Y = 1.0  # px between two labels one above the other
SIDES = ("left", "bottom", "right", "top")
END_ROOM = 9  # px above and below a colour bar for half its end labels
_LOG_MINOR = tuple(math.log10(m) for m in range(2, 10))
_LOG_LOOSE = (math.log10(2), math.log10(5))  # 1, 2, 5, 10: labelled before 3, 4, 6…


# -- numbers as a person reads them ---------------------------------------------------------
def number_text(x: float, *, group: bool = True) -> str:
    """`x` in the fewest significant digits that still say it (7 at most): 0.001, 20, 0.025,
    1e-7, 3e5; thousands grouped from 10,000 when `group`."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    for sig in range(1, 8):
        text = f"{x:.{sig}g}"
        if math.isclose(float(text), x, rel_tol=1e-6):
            break
    exponent = math.floor(math.log10(abs(float(text))))
    if -4 <= exponent < 5:
        decimals = max(0, sig - 1 - exponent)
        return f"{x:,.{decimals}f}" if group and abs(x) >= 10_000 else f"{x:.{decimals}f}"
    mantissa = text.split("e")[0]
    return f"{mantissa}e{exponent}"


def linear_strings(values: Sequence[float], spacing: float) -> list[str]:
    """Ticks `spacing` apart, all with the same number of decimals (0.0 0.5 1.0); steps under
    0.0001 or values from 1e7 in scientific notation (2.5e-5), never an unnamed factor."""
    if not len(values):
        return []
    spacing = abs(spacing) or 1.0
    largest = max(abs(v) for v in values)
    if spacing >= 1e-4 and largest < 1e7:  # 0.0005 0.001 0.0015: still plain decimals
        decimals = min(9, max(0, math.ceil(-math.log10(spacing) - 1e-9)))
        out = []
        for v in values:
            if abs(v) < spacing * 1e-6:  # zero, -0.0 and rounding noise: "0"
                out.append("0")
                continue
            out.append(f"{v:,.{decimals}f}" if largest >= 10_000 else f"{v:.{decimals}f}")
        return out
    return [_scientific(0.0 if abs(v) < spacing * 1e-6 else v, spacing) for v in values]


def _scientific(x: float, spacing: float) -> str:
    """`x` as mantissa and exponent (5e-5, 1.5e-4), as precise as ticks `spacing` apart need:
    every tick of an axis in the one notation, not 0.0001 beside 5e-5."""
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    digits = max(0, exponent - math.floor(math.log10(spacing)))
    mantissa = f"{x / 10.0 ** exponent:.{digits}f}".rstrip("0").rstrip(".")
    if mantissa in ("10", "-10"):  # rounding carried over: 9.99e-5 -> 1e-4
        mantissa, exponent = mantissa[:-1], exponent + 1
    return f"{mantissa}e{exponent}"


def parse_number(text: str) -> float | None:
    """A tick label's value (None: not a plain number, e.g. "10²", "6·10" or a name)."""
    cleaned = text.replace(",", "").replace("\u2212", "-").strip()
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?", cleaned):
        return None
    return float(cleaned)


# -- the axis -------------------------------------------------------------------------------
@dataclass
class _Fit:
    """What one draw of an axis has decided so far: the painter that measures text, the
    along-axis spans already labelled, and the tick level being labelled."""

    painter: QPainter
    level: int = 0
    taken: list[tuple[float, float]] = field(default_factory=list)


class ValueAxis(pg.AxisItem):
    """An axis that shows real values: no SI factor, log ticks as numbers, labels that fit."""

    def __init__(self, orientation: str, **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self.autoSIPrefix = False
        self._fit: _Fit | None = None

    # no factor, ever: the label says what the ticks say
    def enableAutoSIPrefix(self, enable: bool = True) -> None:  # noqa: N802 (pyqtgraph's)
        super().enableAutoSIPrefix(False)

    def updateAutoSIPrefix(self) -> None:  # noqa: N802 (pyqtgraph's)
        self.autoSIPrefixScale = 1.0
        self.labelUnitPrefix = ""
        self._updateLabel()

    # -- a title that fits ----------------------------------------------------------------
    def resizeEvent(self, ev: Any = None) -> None:  # noqa: N802 (pyqtgraph's)
        self._fit_title()
        super().resizeEvent(ev)

    def _updateLabel(self) -> None:  # noqa: N802 (pyqtgraph's)
        super()._updateLabel()
        self._fit_title()
        super().resizeEvent()

    def _fit_title(self) -> None:
        """The axis's title whole when the axis is long enough, else cut with "…" and whole
        in its tooltip (a short chart on a laptop screen): never drawn past the axis's ends."""
        label = self.label
        if label is None or not self.labelText:
            return
        full = self.labelString()
        label.setHtml(full)
        label.setToolTip("")
        length = self.size().height() if self.orientation in ("left", "right") \
            else self.size().width()
        if length <= 0 or _text_extent(label).width() <= length:
            return
        text = self.labelText
        for keep in range(len(text) - 1, 0, -1):
            label.setHtml(full.replace(text, html.escape(text[:keep].rstrip()) + "\u2026", 1))
            if _text_extent(label).width() <= length:
                break
        label.setToolTip(text)

    # -- which ticks ----------------------------------------------------------------------
    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[Any]:  # noqa: N802
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        # a log axis keeps its 2s and 5s whatever `maxTickLevel` says: a decade or two with
        # only their 1s is a chart with one label
        return log_ticks(minVal, maxVal, size, self.tickSpacing)

    # -- what they say, and which of them are said ----------------------------------------
    def tickStrings(self, values: list[float], scale: float,  # noqa: N802 (pyqtgraph's)
                    spacing: float) -> list[str]:
        if self.logMode:
            strings = [number_text(10.0 ** v) for v in values]
        else:
            strings = linear_strings([v * scale for v in values], spacing * scale)
        if self._fit is None:
            return strings
        level = self._fit.level
        self._fit.level += 1
        return self._label_level(level, values, strings, spacing)

    def generateDrawSpecs(self, p: QPainter) -> Any:  # noqa: N802 (pyqtgraph's)
        self._fit = _Fit(p)
        try:
            specs = super().generateDrawSpecs(p)
        finally:
            self._fit = None
        if specs is None:
            return None
        axis_spec, tick_specs, text_specs = specs
        return axis_spec, tick_specs, self._without_overlaps(text_specs)

    def _along(self) -> tuple[float, float, float, bool]:
        """The axis's length, the span its labels may take (its bounding rectangle, as
        pyqtgraph drops a label outside it, within what its view shows), in local pixels
        along the axis, and whether the axis is vertical."""
        bounds = self.mapRectFromParent(self.geometry())
        area = self.boundingRect()
        scene = self.scene()
        views = [v for v in scene.views() if v.isVisible()] if scene is not None else []
        if views:  # and what the view shows of it: a label past the view's edge is cut
            seen = views[0].mapToScene(views[0].viewport().rect()).boundingRect()
            area = area.intersected(self.mapRectFromScene(seen))
        vertical = self.orientation in ("left", "right")
        length = bounds.height() if vertical else bounds.width()
        low, high = (area.top(), area.bottom()) if vertical else (area.left(), area.right())
        return length, low, high, vertical

    def _position(self, v: float, length: float, vertical: bool) -> float:
        lo, hi = self.range
        span = (hi - lo) or 1.0
        x = (v - lo) / span * length
        return length - x if vertical else x

    def _extent(self, text: str, vertical: bool) -> float:
        assert self._fit is not None
        rect = self._fit.painter.boundingRect(QRectF(0, 0, 100, 100),
                                              Qt.AlignmentFlag.AlignCenter, text)
        return rect.height() * 0.8 if vertical else rect.width()

    def _label_level(self, level: int, values: list[float], strings: list[str],
                     spacing: float | None) -> list[str]:
        """The labels of one tick level that fit: "" for the others (their ticks stay)."""
        assert self._fit is not None
        length, low, high, vertical = self._along()
        gap = GAP_ALONG_Y if vertical else GAP_ALONG_X
        spans: list[tuple[float, float] | None] = []
        for v, s in zip(values, strings, strict=True):
            x = self._position(v, length, vertical)
            half = self._extent(s, vertical) / 2
            inside = -0.5 <= x <= length + 0.5 and low <= x - half and x + half <= high
            spans.append((x - half, x + half) if inside else None)
        keys = _grid_keys(values, spacing, self.logMode)
        if level == 0:
            chosen = _thinned(spans, keys, self._fit.taken, gap)
        else:
            chosen = _whole_level(spans, values, self._fit.taken, gap,
                                  greedy=self.logMode and spacing is not None)
        for i in chosen:
            span = spans[i]
            assert span is not None
            self._fit.taken.append(span)
        return [s if i in chosen else "" for i, s in enumerate(strings)]

    def _without_overlaps(self, text_specs: list[Any]) -> list[Any]:
        """The labels drawn: none empty, none touching one drawn before it (a backstop; the
        levels were already chosen to fit)."""
        vertical = self.orientation in ("left", "right")
        kept: list[Any] = []
        spans: list[tuple[float, float]] = []
        for rect, flags, text in text_specs:
            if not text:
                continue
            span = (rect.top(), rect.bottom()) if vertical else (rect.left(), rect.right())
            if any(span[0] < b and a < span[1] for a, b in spans):
                continue
            spans.append(span)
            kept.append((rect, flags, text))
        return kept


def log_ticks(lo: float, hi: float, size: float,
              spacing: Any) -> list[tuple[float | None, list[float]]]:
    """Tick levels of a log axis over log10 values lo..hi: the decades, then 2 and 5 times
    them, then the other multiples; across too little of a decade for that to give two
    ticks, evenly spaced real values (60 70 80 90 100)."""
    lo, hi = sorted((lo, hi))
    eps = 1e-9 * max(1.0, abs(lo), abs(hi))
    decades = [float(d) for d in range(math.ceil(lo - eps), math.floor(hi + eps) + 1)]

    def multiples(logs: Sequence[float]) -> list[float]:
        return [d + m for d in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in logs
                if lo - eps <= d + m <= hi + eps]

    loose = multiples(_LOG_LOOSE)
    if len(decades) + len(loose) >= 2:
        rest = multiples([m for m in _LOG_MINOR if m not in _LOG_LOOSE])
        return [(1.0, decades), (None, loose), (None, rest)]
    a, b = 10.0 ** lo, 10.0 ** hi
    levels: list[tuple[float | None, list[float]]] = []
    seen: list[float] = []
    for step, offset in spacing(a, b, size):
        start = math.ceil((a - offset) / step) * step + offset
        reals = [start + i * step for i in range(int((b - start) / step) + 1)]
        fresh = [math.log10(r) for r in reals
                 if r > 0 and not any(math.isclose(r, s, rel_tol=1e-9) for s in seen)]
        seen += reals
        levels.append((step, fresh))
    return levels


def _grid_keys(values: Sequence[float], spacing: float | None, log: bool) -> list[int]:
    """Each tick's place on its level's grid, so thinning keeps round values (0, 2, 4 or
    1e-6, 1e-4, 1e-2, not 1e-5 by chance)."""
    if log and spacing == 1.0:  # decades: the exponent
        return [round(v) for v in values]
    if log and spacing:  # evenly spaced real values
        return [round(10.0 ** v / spacing) for v in values]
    if spacing:
        return [round(v / spacing) for v in values]
    return list(range(len(values)))


def _fits(spans: Iterable[tuple[float, float]], taken: Sequence[tuple[float, float]],
          gap: float) -> bool:
    placed = list(taken)
    for a, b in sorted(spans):
        if any(a < d + gap and c < b + gap for c, d in placed):
            return False
        placed.append((a, b))
    return True


def _thinned(spans: Sequence[tuple[float, float] | None], keys: Sequence[int],
             taken: Sequence[tuple[float, float]], gap: float) -> set[int]:
    """The main level: every label when they fit, else every second, third… on the grid."""
    inside = [i for i, s in enumerate(spans) if s is not None]
    for stride in range(1, max(2, len(inside) + 1)):
        chosen = {i for i in inside if keys[i] % stride == 0}
        if not chosen and inside:
            chosen = {inside[0]}
        if _fits((spans[i] for i in chosen), taken, gap):  # type: ignore[misc]
            return chosen
    return set()


def _whole_level(spans: Sequence[tuple[float, float] | None], values: Sequence[float],
                 taken: Sequence[tuple[float, float]], gap: float, *,
                 greedy: bool = False) -> set[int]:
    """A finer level: all its labels or none (evenly spaced labels, or none between the
    coarser ones; a log axis's 2s and 5s, then its other multiples). With `greedy` (a log
    axis over evenly spaced real values) each that fits from the low end, as the marks
    crowd towards the top where labels do not fit."""
    inside = [i for i, s in enumerate(spans) if s is not None]
    if inside and _fits((spans[i] for i in inside), taken, gap):  # type: ignore[misc]
        return set(inside)
    if not greedy:
        return set()
    placed = list(taken)
    greedy = set()
    for i in sorted(inside, key=lambda i: values[i]):
        span = spans[i]
        assert span is not None
        if _fits([span], placed, gap):
            placed.append(span)
            greedy.add(i)
    return greedy


# -- charts made with these axes ------------------------------------------------------------
def value_axes(sides: Sequence[str] = ("left", "bottom")) -> dict[str, ValueAxis]:
    """A `ValueAxis` for each of `sides` (pyqtgraph shows every axis it is given)."""
    return {side: ValueAxis(side) for side in sides}


def plot_widget(parent: QWidget | None = None, **kwargs: Any) -> pg.PlotWidget:
    """A white `pg.PlotWidget` whose axes are `ValueAxis`."""
    widget = pg.PlotWidget(parent, background="w", axisItems=value_axes(), **kwargs)
    _quiet_hidden_axes(widget.getPlotItem())
    return widget


def add_plot(layout: pg.GraphicsLayout, **kwargs: Any) -> pg.PlotItem:
    """`layout.addPlot` with `ValueAxis` axes."""
    plot = layout.addPlot(axisItems=value_axes(), **kwargs)
    _quiet_hidden_axes(plot)
    return plot


def _quiet_hidden_axes(plot: pg.PlotItem) -> None:
    """The hidden top and right axes stop looking for an SI prefix: pyqtgraph's own axes
    lay their (empty) title out again on every change of range, 30 ms of a redraw as the
    data grew (py-spy, beside a training run)."""
    for side in ("top", "right"):
        axis = plot.getAxis(side)
        if not isinstance(axis, ValueAxis):
            axis.enableAutoSIPrefix(False)


class ColourScale(pg.ColorBarItem):
    """A colour bar beside a chart: what the colour means (`label`) and its values on real
    ticks (`log`: the colour is log10 of a value and the ticks say the value itself).
    `scale_of` names what it is the scale of (`colour_problems` matches it to a chart's
    `carries_colour`). Not adjustable: it is a key, not a control."""

    def __init__(self, colour_map: Any, label: str, *, log: bool = False,
                 scale_of: str = "", width: int = 14) -> None:
        super().__init__(colorMap=colour_map, interactive=False, width=width,
                         colorMapMenu=False)
        self.setAxisItems(value_axes(SIDES))
        for side in SIDES:  # a frame, as ColorBarItem draws it; values on the right only
            axis = self.getAxis(side)
            axis.setZValue(0.5)
            if side != "right":
                axis.setTicks([])
                axis.setStyle(showValues=False)
        self.axis = self.getAxis("right")
        # the values at the bar's two ends are the ones a reader wants: room for their
        # labels above and below the bar, inside the scale's own rectangle
        self.layout.setContentsMargins(0, END_ROOM, 0, END_ROOM)
        self.axis.setStyle(hideOverlappingLabels=END_ROOM)
        self.axis.unlinkFromView()
        self.axis.setLogMode(log)
        self.axis.setRange(*self.values)
        self.getAxis("left").setLabel(label)
        self.setProperty("scaleOf", scale_of)
        self.setMenuEnabled(False)

    def set_values(self, low: float, high: float) -> None:
        """The values at the bar's two ends (a flat span is widened a little)."""
        if not (math.isfinite(low) and math.isfinite(high)):
            return
        if high <= low:
            high = low + (abs(low) * 1e-3 or 1e-3)
        self.setLevels((low, high))


def attach_scale(plot: pg.PlotItem, scale: ColourScale,
                 image: pg.ImageItem | None = None) -> ColourScale:
    """Put `scale` to the right of `plot`; with `image`, the scale sets its colours and
    follows its levels."""
    if image is not None:
        scale.setImageItem(image)
    plot.layout.addItem(scale, 2, 5)
    plot.layout.setColumnFixedWidth(4, 5)  # a little room between the chart and the bar
    return scale


def carries_colour(plot: pg.PlotItem, what: str) -> None:
    """Say that the colour of `plot`'s lines or points stands for `what` (a value): the
    chart then needs a `ColourScale` with the same `scale_of` beside it."""
    plot.setProperty("colourCarries", what)


def declare_key(item: Any, key: str) -> None:
    """Say that `item`'s colours are categories named by a legend shown beside it (`key`
    says which), so it needs no colour bar."""
    item.setProperty("colourKey", key)


# -- what an axis draws, measured (the layout test and the gallery) -------------------------
def tick_labels(axis: pg.AxisItem) -> list[tuple[QRectF, str]]:
    """The tick labels `axis` draws now, with their rectangles, as its paint would."""
    picture = QPicture()
    painter = QPainter(picture)
    try:
        if axis.style["tickFont"] is not None:
            painter.setFont(axis.style["tickFont"])
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    if specs is None:
        return []
    return [(QRectF(rect), text) for rect, _flags, text in specs[2] if text]


def axis_problems(axis: pg.AxisItem, where: str = "") -> list[str]:
    """What is false or unreadable on `axis`: a hidden factor, labels that overlap, a tick
    that is not a plain number (numeric axes), a log tick that is not its value."""
    if not axis.isVisible() or not axis.style.get("showValues", True):
        return []
    name = f"{where}{axis.orientation} axis {axis.labelText!r}"
    problems = []
    label = axis.labelString()
    if getattr(axis, "autoSIPrefixScale", 1.0) != 1.0 or re.search(r"\(x[0-9.e+-]+\)", label):
        problems.append(f"{name}: a hidden scale factor ({label})")
    labels = tick_labels(axis)
    vertical = axis.orientation in ("left", "right")
    spans = sorted(((r.top(), r.bottom()) if vertical else (r.left(), r.right()), t)
                   for r, t in labels)
    for (a, ta), (b, tb) in zip(spans, spans[1:], strict=False):
        if b[0] < a[1] - 0.5:
            problems.append(f"{name}: tick labels {ta!r} and {tb!r} overlap")
    if axis._tickLevels is None:  # numbers, not names set with setTicks
        for _rect, text in labels:
            if parse_number(text) is None:
                problems.append(f"{name}: the tick {text!r} is not a plain number")
    return problems


def colour_problems(scene_items: Iterable[Any], where: str = "") -> list[str]:
    """Colour that carries a value without its scale: an image with no colour bar driving it
    (nor a key named with `declare_key`), a chart that declares its colour with no scale."""
    items = list(scene_items)
    bars = [i for i in items if isinstance(i, pg.ColorBarItem) and i.isVisible()]
    driven = {id(ref()) for bar in bars for ref in bar.img_list if ref() is not None}
    problems = []
    scaled = {bar.property("scaleOf") for bar in bars}
    for item in items:
        if (isinstance(item, pg.ImageItem) and item.isVisible() and item.image is not None
                and id(item) not in driven and not item.property("colourKey")):
            problems.append(f"{where}an image whose colour carries a value has no scale")
        carries = item.property("colourCarries") if isinstance(item, pg.PlotItem) else None
        if carries and item.isVisible() and carries not in scaled:
            problems.append(f"{where}the colour of the lines ({carries}) has no scale")
    return problems


def _text_extent(label: Any) -> QRectF:
    """A text item's rectangle without its document's margin (empty space around the text)."""
    margin = label.document().documentMargin()
    return label.boundingRect().adjusted(margin, margin, -margin, -margin)


def cut_problems(axis: pg.AxisItem, view: QGraphicsView, where: str = "") -> list[str]:
    """What of `axis` its view cuts off: its title longer than the axis, or a tick label or
    the title outside the view's visible area."""
    name = f"{where}{axis.orientation} axis {axis.labelText!r}"
    visible = QRectF(view.viewport().rect()).adjusted(-1, -1, 1, 1)

    def shown(rect: QRectF) -> bool:
        return visible.contains(view.mapFromScene(rect).boundingRect().toRectF())

    problems = []
    if axis.label.isVisible() and axis.labelText:
        length = axis.geometry().height() if axis.orientation in ("left", "right") \
            else axis.geometry().width()
        needed = _text_extent(axis.label).width()
        if needed > length + 1:
            problems.append(f"{name}: its title needs {needed:.0f} px, the axis is "
                            f"{length:.0f} px long: it is cut")
        elif not shown(axis.label.mapRectToScene(_text_extent(axis.label))):
            problems.append(f"{name}: its title lies partly outside the chart")
    for rect, text in tick_labels(axis):
        if not shown(axis.mapRectToScene(rect)):
            problems.append(f"{name}: the tick {text!r} lies partly outside the chart")
    return problems


def chart_problems(root: QWidget, where: str = "") -> list[str]:
    """Every visible chart under `root`: its axes' problems and its colours' scales."""
    problems: list[str] = []
    views = [w for w in [root, *root.findChildren(QGraphicsView)]
             if isinstance(w, QGraphicsView) and w.isVisible() and w.scene() is not None]
    for view in views:
        items = view.scene().items()
        for item in items:
            if isinstance(item, pg.AxisItem) and item.isVisible():
                problems += axis_problems(item, where) + cut_problems(item, view, where)
        problems += colour_problems(items, where)
    return list(dict.fromkeys(problems))


__all__ = ["ColourScale", "ValueAxis", "add_plot", "attach_scale", "axis_problems",
           "carries_colour", "chart_problems", "colour_problems", "cut_problems",
           "declare_key",
           "linear_strings",
           "number_text", "parse_number", "plot_widget", "tick_labels"]
