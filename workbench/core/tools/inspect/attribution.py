"""Which parts of an input made the network answer as it did: attribution maps from Captum.

- *Saliency* (Simonyan et al. 2014): how strongly the answer's score changes with each input
  value, |d score / d input|.
- *Integrated Gradients* (Sundararajan et al. 2017): each input value's share of the score's
  difference from a baseline input. The baseline is the training data's average (zero after
  the trainer's normalization: a uniform grey image at the mean brightness, or every feature
  at its mean), so a map can also credit a pixel for being darker than usual.
- *Grad-CAM* (Selvaraju et al. 2017), for convolutional networks: which regions of the last
  convolutional block's feature maps the answer rests on, scaled up to the input's size.

Scores are the network's outputs before the softmax (the class explained is the predicted
one unless another is asked for; a regression's single output). Attributions are over the
inputs as the network sees them (normalized); maps keep the input's shape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workbench.core.tools.inspect.network import (
    InspectError,
    check_cancel,
    layer_label,
    layer_outputs,
)
from workbench.spec import LayerSpec

IG_STEPS = 50  # integration steps for one sample
CLASS_IG_STEPS = 32  # per sample, when a class's samples are averaged
CLASS_BATCH = 16  # samples attributed together
POOLING = frozenset({"MaxPool2d", "AvgPool2d"})

METHODS: dict[str, str] = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated Gradients",
    "grad_cam": "Grad-CAM",
}

HOW_TO_READ: dict[str, str] = {
    "saliency": (
        "Saliency: how much the score of the answer would change if each input value changed "
        "a little (the gradient's size). Bright places are where the network is most "
        "sensitive; it does not say in which direction, nor whether the value there is "
        "present in this input."),
    "integrated_gradients": (
        "Integrated Gradients: each input value's share of the answer's score, measured from "
        "the average training input (a uniform grey image, or every feature at its mean). Red "
        "pushes toward the answer, blue away from it; the map adds up to the score's "
        "difference from the average input's score."),
    "grad_cam": (
        "Grad-CAM: the regions of the image the answer rests on, read from the last "
        "convolutional block's feature maps (coarser than the image, scaled up to it). Warm "
        "regions support the answer; places with no colour do not."),
}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Attribution:
    """One method's map for one sample: `values` has the input's shape ((C, H, W) or (F,));
    Grad-CAM's is (1, H, W). `target` is the class explained (0 for a regression's output).
    `delta` is Integrated Gradients' completeness error (the map's sum minus the score's
    difference from the baseline), None for the others; `layer` the layer Grad-CAM reads."""

    method: str
    title: str
    values: np.ndarray
    target: int
    how_to_read: str
    delta: float | None = None
    layer: str | None = None


@dataclass(frozen=True)
class ClassAttribution:
    """The average attribution of each class's correctly classified test samples: `maps`
    (K, *input shape), `counts` the samples averaged per class (0: none was right)."""

    method: str
    title: str
    class_names: tuple[str, ...]
    maps: np.ndarray
    counts: tuple[int, ...]
    how_to_read: str


def grad_cam_layer(model: nn.Sequential, layers: Sequence[LayerSpec],
                   example: torch.Tensor) -> int | None:
    """The layer Grad-CAM reads: the last one with (C, H, W) outputs that is not a pooling
    layer (the last convolutional block's output); None for a network without one."""
    outputs = layer_outputs(model, example[:1])
    found = [i for i, out in enumerate(outputs) if out.dim() == 4]
    if not found:
        return None
    unpooled = [i for i in found if layers[i].type not in POOLING]
    return (unpooled or found)[-1]


def methods_for(model: nn.Sequential, layers: Sequence[LayerSpec],
                example: torch.Tensor) -> tuple[str, ...]:
    """The methods that apply to this network (Grad-CAM needs a convolutional one)."""
    base = ("saliency", "integrated_gradients")
    return (*base, "grad_cam") if grad_cam_layer(model, layers, example) is not None else base


def attribute(model: nn.Sequential, layers: Sequence[LayerSpec], x: torch.Tensor, target: int,
              methods: Sequence[str], *,
              cancel: threading.Event | None = None) -> tuple[Attribution, ...]:
    """Each method's map of the normalized input `x` (one sample, batch dimension first) for
    output `target`, in the order asked."""
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InspectError(f"unknown attribution method {unknown[0]!r} (known: "
                           f"{', '.join(METHODS)})")
    found = []
    with torch.enable_grad():
        for method in methods:
            check_cancel(cancel)
            inputs = x.detach().clone().requires_grad_(True)
            delta: float | None = None
            label: str | None = None
            if method == "saliency":
                values = Saliency(model).attribute(inputs, target=target, abs=True)
            elif method == "integrated_gradients":
                values, gap = IntegratedGradients(model).attribute(
                    inputs, baselines=torch.zeros_like(inputs), target=target,
                    n_steps=IG_STEPS, internal_batch_size=IG_STEPS,
                    return_convergence_delta=True)
                delta = float(gap.abs().max())
            else:
                at = grad_cam_layer(model, layers, x)
                if at is None:
                    raise InspectError("Grad-CAM needs a convolutional network (a layer with "
                                       "channels, height and width)")
                cam = LayerGradCam(model, model[at]).attribute(inputs, target=target,
                                                               relu_attributions=True)
                values = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]),
                                                      interpolate_mode="bilinear")
                label = layer_label(at, layers)
            found.append(Attribution(method, METHODS[method],
                                     values.detach()[0].to(torch.float32).numpy().copy(),
                                     target, HOW_TO_READ[method], delta, label))
    return tuple(found)


