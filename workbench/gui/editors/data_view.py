"""The data panel's view of the loaded data: sample images (and what augmentation does to
them), a scatter of a 2-D set or the curve of a regression set, and the class counts; greyed
while it no longer shows the experiment's data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QGraphicsOpacityEffect,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.gui.editors.data_presenter import (
    AUGMENT_SAMPLES,
    GRID_SAMPLES,
    SCATTER_POINTS,
    class_counts,
    summary_text,
)
from workbench.gui.views.axes import plot_widget
from workbench.gui.views.image_grid import ImageGrid
from workbench.gui.widgets.images import to_qimage
from workbench.gui.widgets.layouts import vertical_scroll
from workbench.gui.widgets.style import ACCENT, CAPTION, series_color


class DataView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("Nothing loaded yet.")
        self.summary.setObjectName("sectionTitle")
        self.summary.setWordWrap(True)
        v.addWidget(self.summary)
        self.views = QStackedWidget()
        self.scatter = plot_widget()
        self.scatter.setAspectLocked(False)
        self.scatter.showGrid(x=True, y=True, alpha=0.2)
        self.scatter_items: list[pg.ScatterPlotItem] = []
        self.grid = ImageGrid(columns=8, cell=52)
        # The augmentation preview sits under the samples (image sets only), so the images
        # page takes its natural height and the class counts follow it without a gap.
        self.augment_title = QLabel("Augmentation: top, the originals; bottom, as trained")
        self.augment_title.setObjectName("hint")
        self.augment_title.setWordWrap(True)
        self.augment_grid = ImageGrid(columns=AUGMENT_SAMPLES, cell=52, rows=2, paired=True)
        grid_holder = QWidget()
        gv = QVBoxLayout(grid_holder)
        gv.setContentsMargins(0, 0, 0, 0)
        gv.addWidget(self.grid)
        gv.addWidget(self.augment_title)
        gv.addWidget(self.augment_grid)
        gv.addStretch(1)
        self.views.addWidget(self.scatter)
        self.views.addWidget(vertical_scroll(grid_holder))
        self.body = QWidget()  # the samples and the counts: what goes stale together
        bv = QVBoxLayout(self.body)
        bv.setContentsMargins(0, 0, 0, 0)
        bv.addWidget(self.views, 3)
        self.counts_plot = plot_widget()
        self.counts_plot.setMinimumHeight(120)
        self.counts_plot.setMaximumHeight(170)
        self.counts_plot.setMouseEnabled(False, False)
        self.counts_plot.hideButtons()
        self.counts_plot.setLabel("left", "samples")  # of the training split, per class
        self.counts_plot.setLabel("bottom", "class")
        bv.addWidget(self.counts_plot, 1)
        v.addWidget(self.body, 1)
        # greyed while the data it shows is not the experiment's any more
        self.stale_effect = QGraphicsOpacityEffect(self.body)
        self.stale_effect.setOpacity(0.35)
        self.stale_effect.setEnabled(False)
        self.body.setGraphicsEffect(self.stale_effect)
        self.body.hide()
        self.shown_name: str | None = None  # the dataset the preview shows, None: nothing

    def show_stale(self, message: str, *, keep: bool) -> None:
        """The preview no longer shows the experiment's data: greyed under `message` while the
        same dataset reloads (`keep`), else emptied, so old samples never pass for new ones."""
        self.summary.setText(message)
        if keep:
            self.stale_effect.setEnabled(True)
            return
        self.shown_name = None
        self.stale_effect.setEnabled(False)
        self.body.hide()

    def show_data(self, s: Any, name: str) -> None:
        """Show the loaded splits `s` of dataset `name`."""
        info = s.info
        self.summary.setText(summary_text(s))
        self.shown_name = name
        self.stale_effect.setEnabled(False)
        self.body.show()
        if info.is_image:
            x = s.train_x[:GRID_SAMPLES].numpy()
            y = s.train_y[:GRID_SAMPLES].numpy()
            self.grid.set_images([(to_qimage(img), info.class_names[int(label)])
                                  for img, label in zip(x, y, strict=True)])
            self.views.setCurrentIndex(1)
        else:
            self._plot_points(s)
            self.views.setCurrentIndex(0)
        self._plot_counts(s)

    def _plot_points(self, s: Any) -> None:
        for item in self.scatter_items:
            self.scatter.removeItem(item)
        self.scatter_items = []
        self.scatter.clear()
        x = s.train_x[:SCATTER_POINTS].numpy()
        y = s.train_y[:SCATTER_POINTS].numpy()
        names = list(s.info.feature_names) or ["x₁", "x₂"]
        if s.info.num_classes == 0:
            order = np.argsort(x[:, 0])
            many = x.shape[1] > 1  # one feature of several: points, not a curve
            self.scatter.plot(x[order, 0], y[order].reshape(-1),
                              pen=None if many else pg.mkPen(ACCENT, width=1),
                              symbol="o", symbolSize=4, symbolBrush=ACCENT, symbolPen=None)
            self.scatter.setLabel("bottom", names[0] if many else "x")
            self.scatter.setLabel("left", "y")
            return
        one = x.shape[1] == 1  # a single feature: drawn against the class
        for k in range(s.info.num_classes):
            pts = x[y == k]
            item = pg.ScatterPlotItem(pts[:, 0], np.full(len(pts), k) if one else pts[:, 1],
                                      size=5, pen=None, brush=pg.mkBrush(series_color(k)),
                                      name=s.info.class_names[k])
            self.scatter.addItem(item)
            self.scatter_items.append(item)
        self.scatter.setLabel("bottom", names[0])
        self.scatter.setLabel("left", "class" if one else names[1])

    def _plot_counts(self, s: Any) -> None:
        self.counts_plot.clear()
        counts = class_counts(s)
        self.counts_plot.setVisible(bool(counts))
        if not counts:
            return
        names = s.info.class_names
        brushes = [pg.mkBrush(series_color(k)) for k in range(len(counts))]
        bars = pg.BarGraphItem(x=np.arange(len(counts)), height=counts, width=0.7,
                               brushes=brushes, pen=None)
        self.counts_plot.addItem(bars)
        axis = self.counts_plot.getAxis("bottom")
        axis.setTicks([[(k, names[k]) for k in range(len(counts))]])
        if len(counts) <= 5:  # a count over each bar only where the bars are wide
            for k, c in enumerate(counts):
                label = pg.TextItem(f"{c:,}", color=CAPTION, anchor=(0.5, 1.0))
                label.setPos(k, c)
                self.counts_plot.addItem(label)
        self.counts_plot.setYRange(0, max(counts) * 1.25)

    def show_augment(self, image: bool, pair: tuple[Any, Any] | None) -> None:
        """The augmentation preview of an image set: originals over augmented copies."""
        self.augment_title.setVisible(image)
        self.augment_grid.setVisible(image)
        if not image:
            return
        if pair is None:
            self.augment_title.setText("Augmentation: none (turn one on to see it here)")
            self.augment_grid.set_images([])
            return
        self.augment_title.setText("Augmentation: top, the originals; bottom, as trained")
        original, augmented = pair
        images = [(to_qimage(img), "") for img in [*original, *augmented]]
        self.augment_grid.set_images(images)
