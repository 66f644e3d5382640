"""The layer catalogue: each layer's parameters, defaults, shape rule and cost, as data.

Shapes and costs are computed here by arithmetic, never by building a module, so the editor
can update every row as a person types; `core.model` builds the torch modules. Shapes leave out
the batch dimension.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.spec.checks import Bound, SpecError, key_name, show

Shape = tuple[int, ...]


class LayerLike(Protocol):
    """What the catalogue needs of a layer: the spec's `LayerSpec` has it."""

    type: str
    params: dict[str, Any]


class ShapeError(ValueError):
    """A layer that cannot take its input; the message says both shapes and what to do."""


@dataclass(frozen=True)
class ParamDef:
    """One parameter of a layer; numbers have both bounds (the editor's range comes from them)."""

    name: str
    kind: type  # int, float or bool
    default: Any
    lo: float = 0
    hi: float = 0
    optional: bool = False  # None allowed (e.g. a pooling stride that defaults to the kernel)
    help: str = ""

    @property
    def bound(self) -> Bound:
        return Bound(self.lo, self.hi, integer=self.kind is int)


@dataclass(frozen=True)
class Cost:
    out_shape: Shape
    params: int
    macs: int  # multiply-accumulates per sample


@dataclass(frozen=True)
class LayerType:
    name: str
    category: str
    params: tuple[ParamDef, ...]
    rule: Callable[[dict[str, Any], Shape], Cost]
    help: str = ""

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """The full parameter set: the given values over the defaults."""
        return {p.name: given.get(p.name, p.default) for p in self.params}


def shape_text(shape: Shape) -> str:
    """A shape as the app writes it everywhere: `3` for 3 features, `1×28×28` for an image
    (never a Python tuple such as `(3,)`)."""
    return "×".join(str(d) for d in shape) if shape else "a single number"


def layer_number(index: int) -> int:
    """Layer `index` (0-based in the spec) as the editor numbers it: from 1. Every place that
    names a layer for a person counts this way (`layer_name`, `layer_label`)."""
    return index + 1


def layer_name(index: int, type_name: object) -> str:
    """Layer `index` (0-based in the spec) in a sentence, numbered as the editor shows it:
    `layer 6 (Linear)`."""
    number = layer_number(index)
    return f"layer {number} ({type_name})" if isinstance(type_name, str) else f"layer {number}"


def layer_label(index: int, type_name: str) -> str:
    """Layer `index` (0-based in the spec) as a chart, a list or a table names it, as the
    editor's row reads: `2 Linear`."""
    return f"{layer_number(index)} {type_name}"


def _flat(name: str, shape: Shape) -> int:
    if len(shape) != 1:
        raise ShapeError(f"{name} needs a flat input (features), got {shape_text(shape)}; "
                         "add a Flatten before it")
    return shape[0]


def _image(name: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{name} needs an image input (channels×height×width), got "
                         f"{shape_text(shape)}")
    return shape


def _linear(p: dict[str, Any], shape: Shape) -> Cost:
    n_in = _flat("Linear", shape)
    out = p["out"]
    return Cost((out,), n_in * out + (out if p["bias"] else 0), n_in * out)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _conv2d(p: dict[str, Any], shape: Shape) -> Cost:
    c, h, w = _image("Conv2d", shape)
    k, s, pad = p["kernel"], p["stride"], p["padding"]
    if k > h + 2 * pad or k > w + 2 * pad:
        raise ShapeError(
            f"Conv2d kernel {k}×{k} is larger than its padded input {h + 2 * pad}×{w + 2 * pad} "
            f"(input {shape_text(shape)}); use a smaller kernel or more padding"
        )
    oh, ow = _conv_out(h, k, s, pad), _conv_out(w, k, s, pad)
    out = p["out"]
    params = c * out * k * k + (out if p["bias"] else 0)
    return Cost((out, oh, ow), params, c * k * k * out * oh * ow)


def _pool(kind: str) -> Callable[[dict[str, Any], Shape], Cost]:
    def rule(p: dict[str, Any], shape: Shape) -> Cost:
        c, h, w = _image(kind, shape)
        k = p["kernel"]
        s = p["stride"] or k
        if k > h or k > w:
            raise ShapeError(f"{kind} window {k}×{k} is larger than its input {h}×{w}")
        oh, ow = _conv_out(h, k, s, 0), _conv_out(w, k, s, 0)
        return Cost((c, oh, ow), 0, c * oh * ow * k * k)

    return rule


def _global_avg(p: dict[str, Any], shape: Shape) -> Cost:
    c, h, w = _image("GlobalAvgPool", shape)
    return Cost((c,), 0, c * h * w)


def _batchnorm(p: dict[str, Any], shape: Shape) -> Cost:
    if len(shape) not in (1, 3):
        raise ShapeError("BatchNorm needs features or channels×height×width, got "
                         f"{shape_text(shape)}")
    n = math.prod(shape)
    return Cost(shape, 2 * shape[0], 2 * n)


