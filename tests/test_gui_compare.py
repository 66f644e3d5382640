"""The Compare panel and the optimizer playground, driven as a person would, with screenshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.core.tools.surfaces import SURFACES, trajectory  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.tools.compare.panel import ComparePanel  # noqa: E402
from workbench.gui.tools.compare.presenter import COLUMNS  # noqa: E402
from workbench.gui.tools.playground.panel import PlaygroundPanel  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "screenshots"


def moons_spec() -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "moons-mlp",
        "data": {"name": "moons", "samples": 600, "noise": 0.2},
        "model": {"layers": [{"type": "Linear", "out": 32}, {"type": "Tanh"},
                             {"type": "Linear", "out": 32}, {"type": "Tanh"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": 8, "batch_size": 32, "seed": 0},
    })


def shoot(widget, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / name
    assert widget.grab().save(str(path))
    return path


@pytest.fixture
def panel(qtbot, tmp_path):
    p = ComparePanel(moons_spec, Workspace(tmp_path / "runs"))
    qtbot.addWidget(p)
    p.resize(1500, 860)
    p.show()
    yield p
    p.shutdown()


def test_compare_panel_races_four_optimizers(qtbot, panel, tmp_path):
    panel.set_optimizers({"sgd": 0.1, "momentum": 0.05, "adam": 0.01, "rmsprop": 0.005})
    panel.set_field("(nothing)", "")
    with qtbot.waitSignal(panel.comparisonFinished, timeout=120_000):
        panel.run()
    assert not panel.is_running()
    rows = panel.rows()
    assert [r.label for r in rows] == ["sgd", "momentum", "adam", "rmsprop"]
    assert all(r.status == "finished" and r.best_val_accuracy > 0.8 for r in rows)
    assert len({r.first_batch_loss for r in rows}) == 1
    table = panel.results_table
    assert table.rowCount() == 4
    assert [table.item(r, 0).text() for r in range(4)] == [r.label for r in rows]  # raced
    best = COLUMNS.index("best val acc")
    table.sortItems(best, Qt.SortOrder.AscendingOrder)  # best val acc, lowest first
    accs = [float(table.item(r, best).text().rstrip("%")) for r in range(4)]
    assert accs == sorted(accs)
    for key, plot in panel.curves_page.plots.items():
        drawn = [item for item in plot.listDataItems() if item.xData is not None]
        assert len(drawn) == 4, key
    assert not panel._timer.isActive()  # nothing runs: nothing redraws
    shoot(panel, "compare_panel_curves.png")
    panel.curves_page.x_combo.setCurrentText("time")
    qtbot.waitUntil(lambda: not panel._timer.isActive())
    page = panel.curves_page
    for curves, lines in zip(panel.curves, page.lines, strict=True):  # fed again against time
        assert list(lines["train_loss"].series.x) == curves.steps["elapsed"]
        assert list(lines["val_accuracy"].series.x) == curves.epochs["elapsed"]
    panel.tabs.setCurrentIndex(1)
    shoot(panel, "compare_panel_results.png")

    panel.tabs.setCurrentIndex(2)
    panel.landscape.center_combo.setCurrentIndex(2)
    panel.landscape.directions_combo.setCurrentIndex(1)  # principal directions: the paths show
    panel.landscape.resolution_spin.setValue(15)
    with qtbot.waitSignal(panel.landscapeReady, timeout=120_000):
        panel.compute_landscape()
    qtbot.waitUntil(lambda: not panel.tasks.is_running("landscape"))
    assert len(panel.landscape.paths) == 4
    shoot(panel, "compare_panel_landscape.png")

    saved = sorted((tmp_path / "runs" / "comparisons").glob("*.json"))
    assert len(saved) == 1
    reopened = ComparePanel(moons_spec, Workspace(tmp_path / "runs"))
    qtbot.addWidget(reopened)
    with qtbot.waitSignal(reopened.runsRead, timeout=60_000):  # read off the GUI thread
        reopened.open_comparison(saved[0])
    again = reopened.rows()
    assert [(r.label, r.best_val_accuracy) for r in again] == [
        (r.label, r.best_val_accuracy) for r in rows]
    reopened.shutdown()


def test_compare_panel_adds_past_runs_and_refuses_bad_input(qtbot, panel, tmp_path):
    panel.set_optimizers({})
    panel.set_field("optim.lr", "0.1, 1e6")
    with qtbot.waitSignal(panel.comparisonFinished, timeout=60_000):
        panel.run()
    rows = panel.rows()
    assert [r.diverged for r in rows] == [False, True]
    past = rows[0].run_dir
    panel.clear()
    with qtbot.waitSignal(panel.runsRead, timeout=60_000):
        panel.add_runs([past, str(tmp_path / "nowhere")])
    assert [r.run_dir for r in panel.rows()] == [past]
    assert "Skipped" in panel.status.text()
    panel.set_field("optim.lr", "-1")
    before = len(panel.comparison.variants)
    panel.run()
    assert "optim.lr" in panel.status.text() and len(panel.comparison.variants) == before
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with qtbot.waitSignal(panel.runsRead, timeout=60_000):
        panel.open_comparison(bad)
    assert "Cannot open" in panel.status.text() and len(panel.comparison.variants) == before


def test_playground_animates_real_optimizer_paths(qtbot):
    p = PlaygroundPanel()
    qtbot.addWidget(p)
    p.resize(1500, 720)
    p.show()
    assert p.surface.name == "rosenbrock"
    assert p.chosen() == ["sgd", "momentum", "adam", "rmsprop"]
    p.set_start((-1.5, 2.5))
    qtbot.waitUntil(lambda: p.shown > 1)  # the animation runs
    p.finish()
    for name in p.chosen():
        want = trajectory(SURFACES["rosenbrock"].fn, (-1.5, 2.5), name, p.hyperparams(name),
                          p.steps_spin.value())
        np.testing.assert_array_equal(p.trajectories[name].points, want.points)
        x, y = p.paths[name].getData()
        assert len(x) == len(want.points) and x[-1] == want.points[-1, 0]
    shoot(p, "playground_rosenbrock.png")

    # a click on the map moves the start there
    vb = p.map.plotItem.vb
    target = vb.mapViewToScene(QPointF(0.5, -0.5))
    view_pos = p.map.mapFromScene(target)
    qtbot.mouseClick(p.map.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    assert p.start == pytest.approx((0.5, -0.5), abs=0.05)

    p.set_surface("bowl")
    p.finish()
    assert p.trajectories["momentum"].losses[-1] < p.trajectories["sgd"].losses[-1]
    shoot(p, "playground_bowl.png")
    p.close()


def test_a_variant_that_raises_shows_as_failed_with_its_error(qtbot, panel, monkeypatch):
    """A bug in one variant's set-up: that variant fails with its error in its row and in the
    status line, the others finish, and "Done; saved as ..." no longer hides the failure."""
    from workbench.core.tools.compare import ComparisonRunner

    real = ComparisonRunner._trainer

    def trainer(runner, index):
        if runner.variants[index].spec.optim.name == "momentum":
            raise RuntimeError("boom in the set-up")
        return real(runner, index)

    monkeypatch.setattr(ComparisonRunner, "_trainer", trainer)
    panel.set_optimizers({"sgd": None, "momentum": None, "adam": None})
    panel.set_field("(nothing)", "")
    with qtbot.waitSignal(panel.comparisonFinished, timeout=120_000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    rows = {r.label: r for r in panel.rows()}
    assert rows["momentum"].status == "failed"
    assert "boom in the set-up" in rows["momentum"].reason
    assert rows["sgd"].status == rows["adam"].status == "finished"
    text = panel.status.text()
    assert "momentum failed: RuntimeError: boom in the set-up" in text, text
    assert not text.startswith("Done;") and "Saved as" in text
    panel.tabs.setCurrentWidget(panel.results_table)
    table = panel.results_table
    cells = {table.item(r, 0).text(): table.item(r, 1) for r in range(table.rowCount())}
    assert "boom in the set-up" in cells["momentum"].text()
    assert "boom in the set-up" in cells["momentum"].toolTip()
    shoot(panel, "compare_panel_failed_variant.png")


def test_each_optimizer_races_at_the_experiments_rate_unless_given_its_own(qtbot, panel):
    """The default race: the experiment as it is, each optimizer at its rate (0.1 here);
    a rate typed for one optimizer is its own, shown in the form and in the results."""
    spec = moons_spec().with_value("train.epochs", 2)
    panel.get_spec = lambda: spec
    panel.sync_rates()
    ticked = panel.chosen_optimizers()
    assert set(ticked) == {"sgd", "momentum", "adam", "rmsprop"}  # the default ticks
    assert all(rate is None for rate in ticked.values())  # none set: the experiment's
    assert all(panel.optim_lrs[n].value() == 0.1 for n in ticked)
    assert "italic" in panel.optim_lrs["adam"].styleSheet() and "0.1" in panel.rate_note.text()
    panel.optim_lrs["adam"].setValue(0.01)  # typed by the person: adam's own
    assert panel.chosen_optimizers()["adam"] == 0.01
    assert panel.optim_lrs["adam"].styleSheet() == ""  # its own: shown as any value
    spec = spec.with_value("optim.lr", 0.05)  # the experiment changes: the others follow
    panel.sync_rates()
    assert panel.optim_lrs["sgd"].value() == 0.05 and panel.optim_lrs["adam"].value() == 0.01
    with qtbot.waitSignal(panel.comparisonFinished, timeout=120_000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    rates = {v.label: v.spec.optim.lr for v in panel.comparison.variants}
    assert rates == {"sgd": 0.05, "momentum": 0.05, "adam": 0.01, "rmsprop": 0.05}
    for variant in panel.comparison.variants:  # only the optimizer and its rate changed
        same = variant.spec.with_value("optim.name", "sgd").with_value("optim.lr", 0.05)
        assert same.with_value("name", spec.name) == spec
    table = panel.results_table
    column = COLUMNS.index("learning rate")
    shown = {table.item(r, 0).text(): table.item(r, column).text()
             for r in range(table.rowCount())}
    assert shown == {"sgd": "0.05", "momentum": "0.05", "adam": "0.01", "rmsprop": "0.05"}
    panel.reset_rates()
    assert panel.chosen_optimizers()["adam"] is None and panel.optim_lrs["adam"].value() == 0.05


def test_compare_reads_and_writes_no_file_on_the_gui_thread(qtbot, panel, tmp_path,
                                                            monkeypatch):
    """Runs' summaries and specs are read, and comparisons written, by the panel's tasks:
    the redraw timer read each variant's summary, and Save wrote on the GUI thread."""
    import threading

    from workbench.core.store import atomic
    from workbench.core.store.runs import Run

    on_gui: list[str] = []
    gui = threading.main_thread()

    def watch(name, real):
        def wrapper(*args, **kwargs):
            if threading.current_thread() is gui:
                on_gui.append(name)
            return real(*args, **kwargs)
        return wrapper

    panel.set_optimizers({"sgd": None})
    panel.set_field("optim.lr", "0.1, 0.05")
    with qtbot.waitSignal(panel.comparisonFinished, timeout=120_000):
        panel.run()
    past = [v.run_dir for v in panel.comparison.variants]
    monkeypatch.setattr(Run, "summary", watch("summary", Run.summary))
    monkeypatch.setattr(Run, "spec", watch("spec", Run.spec))
    monkeypatch.setattr(atomic, "write_text_atomic", watch("write", atomic.write_text_atomic))
    from workbench.core.tools.compare import files
    monkeypatch.setattr(files, "write_text_atomic", watch("write", files.write_text_atomic))
    panel.clear()
    with qtbot.waitSignal(panel.runsRead, timeout=60_000):
        panel.add_runs(past)
    panel._redraw()  # what the timer does
    with qtbot.waitSignal(panel.saved, timeout=60_000):
        panel.save(tmp_path / "kept.json")
    assert (tmp_path / "kept.json").is_file()
    panel.set_field("optim.lr", "0.2")
    with qtbot.waitSignal(panel.comparisonFinished, timeout=120_000):
        panel.run()
    panel._redraw()
    assert on_gui == []
