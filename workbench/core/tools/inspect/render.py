"""Inspect's views (and the report's plots) as PNG pictures, drawn with matplotlib's Agg canvas.

Only `matplotlib.figure.Figure` on a `FigureCanvasAgg` is used, never pyplot (whose global
state and backend choice would reach for a GUI), so drawing is safe on any thread and needs
no screen. Every colour that carries a value has its colour bar; texts from the run (class,
feature and experiment names) are drawn as plain text (a `$` never starts mathtext).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.tools.inspect.attribution import Attribution, ClassAttribution
from workbench.core.tools.inspect.weights import NeuronMaps, WeightImages, WeightTable

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

    from workbench.core.tools.inspect.inspection import InspectResult, SampleInsight

DPI = 100
DIVERGING = "RdBu_r"
SEQUENTIAL = "viridis"
MAX_TILES = 256  # tiles of one mosaic
MAX_PROBABILITIES = 20  # classes in a sample's probability chart; of more, the most probable
MAX_CLASS_MAPS = 40  # classes drawn as pictures of their average attribution
MAX_CHANNELS = 16  # feature maps drawn per convolutional layer's activations
MAX_TICK_LABELS = 30  # class or feature names along an axis; beyond, every n-th
MAX_ANNOTATED = 200  # cells of a table that get their value written in them
ROBUST = 0.995  # many weight images: the colour scale ends at this quantile of |weight|


@dataclass(frozen=True)
class Picture:
    """One PNG: `name` is its file's stem (`first-layer`), `title` and `how_to_read` the words
    that go with it."""

    name: str
    title: str
    how_to_read: str
    png: bytes


def plain_text(text: object) -> str:
    """Text from the run drawn as it is: `$` would otherwise start matplotlib's mathtext."""
    return str(text).replace("$", r"\$")


