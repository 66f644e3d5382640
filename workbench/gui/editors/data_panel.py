"""The data panel: pick a dataset and its options, load it off the GUI thread (with progress
and cancel, downloads included), and look at it: sample images, a scatter of a 2-D set or the
curve of a regression set, class counts, split sizes and what augmentation does.

The data comes from the workspace's cache, so the trainer and the tools that follow reuse it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGraphicsOpacityEffect,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data.errors import DataError
from workbench.gui.editors.experiment_model import ExperimentModel
from workbench.gui.threads.tasks import Tasks
from workbench.gui.widgets.fields import Binder, field_spin
from workbench.gui.widgets.images import to_qimage
from workbench.gui.widgets.layouts import vertical_scroll
from workbench.gui.widgets.style import CLASS_COLORS
from workbench.spec import AugmentSpec, DataSpec
from workbench.spec.datasets import DATASETS, DatasetEntry
from workbench.spec.layers import shape_text

if TYPE_CHECKING:
    from workbench.core.workspace import Workspace

GRID_SAMPLES = 32
AUGMENT_SAMPLES = 8
SCATTER_POINTS = 3000
_KIND_ORDER = ("toy2d", "regression", "image", "table")


def load_data(workspace: Workspace, data: DataSpec, seed: int, emit: Callable[[object], None],
              cancel: threading.Event) -> tuple[Any, Any]:
    """(splits, augmentation preview) from the workspace's cache, for a task: progress is
    emitted as (done, total) once a percent, not once a block."""
    last_percent = [-1]

    def progress(done: int, total: int) -> None:
        percent = int(100 * done / total) if total > 0 else -1
        if percent != last_percent[0]:
            last_percent[0] = percent
            emit((done, total))

    splits = workspace.splits(data, seed, progress=progress, cancel=cancel)
    return splits, augment_pair(splits, data.augment, seed)


def augment_pair(splits: Any, augment: AugmentSpec, seed: int) -> tuple[Any, Any] | None:
    """(originals, augmented) as numpy (n,C,H,W) floats, or None for non-image data."""
    from workbench.core.data import augment_preview

    if not splits.info.is_image or not augment.active:
        return None
    original, augmented = augment_preview(splits, augment, AUGMENT_SAMPLES, seed)
    return original.numpy(), augmented.numpy()


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
            painter.setPen(QColor("#4a5563"))
            painter.drawText(QRectF(x - 3, y + self.cell, self.cell + 6, 20),
                             Qt.AlignmentFlag.AlignCenter, caption)
        painter.end()


class DataPanel(QWidget):
    """Edits `data.*` of the experiment and shows the loaded data.

    `loaded(splits)` after each successful load, `failed(reason)` after a failed one.
    """

    loaded = Signal(object)
    failed = Signal(str)

    def __init__(self, model: ExperimentModel, stack: QUndoStack, workspace: Workspace, *,
                 auto_load: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model, self.undo = model, stack
        self.workspace = workspace
        self.binder = Binder(model, stack, self)
        self.auto_load = auto_load
        self.splits: Any = None
        self.preview: tuple[Any, Any] | None = None
        self.error: str | None = None
        self.tasks = Tasks(self, workspace.jobs)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self._auto_load)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._build_options(), 0)
        layout.addWidget(self._build_preview(), 1)
        model.valueChanged.connect(self._on_value)
        model.specReplaced.connect(self._on_replaced)
        self._on_replaced()

    # -- options ----------------------------------------------------------------------------
    def _build_options(self) -> QWidget:
        box = QWidget()
        box.setMaximumWidth(330)
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        for kind in _KIND_ORDER:
            if self.combo.count():
                self.combo.insertSeparator(self.combo.count())
            for entry in DATASETS.values():
                if entry.kind == kind:
                    self.combo.addItem(entry.title, entry.name)
        self.binder.combo(self.combo, "data.name")
        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.description.setObjectName("hint")
        v.addWidget(self.combo)
        v.addWidget(self.description)

        group = QGroupBox("Options")
        self.form = QFormLayout(group)
        self.samples = field_spin("data.samples", 100)
        self.binder.spin(self.samples, "data.samples", int)
        self.noise = field_spin("data.noise", 0.05, 3)
        self.binder.spin(self.noise, "data.noise", float)
        self.val_fraction = field_spin("data.val_fraction", 0.05, 2)
        self.binder.spin(self.val_fraction, "data.val_fraction", float)
        self.test_fraction = field_spin("data.test_fraction", 0.05, 2)
        self.binder.spin(self.test_fraction, "data.test_fraction", float)
        self.root = QLineEdit()
        self.root.setPlaceholderText("download cache")
        self.root.setToolTip("A folder holding the dataset's files (for MNIST the four "
                             "*-ubyte.gz files); empty: download them into the cache once")
        self.root.editingFinished.connect(
            lambda: self.binder.write("data.root", self.root.text().strip() or None))
        self.binder.custom("data.root", lambda v: self.root.setText(v or ""))
        self.path = QLineEdit()
        self.path.setPlaceholderText("CSV or image folder")
        self.path.setToolTip("A CSV file (one row a sample), or a folder holding one folder "
                             "of images per class")
        self.path.editingFinished.connect(
            lambda: self.binder.write("data.path", self.path.text().strip() or None))
        self.binder.custom("data.path", lambda v: self.path.setText(v or ""))
        self.label_column = QLineEdit()
        self.label_column.setPlaceholderText("the last column")
        self.label_column.editingFinished.connect(lambda: self.binder.write(
            "data.label_column", self.label_column.text().strip() or None))
        self.binder.custom("data.label_column", lambda v: self.label_column.setText(v or ""))
        self.browse_buttons: list[QPushButton] = []
        self.rows: dict[str, QWidget] = {
            "samples": self.samples, "noise": self.noise, "val": self.val_fraction,
            "test": self.test_fraction,
            "root": self._with_button(self.root, self.browse_root),
            "path": self._with_button(self.path, self.browse_path),
            "label": self.label_column,
        }
        for key, text in (("samples", "Samples"), ("noise", "Noise"), ("val", "Validation"),
                          ("test", "Test"), ("root", "Folder"), ("path", "File"),
                          ("label", "Label column")):
            self.form.addRow(text, self.rows[key])
        v.addWidget(group)

        aug = QGroupBox("Augmentation (training only)")
        af = QFormLayout(aug)
        self.hflip = QCheckBox("flip left-right")
        self.binder.check(self.hflip, "data.augment.hflip")
        self.crop_pad = field_spin("data.augment.crop_pad")
        self.binder.spin(self.crop_pad, "data.augment.crop_pad", int)
        self.noise_std = field_spin("data.augment.noise_std", 0.05, 2)
        self.binder.spin(self.noise_std, "data.augment.noise_std", float)
        af.addRow("", self.hflip)
        af.addRow("Random crop, pad", self.crop_pad)
        af.addRow("Noise std", self.noise_std)
        self.augment_group = aug
        v.addWidget(aug)

        buttons = QHBoxLayout()
        self.load_button = QPushButton("Load")
        self.load_button.setObjectName("primary")
        self.load_button.clicked.connect(self.load)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.cancel_button)
        v.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        v.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("hint")
        v.addWidget(self.status)
        v.addStretch(1)
        return box

    def _with_button(self, edit: QLineEdit, slot: Any) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit, 1)
        b = QPushButton("Browse…")
        b.clicked.connect(slot)
        h.addWidget(b)
        self.browse_buttons.append(b)
        return w

    # -- preview ----------------------------------------------------------------------------
    def _build_preview(self) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("Nothing loaded yet.")
        self.summary.setObjectName("sectionTitle")
        self.summary.setWordWrap(True)
        v.addWidget(self.summary)
        self.views = QStackedWidget()
        self.scatter = pg.PlotWidget(background="w")
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
        self.counts_plot = pg.PlotWidget(background="w")
        self.counts_plot.setMinimumHeight(120)
        self.counts_plot.setMaximumHeight(170)
        self.counts_plot.setMouseEnabled(False, False)
        self.counts_plot.hideButtons()
        self.counts_plot.setLabel("left", "training samples")
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
        return box

    # -- reacting to the model --------------------------------------------------------------
    def entry(self) -> DatasetEntry:
        return DATASETS[self.model.live.data.name]

    def _on_replaced(self) -> None:
        self._show_rows()
        self._schedule()

    def _on_value(self, path: str, _value: Any) -> None:
        if path.startswith("data.augment."):
            self._update_augment()
            return
        if path == "data.name":
            self._show_rows()
        if path.startswith("data.") or path == "train.seed":
            self._schedule()

    def _show_rows(self) -> None:
        e = self.entry()
        generated = e.kind in ("toy2d", "regression")
        own_split = e.kind in ("toy2d", "regression", "table") or e.needs_path
        visible = {"samples": generated, "noise": generated, "val": True, "test": own_split,
                   "root": e.downloadable or e.bundled, "path": e.needs_path,
                   "label": e.name == "csv"}
        for key, widget in self.rows.items():
            self.form.setRowVisible(widget, visible[key])
        image = e.kind == "image"
        self.hflip.setEnabled(image)
        self.crop_pad.setEnabled(image)
        self.description.setText(e.description.replace("`", ""))
        self.load_button.setText("Download and load" if self._needs_download() else "Load")

    def _needs_download(self) -> bool:
        e = self.entry()
        return e.downloadable and not self.model.live.data.root

    def _schedule(self) -> None:
        self.splits = None
        entry = self.entry()
        if self._needs_download():
            self._show_stale(f"{entry.title}: not loaded yet. Press “Download and load” to "
                             "fetch it (it is cached for next time), or choose its Folder.",
                             keep=False)
        elif self.auto_load:
            self._show_stale(f"Loading {entry.title}…", keep=self.shown_name == entry.name)
            self._debounce.start()
        elif self.shown_name is not None:
            self._show_stale(f"{entry.title}: not loaded yet.", keep=False)

    def _show_stale(self, message: str, *, keep: bool) -> None:
        """The preview no longer shows the experiment's data: greyed under `message` while the
        same dataset reloads (`keep`), else emptied, so old samples never pass for new ones."""
        self.summary.setText(message)
        self.status.setText("")
        if keep:
            self.stale_effect.setEnabled(True)
            return
        self.shown_name = None
        self.stale_effect.setEnabled(False)
        self.body.hide()

    def enable_auto_load(self) -> None:
        """Load on every change from now on (the window turns it on once torch is loaded)."""
        self.auto_load = True
        if self.splits is None and not self.is_loading():
            self._schedule()

    def _auto_load(self) -> None:
        data = self.model.live.data
        if self.entry().needs_path and not data.path:
            self._show_stale(f"{self.entry().title}: choose a file or folder.", keep=False)
            return
        self.load()

    # -- loading ----------------------------------------------------------------------------
    def is_loading(self) -> bool:
        return self.tasks.is_running("load")

    def load(self) -> None:
        """Load the current data on a worker thread; a load in flight is cancelled first."""
        self._debounce.stop()
        spec = self.model.spec()
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.status.setText("Downloading…" if self._needs_download() else "Loading…")
        self.tasks.start("load", partial(load_data, self.workspace, spec.data, spec.train.seed),
                         partial=self._on_progress, done=self._on_loaded,
                         failed=self._on_failed, finished=self._load_ended,
                         expected=(DataError,))

    def cancel(self) -> None:
        self.tasks.cancel("load")
        self._load_ended()
        self._show_stale(f"{self.entry().title}: loading cancelled.", keep=False)

    def shutdown(self) -> None:
        """Cancel any load and wait for its thread (closing the window, ending a test)."""
        self._debounce.stop()
        self.tasks.shutdown()
        self._load_ended()

    def _load_ended(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)

    def _on_progress(self, done_total: tuple[int, int]) -> None:
        done, total = done_total
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            if total > 1_000_000:
                self.progress.setFormat(f"{done / 2**20:.1f} of {total / 2**20:.1f} MB")
            else:
                self.progress.setFormat(f"{done:,} of {total:,}")

    def _on_loaded(self, result: tuple[Any, Any]) -> None:
        self.error = None
        self.splits, self.preview = result
        self.status.setText("")
        self._show_data()
        self.load_button.setText("Reload")
        self.loaded.emit(self.splits)

    def _on_failed(self, reason: str) -> None:
        self.error = reason
        self._show_stale(f"{self.entry().title} could not be loaded.", keep=False)
        self.status.setText(f"⚠ {reason}")
        self.failed.emit(reason)

    # -- showing ------------------------------------------------------------------------------
    def class_counts(self) -> list[int]:
        s = self.splits
        if s is None or s.info.num_classes == 0:
            return []
        return np.bincount(s.train_y.numpy(), minlength=s.info.num_classes).tolist()

    def _show_data(self) -> None:
        s = self.splits
        info = s.info
        sizes = f"train {len(s.train_x):,} · val {len(s.val_x):,} · test {len(s.test_x):,}"
        what = f"{info.num_classes} classes" if info.num_classes else "regression"
        shape = shape_text(info.input_shape)
        self.summary.setText(f"{sizes}  —  {what}, input {shape}")
        self.shown_name = self.model.live.data.name
        self.stale_effect.setEnabled(False)
        self.body.show()
        if info.is_image:
            x = s.train_x[:GRID_SAMPLES].numpy()
            y = s.train_y[:GRID_SAMPLES].numpy()
            self.grid.set_images([(to_qimage(img), info.class_names[int(label)])
                                  for img, label in zip(x, y, strict=True)])
            self.views.setCurrentIndex(1)
        else:
            self._plot_points()
            self.views.setCurrentIndex(0)
        self._plot_counts()
        self._update_augment()

    def _plot_points(self) -> None:
        s = self.splits
        for item in self.scatter_items:
            self.scatter.removeItem(item)
        self.scatter_items = []
        self.scatter.clear()
        x = s.train_x[:SCATTER_POINTS].numpy()
        y = s.train_y[:SCATTER_POINTS].numpy()
        if s.info.num_classes == 0:
            order = np.argsort(x[:, 0])
            self.scatter.plot(x[order, 0], y[order].reshape(-1), pen=pg.mkPen("#2f6fde", width=1),
                              symbol="o", symbolSize=4, symbolBrush="#2f6fde",
                              symbolPen=None)
            self.scatter.setLabel("bottom", "x")
            self.scatter.setLabel("left", "y")
            return
        for k in range(s.info.num_classes):
            pts = x[y == k]
            item = pg.ScatterPlotItem(pts[:, 0], pts[:, 1], size=5, pen=None,
                                      brush=pg.mkBrush(CLASS_COLORS[k % len(CLASS_COLORS)]),
                                      name=s.info.class_names[k])
            self.scatter.addItem(item)
            self.scatter_items.append(item)
        self.scatter.setLabel("bottom", "x₁")
        self.scatter.setLabel("left", "x₂")

    def _plot_counts(self) -> None:
        self.counts_plot.clear()
        counts = self.class_counts()
        self.counts_plot.setVisible(bool(counts))
        if not counts:
            return
        names = self.splits.info.class_names
        brushes = [pg.mkBrush(CLASS_COLORS[k % len(CLASS_COLORS)]) for k in range(len(counts))]
        bars = pg.BarGraphItem(x=np.arange(len(counts)), height=counts, width=0.7,
                               brushes=brushes, pen=None)
        self.counts_plot.addItem(bars)
        axis = self.counts_plot.getAxis("bottom")
        axis.setTicks([[(k, names[k]) for k in range(len(counts))]])
        if len(counts) <= 5:  # a count over each bar only where the bars are wide
            for k, c in enumerate(counts):
                label = pg.TextItem(f"{c:,}", color="#374151", anchor=(0.5, 1.0))
                label.setPos(k, c)
                self.counts_plot.addItem(label)
        self.counts_plot.setYRange(0, max(counts) * 1.25)

    def _update_augment(self) -> None:
        s = self.splits
        image = s is not None and s.info.is_image
        data = self.model.live.data
        if image:
            self.preview = augment_pair(s, data.augment, self.model.live.train.seed)
        pair = self.preview if image else None
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

    # -- files ------------------------------------------------------------------------------
    def browse_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if folder:
            self.binder.write("data.root", folder)

    def browse_path(self) -> None:
        if self.model.live.data.name == "csv":
            path, _ = QFileDialog.getOpenFileName(self, "Open a CSV file", "",
                                                  "CSV files (*.csv);;All files (*)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Folder of class folders")
        if path:
            self.binder.write("data.path", path)


def _sample() -> None:
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.gui.widgets.style import apply_style
    from workbench.spec import ExperimentSpec

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    from workbench.core.workspace import Workspace

    spec = ExperimentSpec()
    spec.data.name = sys.argv[1] if len(sys.argv) > 1 else "mnist_small"
    panel = DataPanel(ExperimentModel(spec), QUndoStack(), Workspace())
    panel.resize(980, 640)
    panel.show()
    code = app.exec()
    panel.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    _sample()
