"""The Compare panel: race optimizers (or any field's values) on the current experiment.

Left: what varies (optimizers, each with its own rate; and optionally one more field), the
target accuracy, Run/Stop, and adding past runs, saving and opening comparisons. Right:
overlaid curves (one colour per variant) against epoch, step or time; a sortable results
table; and the loss landscape around one variant's final weights, computed off the thread.
Both run as the panel's tasks, on data from the workspace's cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.store.runs import Run, RunError, RunInfo, RunStore
from workbench.core.tools.compare import (
    DEFAULT_LR,
    Comparison,
    ComparisonRunner,
    Curves,
    ResultRow,
    comparisons_dir,
    curves_for,
    default_name,
    grid,
    load_comparison,
    parse_value,
    results,
    save_comparison,
)
from workbench.core.tools.fork import branch_of
from workbench.core.training.events import EpochEnded, RunFailed, RunFinished
from workbench.core.workspace import Workspace
from workbench.gui.curves_view import MAX_SYMBOLS, LiveCurve, new_plot
from workbench.gui.layouts import FlowLayout, Placeholder, fit_table_width, vertical_scroll
from workbench.gui.style import legend_html
from workbench.gui.tasks import Tasks
from workbench.gui.widgets import SciSpinBox
from workbench.spec import OPTIMIZER_TITLES, OPTIMIZERS, ExperimentSpec, SpecError

COLORS = ("#2f6fde", "#e4572e", "#29a35a", "#9b5de5", "#f2a541", "#17becf", "#d62789",
          "#8c564b", "#7f7f7f", "#bcbd22")
REDRAW_MS = 250  # points that arrive within this go into one redraw
NO_VARIANTS = ("No comparison yet: tick optimizers (or choose a field to vary) and press Run "
               "comparison, or add past runs.")
NO_LANDSCAPE = "No landscape yet: run the comparison, then Compute."
FOLD_SETUP_BELOW = 1000  # a comparison that starts in a narrower panel folds the set-up away
LR_WIDTH = 96
# Fields a person most often varies, with values to start from (offered under Also vary).
COMMON_FIELDS: dict[str, str] = {
    "optim.name": "sgd, momentum, adam, rmsprop",
    "optim.lr": "0.1, 0.01, 0.001",
    "train.batch_size": "16, 64, 256",
    "schedule.name": "constant, step, cosine",
    "regularization.l2": "0, 0.0001, 0.001",
    "model.dropout": "0, 0.2, 0.5",
    "optim.momentum": "0.5, 0.9, 0.99",
    "optim.weight_decay": "0, 0.0001, 0.01",
    "train.epochs": "5, 10, 20",
    "train.seed": "0, 1, 2",
}
X_AXES = {"epoch": ("epoch", "epoch"), "step": ("global_step", "step"),
          "time": ("elapsed", "seconds")}
# each plot is named by its y axis (no title above it: two columns fit a narrow panel)
PLOT_UNITS = {"train_loss": "training loss (log)", "val_loss": "validation loss (log)",
              "train_accuracy": "training accuracy (0–1)",
              "val_accuracy": "validation accuracy (0–1)", "lr": "learning rate"}
PLOTS = (("train_loss", "Training loss"), ("val_loss", "Validation loss"),
         ("train_accuracy", "Training accuracy"), ("val_accuracy", "Validation accuracy"),
         ("lr", "Learning rate"))
COLUMNS = ("variant", "status", "best val acc", "final val acc", "final train loss",
           "final val loss", "epochs to target", "s to target", "s / epoch", "seconds",
           "diverged")


def color(index: int) -> str:
    return COLORS[index % len(COLORS)]


def _drawable(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.isfinite(x) & np.isfinite(y)


def _drawable_log(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """On a log axis: finite and positive."""
    return _drawable(x, y) & (y > 0)


class NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number (missing values last), shows it formatted."""

    def __init__(self, value: float | None, text: str) -> None:
        super().__init__(text)
        self.value = math.inf if value is None or math.isnan(value) else value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None or not math.isfinite(v) else format(v, fmt)


