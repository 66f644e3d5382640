"""The Prune panel: a sparsity slider on a trained run, its accuracy at once, and a new run.

Moving a slider re-evaluates the pruned copy on the validation set at once, on a background
thread: changes made in one turn of the event loop (several sliders at once) are evaluated
once, and the moves that come while an evaluation runs are evaluated as one, at their latest
position, when it ends; so a drag shows results as it goes, the last within two evaluations
of letting go, and a single move is answered within one (benchmarks/prune_slider.py). The
run's data comes from the workspace's cache. A
sensitivity sweep fills a plot layer by layer; "Create pruned run", always in view below the
settings, makes the pruning permanent (fine-tuning first when asked) and reports size and CPU
latency before and after.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.tools.prune import (
    PruneConfig,
    PruneError,
    PruneResult,
    PruneSession,
)
from workbench.core.training.events import EpochEnded
from workbench.core.workspace import Workspace
from workbench.gui.threads.run_feed import RunCombo, RunFeed
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.prune.presenter import (
    COLUMNS,
    STAT_COLUMNS,
    applied_text,
    keeps_units,
    layer_cells,
    pct,
    prune_config,
    result_text,
    run_text,
)
from workbench.gui.tools.prune.sensitivity import SensitivityBox
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.widgets.layouts import FlowLayout, scroll_above
from workbench.gui.widgets.style import ALERT, CAUTION

SLIDER_WIDTH = 140
NO_RUN = "Pick a trained run above, or select one in the Runs list and choose Prune."


class PrunePanel(Tool, QWidget):
    """Prune a run of the workspace; `set_run(run_dir)` or the run picker picks it (the picker
    follows `feed`, the Runs list's, when given). Emits `runCreated(run_dir)`."""

    runCreated = Signal(str)
    evaluated = Signal(object)  # PruneResult, after the readout shows it
    sensitivityDone = Signal()
    sessionReady = Signal()

    def __init__(self, workspace: Workspace, parent: QWidget | None = None, *,
                 feed: RunFeed | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.session: PruneSession | None = None
        self.result: PruneResult | None = None
        self.tasks = Tasks(self, workspace.jobs)
        self._layer_sliders: dict[int, QSlider] = {}
        self._coalesce = QTimer(self, singleShot=True, interval=0)  # the next loop turn
        self._coalesce.timeout.connect(self._evaluate_now)
        self._eval_pending = False  # a move came while an evaluation ran
        self._chosen: str | None = None  # the run loaded or loading
        self._build()
        self._set_enabled(False)
        if feed is not None:
            self.picker.follow(feed)
        else:
            self.picker.refresh()

    # -- the tool protocol -----------------------------------------------------------------
    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **_: Any) -> PrunePanel:
        panel = cls(host.workspace, host.parent_widget(), feed=host.run_feed())
        if run_dir is not None:
            panel.set_run(run_dir)
        return panel

    def show_run(self, run_dir: str, **_: Any) -> None:
        self.set_run(run_dir)

    def working_on(self) -> str | None:
        return self.run_dir()

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        root = QVBoxLayout(content)
        pick_row = QHBoxLayout()
        self.picker = RunCombo(self.workspace.runs, jobs=self.workspace.jobs)
        self.picker.runChosen.connect(self.set_run)
        self.picker.offered.connect(self._offered)
        pick_row.addWidget(QLabel("Run"))
        pick_row.addWidget(self.picker, 1)
        root.addLayout(pick_row)
        self.run_label = QLabel(NO_RUN)
        self.run_label.setWordWrap(True)
        root.addWidget(self.run_label)

        controls_box = QWidget()  # wraps onto more lines when the panel is narrow
        controls = FlowLayout(controls_box, spacing=12, line_spacing=4)
        self.scope = QComboBox()
        self.scope.addItems(["Global", "Per layer"])
        self.kind = QComboBox()
        self.kind.addItems(["Unstructured (weights)", "Structured (neurons/channels)"])
        self.norm = QComboBox()
        self.norm.addItems(["L1", "L2"])
        self.norm.setToolTip("how whole units are ranked in structured pruning")
        for label, widget in (("Scope", self.scope), ("Kind", self.kind), ("Rank by", self.norm)):
            controls.add_group(QLabel(label), widget)
        root.addWidget(controls_box)

        slider_row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 99)
        self.slider.setTickInterval(10)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.amount_label = QLabel("0%")
        self.amount_label.setMinimumWidth(48)
        slider_row.addWidget(QLabel("Amount"))
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.amount_label)
        root.addLayout(slider_row)

        self.readout = QLabel("—")
        self.readout.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.readout.setWordWrap(True)
        root.addWidget(self.readout)
        self.notes = QLabel("")
        self.notes.setStyleSheet(f"color: {CAUTION};")
        self.notes.setWordWrap(True)
        root.addWidget(self.notes)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)  # a person can resize
        header.setStretchLastSection(True)
        self.table.setMinimumHeight(3 * self.table.verticalHeader().defaultSectionSize()
                                    + header.sizeHint().height() + 4)

        sens = SensitivityBox()
        self.sensitivity = sens
        self.sweep_button = sens.sweep_button
        controls.addWidget(self.sweep_button)  # with the controls: never below the fold
        # the table and the sweep share the height; the person moves the line between them
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.table)
        self.split.addWidget(sens)
        self.split.setStretchFactor(1, 1)
        root.addWidget(self.split, 1)

        apply_box = QGroupBox("Make it permanent: a new run linked to this one")
        apply_layout = QVBoxLayout(apply_box)
        row_box = QWidget()
        row = FlowLayout(row_box, spacing=6, line_spacing=4)
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 100)
        self.epochs.setValue(1)
        self.epochs.setSuffix(" epochs")
        self.apply_button = QPushButton("Create pruned run")
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setEnabled(False)
        row.add_group(QLabel("Fine-tune with the mask fixed for"), self.epochs)
        row.addWidget(self.apply_button)
        row.addWidget(self.cancel_button)
        apply_layout.addWidget(row_box)
        self.apply_status = QLabel("")
        self.apply_status.setWordWrap(True)
        self.apply_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        apply_layout.addWidget(self.apply_status)
        # the settings scroll on a short screen rather than outgrow it; what makes the run
        # stays below them, always in view
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll_above(content, apply_box))

        self.slider.valueChanged.connect(self._on_amount)
        self.scope.currentIndexChanged.connect(self._on_mode)
        self.kind.currentIndexChanged.connect(self._on_mode)
        self.norm.currentIndexChanged.connect(lambda _: self._schedule())
        self.sweep_button.clicked.connect(self.start_sensitivity)
        self.apply_button.clicked.connect(self.create_run)
        self.cancel_button.clicked.connect(self._cancel_apply)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.slider, self.scope, self.kind, self.norm, self.sweep_button,
                  self.apply_button, self.table):
            w.setEnabled(on)

    # -- the run --------------------------------------------------------------------------
    def set_run(self, run_dir: str) -> None:
        """Load a trained run (off the GUI thread) and show it unpruned."""
        self._stop_work()
        self.picker.set_run(run_dir)
        self._chosen = str(run_dir)
        self.session = None
        self.result = None
        self._set_enabled(False)
        self.run_label.setText(f"Loading {Path(run_dir).name}…")
        self.readout.setText("—")
        self.notes.setText("")
        self.apply_status.setText("")
        self.sensitivity.clear()
        workspace = self.workspace
        self.tasks.start("load", lambda _report, cancel: PruneSession(
            run_dir, source=workspace, cancel=cancel), done=self._on_session,
            failed=self._on_load_failed, expected=(PruneError,))

    def _offered(self) -> None:
        """Opened before any run could be pruned: the first that can, once one is listed."""
        if self._chosen is None and self.picker.run_dir() is not None:
            self.set_run(self.picker.run_dir())

    def _on_session(self, session: PruneSession) -> None:
        self.session = session
        self.run_label.setText(run_text(session))
        self._fill_table()
        self._set_enabled(True)
        self._on_mode()
        self.sessionReady.emit()

    def _on_load_failed(self, message: str) -> None:
        self.run_label.setText(f"<span style='color:{ALERT}'>Cannot prune this run: "
                               f"{message}</span>")

    def _fill_table(self) -> None:
        assert self.session is not None
        self.table.setRowCount(len(self.session.layers))
        self._layer_sliders.clear()
        for row, lay in enumerate(self.session.layers):
            self.table.setItem(row, 0, QTableWidgetItem(lay.label))
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 99)
            slider.valueChanged.connect(self._on_layer_amount)
            self.table.setCellWidget(row, 2, slider)
            self._layer_sliders[lay.index] = slider
            for col in STAT_COLUMNS:
                item = QTableWidgetItem("")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(2, SLIDER_WIDTH)
        rows = (self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
                + sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
                + self.table.horizontalScrollBar().sizeHint().height())
        self.split.setSizes([rows, max(1, self.split.height() - rows)])  # every row, no gap

    # -- the slider -----------------------------------------------------------------------
    def config(self) -> PruneConfig:
        """The pruning the controls describe now."""
        return prune_config(self.session, self.slider.value(),
                            per_layer=self.scope.currentIndex() == 1,
                            structured=self.kind.currentIndex() == 1,
                            l2=self.norm.currentIndex() == 1,
                            layer_percents={i: s.value() for i, s in self._layer_sliders.items()})

    def set_amount(self, percent: int) -> None:
        """Move the global slider (or, per layer, every layer's slider) to `percent`."""
        if self.scope.currentIndex() == 1:
            for slider in self._layer_sliders.values():
                if slider.isEnabled():
                    slider.setValue(percent)
        self.slider.setValue(percent)

    def _on_amount(self, value: int) -> None:
        self.amount_label.setText(f"{value}%")
        structured = self.kind.currentIndex() == 1
        for lay in self.session.layers if self.session is not None else ():
            if not keeps_units(lay, structured):
                slider = self._layer_sliders[lay.index]
                slider.blockSignals(True)
                slider.setValue(value)
                slider.blockSignals(False)
        self._schedule()

    def _on_layer_amount(self, _: int) -> None:
        self._schedule()

    def _on_mode(self, _: int = 0) -> None:
        per_layer = self.scope.currentIndex() == 1
        structured = self.kind.currentIndex() == 1
        self.norm.setEnabled(structured and self.session is not None)
        if self.session is not None:
            for lay in self.session.layers:
                slider = self._layer_sliders[lay.index]
                kept = keeps_units(lay, structured)
                slider.setEnabled(per_layer and not kept)
                slider.setToolTip("the output layer keeps its units (they are the classes)"
                                  if kept else "")
                slider.blockSignals(True)
                slider.setValue(0 if kept else self.slider.value())
                slider.blockSignals(False)
        self._schedule()

    def _schedule(self) -> None:
        if self.session is not None:
            self._coalesce.start()

    def _evaluate_now(self) -> None:
        """Evaluate the latest position; while one runs, the latest move waits for it to end
        (not cancelling it), so a drag shows a result after each evaluation."""
        if self.session is None:
            return
        if self.tasks.is_running("evaluate"):
            self._eval_pending = True
            return
        session = self.session
        config = self.config()
        self.tasks.start("evaluate", lambda _report, _cancel: session.evaluate(config),
                         done=self._show_result, failed=self.notes.setText,
                         finished=self._after_eval, expected=(PruneError,))

    def _after_eval(self) -> None:
        if self._eval_pending:
            self._eval_pending = False
            self._evaluate_now()

    def _show_result(self, result: PruneResult) -> None:
        assert self.session is not None
        self.result = result
        self.readout.setText(result_text(result, self.session.baseline))
        self.notes.setText("\n".join(result.notes))
        for row, stats in enumerate(result.layers):
            for col, text in zip(STAT_COLUMNS, layer_cells(stats), strict=True):
                self.table.item(row, col).setText(text)
        self.evaluated.emit(result)

    # -- sensitivity ----------------------------------------------------------------------
    def start_sensitivity(self) -> None:
        if self.session is None or self.tasks.is_running("sweep"):
            return
        session = self.session
        config = self.config()
        self.sensitivity.start(session.structured_layers if config.structured
                               else session.layers)

        def task(report: Any, cancel: Any) -> int:
            count = 0
            for point in session.sensitivity(structured=config.structured, norm=config.norm,
                                             cancel=cancel):
                report(point)
                count += 1
            return count

        self.sweep_button.setEnabled(False)
        self.tasks.start("sweep", task, partial=self.sensitivity.add_point,
                         done=self.sensitivity.done,
                         failed=lambda msg: self.sensitivity.status.setText(f"failed: {msg}"),
                         finished=self._after_sweep, expected=(PruneError,),
                         title=f"Pruning sensitivity of {session.run.path.name}")

    def _after_sweep(self) -> None:
        self.sweep_button.setEnabled(self.session is not None)
        self.sensitivityDone.emit()

    # -- apply ----------------------------------------------------------------------------
    def create_run(self) -> None:
        """Prune as shown, fine-tune if asked, and store the result as a new run."""
        if self.session is None or self.tasks.is_running("apply"):
            return
        from workbench.core.tools.prune_apply import create_pruned_run

        session, config, epochs, runs = self.session, self.config(), self.epochs.value(), \
            self.workspace.runs

        def task(report: Any, cancel: Any) -> Any:
            return create_pruned_run(session, config, runs=runs, finetune_epochs=epochs,
                                     on_event=report, cancel=cancel)

        self.apply_button.setEnabled(False)
        self.picker.setEnabled(False)  # the run stays until its pruned run is made
        self.cancel_button.setEnabled(epochs > 0)
        self._epoch_lines: list[str] = []
        self.apply_status.setText("Pruning" + (f" and fine-tuning for {epochs} epochs…"
                                               if epochs else "…"))
        self.tasks.start("apply", task, partial=self._on_apply_event, done=self._on_applied,
                         failed=lambda msg: self.apply_status.setText(
                             f"<span style='color:{ALERT}'>Failed: {msg}</span>"),
                         finished=self._after_apply, expected=(PruneError,),
                         title=f"Making a pruned run of {session.run.path.name}")

    def _on_apply_event(self, event: Any) -> None:
        if isinstance(event, EpochEnded):
            self._epoch_lines.append(f"epoch {event.epoch}: val accuracy "
                                     f"{pct(event.val_accuracy)}")
            self.apply_status.setText("Fine-tuning… " + "; ".join(self._epoch_lines))

    def _on_applied(self, pruned: Any) -> None:
        self.apply_status.setText(applied_text(pruned.run_dir, pruned.summary))
        self.runCreated.emit(pruned.run_dir)

    def _after_apply(self) -> None:
        self.apply_button.setEnabled(self.session is not None)
        self.picker.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _cancel_apply(self) -> None:
        """Stop the fine-tuning early; the new run is still stored and shown (as stopped)."""
        self.tasks.stop("apply")

    # -- closing --------------------------------------------------------------------------
    def busy(self) -> bool:
        return self.tasks.threads() > 0

    def run_dir(self) -> str | None:
        """The run being pruned (or loading)."""
        return self.picker.run_dir()

    def _stop_work(self) -> None:
        """Stop the tasks on the current run and wait for their threads (a new run)."""
        self._coalesce.stop()
        self._eval_pending = False
        self.tasks.shutdown()

    def shutdown(self) -> None:
        """Stop every background task and wait for its thread (closing)."""
        self._stop_work()
        self.picker.shutdown()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)


if __name__ == "__main__":
    import tempfile

    from PySide6.QtWidgets import QApplication

    from workbench.gui.demo import sample_run
    from workbench.gui.widgets.style import apply_style

    app = QApplication(sys.argv)
    apply_style(app)
    if len(sys.argv) > 1:
        workspace = Workspace(Path(sys.argv[1]).parent)
        chosen = sys.argv[1]
    else:
        workspace = Workspace(tempfile.mkdtemp(prefix="workbench-prune-"))
        chosen = sample_run(workspace.runs)
    panel = PrunePanel(workspace)
    panel.resize(900, 900)
    panel.set_run(chosen)
    panel.show()
    sys.exit(app.exec())
