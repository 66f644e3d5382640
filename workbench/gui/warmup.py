"""Loads PyTorch and the training modules once the window is on screen, and finds the GPU.

The import runs on the GUI thread, right after the window has been painted: importing torch
(and `torch._dynamo`, which the optimizers import on first use) on a second thread while the
Qt event loop runs crashed PySide6 6.12 in our tests (its import hook is not thread-safe), so
the training thread must find them already imported.
"""

from __future__ import annotations

import importlib
import sys

HEAVY_MODULES = ("torch", "torch._dynamo", "workbench.core.optim", "workbench.core.data.loading",
                 "workbench.core.train", "workbench.core.insight")


def heavy_loaded() -> bool:
    return all(name in sys.modules for name in HEAVY_MODULES)


def load_heavy() -> str:
    """Import the heavy modules; the CUDA GPU's name, or "" when there is none."""
    for name in HEAVY_MODULES:
        importlib.import_module(name)
    import torch

    try:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    except RuntimeError:  # a broken driver: train on the CPU
        return ""