class RunPicker(QDialog):
    """Pick stored runs to add to the comparison (those `infos` names: the Runs list's)."""

    def __init__(self, runs: RunStore, parent: QWidget | None = None, *,
                 infos: list[RunInfo] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add past runs")
        self.list = QListWidget()
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        for info in runs.list() if infos is None else infos:
            if info.error:
                continue
            s = info.summary
            acc = s.get("best_val_accuracy")
            text = (f"{info.name}   {s.get('optimizer', '?')}   {s.get('status', '?')}"
                    + (f"   best val {100 * acc:.2f}%" if isinstance(acc, float) else ""))
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, str(info.path))
            self.list.addItem(item)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Runs in {runs.root}"))
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(640, 400)

    def chosen(self) -> list[str]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems()]


class ComparePanel(QWidget):
    """Compare variants of the experiment `get_spec()` returns; runs go to the workspace."""

    comparisonFinished = Signal()
    landscapeReady = Signal()
    runsRead = Signal()  # stored runs or a saved comparison asked for are shown (or refused)

    def __init__(self, get_spec: Callable[[], ExperimentSpec], workspace: Workspace,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.get_spec = get_spec
        self.workspace = workspace
        self.runs = workspace.runs
        self.comparison = Comparison("comparison")
        self.curves: list[Curves] = []
        self.tasks = Tasks(self, workspace.jobs)
        self._table_dirty = False
        self._lines: list[dict[str, LiveCurve]] = []
        self._fed: list[dict[str, int]] = []  # points of each Curves series its line was given
        self._branches: dict[str | None, tuple[str, int, int] | None] = {}  # run -> fork
        self._adding: list[str] = []  # runs asked for, being read
        self._build()
        self._timer = QTimer(self)  # single-shot: started by new data, idle otherwise
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        setup = QWidget()
        left = QVBoxLayout(setup)
        box = QGroupBox("Optimizers (each with its own rate)")
        self.optim_table = QTableWidget(len(OPTIMIZERS), 2)
        self.optim_table.setHorizontalHeaderLabels(["optimizer", "learning rate"])
        self.optim_table.verticalHeader().setVisible(False)
        self.optim_table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.optim_table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.optim_checks: dict[str, QCheckBox] = {}
        self.optim_lrs: dict[str, QDoubleSpinBox] = {}
        for row, name in enumerate(OPTIMIZERS):
            check = QCheckBox(OPTIMIZER_TITLES[name])
            check.setChecked(name in ("sgd", "momentum", "adam", "rmsprop"))
            lr = SciSpinBox.for_field("optim.lr")
            lr.setValue(DEFAULT_LR.get(name, 1e-3))
            lr.setFixedWidth(LR_WIDTH)  # a rate such as 0.001 or 1e-05, not twelve decimals
            self.optim_checks[name] = check
            self.optim_lrs[name] = lr
            self.optim_table.setCellWidget(row, 0, check)
            self.optim_table.setCellWidget(row, 1, lr)
        self.optim_table.setMinimumHeight(30 * len(OPTIMIZERS) + 30)
        fit_table_width(self.optim_table)  # every optimizer's name whole
        QVBoxLayout(box).addWidget(self.optim_table)
        left.addWidget(box)

        vary = QGroupBox("Also vary")
        form = QFormLayout(vary)
        self.field_combo = QComboBox()
        self.field_combo.setEditable(True)
        self.field_combo.addItem("(nothing)")
        self.field_combo.addItems([f for f in COMMON_FIELDS if f != "optim.name"])
        self.field_combo.currentTextChanged.connect(self._field_changed)
        self.values_edit = QLineEdit()
        self.values_edit.setPlaceholderText("values, separated by commas")
        form.addRow("field", self.field_combo)
        form.addRow("values", self.values_edit)
        self.target_spin = QDoubleSpinBox()
        self.target_spin.setRange(0.0, 1.0)
        self.target_spin.setDecimals(3)
        self.target_spin.setSingleStep(0.01)
        self.target_spin.setValue(0.9)
        self.target_spin.valueChanged.connect(self._target_changed)
        form.addRow("target accuracy", self.target_spin)
        left.addWidget(vary)

        self.run_button = QPushButton("Run comparison")
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.stop_button)
        left.addLayout(row)
        more = QWidget()
        row2 = FlowLayout(more, spacing=6, line_spacing=4)
        for text, slot in (("Add past runs…", self._pick_runs), ("Open…", self._open),
                           ("Save", self._save), ("Clear", self.clear)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row2.addWidget(button)
        left.addWidget(more)
        self.status = QLabel("Pick optimizers or a field to vary, then Run.")
        self.status.setWordWrap(True)
        left.addWidget(self.status)
        left.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_curves(), "Curves")
        self.results_table = QTableWidget(0, len(COLUMNS))
        self.results_table.setHorizontalHeaderLabels(list(COLUMNS))
        self.results_table.setSortingEnabled(True)
        self.results_table.verticalHeader().setVisible(False)
        self.results_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.results_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Interactive)  # sized to the contents, then the person's
        self.results_table.resizeColumnsToContents()  # every header whole before any row
        self.tabs.addTab(self.results_table, "Results")
        self.tabs.addTab(self._build_landscape(), "Landscape")

        # the set-up column folds away (a button in the tabs' corner) to give the plots room
        self.setup = vertical_scroll(setup)
        self.setup_button = QToolButton()
        self.setup_button.setCheckable(True)
        self.setup_button.setChecked(True)
        self.setup_button.setAutoRaise(True)
        self.setup_button.toggled.connect(self.show_setup)
        self.show_setup(True)
        self.tabs.setCornerWidget(self.setup_button, Qt.Corner.TopLeftCorner)
        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.setup)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def show_setup(self, shown: bool) -> None:
        """Show or fold away the set-up column (the plots take its room)."""
        self.setup.setVisible(shown)
        self.setup_button.setArrowType(Qt.ArrowType.LeftArrow if shown
                                       else Qt.ArrowType.RightArrow)
        self.setup_button.setToolTip("Hide the set-up column" if shown
                                     else "Show the set-up column (optimizers, Run, Save)")
        if self.setup_button.isChecked() != shown:
            self.setup_button.setChecked(shown)

    def _build_curves(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("against"))
        self.x_combo = QComboBox()
        self.x_combo.addItems(list(X_AXES))
        self.x_combo.currentTextChanged.connect(self._x_changed)
        bar.addWidget(self.x_combo)
        self.legend_label = QLabel()
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setWordWrap(True)
        bar.addWidget(self.legend_label, 1)
        layout.addLayout(bar)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.plots: dict[str, pg.PlotItem] = {}
        for i, (key, _title) in enumerate(PLOTS):
            if i in (2, 4):
                self.graphics.ci.nextRow()
            self.plots[key] = new_plot(self.graphics.ci, None, left=PLOT_UNITS[key],
                                       log_y=key.endswith("loss"))
        self.curves_placeholder = Placeholder(self.graphics, NO_VARIANTS)
        layout.addWidget(self.curves_placeholder, 1)
        return page

    def _build_landscape(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        controls = QWidget()  # wraps onto two lines when the panel is narrow
        bar = FlowLayout(controls, spacing=10, line_spacing=4)
        self.center_combo = QComboBox()
        self.center_combo.setMinimumContentsLength(10)
        bar.add_group(QLabel("around"), self.center_combo)
        self.directions_combo = QComboBox()
        self.directions_combo.addItem("random (filter-normalized)", "random")
        self.directions_combo.addItem("principal directions of the paths", "pca")
        self.directions_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.directions_combo.setMinimumContentsLength(12)
        bar.add_group(QLabel("directions"), self.directions_combo)
        self.resolution_spin = QSpinBox()
        self.resolution_spin.setRange(5, 61)
        self.resolution_spin.setValue(21)
        self.resolution_spin.setSuffix(" points")
        bar.add_group(QLabel("grid"), self.resolution_spin)
        self.land_button = QPushButton("Compute")
        self.land_button.clicked.connect(self.compute_landscape)
        bar.addWidget(self.land_button)
        layout.addWidget(controls)
        self.land_status = QLabel("The loss on a 2-D slice of weight space around a variant's "
                                  "final weights (Li et al. 2018), with every variant's path.")
        self.land_status.setWordWrap(True)
        layout.addWidget(self.land_status)
        self.land_legend = QLabel()  # the variants' colours, beside the map, not over it
        self.land_legend.setWordWrap(True)
        layout.addWidget(self.land_legend)
        self.land_plot = pg.PlotWidget(background="w")
        self.land_plot.setAspectLocked(False)
        self.land_image = pg.ImageItem(axisOrder="row-major")
        self.land_image.setColorMap(pg.colormap.get("viridis"))
        self.land_plot.addItem(self.land_image)
        self.land_plot.setLabel("bottom", "direction 1")
        self.land_plot.setLabel("left", "direction 2")
        self.land_paths: list[Any] = []
        self.land_placeholder = Placeholder(self.land_plot, NO_LANDSCAPE)
        layout.addWidget(self.land_placeholder, 1)
        return page

    # -- building and running -------------------------------------------------------------
    def _field_changed(self, text: str) -> None:
        self.values_edit.setText(COMMON_FIELDS.get(text, ""))

    def _target_changed(self, value: float) -> None:
        self.comparison.target_accuracy = value
        self._schedule(table=True)

    def _x_changed(self, _text: str) -> None:
        for lines, fed in zip(self._lines, self._fed, strict=True):  # fed again against x
            for key, line in lines.items():
                line.clear()
                fed[key] = 0
        self._schedule()
        for plot in self.plots.values():
            plot.setLabel("bottom", X_AXES[self.x_combo.currentText()][1])
            plot.enableAutoRange()

    def chosen_optimizers(self) -> dict[str, float]:
        return {name: self.optim_lrs[name].value() for name in OPTIMIZERS
                if self.optim_checks[name].isChecked()}

    def set_optimizers(self, chosen: dict[str, float]) -> None:
        """Tick these optimizers with these rates (and untick the rest)."""
        for name in OPTIMIZERS:
            self.optim_checks[name].setChecked(name in chosen)
            if name in chosen:
                self.optim_lrs[name].setValue(chosen[name])

    def set_field(self, path: str, values: str) -> None:
        self.field_combo.setCurrentText(path)
        self.values_edit.setText(values)

    def build_variants(self) -> list[Any]:
        """The variants the controls describe; SpecError naming the field when they are bad."""
        spec = self.get_spec()
        axes: dict[str, list[Any]] = {}
        overrides: dict[str, dict[str, Any]] = {}
        chosen = self.chosen_optimizers()
        if chosen:
            axes["optim.name"] = list(chosen)
            overrides = {name: {"optim.lr": lr} for name, lr in chosen.items()}
        field = self.field_combo.currentText().strip()
        if field and field != "(nothing)":
            values = [parse_value(v) for v in self.values_edit.text().split(",") if v.strip()]
            if not values:
                raise SpecError(field, "give the values to try, separated by commas")
            axes[field] = values
        if not axes:
            raise SpecError("vary", "tick at least one optimizer or choose a field to vary")
        return grid(spec, axes, overrides)

    def run(self) -> None:
        """Add the variants the controls describe and run every pending one."""
        if self.is_running():
            return
        try:
            variants = self.build_variants()
        except SpecError as exc:
            self.status.setText(f"Cannot run: {exc}")
            return
        if not self.comparison.variants:
            self.comparison = Comparison(default_name(self.get_spec()), [],
                                         self.target_spin.value())
        taken = [v.label for v in self.comparison.variants]
        for variant in variants:
            while variant.label in taken:
                variant.label += "'"
            taken.append(variant.label)
            self.comparison.variants.append(variant)
            self.curves.append(Curves())
        self._sync_lines()
        self.start_pending()

    def start_pending(self, **runner_options: Any) -> None:
        pending = self.comparison.pending()
        if not pending:
            self.status.setText("Nothing to run: every variant has its run.")
            return
        runner = ComparisonRunner(self.comparison, self.runs, source=self.workspace,
                                  **runner_options)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        if self.width() < FOLD_SETUP_BELOW:  # a narrow panel: the race gets the room
            self.show_setup(False)
        self.status.setText(f"Running {len(pending)} variants one after another...")
        self.tasks.start("compare", lambda _report, _cancel: runner.events(),
                         partial=self._on_event, stop=runner.stop,
                         failed=lambda message: self.status.setText(
                             f"The comparison stopped on an error: {message}"),
                         finished=self._on_finished)

    def stop(self) -> None:
        """Stop the variants in flight; what they did so far is kept and saved."""
        self.tasks.stop("compare")

    def is_running(self) -> bool:
        return self.tasks.is_running("compare")

    def shutdown(self) -> None:
        """Stop every background job and wait for it (closing the window, tests)."""
        self.tasks.shutdown()
        self._timer.stop()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)

    def _on_event(self, pair: Any) -> None:
        index, event = pair
        self.comparison.record(index, event)
        self.curves[index].add(event)
        self._schedule(table=isinstance(event, EpochEnded | RunFinished | RunFailed))
        if isinstance(event, RunFinished | RunFailed):
            done = sum(c.status not in ("pending", "running") for c in self.curves)
            self.status.setText(f"{done} of {len(self.curves)} variants done; "
                                f"{self.comparison.variants[index].label}: "
                                f"{self.curves[index].status}")

    def _on_finished(self) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self._table_dirty = True
        self._redraw()
        try:
            path = save_comparison(self.comparison, self.runs)
            self.status.setText(f"Done; saved as {path.name}.")
        except OSError as exc:
            self.status.setText(f"Done, but could not save: {exc}")
        self.comparisonFinished.emit()

    # -- past runs, saving and opening ---------------------------------------------------
    def add_runs(self, run_dirs: list[str]) -> None:
        """Add stored runs (a fork brings its parent), read off the GUI thread; unreadable
        ones are reported and skipped. Runs asked for while others are read join them."""
        self._adding += [d for d in run_dirs if d not in self._adding]
        wanted = list(self._adding)
        present = [v.run_dir for v in self.comparison.variants]
        self.tasks.start("add", lambda _report, _cancel: _read_runs(wanted, present),
                         done=self._runs_read, failed=self._read_failed)

    def _runs_read(self, result: tuple[list[tuple[str, ExperimentSpec, Curves]], list[str]]
                   ) -> None:
        loaded, problems = result
        self._adding = []
        if not self.comparison.variants:
            self.comparison = Comparison(default_name(self.get_spec()), [],
                                         self.target_spin.value())
        present = {v.run_dir for v in self.comparison.variants}
        for run_dir, spec, curves in loaded:
            if run_dir not in present:
                self.comparison.add_run(run_dir, spec=spec)
                self.curves.append(curves)
        self._sync_lines()
        self._schedule(table=True)
        if problems:
            self.status.setText("Skipped: " + "; ".join(problems))
        self.runsRead.emit()

    def _read_failed(self, message: str) -> None:
        self._adding = []
        self.status.setText(f"Cannot read the runs: {message}")
        self.runsRead.emit()

    def follow(self, feed: Any) -> None:
        """Take the runs "Add past runs…" offers from a `RunFeed` (the Runs list's) instead
        of listing the store."""
        self.feed = feed

    def _pick_runs(self) -> None:
        feed = getattr(self, "feed", None)
        dialog = RunPicker(self.runs, self, infos=feed.infos if feed is not None else None)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.add_runs(dialog.chosen())

    def save(self, path: Path | None = None) -> Path:
        return save_comparison(self.comparison, self.runs, path)

    def _save(self) -> None:
        if not self.comparison.variants:
            self.status.setText("Nothing to save yet.")
            return
        try:
            self.status.setText(f"Saved as {self.save()}")
        except OSError as exc:
            QMessageBox.warning(self, "Save comparison", f"Could not save: {exc}")

    def open_comparison(self, path: str | Path) -> None:
        """Show a saved comparison from its runs' stored metrics (read off the GUI thread);
        bad files change nothing."""
        if self.is_running():
            self.status.setText("Stop the running comparison first.")
            return
        self.tasks.start("add", lambda _report, _cancel: _read_comparison(path),
                         done=lambda read: self._comparison_read(path, read),
                         failed=self._open_failed, expected=(SpecError,))

    def _comparison_read(self, path: str | Path, read: tuple[Comparison, list[Curves]]) -> None:
        comparison, curves = read
        self._adding = []
        if self.is_running():  # a comparison started while the file was read
            return
        self._clear_lines()
        self.comparison = comparison
        self.curves = curves
        self.target_spin.blockSignals(True)
        self.target_spin.setValue(comparison.target_accuracy)
        self.target_spin.blockSignals(False)
        self._sync_lines()
        self._schedule(table=True)
        self.status.setText(f"Opened {Path(path).name}: {len(comparison.variants)} variants"
                            + (f", {len(comparison.pending())} not run yet"
                               if comparison.pending() else ""))
        self.runsRead.emit()

    def _open_failed(self, message: str) -> None:
        self.status.setText(f"Cannot open: {message}")
        self.runsRead.emit()

    def _open(self) -> None:
        folder = comparisons_dir(self.runs)
        path, _ = QFileDialog.getOpenFileName(self, "Open comparison", str(folder),
                                              "Comparisons (*.json)")
        if path:
            self.open_comparison(path)

    def clear(self) -> None:
        if self.is_running():
            return
        self.tasks.cancel("add")
        self._adding = []
        self._clear_lines()
        self.comparison = Comparison("comparison", [], self.target_spin.value())
        self.curves = []
        self._table_dirty = True
        self._redraw()
        self.curves_placeholder.show_content(False)

    # -- drawing --------------------------------------------------------------------------
    def _clear_lines(self) -> None:
        for lines in self._lines:
            for line in lines.values():
                line.remove()
        self._lines = []
        self._fed = []

    def _sync_lines(self) -> None:
        """Create the curves of variants added since the last call (created once, then fed)."""
        for index in range(len(self._lines), len(self.comparison.variants)):
            pen = pg.mkPen(color(index), width=2)
            lines: dict[str, LiveCurve] = {}
            for key, _title in PLOTS:
                keep = _drawable_log if key.endswith("loss") else _drawable
                marks = {"symbol": "o", "symbolSize": 5, "symbolBrush": color(index),
                         "symbolPen": None} if key.startswith("val") else {}
                lines[key] = LiveCurve(self.plots[key], keep=keep, pen=pen, z=index, **marks)
            self._lines.append(lines)
            self._fed.append(dict.fromkeys(lines, 0))
        self.center_combo.clear()
        self.center_combo.addItems([v.label for v in self.comparison.variants])
        self.curves_placeholder.show_content(bool(self.comparison.variants))
        legend = legend_html([(color(i), v.label, False)
                              for i, v in enumerate(self.comparison.variants)])
        self.legend_label.setText(legend)
        self.land_legend.setText(legend)

    def _schedule(self, *, table: bool = False) -> None:
        """Redraw soon: the curves' new points (and the table, with `table`)."""
        self._table_dirty = self._table_dirty or table
        if not self._timer.isActive():
            self._timer.start()

    def branch_starts(self) -> dict[int, int]:
        """Variant index -> the global step its curves start at: a fork whose parent is in
        the comparison is drawn as a branch off the parent's curves, from the fork on."""
        present = {v.run_dir for v in self.comparison.variants if v.run_dir}
        out = {}
        for index, variant in enumerate(self.comparison.variants):
            if variant.run_dir not in self._branches:
                try:
                    summary = Run(Path(variant.run_dir)).summary() if variant.run_dir else {}
                except RunError:
                    summary = {}
                self._branches[variant.run_dir] = branch_of(summary)
            branch = self._branches[variant.run_dir]
            if branch is not None and branch[0] in present:
                out[index] = branch[2]
        return out

    def _feed(self) -> None:
        """Give each line the points its variant gained since it was last fed."""
        xkey = X_AXES[self.x_combo.currentText()][0]
        starts = self.branch_starts()
        for index, (curves, lines, fed) in enumerate(
                zip(self.curves, self._lines, self._fed, strict=False)):
            first_step = starts.get(index)
            for key, line in lines.items():
                series = curves.epochs if key.startswith("val") else curves.steps
                ys = series[key]
                start = fed[key]
                if len(ys) > start:
                    xs, new = series[xkey][start:len(ys)], ys[start:]
                    if first_step is not None:  # a fork: drawn from where it branches off
                        steps = series["global_step"][start:len(ys)]
                        keep = [i for i, s in enumerate(steps) if s >= first_step]
                        xs, new = [xs[i] for i in keep], [new[i] for i in keep]
                    line.extend(xs, new)
                    fed[key] = len(ys)

    def _redraw(self) -> None:
        self._timer.stop()
        self._feed()
        for lines in self._lines:
            for key, line in lines.items():
                if key.startswith("val") and line.dirty:
                    line.set_symbol("o" if line.n <= MAX_SYMBOLS else None)
                line.draw()
        if self._table_dirty:
            self._table_dirty = False
            self._fill_table(results(self.comparison, self.curves))

    def rows(self) -> list[ResultRow]:
        return results(self.comparison, self.curves)

    def _fill_table(self, rows: list[ResultRow]) -> None:
        table = self.results_table
        table.setSortingEnabled(False)
        fresh = table.rowCount() != len(rows)
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            name = QTableWidgetItem(row.label)
            name.setForeground(pg.mkColor(color(r)))
            cells: list[QTableWidgetItem] = [
                name, QTableWidgetItem(row.status),
                NumberItem(row.best_val_accuracy, _pct(row.best_val_accuracy)),
                NumberItem(row.final_val_accuracy, _pct(row.final_val_accuracy)),
                NumberItem(row.final_train_loss, _num(row.final_train_loss, ".4f")),
                NumberItem(row.final_val_loss, _num(row.final_val_loss, ".4f")),
                NumberItem(row.epochs_to_target,
                           "-" if row.epochs_to_target is None else str(row.epochs_to_target)),
                NumberItem(row.seconds_to_target, _num(row.seconds_to_target, ".1f")),
                NumberItem(row.seconds_per_epoch, _num(row.seconds_per_epoch, ".2f")),
                NumberItem(row.seconds, _num(row.seconds, ".1f")),
                QTableWidgetItem("yes" if row.diverged else "no"),
            ]
            for c, cell in enumerate(cells):
                table.setItem(r, c, cell)
        table.setSortingEnabled(True)
        target = f"{100 * self.comparison.target_accuracy:g}%"
        header = table.horizontalHeaderItem(6)
        if header is None or header.text() != f"epochs to {target}":
            fresh = True
            table.setHorizontalHeaderItem(6, QTableWidgetItem(f"epochs to {target}"))
            table.setHorizontalHeaderItem(7, QTableWidgetItem(f"s to {target}"))
        if fresh:  # new variants or target: fit the columns once, then leave them to the person
            table.resizeColumnsToContents()

    # -- landscape ------------------------------------------------------------------------
    def compute_landscape(self) -> None:
        """Compute the slice around the chosen variant's final weights, off the GUI thread."""
        if self.tasks.is_running("landscape"):
            return
        index = self.center_combo.currentIndex()
        variants = self.comparison.variants
        if index < 0 or not variants[index].run_dir:
            self.land_status.setText("Run the comparison first: the slice is centred on a "
                                     "variant's final weights.")
            return
        center = variants[index]
        runs = {v.label: v.run_dir for v in variants
                if v.run_dir and v.spec.model.layers == center.spec.model.layers}
        directions = self.directions_combo.currentData()
        resolution = self.resolution_spin.value()
        workspace = self.workspace

        def work(emit: Callable[[object], None], cancel: Any) -> Any:
            from workbench.core.tools.landscape import landscape_for_runs

            spec = center.spec
            data = workspace.splits(spec.data, spec.train.seed, cancel=cancel)
            return landscape_for_runs(spec, data, center.run_dir, runs,
                                      center_label=center.label, directions=directions,
                                      resolution=resolution,
                                      progress=lambda done, total: emit((done, total)),
                                      cancel=cancel)

        self.land_button.setEnabled(False)
        self.land_status.setText("Computing the loss on the slice...")
        self.tasks.start("landscape", work, partial=self._on_landscape_progress,
                         done=self.show_landscape,
                         failed=lambda message: self.land_status.setText(
                             f"Could not compute the landscape: {message}"),
                         finished=lambda: self.land_button.setEnabled(True))

    def _on_landscape_progress(self, rows: tuple[int, int]) -> None:
        self.land_status.setText(f"Computing the loss on the slice: row {rows[0]} of {rows[1]}")

    def show_landscape(self, land: Any) -> None:
        for path in self.land_paths:
            self.land_plot.removeItem(path)
        self.land_paths = []
        a, b = land.alphas, land.betas
        self.land_image.setImage(np.log10(np.maximum(land.losses, 1e-8)))
        da, db = a[1] - a[0], b[1] - b[0]
        self.land_image.setRect(QRectF(a[0] - da / 2, b[0] - db / 2, a[-1] - a[0] + da,
                                       b[-1] - b[0] + db))
        labels = [v.label for v in self.comparison.variants]
        for label, coords in land.paths.items():
            i = labels.index(label) if label in labels else len(self.land_paths)
            item = self.land_plot.plot(coords[:, 0], coords[:, 1],
                                       pen=pg.mkPen(color(i), width=2.5), symbol="o",
                                       symbolSize=6, symbolBrush=color(i), symbolPen="w",
                                       name=label)
            self.land_paths.append(item)
        self.land_placeholder.show_content(True)
        self.land_plot.autoRange()
        kind = "random filter-normalized" if land.directions == "random" else "principal"
        self.land_status.setText(
            f"log10 loss around the final weights of {land.center_label} ({kind} directions); "
            f"loss there {land.center_loss:.4f}. Dots: weights after each epoch.")
        self.landscapeReady.emit()


