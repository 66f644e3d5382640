"""The training thread adapter: events arrive on the GUI thread, control works, threads end."""

from __future__ import annotations

import threading

import pytest
import torch
from PySide6.QtCore import QCoreApplication
from trainer_probe import parked_in_pause  # noqa: E402

from workbench import spec as specmod
from workbench.core.training.events import Progress, RunFailed, RunFinished, RunStarted
from workbench.core.training.threads import automatic_threads
from workbench.core.workspace import Workspace
from workbench.gui.threads.worker import TaskRunner, ThreadWorker, TrainRunner

WAIT_MS = 60_000


def _spec(epochs: int = 3, **optim) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "worker",
        "data": {"name": "moons", "samples": 400, "noise": 0.1},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.02, **optim},
        "train": {"epochs": epochs, "batch_size": 16, "seed": 0},
    })


@pytest.fixture
def runners(tmp_path):
    """Makes runners that record their events; every thread must have ended at teardown."""
    made: list[TrainRunner] = []

    def make(spec: specmod.ExperimentSpec | None = None, trainer=None) -> TrainRunner:
        runner = (TrainRunner(trainer) if trainer is not None
                  else TrainRunner.for_spec(spec or _spec(), Workspace(tmp_path / "runs")))
        runner.events = []
        runner.errors = []
        runner.trainEvent.connect(runner.events.append)
        runner.errored.connect(lambda message, trace: runner.errors.append((message, trace)))
        made.append(runner)
        return runner

    yield make
    leaked = [r for r in made if r.is_running()]
    for runner in leaked:
        runner.stop_and_wait(WAIT_MS)
    assert not leaked, "a test left a training thread running"
    assert all(r.ended() or not r._started for r in made)


def test_trains_to_the_end_on_a_thread(qtbot, runners):
    runner = runners()
    gui_thread = threading.get_ident()
    seen_on = set()
    runner.trainEvent.connect(lambda _e: seen_on.add(threading.get_ident()))
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        runner.start()
    assert seen_on == {gui_thread}  # queued to the GUI thread
    assert isinstance(runner.events[0], RunStarted)
    assert isinstance(runner.events[-1], RunFinished) and not runner.events[-1].stopped
    assert runner.events[-1].epochs == 3
    assert runner.errors == []
    assert not runner.is_running()
    with pytest.raises(RuntimeError):
        runner.start()


def test_pause_holds_progress_until_resume(qtbot, runners):
    runner = runners(_spec(epochs=4))

    def pause_on_first_progress(event):
        if isinstance(event, Progress) and not runner.paused and not resumed:
            runner.pause()

    resumed = False
    runner.trainEvent.connect(pause_on_first_progress)
    runner.start()
    qtbot.waitUntil(lambda: runner.paused, timeout=WAIT_MS)
    qtbot.waitUntil(parked_in_pause, timeout=WAIT_MS)
    QCoreApplication.processEvents()  # deliver whatever was emitted before it parked
    held = [e.global_step for e in runner.events if isinstance(e, Progress)]
    weights = [p.detach().clone() for p in runner.trainer.model.parameters()]
    for _ in range(5):
        QCoreApplication.processEvents()
    assert [e.global_step for e in runner.events if isinstance(e, Progress)] == held
    assert all(torch.equal(a, b) for a, b in
               zip(weights, runner.trainer.model.parameters(), strict=True))
    assert runner.is_running()
    resumed = True
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        runner.resume()
    steps = [e.global_step for e in runner.events if isinstance(e, Progress)]
    assert steps[len(held)] > held[-1]  # it went on from where it stood
    assert steps == sorted(steps) and steps[-1] == runner.events[-1].epochs * steps_per(runner)
    assert isinstance(runner.events[-1], RunFinished) and not runner.events[-1].stopped


def steps_per(runner: TrainRunner) -> int:
    return runner.events[0].steps_per_epoch


def test_stop_mid_run_ends_the_thread(qtbot, runners):
    runner = runners(_spec(epochs=500))
    runner.trainEvent.connect(lambda e: isinstance(e, Progress) and runner.stop())
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        runner.start()
    last = runner.events[-1]
    assert isinstance(last, RunFinished) and last.stopped and last.epochs < 500
    assert runner.ended()


