"""A network with no hidden layer as an equation in the data's own units.

The trainer standardizes every input with the train split's statistics before the network
sees it (x' = (x - mean) / std; an image's pixels are first divided by 255), and trains the
targets as they are (a regression's target is not standardized: the loss is the mean squared
error in the target's own units). So a Linear layer's w and b are in standardized units: for
y = 3x + 2 on x from 0 to 100 it stores w = 84.1 (3 times the standard deviation of the
training x) and b = 154.5 (the mean of the training y). In the data's own units:

    w_raw = w / std,    b_raw = b - sum(w * mean / std)

which for that line gives y = 3·x + 2. For classes, each class's score (the logit before the
softmax) is such an equation; with two classes the log-odds of the second against the first
is the difference of the two, which is the logistic regression equation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from workbench.core.data import Splits
from workbench.core.tools.inspect.network import (
    feature_names,
    is_image,
    layer_label,
    target_name,
)
from workbench.spec import LayerSpec

PASS_THROUGH = frozenset({"Flatten", "Dropout"})  # the identity at inference
MAX_TERMS = 20  # features written out in an equation's text; beyond, see the weights
MAX_STORED = 100  # coefficients kept in a run's summary (per output)


@dataclass(frozen=True)
class Equation:
    """The network's output(s) as sums of its inputs in their own units.

    `coefficients` (outputs, F) and `intercepts` (outputs,) are in the data's units;
    `lines` are the equations as text, `note` says how to read them."""

    task: str  # "regression" or "classification"
    layer: str
    output_name: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    coefficients: np.ndarray
    intercepts: np.ndarray
    lines: tuple[str, ...]
    note: str

    def to_summary(self) -> dict[str, Any]:
        """The run summary's `equation` entry: plain JSON, bounded in size."""
        entry: dict[str, Any] = {"task": self.task, "layer": self.layer, "units": "raw",
                                 "text": self.lines[0], "lines": list(self.lines),
                                 "note": self.note, "features": len(self.feature_names)}
        if len(self.feature_names) <= MAX_STORED:
            names = self.feature_names
            if self.task == "regression":
                entry["coefficients"] = {n: float(v) for n, v in
                                         zip(names, self.coefficients[0], strict=True)}
                entry["intercept"] = float(self.intercepts[0])
            else:
                entry["coefficients"] = {c: {n: float(v) for n, v in
                                             zip(names, row, strict=True)}
                                         for c, row in zip(self.class_names, self.coefficients,
                                                           strict=True)}
                entry["intercepts"] = {c: float(b) for c, b in
                                       zip(self.class_names, self.intercepts, strict=True)}
        return entry


def linear_layer(layers: Sequence[LayerSpec]) -> int | None:
    """The index of the one Linear layer of a network that has no hidden layer (every other
    layer a Flatten or Dropout); None for any other network."""
    linear = [i for i, layer in enumerate(layers) if layer.type == "Linear"]
    others = [layer for layer in layers if layer.type != "Linear"]
    if len(linear) != 1 or any(layer.type not in PASS_THROUGH for layer in others):
        return None
    return linear[0]


def number(value: float) -> str:
    """A coefficient as the equations write it: five significant digits, no exponent for
    ordinary sizes (`3.0008`, `1.946`, `-0.00012`)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return f"{value:.5g}"


def _sum(coefficients: np.ndarray, intercept: float, names: Sequence[str]) -> str:
    terms = [(float(w), f"·{name}") for w, name in zip(coefficients, names, strict=True)]
    terms.append((float(intercept), ""))
    text = ""
    for k, (value, name) in enumerate(terms):
        shown = number(abs(value)) + name
        if k == 0:
            text = ("-" if value < 0 else "") + shown
        else:
            text += f" {'-' if value < 0 else '+'} {shown}"
    return text


def linear_equation(model: nn.Sequential, layers: Sequence[LayerSpec],
                    splits: Splits) -> Equation | None:
    """The equation of a network with no hidden layer, in the data's own units; None for
    other networks (and for images, whose pixels are better read as weight images, the
    equation has a term per pixel and its text says so)."""
    at = linear_layer(layers)
    if at is None:
        return None
    module = model[at]
    assert isinstance(module, nn.Linear)
    info = splits.info
    w = module.weight.detach().double().cpu().numpy()
    b = (module.bias.detach().double().cpu().numpy() if module.bias is not None
         else np.zeros(w.shape[0]))
    mean = np.asarray(splits.mean, dtype=np.float64)
    std = np.asarray(splits.std, dtype=np.float64)
    if is_image(info):  # x' = (pixel / 255 - mean_c) / std_c, channel by channel
        c, h, wd = info.input_shape
        scale = np.repeat(1.0 / (255.0 * std), h * wd)
        shift = np.repeat(mean / std, h * wd)
        names = tuple(f"pixel[{ch},{r},{col}]" if c > 1 else f"pixel[{r},{col}]"
                      for ch in range(c) for r in range(h) for col in range(wd))
    else:
        scale, shift = 1.0 / std, mean / std
        names = feature_names(info)
    coefficients = w * scale
    intercepts = b - w @ shift
    label = layer_label(at, layers)
    if info.num_classes == 0:
        task, out = "regression", target_name(info)
        lines = [f"{out} = {_sum(coefficients[0], intercepts[0], names)}"]
        note = (f"Layer {label} is the whole model: linear regression. In the data's own "
                f"units (the trainer's standardization of the inputs undone; the target "
                f"{out!r} is trained as it is).")
    else:
        task, out = "classification", "class"
        classes = tuple(info.class_names)
        if len(classes) == 2:
            lines = [f"log(P({classes[1]}) / P({classes[0]})) = "
                     + _sum(coefficients[1] - coefficients[0], intercepts[1] - intercepts[0],
                            names)]
        else:
            lines = []
        lines += [f"score({name}) = {_sum(row, bias, names)}"
                  for name, row, bias in zip(classes, coefficients, intercepts, strict=True)]
        note = (f"Layer {label} is the whole model: logistic regression. Each class's score; "
                "the probabilities are the softmax of the scores"
                + (", so the first line is the log-odds" if len(classes) == 2 else "")
                + ". In the data's own units (the trainer's standardization undone).")
    if len(names) > MAX_TERMS:
        what = "pixel" if is_image(info) else "feature"
        lines = [line.split(" = ", 1)[0] + f" = a sum over {len(names):,} {what}s plus "
                 f"{number(float(b_))} (too long to write; the weights show it)"
                 for line, b_ in zip(lines, _line_intercepts(intercepts, len(lines)),
                                     strict=True)]
    return Equation(task, label, out, names, tuple(info.class_names), coefficients,
                    intercepts, tuple(lines), note)


def _line_intercepts(intercepts: np.ndarray, count: int) -> list[float]:
    """The intercept of each line: with two classes the log-odds line comes first."""
    values = [float(v) for v in intercepts]
    if count == len(values) + 1:
        return [values[1] - values[0], *values]
    return values


__all__ = ["Equation", "linear_equation", "linear_layer", "number"]
