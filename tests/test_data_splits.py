"""Split sizes and determinism, train-only statistics, dataset_info, the bundled MNIST sample."""

from __future__ import annotations

import pytest
import torch

from workbench.core.data import DataError, Splits, dataset_info, load_splits
from workbench.core.data.splits import shuffle_split
from workbench.spec import DataSpec
from workbench.spec.datasets import DATASETS


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))


def _tensors(s: Splits) -> list[torch.Tensor]:
    return [s.train_x, s.train_y, s.val_x, s.val_y, s.test_x, s.test_y]


def test_shuffle_split_sizes_and_disjoint_cover():
    data = DataSpec(name="blobs", samples=1000, val_fraction=0.15, test_fraction=0.25)
    s = load_splits(data, seed=0)
    assert (len(s.train_x), len(s.val_x), len(s.test_x)) == (600, 150, 250)
    rows = torch.cat([s.train_x, s.val_x, s.test_x])
    assert len(torch.unique(rows, dim=0)) == 1000
    assert s.train_x.dtype == torch.float32 and s.train_y.dtype == torch.int64


def test_same_seed_identical_splits_other_seed_differs():
    data = DataSpec(name="moons", samples=300)
    a, b, c = load_splits(data, 5), load_splits(data, 5), load_splits(data, 6)
    assert all(torch.equal(u, v) for u, v in zip(_tensors(a), _tensors(b), strict=True))
    assert a.mean == b.mean and a.std == b.std
    assert not torch.equal(a.train_x, c.train_x)


def test_statistics_come_from_the_train_split_only():
    s = load_splits(DataSpec(name="line", samples=200, noise=0.1), seed=2)
    mean = s.train_x.double().mean(0)
    std = s.train_x.double().std(0, unbiased=False)
    assert s.mean == pytest.approx(tuple(mean.tolist()))
    assert s.std == pytest.approx(tuple(std.tolist()))
    everything = torch.cat([s.train_x, s.val_x, s.test_x]).double()
    assert s.mean[0] != pytest.approx(float(everything.mean()), abs=1e-9)
    assert s.train_y.shape == (len(s.train_x), 1) and s.train_y.dtype == torch.float32


def test_std_is_floored(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("const,x,label\n" + "".join(f"1,{i},{i % 2}\n" for i in range(20)))
    s = load_splits(DataSpec(name="csv", path=str(path)), seed=0)
    assert s.std[0] == 1e-6 and s.std[1] > 1


def test_no_training_data_left_is_refused():
    with pytest.raises(DataError, match="leave none to train"):
        load_splits(DataSpec(name="xor", samples=10, val_fraction=0.5, test_fraction=0.5), 0)


def test_mnist_small_is_bundled_with_ten_classes():
    s = load_splits(DataSpec(name="mnist_small", val_fraction=0.1), seed=0)
    assert s.info.num_classes == 10 and s.info.class_names == tuple("0123456789")
    assert s.train_x.shape == (4500, 1, 28, 28) and s.train_x.dtype == torch.uint8
    assert len(s.val_x) == 500 and len(s.test_x) == 1000
    assert torch.bincount(s.test_y).tolist() == [100] * 10
    assert 0.1 < s.mean[0] < 0.16 and 0.28 < s.std[0] < 0.34
    again = load_splits(DataSpec(name="mnist_small", val_fraction=0.1), seed=0)
    assert torch.equal(s.val_x, again.val_x)
    other = load_splits(DataSpec(name="mnist_small", val_fraction=0.1), seed=1)
    assert torch.equal(s.test_x, other.test_x) and not torch.equal(s.val_y, other.val_y)


def test_image_statistics_are_per_channel_in_unit_range(tmp_path):
    s = load_splits(DataSpec(name="mnist_small"), seed=0)
    x = s.train_x.double() / 255
    assert s.mean[0] == pytest.approx(float(x.mean()), rel=1e-9)
    assert s.std[0] == pytest.approx(float(x.std(unbiased=False)), rel=1e-9)


def test_dataset_info_for_every_catalogue_entry_that_needs_no_file():
    for name, entry in DATASETS.items():
        if entry.needs_path:
            with pytest.raises(DataError, match="data.path"):
                dataset_info(DataSpec(name=name))
            continue
        info = dataset_info(DataSpec(name=name))
        assert info.input_shape == entry.input_shape and info.kind == entry.kind
        assert len(info.class_names) == info.num_classes == entry.num_classes
    assert dataset_info(DataSpec(name="fashion_mnist")).class_names[-1] == "Ankle boot"
    with pytest.raises(DataError, match="unknown dataset"):
        dataset_info(DataSpec(name="imagenet"))


def test_cancel_before_loading():
    import threading

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DataError, match="cancelled"):
        load_splits(DataSpec(name="mnist_small"), 0, cancel=cancel)


def test_split_arithmetic_is_the_loaders_and_the_catalogue_states_the_sizes():
    from workbench.core.memory import train_samples
    from workbench.spec.datasets import split_sizes

    for n in (10, 333, 1000):
        for val, test in ((0.1, 0.2), (0.25, 0.0), (0.05, 0.35)):
            train_i, val_i, test_i = shuffle_split(n, val, test, seed=1)
            assert split_sizes(n, val, test) == (len(train_i), len(val_i), len(test_i))
            data = DataSpec(val_fraction=val, test_fraction=test)
            assert train_samples(data, n, None) == len(train_i)
    entry = DATASETS["mnist"]
    assert (entry.samples, entry.test_samples) == (70_000, 10_000)
    assert entry.description.endswith("60,000 train + 10,000 test")
    small = load_splits(DataSpec(name="mnist_small", val_fraction=0.1), seed=0)
    entry = DATASETS["mnist_small"]
    train, val, _ = split_sizes(entry.samples - entry.test_samples, 0.1, 0.0)
    assert (len(small.train_x), len(small.val_x), len(small.test_x)) == (
        train, val, entry.test_samples)
