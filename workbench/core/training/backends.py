"""Backend switches for convolutional networks on CUDA: cuDNN's autotuner and TF32.

A run's input shapes are fixed (one batch size, and the last partial batch), so cuDNN's
search for the fastest convolution algorithm (`cudnn.benchmark`) pays for itself within the
first steps; TF32 runs float32 convolutions and matrix products on the tensor cores (10-bit
mantissa products, float32 sums), several times faster on Ampere and later. Both can change
results in the last bits from one run to the next, which the CPU's bit-for-bit promise does
not cover. A network without convolutions keeps full float32 products, and nothing changes
on a CPU. The switches are process-wide: a run sets them while it trains and puts back what
it found when it ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


@contextlib.contextmanager
def backends_for(model: nn.Module, device: torch.device) -> Iterator[dict[str, object]]:
    """Set `backend_settings(model, device)` while the block runs; restore them after."""
    wanted = backend_settings(model, device)
    before = {name: value for name, value in current_settings().items() if name in wanted}
    for name, value in wanted.items():
        owner, attr = _SWITCHES[name]
        setattr(owner, attr, value)
    try:
        yield wanted
    finally:
        for name, value in before.items():
            owner, attr = _SWITCHES[name]
            setattr(owner, attr, value)


__all__ = ["backend_settings", "backends_for", "current_settings"]
