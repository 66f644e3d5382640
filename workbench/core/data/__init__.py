"""The dataset layer: describe, load, split, download and batch the datasets of the catalogue.

Qt-free. `dataset_info` is cheap enough for the GUI thread; `load_splits` may download and
read large files, so run it off the GUI thread, with `progress` and `cancel`.
"""

from workbench.core.data.batches import DeviceBatches, augment_preview
from workbench.core.data.catalogue import DATASETS, DatasetEntry
from workbench.core.data.errors import DataError
from workbench.core.data.loading import dataset_info, load_splits
from workbench.core.data.splits import DatasetInfo, Splits

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetEntry",
    "DatasetInfo",
    "DeviceBatches",
    "Splits",
    "augment_preview",
    "dataset_info",
    "load_splits",
]
