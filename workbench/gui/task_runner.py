"""Runs one core function off the GUI thread: pruning, sweeps, fine-tuning, export.

Training itself goes through `worker.TrainRunner`; this is for the other long calls. The
function gets `report(obj)` (emitted as `progressed`) and a `threading.Event` to watch for
cancel. Its return value arrives as `succeeded`, an exception as `failed(message)` (expected
errors, such as `PruneError`, by their message; others with their type and logged with the
traceback), and `finished` once the thread has ended. A runner runs once.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)

Task = Callable[[Callable[[Any], None], threading.Event], Any]


class _Worker(QObject):
    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, task: Task, cancel: threading.Event,
                 expected: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.task = task
        self.cancel = cancel
        self.expected = expected

    @Slot()
    def run(self) -> None:
        try:
            result = self.task(self.progressed.emit, self.cancel)
            self.succeeded.emit(result)
        except self.expected as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # reported to the GUI thread, never lost with the thread
            log.error("a background task raised:\n%s", traceback.format_exc())
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        finally:
            self.done.emit()


class TaskRunner(QObject):
    """One background call on a fresh QThread; lives in (and signals to) the GUI thread."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, task: Task, *, expected: tuple[type[BaseException], ...] = (),
                 name: str = "workbench-task", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self.qthread = QThread()
        self.qthread.setObjectName(name)
        self._worker = _Worker(task, self.cancel_event, expected)
        self._worker.moveToThread(self.qthread)
        self.qthread.started.connect(self._worker.run)
        queued = Qt.ConnectionType.QueuedConnection
        self._worker.progressed.connect(self.progressed, queued)
        self._worker.succeeded.connect(self.succeeded, queued)
        self._worker.failed.connect(self.failed, queued)
        self._worker.done.connect(self.qthread.quit, Qt.ConnectionType.DirectConnection)
        self.qthread.finished.connect(self._on_thread_finished, queued)
        self._started = False

    def start(self) -> None:
        if self._started:
            raise RuntimeError("a TaskRunner runs once")
        self._started = True
        self.qthread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def is_running(self) -> bool:
        return self._started and not self.qthread.isFinished()

    def cancel_and_wait(self) -> None:
        """For closing: ask the task to stop and block until its thread has ended."""
        self.cancel_event.set()
        if self._started:
            self.qthread.wait()

    @Slot()
    def _on_thread_finished(self) -> None:
        self.qthread.wait()
        self.finished.emit()


__all__ = ["TaskRunner"]
