"""What the first layer learned, and (for 2-D sets) what every hidden unit responds to.

The first layer with weights looks straight at the input, so its weights can be drawn in the
input's own terms: for images, each unit's weights (or each filter of a convolution) as an
image; for features, a table of units by feature names. For a 2-D set every hidden unit's
output over the plane is drawn, as TensorFlow Playground draws its neurons.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workbench.core.data import Splits
from workbench.core.tools.inspect.network import (
    ACTIVATIONS,
    WEIGHTED,
    check_cancel,
    feature_names,
    is_image,
    layer_label,
    layer_outputs,
    normalize,
)
from workbench.spec import LayerSpec

NEURON_RESOLUTION = 48  # grid points per side of a neuron map
NEURON_MARGIN = 0.1  # the plane reaches this share of the data's span beyond it
MAX_NEURONS = 64  # units drawn per layer


@dataclass(frozen=True)
class WeightImages:
    """The first layer's weights as images: a Linear unit's weights over the pixels it sees,
    or a convolution's filters. `weights` is (units, C, H, W)."""

    layer: str
    weights: np.ndarray
    what: str  # "units" or "filters"
    how_to_read: str


@dataclass(frozen=True)
class WeightTable:
    """The first layer's weights over named features: `weights` (units, F) per standard
    deviation of each feature (what the network multiplies), `raw` per unit of the feature
    in the data's own units (weights / std)."""

    layer: str
    feature_names: tuple[str, ...]
    weights: np.ndarray
    raw: np.ndarray
    how_to_read: str


@dataclass(frozen=True)
class LayerMaps:
    """Every unit's output of one layer over the plane: `maps` (shown, G, G), row 0 at the
    plane's lowest second coordinate; the first MAX_NEURONS of the layer's `units`."""

    layer: str
    maps: np.ndarray
    units: int
    output: bool = False  # the network's output: a class's probability each, or the value


@dataclass(frozen=True)
class NeuronMaps:
    """The 2-D set's plane (x0, x1, y0, y1 in the data's own units) and each layer's maps;
    `class_names` name the output layer's maps of a classifier."""

    extent: tuple[float, float, float, float]
    feature_names: tuple[str, ...]
    layers: tuple[LayerMaps, ...]
    how_to_read: str
    class_names: tuple[str, ...] = ()


def _first_weighted(model: nn.Sequential, layers: Sequence[LayerSpec]) -> int | None:
    return next((i for i, layer in enumerate(layers) if layer.type in WEIGHTED), None)


def first_layer(model: nn.Sequential, layers: Sequence[LayerSpec],
                splits: Splits) -> WeightImages | WeightTable | None:
    """The first Linear or Conv2d's weights in the input's terms; None when the network has
    none, or when it first sees something other than the input (its pixels or features)."""
    i = _first_weighted(model, layers)
    if i is None:
        return None
    module = model[i]
    if not isinstance(module, nn.Linear | nn.Conv2d):
        return None
    info = splits.info
    shape = tuple(info.input_shape)
    weight = module.weight.detach().to(torch.float32).cpu().numpy()
    label = layer_label(i, layers)
    if isinstance(module, nn.Conv2d):
        if not is_image(info) or module.in_channels != shape[0]:
            return None
        k = f"{module.kernel_size[0]}×{module.kernel_size[1]}"
        return WeightImages(label, weight, "filters", (
            f"Each tile is one of the {weight.shape[0]} {k} filters of layer {label}: the "
            "pattern of brightness it responds to most where it slides over the image. Red "
            "weights add the pixel's brightness to the filter's output, blue ones subtract it; "
            "the colour bar gives the values (on inputs normalized by the training images' "
            "mean and standard deviation)."))
    if module.in_features != math.prod(shape):
        return None
    if is_image(info):
        tiles = weight.reshape(weight.shape[0], *shape)
        side = f"{shape[1]}×{shape[2]}"
        return WeightImages(label, tiles, "units", (
            f"Each tile is one of the {tiles.shape[0]} units of layer {label}: its weights "
            f"over the {side} pixels, drawn where the pixels are. A unit's output is the sum "
            "of the image times its tile, so red areas are ink the unit looks for and blue "
            "areas are ink that speaks against it; white is ignored. The colour bar gives the "
            "weights (on pixels normalized by the training images' mean and standard "
            "deviation)."))
    std = np.asarray(splits.std, dtype=np.float64)
    return WeightTable(label, feature_names(info), weight, (weight / std).astype(np.float32), (
        f"Each row is one of the {weight.shape[0]} units of layer {label}, each column a "
        "feature. The colour is the weight per standard deviation of the feature (the "
        "network sees standardized inputs), so columns compare fairly: a strongly red or blue "
        "column is a feature the layer relies on, a pale one a feature it ignores. `raw` "
        "gives the weights per unit of each feature in the data's own units."))


def neuron_maps(model: nn.Sequential, layers: Sequence[LayerSpec], splits: Splits, *,
                resolution: int = NEURON_RESOLUTION,
                cancel: threading.Event | None = None) -> NeuronMaps | None:
    """Each hidden unit's output, and the output's, over a grid around the training points of
    a 2-D set; None for other inputs. A hidden unit's output is its activation layer's; the
    last layer is the network's output: each class's probability, or the predicted value."""
    if tuple(splits.info.input_shape) != (2,) or is_image(splits.info):
        return None
    points = splits.train_x.to(torch.float64).numpy()
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - NEURON_MARGIN * span, hi + NEURON_MARGIN * span
    xs = np.linspace(lo[0], hi[0], resolution)
    ys = np.linspace(lo[1], hi[1], resolution)
    gx, gy = np.meshgrid(xs, ys)  # row r is ys[r]: row 0 at the bottom of the plane
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32))
    check_cancel(cancel)
    outputs = layer_outputs(model, normalize(splits, grid))
    last = len(layers) - 1
    found = []
    for i, out in enumerate(outputs):
        if out.dim() != 2 or (i != last and layers[i].type not in ACTIVATIONS):
            continue
        values = out
        label = layer_label(i, layers)
        if i == last:
            if splits.info.num_classes > 0:
                values = torch.softmax(out, dim=1)
                label += " (output: each class's probability)"
            else:
                label += " (output: the predicted value)"
        units = values.shape[1]
        maps = values[:, :MAX_NEURONS].T.reshape(-1, resolution, resolution)
        found.append(LayerMaps(label, maps.numpy().astype(np.float32), units, i == last))
    names = feature_names(splits.info)
    return NeuronMaps((float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])), names,
                      tuple(found), (
        f"Each square is the plane of the data ({names[0]} across, {names[1]} up) coloured by "
        "one unit's output there, as TensorFlow Playground draws its neurons: the first "
        "hidden layer's units can only split the plane along straight lines; each later "
        "layer combines the earlier ones into curved regions, and the output layer's squares "
        "are the network's answer over the whole plane. Each layer has its own colour bar."),
        tuple(splits.info.class_names))


__all__ = ["LayerMaps", "NeuronMaps", "WeightImages", "WeightTable", "first_layer",
           "neuron_maps"]
