"""The training panel, driven as a person would: Train, Pause, Resume, Stop, a failing run,
stored runs; plus screenshots of the panel and its views after real runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication
from trainer_probe import parked_in_pause  # noqa: E402

from workbench import spec as specmod
from workbench.core.training.events import Progress, RunFailed, RunFinished
from workbench.core.workspace import Workspace
from workbench.gui.demo import example_spec
from workbench.gui.train.train_panel import TrainPanel, format_seconds
from workbench.spec import SpecError

WAIT_MS = 120_000
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"


def _spec(epochs: int = 4, data: str = "moons", **optim) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "panel",
        "data": {"name": data, "samples": 400, "noise": 0.1},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.02, **optim},
        "train": {"epochs": epochs, "batch_size": 16, "seed": 0},
    })


def _mnist_mlp() -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "mnist-small-mlp",
        "data": {"name": "mnist_small", "val_fraction": 0.1},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 64},
                             {"type": "ReLU"}, {"type": "Linear", "out": 10}]},
        "optim": {"name": "adam", "lr": 0.002},
        "train": {"epochs": 1, "batch_size": 64, "seed": 0},
    })


class Holder:
    """What the main window's experiment model would hand the panel."""

    def __init__(self, spec: specmod.ExperimentSpec) -> None:
        self.spec = spec

    def __call__(self) -> specmod.ExperimentSpec:
        return self.spec


@pytest.fixture
def holder() -> Holder:
    return Holder(_spec())


@pytest.fixture
def panel(qtbot, tmp_path, holder):
    """A shown panel; at teardown no training thread may be left running."""
    p = TrainPanel(holder, Workspace(tmp_path / "runs"))
    qtbot.addWidget(p)
    p.resize(1100, 760)
    p.show()
    qtbot.waitExposed(p)
    ended: list = []
    p.runEnded.connect(ended.append)
    p.ended = ended
    yield p
    leaked = p.is_running()
    p.stop_and_wait()
    assert not leaked, "a test left a training thread running"
    assert p.runner is None or p.runner.ended()


def _train(qtbot, panel: TrainPanel):
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as blocker:
        assert panel.start()
    return blocker.args[0]


