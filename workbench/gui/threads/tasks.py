"""One task pattern for every panel (as Orange3's `ConcurrentWidgetMixin`): a panel's
background work of each kind runs one at a time, and the latest request wins.

`tasks.start(kind, work, ...)` cancels the panel's task of that kind; its results are dropped
from then on (it is stale). The new task starts at once, or, while the cancelled one's thread
is still ending, as soon as it has ended (a newer request replaces a waiting one), so one
kind never runs on two threads and never races over the same objects. What the work reports
arrives as `partial`, its return value as `done`, an exception as `failed(message)`, and
`finished()` follows when the thread of a task that is still current has ended; a cancelled
task calls none of them. Finished workers are deleted.
`stop(kind)` asks a task to end early and still delivers what it returns; `shutdown()`
(closing the panel) cancels everything and waits for the threads, a few seconds at most: a
task that ignores its cancel is abandoned then, with a line in the log.

A task's work takes what it needs as values made before it starts (never the panel's
attributes, read on its thread) and gives back new objects; a failure is always delivered as
one: to the request's `failed`, or, without one, to the log as a warning.

Each task is a `TaskRunner` from gui/threads/worker.py, the one thread adapter; given the
workspace's job registry, every running task is listed there too, by its `title` when a
person started it (what closing names).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from workbench.core.workspace import STOP_WAIT_MS
from workbench.gui.threads.worker import TaskRunner, Work

if TYPE_CHECKING:
    from workbench.core.workspace import JobRegistry

log = logging.getLogger(__name__)

Handler = Callable[[Any], None] | None


@dataclass
class _Request:
    work: Work
    done: Handler = None
    partial: Handler = None
    failed: Handler = None
    finished: Callable[[], None] | None = None
    expected: tuple[type[BaseException], ...] = ()
    stop: Callable[[], None] | None = None
    title: str | None = None


@dataclass
class _Slot:
    """One kind of task: the current runner (whose results count), those still ending, and
    the request waiting for them."""

    current: TaskRunner | None = None
    request: _Request | None = None
    alive: list[TaskRunner] = field(default_factory=list)
    waiting: _Request | None = None


class Tasks(QObject):
    """The background tasks of one panel, by kind (e.g. "load", "evaluate", "sweep")."""

    def __init__(self, parent: QObject, jobs: JobRegistry | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self._slots: dict[str, _Slot] = {}

    def start(self, kind: str, work: Work, *, done: Handler = None, partial: Handler = None,
              failed: Handler = None, finished: Callable[[], None] | None = None,
              expected: tuple[type[BaseException], ...] = (),
              stop: Callable[[], None] | None = None, title: str | None = None) -> None:
        """Run `work(report, cancel)` off the GUI thread as the task of this kind.

        `stop` is how to ask it to end (default: set its cancel event); `expected` are the
        exceptions that are the person's input, reported by their message alone; `title`
        names the job in the person's words when closing the app should ask about it (a
        comparison, a search), None for housekeeping (a listing, a read).
        """
        slot = self._slots.setdefault(kind, _Slot())
        self._drop_current(slot)
        request = _Request(work, done, partial, failed, finished, expected, stop, title)
        if slot.alive:
            slot.waiting = request  # it starts once the cancelled task's thread has ended
        else:
            self._launch(kind, slot, request)

    def stop(self, kind: str) -> None:
        """Ask the task of this kind to end early; unlike `cancel`, what it still reports
        and returns arrives (a stopped fine-tune, a stopped comparison)."""
        slot = self._slots.get(kind)
        if slot is not None and slot.current is not None:
            slot.current.stop()

    def cancel(self, kind: str | None = None) -> None:
        """Cancel the task of this kind (every kind when None); its results are dropped."""
        for name, slot in self._slots.items():
            if kind is None or name == kind:
                slot.waiting = None
                self._drop_current(slot)

    def is_running(self, kind: str | None = None) -> bool:
        """Whether a task of this kind (of any kind when None) is current or waiting."""
        return any(slot.current is not None or slot.waiting is not None
                   for name, slot in self._slots.items() if kind is None or name == kind)

    def threads(self) -> int:
        """Task threads still running, cancelled ones included."""
        return sum(len(slot.alive) for slot in self._slots.values())

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Cancel every task and wait until every thread of this panel has ended, at most
        `timeout_ms` for all together (STOP_WAIT_MS when None); a thread still running then
        is abandoned (see gui/threads/worker.py). True when every thread ended."""
        self.cancel()
        running = [(slot, runner) for slot in self._slots.values() for runner in slot.alive]
        for _slot, runner in running:
            runner.stop()
        deadline = time.monotonic() + (STOP_WAIT_MS if timeout_ms is None else timeout_ms) / 1000
        ended = True
        for slot, runner in running:
            ended &= runner.stop_and_wait(max(0, int(1000 * (deadline - time.monotonic()))))
            self._retire(slot, runner)
        return ended

    # -- inside ----------------------------------------------------------------------------
    def _drop_current(self, slot: _Slot) -> None:
        runner = slot.current
        slot.current = slot.request = None
        if runner is not None:
            runner.cancel()

    def _launch(self, kind: str, slot: _Slot, request: _Request) -> None:
        runner = TaskRunner(request.work, expected=request.expected, name=f"workbench-{kind}",
                            stop=request.stop, jobs=self.jobs, title=request.title,
                            parent=self)
        runner.progressed.connect(functools.partial(self._deliver, slot, runner, "partial"))
        runner.succeeded.connect(functools.partial(self._deliver, slot, runner, "done"))
        runner.failed.connect(functools.partial(self._deliver, slot, runner, "failed"))
        runner.finished.connect(functools.partial(self._on_finished, kind, slot, runner))
        slot.current, slot.request = runner, request
        slot.alive.append(runner)
        runner.start()

    def _deliver(self, slot: _Slot, runner: TaskRunner, what: str, value: Any) -> None:
        if slot.current is runner and slot.request is not None:
            handler = getattr(slot.request, what)
            if handler is not None:
                handler(value)
            elif what == "failed":
                log.warning("%s failed: %s", runner.name, value)

    def _on_finished(self, kind: str, slot: _Slot, runner: TaskRunner) -> None:
        if slot.current is runner:
            request = slot.request
            slot.current = slot.request = None
            if request is not None and request.finished is not None:
                request.finished()
        self._retire(slot, runner)
        if slot.waiting is not None and not slot.alive:
            request, slot.waiting = slot.waiting, None
            self._launch(kind, slot, request)

    @staticmethod
    def _retire(slot: _Slot, runner: TaskRunner) -> None:
        if runner in slot.alive:
            slot.alive.remove(runner)
            runner.deleteLater()


__all__ = ["Tasks"]
