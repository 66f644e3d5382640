"""A trained network as Inspect walks it: its layers numbered as the editor numbers them, its
inputs normalized exactly as the trainer normalizes them, and every layer's output.

The network is the `nn.Sequential` that `core.model.build_model` makes: one module per layer
of the spec, in order, so module `i` is layer `i + 1` in the editor (`2 Linear`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workbench.core.data import DeviceBatches, Splits
from workbench.core.data.splits import DatasetInfo
from workbench.spec import LayerSpec
from workbench.spec.layers import layer_label as spec_layer_label

ACTIVATIONS = frozenset({"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU"})
WEIGHTED = frozenset({"Linear", "Conv2d"})
BATCH = 512  # samples per forward pass when a whole split is predicted

Progress = Callable[[int, int], None]


class InspectCancelled(Exception):
    """The caller's cancel event was set; what was computed so far is dropped."""


class InspectError(ValueError):
    """A request Inspect cannot answer (a sample that does not exist); one line says why."""


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise InspectCancelled("inspection cancelled")


def layer_label(index: int, layers: Sequence[LayerSpec]) -> str:
    """Layer `index` (0-based in the spec) as the model editor shows it: `2 Linear`."""
    return spec_layer_label(index, layers[index].type)


def feature_names(info: DatasetInfo) -> tuple[str, ...]:
    """The names of a flat input's features: a CSV's columns, `x1`, `x2` for 2-D sets, `x` for
    one feature; empty for images."""
    if info.is_image:
        return ()
    (count,) = info.input_shape
    if len(info.feature_names) == count:
        return tuple(info.feature_names)
    if count == 1:
        return ("x",)
    return tuple(f"x{k + 1}" for k in range(count))


def target_name(info: DatasetInfo) -> str:
    """What a regression predicts: the CSV's label column, else `y`."""
    return info.target.column if info.target is not None else "y"


def is_image(info: DatasetInfo) -> bool:
    """Whether the trainer treats the inputs as images (uint8, scaled to [0, 1] first)."""
    return info.kind == "image"


def test_batches(splits: Splits) -> DeviceBatches:
    """The test split on the CPU, normalized as the trainer normalizes it."""
    return DeviceBatches(splits.test_x, splits.test_y, mean=splits.mean, std=splits.std,
                         batch_size=BATCH, device=torch.device("cpu"), shuffle=False,
                         generator=None, image=is_image(splits.info))


def normalize(splits: Splits, raw: torch.Tensor) -> torch.Tensor:
    """Raw inputs (uint8 images, or features in their own units) as the network sees them:
    through the trainer's own batches."""
    n = len(raw)
    batches = DeviceBatches(raw, torch.zeros(n), mean=splits.mean, std=splits.std,
                            batch_size=max(1, n), device=torch.device("cpu"), shuffle=False,
                            generator=None, image=is_image(splits.info))
    return batches.batch(torch.arange(n))[0]


def raw_input(splits: Splits, index: int) -> np.ndarray:
    """Test sample `index` in its own units: an image in [0, 1] (C, H, W), or its features."""
    x = splits.test_x[index].to(torch.float32)
    if is_image(splits.info):
        x = x / 255.0
    return x.numpy().copy()


@torch.no_grad()
def layer_outputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every layer for the batch `x`, in order (the last is the network's)."""
    outputs = []
    for module in model:
        x = module(x)
        outputs.append(x)
    return outputs


@dataclass(frozen=True)
class Predictions:
    """The network's answers on the whole test split.

    `predicted` and `truth` are class indices (int64) or values (float64, the target's own
    units); `probabilities` (N, K) for classes, None for a quantity."""

    task: str  # "classification" or "regression"
    class_names: tuple[str, ...]
    predicted: np.ndarray
    truth: np.ndarray
    probabilities: np.ndarray | None

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.truth

    @property
    def accuracy(self) -> float | None:
        if self.task != "classification" or len(self.truth) == 0:
            return None
        return float(self.correct.mean())

    def misclassified(self, limit: int | None = None) -> list[tuple[int, int, int]]:
        """(test index, true class, predicted class) of the wrong answers, in test order."""
        if self.task != "classification":
            return []
        wrong = np.flatnonzero(~self.correct)[:limit]
        return [(int(i), int(self.truth[i]), int(self.predicted[i])) for i in wrong]


def predict(model: nn.Sequential, splits: Splits, *, cancel: threading.Event | None = None,
            progress: Progress | None = None) -> Predictions:
    """The model's answers on the test split (model in eval mode)."""
    info = splits.info
    batches = test_batches(splits)
    n = batches.num_samples
    outs = []
    with torch.no_grad():
        for start in range(0, n, BATCH):
            check_cancel(cancel)
            xb, _ = batches.batch(torch.arange(start, min(n, start + BATCH)))
            outs.append(model(xb).float())
            if progress is not None:
                progress(min(n, start + BATCH), n)
    width = info.num_classes if info.num_classes > 0 else 1
    out = torch.cat(outs) if outs else torch.zeros((0, width))
    if info.num_classes > 0:
        probs = torch.softmax(out, dim=1)
        return Predictions("classification", tuple(info.class_names),
                           out.argmax(1).numpy().astype(np.int64),
                           splits.test_y.numpy().astype(np.int64), probs.numpy())
    return Predictions("regression", (), out[:, 0].numpy().astype(np.float64),
                       splits.test_y.reshape(-1).numpy().astype(np.float64), None)


__all__ = [
    "ACTIVATIONS",
    "WEIGHTED",
    "InspectCancelled",
    "InspectError",
    "Predictions",
    "check_cancel",
    "feature_names",
    "is_image",
    "layer_label",
    "layer_outputs",
    "normalize",
    "predict",
    "raw_input",
    "target_name",
    "test_batches",
]
