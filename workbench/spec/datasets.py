"""The dataset catalogue: every dataset a spec can name, with what is known without loading it."""

from __future__ import annotations

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
    description: str = ""
    samples: int | None = None  # all of its samples; None: `data.samples`, or the file's
    test_samples: int | None = None  # its official test split; None: split by test_fraction


_TOY = "2-D points in classes, generated from the seed with `samples` and `noise`"

DATASETS: dict[str, DatasetEntry] = {
    e.name: e
    for e in (
        DatasetEntry("spirals", "Two spirals", "toy2d", (2,), 2, description=_TOY),
        DatasetEntry("moons", "Two moons", "toy2d", (2,), 2, description=_TOY),
        DatasetEntry("circles", "Circles", "toy2d", (2,), 2, description=_TOY),
        DatasetEntry("xor", "XOR", "toy2d", (2,), 2, description=_TOY),
        DatasetEntry("blobs", "Gaussian blobs", "toy2d", (2,), 4, description=_TOY),
        DatasetEntry("line", "Line y = 3x + 2", "regression", (1,), 0,
                     description="regression: y = 3x + 2 + noise"),
        DatasetEntry("sine", "Sine", "regression", (1,), 0,
                     description="regression: y = sin(x) + noise"),
        DatasetEntry("mnist_small", "MNIST (bundled 6,000)", "image", (1, 28, 28), 10,
                     bundled=True, samples=6_000, test_samples=1_000,
                     description="a 6,000-image sample of MNIST shipped with Workbench: "
                                 "5,000 train + 1,000 test, 500 + 100 per digit"),
        DatasetEntry("mnist", "MNIST", "image", (1, 28, 28), 10, downloadable=True,
                     description="handwritten digits, 60,000 train + 10,000 test",
                     samples=70_000, test_samples=10_000),
        DatasetEntry("fashion_mnist", "Fashion-MNIST", "image", (1, 28, 28), 10,
                     downloadable=True, description="clothing, 60,000 train + 10,000 test",
                     samples=70_000, test_samples=10_000),
        DatasetEntry("kmnist", "Kuzushiji-MNIST", "image", (1, 28, 28), 10, downloadable=True,
                     description="cursive Japanese, 60,000 train + 10,000 test",
                     samples=70_000, test_samples=10_000),
        DatasetEntry("cifar10", "CIFAR-10", "image", (3, 32, 32), 10, downloadable=True,
                     description="colour photos, 50,000 train + 10,000 test",
                     samples=60_000, test_samples=10_000),
        DatasetEntry("csv", "CSV file", "table", None, None, needs_path=True,
                     description="numeric feature columns and a label column"),
        DatasetEntry("image_folder", "Image folder", "image", None, None, needs_path=True,
                     description="one sub-folder of images per class"),
    )
}