def class_attribution(model: nn.Sequential, x: torch.Tensor, predicted: np.ndarray,
                      truth: np.ndarray, class_names: Sequence[str], *,
                      method: str = "integrated_gradients", per_class: int = 50,
                      cancel: threading.Event | None = None,
                      progress: Progress | None = None) -> ClassAttribution:
    """The mean attribution (toward its own class) of up to `per_class` correctly classified
    samples of each class, the first ones in test order. `x` is the normalized test split."""
    from captum.attr import IntegratedGradients, Saliency

    if method not in ("saliency", "integrated_gradients"):
        raise InspectError(f"class averages use saliency or integrated_gradients, got "
                           f"{method!r}")
    k = len(class_names)
    chosen = [np.flatnonzero((truth == c) & (predicted == c))[:per_class] for c in range(k)]
    total = sum(len(c) for c in chosen)
    maps = np.zeros((k, *x.shape[1:]), dtype=np.float64)
    done = 0
    with torch.enable_grad():
        for c, indices in enumerate(chosen):
            for start in range(0, len(indices), CLASS_BATCH):
                check_cancel(cancel)
                part = torch.from_numpy(indices[start:start + CLASS_BATCH])
                inputs = x[part].detach().clone().requires_grad_(True)
                if method == "saliency":
                    values = Saliency(model).attribute(inputs, target=c, abs=True)
                else:
                    values = IntegratedGradients(model).attribute(
                        inputs, baselines=torch.zeros_like(inputs), target=c,
                        n_steps=CLASS_IG_STEPS,
                        internal_batch_size=CLASS_IG_STEPS * len(part))
                maps[c] += values.detach().to(torch.float64).sum(0).numpy()
                done += len(part)
                if progress is not None:
                    progress(done, total)
            if len(indices):
                maps[c] /= len(indices)
    return ClassAttribution(method, METHODS[method], tuple(class_names),
                            maps.astype(np.float32), tuple(len(c) for c in chosen), (
        f"Each picture is the average {METHODS[method]} map of the test samples of one class "
        f"that the network got right (up to {per_class} of each, the count beside the class's "
        "name): what the network looks at, in general, to recognise that class. "
        + _sentence(HOW_TO_READ[method].split(": ", 1)[1])))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


__all__ = ["HOW_TO_READ", "METHODS", "Attribution", "ClassAttribution", "attribute",
           "class_attribution", "grad_cam_layer", "methods_for"]