def _with_parents(run_dirs: list[str], present: list[str | None]) -> list[str]:
    """The runs to add, each fork preceded by its parent (when it is not there yet), so the
    fork is drawn as a branch of its parent's curves."""
    out: list[str] = []
    for run_dir in run_dirs:
        try:
            branch = branch_of(Run(Path(run_dir)).summary())
        except RunError:
            branch = None
        parent = branch[0] if branch is not None else None
        if parent and parent not in present and parent not in out and Path(parent).is_dir():
            out.append(parent)
        if run_dir not in out:
            out.append(run_dir)
    return out


def _sample_spec() -> ExperimentSpec:
    from workbench import spec as specmod
    from workbench.paths import resources_dir

    spec = specmod.load(resources_dir() / "examples" / "spirals_playground.json")
    return spec.with_value("train.epochs", 15)


if __name__ == "__main__":
    import sys
    import tempfile

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    panel = ComparePanel(_sample_spec, Workspace(tempfile.mkdtemp(prefix="wb-compare-")))
    panel.resize(1400, 820)
    panel.show()
    panel.run()
    code = app.exec()
    panel.shutdown()
    sys.exit(code)


def _read_runs(run_dirs: list[str], present: list[str | None]
               ) -> tuple[list[tuple[str, ExperimentSpec, Curves]], list[str]]:
    """Each run's spec and stored curves (a fork's parent first), and what could not be read:
    on a worker, since a long run's metrics are megabytes."""
    loaded, problems = [], []
    for run_dir in _with_parents(run_dirs, present):
        try:
            loaded.append((run_dir, Run(Path(run_dir)).spec(), Curves.from_run(run_dir)))
        except RunError as exc:
            problems.append(str(exc))
    return loaded, problems


def _read_comparison(path: str | Path) -> tuple[Comparison, list[Curves]]:
    comparison = load_comparison(path)
    return comparison, curves_for(comparison)
