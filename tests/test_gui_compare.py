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
    table.sortItems(2, Qt.SortOrder.AscendingOrder)  # best val acc, lowest first
    accs = [float(table.item(r, 2).text().rstrip("%")) for r in range(4)]
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
