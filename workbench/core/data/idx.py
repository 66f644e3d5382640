"""The IDX format of MNIST and its relatives, gzip-compressed or plain.

A header of magic (two zero bytes, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the data. Only unsigned bytes (type 0x08) are used by these sets,
so that is all this reads; every check names the file and what is wrong with it.

Reads are bounded: only plain files are opened (a pipe or a device would block or never end),
and no more bytes are read (or decompressed) than the header announces, itself at most 256 MiB
(MNIST's training images are 47 MB); the sizes are whole Python numbers, which cannot wrap.
"""

from __future__ import annotations

import gzip
import io
import math
import stat
import struct
import zlib
from pathlib import Path

import numpy as np

from workbench.core.data.errors import DataError

UBYTE = 0x08
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: Path, ndim: int, limit: int = 1 << 28) -> bytes:
    """The IDX bytes of a plain file (gunzipped for .gz): an `ndim`-D header, then no more
    data than it announces and one byte past it (so that parse_idx can tell extra bytes), the
    announced size refused above `limit` before anything else is read."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise DataError(f"{path}: not a plain file")
        with open(path, "rb") as raw_file:
            f = gzip.GzipFile(fileobj=raw_file) if path.suffix == ".gz" else raw_file
            head = f.read(4)
            if len(head) < 4 or head != bytes((0, 0, UBYTE, ndim)):
                return head  # parse_idx names what is wrong with it
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                return head + dims
            shape = struct.unpack(f">{ndim}I", dims)
            size = math.prod(shape)
            if size > limit:
                said = " x ".join(f"{d:,}" for d in shape)
                raise DataError(f"{path}: the header says {said} bytes of data"
                                + (f" ({size:,})" if ndim > 1 else "")
                                + f", more than the {limit:,} this reader takes (a damaged "
                                "header, or not a dataset of this family)")
            return head + dims + f.read(size + 1)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a complete gzip file ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def parse_idx(raw: bytes, name: str | Path, ndim: int) -> np.ndarray:
    """Check the header of IDX bytes and return the uint8 array it describes."""
    if len(raw) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != UBYTE or dims != ndim:
        raise DataError(f"{name}: wrong magic number 0x{raw[:4].hex()} "
                        f"(expected 0x0000{UBYTE:02x}{ndim:02x}: unsigned bytes, {ndim}-D)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: header cut short ({len(raw)} of {header} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(shape)  # a Python int: a product past int64 cannot wrap
    if len(raw) < expected:
        raise DataError(f"{name}: truncated: {len(raw):,} bytes, the header {shape} says "
                        f"{expected:,}")
    if len(raw) > expected:
        raise DataError(f"{name}: has extra bytes past the {expected:,} its header {shape} "
                        "says")
    # a copy: arrays over `bytes` are read-only, and torch warns about those
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx(path: Path, ndim: int) -> np.ndarray:
    return parse_idx(_read_bytes(path, ndim), path, ndim)


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array (for the bundled subset and for tests)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return (struct.pack(">HBB", 0, UBYTE, array.ndim)
            + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write IDX, gzip-compressed when the name ends in .gz (with mtime 0: reproducible bytes)."""
    data = encode_idx(array)
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as f:
            f.write(data)
        data = buffer.getvalue()
    from workbench.core.store.atomic import write_bytes_atomic

    write_bytes_atomic(path, data)


def find_file(root: Path, stem: str) -> Path:
    """`stem` or `stem.gz` in root; a clear error when neither is there."""
    for name in (stem, stem + ".gz"):
        if (root / name).exists():
            return root / name  # a pipe or a device is refused by the reader, unread
    raise DataError(f"{root}: missing {stem}[.gz] (a folder with the 4 standard IDX files "
                    f"is needed: {', '.join(FILES.values())})")


def read_idx_dataset(root: str | Path, image_shape: tuple[int, int] | None = None,
                     num_classes: int = 10) -> tuple[np.ndarray, ...]:
    """(train_images, train_labels, test_images, test_labels) from a folder of IDX files.

    Images come back (N, H, W) uint8, labels (N,) uint8, every size and label checked.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root: {root} is not a folder")
    paths = {key: find_file(root, stem) for key, stem in FILES.items()}
    out = []
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"], 3)
        labels = read_idx(paths[f"{split}_labels"], 1)
        if len(images) != len(labels):
            raise DataError(f"{paths[f'{split}_labels']}: {len(labels)} labels for "
                            f"{len(images)} images in {paths[f'{split}_images'].name}")
        if len(images) == 0:
            raise DataError(f"{paths[f'{split}_images']}: holds no images")
        if image_shape is not None and images.shape[1:] != image_shape:
            raise DataError(f"{paths[f'{split}_images']}: images are "
                            f"{images.shape[1]}x{images.shape[2]}, expected "
                            f"{image_shape[0]}x{image_shape[1]}")
        if labels.max() >= num_classes:
            raise DataError(f"{paths[f'{split}_labels']}: label {int(labels.max())} is out of "
                            f"range 0..{num_classes - 1}")
        out += [images, labels]
    return tuple(out)
