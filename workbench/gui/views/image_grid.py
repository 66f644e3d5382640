"""Thumbnails in a grid, a caption under each, as many columns as the width allows."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from workbench.gui.widgets.style import CAPTION


class ImageGrid(QWidget):
    """Thumbnails with a caption under each, in up to `columns` columns and at most `rows`
    rows: a narrower grid shows fewer. With `paired`, the images are `rows` equal groups, one
    a row (originals over their augmented copies), cut to the columns shown."""

    def __init__(self, columns: int = 8, cell: int = 56, *, rows: int = 4, paired: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns, self.cell, self.rows, self.paired = columns, cell, rows, paired
        self.images: list[tuple[QImage, str]] = []
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_images(self, images: list[tuple[QImage, str]]) -> None:
        self.images = images
        self.updateGeometry()
        self._fit_height()
        self.update()

    def _caption_height(self) -> int:
        return 20 if any(caption for _, caption in self.images) else 4

    def shown_columns(self, width: int | None = None) -> int:
        width = self.width() if width is None else width
        return max(1, min(self.columns, (width + 6) // (self.cell + 6)))

    def placed(self, columns: int | None = None) -> list[tuple[int, int, QImage, str]]:
        """(row, column, image, caption) of every image shown at this width."""
        columns = self.shown_columns() if columns is None else columns
        if self.paired:
            per_group = -(-len(self.images) // self.rows) if self.images else 0
            return [(r, c, *self.images[r * per_group + c]) for r in range(self.rows)
                    for c in range(min(columns, per_group))
                    if r * per_group + c < len(self.images)]
        shown = self.images[:columns * self.rows]
        return [(i // columns, i % columns, image, caption)
                for i, (image, caption) in enumerate(shown)]

    def _height(self, columns: int) -> int:
        rows = 1 + max((r for r, *_ in self.placed(columns)), default=0)
        return rows * (self.cell + self._caption_height())

    def _fit_height(self) -> None:
        height = self._height(self.shown_columns())
        if height != self.height():
            self.setFixedHeight(height)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.columns * (self.cell + 6), self._height(self.columns))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.cell + 6, self._height(1))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_height()

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        below = self._caption_height()
        for r, c, image, caption in self.placed():
            x, y = c * (self.cell + 6), r * (self.cell + below)
            painter.drawImage(QRectF(x, y, self.cell, self.cell), image)
            painter.setPen(QColor(CAPTION))
            painter.drawText(QRectF(x - 3, y + self.cell, self.cell + 6, 20),
                             Qt.AlignmentFlag.AlignCenter, caption)
        painter.end()
