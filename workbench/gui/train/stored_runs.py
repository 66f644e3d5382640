"""What the training view does with stored runs: show one (its curves, figures and verdict),
train a fork of one as a branch of its parent's curves, and resume one with its whole history.
Each reads what it needs on the panel's tasks first (no file I/O on the GUI thread); a newer
request, or a run that starts first, drops the answer. Mixed into `TrainPanel`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QLabel, QProgressBar

from workbench.core.store.metrics import MetricSeries, read_series
from workbench.core.store.runs import Run, RunError
from workbench.core.tools.fork import ForkPlan, series_until
from workbench.core.training.monitors import app_monitors
from workbench.core.training.outcome import OutcomeWarning, stored_warnings
from workbench.core.workspace import Workspace
from workbench.gui.threads.tasks import Tasks
from workbench.gui.threads.worker import TrainRunner
from workbench.gui.train.banners import FailureBanner
from workbench.gui.train.presenter import StoredRun, read_resumable, read_stored, run_caption
from workbench.gui.views.boundary import BoundaryView
from workbench.gui.views.curves import CurvesView
from workbench.gui.views.health import HealthView
from workbench.gui.views.results import ResultsView
from workbench.spec import ExperimentSpec, SpecError


class StoredRunsMixin:
    """Show, fork and resume stored runs (mixed into `TrainPanel`)."""

    # what runs before a run starts: a fork's parent, a run to resume
    PREPARING = ("fork", "resume")

    workspace: Workspace
    tasks: Tasks
    status: QLabel
    run_label: QLabel
    progress: QProgressBar
    banner: FailureBanner
    curves: CurvesView
    health: HealthView
    boundary: BoundaryView
    results: ResultsView
    shown_run: str | None
    _history: MetricSeries | None
    runShown: Any  # Signal(str)
    showFailed: Any  # Signal(str)

    if TYPE_CHECKING:  # the panel's own, named here for the type checker only
        def is_running(self) -> bool: ...
        def _begin(self, runner: TrainRunner) -> None: ...
        def _update_buttons(self) -> None: ...
        def _clear_notices(self) -> None: ...
        def _show_outcome(self, warnings: list[OutcomeWarning]) -> None: ...

    def preparing(self) -> bool:
        """Whether a fork or a resume is being read before it starts."""
        return any(self.tasks.is_running(kind) for kind in self.PREPARING)

    def show_run(self, run_dir: str) -> bool:
        """Show a stored run's curves and figures, read off the GUI thread: `runShown` once
        drawn, or `showFailed` (and the status says why); False when a run is training."""
        if self.is_running():
            self.status.setText("Stop the current run to look at another one")
            return False
        self.status.setText(f"Reading {Path(run_dir).name}\u2026")
        self.tasks.start("show", lambda _report, _cancel: read_stored(run_dir),
                         done=self._show_stored, failed=self._show_failed,
                         expected=(RunError, OSError))
        return True

    def _show_stored(self, stored: StoredRun) -> None:
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
        self.status.setText(f"Showing {stored.path.name}")
        self.run_label.setText(run_caption(stored.path, stored.summary.get("name", "")))
        self.shown_run = str(stored.path)
        self.runShown.emit(str(stored.path))

    def _show_failed(self, message: str) -> None:
        self.status.setText(f"Cannot show that run: {message}")
        self.showFailed.emit(message)

    def start_fork(self, plan: ForkPlan) -> bool:
        """Train a fork of a stored run (a checked `ForkPlan`), drawn as a branch of its
        parent's curves, once the parent's curves are read (off the GUI thread; a banner
        when they cannot be); False when a run is training."""
        if self.is_running():
            return False
        parent = Run(plan.parent)
        self._prepare("fork", lambda _report, _cancel: read_series(parent),
                      lambda series: self._start_fork(plan, series),
                      "cannot read the parent's metrics: {}", "check the parent run's folder",
                      f"Reading {Path(plan.parent).name}\u2026")
        return True

    def _start_fork(self, plan: ForkPlan, parent: MetricSeries) -> None:
        from workbench.core.tools.fork import ForkError, fork_trainer

        try:
            trainer = fork_trainer(plan, runs=self.workspace.runs, source=self.workspace,
                                   callbacks=app_monitors())
        except (ForkError, RunError, SpecError) as exc:  # the parent changed since the plan
            self.banner.show_failure(f"cannot fork {Path(plan.parent).name}: {exc}",
                                     "check the parent run's folder")
            self.status.setText("Ready")
            return
        self._begin(TrainRunner(trainer, jobs=self.workspace.jobs, parent=self))
        self.curves.load_metrics(series_until(parent, plan.fork_step(parent)))
        self.curves.show_branch(parent, plan.epoch)

    def resume_stored(self, run_dir: str) -> bool:
        """Continue a stopped, interrupted or failed run from its checkpoint, exactly, once its
        spec is read (off the GUI thread; a banner when the store's one rule refuses it, or the
        run cannot be read); False when a run is training."""
        if self.is_running():
            return False
        self._prepare("resume", lambda _report, _cancel: (read_resumable(run_dir),
                                                             read_series(Run(Path(run_dir)))),
                      lambda read: self._resume(run_dir, *read), "{}",
                      "fork it to train on, or train it again",
                      f"Reading {Path(run_dir).name}\u2026")
        return True

    def _resume(self, run_dir: str, spec: ExperimentSpec, history: MetricSeries) -> None:
        """Start the resumed run; `history` (the curves it had) is drawn before its first new
        point, as a fork's parent's are."""
        from workbench.core.training.loop import Trainer

        try:
            trainer = Trainer(spec, resume=run_dir, runs=self.workspace.runs,
                              source=self.workspace, callbacks=app_monitors())
        except (RunError, SpecError) as exc:
            self.banner.show_failure(str(exc), "the run folder may be damaged")
            self.status.setText("Ready")
            return
        self._begin(TrainRunner(trainer, jobs=self.workspace.jobs, parent=self,
                                title=f"Resuming {Path(run_dir).name}"))
        self._history = history

    def _prepare(self, kind: str, read: Callable[..., object],
                 then: Callable[[Any], None], failure: str, hint: str, status: str) -> None:
        """Read what a run needs before it starts (`kind` in PREPARING), then `then(it)`;
        a newer request or a run that starts first drops the answer."""
        for other in ("show", *self.PREPARING):
            self.tasks.cancel(other)

        def ready(value: Any) -> None:
            if not self.is_running():
                then(value)

        def failed(message: str) -> None:
            self.banner.show_failure(failure.format(message), hint)
            self.status.setText("Ready")

        self.tasks.start(kind, read, done=ready, failed=failed, finished=self._update_buttons,
                         expected=(RunError, OSError))
        self.status.setText(status)
        self._update_buttons()
