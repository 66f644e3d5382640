"""Make the bundled MNIST subset: a seeded, class-stratified sample of the full MNIST files.

    python resources/datasets/mnist-small/make.py /path/to/mnist

reads the 4 standard IDX files of MNIST from that folder and writes 5,000 train images (500
per digit) and 1,000 test images (100 per digit) beside this script as IDX .gz files, in
their original order. The sample is drawn with numpy's Generator(0), and the gzip header has
no time stamp, so the same input gives the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # run from a source checkout

from workbench.core.data.idx import FILES, read_idx_dataset, write_idx  # noqa: E402

PER_CLASS = {"train": 500, "test": 100}


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `per_class` samples of each label, sorted so the original order is kept."""
    chosen = [rng.choice(np.flatnonzero(labels == k), per_class, replace=False)
              for k in range(10)]
    return np.sort(np.concatenate(chosen))


def main(source: Path, dest: Path) -> None:
    train_x, train_y, test_x, test_y = read_idx_dataset(source, image_shape=(28, 28))
    rng = np.random.default_rng(0)
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        keep = stratified(y, PER_CLASS[split], rng)
        write_idx(dest / f"{FILES[f'{split}_images']}.gz", x[keep])
        write_idx(dest / f"{FILES[f'{split}_labels']}.gz", y[keep])
        print(f"{split}: {len(keep)} images")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make.py MNIST_FOLDER")
    main(Path(sys.argv[1]), Path(__file__).resolve().parent)
