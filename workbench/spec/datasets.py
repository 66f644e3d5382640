"""The dataset catalogue: every dataset a spec can name, with what is known without loading it,
and the arithmetic of splitting (how many samples go to train, val and test)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    title: str
    kind: str  # "toy2d" | "regression" | "image" | "table"
    input_shape: tuple[int, ...] | None  # None: known only after looking at the file
    num_classes: int | None  # 0: regression; None: known only after looking at the file
    needs_path: bool = False
    downloadable: bool = False
    bundled: bool = False
    about: str = ""
    samples: int | None = None  # all of its samples; None: `data.samples`, or the file's
    test_samples: int | None = None  # its official test split; None: split by test_fraction

    @property
    def description(self) -> str:
        """What the set is, with its official sizes when it has them."""
        if self.samples is None or self.test_samples is None:
            return self.about
        train = self.samples - self.test_samples
        return f"{self.about}, {train:,} train + {self.test_samples:,} test"


# How a CSV's label column is read (`data.target`): guessed from its values, or declared. The
# guess and its reason come from `core.data.tables.guess_target`; other datasets are "auto".
TARGET_TITLES = {
    "auto": "Guess from the column",
    "quantity": "A quantity (predict a number: regression)",
    "category": "Categories (predict a class: classification)",
}
TARGETS = tuple(TARGET_TITLES)


def split_count(fraction: float, n: int) -> int:
    """How many of `n` samples a split of `fraction` takes (rounded half up)."""
    return math.floor(fraction * n + 0.5)


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes of a pool of `n` samples split by the fractions."""
    n_test = split_count(test_fraction, n)
    n_val = split_count(val_fraction, n)
    return n - n_test - n_val, n_val, n_test


_TOY = "2-D points in classes, generated from the seed with `samples` and `noise`"

DATASETS: dict[str, DatasetEntry] = {
    e.name: e
    for e in (
        DatasetEntry("spirals", "Two spirals", "toy2d", (2,), 2, about=_TOY),
        DatasetEntry("moons", "Two moons", "toy2d", (2,), 2, about=_TOY),
        DatasetEntry("circles", "Circles", "toy2d", (2,), 2, about=_TOY),
        DatasetEntry("xor", "XOR", "toy2d", (2,), 2, about=_TOY),
        DatasetEntry("blobs", "Gaussian blobs", "toy2d", (2,), 4, about=_TOY),
        DatasetEntry("line", "Line y = 3x + 2", "regression", (1,), 0,
                     about="regression: y = 3x + 2 + noise"),
        DatasetEntry("sine", "Sine", "regression", (1,), 0,
                     about="regression: y = sin(x) + noise"),
        DatasetEntry("mnist_small", "MNIST (bundled sample)", "image", (1, 28, 28), 10,
                     bundled=True, samples=6_000, test_samples=1_000,
                     about="a sample of MNIST shipped with Workbench (500 train and 100 test "
                           "images of each digit)"),
        DatasetEntry("mnist", "MNIST", "image", (1, 28, 28), 10, downloadable=True,
                     samples=70_000, test_samples=10_000, about="handwritten digits"),
        DatasetEntry("fashion_mnist", "Fashion-MNIST", "image", (1, 28, 28), 10,
                     downloadable=True, samples=70_000, test_samples=10_000, about="clothing"),
        DatasetEntry("kmnist", "Kuzushiji-MNIST", "image", (1, 28, 28), 10, downloadable=True,
                     samples=70_000, test_samples=10_000, about="cursive Japanese"),
        DatasetEntry("cifar10", "CIFAR-10", "image", (3, 32, 32), 10, downloadable=True,
                     samples=60_000, test_samples=10_000, about="colour photos"),
        DatasetEntry("csv", "CSV file", "table", None, None, needs_path=True,
                     about="numeric feature columns and a label column"),
        DatasetEntry("image_folder", "Image folder", "image", None, None, needs_path=True,
                     about="one sub-folder of images per class"),
    )
}
