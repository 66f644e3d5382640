"""The training panel: Train / Pause / Resume / Stop, progress, live curves, health, decision
boundary and results, fed by one `TrainRunner` at a time.

The panel never waits for training: every event arrives by a queued signal. A failed run shows
its reason and hint in a banner and leaves the panel ready for the next run. The main window
asks `is_running()` and calls `stop_and_wait()` before it closes. A finished run's trainer
(its data, model, optimizer and CUDA graph) is let go of once its thread has ended; the next
run of the same data gets it from the workspace's cache.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import Splits
from workbench.core.store.metrics import read_series
from workbench.core.store.runs import Run, RunError
from workbench.core.tools.fork import ForkPlan, series_until
from workbench.core.training.events import (
    Boundary,
    EpochEnded,
    Health,
    Progress,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.training.monitors import app_monitors
from workbench.core.training.outcome import OutcomeWarning, stored_warnings
from workbench.core.workspace import Workspace
from workbench.gui.threads.worker import TrainRunner
from workbench.gui.train.banners import FailureBanner, NoticeBanner
from workbench.gui.train.presenter import format_seconds, read_stored
from workbench.gui.views.boundary import BoundaryView
from workbench.gui.views.curves import CurvesView
from workbench.gui.views.health import HealthView
from workbench.gui.views.results import ResultsView
from workbench.gui.widgets.style import CAUTION
from workbench.logs import current_log
from workbench.spec import ExperimentSpec, SpecError

HEALTH_TAB = "Health"
BUG_HINT = "this is a bug in Workbench; the details are in the log"


class TrainPanel(QWidget):
    """Trains the experiment `get_spec()` returns, into the workspace's run store, and shows it
    as it learns."""

    runStarted = Signal(object)  # RunStarted
    runEnded = Signal(object)  # RunFinished or RunFailed, once the training thread has ended
    inspectRequested = Signal(str, int)  # the run shown, a test sample (-1: none), from Results

    def __init__(self, get_spec: Callable[[], ExperimentSpec], workspace: Workspace,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.get_spec = get_spec
        self.workspace = workspace
        self.runner: TrainRunner | None = None
        self.started: RunStarted | None = None
        self.last_end: RunFinished | RunFailed | None = None
        self.data: Splits | None = None  # the running run's data, let go of when it ends
        self.shown_run: str | None = None  # the run the views show (training or stored)
        self._blocked: str | None = None
        self._stopping = False

        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("primary")  # the one action that starts things
        self.train_button.setDefault(True)
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.train_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.status = QLabel("Ready")
        self.blocked_label = QLabel()
        self.blocked_label.setStyleSheet(f"color: {CAUTION};")
        self.blocked_label.setWordWrap(True)
        self.blocked_label.hide()
        buttons = QHBoxLayout()
        for b in (self.train_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(b)
        buttons.addWidget(self.status, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Not started")
        self.banner = FailureBanner()
        self.notice = NoticeBanner()

        self.curves = CurvesView()
        self.health = HealthView()
        self.boundary = BoundaryView()
        self.results = ResultsView()
        self.results.inspectRequested.connect(self._inspect)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.health, HEALTH_TAB)
        self.tabs.addTab(self.boundary, "Decision boundary")
        self.tabs.addTab(self.results, "Results")

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.blocked_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.banner)
        layout.addWidget(self.notice)
        layout.addWidget(self.tabs, 1)
        self._update_buttons()

    # -- what the main window calls -------------------------------------------------------
    def set_blocked(self, reason: str | None) -> None:
        """Disable Train with a reason shown beside it (None: allowed again)."""
        self._blocked = reason or None
        self.blocked_label.setText(f"Cannot train: {reason}" if reason else "")
        self.blocked_label.setVisible(bool(reason))
        self._update_buttons()

    def is_running(self) -> bool:
        return self.runner is not None and self.runner.is_running()

    def stop_and_wait(self) -> None:
        """Stop the run and block until its thread has ended, its last events delivered."""
        runner = self.runner
        if runner is None:
            return
        self._stopping = True
        runner.stop_and_wait()
        QCoreApplication.sendPostedEvents(runner, 0)  # the queued end of the run, now

    def show_run(self, run_dir: str) -> bool:
        """Show a stored run's curves and figures; False (and a message) if it cannot be read."""
        if self.is_running():
            self.status.setText("Stop the current run to look at another one")
            return False
        try:
            stored = read_stored(run_dir)
        except (RunError, OSError) as exc:
            self.status.setText(f"Cannot show that run: {exc}")
            return False
        self.banner.hide()
        self._clear_notices()
        self.health.clear()
        self.boundary.clear()
        self.curves.load_metrics(stored.series)
        if stored.parent_series is not None and stored.branch is not None:
            self.curves.show_branch(stored.parent_series, stored.branch[1])
        self.results.show_summary(stored.summary)
        self._show_outcome(stored_warnings(stored.summary))
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(stored.progress_text())
        self.status.setText(f"Showing {Path(run_dir).name}")
        self.shown_run = str(run_dir)
        return True

    def _inspect(self, sample: int) -> None:
        if self.shown_run is not None:
            self.inspectRequested.emit(self.shown_run, sample)

    # -- buttons ------------------------------------------------------------------------
    def start(self) -> bool:
        """Start a run of the current spec; False (with a banner) if it cannot start."""
        if self.is_running() or self._blocked:
            return False
        try:
            spec = self.get_spec()
        except (SpecError, ValueError) as exc:
            self.banner.show_failure(str(exc), "fix the experiment and try again")
            return False
        self._begin(TrainRunner.for_spec(spec, self.workspace, callbacks=app_monitors(),
                                         parent=self))
        return True

    def start_fork(self, plan: ForkPlan) -> bool:
        """Train a fork of a stored run (a checked `ForkPlan`), drawn as a branch of its
        parent's curves; False (with a banner) if it cannot start."""
        if self.is_running():
            return False
        from workbench.core.tools.fork import fork_trainer

        try:
            parent = read_series(Run(plan.parent))  # the core's reader, as the fork's own
        except (RunError, OSError) as exc:
            self.banner.show_failure(f"cannot read the parent's metrics: {exc}",
                                     "check the parent run's folder")
            return False
        trainer = fork_trainer(plan, runs=self.workspace.runs, source=self.workspace,
                               callbacks=app_monitors())
        self._begin(TrainRunner(trainer, jobs=self.workspace.jobs, parent=self))
        self.curves.load_metrics(series_until(parent, plan.fork_step(parent)))
        self.curves.show_branch(parent, plan.epoch)
        return True

    def resume_stored(self, run_dir: str) -> bool:
        """Continue a stopped or interrupted run from its checkpoint, exactly; False (with a
        banner) when it cannot start (the run has no checkpoint, or is in use)."""
        if self.is_running():
            return False
        from workbench.core.training.loop import Trainer

        if not (Path(run_dir) / "checkpoint.pt").is_file():
            self.banner.show_failure(f"{Path(run_dir).name} has no checkpoint to resume from",
                                     "train it again")
            return False
        try:
            trainer = Trainer(resume=run_dir, runs=self.workspace.runs, source=self.workspace,
                              callbacks=app_monitors())
        except RunError as exc:
            self.banner.show_failure(str(exc), "the run folder may be damaged")
            return False
        self._begin(TrainRunner(trainer, jobs=self.workspace.jobs, parent=self))
        return True

    def _begin(self, runner: TrainRunner) -> None:
        """Show a fresh panel and start `runner`."""
        self.banner.hide()
        self._clear_notices()
        self.curves.clear()
        self.health.clear()
        self.boundary.clear()
        self.results.clear()
        self.started = None
        self.last_end = None
        self._stopping = False
        if self.runner is not None:
            self.runner.deleteLater()  # long ended, its trainer already let go of
        self.runner = runner
        self.runner.trainEvent.connect(self._on_event)
        self.runner.errored.connect(self._on_error)
        self.runner.finished.connect(self._on_finished)
        self.progress.setRange(0, 0)  # busy until the data is loaded
        self.progress.setFormat("Loading data\u2026")
        self.status.setText("Starting\u2026")
        self.runner.start()
        self._update_buttons()

    def pause(self) -> None:
        if self.is_running():
            self.runner.pause()
            self.status.setText("Paused")
            self._update_buttons()

    def resume(self) -> None:
        if self.is_running():
            self.runner.resume()
            self.status.setText("Training")
            self._update_buttons()

    def stop(self) -> None:
        if self.is_running():
            self._stopping = True
            self.runner.stop()
            self.status.setText("Stopping after this step\u2026")
            self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.is_running()
        paused = running and self.runner.paused
        self.train_button.setEnabled(not running and not self._blocked)
        self.train_button.setToolTip(self._blocked or "Train the experiment")
        self.pause_button.setEnabled(running and not paused and not self._stopping)
        self.resume_button.setEnabled(paused and not self._stopping)
        self.stop_button.setEnabled(running and not self._stopping)

    # -- events, on the GUI thread ------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, Progress):
            self.curves.add_progress(event)
            self._show_progress(event)
        elif isinstance(event, EpochEnded):
            self.curves.add_epoch(event)
        elif isinstance(event, Health):
            self.health.add_health(event)
            if event.warning:
                self._show_health_warning(event.warning)
        elif isinstance(event, Boundary):
            if self.boundary.latest is None and self.data is not None:
                self.boundary.set_points(self.data.train_x.numpy(), self.data.train_y.numpy(),
                                         self.data.info.class_names)
            self.boundary.set_boundary(event)
        elif isinstance(event, RunStarted):
            self._on_started(event)
        elif isinstance(event, RunFinished | RunFailed):
            self._on_end(event)

    def _on_started(self, event: RunStarted) -> None:
        self.started = event
        self.shown_run = event.run_dir
        assert self.runner is not None and self.runner.trainer is not None
        self.data = self.runner.trainer.data  # set before RunStarted; never changed after
        is_2d = tuple(event.input_shape) == (2,) and event.task == "classification"
        self.tabs.setTabEnabled(self.tabs.indexOf(self.boundary), is_2d)
        total = event.epochs * event.steps_per_epoch
        self.curves.set_run_length(event.epochs)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(event.start_epoch * event.steps_per_epoch)
        self.progress.setFormat(f"Epoch {event.start_epoch + 1}/{event.epochs}")
        if not self.runner.paused and not self._stopping:
            self.status.setText(f"Training on {event.device_name} \u00b7 "
                                f"{event.num_params:,} parameters")
        self.runStarted.emit(event)

    def _show_progress(self, p: Progress) -> None:
        self.progress.setRange(0, max(1, p.total_steps))
        self.progress.setValue(p.global_step)
        self.progress.setFormat(
            f"Epoch {p.epoch + 1}/{max(1, p.total_steps // max(1, p.steps_per_epoch))}"
            f" \u00b7 step {p.step}/{p.steps_per_epoch} \u00b7 "
            f"{format_seconds(p.eta)} left \u00b7 {p.samples_per_sec:,.0f} samples/s")

    def _on_end(self, event: RunFinished | RunFailed) -> None:
        self.last_end = event
        self.curves.redraw()
        if isinstance(event, RunFailed) and self._stopping and self.started is None:
            self.status.setText("Cancelled while loading the data")
            self.progress.setFormat("Cancelled")
            return
        if isinstance(event, RunFailed):
            self.banner.show_failure(event.reason, event.hint, event.details)
            self.status.setText("Failed")
            self.progress.setFormat("Failed")
            return
        names = self.started.class_names if self.started else ()
        self.results.show_result(event, self.data, names)
        self.progress.setValue(self.progress.maximum() if not event.stopped
                               else self.progress.value())
        how = "Stopped" if event.stopped else "Finished"
        warnings = stored_warnings(event.summary)
        self._show_outcome(warnings)
        flag = " \u00b7 \u26a0 it did not learn: see the warning" if warnings else ""
        self.status.setText(f"{how} in {format_seconds(event.seconds)}{flag}")
        self.progress.setFormat(f"{how} after {event.epochs} epoch"
                                f"{'s' if event.epochs != 1 else ''}"
                                + (" \u2014 suspect result" if warnings else ""))

    # -- warnings -------------------------------------------------------------------------
    def _show_health_warning(self, warning: str) -> None:
        """A health warning while training: in the banner above the views and on the Health
        tab, so it is seen whichever view is open."""
        index = self.tabs.indexOf(self.health)
        self.tabs.setTabText(index, f"{HEALTH_TAB} \u26a0")
        self.tabs.setTabToolTip(index, warning)
        if self.notice.kind != "outcome":
            self.notice.show_notice("health", "The network's health, while it trains",
                                    [(warning, "")])

    def _show_outcome(self, warnings: list[OutcomeWarning]) -> None:
        if warnings:
            self.notice.show_notice("outcome", "The run ended, but it did not learn well",
                                    [(w.message, w.hint) for w in warnings])

    def _clear_notices(self) -> None:
        self.notice.clear()
        index = self.tabs.indexOf(self.health)
        self.tabs.setTabText(index, HEALTH_TAB)
        self.tabs.setTabToolTip(index, "")

    def _on_error(self, message: str, _trace: str) -> None:
        run_dir = self.started.run_dir if self.started else None  # the worker logged the trace
        log = current_log()
        self._on_end(RunFailed(run_dir, message, BUG_HINT, details=str(log) if log else None))

    def _on_finished(self) -> None:
        end = self.last_end
        if end is None:  # the thread ended without a last event: say so, never silently
            log = current_log()
            end = RunFailed(self.started.run_dir if self.started else None,
                            "the training thread ended without a result", BUG_HINT,
                            details=str(log) if log else None)
            self._on_end(end)
        if isinstance(end, RunFailed) and self.started is None:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.data = None  # the results are drawn; the cache keeps the data if it is wanted
        self._stopping = False
        self._update_buttons()
        self.runEnded.emit(end)


if __name__ == "__main__":
    import pyqtgraph as pg

    from workbench.gui.demo import demo_workspace, example_spec

    app = pg.mkQApp("Train")
    example = example_spec()
    panel = TrainPanel(lambda: example, demo_workspace())
    app.aboutToQuit.connect(panel.stop_and_wait)
    panel.setWindowTitle(f"Train: {example.name}")
    panel.resize(1000, 720)
    panel.show()
    raise SystemExit(app.exec())
