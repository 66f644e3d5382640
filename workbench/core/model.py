"""Spec -> nn.Sequential, and the per-layer report the editor shows while a person edits.

`analyze` is pure arithmetic (no torch modules are built), so it is cheap enough to run on
every keystroke; `build_model` builds the real module once a stack is known to fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.spec import LayerSpec, SpecError
from workbench.spec.layers import (
    CATALOGUE,
    Shape,
    ShapeError,
    layer_cost,
    layer_name,
    shape_text,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from workbench.core.data.tables import TargetReading


MAX_READABLE_CLASSES = 1_000  # core.data.tables.MAX_CLASSES, not imported: it loads numpy


@dataclass(frozen=True)
class LayerReport:
    index: int
    type: str
    in_shape: Shape
    out_shape: Shape | None  # None: this layer (or one before it) does not fit
    params: int
    macs: int
    error: str | None = None


@dataclass(frozen=True)
class ModelReport:
    input_shape: Shape
    layers: tuple[LayerReport, ...]
    error: SpecError | None  # the first problem, naming the layer; None when the stack fits

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def param_bytes(self) -> int:
        return 4 * self.total_params

    @property
    def output_shape(self) -> Shape | None:
        return self.layers[-1].out_shape if self.layers else self.input_shape

    @property
    def ok(self) -> bool:
        return self.error is None


def analyze(layers: list[LayerSpec], input_shape: Shape, num_classes: int | None, *,
            target: TargetReading | None = None) -> ModelReport:
    """Shapes, parameters and MACs of every layer; the first shape problem, if any.

    `num_classes` 0 means regression (one output); None skips the output check. `target`
    (a CSV's `DatasetInfo.target`) lets a mismatched last layer offer both readings of the
    label column: as classes, or as a quantity.
    """
    reports: list[LayerReport] = []
    error: SpecError | None = None
    shape: Shape | None = tuple(input_shape)
    for i, layer in enumerate(layers):
        path = f"model.layers[{i}]"
        where = layer_name(i, layer.type)
        if layer.type not in CATALOGUE:
            error = error or SpecError(f"{path}.type", f"unknown layer {layer.type!r}",
                                       layer_name(i, None))
            reports.append(LayerReport(i, layer.type, shape or (), None, 0, 0, "unknown layer"))
            shape = None
            continue
        if shape is None:
            reports.append(LayerReport(i, layer.type, (), None, 0, 0, None))
            continue
        try:
            cost = layer_cost(layer, shape)
        except ShapeError as exc:
            error = error or SpecError(path, str(exc), where)
            reports.append(LayerReport(i, layer.type, shape, None, 0, 0, str(exc)))
            shape = None
            continue
        except (TypeError, ValueError) as exc:
            error = error or SpecError(path, f"bad parameters ({exc})", where)
            reports.append(LayerReport(i, layer.type, shape, None, 0, 0, str(exc)))
            shape = None
            continue
        reports.append(LayerReport(i, layer.type, shape, cost.out_shape, cost.params, cost.macs))
        shape = cost.out_shape
    if error is None and not layers:
        error = SpecError("model.layers", "the network needs at least one layer")
    if error is None and num_classes is not None and shape is not None:
        error = _output_problem(layers, shape, num_classes, target)
        if error is not None:
            last = reports[-1]
            reports[-1] = LayerReport(last.index, last.type, last.in_shape, last.out_shape,
                                      last.params, last.macs, error.reason)
    return ModelReport(tuple(input_shape), tuple(reports), error)


def _output_problem(layers: list[LayerSpec], shape: Shape, num_classes: int,
                    target: TargetReading | None = None) -> SpecError | None:
    want = num_classes if num_classes > 0 else 1
    if shape == (want,):
        return None
    i = len(layers) - 1
    what = f"{num_classes} classes" if num_classes > 0 else "a regression target (1 output)"
    fix = f"make the last Linear's out {want}" if len(shape) == 1 else "add Flatten and Linear"
    if target is not None and len(shape) == 1:
        column = f"the column {target.column!r}"
        if num_classes > 0 and target.numeric:
            what = f"{num_classes} classes ({column} read as categories)"
            fix = (f"make the last Linear's out {want} to treat them as {want} classes, or set "
                   "data.target to quantity to predict a number")
        elif num_classes == 0 and 2 <= target.distinct <= MAX_READABLE_CLASSES:
            what = f"a quantity to predict (1 output: {column} read as a number)"
            fix = (f"make the last Linear's out 1 to predict a number, or set data.target to "
                   f"category to treat its {target.distinct} values as {target.distinct} "
                   "classes")
    return SpecError(
        f"model.layers[{i}]",
        f"the network ends with shape {shape_text(shape)} but the dataset has {what}; {fix}",
        layer_name(i, layers[i].type),
    )


def check(layers: list[LayerSpec], input_shape: Shape, num_classes: int | None, *,
          target: TargetReading | None = None) -> ModelReport:
    """`analyze`, raising the first problem as a SpecError."""
    report = analyze(layers, input_shape, num_classes, target=target)
    if report.error is not None:
        raise report.error
    return report


def build_model(layers: list[LayerSpec], input_shape: Shape, *,
                generator: torch.Generator | None = None,
                dropout: torch.Generator | None = None) -> nn.Sequential:
    """The torch model for a stack known to fit (call `check` first for a clear message).

    A run passes its own generators: `generator` for the initial weights, `dropout` for
    Dropout's masks (`network.assemble`); without them the layers draw from torch's global
    generator, as nn's layers do by themselves."""
    from workbench.core.network import assemble

    shaped = []
    shape = tuple(input_shape)
    for layer in layers:
        shaped.append((layer.type, CATALOGUE[layer.type].resolve(layer.params), shape))
        shape = layer_cost(layer, shape).out_shape
    return assemble(shaped, generator=generator, dropout=dropout)


def build_to_load(layers: list[LayerSpec], input_shape: Shape) -> nn.Sequential:
    """The network for weights loaded next (a stored run's, a pruned copy's). Its first
    weights are thrown away, so they come from a generator of their own: drawing them from the
    process's would move the random numbers of any job drawing from it."""
    import torch

    return build_model(layers, input_shape, generator=torch.Generator())


def module_for(t: str, p: dict[str, Any], in_shape: tuple[int, ...]) -> nn.Module:
    """The torch module of layer type `t` with its full parameters `p` (defaults resolved)
    taking `in_shape`. Self-contained: the exported training script carries its source."""
    from torch import nn

    if t == "Linear":
        return nn.Linear(in_shape[0], p["out"], bias=p["bias"])
    if t == "Conv2d":
        return nn.Conv2d(in_shape[0], p["out"], p["kernel"], p["stride"], p["padding"],
                         bias=p["bias"])
    if t == "MaxPool2d":
        return nn.MaxPool2d(p["kernel"], p["stride"] or p["kernel"])
    if t == "AvgPool2d":
        return nn.AvgPool2d(p["kernel"], p["stride"] or p["kernel"])
    if t == "GlobalAvgPool":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if t == "BatchNorm":
        return nn.BatchNorm1d(in_shape[0]) if len(in_shape) == 1 else nn.BatchNorm2d(in_shape[0])
    if t == "Dropout":
        return nn.Dropout(p["p"])
    if t == "Flatten":
        return nn.Flatten()
    if t == "LeakyReLU":
        return nn.LeakyReLU(p["slope"])
    simple = {"ReLU": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "GELU": nn.GELU}
    return simple[t]()
