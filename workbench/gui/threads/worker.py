"""The one Qt adapter that runs work off the GUI thread: a worker object on a `QThread`.

`ThreadWorker` runs `work(emit, cancel)` once on a fresh thread, in the habit of superqt's
`thread_worker`. If the work returns a generator, each item it yields arrives on the GUI thread
as `yielded(object)`, and the cancel event is checked between items; a plain body calls `emit`
for its progress and its return value arrives as `returned(object)`. An exception arrives as
`errored(message, traceback)` and is logged, never swallowed; `finished()` follows once the
thread has ended, after everything else was delivered. Queued connections carry every signal to
the GUI thread; the worker never touches a widget, nothing terminates its thread, and it runs
once. Nothing in the GUI thread waits for it except `stop_and_wait`, which is for closing.
Given the workspace's job registry, a worker is in it from `start` until its thread has ended.

Every background job of the GUI is a thin use of it: `TrainRunner` (a `Trainer`'s events) and
`TaskRunner` (one call with progress and cancel), which the panels start through
`gui.tasks.Tasks` (one task of each kind at a time, the latest wins).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

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
    """Lives on the worker thread: runs the work once and only emits."""

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(str, str)  # message, traceback
    done = Signal()

    def __init__(self, work: Work, cancel: threading.Event,
                 expected: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.work, self.cancel, self.expected = work, cancel, expected

    @Slot()
    def run(self) -> None:
        name = QThread.currentThread().objectName()
        try:
            result = self.work(self.yielded.emit, self.cancel)
            if isinstance(result, Generator):
                self._drain(result)
            else:
                self.returned.emit(result)
        except self.expected as exc:  # the person's input, not a bug: its message is enough
            log.info("%s stopped: %s", name, exc)
            self.errored.emit(str(exc), traceback.format_exc())
        except BaseException as exc:  # reported to the GUI thread, not lost with the thread
            trace = traceback.format_exc()
            log.error("%s raised:\n%s", name, trace)
            self.errored.emit(f"{type(exc).__name__}: {exc}", trace)
        finally:
            self.done.emit()

    def _drain(self, items: Generator[Any, None, Any]) -> None:
        try:
            for item in items:
                self.yielded.emit(item)
                if self.cancel.is_set():
                    break
        finally:
            items.close()


class ThreadWorker(QObject):
    """Runs `work(emit, cancel)` once on a fresh QThread; lives in (and signals to) the GUI thread.

    `stop` is how to ask the work to end (by default: set `cancel_event`); `expected` are the
    exceptions reported by their message alone, as the person's input rather than a bug;
    `jobs` (the workspace's registry) lists the worker while its thread runs.
    """

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(str, str)  # message, traceback
    finished = Signal()

    def __init__(self, work: Work, *, name: str = "workbench-worker",
                 stop: Callable[[], None] | None = None,
                 expected: tuple[type[BaseException], ...] = (),
                 jobs: JobRegistry | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.jobs = jobs
        self.cancel_event = threading.Event()
        self._stop = stop or self.cancel_event.set
        self._started = False
        self.qthread = QThread()
        self.qthread.setObjectName(name)
        self._body = _Body(work, self.cancel_event, expected)
        self._body.moveToThread(self.qthread)
        self.qthread.started.connect(self._body.run)
        queued = Qt.ConnectionType.QueuedConnection
        self._body.yielded.connect(self.yielded, queued)
        self._body.returned.connect(self.returned, queued)
        self._body.errored.connect(self.errored, queued)
        self._body.done.connect(self.qthread.quit, Qt.ConnectionType.DirectConnection)
        self.qthread.finished.connect(self._on_thread_finished, queued)

    def start(self) -> None:
        if self._started:
            raise RuntimeError(f"a {type(self).__name__} runs once; make a new one for the "
                               "next run")
        self._started = True
        if self.jobs is not None:
            self.jobs.add(self.name, self)
        self.qthread.start()

    def stop(self) -> None:
        """Ask the work to end; returns at once, and `finished` follows."""
        self._stop()

    def is_running(self) -> bool:
        """True from `start` until the thread has ended."""
        return self._started and not self.qthread.isFinished()

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """Stop and block until the thread has ended (for closing the window); True if it did.

        Signals still queued for the GUI thread are delivered later, or dropped with the
        worker when it is destroyed first.
        """
        self._stop()
        if not self._started:
            return True
        ended = self.qthread.wait() if timeout_ms is None else self.qthread.wait(timeout_ms)
        if ended and self.jobs is not None:
            self.jobs.discard(self)
        return ended

    @Slot()
    def _on_thread_finished(self) -> None:
        self.qthread.wait()
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
                 parent: QObject | None = None) -> None:
        super().__init__(lambda _emit, _cancel: trainer.events(), name="workbench-training",
                         stop=trainer.stop, jobs=jobs, parent=parent)
        self.trainer: Trainer | None = trainer
        self.yielded.connect(self.trainEvent)
        self.finished.connect(self._release)

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, workspace: Workspace, *,
                 callbacks: Sequence[Callback] = (),
                 parent: QObject | None = None) -> TrainRunner:
        """A runner for a new run of `spec` in `workspace` (its store, its cached data),
        leaving the GUI a core
        unless the spec sets `train.threads`."""
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
                 jobs: JobRegistry | None = None, parent: QObject | None = None) -> None:
        super().__init__(task, name=name, stop=stop, expected=expected, jobs=jobs,
                         parent=parent)
        self.yielded.connect(self.progressed)
        self.returned.connect(self.succeeded)
        self.errored.connect(self._fail)

    def cancel(self) -> None:
        self.stop()

    @Slot(str, str)
    def _fail(self, message: str, _trace: str) -> None:
        self.failed.emit(message)


__all__ = ["TaskRunner", "ThreadWorker", "TrainRunner"]
