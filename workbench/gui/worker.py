"""The one Qt adapter between the trainer and the GUI: `Trainer.events()` on a `QThread`.

The worker object lives on its own thread and only emits signals; queued connections carry
every trainer event to the GUI thread, where `TrainRunner` (which lives there) re-emits it.
Nothing here touches a widget, and nothing in the GUI thread waits for training except
`stop_and_wait`, which is for closing the window. An exception that escapes the loop
(a bug: the trainer itself turns failures into `RunFailed`) is reported through `errored`
with its traceback, never swallowed.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Sequence

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from workbench.core.callbacks import Callback
from workbench.core.data import Splits
from workbench.core.runs import RunStore
from workbench.core.train import Trainer
from workbench.spec import ExperimentSpec

log = logging.getLogger(__name__)


def training_threads() -> int:
    """Torch threads for training: every core this process may use but one, for the GUI."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        cores = os.cpu_count() or 2
    return max(1, cores - 1)


class _Worker(QObject):
    """Iterates the trainer's events on the worker thread; emits, never touches widgets."""

    trainEvent = Signal(object)  # not `event`: that name is QObject's event handler
    errored = Signal(str, str)  # message, traceback
    done = Signal()

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer

    @Slot()
    def run(self) -> None:
        try:
            for event in self.trainer.events():
                self.trainEvent.emit(event)
        except BaseException as exc:  # reported to the GUI thread, not lost with the thread
            self.errored.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            self.done.emit()


class TrainRunner(QObject):
    """Runs one `Trainer` on a fresh `QThread`; lives in (and signals to) the GUI thread.

    Signals, in order: every trainer event as `trainEvent(object)`, then `errored(message,
    traceback)` if the loop itself raised, then `finished()` once the thread has ended (after
    every event was delivered). `stop`, `pause` and `resume` call the trainer's thread-safe
    methods and return at once. One runner runs once.
    """

    trainEvent = Signal(object)
    errored = Signal(str, str)
    finished = Signal()

    def __init__(self, trainer: Trainer, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trainer = trainer
        self._started = False
        self.qthread = QThread()
        self.qthread.setObjectName("workbench-training")
        self._worker = _Worker(trainer)
        self._worker.moveToThread(self.qthread)
        self.qthread.started.connect(self._worker.run)
        queued = Qt.ConnectionType.QueuedConnection
        self._worker.trainEvent.connect(self._relay_event, queued)
        self._worker.errored.connect(self._relay_error, queued)
        self._worker.done.connect(self.qthread.quit, Qt.ConnectionType.DirectConnection)
        self.qthread.finished.connect(self._on_thread_finished, queued)

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, runs: RunStore, *, data: Splits | None = None,
                 callbacks: Sequence[Callback] = (),
                 parent: QObject | None = None) -> TrainRunner:
        """A runner for a new run of `spec`, leaving the GUI one core."""
        trainer = Trainer(spec, runs=runs, data=data, callbacks=callbacks,
                          threads=training_threads())
        return cls(trainer, parent)

    # -- control, from the GUI thread -----------------------------------------------------
    def start(self) -> None:
        if self._started:
            raise RuntimeError("a TrainRunner runs once; make a new one for the next run")
        self._started = True
        self.qthread.start()

    def stop(self) -> None:
        """Ask the run to stop after the step in flight; `finished` follows."""
        self.trainer.stop()

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume()

    @property
    def paused(self) -> bool:
        return self.trainer.paused

    def is_running(self) -> bool:
        """True from `start` until the thread has ended."""
        return self._started and not self.qthread.isFinished()

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """Stop and block until the thread has ended (for closing the window); True if it did.

        Events still queued for the GUI thread are delivered later, or dropped with the
        runner when it is destroyed first.
        """
        self.trainer.stop()
        if not self._started:
            return True
        return self.qthread.wait() if timeout_ms is None else self.qthread.wait(timeout_ms)

    # -- on the GUI thread ----------------------------------------------------------------
    @Slot(object)
    def _relay_event(self, event: object) -> None:
        self.trainEvent.emit(event)

    @Slot(str, str)
    def _relay_error(self, message: str, trace: str) -> None:
        log.error("the training thread raised: %s\n%s", message, trace)
        self.errored.emit(message, trace)

    @Slot()
    def _on_thread_finished(self) -> None:
        self.qthread.wait()
        self.finished.emit()


__all__ = ["TrainRunner", "training_threads"]
