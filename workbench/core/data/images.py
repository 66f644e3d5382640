"""A folder of images with one sub-folder per class, loaded with Pillow.

`path/<class>/*.png|jpg|jpeg|bmp|gif`; classes are the sub-folder names, sorted. All images
become one size so they stack into a uint8 (N,C,H,W) tensor: the first image's size, scaled
down (keeping its aspect) to fit 64x64, because this app trains small networks and larger
images would only fill memory. Images are grayscale (C=1) when every one is, else RGB.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench.core.data.errors import DataError

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif"})
MAX_SIDE = 64
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
# Every image is scaled down to 64x64, so a larger one only costs memory to decode: a
# decompression bomb (a small file that unpacks to gigapixels) is refused from its header.
MAX_PIXELS = 25_000_000
MAX_CLASSES = 1_000
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
               Image.DecompressionBombError)


def list_images(root: str | Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """(class names, [(file, class index)]) in a stable sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.path: {root} is not a folder")
    classes: list[str] = []
    files: list[tuple[Path, int]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if found:
            files += [(p, len(classes)) for p in found]
            classes.append(folder.name)
    if len(classes) < 2:
        raise DataError(f"{root}: needs at least two sub-folders of images (one per class, "
                        f"{'/'.join(sorted(EXTENSIONS))}); found {len(classes)}")
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{root}: has {len(classes):,} sub-folders of images (classes); "
                        f"at most {MAX_CLASSES:,} are allowed")
    return tuple(classes), files


def _open(path: Path) -> Image.Image:
    """The image's header (pixels are decoded later), refusing one too large to decode."""
    try:
        image = Image.open(path)
    except _UNREADABLE as exc:
        raise DataError(f"{path}: not a readable image ({_first_line(exc)})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise DataError(f"{path}: the image is {width:,} x {height:,} pixels, more than the "
                        f"{MAX_PIXELS:,} this reader decodes (images are scaled to "
                        f"{MAX_SIDE}x{MAX_SIDE})")
    return image


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def target_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of every image: the first image's, scaled down to fit MAX_SIDE."""
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def scan(root: str | Path) -> tuple[tuple[str, ...], list[tuple[Path, int]], tuple[int, ...]]:
    """Classes, files and the (C,H,W) shape, reading only image headers (no pixel decoding).

    Every header is read because one colour image makes the whole set RGB.
    """
    classes, files = list_images(root)
    gray = True
    size = (0, 0)
    for i, (path, _) in enumerate(files):
        with _open(path) as image:
            if i == 0:
                size = target_size(*image.size)
            gray = gray and image.mode in GRAY_MODES
    return classes, files, (1 if gray else 3, size[1], size[0])


def read_image_folder(root: str | Path, *, progress: Callable[[int, int], None] | None = None,
                      cancel: threading.Event | None = None
                      ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images uint8 (N,C,H,W), labels int64 (N,), class names); progress counts images."""
    classes, files, (channels, height, width) = scan(root)
    mode = "L" if channels == 1 else "RGB"
    images = np.empty((len(files), channels, height, width), dtype=np.uint8)
    labels = np.array([label for _, label in files], dtype=np.int64)
    for i, (path, _) in enumerate(files):
        if cancel is not None and cancel.is_set():
            raise DataError("loading cancelled")
        with _open(path) as image:
            try:
                converted = image.convert(mode)
                if converted.size != (width, height):
                    converted = converted.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(converted, dtype=np.uint8)
            except _UNREADABLE as exc:
                raise DataError(f"{path}: cannot decode ({_first_line(exc)})") from None
        images[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
        if progress is not None:
            progress(i + 1, len(files))
    return images, labels, classes