def _shot(widget, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / name
    QCoreApplication.processEvents()
    assert widget.grab().save(str(path))
    return path


def test_trains_to_the_end_and_shows_everything(qtbot, panel):
    end = _train(qtbot, panel)
    assert isinstance(end, RunFinished) and not end.stopped
    assert not panel.is_running()
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.curves.point_count("train_loss") >= 4
    assert panel.curves.point_count("val_loss") == 4
    assert panel.health.count >= 1 and panel.boundary.count >= 1
    assert panel.results.confusion.sum() == panel.started.test_size
    assert panel.progress.value() == panel.progress.maximum()
    assert not panel.banner.isVisible()
    assert panel.ended == [end]


def test_pause_holds_progress_and_resume_finishes(qtbot, panel, holder):
    holder.spec = _spec(epochs=6)
    panel.start()
    panel.pause_button.click()  # before the first step: the loop parks at its first check
    qtbot.waitUntil(lambda: panel.started is not None, timeout=WAIT_MS)
    qtbot.waitUntil(parked_in_pause, timeout=WAIT_MS)
    QCoreApplication.processEvents()
    assert panel.status.text() == "Paused"
    assert panel.pause_button.isEnabled() and panel.pause_button.text() == "Continue"
    assert not hasattr(panel, "resume_button")  # one Resume in the app: the Runs list's
    held = (panel.progress.value(), panel.curves.point_count("train_loss"))
    for _ in range(5):
        QCoreApplication.processEvents()
    assert (panel.progress.value(), panel.curves.point_count("train_loss")) == held
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as blocker:
        panel.pause_button.click()  # Continue
    assert isinstance(blocker.args[0], RunFinished) and not blocker.args[0].stopped
    assert panel.curves.point_count("val_loss") == 6


def test_stop_mid_run(qtbot, panel, holder):
    holder.spec = _spec(epochs=500)
    stop_once = []

    def stop_on_progress(event):
        if isinstance(event, Progress) and not stop_once:
            stop_once.append(event)
            panel.stop_button.click()

    panel.runStarted.connect(lambda _e: panel.runner.trainEvent.connect(stop_on_progress))
    end = _train(qtbot, panel)
    assert isinstance(end, RunFinished) and end.stopped and end.epochs < 500
    assert panel.status.text().startswith("Stopped")
    assert panel.runner.ended()
    assert panel.results.confusion.sum() == panel.started.test_size


def test_a_run_stopped_partway_says_how_far_and_its_resume_keeps_its_curves(qtbot, panel,
                                                                            holder):
    """Stopped partway into epoch 1, the panel says how far ("Stopped after 0 epochs" was all
    it said); resumed, the view names the run and its curves hold the whole history, the
    points from before the stop included, each step once (they restarted at the resume)."""
    holder.spec = _spec(epochs=2)
    holder.spec.data.samples = 20_000  # epochs long enough to stop inside the first
    stop_once = []

    def stop_on_progress(event):
        if isinstance(event, Progress) and not stop_once:
            stop_once.append(event)
            panel.stop_button.click()

    panel.runStarted.connect(lambda _e: panel.runner.trainEvent.connect(stop_on_progress))
    end = _train(qtbot, panel)
    assert isinstance(end, RunFinished) and end.stopped and end.epochs == 0
    assert re.fullmatch(r"Stopped after (<1|\d+)% into epoch 1", panel.progress.format())
    before = panel.curves.series["train_loss"].x.copy()
    assert len(before) >= 1
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as resumed:
        assert panel.resume_stored(end.run_dir)
    assert isinstance(resumed.args[0], RunFinished) and not resumed.args[0].stopped
    assert panel.run_label.text() == f"panel ({Path(end.run_dir).name[-6:]})"
    xs = panel.curves.series["train_loss"].x
    assert xs[0] == before[0]  # the earlier process's points, first
    assert np.all(np.diff(xs) > 0)  # each step once: none repeated at the resume
    assert xs[-1] == pytest.approx(2.0, abs=0.05)
    assert panel.curves.point_count("val_loss") == 2
    assert panel.progress.format() == "Finished after 2 epochs"


def test_nan_run_shows_the_banner_and_the_next_run_works(qtbot, panel, holder, tmp_path):
    first = _train(qtbot, panel)
    holder.spec = _spec(epochs=3, name="sgd", lr=1e6)
    failed = _train(qtbot, panel)
    assert isinstance(failed, RunFailed)
    assert panel.banner.isVisible()
    assert "nan" in panel.banner.text.text().lower()
    assert "lower the learning rate" in panel.banner.text.text()
    assert panel.status.text() == "Failed"
    _shot(panel, "train_panel_failed.png")
    assert panel.train_button.isEnabled()
    assert (Path(first.run_dir) / "model.pt").exists()  # the earlier run is untouched
    holder.spec = _spec(epochs=2)
    again = _train(qtbot, panel)
    assert isinstance(again, RunFinished)
    assert not panel.banner.isVisible()


def test_blocked_and_bad_spec(qtbot, panel, holder):
    panel.set_blocked("layer 3 expects 4 inputs, gets 2")
    assert not panel.train_button.isEnabled()
    assert panel.blocked_label.isVisible() and "layer 3" in panel.blocked_label.text()
    assert not panel.start()
    panel.set_blocked(None)
    assert panel.train_button.isEnabled() and not panel.blocked_label.isVisible()

    def broken():
        raise SpecError("optim.lr", "must be positive")

    panel.get_spec = broken
    assert not panel.start()
    assert panel.banner.isVisible() and "optim.lr" in panel.banner.text.text()
    assert not panel.is_running()


def test_setup_failure_reported(qtbot, panel, holder):
    holder.spec = specmod.from_dict({**_spec().to_dict(),
                                     "model": {"layers": [{"type": "Conv2d", "out": 4}]}})
    end = _train(qtbot, panel)
    assert isinstance(end, RunFailed) and panel.banner.isVisible()
    assert panel.train_button.isEnabled()


def test_stop_and_wait_for_closing(qtbot, panel, holder):
    holder.spec = _spec(epochs=500)
    with qtbot.waitSignal(panel.runStarted, timeout=WAIT_MS):
        panel.start()
    assert panel.is_running()
    panel.stop_and_wait()
    assert not panel.is_running()
    assert isinstance(panel.ended[-1], RunFinished) and panel.ended[-1].stopped


def test_show_stored_run(qtbot, panel):
    end = _train(qtbot, panel)
    panel.curves.clear()
    panel.results.clear()
    with qtbot.waitSignal(panel.runShown, timeout=20_000):  # read off the GUI thread
        assert panel.show_run(end.run_dir)
    assert panel.curves.point_count("val_loss") == 4
    assert panel.curves.point_count("train_loss") >= 4
    assert "Test accuracy" in panel.results.headline.text()
    assert panel.results.confusion.sum() == panel.started.test_size  # stored with the run
    with qtbot.waitSignal(panel.showFailed, timeout=20_000):
        panel.show_run(str(Path(end.run_dir).parent / "no-such-run"))
    assert "Cannot show" in panel.status.text()
    assert panel.curves.point_count("val_loss") == 4  # changed nothing


def test_screenshots_spirals(qtbot, panel, holder):
    spec = example_spec().with_value("train.epochs", 40)
    holder.spec = spec
    grabbed = []

    def grab_mid_run(event):
        if getattr(event, "epoch", None) == 12 and not grabbed and hasattr(event, "val_loss"):
            panel.curves.redraw()
            grabbed.append(_shot(panel, "train_panel_running.png"))

    panel.runStarted.connect(lambda _e: panel.runner.trainEvent.connect(grab_mid_run))
    end = _train(qtbot, panel)
    assert isinstance(end, RunFinished) and grabbed
    assert end.test_accuracy > 0.9
    _shot(panel, "train_panel_done.png")
    panel.tabs.setCurrentWidget(panel.boundary)
    _shot(panel, "boundary_spirals.png")
    assert panel.boundary.latest.global_step == panel.started.epochs * \
        panel.started.steps_per_epoch
    panel.tabs.setCurrentWidget(panel.health)
    _shot(panel, "health_view.png")
    panel.tabs.setCurrentWidget(panel.results)
    _shot(panel, "results_spirals.png")
    assert panel.results.mistakes.currentWidget() is panel.results.points_page \
        or not end.misclassified


def test_screenshot_results_mnist_small(qtbot, panel, holder):
    holder.spec = _mnist_mlp()
    end = _train(qtbot, panel)
    assert isinstance(end, RunFinished) and end.test_accuracy > 0.8
    counts = panel.results.confusion
    assert counts.shape == (10, 10) and counts.sum() == 1000 == panel.started.test_size
    assert np.trace(counts) == round(end.test_accuracy * 1000)
    assert panel.results.thumbs.count() == min(100, 1000 - np.trace(counts))
    panel.tabs.setCurrentWidget(panel.results)
    _shot(panel, "results_mnist_small.png")
    panel.tabs.setCurrentWidget(panel.health)
    _shot(panel, "health_mnist_small.png")
    assert not panel.tabs.isTabEnabled(panel.tabs.indexOf(panel.boundary))


def test_format_seconds():
    assert format_seconds(5) == "0:05"
    assert format_seconds(3725) == "1:02:05"


class _Exploding:
    """Stands in for a trainer whose loop raises: the panel must say so, not hang or vanish."""

    paused = False
    data = None

    def events(self):
        raise RuntimeError("boom in the loop")
        yield  # a generator, like Trainer.events

    def stop(self) -> None:
        """Nothing to stop."""

    def pause(self) -> None:
        """Nothing to pause."""

    def resume(self) -> None:
        """Nothing to resume."""


def test_worker_exception_shows_in_the_banner(qtbot, panel, monkeypatch):
    from workbench.gui.train import train_panel

    monkeypatch.setattr(train_panel.TrainRunner, "for_spec",
                        classmethod(lambda cls, *a, **k: cls(_Exploding())))
    end = _train(qtbot, panel)
    assert isinstance(end, RunFailed) and "boom in the loop" in end.reason
    assert panel.banner.isVisible() and "bug in Workbench" in panel.banner.text.text()
    assert panel.train_button.isEnabled() and not panel.is_running()


def test_views_with_many_classes_and_regression(qtbot):
    from workbench.core.training.events import Boundary
    from workbench.gui.views.boundary import BoundaryView
    from workbench.gui.views.results import ResultsView

    view = BoundaryView()
    qtbot.addWidget(view)
    x = np.random.default_rng(0).normal(size=(40, 2))
    view.set_points(x, np.arange(40) % 4, ("a", "b", "c", "d"))
    probs = np.tile(np.arange(4.0), (8, 2))  # an 8 x 8 grid of predicted classes
    view.set_boundary(Boundary(5, (-2.0, 2.0, -1.0, 1.0), probs))
    assert view.image.image.shape == (8, 8) and view.count == 1
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.left() < -2.0 and rect.right() > 2.0  # half a cell past the extent

    results = ResultsView()
    qtbot.addWidget(results)
    results.show_result(RunFinished("", False, False, 3, 1.0, 0.0123, None, None), None, ())
    assert results.headline.text() == "Test MSE 0.0123"
    assert results.confusion.size == 0 and results.matrix_box.isHidden()


def test_a_finished_run_lets_go_of_its_trainer_and_the_next_reuses_the_cached_data(qtbot,
                                                                                  panel):
    import gc
    import weakref

    trainers: list[weakref.ref] = []
    panel.runStarted.connect(lambda _e: trainers.append(weakref.ref(panel.runner.trainer)))
    first = _train(qtbot, panel)
    assert isinstance(first, RunFinished) and trainers
    gc.collect()
    assert trainers[0]() is None, "the finished Trainer (data, model, optimizer) is still held"
    assert panel.data is None and len(panel.workspace.jobs) == 0
    second = _train(qtbot, panel)
    assert isinstance(second, RunFinished)
    stats = panel.workspace.data.stats()
    assert stats["loads"] == 1 and stats["hits"] == 1  # the second run's data came cached


def test_a_run_that_did_not_learn_is_flagged_where_a_person_looks(qtbot, panel, holder):
    """SGD at rate 10 kills the ReLUs and collapses to one class: the run 'finishes', and the
    panel says plainly that it did not learn (banner, status, results, Runs list), and the
    health warning shows on the Health tab and in the banner while it trains."""
    from workbench.gui.shell.run_history import RunHistory

    holder.spec = _spec(epochs=2, name="sgd", lr=10.0)
    health_warnings = []
    panel.runStarted.connect(lambda _e: panel.runner.trainEvent.connect(
        lambda e: getattr(e, "warning", None) and health_warnings.append(panel.notice.kind)))
    end = _train(qtbot, panel)
    assert isinstance(end, RunFinished) and end.summary["verdict"] == "suspect"
    assert health_warnings and health_warnings[0] == "health"  # shown while it trains
    assert "\u26a0" in panel.tabs.tabText(panel.tabs.indexOf(panel.health))
    assert panel.notice.isVisible() and panel.notice.kind == "outcome"
    assert "did not learn" in panel.notice.text.text()
    assert "collapsed to one answer" in panel.notice.text.text()
    assert "did not learn" in panel.status.text()
    results = panel.results
    assert not results.verdict.isHidden() and "Try:" in results.verdict.text()
    assert results.headline.text().endswith("suspect")
    history = RunHistory(panel.workspace.runs)
    qtbot.addWidget(history)
    qtbot.waitUntil(lambda: history.tree.topLevelItemCount() == 1, timeout=20_000)
    item = history.tree.topLevelItem(0)
    assert item.text(4).startswith("\u26a0") and "collapsed" in item.toolTip(4)
    _shot(panel, "train_panel_suspect.png")
    with qtbot.waitSignal(panel.runShown, timeout=20_000):
        assert panel.show_run(end.run_dir)  # a stored run says the same
    assert panel.notice.kind == "outcome" and not results.verdict.isHidden()
    holder.spec = _spec(epochs=3)
    good = _train(qtbot, panel)
    assert good.summary["verdict"] == "ok"
    assert panel.notice.isHidden() and results.verdict.isHidden()


def test_a_run_beside_another_job_says_what_they_share(qtbot, panel, holder):
    """PyTorch keeps the CPU thread count for the whole process: a run that starts while
    another job trains takes that job's count, and the panel says so, from the core's owner
    of those settings (workspace.process)."""
    from workbench.core.training.threads import automatic_threads

    holder.spec = _spec(epochs=200)
    other = automatic_threads() + 1  # what the job already running trains with
    with panel.workspace.process.threads(other):  # a job beside the run (a comparison, say)
        with qtbot.waitSignal(panel.runStarted, timeout=WAIT_MS) as started:
            panel.start()
        assert any("instead of" in note for note in started.args[0].shared)
        qtbot.waitUntil(lambda: "2 jobs share this process" in panel.shared_label.text(),
                        timeout=WAIT_MS)
        assert panel.shared_label.isVisible()
        assert f"This run trains with {other} CPU threads instead of" in \
            panel.shared_label.text()
        with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS):
            panel.stop()
    assert panel.shared_label.isHidden()
