"""File readers on small files the tests write: IDX, CIFAR-10, CSV, image folders."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.core.data import DataError, dataset_info, load_splits
from workbench.core.data.cifar import read_cifar10, read_py_batch
from workbench.core.data.idx import FILES, encode_idx, read_idx, write_idx
from workbench.spec import DataSpec


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))


def write_mnist(root: Path, n_train: int = 30, n_test: int = 10, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        write_idx(root / (FILES[f"{split}_images"] + suffix),
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / (FILES[f"{split}_labels"] + suffix), np.arange(n, dtype=np.uint8) % 10)


# --- IDX ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_loads_with_official_test_split(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    splits = load_splits(DataSpec(name="mnist", root=str(tmp_path), val_fraction=0.2), seed=0)
    assert splits.train_x.shape == (24, 1, 28, 28) and splits.train_x.dtype == torch.uint8
    assert splits.val_x.shape == (6, 1, 28, 28)
    assert splits.test_x.shape == (10, 1, 28, 28)
    assert splits.test_y.tolist() == list(range(10))
    assert splits.info.class_names == tuple("0123456789")


def test_idx_round_trip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    assert np.array_equal(read_idx(tmp_path / "a.gz", 3), a)


def test_idx_truncated_file_names_the_file(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / FILES["train_images"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated"):
        load_splits(DataSpec(name="mnist", root=str(tmp_path)), seed=0)


def test_idx_truncated_gzip_names_the_file(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / (FILES["test_images"] + ".gz")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: not a complete gzip"):
        load_splits(DataSpec(name="mnist", root=str(tmp_path)), seed=0)


def test_idx_wrong_magic_names_the_file(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / FILES["train_labels"]
    raw = bytearray(path.read_bytes())
    raw[3] = 3  # a 3-D labels file
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: wrong magic number"):
        load_splits(DataSpec(name="mnist", root=str(tmp_path)), seed=0)


def test_idx_missing_file_and_mismatched_counts(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / (FILES["test_labels"] + ".gz")).unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte"):
        load_splits(DataSpec(name="kmnist", root=str(tmp_path)), seed=0)
    write_idx(tmp_path / (FILES["test_labels"] + ".gz"), np.zeros(9, dtype=np.uint8))
    with pytest.raises(DataError, match=r"9 labels for 10 images"):
        load_splits(DataSpec(name="kmnist", root=str(tmp_path)), seed=0)


def test_idx_wrong_image_size_is_refused(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / (FILES["test_images"] + ".gz"), np.zeros((10, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"32x32, expected 28x28"):
        load_splits(DataSpec(name="fashion_mnist", root=str(tmp_path)), seed=0)


def test_bad_gzip_bytes(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="x.gz"):
        read_idx(path, 1)
    assert gzip.decompress(gzip.compress(encode_idx(np.zeros(3, np.uint8))))


# --- CIFAR-10 ----------------------------------------------------------------------------


def cifar_records(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def write_cifar_bin(folder: Path, n: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = cifar_records(n, i)
        (folder / f"{stem}.bin").write_bytes(np.concatenate([y[:, None], x], axis=1).tobytes())


@pytest.mark.parametrize("parent", [True, False])
def test_cifar_binary_reads_from_folder_or_parent(tmp_path, parent):
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar_bin(folder)
    train_x, train_y, test_x, test_y = read_cifar10(tmp_path if parent else folder)
    assert train_x.shape == (20, 3, 32, 32) and test_x.shape == (4, 3, 32, 32)
    x, y = cifar_records(4, 0)
    assert np.array_equal(train_x[:4].reshape(4, -1), x) and np.array_equal(train_y[:4], y)
    splits = load_splits(DataSpec(name="cifar10", root=str(tmp_path), val_fraction=0.25), 0)
    assert splits.train_x.shape == (15, 3, 32, 32) and len(splits.mean) == 3
    assert splits.info.class_names[0] == "airplane"


def test_cifar_binary_truncated_and_missing(tmp_path):
    write_cifar_bin(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"data_batch_3.bin: .*not a whole number"):
        read_cifar10(tmp_path)
    path.unlink()
    with pytest.raises(DataError, match=r"missing data_batch_3.bin"):
        read_cifar10(tmp_path)


def test_cifar_python_version_without_arbitrary_unpickling(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i, stem in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = cifar_records(3, i)
        with (folder / stem).open("wb") as f:
            pickle.dump({b"data": x, b"labels": [int(v) for v in y]}, f, protocol=2)
    train_x, train_y, test_x, _ = read_cifar10(tmp_path)
    assert train_x.shape == (15, 3, 32, 32) and test_x.shape == (3, 3, 32, 32)
    assert np.array_equal(train_x[:3].reshape(3, -1), cifar_records(3, 0)[0])

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil"
    bad.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match=r"refusing to load builtins.print"):
        read_py_batch(bad)


# --- CSV ---------------------------------------------------------------------------------


def test_csv_string_labels_are_sorted_classes(tmp_path):
    path = tmp_path / "iris.csv"
    rows = [f"{i},{i * 0.5},{['setosa', 'versicolor', 'virginica'][i % 3]}" for i in range(30)]
    path.write_text("a,b,species\n" + "\n".join(rows) + "\n")
    data = DataSpec(name="csv", path=str(path), val_fraction=0.2, test_fraction=0.2)
    info = dataset_info(data)
    assert info.input_shape == (2,) and info.num_classes == 3
    assert info.class_names == ("setosa", "versicolor", "virginica")
    splits = load_splits(data, seed=0)
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (18, 6, 6)
    assert splits.train_x.dtype == torch.float32 and splits.train_y.dtype == torch.int64
    assert splits.info == info


def test_csv_label_column_by_name_and_integer_classes(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label,x,y\n" + "".join(f"{i % 2 * 10},{i},{-i}\n" for i in range(20)))
    info = dataset_info(DataSpec(name="csv", path=str(path), label_column="label"))
    assert info.class_names == ("0", "10") and info.input_shape == (2,)
    with pytest.raises(DataError, match=r"'nope' is not a column of t.csv"):
        dataset_info(DataSpec(name="csv", path=str(path), label_column="nope"))


def test_csv_many_float_labels_are_regression(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("x,target\n" + "".join(f"{i},{i * 0.37 + 0.01}\n" for i in range(50)))
    data = DataSpec(name="csv", path=str(path))
    assert dataset_info(data).num_classes == 0 and dataset_info(data).class_names == ()
    splits = load_splits(data, seed=1)
    assert splits.train_y.dtype == torch.float32 and splits.train_y.shape[1] == 1


def test_csv_bad_cell_names_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y,label\n1,2,a\n3,oops,b\n")
    with pytest.raises(DataError, match=r"bad.csv: row 3, column 'y': 'oops' is not a number"):
        load_splits(DataSpec(name="csv", path=str(path)), seed=0)
    path.write_text("x,y,label\n1,2,a\n3,4\n")
    with pytest.raises(DataError, match=r"row 3 has 2 cells"):
        dataset_info(DataSpec(name="csv", path=str(path)))
    with pytest.raises(DataError, match=r"cannot read"):
        dataset_info(DataSpec(name="csv", path=str(tmp_path / "missing.csv")))


# --- image folders -----------------------------------------------------------------------


def write_image_folder(root: Path, mode: str = "L", per_class: int = 5) -> None:
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            shape = (12, 10) if mode == "L" else (12, 10, 3)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode=mode).save(root / cls / f"{i}.png")


def test_image_folder_grayscale(tmp_path):
    write_image_folder(tmp_path)
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    data = DataSpec(name="image_folder", path=str(tmp_path), val_fraction=0.2,
                    test_fraction=0.2)
    info = dataset_info(data)
    assert info.input_shape == (1, 12, 10) and info.class_names == ("cat", "dog")
    splits = load_splits(data, seed=0)
    assert splits.train_x.shape == (6, 1, 12, 10) and splits.train_x.dtype == torch.uint8
    original = np.asarray(Image.open(tmp_path / "cat" / "0.png"))
    all_x = torch.cat([splits.train_x, splits.val_x, splits.test_x])
    assert any(np.array_equal(img[0].numpy(), original) for img in all_x)


def test_image_folder_one_colour_image_makes_rgb_and_large_images_shrink(tmp_path):
    write_image_folder(tmp_path)
    Image.new("RGB", (300, 200), (255, 0, 0)).save(tmp_path / "dog" / "big.jpg")
    Image.new("L", (200, 100), 9).save(tmp_path / "cat" / "-first.png")  # sorts first
    info = dataset_info(DataSpec(name="image_folder", path=str(tmp_path)))
    assert info.input_shape == (3, 32, 64)
    splits = load_splits(DataSpec(name="image_folder", path=str(tmp_path)), seed=0)
    assert splits.train_x.shape[1:] == (3, 32, 64)


def test_image_folder_errors(tmp_path):
    (tmp_path / "only").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "only" / "a.png")
    with pytest.raises(DataError, match="at least two sub-folders"):
        dataset_info(DataSpec(name="image_folder", path=str(tmp_path)))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "b.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"b.png: not a readable image"):
        load_splits(DataSpec(name="image_folder", path=str(tmp_path)), seed=0)