def new_figure(width: float, height: float) -> MplFigure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_of(fig: MplFigure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def symmetric_top(values: np.ndarray, quantile: float = 1.0) -> float:
    """The end of a colour scale symmetric about 0: the largest |value|, or its `quantile`
    (a few extreme weights would otherwise leave every other one pale)."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(np.quantile(finite, quantile)) if finite.size else 0.0
    return top if top > 0 else 1.0


def mosaic(tiles: np.ndarray, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """(n, H, W) tiles side by side in a grid, NaN between them (drawn as background)."""
    n, h, w = tiles.shape
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float64)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[k]
    return out


def colorbar(fig: MplFigure, image: Any, ax: Axes | Sequence[Axes], label: str, *,
              clipped: bool = False) -> None:
    """The colour bar of `image`; `clipped`: values beyond its ends exist (drawn in the end
    colours), which the bar's pointed ends say."""
    bar = fig.colorbar(image, ax=ax, shrink=0.85, extend="both" if clipped else "neither")
    bar.set_label(label + (" (pointed ends: beyond the bar's range)" if clipped else ""))


def ticks(ax: Axes, axis: str, names: Sequence[str], rotate: bool = False) -> None:
    step = max(1, math.ceil(len(names) / MAX_TICK_LABELS))
    where = list(range(0, len(names), step))
    labels = [plain_text(names[i]) for i in where]
    if axis == "x":
        ax.set_xticks(where, labels, rotation=90 if rotate else 0)
    else:
        ax.set_yticks(where, labels)


def long_names(names: Sequence[str]) -> bool:
    """Whether names along an x axis need turning to fit side by side."""
    return len(names) * max((len(n) for n in names), default=0) > 60


# -- the first layer -------------------------------------------------------------------------

def weight_images(view: WeightImages) -> bytes:
    n = min(len(view.weights), MAX_TILES)
    weights = view.weights[:n]
    shown = f"the first {n} of {len(view.weights)}" if n < len(view.weights) else f"all {n}"
    fig = new_figure(9, 9.6)
    ax = fig.add_subplot()
    ax.set_axis_off()
    c = weights.shape[1]
    if c == 3:  # colour filters: each channel's weights as that colour, grey at 0
        top = symmetric_top(weights)
        tiles = np.clip(weights / (2 * top) + 0.5, 0, 1).transpose(0, 2, 3, 1)
        cols = max(1, math.ceil(math.sqrt(n)))
        grid = np.ones((math.ceil(n / cols) * (tiles.shape[1] + 1),
                        cols * (tiles.shape[2] + 1), 3))
        for k in range(n):
            r, q = divmod(k, cols)
            h, w = tiles.shape[1:3]
            grid[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = tiles[k]
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(f"{view.layer}: {shown} {view.what}, red/green/blue weights "
                     f"(grey 0, full colour ±{top:.3g})")
    else:
        tiles = weights.sum(axis=1)
        top = symmetric_top(tiles, ROBUST if tiles.size >= 10_000 else 1.0)
        image = ax.imshow(mosaic(tiles), cmap=DIVERGING, vmin=-top, vmax=top,
                          interpolation="nearest")
        colorbar(fig, image, ax, "weight", clipped=top < symmetric_top(tiles))
        h, w = weights.shape[2:]
        ax.set_title(f"{view.layer}: {shown} {view.what} as {h}×{w} weight images")
    return png_of(fig)


def weight_table(view: WeightTable) -> bytes:
    units, features = view.weights.shape
    rows = min(units, 64)
    fig = new_figure(min(12, 3.5 + 0.45 * features), min(10, 3 + 0.2 * rows))
    ax = fig.add_subplot()
    top = symmetric_top(view.weights[:rows])
    image = ax.imshow(view.weights[:rows], cmap=DIVERGING, vmin=-top, vmax=top, aspect="auto",
                      interpolation="nearest")
    colorbar(fig, image, ax, "weight per standard deviation")
    if rows * features <= MAX_ANNOTATED:
        _annotate(ax, view.weights[:rows], top)
    ticks(ax, "x", view.feature_names, rotate=long_names(view.feature_names))
    ax.set_ylabel("unit")
    ticks(ax, "y", [str(u + 1) for u in range(rows)])
    shown = f" (the first {rows} of {units} units)" if rows < units else ""
    ax.set_title(f"{view.layer}: weights by feature{shown}")
    return png_of(fig)


def _annotate(ax: Axes, values: np.ndarray, top: float) -> None:
    """Each cell's value written in it (white on the darkest colours)."""
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=7,
                color="white" if abs(v) > 0.6 * top else "black")


# -- neurons of a 2-D set --------------------------------------------------------------------

def neurons(view: NeuronMaps) -> bytes:
    cols = 8
    rows_per = [max(1, math.ceil(len(m.maps) / cols)) for m in view.layers]
    total = sum(rows_per)
    fig = new_figure(11, 1.5 + 1.45 * total)
    grid = fig.add_gridspec(total, cols + 1, width_ratios=[1] * cols + [0.15])
    x0, x1, y0, y1 = view.extent
    row = 0
    for layer, span in zip(view.layers, rows_per, strict=True):
        low, high = float(layer.maps.min()), float(layer.maps.max())
        if low < 0 < high:
            top = max(-low, high)
            cmap, vmin, vmax = DIVERGING, -top, top
        else:
            cmap, vmin, vmax = SEQUENTIAL, low, high if high > low else low + 1
        image = None
        for k, unit in enumerate(layer.maps):
            r, c = divmod(k, cols)
            ax = fig.add_subplot(grid[row + r, c])
            image = ax.imshow(unit, origin="lower", extent=(x0, x1, y0, y1), cmap=cmap,
                              vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            names = view.class_names if layer.output and view.class_names else ()
            ax.set_xlabel(plain_text(names[k] if k < len(names) else
                                     "value" if layer.output else f"unit {k + 1}"),
                          fontsize=8, labelpad=1)
            if k == 0:
                more = (f", first {len(layer.maps)} of {layer.units}"
                        if layer.units > len(layer.maps) else "")
                ax.set_title(plain_text(f"{layer.layer}{more}"), loc="left", fontsize=9)
        bar_ax = fig.add_subplot(grid[row:row + span, cols])
        if image is not None:
            fig.colorbar(image, cax=bar_ax)
        row += span
    names = view.feature_names
    fig.suptitle(plain_text(f"Each unit's output over the plane: {names[0]} from {x0:.3g} to "
                            f"{x1:.3g} across, {names[1]} from {y0:.3g} to {y1:.3g} up"))
    return png_of(fig)


# -- one sample ------------------------------------------------------------------------------

def _answer(s: SampleInsight) -> str:
    if s.probabilities is None:
        return f"test sample {s.index}: predicted {s.predicted:.5g}, true {s.truth:.5g}"
    names = s.class_names
    verdict = "right" if s.correct else "wrong"
    return (f"test sample {s.index}: predicted “{names[int(s.predicted)]}” "
            f"({s.probabilities[int(s.predicted)]:.1%}), true “{names[int(s.truth)]}” "
            f"({verdict})")


def _map(fig: MplFigure, ax: Axes, a: Attribution) -> None:
    values = a.values.sum(axis=0) if a.values.ndim == 3 else a.values
    signed = a.method == "integrated_gradients"
    if signed:
        top = symmetric_top(values)
        image = ax.imshow(values, cmap=DIVERGING, vmin=-top, vmax=top, interpolation="nearest")
    else:
        image = ax.imshow(values, cmap=SEQUENTIAL, vmin=0, interpolation="nearest")
    ax.set_axis_off()
    where = f" ({a.layer})" if a.layer else ""
    ax.set_title(f"{a.title}{where}", fontsize=10)
    colorbar(fig, image, ax, "attribution")


def sample(s: SampleInsight, image_input: bool, feature_names: Sequence[str]) -> bytes:
    maps = list(s.attributions)
    if image_input:
        fig = new_figure(4 + 3.2 * len(maps), 6.4 if s.probabilities is not None else 3.6)
        rows = 2 if s.probabilities is not None else 1
        grid = fig.add_gridspec(rows, 1 + len(maps), height_ratios=[1.3, 1][:rows])
        ax = fig.add_subplot(grid[0, 0])
        picture = s.input.transpose(1, 2, 0)
        if picture.shape[2] == 1:
            image = ax.imshow(picture[:, :, 0], cmap="gray", vmin=0, vmax=1,
                              interpolation="nearest")
            colorbar(fig, image, ax, "brightness")
        else:
            ax.imshow(np.clip(picture, 0, 1), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title("input", fontsize=10)
        for k, a in enumerate(maps):
            _map(fig, fig.add_subplot(grid[0, 1 + k]), a)
        if s.probabilities is not None:
            _probabilities(fig.add_subplot(grid[1, :]), s)
    else:
        names = list(feature_names)
        panels = len(maps) + (1 if s.probabilities is not None else 0) + 1
        rows = max(len(names), min(len(s.class_names), MAX_PROBABILITIES), 4)
        fig = new_figure(min(14, 3.4 * panels), min(12, 1.6 + 0.32 * rows))
        axes = fig.subplots(1, panels, squeeze=False)[0]
        _bars(axes[0], np.asarray(s.input, dtype=np.float64), names, "input (own units)")
        for ax, a in zip(axes[1:], maps, strict=False):
            _bars(ax, a.values.astype(np.float64), names, a.title, hide_names=True)
        if s.probabilities is not None:
            _probabilities(axes[-1], s, across=False)
    fig.suptitle(plain_text(_answer(s)))
    return png_of(fig)


def _bars(ax: Axes, values: np.ndarray, names: Sequence[str], title: str, *,
          hide_names: bool = False) -> None:
    where = np.arange(len(values))
    colours = ["#c0392b" if v >= 0 else "#2c7bb6" for v in values]
    ax.barh(where, values, color=colours)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ticks(ax, "y", names if not hide_names else [""] * len(names))
    for y, v in zip(where, values, strict=True):
        ax.annotate(f"{v:.3g}", (v, y), xytext=(3 if v >= 0 else -3, 0),
                    textcoords="offset points", ha="left" if v >= 0 else "right",
                    va="center", fontsize=7)
    ax.margins(x=0.25)
    ax.set_title(plain_text(title), fontsize=10)


def _probabilities(ax: Axes, s: SampleInsight, *, across: bool = True) -> None:
    """Every class's probability (bars `across` the panel, or one row each); of many classes,
    the most probable and the true one."""
    assert s.probabilities is not None
    k = len(s.class_names)
    title = "probabilities (answer in red)"
    chosen = list(range(k))
    if k > MAX_PROBABILITIES:
        order = [int(c) for c in np.argsort(-s.probabilities, kind="stable")]
        chosen = order[:MAX_PROBABILITIES]
        title = f"the top {len(chosen)} of {k} classes\n(answer in red)"
        if int(s.truth) not in chosen:
            chosen = chosen[:-1] + [int(s.truth)]
            title = f"the top {len(chosen) - 1} of {k} classes\nand the true one (answer in red)"
    names = [s.class_names[c] for c in chosen]
    values = s.probabilities[chosen]
    where = np.arange(len(chosen))
    colours = ["#c0392b" if c == int(s.predicted) else "#7f8c8d" for c in chosen]
    if across:
        ax.bar(where, values, color=colours)
        ax.set_ylim(0, 1.12)
        ax.set_ylabel("probability")
        ticks(ax, "x", names, rotate=long_names(names))
        for x, p in zip(where, values, strict=True):
            ax.annotate(f"{p:.2f}", (x, p), xytext=(0, 2), textcoords="offset points",
                        ha="center", fontsize=8)
    else:
        ax.barh(where, values, color=colours)
        ax.set_xlim(0, 1.25)
        ax.set_xlabel("probability")
        ax.invert_yaxis()
        ticks(ax, "y", names)
        for y, p in zip(where, values, strict=True):
            ax.annotate(f"{p:.2f}", (p, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7)
    ax.set_title(plain_text(title), fontsize=9)


def activations(s: SampleInsight) -> bytes:
    layers = s.activations
    fig = new_figure(10, 0.6 + 1.7 * len(layers))
    axes = fig.subplots(len(layers), 1, squeeze=False)[:, 0]
    for ax, a in zip(axes, layers, strict=True):
        stats = (f"{a.layer}: output {'×'.join(map(str, a.shape))}, mean {a.mean:.3g}, "
                 f"from {a.low:.3g} to {a.high:.3g}, {a.zero_share:.0%} zero")
        if a.values.ndim == 3:
            channels = a.values[:MAX_CHANNELS]
            more = f" (first {len(channels)} channels)" if len(a.values) > len(channels) else ""
            top = symmetric_top(channels)
            image = ax.imshow(mosaic(channels, columns=len(channels)), cmap=DIVERGING,
                              vmin=-top, vmax=top, interpolation="nearest", aspect="equal")
            ax.set_axis_off()
            colorbar(fig, image, ax, "output")
            stats += more
        else:
            values = a.values.reshape(-1)
            units = np.arange(1, len(values) + 1)
            colours = np.where(values >= 0, "#c0392b", "#2c7bb6")
            ax.vlines(units, 0, values, colors=colours,
                      linewidth=max(0.6, min(8.0, 500 / len(values))))
            ax.axhline(0, color="black", linewidth=0.6)
            ax.set_xlim(0.5, len(values) + 0.5)
            ax.set_ylabel("output")
            ax.set_xlabel("unit", fontsize=8)
        ax.set_title(stats, loc="left", fontsize=9)
    fig.suptitle(plain_text(f"Activations of test sample {s.index}, layer by layer"))
    return png_of(fig)


# -- per class -------------------------------------------------------------------------------

def classes(view: ClassAttribution, image_input: bool, feature_names: Sequence[str]) -> bytes:
    names = view.class_names[:MAX_CLASS_MAPS] if image_input else view.class_names
    shown = (f" (the first {len(names)} of {len(view.class_names)} classes)"
             if len(names) < len(view.class_names) else "")
    signed = view.method == "integrated_gradients"
    if image_input:
        maps = view.maps[:len(names)].sum(axis=1)
        cols = min(len(names), 5)
        rows = math.ceil(len(names) / cols)
        fig = new_figure(2.3 * cols + 1.2, 2.5 * rows + 0.8)
        axes = fig.subplots(rows, cols, squeeze=False)
        top = symmetric_top(maps)
        image = None
        for k, ax in enumerate(axes.ravel()):
            ax.set_axis_off()
            if k >= len(names):
                continue
            image = ax.imshow(maps[k], cmap=DIVERGING if signed else SEQUENTIAL,
                              vmin=-top if signed else 0, vmax=top, interpolation="nearest")
            ax.set_title(plain_text(f"{names[k]} (n={view.counts[k]})"), fontsize=10)
        if image is not None:
            colorbar(fig, image, list(axes.ravel()), "mean attribution")
    else:
        fig = new_figure(min(12, 3 + 0.45 * len(feature_names)),
                         min(12, 1.8 + 0.3 * len(names)))
        ax = fig.add_subplot()
        top = symmetric_top(view.maps)
        image = ax.imshow(view.maps, cmap=DIVERGING if signed else SEQUENTIAL,
                          vmin=-top if signed else 0, vmax=top, aspect="auto",
                          interpolation="nearest")
        colorbar(fig, image, ax, "mean attribution")
        ticks(ax, "x", feature_names, rotate=long_names(feature_names))
        ticks(ax, "y", [f"{n} (n={c})" for n, c in zip(names, view.counts, strict=True)])
    fig.suptitle(f"{view.title}, averaged over each class's correctly classified test "
                 f"samples{shown}")
    return png_of(fig)


# -- everything of an inspection -------------------------------------------------------------

def figures(result: InspectResult) -> list[Picture]:
    """Every picture of an inspection, in the order a reader meets them."""
    out = []
    view = result.first_layer
    if isinstance(view, WeightImages):
        out.append(Picture("first-layer", f"What layer {view.layer} learned",
                           view.how_to_read, weight_images(view)))
    elif isinstance(view, WeightTable):
        out.append(Picture("first-layer", f"What layer {view.layer} learned",
                           view.how_to_read, weight_table(view)))
    if result.neurons is not None:
        out.append(Picture("neurons", "Every unit over the plane", result.neurons.how_to_read,
                           neurons(result.neurons)))
    for s in result.samples:
        how = " ".join(a.how_to_read for a in s.attributions)
        out.append(Picture(f"sample-{s.index}", f"Test sample {s.index}: why this answer",
                           how, sample(s, result.image_input, result.feature_names)))
        out.append(Picture(f"sample-{s.index}-activations",
                           f"Test sample {s.index}: every layer's output", s.how_to_read,
                           activations(s)))
    if result.classes is not None:
        out.append(Picture("classes", "What each class is recognised by",
                           result.classes.how_to_read,
                           classes(result.classes, result.image_input, result.feature_names)))
    return out


__all__ = ["MAX_CHANNELS", "MAX_CLASS_MAPS", "MAX_PROBABILITIES", "MAX_TILES", "ROBUST",
           "Picture", "activations", "classes", "figures", "mosaic", "neurons", "plain_text",
           "png_of", "sample", "symmetric_top", "weight_images", "weight_table"]
