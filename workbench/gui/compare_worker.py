"""Qt adapters for the comparison: its (variant, event) generator, and one-off slow jobs
(the loss landscape), each on its own `QThread`.

As in `worker.py`, the worker objects only emit signals; queued connections carry them to the
GUI thread. Exceptions that escape are reported through `errored`, never swallowed.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from workbench.core.compare import ComparisonRunner

log = logging.getLogger(__name__)


class _Worker(QObject):
    item = Signal(object)
    errored = Signal(str, str)
    done = Signal()

    def __init__(self, body: Callable[[Callable[[object], None]], None]) -> None:
        super().__init__()
        self.body = body

    @Slot()
    def run(self) -> None:
        try:
            self.body(self.item.emit)
        except BaseException as exc:
            self.errored.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            self.done.emit()


class ThreadJob(QObject):
    """Runs `body(emit)` once on a fresh QThread; `item(object)` for what it emits, then
    `errored(message, traceback)` if it raised, then `finished()` once the thread ended."""

    item = Signal(object)
    errored = Signal(str, str)
    finished = Signal()

    def __init__(self, body: Callable[[Callable[[object], None]], None], name: str,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._started = False
        self.qthread = QThread()
        self.qthread.setObjectName(name)
        self._worker = _Worker(body)
        self._worker.moveToThread(self.qthread)
        self.qthread.started.connect(self._worker.run)
        queued = Qt.ConnectionType.QueuedConnection
        self._worker.item.connect(self.item, queued)
        self._worker.errored.connect(self._relay_error, queued)
        self._worker.done.connect(self.qthread.quit, Qt.ConnectionType.DirectConnection)
        self.qthread.finished.connect(self._on_thread_finished, queued)

    def start(self) -> None:
        if self._started:
            raise RuntimeError("a job runs once")
        self._started = True
        self.qthread.start()

    def is_running(self) -> bool:
        return self._started and not self.qthread.isFinished()

    def wait(self) -> None:
        if self._started:
            self.qthread.wait()

    @Slot(str, str)
    def _relay_error(self, message: str, trace: str) -> None:
        log.error("a background job raised: %s\n%s", message, trace)
        self.errored.emit(message, trace)

    @Slot()
    def _on_thread_finished(self) -> None:
        self.qthread.wait()
        self.finished.emit()


class ComparisonJob(ThreadJob):
    """Drives a ComparisonRunner off the GUI thread; `item` carries (index, event) pairs."""

    def __init__(self, runner: ComparisonRunner, parent: QObject | None = None) -> None:
        self.runner = runner

        def body(emit: Callable[[object], None]) -> None:
            for pair in runner.events():
                emit(pair)

        super().__init__(body, "workbench-compare", parent)

    def stop(self) -> None:
        self.runner.stop()

    def stop_and_wait(self) -> None:
        self.runner.stop()
        self.wait()


class CallJob(ThreadJob):
    """Calls `fn(progress, cancel)` off the GUI thread; emits ("progress", done, total) while
    it runs and ("result", value) at the end."""

    def __init__(self, fn: Callable[[Callable[[int, int], None], threading.Event], Any],
                 name: str, parent: QObject | None = None) -> None:
        self.cancel = threading.Event()

        def body(emit: Callable[[object], None]) -> None:
            value = fn(lambda done, total: emit(("progress", done, total)), self.cancel)
            emit(("result", value))

        super().__init__(body, name, parent)

    def stop_and_wait(self) -> None:
        self.cancel.set()
        self.wait()


__all__ = ["CallJob", "ComparisonJob", "ThreadJob"]
