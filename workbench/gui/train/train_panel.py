"""The training panel: Train / Pause (Continue while paused) / Stop, progress, live curves,
health, decision boundary and results, fed by one `TrainRunner` at a time. A stopped run is
continued by the one Resume, the Runs list's (and Tools > Resume), which starts it here.

The panel never waits for training, and reads no file on the GUI thread: every event arrives
by a queued signal, and a stored run to show, a fork's parent's curves and a run to resume are
read by tasks (`stored_runs.py`, over `gui/threads/tasks.py`; a newer request, or a run that
starts, drops an older answer). A failed run shows its reason and hint in a banner and leaves
the panel ready for the next run. The main window calls `stop_and_wait()` when it closes. A
finished run's trainer (its data, model, optimizer and CUDA graph) is let go of once its
thread has ended; the next run of the same data gets it from the workspace's cache.
"""

from __future__ import annotations

from collections.abc import Callable

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
from workbench.core.store.metrics import MetricSeries
from workbench.core.tools.fork import series_until
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
from workbench.gui.threads.tasks import Tasks
from workbench.gui.threads.worker import TrainRunner
from workbench.gui.train.banners import FailureBanner, NoticeBanner
from workbench.gui.train.presenter import (
    format_seconds,
    run_caption,
    shared_text,
)
from workbench.gui.train.stored_runs import StoredRunsMixin
from workbench.gui.views.boundary import BoundaryView
from workbench.gui.views.curves import CurvesView
from workbench.gui.views.health import HealthView
from workbench.gui.views.results import ResultsView
from workbench.gui.widgets.style import CAUTION
from workbench.logs import current_log
from workbench.spec import ExperimentSpec, SpecError

HEALTH_TAB = "Health"
PAUSE, CONTINUE = "Pause", "Continue"
BUG_HINT = "this is a bug in Workbench; the details are in the log"


class TrainPanel(StoredRunsMixin, QWidget):
    """Trains the experiment `get_spec()` returns, into the workspace's run store, and shows it
    as it learns."""

    runStarted = Signal(object)  # RunStarted
    runEnded = Signal(object)  # RunFinished or RunFailed, once the training thread has ended
    runShown = Signal(str)  # a stored run's folder, once `show_run` has drawn it
    showFailed = Signal(str)  # why `show_run` could not
    inspectRequested = Signal(str, int)  # the run shown, a test sample (-1: none), from Results

    def __init__(self, get_spec: Callable[[], ExperimentSpec], workspace: Workspace,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.get_spec = get_spec
        self.workspace = workspace
        self.runner: TrainRunner | None = None
        self.tasks = Tasks(self, workspace.jobs)  # kinds: show, and PREPARING
        self.started: RunStarted | None = None
        self.last_end: RunFinished | RunFailed | None = None
        self.data: Splits | None = None  # the running run's data, let go of when it ends
        # a resumed run's curves before the resume, shown once its first new point says
        # where they end
        self._history: MetricSeries | None = None
        self.shown_run: str | None = None  # the run the views show (training or stored)
        self._blocked: str | None = None
        self._stopping = False

        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("primary")  # the one action that starts things
        self.train_button.setDefault(True)
        self.pause_button = QPushButton(PAUSE)  # Continue while paused: one button, not two
        self.stop_button = QPushButton("Stop")
        self.train_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.status = QLabel("Ready")
        self.run_label = QLabel("")  # which run the view shows: its name and short id
        self.run_label.setObjectName("hint")
        self.run_label.setContentsMargins(8, 0, 8, 0)
        self.blocked_label = QLabel()
        self.blocked_label.setStyleSheet(f"color: {CAUTION};")
        self.blocked_label.setWordWrap(True)
        self.blocked_label.hide()
        self.shared_label = QLabel()  # what this run shares with other jobs of the process
        self.shared_label.setObjectName("hint")
        self.shared_label.setWordWrap(True)
        self.shared_label.hide()
        buttons = QHBoxLayout()
        for b in (self.train_button, self.pause_button, self.stop_button):
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
        self.tabs.setCornerWidget(self.run_label)  # beside the views it names, in free room

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.blocked_label)
        layout.addWidget(self.shared_label)
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
        """Stop the run and the reads, and block until their threads have ended (a few
        seconds at most: see `ThreadWorker.stop_and_wait`), the run's last events delivered."""
        self.tasks.shutdown()
        runner = self.runner
        if runner is None:
            return
        self._stopping = True
        runner.stop_and_wait()
        QCoreApplication.sendPostedEvents(runner, 0)  # the queued end of the run, now

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

    def _begin(self, runner: TrainRunner) -> None:
        """Show a fresh panel and start `runner` (what was being read for another is
        dropped)."""
        self.tasks.cancel()
        self.banner.hide()
        self._clear_notices()
        self.curves.clear()
        self.health.clear()
        self.boundary.clear()
        self.results.clear()
        self.started = None
        self.last_end = None
        self._history = None
        self.run_label.setText("")
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

    def toggle_pause(self) -> None:
        """Pause a running run, or let a paused one go on."""
        if self.is_running() and self.runner.paused:
            self.resume()
        else:
            self.pause()

    def pause(self) -> None:
        if self.is_running():
            self.runner.pause()
            self.status.setText("Paused")
            self._update_buttons()

    def resume(self) -> None:
        """Let a paused run go on (a stopped one is resumed from the Runs list)."""
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
        self.train_button.setEnabled(not running and not self._blocked and not self.preparing())
        self.train_button.setToolTip(self._blocked or "Train the experiment")
        self.pause_button.setEnabled(running and not self._stopping)
        self.pause_button.setText(CONTINUE if paused else PAUSE)
        self.pause_button.setToolTip("Let the paused run go on" if paused else
                                     "Hold the run after its current step")
        self.stop_button.setEnabled(running and not self._stopping)

    # -- events, on the GUI thread ------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, Progress):
            if self._history is not None:  # a resumed run: its earlier curves come first
                self.curves.add_history(series_until(self._history, event.global_step - 1))
                self._history = None
            self.curves.add_progress(event)
            self._show_progress(event)
            self._show_shared()
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

    def _show_shared(self) -> None:
        """What the run shares with the process's other jobs now (the core's owner of the
        process-wide settings says), and what it trains with that another job set."""
        text = shared_text(self.workspace.process.note,
                           self.started.shared if self.started is not None else ())
        if text != self.shared_label.text():
            self.shared_label.setText(text)
            self.shared_label.setVisible(bool(text))

    def _on_started(self, event: RunStarted) -> None:
        self.started = event
        self._show_shared()
        self.shown_run = event.run_dir
        assert self.runner is not None and self.runner.trainer is not None
        self.data = self.runner.trainer.data  # set before RunStarted; never changed after
        is_2d = tuple(event.input_shape) == (2,) and event.task == "classification"
        self.tabs.setTabEnabled(self.tabs.indexOf(self.boundary), is_2d)
        total = event.epochs * event.steps_per_epoch
        self.curves.set_run_length(event.epochs)
        name = self.runner.trainer.spec.name
        self.run_label.setText(run_caption(event.run_dir, name) if event.run_dir else name)
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
        if self._history is not None:  # resumed, and ended before a new point
            self.curves.add_history(self._history)
            self._history = None
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
        resumable = " \u00b7 Resume (Runs list) continues it" if event.stopped else ""
        self.status.setText(f"{how} in {format_seconds(event.seconds)}{flag}{resumable}")
        self.progress.setFormat(f"{how} after {event.done}"  # "40% into epoch 1" when cut
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
        self.shared_label.hide()
        self.shared_label.clear()
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
