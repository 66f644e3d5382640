"""The one task pattern of the panels: a new task cancels the old one, stale results are
dropped, partial results arrive, finished workers are deleted, nothing runs after shutdown."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QCoreApplication, QEvent, QObject  # noqa: E402

from workbench.core.workspace import JobRegistry  # noqa: E402
from workbench.gui.threads.tasks import Tasks  # noqa: E402
from workbench.gui.threads.worker import TaskRunner  # noqa: E402

WAIT_MS = 30_000


@pytest.fixture
def owner(qtbot):
    """A panel stand-in with its Tasks; at teardown no task thread may be left running."""
    parent = QObject()
    jobs = JobRegistry()
    tasks = Tasks(parent, jobs)
    yield tasks
    left = tasks.threads()
    tasks.shutdown()
    assert left == 0, "a test left a task thread running"
    assert len(jobs) == 0


def until_cancelled(_report, cancel: threading.Event) -> str:
    cancel.wait(WAIT_MS / 1000)
    return "cancelled" if cancel.is_set() else "timed out"


def test_a_new_task_cancels_the_old_and_only_its_result_counts(qtbot, owner):
    first_cancel: list[threading.Event] = []
    first_running = threading.Event()
    overlap: list[bool] = []

    def first(report, cancel):
        first_cancel.append(cancel)
        first_running.set()
        report("old partial")
        cancel.wait(WAIT_MS / 1000)
        first_running.clear()
        return "old"

    def second(report, _cancel):
        overlap.append(first_running.is_set())
        report("new partial")
        return "new"

    results: list[object] = []
    partials: list[object] = []
    owner.start("eval", first, done=results.append, partial=partials.append)
    qtbot.waitUntil(lambda: bool(partials), timeout=WAIT_MS)  # the first is running
    finished: list[bool] = []
    owner.start("eval", second, done=results.append, partial=partials.append,
                finished=lambda: finished.append(True))
    assert first_cancel and first_cancel[0].is_set()
    assert owner.is_running("eval")
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
    assert results == ["new"]  # the first one's "old" was dropped
    assert partials == ["old partial", "new partial"]
    assert overlap == [False]  # the second started only once the first had ended
    assert not owner.is_running() and owner.threads() == 0


def test_a_newer_request_replaces_one_waiting_for_a_cancelled_task(qtbot, owner):
    gate = threading.Event()
    ran: list[str] = []

    def stubborn(_report, _cancel):  # ignores its cancel: finishes when the test says
        gate.wait(WAIT_MS / 1000)
        ran.append("stubborn")
        return "stubborn"

    def named(name: str):
        def work(_report, _cancel):
            ran.append(name)
            return name
        return work

    results: list[object] = []
    finished: list[bool] = []
    owner.start("load", stubborn, done=results.append)
    owner.start("load", named("second"), done=results.append)
    owner.start("load", named("third"), done=results.append,
                finished=lambda: finished.append(True))
    assert owner.threads() == 1  # only the stubborn one runs; one request waits
    gate.set()
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
    assert ran == ["stubborn", "third"] and results == ["third"]


def test_errors_partial_results_and_kinds_are_separate(qtbot, owner):
    def steps(report, _cancel):
        yield 1
        yield 2

    def bad(_report, _cancel):
        raise ValueError("not an amount")

    got: list[object] = []
    failures: list[str] = []
    ended: list[str] = []
    owner.start("sweep", steps, partial=got.append, finished=lambda: ended.append("sweep"))
    owner.start("apply", bad, failed=failures.append, expected=(ValueError,),
                finished=lambda: ended.append("apply"))
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=WAIT_MS)
    assert got == [1, 2] and failures == ["not an amount"]


def test_cancel_drops_results_and_calls_no_handler(qtbot, owner):
    gate = threading.Event()

    def slow(_report, _cancel):
        gate.wait(WAIT_MS / 1000)
        return "late"

    called: list[object] = []
    owner.start("export", slow, done=called.append, finished=lambda: called.append("end"))
    owner.cancel("export")
    assert not owner.is_running("export") and owner.threads() == 1
    gate.set()
    qtbot.waitUntil(lambda: owner.threads() == 0, timeout=WAIT_MS)
    assert called == []


def test_finished_workers_are_deleted(qtbot, owner):
    done: list[object] = []
    for i in range(3):
        owner.start(f"k{i}", lambda _r, _c, i=i: i, done=done.append)
    qtbot.waitUntil(lambda: owner.threads() == 0, timeout=WAIT_MS)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert sorted(done) == [0, 1, 2]
    assert owner.findChildren(TaskRunner) == []


def test_shutdown_cancels_and_waits_for_every_thread(qtbot):
    parent = QObject()
    jobs = JobRegistry()
    tasks = Tasks(parent, jobs)
    started = threading.Barrier(3, timeout=WAIT_MS / 1000)

    def wait_for_cancel(report, cancel):
        started.wait()
        return until_cancelled(report, cancel)

    seen: list[object] = []
    for kind in ("a", "b"):
        tasks.start(kind, wait_for_cancel, done=seen.append)
    started.wait()
    assert sorted(jobs.names()) == ["workbench-a", "workbench-b"]
    tasks.shutdown()
    assert tasks.threads() == 0 and not tasks.is_running() and len(jobs) == 0
    QCoreApplication.processEvents()
    assert seen == []  # cancelled by the shutdown: stale


def test_stop_ends_a_task_early_and_still_delivers_its_result(qtbot, owner):
    def until_stopped(report, cancel):
        report("started")
        cancel.wait(WAIT_MS / 1000)
        return "stopped early" if cancel.is_set() else "timed out"

    got: list[object] = []
    partials: list[object] = []
    owner.start("apply", until_stopped, done=got.append, partial=partials.append)
    qtbot.waitUntil(lambda: bool(partials), timeout=WAIT_MS)
    owner.stop("apply")
    qtbot.waitUntil(lambda: not owner.is_running("apply"), timeout=WAIT_MS)
    assert got == ["stopped early"]


def test_cycles_are_collected_on_the_gui_thread_only(qtbot):
    """As in the app, the cyclic collector runs from a GUI-thread timer: a worker that
    allocates a lot never frees a Qt object (on a worker that can deadlock with a paint)."""
    import gc
    import threading

    from PySide6.QtCore import QObject

    assert not gc.isenabled()
    freed_on: list[bool] = []

    class Cyclic(QObject):
        def __del__(self) -> None:
            freed_on.append(threading.current_thread() is threading.main_thread())

    # The GUI-thread collector, like the automatic one, collects once more objects were made
    # than freed since the last collection (the first threshold): these alone pass it.
    made = gc.get_threshold()[0] + 1
    for _ in range(made):
        item = Cyclic()
        item.me = item  # only the cyclic collector can free it
    del item

    def allocate() -> None:  # what would trigger a collection on this thread
        kept = [[[], {}] for _ in range(100_000)]
        assert len(kept) == 100_000

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(freed_on) == made, timeout=10_000)
    assert all(freed_on)
