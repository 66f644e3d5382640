"""Images from the data as Qt images: the one conversion the data panel's grids and the
results view's thumbnails share."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def to_qimage(pixels: np.ndarray) -> QImage:
    """A (C,H,W) uint8 or [0,1] float image (1 channel, or the first 3) as a QImage that owns
    its buffer."""
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    c, h, w = pixels.shape
    if c == 1:
        data = np.ascontiguousarray(pixels[0])
        return QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    data = np.ascontiguousarray(pixels[:3].transpose(1, 2, 0))
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