def _flatten(p: dict[str, Any], shape: Shape) -> Cost:
    return Cost((math.prod(shape),), 0, 0)


def _elementwise(p: dict[str, Any], shape: Shape) -> Cost:
    return Cost(shape, 0, 0)


_BIAS = ParamDef("bias", bool, True, help="learn an additive bias")
# Bounds on sizes. A person clicking a network together wants far less than these; beyond
# them a single layer would fill a workstation's memory before it trained one step.
MAX_FEATURES = 65_536  # a Linear layer's outputs
MAX_CHANNELS = 4_096  # a convolution's output channels
MAX_WINDOW = 64  # kernels, strides and padding (images here are at most 64x64)
MAX_LAYERS = 1_000

CATALOGUE: dict[str, LayerType] = {
    t.name: t
    for t in (
        LayerType("Linear", "Dense", (ParamDef("out", int, 64, lo=1, hi=MAX_FEATURES,
                                               help="output features"),
                                      _BIAS), _linear, "a fully connected layer"),
        LayerType("Conv2d", "Convolution", (
            ParamDef("out", int, 16, lo=1, hi=MAX_CHANNELS, help="output channels"),
            ParamDef("kernel", int, 3, lo=1, hi=MAX_WINDOW, help="kernel size"),
            ParamDef("stride", int, 1, lo=1, hi=MAX_WINDOW),
            ParamDef("padding", int, 0, lo=0, hi=MAX_WINDOW),
            _BIAS,
        ), _conv2d, "a 2-D convolution over images"),
        LayerType("MaxPool2d", "Pooling", (
            ParamDef("kernel", int, 2, lo=1, hi=MAX_WINDOW),
            ParamDef("stride", int, None, lo=1, hi=MAX_WINDOW, optional=True,
                     help="empty: the kernel size"),
        ), _pool("MaxPool2d"), "the largest value in each window"),
        LayerType("AvgPool2d", "Pooling", (
            ParamDef("kernel", int, 2, lo=1, hi=MAX_WINDOW),
            ParamDef("stride", int, None, lo=1, hi=MAX_WINDOW, optional=True,
                     help="empty: the kernel size"),
        ), _pool("AvgPool2d"), "the mean of each window"),
        LayerType("GlobalAvgPool", "Pooling", (), _global_avg,
                  "the mean of each channel: (C,H,W) -> (C,)"),
        LayerType("BatchNorm", "Normalization", (), _batchnorm,
                  "normalizes each feature or channel over the batch (1d or 2d from its input)"),
        LayerType("Dropout", "Regularization", (
            ParamDef("p", float, 0.5, lo=0.0, hi=0.99, help="share of units dropped in training"),
        ), _elementwise, "zeroes random units while training"),
        LayerType("Flatten", "Reshape", (), _flatten, "C×H×W → C·H·W features"),
        LayerType("ReLU", "Activation", (), _elementwise, "max(0, x)"),
        LayerType("LeakyReLU", "Activation", (
            ParamDef("slope", float, 0.01, lo=0.0, hi=1.0, help="slope for x < 0"),
        ), _elementwise, "x for x > 0, slope * x otherwise"),
        LayerType("Sigmoid", "Activation", (), _elementwise, "1 / (1 + e^-x)"),
        LayerType("Tanh", "Activation", (), _elementwise, "tanh(x)"),
        LayerType("GELU", "Activation", (), _elementwise, "x * Phi(x)"),
    )
}


def validate_layer(layer: LayerLike, index: int) -> None:
    """Check layer `index`'s type and parameter values (not its shapes); raise SpecError
    naming its field and the layer as the editor numbers it."""
    path = f"model.layers[{index}]"
    where = layer_name(index, layer.type)
    ltype = CATALOGUE.get(layer.type) if isinstance(layer.type, str) else None
    if ltype is None:
        raise SpecError(f"{path}.type", f"unknown layer {show(layer.type)} "
                                        f"(known: {', '.join(CATALOGUE)})", layer_name(index, None))
    known = {p.name: p for p in ltype.params}
    for key in layer.params:
        if key not in known:
            allowed = ", ".join(known) or "no parameters"
            raise SpecError(f"{path}.{key_name(key)}",
                            f"{layer.type} has no parameter {show(key)} ({allowed})", where)
    for name, value in layer.params.items():
        p = known[name]
        field = f"{path}.{name}"
        if value is None and p.optional:
            continue
        try:
            if p.kind is bool:
                if not isinstance(value, bool):
                    raise SpecError(field, f"must be true or false, got {show(value)}")
            else:
                p.bound.check(field, value)
        except SpecError as exc:
            raise SpecError(exc.path, exc.reason, where) from None


def layer_cost(layer: LayerLike, in_shape: Shape) -> Cost:
    ltype = CATALOGUE[layer.type]
    return ltype.rule(ltype.resolve(layer.params), in_shape)
