"""Optimizer, learning-rate schedule, regularization and training options, with a live preview
of the learning rate over the planned epochs (`core.optim.lr_curve`).

Only the hyperparameters the chosen optimizer and schedule use are shown. The preview needs
torch; the main window switches it on once torch has loaded in the background, so the window
opens without waiting for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.training.threads import automatic_threads
from workbench.gui.document.experiment_model import ExperimentModel
from workbench.gui.editors.binder import Binder
from workbench.gui.editors.model_presenter import DataShape, catalogue_shape
from workbench.gui.editors.optim_presenter import WAITING, LRPreview, lr_preview
from workbench.gui.tools.host import StandaloneHost
from workbench.gui.views.axes import plot_widget
from workbench.gui.widgets.fields import SciSpinBox, field_spin
from workbench.gui.widgets.layouts import Columns, vertical_scroll
from workbench.gui.widgets.style import ACCENT
from workbench.spec import (
    OPTIMIZER_TITLES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULE_TITLES,
    SCHEDULES,
    DataSpec,
)

if TYPE_CHECKING:
    from workbench.core.workspace import Workspace

# Which hyperparameters each optimizer and schedule reads (the rest are hidden).
OPTIMIZER_FIELDS = {
    "gd": {"weight_decay"}, "sgd": {"weight_decay"},
    "momentum": {"momentum", "weight_decay"}, "nesterov": {"momentum", "weight_decay"},
    "adam": {"betas", "eps", "weight_decay"}, "adamw": {"betas", "eps", "weight_decay"},
    "rmsprop": {"alpha", "eps", "weight_decay"}, "adagrad": {"eps", "weight_decay"},
}
SCHEDULE_FIELDS = {
    "constant": set(), "step": {"step_size", "gamma"}, "exponential": {"gamma"},
    "inv_sqrt": {"decay"}, "cosine": {"min_lr"}, "plateau": {"patience", "factor"},
}


def catalogue_only(data: DataSpec) -> DataShape:
    """What a panel opened alone knows of the data: the catalogue's figures; a file's size
    is read by the window's model editor (`ModelEditor.dataset_io`)."""
    known = catalogue_shape(data)
    return known if known is not None else DataShape(
        None, None, problem="a file's size is read once the experiment is open in the window")


