"""The dataset layer: describe, load, split, download and batch the datasets of the catalogue.

Qt-free. `dataset_info` is cheap enough for the GUI thread; `load_splits` may download and
read large files, so run it off the GUI thread, with `progress` and `cancel`.

The names are imported on first use (PEP 562), so that importing this package does not pull
in torch: the app's window must be up before torch has loaded. The catalogue itself (what
each dataset is) is data of the spec: `workbench.spec.datasets`.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DeviceBatches": "batches",
    "augment_preview": "batches",
    "DataError": "errors",
    "dataset_info": "loading",
    "load_splits": "loading",
    "DatasetInfo": "splits",
    "Splits": "splits",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
