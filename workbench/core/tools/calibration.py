"""The calibration sample of a run, and the value ranges that 8-bit quantization has to cover.

Static quantization measures each activation's range on a sample of the run's own training
split, normalized as in training and not augmented: `calibration_sample` draws it (seeded, so a
run quantizes the same way twice) and `calibration_reader` feeds it to onnxruntime.
`value_ranges` shows the same sample layer by layer, as MATLAB's Deep Network Quantizer does: a
histogram of log2|x| of each layer's weights and outputs, the span 8 bits cover at that
tensor's scale, and the share of nonzero values below half a step, which round to zero.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.core.data import DeviceBatches, Splits
from workbench.core.data.cache import DataSource
from workbench.core.store.runs import RunError
from workbench.core.tools.compress_settings import DEFAULT_CALIBRATION, MAX_CALIBRATION
from workbench.core.tools.trained import load_trained
from workbench.spec.layers import layer_label

CALIBRATION_BATCH = 128
SKIPPED = ("Dropout", "Flatten")  # their outputs are their inputs (in eval mode)


class CalibrationError(ValueError):
    """A calibration request that cannot be met; the message says why."""


def model_inputs(splits: Splits, x: torch.Tensor, *, raw: bool = False) -> torch.Tensor:
    """`x` as the exported graph takes it: normalized as in training, or raw float32 values."""
    if raw:
        return x.to(torch.float32)
    y = torch.zeros(len(x), dtype=torch.long)
    batches = DeviceBatches(x, y, mean=splits.mean, std=splits.std, batch_size=max(1, len(x)),
                            device=torch.device("cpu"), shuffle=False, generator=None,
                            image=splits.info.is_image)
    return batches.batch(torch.arange(len(x)))[0]


def calibration_sample(splits: Splits, count: int, *, seed: int = 0,
                       raw: bool = False) -> np.ndarray:
    """`count` training samples drawn without replacement (all of them when fewer), as float32."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_CALIBRATION:
        raise CalibrationError(f"calibration samples must be between 1 and {MAX_CALIBRATION:,}, "
                               f"got {count!r}")
    n = len(splits.train_x)
    if n == 0:
        raise CalibrationError("the run's training split is empty: nothing to calibrate on")
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n, generator=generator)[:count].sort().values
    return model_inputs(splits, splits.train_x[idx], raw=raw).numpy()


def calibration_reader(sample: np.ndarray, input_name: str,
                       batch: int = CALIBRATION_BATCH) -> Any:
    """onnxruntime's CalibrationDataReader over a calibration sample, `batch` samples a call."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = [{input_name: sample[i:i + batch]}
                            for i in range(0, len(sample), batch)]
            self.position = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.position >= len(self.batches):
                return None
            self.position += 1
            return self.batches[self.position - 1]

        def rewind(self) -> None:
            self.position = 0

    return Reader()


@dataclass(frozen=True)
class ValueRange:
    """One tensor's values on the calibration sample, against its 8-bit grid."""

    layer: int  # index in the stack
    label: str  # "2 Linear", as the editor numbers layers (`spec.layers.layer_label`)
    tensor: str  # "weights" or "activations"
    count: int
    minimum: float
    maximum: float
    step: float  # the int8 scale: weights symmetric per tensor, activations asymmetric
    exponents: tuple[int, ...]  # histogram bins: |x| in [2**e, 2**(e+1))
    counts: tuple[int, ...]
    zeros: int  # exactly zero (a ReLU's output, a pruned weight): represented exactly
    underflow: float  # share of the nonzero values below step / 2: they round to zero

    @property
    def covered(self) -> tuple[float, float]:
        """log2 of the smallest step and of the largest magnitude 8 bits represent."""
        top = max(abs(self.minimum), abs(self.maximum))
        return (math.log2(self.step) if self.step > 0 else 0.0,
                math.log2(top) if top > 0 else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "label": self.label, "tensor": self.tensor,
                "count": self.count, "min": self.minimum, "max": self.maximum,
                "step": self.step, "exponents": list(self.exponents),
                "counts": list(self.counts), "zeros": self.zeros, "underflow": self.underflow}


def _range(layer: int, label: str, tensor: str, values: torch.Tensor) -> ValueRange:
    flat = values.detach().reshape(-1).to(torch.float64)
    lo, hi = float(flat.min()), float(flat.max())
    if tensor == "weights":
        step = max(abs(lo), abs(hi)) / 127.0
    else:
        step = (max(hi, 0.0) - min(lo, 0.0)) / 255.0
    nonzero = flat[flat != 0].abs()
    zeros = int(flat.numel() - nonzero.numel())
    if nonzero.numel() == 0:
        return ValueRange(layer, label, tensor, flat.numel(), lo, hi, step, (), (), zeros, 0.0)
    exps = torch.floor(torch.log2(nonzero)).to(torch.long)
    first, last = int(exps.min()), int(exps.max())
    counts = torch.bincount(exps - first, minlength=last - first + 1)
    under = float((nonzero < step / 2).sum()) / nonzero.numel() if step > 0 else 0.0
    return ValueRange(layer, label, tensor, flat.numel(), lo, hi, step,
                      tuple(range(first, last + 1)), tuple(int(c) for c in counts), zeros, under)


def value_ranges(model: nn.Sequential, layer_types: list[str], sample: np.ndarray,
                 cancel: threading.Event | None = None) -> list[ValueRange]:
    """Per layer: its weights' and its outputs' ranges on `sample` (the calibration sample)."""
    outputs: dict[int, list[torch.Tensor]] = {}
    hooks = []
    for i, module in enumerate(model):
        if layer_types[i] in SKIPPED:
            continue
        hooks.append(module.register_forward_hook(
            lambda _m, _inp, out, i=i: outputs.setdefault(i, []).append(out.detach())))
    try:
        model.eval()
        with torch.inference_mode():
            for start in range(0, len(sample), CALIBRATION_BATCH):
                if cancel is not None and cancel.is_set():
                    return []
                model(torch.from_numpy(sample[start:start + CALIBRATION_BATCH]))
    finally:
        for hook in hooks:
            hook.remove()
    ranges = []
    for i, module in enumerate(model):
        label = layer_label(i, layer_types[i])
        weight = getattr(module, "weight", None)
        if layer_types[i] in ("Linear", "Conv2d") and weight is not None:
            ranges.append(_range(i, label, "weights", weight))
        if i in outputs:
            ranges.append(_range(i, label, "activations", torch.cat(outputs[i])))
    return ranges


def run_value_ranges(run_dir: str | Path, count: int = DEFAULT_CALIBRATION, *,
                     splits: Splits | None = None, source: DataSource | None = None,
                     cancel: threading.Event | None = None) -> list[ValueRange]:
    """The value ranges of a trained run on its calibration sample (the same draw as static
    quantization's); CalibrationError saying why when the run cannot be read."""
    try:
        trained = load_trained(run_dir, splits=splits, source=source, cancel=cancel)
    except RunError as exc:
        raise CalibrationError(f"{exc}; its value ranges cannot be measured") from exc
    sample = calibration_sample(trained.splits, count)
    return value_ranges(trained.model, [layer.type for layer in trained.spec.model.layers],
                        sample, cancel)


__all__ = [
    "DEFAULT_CALIBRATION",
    "MAX_CALIBRATION",
    "CalibrationError",
        "ValueRange",
    "calibration_reader",
    "calibration_sample",
    "model_inputs",
    "run_value_ranges",
    "value_ranges",
]
