"""The data panel: pick a dataset and its options, load it off the GUI thread (with progress
and cancel, downloads included), and look at it: sample images, a scatter of a 2-D set or the
curve of a regression set, class counts, split sizes and what augmentation does.

The data comes from the workspace's cache, so the trainer and the tools that follow reuse it.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data.errors import DataError
from workbench.gui.document.experiment_model import ExperimentModel
from workbench.gui.editors.binder import Binder
from workbench.gui.editors.data_presenter import (
    KIND_ORDER,
    TARGET_CHOICES,
    augment_pair,
    class_counts,
    load_data,
    needs_download,
    progress_text,
    target_reason,
    target_text,
    visible_options,
    with_dataset,
)
from workbench.gui.editors.data_view import DataView
from workbench.gui.threads.tasks import Tasks
from workbench.gui.widgets.fields import field_spin
from workbench.gui.widgets.layouts import scroll_above
from workbench.spec.datasets import DATASETS, DatasetEntry

if TYPE_CHECKING:
    from workbench.core.workspace import Workspace

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
        # the options scroll on a short screen rather than squeezing their rows (a CSV's
        # target and its guess); Load, Cancel and what a load says stay below them, in view
        options = scroll_above(self._build_options(), self._build_footer())
        options.setMaximumWidth(330 + self.style().pixelMetric(
            QStyle.PixelMetric.PM_ScrollBarExtent))
        layout.addWidget(options, 0)
        self.data_view = DataView()
        layout.addWidget(self.data_view, 1)
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
        for kind in KIND_ORDER:
            if self.combo.count():
                self.combo.insertSeparator(self.combo.count())
            for entry in DATASETS.values():
                if entry.kind == kind:
                    self.combo.addItem(entry.title, entry.name)
        self.binder.combo(self.combo, "data.name",
                          also=lambda name: with_dataset(name, self.model.live.data.target))
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
        self.target = QComboBox()
        self.target.setMinimumContentsLength(10)  # grows with the column; narrow, it elides
        self.target.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        for text, value in TARGET_CHOICES:
            self.target.addItem(text, value)
        self.target.setToolTip("How the label column is meant: a number to predict "
                               "(regression, one output) or classes; the guess reads many "
                               "distinct numbers as a quantity")
        self.binder.combo(self.target, "data.target")
        self.target_note = QLabel(target_text(None))
        self.target_note.setWordWrap(True)
        self.target_note.setObjectName("hint")
        target_box = QWidget()
        target_layout = QVBoxLayout(target_box)
        target_layout.setContentsMargins(0, 0, 0, 0)
        target_layout.setSpacing(2)
        target_layout.addWidget(self.target)
        target_layout.addWidget(self.target_note)
        self.browse_buttons: list[QPushButton] = []
        self.rows: dict[str, QWidget] = {
            "samples": self.samples, "noise": self.noise, "val": self.val_fraction,
            "test": self.test_fraction,
            "root": self._with_button(self.root, self.browse_root),
            "path": self._with_button(self.path, self.browse_path),
            "label": self.label_column, "target": target_box,
        }
        for key, text in (("samples", "Samples"), ("noise", "Noise"), ("val", "Validation"),
                          ("test", "Test"), ("root", "Folder"), ("path", "File"),
                          ("label", "Label column"), ("target", "Target")):
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

        v.addStretch(1)
        return box

    def _build_footer(self) -> QWidget:
        footer = QWidget()
        footer.setMaximumWidth(330)
        v = QVBoxLayout(footer)
        v.setContentsMargins(0, 0, 0, 0)
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
        return footer

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
        visible = visible_options(e)
        for key, widget in self.rows.items():
            self.form.setRowVisible(widget, visible[key])
        image = e.kind == "image"
        self.hflip.setEnabled(image)
        self.crop_pad.setEnabled(image)
        self.description.setText(e.description.replace("`", ""))
        self.load_button.setText("Download and load" if self._needs_download() else "Load")

    def _needs_download(self) -> bool:
        return needs_download(self.entry(), self.model.live.data)

    def _schedule(self) -> None:
        self.splits = None
        self.target_note.setText(target_text(None))
        self.target_note.setToolTip("")
        entry = self.entry()
        if self._needs_download():
            self._show_stale(f"{entry.title}: not loaded yet. Press “Download and load” to "
                             "fetch it (it is cached for next time), or choose its Folder.",
                             keep=False)
        elif self.auto_load:
            shown = self.data_view.shown_name
            self._show_stale(f"Loading {entry.title}…", keep=shown == entry.name)
            self._debounce.start()
        elif self.data_view.shown_name is not None:
            self._show_stale(f"{entry.title}: not loaded yet.", keep=False)

    def _show_stale(self, message: str, *, keep: bool) -> None:
        self.status.setText("")
        self.data_view.show_stale(message, keep=keep)

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
            self.progress.setFormat(progress_text(done, total))

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
        return class_counts(self.splits)

    def _show_data(self) -> None:
        self.target_note.setText(target_text(self.splits.info.target))
        self.target_note.setToolTip(target_reason(self.splits.info.target))
        self.data_view.show_data(self.splits, self.model.live.data.name)
        self._update_augment()

    def _update_augment(self) -> None:
        s = self.splits
        image = s is not None and s.info.is_image
        if image:
            self.preview = augment_pair(s, self.model.live.data.augment,
                                        self.model.live.train.seed)
        self.data_view.show_augment(image, self.preview if image else None)

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

    from workbench.gui.demo import show_alone
    from workbench.gui.widgets.style import apply_style
    from workbench.spec import ExperimentSpec

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    from workbench.core.workspace import Workspace

    spec = ExperimentSpec()
    spec.data.name = sys.argv[1] if len(sys.argv) > 1 else "mnist_small"
    panel = DataPanel(ExperimentModel(spec), QUndoStack(), Workspace())
    sys.exit(show_alone(panel, (980, 640)))


if __name__ == "__main__":
    _sample()
