"""The two entry points: describe a dataset cheaply, or load it into train/val/test splits.

Each catalogue kind routes to its reader here; the readers know nothing of specs.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from workbench.core.data import download, images
from workbench.core.data.cifar import CLASSES as CIFAR_CLASSES
from workbench.core.data.cifar import read_cifar10
from workbench.core.data.errors import DataError
from workbench.core.data.idx import read_idx_dataset
from workbench.core.data.splits import DatasetInfo, Splits, split_arrays, split_with_test
from workbench.core.data.synthetic import generate
from workbench.core.data.tables import Table, read_csv
from workbench.paths import resources_dir
from workbench.spec import DataSpec
from workbench.spec.datasets import DATASETS, DatasetEntry

Progress = Callable[[int, int], None]

DIGITS = tuple(str(d) for d in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": DIGITS, "mnist_small": DIGITS, "kmnist": DIGITS, "fashion_mnist": FASHION,
    "cifar10": CIFAR_CLASSES,
}
IDX_SETS = frozenset({"mnist", "mnist_small", "fashion_mnist", "kmnist"})
BUNDLED_FOLDER = {"mnist_small": "mnist-small"}


def _entry(data: DataSpec) -> DatasetEntry:
    entry = DATASETS.get(data.name)
    if entry is None:
        raise DataError(f"data.name: unknown dataset {data.name!r} "
                        f"(known: {', '.join(DATASETS)})")
    return entry


def _need_path(data: DataSpec) -> Path:
    if not data.path:
        raise DataError(f"data.path: the {data.name} dataset needs a file or folder")
    return Path(data.path)


def bundled_root(name: str) -> Path:
    return resources_dir() / "datasets" / BUNDLED_FOLDER[name]


def dataset_info(data: DataSpec) -> DatasetInfo:
    """What the data looks like, without loading big files (CSVs are small and read whole;
    image folders have their headers read)."""
    entry = _entry(data)
    if entry.name == "csv":
        return _table_info(entry, read_csv(_need_path(data), data.label_column, data.target))
    if entry.name == "image_folder":
        classes, files, shape = images.scan(_need_path(data))
        return DatasetInfo(entry.name, entry.kind, shape, len(classes), classes, len(files))
    if entry.input_shape is None or entry.num_classes is None:
        raise DataError(f"data.name: the catalogue does not describe {entry.name!r}")
    names = CLASS_NAMES.get(entry.name, tuple(str(k) for k in range(entry.num_classes)))
    return DatasetInfo(entry.name, entry.kind, entry.input_shape, entry.num_classes, names,
                       entry.samples or data.samples, entry.test_samples)


def _table_info(entry: DatasetEntry | DatasetInfo, table: Table) -> DatasetInfo:
    """A CSV describes itself: its columns, its classes, its rows. Self-contained (the
    exported training script carries it)."""
    return DatasetInfo(entry.name, entry.kind, (table.features.shape[1],),
                       len(table.class_names), table.class_names, len(table.features),
                       feature_names=table.feature_names, target=table.target)


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise DataError("loading cancelled")


def load_splits(data: DataSpec, seed: int, *, progress: Progress | None = None,
                cancel: threading.Event | None = None) -> Splits:
    """Train/val/test tensors on the CPU, the same bit for bit for the same spec and seed.

    Sets with an official test split keep it, and a seeded `val_fraction` of their train part
    becomes val; the others are shuffled with the seed into test, val and train. Downloads
    (when a downloadable set has no `root`) report progress in bytes; image folders in images.
    """
    entry = _entry(data)
    _check_cancel(cancel)
    if entry.name == "image_folder":
        pixels, labels, classes = images.read_image_folder(_need_path(data), progress=progress,
                                                           cancel=cancel)
        info = DatasetInfo(entry.name, entry.kind, tuple(pixels.shape[1:]), len(classes),
                           classes, len(pixels))
        return split_arrays(info, torch.from_numpy(pixels), torch.from_numpy(labels),
                            data.val_fraction, data.test_fraction, seed)
    if entry.name == "csv":
        _need_path(data)
        info = DatasetInfo(entry.name, entry.kind, (), 0, ())  # the file describes itself
        return read_splits(data, info, None, seed)
    info = dataset_info(data)
    root = None if entry.kind in ("toy2d", "regression") else _root(data, entry, progress,
                                                                     cancel)
    _check_cancel(cancel)
    return read_splits(data, info, root, seed)


def read_splits(data: DataSpec, info: DatasetInfo, root: Path | None, seed: int) -> Splits:
    """Generate a set, or read one from its files (`root`, or `data.path` for a CSV), and
    split it. Self-contained: the exported training script carries its source, so the script
    reads and splits the data exactly as the trainer does."""
    if info.kind in ("toy2d", "regression"):
        x, y = generate(info.name, data.samples, data.noise, seed)
        return split_arrays(info, torch.from_numpy(x), torch.from_numpy(y), data.val_fraction,
                            data.test_fraction, seed)
    if info.name == "csv":
        if not data.path:
            raise DataError("data.path: the csv dataset needs a file")
        table = read_csv(data.path, data.label_column, data.target)
        return split_arrays(_table_info(info, table), torch.from_numpy(table.features),
                            torch.from_numpy(table.labels), data.val_fraction,
                            data.test_fraction, seed)
    if root is None:
        raise DataError(f"data.root: the {info.name} dataset needs its folder")
    if info.name in IDX_SETS:
        train_x, train_y, test_x, test_y = read_idx_dataset(
            root, image_shape=(info.input_shape[1], info.input_shape[2]),
            num_classes=info.num_classes)
        train_x, test_x = train_x[:, None], test_x[:, None]
    elif info.name == "cifar10":
        train_x, train_y, test_x, test_y = read_cifar10(root)
    else:
        raise DataError(f"data.name: no reader for {info.name!r}")
    info = dataclasses.replace(info, num_samples=len(train_x) + len(test_x),
                               test_samples=len(test_x))
    xs = [torch.from_numpy(np.ascontiguousarray(a)) for a in (train_x, test_x)]
    ys = [torch.from_numpy(a.astype(np.int64)) for a in (train_y, test_y)]
    return split_with_test(info, xs[0], ys[0], xs[1], ys[1], data.val_fraction, seed)


def default_root(data: DataSpec) -> Path | None:
    """The folder a file-based set is read from when `data.root` is not given: the bundled
    copy, or the download cache when the download is there already; None otherwise."""
    entry = _entry(data)
    if data.root:
        return Path(data.root)
    if entry.bundled:
        return bundled_root(entry.name)
    if entry.downloadable and download.cache_dir(entry.name).is_dir():
        return download.cache_dir(entry.name)
    return None


def _root(data: DataSpec, entry: DatasetEntry, progress: Progress | None,
          cancel: threading.Event | None) -> Path:
    if data.root:
        return Path(data.root)
    if entry.bundled:
        return bundled_root(entry.name)
    if entry.downloadable:
        return download.ensure_downloaded(entry.name, progress=progress, cancel=cancel)
    raise DataError(f"data.root: the {entry.name} dataset needs a folder")
