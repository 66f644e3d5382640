"""What the data panel decides and says, Qt-free (tested without a QApplication): which
options a dataset takes, whether loading it downloads, the load itself (on a worker, from the
workspace's cache), the augmentation preview, class counts and the lines that report them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.spec import AugmentSpec, DataSpec
from workbench.spec.datasets import DatasetEntry
from workbench.spec.layers import shape_text

if TYPE_CHECKING:
    from workbench.core.workspace import Workspace

GRID_SAMPLES = 32
AUGMENT_SAMPLES = 8
SCATTER_POINTS = 3000
KIND_ORDER = ("toy2d", "regression", "image", "table")  # the dataset box's groups


def load_data(workspace: Workspace, data: DataSpec, seed: int, emit: Callable[[object], None],
              cancel: threading.Event) -> tuple[Any, Any]:
    """(splits, augmentation preview) from the workspace's cache, for a task: progress is
    emitted as (done, total) once a percent, not once a block."""
    last_percent = [-1]

    def progress(done: int, total: int) -> None:
        percent = int(100 * done / total) if total > 0 else -1
        if percent != last_percent[0]:
            last_percent[0] = percent
            emit((done, total))

    splits = workspace.splits(data, seed, progress=progress, cancel=cancel)
    return splits, augment_pair(splits, data.augment, seed)


def augment_pair(splits: Any, augment: AugmentSpec, seed: int) -> tuple[Any, Any] | None:
    """(originals, augmented) as numpy (n,C,H,W) floats, or None for non-image data."""
    from workbench.core.data import augment_preview

    if not splits.info.is_image or not augment.active:
        return None
    original, augmented = augment_preview(splits, augment, AUGMENT_SAMPLES, seed)
    return original.numpy(), augmented.numpy()


def visible_options(entry: DatasetEntry) -> dict[str, bool]:
    """Which options the dataset takes: a generated set its size and noise, a set without an
    official test split its test share, a downloadable or bundled one a folder, a file-based
    one its path, a CSV its label column."""
    generated = entry.kind in ("toy2d", "regression")
    own_split = entry.kind in ("toy2d", "regression", "table") or entry.needs_path
    return {"samples": generated, "noise": generated, "val": True, "test": own_split,
            "root": entry.downloadable or entry.bundled, "path": entry.needs_path,
            "label": entry.name == "csv", "target": entry.name == "csv"}


TARGET_CHOICES = (("Guess from the column", "auto"),
                  ("A quantity (regression)", "quantity"),
                  ("Categories (classes)", "category"))


def with_dataset(name: str, target: str) -> dict[str, str]:
    """What changes with picking dataset `name`: only a CSV's target can be declared, so
    leaving a CSV sets a declared target back to auto (the spec refuses it otherwise)."""
    return {"data.target": "auto"} if name != "csv" and target != "auto" else {}


def _reading(kind: str, distinct: int) -> str:
    return ("a quantity (regression)" if kind == "quantity" else
            f"categories ({distinct:,} classes)")


def target_text(reading: Any) -> str:
    """How the CSV's label column is read, in a line short enough for the Data tab's options
    (a `TargetReading`; None until the file is loaded): the guess and the evidence for it,
    and whether a declared reading follows it. `target_reason` has the whole explanation."""
    if reading is None:
        return "How the column reads shows once the file has loaded."
    column = f"‘{reading.column}’"
    evidence = reading.reason.split(":", 1)[0]  # "214 distinct whole numbers (25 to 346)"
    if reading.declared == "auto":
        return f"Guess: {column} is {_reading(reading.kind, reading.distinct)}: {evidence}."
    if reading.declared == reading.guess:
        return f"Declared {_reading(reading.kind, reading.distinct)}, as guessed: {evidence}."
    guess = "a quantity" if reading.guess == "quantity" else "categories"
    return (f"Declared {_reading(reading.kind, reading.distinct)}; the guess is {guess}: "
            f"{evidence}.")


def target_reason(reading: Any) -> str:
    """The guess's whole explanation (the note's tooltip)."""
    if reading is None:
        return ""
    return f"‘{reading.column}’: {reading.reason}."


def needs_download(entry: DatasetEntry, data: DataSpec) -> bool:
    """Loading fetches the files (no folder of them is given)."""
    return entry.downloadable and not data.root


def class_counts(splits: Any) -> list[int]:
    """Training samples per class; [] for regression or nothing loaded."""
    if splits is None or splits.info.num_classes == 0:
        return []
    return np.bincount(splits.train_y.numpy(), minlength=splits.info.num_classes).tolist()


def summary_text(splits: Any) -> str:
    """The loaded data in a line: its splits' sizes, classes and input shape."""
    info = splits.info
    sizes = (f"train {len(splits.train_x):,} · val {len(splits.val_x):,} · "
             f"test {len(splits.test_x):,}")
    what = f"{info.num_classes} classes" if info.num_classes else "regression"
    return f"{sizes}  —  {what}, input {shape_text(info.input_shape)}"


def progress_text(done: int, total: int) -> str:
    """A load's progress: megabytes for a download, else items."""
    if total > 1_000_000:
        return f"{done / 2**20:.1f} of {total / 2**20:.1f} MB"
    return f"{done:,} of {total:,}"