class OptimPanel(QWidget):
    """`find_lr` opens the learning-rate finder (a tool): through `lr_finder` (the window's
    tools) when given, else as a window of this panel's own."""

    def __init__(self, model: ExperimentModel, stack: QUndoStack, *, lazy_preview: bool = False,
                 workspace: Workspace | None = None, parent: QWidget | None = None,
                 lr_finder: Callable[[], Any] | None = None,
                 data_shape: Callable[[], DataShape] | None = None) -> None:
        super().__init__(parent)
        self.model, self.undo = model, stack
        self.workspace = workspace  # where the learning-rate finder gets its data
        self.lr_finder = lr_finder
        self._host: StandaloneHost | None = None  # opened alone: the finder's host
        self.binder = Binder(model, stack, self)
        self.preview_enabled = not lazy_preview
        # what the editor knows of its data (its size): the window's model editor reads a
        # file's off the GUI thread and says when it has (`update_preview`)
        self.data_shape = data_shape or (lambda: catalogue_only(self.model.live.data))
        self.preview: LRPreview | None = None
        self.curve_xy: tuple[list[float], list[float]] = ([], [])
        self.lr_dialog: Any = None  # the learning-rate finder, once opened

        # the preview right under the rate and its schedule: in view without scrolling on a
        # laptop screen, beside what it draws
        groups = Columns([self._optimizer_group(), self._schedule_group(),
                          self._preview_group(), self._regularization_group(),
                          self._training_group()])
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(groups)
        column.addStretch(1)
        self.groups = groups
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(vertical_scroll(content))

        model.valueChanged.connect(self._on_value)
        model.specReplaced.connect(self.update_preview)
        self.update_preview()

    # -- groups -----------------------------------------------------------------------------
    def _form(self, title: str) -> tuple[QGroupBox, QFormLayout]:
        group = QGroupBox(title)
        form = QFormLayout(group)
        form.setHorizontalSpacing(12)
        return group, form

    def _optimizer_group(self) -> QGroupBox:
        group, form = self._form("Optimizer")
        self.optimizer = QComboBox()
        for name in OPTIMIZERS:
            self.optimizer.addItem(OPTIMIZER_TITLES[name], name)
        self.binder.combo(self.optimizer, "optim.name")
        self.lr = SciSpinBox.for_field("optim.lr")
        self.binder.spin(self.lr, "optim.lr")
        self.find_lr_button = QPushButton("Find…")
        self.find_lr_button.setToolTip("Find a learning rate: the range test on a copy of the "
                                       "model (nothing is stored)")
        self.find_lr_button.clicked.connect(self.find_lr)
        self.find_lr_button.setEnabled(self.preview_enabled)  # it needs torch, loaded later
        self.momentum = field_spin("optim.momentum", 0.05, 3)
        self.binder.spin(self.momentum, "optim.momentum")
        self.beta1 = field_spin("optim.betas", 0.01, 4)
        self.beta2 = field_spin("optim.betas", 0.001, 4)
        betas = QWidget()
        bh = QHBoxLayout(betas)
        bh.setContentsMargins(0, 0, 0, 0)
        bh.addWidget(self.beta1)
        bh.addWidget(self.beta2)
        for box in (self.beta1, self.beta2):
            box.valueChanged.connect(self._write_betas)
        self.binder.custom("optim.betas", self._show_betas)
        self.binder.register("optim.betas", self.beta1, self.beta2)
        self.eps = SciSpinBox.for_field("optim.eps")
        self.binder.spin(self.eps, "optim.eps")
        self.alpha = field_spin("optim.alpha", 0.01, 3)
        self.binder.spin(self.alpha, "optim.alpha")
        self.weight_decay = SciSpinBox.for_field("optim.weight_decay")
        self.binder.spin(self.weight_decay, "optim.weight_decay")
        self.optim_rows = {"momentum": self.momentum, "betas": betas, "eps": self.eps,
                           "alpha": self.alpha, "weight_decay": self.weight_decay}
        form.addRow("Algorithm", self.optimizer)
        form.addRow("Learning rate", self._pair(self.lr, self.find_lr_button, stretch_first=True))
        for key, text in (("momentum", "Momentum"), ("betas", "Betas (β₁, β₂)"),
                          ("eps", "Epsilon"), ("alpha", "Alpha (smoothing)"),
                          ("weight_decay", "Weight decay")):
            form.addRow(text, self.optim_rows[key])
        self.optim_form = form
        self.binder.custom("optim.name", self._show_optimizer_rows)
        return group

    def _schedule_group(self) -> QGroupBox:
        group, form = self._form("Learning-rate schedule")
        self.schedule = QComboBox()
        for name in SCHEDULES:
            self.schedule.addItem(SCHEDULE_TITLES[name], name)
        self.binder.combo(self.schedule, "schedule.name")
        self.step_size = field_spin("schedule.step_size")
        self.binder.spin(self.step_size, "schedule.step_size", int)
        self.gamma = field_spin("schedule.gamma", 0.05, 3)
        self.binder.spin(self.gamma, "schedule.gamma")
        self.decay = field_spin("schedule.decay", 0.1, 3)
        self.binder.spin(self.decay, "schedule.decay")
        self.min_lr = SciSpinBox.for_field("schedule.min_lr")
        self.binder.spin(self.min_lr, "schedule.min_lr")
        self.patience = field_spin("schedule.patience")
        self.binder.spin(self.patience, "schedule.patience", int)
        self.factor = field_spin("schedule.factor", 0.05, 2)
        self.binder.spin(self.factor, "schedule.factor")
        self.warmup = field_spin("schedule.warmup_epochs", 0.5, 2)
        self.binder.spin(self.warmup, "schedule.warmup_epochs")
        self.schedule_rows = {"step_size": self.step_size, "gamma": self.gamma,
                              "decay": self.decay, "min_lr": self.min_lr,
                              "patience": self.patience, "factor": self.factor}
        form.addRow("Schedule", self.schedule)
        for key, text in (("step_size", "Every (epochs)"), ("gamma", "Multiply by"),
                          ("decay", "Decay d"), ("min_lr", "Final rate"),
                          ("patience", "Patience (epochs)"), ("factor", "Cut by")):
            form.addRow(text, self.schedule_rows[key])
        form.addRow("Warm-up (epochs)", self.warmup)
        self.schedule_form = form
        self.binder.custom("schedule.name", self._show_schedule_rows)
        return group

    def _regularization_group(self) -> QGroupBox:
        group, form = self._form("Regularization")
        self.l1 = SciSpinBox.for_field("regularization.l1")
        self.binder.spin(self.l1, "regularization.l1")
        self.l2 = SciSpinBox.for_field("regularization.l2")
        self.binder.spin(self.l2, "regularization.l2")
        self.clip_on = QCheckBox("clip at")
        self.clip = field_spin("regularization.grad_clip", 0.5, 3)
        self.clip.setValue(1.0)
        self.binder.optional(self.clip_on, self.clip, "regularization.grad_clip")
        self.stop_on = QCheckBox("after")
        self.patience_stop = field_spin("regularization.early_stop_patience")
        self.patience_stop.setValue(5)
        self.patience_stop.setSuffix(" epochs")
        self.patience_stop.setToolTip("Stop when the validation loss has not improved by the "
                                      "minimum improvement for this many epochs")
        self.binder.optional(self.stop_on, self.patience_stop,
                             "regularization.early_stop_patience", int)
        self.min_delta = SciSpinBox.for_field("regularization.early_stop_min_delta")
        self.binder.spin(self.min_delta, "regularization.early_stop_min_delta")
        form.addRow("L1 penalty", self.l1)
        form.addRow("L2 penalty", self.l2)
        form.addRow("Gradient norm", self._pair(self.clip_on, self.clip))
        form.addRow("Early stopping", self._pair(self.stop_on, self.patience_stop))
        form.addRow("Min. improvement", self.min_delta)
        return group

    def _training_group(self) -> QGroupBox:
        group, form = self._form("Training")
        self.epochs = field_spin("train.epochs")
        self.binder.spin(self.epochs, "train.epochs", int)
        self.batch_size = field_spin("train.batch_size")
        self.binder.spin(self.batch_size, "train.batch_size", int)
        self.seed = field_spin("train.seed")
        self.binder.spin(self.seed, "train.seed", int)
        self.device = QComboBox()
        self.device.addItem("Auto (the GPU when there is one)", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU (looking…)", "cuda")
        self.binder.combo(self.device, "train.device")
        self.precision = QComboBox()
        for name, text in zip(PRECISIONS, ("fp32 (full)", "bf16 (mixed)"), strict=False):
            self.precision.addItem(text, name)
        self.binder.combo(self.precision, "train.precision")
        auto = automatic_threads()
        self.threads_on = QCheckBox("fixed at")
        self.threads = field_spin("train.threads")
        self.threads.setValue(auto)
        self.binder.optional(self.threads_on, self.threads, "train.threads", int)
        self.threads_on.setToolTip(
            f"Unticked: automatic, {auto} here (the physical cores but one, so the window stays "
            "responsive while the CPU trains). More threads than free cores slows training "
            "down many times over.")
        self.threads.setToolTip(self.threads_on.toolTip())
        self.checkpoint_every = field_spin("train.checkpoint_every")
        self.checkpoint_every.setSpecialValueText("never")
        self.checkpoint_every.setPrefix("every ")
        self.checkpoint_every.setSuffix(" epochs")
        self.checkpoint_every.setToolTip("Epoch checkpoints are the points a run can be forked "
                                         "at (Tools > Fork run)")
        self.binder.spin(self.checkpoint_every, "train.checkpoint_every", int)
        self.keep_on = QCheckBox("keep only")
        self.keep_checkpoints = field_spin("train.keep_checkpoints")
        self.keep_checkpoints.setValue(10)
        self.keep_checkpoints.setSuffix(" newest")
        self.binder.optional(self.keep_on, self.keep_checkpoints, "train.keep_checkpoints", int)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("CPU threads", self._pair(self.threads_on, self.threads))
        form.addRow("Checkpoints", self.checkpoint_every)
        form.addRow("", self._pair(self.keep_on, self.keep_checkpoints))
        return group

    def _preview_group(self) -> QGroupBox:
        group = QGroupBox("Learning rate over the planned epochs")
        v = QVBoxLayout(group)
        self.plot = plot_widget()
        self.plot.setMinimumHeight(150)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "learning rate")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.curve = self.plot.plot([], [], pen=pg.mkPen(ACCENT, width=2))
        self.preview_note = QLabel("")
        # short lines, unwrapped: a word-wrapped label in the scrolled column squeezes the
        # forms above it (its height for width is not the column's)
        self.preview_note.setObjectName("hint")
        v.addWidget(self.preview_note)  # the figures first: in view with the chart's top
        v.addWidget(self.plot)
        return group

    @staticmethod
    def _pair(a: QWidget, b: QWidget, *, stretch_first: bool = False) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(a, 1 if stretch_first else 0)
        h.addWidget(b, 0 if stretch_first else 1)
        return w

    # -- the learning-rate finder -------------------------------------------------------------
    def find_lr(self) -> Any:
        """Open the learning-rate finder (one at a time) and start it on the experiment."""
        if self.lr_finder is not None:
            return self.lr_finder()
        if self._host is None:
            self._host = StandaloneHost(self.workspace, self, model=self.model, undo=self.undo)
        self.lr_dialog = self._host.open_tool("lr_find")
        return self.lr_dialog

    def shutdown(self) -> None:
        """End the finder's thread, if this panel opened one (closing)."""
        if self._host is not None:
            self._host.shutdown()

    # -- shown rows -------------------------------------------------------------------------
    def _show_optimizer_rows(self, name: Any) -> None:
        wanted = OPTIMIZER_FIELDS.get(name, set())
        for key, widget in self.optim_rows.items():
            self.optim_form.setRowVisible(widget, key in wanted)

    def _show_schedule_rows(self, name: Any) -> None:
        wanted = SCHEDULE_FIELDS.get(name, set())
        for key, widget in self.schedule_rows.items():
            self.schedule_form.setRowVisible(widget, key in wanted)

    def visible_fields(self) -> set[str]:
        """The optimizer and schedule hyperparameters on show (what a person can edit now)."""
        shown = {k for k, w in self.optim_rows.items() if self.optim_form.isRowVisible(w)}
        return shown | {k for k, w in self.schedule_rows.items()
                        if self.schedule_form.isRowVisible(w)}

    def _show_betas(self, betas: Any) -> None:
        for box, value in zip((self.beta1, self.beta2), betas, strict=True):
            blocked = box.blockSignals(True)
            box.setValue(float(value))
            box.blockSignals(blocked)

    def _write_betas(self, *_: Any) -> None:
        self.binder.write("optim.betas", (float(self.beta1.value()), float(self.beta2.value())))

    # -- device -----------------------------------------------------------------------------
    def set_gpu(self, name: str | None) -> None:
        """What the device probe found: the GPU's name, or None when there is none."""
        index = self.device.findData("cuda")
        item = self.device.model().item(index)
        if name:
            self.device.setItemText(index, f"GPU: {name}")
            item.setEnabled(True)
        else:
            self.device.setItemText(index, "GPU (none found)")
            item.setEnabled(self.model.live.train.device.startswith("cuda"))

    # -- preview ----------------------------------------------------------------------------
    def enable_preview(self) -> None:
        self.preview_enabled = True
        self.find_lr_button.setEnabled(True)
        self.update_preview()

    def steps_per_epoch(self) -> int | None:
        """The steps per epoch the preview shows (None: not known yet)."""
        return self.preview.steps if self.preview is not None else None

    def _on_value(self, path: str, _value: Any) -> None:
        if path.split(".")[0] in ("optim", "schedule", "train", "data"):
            self.update_preview()

    def update_preview(self, *_: Any) -> None:
        """Redraw the preview for the experiment and the data in the editor now."""
        self.plot.setVisible(self.preview_enabled)
        if not self.preview_enabled:
            self.preview_note.setText(WAITING)
            return
        spec = self.model.spec()
        self.preview = preview = lr_preview(spec, self.data_shape())
        self.curve_xy = (list(preview.xs), list(preview.ys))
        self.curve.setData(*self.curve_xy)
        # every planned epoch, and the rate from zero: a constant rate is a flat line at its
        # value, not one in the middle of a band around it
        self.plot.setXRange(0, max(1, spec.train.epochs), padding=0.02)
        top = max(preview.ys, default=0.0)
        self.plot.setYRange(0, top * 1.1 if top > 0 else 1.0, padding=0)
        self.preview_note.setText(preview.note)

def _sample() -> None:
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.gui.widgets.style import apply_style
    from workbench.spec import ExperimentSpec

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    spec = ExperimentSpec()
    spec.schedule.name = "cosine"
    spec.schedule.warmup_epochs = 1.0
    spec.train.epochs = 20
    panel = OptimPanel(ExperimentModel(spec), QUndoStack())
    panel.resize(820, 620)
    panel.show()
    sys.exit(app.exec())


if __name__ == "__main__":
    _sample()
