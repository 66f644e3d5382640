"""What the Inspect tool decides and says, Qt-free (tested without a QApplication): the work it
runs on its worker (a run opened with its overview, a test sample, the class averages), which
of its pages apply to a run and why not, the lines that name a run, a sample, an answer and a
layer's output, the misclassified samples it offers, and every map it draws with its colour
scale: its values, the scale's ends and kind (diverging about 0 for signed values, sequential
from 0 for sizes), and what the value under the pointer is.

The views themselves are the core's (`core.tools.inspect`): layers numbered from 1 as the
editor numbers them (`2 Linear`), test samples from 0 in test order.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.tools.inspect.render import (
    MAX_CHANNELS,
    MAX_CLASS_MAPS,
    MAX_PROBABILITIES,
    MAX_TILES,
    ROBUST,
    mosaic,
    symmetric_top,
)

if TYPE_CHECKING:
    from workbench.core.tools.inspect.attribution import Attribution, ClassAttribution
    from workbench.core.tools.inspect.equation import Equation
    from workbench.core.tools.inspect.inspection import (
        Inspection,
        LayerActivation,
        SampleInsight,
    )
    from workbench.core.tools.inspect.network import Predictions
    from workbench.core.tools.inspect.weights import NeuronMaps, WeightImages, WeightTable
    from workbench.core.workspace import Workspace

Emit = Callable[[Any], None]
MAX_MISCLASSIFIED = 1_000  # offered in the sample picker, in test order
PAGES = ("layers", "sample", "classes", "equation")
CHANNEL_COLUMNS = 8  # a convolutional layer's channels per row
NO_RUN = "Pick a trained run above, or select one in the Runs list and choose Inspect…"
_expected: tuple[type[BaseException], ...] = ()


def expected_errors() -> tuple[type[BaseException], ...]:
    """The errors that are the person's input or the run's state, not bugs (their message
    is enough): a run without a model or data, a sample that does not exist, and a task
    cancelled by a newer request (whose result is dropped anyway)."""
    global _expected
    if not _expected:
        from workbench.core.data.errors import DataError
        from workbench.core.store.errors import RunError
        from workbench.core.tools.inspect.network import InspectCancelled, InspectError

        _expected = (RunError, InspectError, DataError, InspectCancelled)
    return _expected


# -- the work, on the worker ---------------------------------------------------------------------

@dataclass(frozen=True)
class Overview:
    """A run opened for Inspect, with what is shown at once: its answers on the test split,
    its first layer, its neuron maps (2-D sets) and its equation (no hidden layer)."""

    run_dir: str
    name: str
    inspection: Inspection
    predictions: Predictions
    first_layer: WeightImages | WeightTable | None
    neurons: NeuronMaps | None
    equation: Equation | None
    methods: tuple[str, ...]

    @property
    def task(self) -> str:
        return self.inspection.task

    @property
    def test_size(self) -> int:
        return self.inspection.test_size

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.inspection.info.class_names)

    @property
    def image_input(self) -> bool:
        from workbench.core.tools.inspect.network import is_image

        return is_image(self.inspection.info)

    @property
    def feature_names(self) -> tuple[str, ...]:
        from workbench.core.tools.inspect.network import feature_names

        return feature_names(self.inspection.info)


def open_overview(workspace: Workspace | None, run_dir: str, emit: Emit,
                  cancel: threading.Event) -> Overview:
    """Open `run_dir` for Inspect (its data from the workspace's cache) and compute what is
    shown at once; `emit` says each step."""
    from workbench.core.tools.inspect.inspection import Inspection
    from workbench.core.tools.inspect.network import check_cancel

    emit("loading the run and its data")
    ins = Inspection.open(run_dir, source=workspace, cancel=cancel)
    emit("answering the test split")
    predictions = ins.predictions(cancel=cancel)
    check_cancel(cancel)
    emit("reading the first layer")
    first = ins.first_layer()
    neurons = ins.neurons(cancel=cancel)
    equation = ins.equation()
    return Overview(str(run_dir), ins.trained.spec.name, ins, predictions, first, neurons,
                    equation, ins.methods())


def sample_work(inspection: Inspection, index: int, target: int | None,
                cancel: threading.Event) -> SampleInsight:
    """Test sample `index` explained (toward class `target`, else the answer)."""
    return inspection.sample(index, target=target, cancel=cancel)


def classes_work(inspection: Inspection, emit: Emit,
                 cancel: threading.Event) -> ClassAttribution | None:
    """Each class's average Integrated Gradients, `emit`ting (done, total) samples."""
    return inspection.class_attribution(cancel=cancel,
                                        progress=lambda done, total: emit((done, total)))


# -- which pages apply --------------------------------------------------------------------------

def page_reasons(ov: Overview) -> dict[str, str | None]:
    """Why each page does not apply to the run (None: it does)."""
    no_test = "the run has no test split" if ov.test_size == 0 else None
    layers = None if ov.first_layer is not None or ov.neurons is not None else (
        "the first layer with weights does not look at the input directly")
    if ov.task != "classification":
        classes: str | None = "a regression has no classes"
    else:
        classes = no_test
    equation = None if ov.equation is not None else (
        "the network has a hidden layer: its answer is no single equation of the inputs")
    return {"layers": layers, "sample": no_test, "classes": classes, "equation": equation}


# -- lines ----------------------------------------------------------------------------------------

def run_text(ov: Overview) -> str:
    """The opened run in a line (HTML-safe text)."""
    import html

    p = ov.predictions
    head = f"<b>{html.escape(ov.name)}</b> ({Path(ov.run_dir).name}): "
    if ov.test_size == 0:
        return head + "no test split, so only what the layers learned is shown."
    if ov.task == "classification":
        wrong = len(p.misclassified())
        return (head + f"{len(ov.class_names)} classes, test accuracy {p.accuracy:.1%} on "
                f"{ov.test_size:,} test samples, {wrong:,} misclassified.")
    from workbench.core.tools.inspect.results import regression_results

    figures = regression_results(p.predicted, p.truth, max_points=0)
    return (head + f"a regression; test MSE {figures['mse']:.4g} (RMSE {figures['rmse']:.4g})"
            f" on {ov.test_size:,} test samples.")


def misclassified_items(ov: Overview, limit: int = MAX_MISCLASSIFIED) -> list[tuple[str, int]]:
    """The misclassified test samples the picker offers, in test order: ("#17: 7 → 2 (54%)",
    17), the true class first, then the answer and its probability."""
    p = ov.predictions
    names = ov.class_names
    items = []
    for index, true, predicted in p.misclassified(limit=limit):
        share = "" if p.probabilities is None else f" ({p.probabilities[index, predicted]:.0%})"
        items.append((f"#{index}: {names[true]} → {names[predicted]}{share}", index))
    return items


def misclassified_count(ov: Overview) -> int:
    return len(ov.predictions.misclassified())


def answer_text(s: SampleInsight) -> str:
    """The network's answer to a sample, and whether it is right."""
    if s.probabilities is None:
        error = float(s.predicted) - float(s.truth)
        return (f"Test sample {s.index}: predicted {s.predicted:.5g}, true {s.truth:.5g} "
                f"(off by {error:+.4g})")
    names = s.class_names
    verdict = "right" if s.correct else "wrong"
    return (f"Test sample {s.index}: answered “{names[int(s.predicted)]}” with "
            f"{s.probabilities[int(s.predicted)]:.1%}, true “{names[int(s.truth)]}”: "
            f"{verdict}")


def explained_text(s: SampleInsight) -> str:
    """Which output the maps explain."""
    if s.probabilities is None or not s.attributions:
        return "The maps explain the predicted value."
    target = s.attributions[0].target
    which = "the answer" if target == int(s.predicted) else "another class than the answer"
    return f"The maps explain the score of “{s.class_names[target]}” ({which})."


def activation_text(a: LayerActivation) -> str:
    """A layer's output for the sample in a line: `2 ReLU: 32 values, mean 0.41, from 0 to
    3.2, 44% zero`."""
    size = "×".join(str(n) for n in a.shape)
    count = (f"output {size}" if len(a.shape) > 1 else
             "1 value" if a.shape == (1,) else f"{size} values")
    return (f"{a.layer}: {count}, mean {a.mean:.3g}, from {a.low:.3g} to {a.high:.3g}, "
            f"{a.zero_share:.0%} zero")


def probability_rows(s: SampleInsight,
                     limit: int = MAX_PROBABILITIES) -> tuple[list[tuple[str, float, bool, bool]],
                                                              str]:
    """The probability chart's rows (name, probability, is the answer, is the truth), in class
    order, and its title; of more than `limit` classes the most probable and the true one."""
    assert s.probabilities is not None
    k = len(s.class_names)
    chosen = list(range(k))
    title = "Probability of each class (the answer in red, the truth marked ✓)"
    if k > limit:
        order = [int(c) for c in np.argsort(-s.probabilities, kind="stable")]
        chosen = order[:limit]
        title = f"The {limit} most probable of {k} classes (the answer in red, the truth ✓)"
        if int(s.truth) not in chosen:
            chosen = chosen[:-1] + [int(s.truth)]
            title = (f"The {limit - 1} most probable of {k} classes and the true one (the "
                     "answer in red)")
    rows = [(s.class_names[c], float(s.probabilities[c]), c == int(s.predicted),
             c == int(s.truth)) for c in chosen]
    return rows, title


# -- maps and their colour scales ----------------------------------------------------------------

@dataclass(frozen=True)
class MapView:
    """One picture as the tool draws it: `values` (H, W; NaN between tiles), or an RGB image
    (H, W, 3 in [0, 1]) when `scale` is "rgb"; `levels` the colour scale's ends; `scale`
    "diverging" (symmetric about 0), "sequential" (from 0 or the least value) or "grey"
    (brightness); `clipped`: values lie beyond the scale's ends (drawn in the end colours).
    `tiles` (count, H, W, columns) when `values` is a mosaic, to name the tile under the
    pointer; `tile_names` name them."""

    title: str
    values: np.ndarray
    levels: tuple[float, float]
    scale: str
    label: str
    clipped: bool = False
    tiles: tuple[int, int, int, int] | None = None
    tile_names: tuple[str, ...] = ()

    def at(self, row: int, col: int) -> str | None:
        """The value under the pointer at pixel (`row`, `col`), in words; None off the
        picture or between tiles."""
        if not (0 <= row < self.values.shape[0] and 0 <= col < self.values.shape[1]):
            return None
        if self.scale == "rgb":
            return None
        value = float(self.values[row, col])
        if not math.isfinite(value):
            return None
        where = f"row {row + 1}, column {col + 1}"
        if self.tiles is not None:
            found = tile_at(row, col, *self.tiles)
            if found is None:
                return None
            tile, r, c = found
            name = self.tile_names[tile] if tile < len(self.tile_names) else f"{tile + 1}"
            where = f"{name}, row {r + 1}, column {c + 1}"
        return f"{self.title}: {where}: {self.label} {value:.4g}"


def scale_ticks(low: float, high: float, most: int = 3) -> list[float]:
    """Round values to label a narrow colour bar from `low` to `high` with: at most `most`
    (and at least two where a round step allows), a little inside its ends, where a label
    would be cut."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return [low]
    inner_low, inner_high = low + 0.06 * span, high - 0.06 * span
    best: list[float] = []
    for power in range(math.floor(math.log10(span)) - 2, math.floor(math.log10(span)) + 2):
        for mantissa in (1.0, 2.0, 2.5, 5.0):
            step = mantissa * 10.0**power
            first = math.ceil(inner_low / step)
            values = [round(k * step, 12) for k in range(first, math.floor(inner_high / step) + 1)]
            if 2 <= len(values) <= most:
                return values
            if len(values) == 1 and not best:
                best = values
    return best or [(low + high) / 2]


def tick_text(value: float) -> str:
    return f"{value:.3g}"


def tile_at(row: int, col: int, count: int, h: int, w: int,
            columns: int, gap: int = 1) -> tuple[int, int, int] | None:
    """(tile, row, column within it) of pixel (`row`, `col`) of a `mosaic` of `count` tiles
    of h×w in `columns` columns; None between tiles or past the last."""
    tr, r = divmod(row, h + gap)
    tc, c = divmod(col, w + gap)
    tile = tr * columns + tc
    if r >= h or c >= w or tc >= columns or tile >= count:
        return None
    return tile, r, c


def diverging(title: str, values: np.ndarray, label: str, *, quantile: float = 1.0,
              tiles: tuple[int, int, int, int] | None = None,
              tile_names: tuple[str, ...] = ()) -> MapView:
    """A signed map on a scale symmetric about 0 (white), to its largest |value| or to that
    `quantile` of them (the rest `clipped`)."""
    top = symmetric_top(values, quantile)
    clipped = top < symmetric_top(values)
    return MapView(title, values, (-top, top), "diverging", label, clipped, tiles, tile_names)


def sequential(title: str, values: np.ndarray, label: str, *,
               from_zero: bool = True) -> MapView:
    """A map of sizes on a scale from 0 (or its least value) to its largest value."""
    finite = values[np.isfinite(values)]
    high = float(finite.max()) if finite.size else 1.0
    low = 0.0 if from_zero else (float(finite.min()) if finite.size else 0.0)
    if high <= low:
        high = low + 1.0
    return MapView(title, values, (low, high), "sequential", label)


def unit_names(count: int, what: str) -> tuple[str, ...]:
    return tuple(f"{what} {k + 1}" for k in range(count))


def weight_map(view: WeightImages) -> MapView:
    """The first layer's units (or filters) as one mosaic of weight images: summed over the
    input's channels for grey images, as colour (grey at 0) for three channels."""
    n = min(len(view.weights), MAX_TILES)
    weights = view.weights[:n]
    shown = f"the first {n} of {len(view.weights)}" if n < len(view.weights) else f"all {n}"
    what = "unit" if view.what == "units" else "filter"
    h, w = weights.shape[2:]
    columns = max(1, math.ceil(math.sqrt(n)))
    title = f"{view.layer}: {shown} {view.what} as {h}×{w} weight images"
    if weights.shape[1] == 3:
        top = symmetric_top(weights)
        tiles = np.clip(weights / (2 * top) + 0.5, 0, 1).transpose(0, 2, 3, 1)
        grid = np.stack([mosaic(tiles[..., ch], columns) for ch in range(3)], axis=-1)
        grid = np.where(np.isnan(grid), 1.0, grid)
        return MapView(f"{title} (red, green, blue weights; grey 0, full colour ±{top:.3g})",
                       grid, (-top, top), "rgb", "weight", tiles=(n, h, w, columns),
                       tile_names=unit_names(n, what))
    tiles = weights.sum(axis=1)
    quantile = ROBUST if tiles.size >= 10_000 else 1.0
    return diverging(title, mosaic(tiles, columns), "weight", quantile=quantile,
                     tiles=(n, h, w, columns), tile_names=unit_names(n, what))


def input_map(s: SampleInsight) -> MapView:
    """An image sample as it is: grey brightness from 0 to 1, or colour."""
    picture = np.asarray(s.input, dtype=np.float64)
    if picture.shape[0] == 1:
        return MapView("input", picture[0], (0.0, 1.0), "grey", "brightness")
    return MapView("input", np.clip(picture[:3].transpose(1, 2, 0), 0, 1), (0.0, 1.0), "rgb",
                   "brightness")


def attribution_map(a: Attribution) -> MapView:
    """One method's map of an image sample: Integrated Gradients signed (diverging), saliency
    and Grad-CAM sizes (sequential from 0)."""
    values = a.values.sum(axis=0) if a.values.ndim == 3 else a.values
    title = a.title + (f" ({a.layer})" if a.layer else "")
    if a.method == "integrated_gradients":
        return diverging(title, values.astype(np.float64), "attribution")
    return sequential(title, values.astype(np.float64), "attribution")


def activation_map(a: LayerActivation) -> MapView | None:
    """A convolutional layer's output for the sample: its first channels side by side on one
    scale symmetric about 0; None for a flat output."""
    if a.values.ndim != 3:
        return None
    channels = a.values[:MAX_CHANNELS].astype(np.float64)
    more = (f", the first {len(channels)} of {len(a.values)} channels"
            if len(a.values) > len(channels) else "")
    h, w = channels.shape[1:]
    columns = min(len(channels), CHANNEL_COLUMNS)
    return diverging(f"{a.layer}{more}", mosaic(channels, columns=columns), "output",
                     tiles=(len(channels), h, w, columns),
                     tile_names=unit_names(len(channels), "channel"))


def class_maps(view: ClassAttribution) -> tuple[list[MapView], str]:
    """Each class's average map (image inputs), the first MAX_CLASS_MAPS, on one shared
    scale, and the note on what is left out."""
    names = view.class_names[:MAX_CLASS_MAPS]
    maps = view.maps[:len(names)].sum(axis=1).astype(np.float64)
    signed = view.method == "integrated_gradients"
    top = symmetric_top(maps)
    out = []
    for k, name in enumerate(names):
        title = f"{name} (n={view.counts[k]})"
        if signed:
            out.append(MapView(title, maps[k], (-top, top), "diverging", "mean attribution"))
        else:
            out.append(MapView(title, maps[k], (0.0, top), "sequential", "mean attribution"))
    left = (f"The first {len(names)} of {len(view.class_names)} classes are shown."
            if len(names) < len(view.class_names) else "")
    return out, left


def neuron_views(view: NeuronMaps) -> list[tuple[str, list[MapView]]]:
    """Each layer's units over the plane, on one scale per layer: diverging when the layer's
    outputs take both signs, sequential otherwise; rows flipped so the plane's top is up."""
    out = []
    for layer in view.layers:
        low, high = float(layer.maps.min()), float(layer.maps.max())
        names = view.class_names if layer.output and view.class_names else ()
        maps = []
        for k, unit in enumerate(layer.maps):
            title = (names[k] if k < len(names) else
                     "value" if layer.output else f"unit {k + 1}")
            values = np.flipud(unit).astype(np.float64)
            if low < 0 < high:
                top = max(-low, high)
                maps.append(MapView(title, values, (-top, top), "diverging", "output"))
            else:
                maps.append(MapView(title, values, (low, high if high > low else low + 1),
                                    "sequential", "output"))
        more = (f", the first {len(layer.maps)} of {layer.units}"
                if layer.units > len(layer.maps) else "")
        out.append((f"{layer.layer}{more}", maps))
    return out


def plane_text(view: NeuronMaps) -> str:
    x0, x1, y0, y1 = view.extent
    a, b = view.feature_names[:2]
    return (f"Each square is the plane: {a} from {x0:.3g} to {x1:.3g} across, {b} from "
            f"{y0:.3g} to {y1:.3g} up.")


# -- tables ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ValueGrid:
    """A table whose cells' colours carry their values: `colours` on the scale `levels`
    (symmetric about 0), `cells` the numbers written in them."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    colours: np.ndarray
    cells: np.ndarray
    levels: tuple[float, float]
    label: str


def weight_grid(view: WeightTable, raw: bool) -> ValueGrid:
    """The first layer's weights, units by features: coloured per standard deviation of
    each feature (comparable across features), written per standard deviation or, `raw`,
    per unit of the feature in the data's own units."""
    top = symmetric_top(view.weights)
    rows = unit_names(view.weights.shape[0], "unit")
    return ValueGrid(rows, view.feature_names, view.weights.astype(np.float64),
                     (view.raw if raw else view.weights).astype(np.float64), (-top, top),
                     "weight per standard deviation")


def class_grid(view: ClassAttribution, feature_names: Sequence[str]) -> ValueGrid:
    """Each class's average attribution by feature (table inputs)."""
    signed = view.method == "integrated_gradients"
    top = symmetric_top(view.maps)
    rows = tuple(f"{n} (n={c})" for n, c in zip(view.class_names, view.counts, strict=True))
    values = view.maps.astype(np.float64)
    return ValueGrid(rows, tuple(feature_names), values, values,
                     (-top, top) if signed else (0.0, top), "mean attribution")


def cell_text(value: float) -> str:
    return f"{value:.3g}"


def feature_bars(s: SampleInsight, names: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """A table sample's bar charts: its features in their own units, then each method's
    attribution per feature."""
    out = [("input, in its own units", np.asarray(s.input, dtype=np.float64).reshape(-1))]
    for a in s.attributions:
        out.append((a.title, np.asarray(a.values, dtype=np.float64).reshape(-1)))
    return out


def coefficient_rows(eq: Equation) -> list[tuple[str, list[float]]]:
    """A table input's coefficients in the data's own units, per feature (one column per
    output: the value, or each class's score), the intercept last; [] for images."""
    if len(eq.feature_names) > 100:
        return []
    rows = [(name, [float(v) for v in eq.coefficients[:, j]])
            for j, name in enumerate(eq.feature_names)]
    rows.append(("intercept", [float(v) for v in eq.intercepts]))
    return rows


def coefficient_columns(eq: Equation) -> list[str]:
    return [eq.output_name] if eq.task == "regression" else [f"score({c})"
                                                             for c in eq.class_names]


__all__ = ["MAX_MISCLASSIFIED", "NO_RUN", "PAGES", "MapView", "Overview", "ValueGrid",
           "activation_map", "activation_text", "answer_text", "attribution_map",
           "cell_text", "class_grid", "class_maps", "classes_work", "coefficient_columns",
           "coefficient_rows", "diverging", "expected_errors",
           "explained_text", "feature_bars", "input_map", "misclassified_count",
           "misclassified_items", "neuron_views", "open_overview", "page_reasons",
           "plane_text", "probability_rows", "run_text", "sample_work", "scale_ticks",
           "sequential", "tick_text", "tile_at", "weight_grid", "weight_map"]