def test_stop_while_paused(qtbot, runners):
    runner = runners(_spec(epochs=500))
    runner.trainEvent.connect(lambda e: isinstance(e, Progress) and runner.pause())
    runner.start()
    qtbot.waitUntil(parked_in_pause, timeout=WAIT_MS)
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        runner.stop()
    assert isinstance(runner.events[-1], RunFinished) and runner.events[-1].stopped


def test_stop_and_wait_blocks_until_the_thread_ends(qtbot, runners):
    runner = runners(_spec(epochs=500))
    with qtbot.waitSignal(runner.trainEvent, timeout=WAIT_MS,
                          check_params_cb=lambda e: isinstance(e, Progress)):
        runner.start()
    assert runner.stop_and_wait(WAIT_MS)
    assert not runner.is_running()
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        pass  # the queued end arrives once the GUI thread runs again
    assert isinstance(runner.events[-1], RunFinished) and runner.events[-1].stopped


def test_failed_run_arrives_as_an_event(qtbot, runners):
    bad = specmod.from_dict({**_spec().to_dict(),
                             "model": {"layers": [{"type": "Conv2d", "out": 4}]}})
    runner = runners(bad)
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        runner.start()
    assert isinstance(runner.events[-1], RunFailed)
    assert runner.events[-1].reason and runner.events[-1].hint
    assert runner.errors == []


class _Exploding:
    """Stands in for a trainer whose loop raises: a bug must reach the GUI, not vanish."""

    paused = False

    def events(self):
        yield RunFailed(None, "first", "hint")
        raise RuntimeError("boom in the loop")

    def stop(self) -> None:
        """Nothing to stop."""

    def pause(self) -> None:
        """Nothing to pause."""

    def resume(self) -> None:
        """Nothing to resume."""


def test_worker_exception_is_reported(qtbot, runners, caplog):
    runner = runners(trainer=_Exploding())
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        runner.start()
    assert len(runner.events) == 1
    (message, trace), = runner.errors
    assert message == "RuntimeError: boom in the loop"
    assert "Traceback" in trace and "boom in the loop" in trace
    assert "boom in the loop" in caplog.text


def test_a_run_from_the_app_leaves_the_thread_count_to_the_spec(tmp_path):
    """No count forced over the spec's: the trainer takes train.threads, else the physical
    cores but one (tests/test_threads.py)."""
    runner = TrainRunner.for_spec(specmod.ExperimentSpec(), Workspace(tmp_path))
    assert runner.trainer is not None and runner.trainer.threads is None
    assert automatic_threads() >= 1


def test_thread_worker_cancels_a_generator_between_items(qtbot):
    """The generic adapter: a yield is a queued signal; cancel ends the generator at the next
    item and runs its `finally`; the worker runs once."""
    closed = threading.Event()

    def count(_emit, cancel):
        try:
            for i in range(1_000_000):
                if i == 3:
                    cancel.set()  # as the GUI's stop() would, between two items
                yield i
        finally:
            closed.set()

    worker = ThreadWorker(count, name="test-generator")
    seen: list[object] = []
    worker.yielded.connect(seen.append)
    with qtbot.waitSignal(worker.finished, timeout=WAIT_MS):
        worker.start()
    assert seen == [0, 1, 2, 3] and closed.is_set() and not worker.is_running()
    with pytest.raises(RuntimeError, match="runs once"):
        worker.start()


def test_task_runner_reports_progress_result_and_expected_errors(qtbot):
    def task(report, _cancel):
        report("half")
        return 42

    ok = TaskRunner(task)
    got: list[object] = []
    ok.progressed.connect(got.append)
    ok.succeeded.connect(got.append)
    with qtbot.waitSignal(ok.finished, timeout=WAIT_MS):
        ok.start()
    assert got == ["half", 42]

    def bad(_report, _cancel):
        raise ValueError("not a pruning amount")

    failing = TaskRunner(bad, expected=(ValueError,))
    with qtbot.waitSignal(failing.failed, timeout=WAIT_MS) as failed:
        failing.start()
    qtbot.waitUntil(lambda: not failing.is_running())
    assert failed.args == ["not a pruning amount"]
