"""The one Qt adapter that runs work off the GUI thread: a worker whose work runs once on a
thread of its own.

`ThreadWorker` runs `work(emit, cancel)` once on a fresh thread, in the habit of superqt's
`thread_worker`. If the work returns a generator, each item it yields arrives on the GUI thread
as `yielded(object)`, and the cancel event is checked between items; a plain body calls `emit`
for its progress and its return value arrives as `returned(object)`. An exception arrives as
`errored(message, traceback)` and is logged, never swallowed; `finished()` follows once the
thread has ended, after everything else was delivered. Queued connections carry every signal to
the GUI thread; the worker never touches a widget, nothing terminates its thread, and it runs
once. Given the workspace's job registry, a worker is in it (with its `title`, what closing
names) from `start` until its thread has ended.

Nothing in the GUI thread waits for a worker except `stop_and_wait`, which is for closing, and
it never waits forever: a work that has not ended within its limit (a connect to a database
server that never answers ignores any stop) is abandoned, with a line in the log. It delivers
nothing more and ends on its own, or with the process. That is why the thread is a daemon
`threading.Thread` and not a QThread: Qt aborts the process when a QThread that still runs is
destroyed, and QThreadPool waits for its runnables when the app ends.

Every background job of the GUI is a thin use of it: `TrainRunner` (a `Trainer`'s events) and
`TaskRunner` (one call with progress and cancel), which the panels start through
`gui.threads.tasks.Tasks` (one task of each kind at a time, the latest wins).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from workbench.core.workspace import STOP_WAIT_MS

if TYPE_CHECKING:  # the adapter itself loads no torch: the data panel needs it before that
    from workbench.core.training.callbacks import Callback
    from workbench.core.training.loop import Trainer
    from workbench.core.workspace import JobRegistry, Workspace
    from workbench.spec import ExperimentSpec

log = logging.getLogger(__name__)

Emit = Callable[[Any], None]
Work = Callable[[Emit, threading.Event], Any]


def _spent(_emit: Emit, _cancel: threading.Event) -> None:
    """What a worker's body holds once its work has run (and been let go of)."""


