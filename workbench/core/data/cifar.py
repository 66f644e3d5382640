"""CIFAR-10 readers: the binary version, and the python version without running pickled code.

Binary: `cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin`, records of 1 label byte and
3072 image bytes (1024 red, 1024 green, 1024 blue, row-major 32x32).
Python: `cifar-10-batches-py/` pickles, read with an unpickler that allows only the few numpy
constructors an array needs, so a tampered file cannot run code.
Only plain files are read (a pipe or a device would block or never end), at most 256 MiB each
(a batch is 31 MB).
"""

from __future__ import annotations

import importlib
import io
import pickle
import stat
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.data.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
RECORD = 1 + 3 * 32 * 32
BIN_FOLDER = "cifar-10-batches-bin"
PY_FOLDER = "cifar-10-batches-py"
TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = "test_batch"


def _check_labels(labels: np.ndarray, path: Path) -> None:
    if len(labels) and int(labels.max()) >= len(CLASSES):
        raise DataError(f"{path}: label {int(labels.max())} is out of range 0..9")


def _read_batch_file(path: Path, limit: int = 1 << 28) -> bytes:
    """The bytes of one batch file: a plain file of at most `limit` bytes."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"{path}: not a plain file")
        if info.st_size > limit:
            raise DataError(f"{path}: {info.st_size:,} bytes, more than the {limit:,} a "
                            "CIFAR-10 batch file may have")
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_bin_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N,3,32,32) uint8, labels (N,) uint8) from one binary batch file."""
    raw = _read_batch_file(path)
    if len(raw) == 0 or len(raw) % RECORD:
        raise DataError(f"{path}: {len(raw)} bytes is not a whole number of {RECORD}-byte "
                        f"records (truncated or not a CIFAR-10 binary batch)")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].copy()
    _check_labels(labels, path)
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except those numpy needs to rebuild an ndarray."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
        ("numpy", "ndarray"): (None, "ndarray"),
        ("numpy", "dtype"): (None, "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            import codecs

            return codecs.encode
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        sub, attr = target
        if sub is None:
            return getattr(np, attr)
        for base in ("numpy._core", "numpy.core"):
            try:
                return getattr(importlib.import_module(f"{base}.{sub}"), attr)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"this numpy has no {module}.{name}")


def read_py_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N,3,32,32) uint8, labels (N,) uint8) from one python-version batch pickle."""
    raw = _read_batch_file(path)
    try:
        entry = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean the same
        raise DataError(f"{path}: not a readable CIFAR-10 python batch ({exc})") from exc
    if not isinstance(entry, dict):
        raise DataError(f"{path}: expected a dictionary, found {type(entry).__name__}")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    data, labels = entry.get("data"), entry.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != RECORD - 1:
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, 3072)")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: 'labels' must be a list of integers") from exc
    if labels.shape != (len(data),) or (len(labels) and labels.min() < 0):
        raise DataError(f"{path}: 'labels' must be {len(data)} integers in 0..9")
    _check_labels(labels, path)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.uint8)


def find_folder(root: str | Path) -> tuple[Path, str]:
    """The folder holding the batches and its format ('bin' or 'py'); root may be the folder
    itself or its parent."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root: {root} is not a folder")
    for folder, fmt, probe in ((root, "bin", "data_batch_1.bin"),
                               (root / BIN_FOLDER, "bin", "data_batch_1.bin"),
                               (root, "py", "data_batch_1"),
                               (root / PY_FOLDER, "py", "data_batch_1")):
        if (folder / probe).is_file():
            return folder, fmt
    raise DataError(f"{root}: no CIFAR-10 batches found (expected {BIN_FOLDER}/data_batch_1.bin "
                    f"or {PY_FOLDER}/data_batch_1, in the folder or inside it)")


def read_cifar10(root: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) uint8 from either version of CIFAR-10."""
    folder, fmt = find_folder(root)
    suffix, read = (".bin", read_bin_batch) if fmt == "bin" else ("", read_py_batch)
    batches = []
    for stem in (*TRAIN, TEST):
        path = folder / (stem + suffix)
        if not path.exists():
            raise DataError(f"{folder}: missing {path.name}")
        batches.append(read(path))
    train_x = np.concatenate([b[0] for b in batches[:-1]])
    train_y = np.concatenate([b[1] for b in batches[:-1]])
    return train_x, train_y, batches[-1][0], batches[-1][1]
