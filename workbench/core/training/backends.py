"""Backend switches for convolutional networks on CUDA: cuDNN's autotuner and TF32.

A run's input shapes are fixed (one batch size, and the last partial batch), so cuDNN's
search for the fastest convolution algorithm (`cudnn.benchmark`) pays for itself within the
first steps; TF32 runs float32 convolutions and matrix products on the tensor cores (10-bit
mantissa products, float32 sums), several times faster on Ampere and later. Both can change
results in the last bits from one run to the next, which the CPU's bit-for-bit promise does
not cover. A network without convolutions keeps full float32 products, and nothing changes
on a CPU. The switches are process-wide, so runs take them from their one owner
(`process.PROCESS`, and `process.backends_for`): the first run of several that overlap sets
them, the others train with them, and the last puts back what the first found.
"""

from __future__ import annotations

import torch
from torch import nn

# (object holding the switch, attribute): the torch 2.9+ names for each switch
_SWITCHES = {
    "cudnn.benchmark": (torch.backends.cudnn, "benchmark"),
    "cudnn.conv.fp32_precision": (torch.backends.cudnn.conv,  # type: ignore[attr-defined]
                                  "fp32_precision"),
    "cuda.matmul.fp32_precision": (torch.backends.cuda.matmul, "fp32_precision"),
}


def backend_settings(model: nn.Module, device: torch.device) -> dict[str, object]:
    """The switches a run of `model` on `device` sets: for convolutions on CUDA, the autotuner
    and TF32; nothing otherwise."""
    if device.type != "cuda":
        return {}
    if not any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()):
        return {}
    return {"cudnn.benchmark": True, "cudnn.conv.fp32_precision": "tf32",
            "cuda.matmul.fp32_precision": "tf32"}


def current_settings() -> dict[str, object]:
    return {name: getattr(owner, attr) for name, (owner, attr) in _SWITCHES.items()}


def apply_settings(values: dict[str, object]) -> None:
    for name, value in values.items():
        owner, attr = _SWITCHES[name]
        if getattr(owner, attr) != value:
            setattr(owner, attr, value)


__all__ = ["apply_settings", "backend_settings", "current_settings"]