class _Body(QObject):
    """Runs the work once on the worker's thread and only emits (its signals are queued to
    the GUI thread); once abandoned, it emits nothing more."""

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(str, str)  # message, traceback
    done = Signal()

    def __init__(self, work: Work, cancel: threading.Event,
                 expected: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.work, self.cancel, self.expected = work, cancel, expected
        self.abandoned = False
        self.over = False  # its work has returned or raised

    def run(self) -> None:
        name = threading.current_thread().name
        try:
            result = self.work(self.emit, self.cancel)
            if isinstance(result, Generator):
                self._drain(result)
            elif not self.abandoned:
                self.returned.emit(result)
        except self.expected as exc:  # the person's input, not a bug: its message is enough
            log.info("%s stopped: %s", name, exc)
            if not self.abandoned:
                self.errored.emit(str(exc), traceback.format_exc())
        except BaseException as exc:  # reported to the GUI thread, not lost with the thread
            trace = traceback.format_exc()
            log.error("%s raised:\n%s", name, trace)
            if not self.abandoned:
                self.errored.emit(f"{type(exc).__name__}: {exc}", trace)
        finally:
            self.over = True
            if self.abandoned:
                log.info("%s, abandoned before, has ended", name)
            else:
                self.done.emit()

    def emit(self, item: Any) -> None:
        """What the work reports (from any thread it runs), unless it was abandoned."""
        if not self.abandoned:
            self.yielded.emit(item)

    def _drain(self, items: Generator[Any, None, Any]) -> None:
        try:
            for item in items:
                self.emit(item)
                if self.cancel.is_set():
                    break
        finally:
            items.close()


# The bodies whose thread may still run, held here until the GUI thread hears that it ended
# (an abandoned one's, or one whose worker was deleted first, for good): the last reference
# dropped on the worker's own thread would destroy a QObject away from the GUI thread.
_KEPT: set[_Body] = set()


def abandoned_still_running() -> int:
    """How many abandoned works have not ended yet (the app's exit skips the interpreter's
    teardown while any runs: it could free what such a work is using)."""
    return sum(1 for body in list(_KEPT) if body.abandoned and not body.over)


class ThreadWorker(QObject):
    """Runs `work(emit, cancel)` once on a fresh thread; lives in (and signals to) the GUI
    thread.

    `stop` is how to ask the work to end (by default: set `cancel_event`); `expected` are the
    exceptions reported by their message alone, as the person's input rather than a bug;
    `jobs` (the workspace's registry) lists the worker while its thread runs, with `title`
    when closing should name it (None: housekeeping, stopped without asking).
    """

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(str, str)  # message, traceback
    finished = Signal()

    def __init__(self, work: Work, *, name: str = "workbench-worker",
                 stop: Callable[[], None] | None = None,
                 expected: tuple[type[BaseException], ...] = (),
                 jobs: JobRegistry | None = None, title: str | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.title = title
        self.jobs = jobs
        self.cancel_event = threading.Event()
        self.abandoned = False
        self._stop = stop or self.cancel_event.set
        self._started = False
        self._body = _Body(work, self.cancel_event, expected)
        queued = Qt.ConnectionType.QueuedConnection
        self._body.yielded.connect(self.yielded, queued)
        self._body.returned.connect(self.returned, queued)
        self._body.errored.connect(self.errored, queued)
        self._body.done.connect(self._on_done, queued)
        self._thread = threading.Thread(target=self._body.run, name=name, daemon=True)

    def start(self) -> None:
        if self._started:
            raise RuntimeError(f"a {type(self).__name__} runs once; make a new one for the "
                               "next run")
        self._started = True
        if self.jobs is not None:
            self.jobs.add(self.name, self, self.title)
        _KEPT.add(self._body)
        self._thread.start()

    def stop(self) -> None:
        """Ask the work to end; returns at once, and `finished` follows."""
        self._stop()

    def is_running(self) -> bool:
        """True from `start` until the thread has ended (an abandoned one included)."""
        return self._started and self._thread.is_alive()

    def ended(self) -> bool:
        """Whether the thread has run and ended (False before `start`)."""
        return self._started and not self._thread.is_alive()

    @property
    def native_id(self) -> int | None:
        """The thread's id in the operating system (None before `start`)."""
        return self._thread.native_id

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """Stop and block until the thread has ended, at most `timeout_ms` (STOP_WAIT_MS when
        None); True if it did. A thread still running then is abandoned (see the module).

        Signals still queued for the GUI thread are delivered later, or dropped with the
        worker when it is destroyed first.
        """
        self._stop()
        if not self._started:
            return True
        if self.abandoned:  # waited for once already
            return not self._thread.is_alive()
        limit = STOP_WAIT_MS if timeout_ms is None else timeout_ms
        self._thread.join(max(0, limit) / 1000)
        if self._thread.is_alive():
            self._abandon(limit)
            return False
        if self.jobs is not None:
            self.jobs.discard(self)
        return True

    def _abandon(self, limit_ms: int) -> None:
        if self.abandoned:
            return
        self.abandoned = self._body.abandoned = True
        if self.jobs is not None:
            self.jobs.discard(self)
        log.warning("%s did not end within %.1f s of being asked to stop: abandoned (it ends "
                    "on its own, and nothing it still delivers is shown)",
                    self.title or self.name, limit_ms / 1000)

    @Slot()
    def _on_done(self) -> None:
        self._thread.join()  # its last act was to say so: it is ending now
        _KEPT.discard(self._body)
        if self.jobs is not None:
            self.jobs.discard(self)
        self.finished.emit()


class TrainRunner(ThreadWorker):
    """Runs one `Trainer` off the GUI thread: each of its events arrives as `trainEvent`.

    Then `errored(message, traceback)` if the loop itself raised (a bug: the trainer turns
    failures into `RunFailed`), then `finished()`. `stop`, `pause` and `resume` call the
    trainer's thread-safe methods and return at once. Once its thread has ended the runner
    lets go of the trainer, so a finished run's data, model, optimizer and CUDA graph are
    freed even while the runner itself is still referenced.
    """

    trainEvent = Signal(object)  # not `event`: that name is QObject's event handler

    def __init__(self, trainer: Trainer, *, jobs: JobRegistry | None = None,
                 title: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(lambda _emit, _cancel: trainer.events(), name="workbench-training",
                         stop=trainer.stop, jobs=jobs, parent=parent,
                         title=title or _training_title(trainer))
        self.trainer: Trainer | None = trainer
        self.yielded.connect(self.trainEvent)
        self.finished.connect(self._release)

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, workspace: Workspace, *,
                 callbacks: Sequence[Callback] = (),
                 parent: QObject | None = None) -> TrainRunner:
        """A runner for a new run of `spec` in `workspace` (its store, its cached data),
        leaving the GUI a core unless the spec sets `train.threads`."""
        from workbench.core.training.loop import Trainer

        trainer = Trainer(spec, runs=workspace.runs, source=workspace, callbacks=callbacks)
        return cls(trainer, jobs=workspace.jobs, parent=parent)

    def pause(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()

    @property
    def paused(self) -> bool:
        return self.trainer is not None and self.trainer.paused

    @Slot()
    def _release(self) -> None:
        self.trainer = None
        self._stop = self.cancel_event.set
        self._body.work = _spent


def _training_title(trainer: Any) -> str:
    spec = getattr(trainer, "spec", None)
    return f"Training {getattr(spec, 'name', None) or 'the experiment'}"


class TaskRunner(ThreadWorker):
    """Runs one core call `task(report, cancel)` off the GUI thread: pruning, sweeps, export.

    What it reports arrives as `progressed`, its return value as `succeeded`, an exception as
    `failed(message)` (expected errors, such as `PruneError`, by their message; others with
    their type, and logged with the traceback), then `finished`.
    """

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, task: Work, *, expected: tuple[type[BaseException], ...] = (),
                 name: str = "workbench-task", stop: Callable[[], None] | None = None,
                 jobs: JobRegistry | None = None, title: str | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(task, name=name, stop=stop, expected=expected, jobs=jobs,
                         title=title, parent=parent)
        self.yielded.connect(self.progressed)
        self.returned.connect(self.succeeded)
        self.errored.connect(self._fail)

    def cancel(self) -> None:
        self.stop()

    @Slot(str, str)
    def _fail(self, message: str, _trace: str) -> None:
        self.failed.emit(message)


__all__ = ["TaskRunner", "ThreadWorker", "TrainRunner"]
