"""What a loaded dataset is: its description, its train/val/test tensors and their statistics.

Splitting and normalization statistics live here so every reader shares one set of rules:
the same seed gives the same splits bit for bit, and statistics come from the train split only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workbench.core.data.errors import DataError
from workbench.core.data.tables import TargetReading
from workbench.spec.datasets import split_sizes

STD_FLOOR = 1e-6
_SPLIT_SALT = 0x5B1D  # keeps the split stream apart from the generator stream of the same seed


@dataclass(frozen=True)
class DatasetInfo:
    """What the GUI and the model builder need without loading the data."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...]
    num_samples: int = 0  # train, val and test together (what the memory estimate needs)
    test_samples: int | None = None  # an official test split's size; None: test_fraction
    feature_names: tuple[str, ...] = ()  # a CSV's feature columns; () when it has none
    target: TargetReading | None = None  # how a CSV's label column is read, and why

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    @property
    def is_regression(self) -> bool:
        return self.num_classes == 0


@dataclass
class Splits:
    """Train/val/test tensors on the CPU; images stay uint8 so they are 4x smaller in memory."""

    info: DatasetInfo
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]


def split_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLIT_SALT])


def shuffle_split(n: int, val_fraction: float, test_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test) of a seeded shuffle: test first, then val, the rest train."""
    perm = split_rng(seed).permutation(n)
    n_train, n_val, n_test = split_sizes(n, val_fraction, test_fraction)
    if n_train < 1:
        raise DataError(f"data: {n} samples leave none to train after taking "
                        f"val_fraction {val_fraction} and test_fraction {test_fraction}")
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


def holdout_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of the train part of a dataset that ships its own test split."""
    train, val, _ = shuffle_split(n, val_fraction, 0.0, seed)
    return train, val


def image_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of uint8 images in [0,1] units, from a 256-bin histogram.

    A histogram needs no float copy of the data (MNIST would need 340 MB in float64).
    """
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise DataError(f"images must be uint8 (N,C,H,W), got {x.dtype} {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise DataError("the train split is empty")
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = (counts * values).sum() / total
        var = (counts * (values - mean) ** 2).sum() / total
        means.append(float(mean))
        stds.append(max(float(var.sqrt()), STD_FLOOR))
    return tuple(means), tuple(stds)


def feature_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-feature mean and (population) std of float features, in float64 for stability."""
    if x.dim() != 2 or x.shape[0] == 0:
        raise DataError(f"features must be a non-empty (N,F) tensor, got {tuple(x.shape)}")
    x64 = x.to(torch.float64)
    mean = x64.mean(dim=0)
    std = x64.std(dim=0, unbiased=False).clamp_min(STD_FLOOR)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def make_splits(info: DatasetInfo, parts: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Splits:
    """Assemble Splits from (x, y) per split, with statistics of the train split."""
    train_x, train_y = parts["train"]
    stats = image_stats(train_x) if info.is_image else feature_stats(train_x)
    return Splits(info, train_x, train_y, *parts["val"], *parts["test"], *stats)


def split_arrays(info: DatasetInfo, x: torch.Tensor, y: torch.Tensor, val_fraction: float,
                 test_fraction: float, seed: int) -> Splits:
    """Seeded shuffle split of one pool of samples (generated sets, CSV, image folders)."""
    train, val, test = (torch.from_numpy(i) for i in
                        shuffle_split(len(x), val_fraction, test_fraction, seed))
    return make_splits(info, {"train": (x[train], y[train]), "val": (x[val], y[val]),
                              "test": (x[test], y[test])})


def split_with_test(info: DatasetInfo, train_x: torch.Tensor, train_y: torch.Tensor,
                    test_x: torch.Tensor, test_y: torch.Tensor, val_fraction: float,
                    seed: int) -> Splits:
    """Keep the official test split; a seeded `val_fraction` of the train part becomes val."""
    train, val = (torch.from_numpy(i) for i in holdout_split(len(train_x), val_fraction, seed))
    return make_splits(info, {"train": (train_x[train], train_y[train]),
                              "val": (train_x[val], train_y[val]), "test": (test_x, test_y)})
