"""Loads PyTorch and the training modules, off the GUI thread, once the window is on screen.

The main window runs `load_heavy` on a worker thread right after it is painted, so the window
is up (and stays responsive) in the seconds torch takes to import; the training panel is put in
place when it returns. (With PySide6 6.12.0 a second thread importing torch crashed the app:
that release leaks references to None and True, which is why pyproject pins PySide6 < 6.12.)
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

HEAVY_MODULES = ("torch", "torch._dynamo", "workbench.core.training.optim",
                 "workbench.core.data.loading", "workbench.core.training.loop",
                 "workbench.core.training.monitors")


def heavy_loaded() -> bool:
    return all(name in sys.modules for name in HEAVY_MODULES)


def load_heavy() -> str:
    """Import the heavy modules; the CUDA GPU's name, or "" when there is none. The editor
    asks the GPU for its free memory on every edit, so its CUDA context is made here."""
    for name in HEAVY_MODULES:
        importlib.import_module(name)
    import torch

    try:
        if not torch.cuda.is_available():
            return ""
        torch.cuda.mem_get_info(0)  # the CUDA context, made here rather than on the GUI thread
        return torch.cuda.get_device_name(0)
    except RuntimeError:  # a broken driver: train on the CPU
        return ""


def settle_heap() -> None:
    """Collect once, then move every object alive now out of the cyclic collector's sight.

    After start-up that is torch, Qt and the window: over 200,000 objects, which each full
    collection would walk again, 100 to 240 ms with the GIL held, freezing the window and
    the training thread alike (benchmarks/gui_responsiveness.py). Objects made later are
    collected as usual.
    """
    gc.collect()
    gc.freeze()


def collect_on_gui_thread(interval_s: float = 1.0) -> Any:
    """Turn the automatic cyclic collector off and collect on a GUI-thread timer instead
    (pyqtgraph's `GarbageCollector`); keep the returned object for as long as the app runs.

    A collection runs on whichever thread happens to allocate. On a training thread it may
    free the Python side of a Qt object left in a cycle: the C++ destructor then waits for the
    GIL while the GUI thread, painting, waits for a lock the destructor holds. The tests hung
    so (py-spy: a trainer thread in gc_collect_main -> QObject::~QObject -> GilState::acquire).
    """
    from pyqtgraph.util.garbage_collector import GarbageCollector

    return GarbageCollector(interval=interval_s)
