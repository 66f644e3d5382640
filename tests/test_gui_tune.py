"""Find the learning rate, fork a run, search hyperparameters: from the optimizer panel, the
Tools menu and the tools' own buttons, as a person would, on small real data; screenshots."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QUndoStack  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.core.store.runs import Run, RunStore  # noqa: E402
from workbench.core.tools.fork import branch_of  # noqa: E402
from workbench.core.training.events import RunFinished  # noqa: E402
from workbench.core.training.loop import Trainer  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.document.experiment_model import ExperimentModel  # noqa: E402
from workbench.gui.editors.optim_panel import OptimPanel  # noqa: E402
from workbench.gui.shell.main_window import MainWindow  # noqa: E402
from workbench.gui.widgets import dialogs  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
WAIT_MS = 300_000


def moons(epochs: int = 4) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "moons-mlp",
        "data": {"name": "moons", "samples": 300, "noise": 0.15},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": epochs, "batch_size": 16, "seed": 0, "device": "cpu"},
    })


def shoot(widget, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    assert widget.grab().save(str(SHOTS / name))


class Warnings:
    """What the app said in message boxes; questions (unsaved changes when pytest-qt closes
    the window) are answered Discard."""

    def __init__(self, monkeypatch) -> None:
        self.said: list[str] = []
        self.asked: list[str] = []
        monkeypatch.setattr(dialogs, "warn", lambda _p, _t, text: self.said.append(text))
        monkeypatch.setattr(dialogs, "ask", self._ask)

    def _ask(self, _parent, _title, text, *args, **kwargs):
        self.asked.append(text)
        return dialogs.Button.Discard


@pytest.fixture
def warned(monkeypatch):
    return Warnings(monkeypatch)


@pytest.fixture
def window(qtbot, warned):
    win = MainWindow(moons())
    qtbot.addWidget(win)
    if win.train_panel is None:
        with qtbot.waitSignal(win.trainPanelReady, timeout=120_000):
            pass
    win.resize(1280, 800)
    win.show()
    yield win
    win.undo.setClean()
    win.close()
    assert not win.train_panel.is_running()


# -- the learning-rate finder ---------------------------------------------------------------


def test_find_button_runs_the_test_and_a_click_sets_the_rate_with_undo(qtbot):
    model, stack = ExperimentModel(moons()), QUndoStack()
    panel = OptimPanel(model, stack)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.find_lr_button.isEnabled()
    qtbot.mouseClick(panel.find_lr_button, Qt.MouseButton.LeftButton)
    dialog = panel.lr_dialog
    assert dialog is not None and dialog.isVisible()
    with qtbot.waitSignal(dialog.testFinished, timeout=WAIT_MS) as done:
        pass
    result = done.args[0]
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=WAIT_MS)
    assert dialog.curve.getData()[0] is not None and len(dialog.curve.getData()[0]) > 20
    assert dialog.min_line.isVisible() and dialog.use_min.isEnabled()
    shoot(dialog, "lr_find_dialog.png")
    qtbot.mouseClick(dialog.use_min, Qt.MouseButton.LeftButton)
    expected = float(f"{result.min_over_10:.3g}")
    assert model.live.optim.lr == expected
    assert panel.lr.value() == pytest.approx(expected)
    assert stack.count() == 1
    stack.undo()
    assert model.live.optim.lr == 0.01
    dialog.close()
    assert not dialog.is_running()


def test_find_learning_rate_from_the_tools_menu_and_a_bad_network(qtbot, window):
    window.actions["lr_find"].trigger()
    dialog = window.tools.get("lr_find")
    with qtbot.waitSignal(dialog.testFinished, timeout=WAIT_MS):
        pass
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=WAIT_MS)
    assert dialog.use_steep.isEnabled()
    qtbot.mouseClick(dialog.use_steep, Qt.MouseButton.LeftButton)
    assert window.model.live.optim.lr == float(f"{dialog.result.steepest_lr:.3g}")
    window.actions["undo"].trigger()
    assert window.model.live.optim.lr == 0.01
    # a network that does not fit its data: the dialog says so, nothing changes
    window.model.set_value("optim.name", "sgd")
    window.model.live.model.layers[-1].params["out"] = 3
    assert dialog.start()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=WAIT_MS)
    assert "could not run" in dialog.status.text() and "model.layers" in dialog.status.text()
    assert not dialog.use_min.isEnabled()
    window.model.live.model.layers[-1].params["out"] = 2
    dialog.close()


# -- forks ------------------------------------------------------------------------------------


def _train_parent(store: RunStore, epochs: int = 4) -> str:
    events = list(Trainer(moons(epochs), runs=store, threads=1).events())
    assert isinstance(events[-1], RunFinished)
    return events[-1].run_dir


def test_fork_from_the_tools_menu_trains_a_branch_in_the_train_panel(qtbot, window, warned):
    parent = _train_parent(window.runs)
    window.history.select(parent)  # once the Runs list shows it: it follows the store
    qtbot.waitUntil(lambda: window.history.selected_path() == parent, timeout=20_000)
    window.actions["fork"].trigger()
    dialog = window.tools.get("fork")
    assert not dialog.fork_button.isEnabled()  # the runs' checkpoints are looked up first
    qtbot.waitUntil(lambda: dialog.run_dir() is not None, timeout=20_000)
    assert dialog.run_dir() == parent
    assert [dialog.epoch_combo.itemData(i) for i in range(dialog.epoch_combo.count())] == \
        [1, 2, 3, 4]
    dialog.set_epoch(2)
    with qtbot.waitSignal(dialog.checked, timeout=20_000,
                          check_params_cb=lambda plan: plan is None):
        dialog.add_change("optim.lr", "oops")  # a bad value: refused in words, Fork disabled
    assert not dialog.fork_button.isEnabled()
    assert "optim.lr: must be a number" in dialog.message.text()
    with qtbot.waitSignal(dialog.checked, timeout=20_000,
                          check_params_cb=lambda plan: plan is not None):
        dialog.table.item(0, 1).setText("0.001")
    assert dialog.fork_button.isEnabled()
    assert "optim.lr = 0.001" in dialog.message.text()
    shoot(dialog, "fork_dialog.png")
    panel = window.train_panel
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as ended:
        qtbot.mouseClick(dialog.fork_button, Qt.MouseButton.LeftButton)
    fork_run = ended.args[0].run_dir
    assert isinstance(ended.args[0], RunFinished) and ended.args[0].epochs == 4
    assert branch_of(Run(fork_run).summary())[:2] == (parent, 2)
    assert Run(fork_run).spec().optim.lr == 0.001
    assert window.center.currentWidget() is panel
    assert panel.curves.branch_items  # the parent drawn behind the fork
    assert panel.curves.point_count("val_loss") == 4  # two inherited epochs, two of its own
    with qtbot.waitSignal(panel.runShown, timeout=20_000):
        panel.show_run(fork_run)
    assert panel.curves.branch_items and panel.curves.point_count("val_loss") == 4
    shoot(window, "fork_branch.png")
    with qtbot.waitSignal(panel.runShown, timeout=20_000):
        panel.show_run(parent)
    assert not panel.curves.branch_items
    # the editor's changes, taken into a new fork
    window.actions["fork"].trigger()
    again = window.tools.get("fork")
    qtbot.waitUntil(lambda: again.run_combo.findData(parent) >= 0, timeout=20_000)
    window.model.set_value("regularization.l2", 0.001)
    again.run_combo.setCurrentIndex(again.run_combo.findData(parent))
    with qtbot.waitSignal(again.changesTaken, timeout=20_000):  # the run's spec, read on a worker
        again.take_editor_changes()
    assert again.changes() == {"regularization.l2": 0.001}
    again.reject()


def test_compare_draws_a_fork_as_a_branch_of_its_parent(qtbot, tmp_path):
    from workbench.core.tools.fork import fork_trainer, plan_fork
    from workbench.gui.tools.compare.panel import ComparePanel

    store = RunStore(tmp_path / "runs")
    parent = _train_parent(store)
    fork = list(fork_trainer(plan_fork(parent, 2, {"optim.lr": 0.001}), runs=store,
                             threads=1).events())[-1].run_dir
    panel = ComparePanel(moons, Workspace(store))
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.runsRead, timeout=60_000):
        panel.add_runs([fork])  # its parent comes along
    assert [v.run_dir for v in panel.comparison.variants] == [parent, fork]
    starts = panel.branch_starts()
    assert list(starts) == [1] and starts[1] == Run(fork).summary()["fork_step"]
    panel._redraw()
    x = panel.curves_page.lines[1]["val_loss"].series.x
    assert list(x) == [2.0, 3.0, 4.0]  # from the fork on, joined to the parent at epoch 2
    x = panel.curves_page.lines[0]["val_loss"].series.x
    assert list(x) == [1.0, 2.0, 3.0, 4.0]
    panel.shutdown()


# -- search -----------------------------------------------------------------------------------


def test_search_panel_runs_stops_resumes_and_opens_trials(qtbot, window, warned):
    pytest.importorskip("optuna")
    window.actions["search"].trigger()
    panel = window.tools.get("search")
    assert window.center.currentWidget() is panel
    panel.editor.set_raw({"params": {
        "optim.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
        "optim.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "model.layers[0].out": {"type": "int", "low": 4, "high": 32, "log": True}}})
    panel.trials_spin.setValue(4)
    stopped = []

    def stop_after_first(row_event):
        if not stopped and any(r.state == "complete" for r in panel.rows.values()):
            stopped.append(True)
            qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)

    with qtbot.waitSignal(panel.searchFinished, timeout=WAIT_MS) as first:
        panel.trialEvent.connect(stop_after_first)
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert first.args[0].stopped
    qtbot.waitUntil(panel.run_button.isEnabled, timeout=WAIT_MS)
    with qtbot.waitSignal(panel.searchFinished, timeout=WAIT_MS) as second:
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    result = second.args[0]
    qtbot.waitUntil(panel.run_button.isEnabled, timeout=WAIT_MS)
    assert not result.stopped
    assert sum(r.state in ("complete", "pruned") for r in result.rows) == 4
    assert panel.table.rowCount() == len(result.rows)
    assert panel.best_plot.listDataItems()
    names, lines = panel.parallel_lines()
    assert names == ["optim.lr", "optim.name", "model.layers[0].out", "val_accuracy"]
    assert len(lines) == 4 and all(0 <= y <= 1 for _, ys in lines for y in ys)
    with qtbot.waitSignal(panel.importancesShown, timeout=WAIT_MS):
        panel.tabs.setCurrentWidget(panel.importance_plot)
    shoot(panel, "search_panel.png")
    panel.tabs.setCurrentIndex(0)
    best = panel.best_row()
    best_index = sorted(panel.rows).index(best.number)
    panel.table.selectRow(best_index)
    with qtbot.waitSignal(window.runOpened, timeout=WAIT_MS):  # read off the GUI thread
        qtbot.mouseClick(panel.best_button, Qt.MouseButton.LeftButton)
    assert window.model.live.name == f"moons-mlp trial {best.number}"  # loaded into the editor
    assert Run(best.run_dir).summary()["study"] == panel.study


def test_the_study_box_lists_stored_studies_and_picking_one_shows_it(qtbot, window, warned):
    """A study made elsewhere (here: with another learning rate in the editor) is picked from
    the box, shown, its experiment opened from the status line's link, and continued."""
    pytest.importorskip("optuna")
    from workbench.core.tools.search import SearchRunner, parse_space

    space = {"params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
                        "model.layers[0].out": {"type": "int", "low": 4, "high": 32,
                                                "step": 4}},
             "startup_trials": 1}
    earlier = moons().with_value("optim.lr", 0.05)
    SearchRunner(earlier, parse_space(space), trials=2, runs=window.workspace.runs,
                 study="earlier", threads=1, sampler_seed=0).run()
    window.actions["search"].trigger()
    panel = window.tools.get("search")
    combo = panel.study_combo
    qtbot.waitUntil(lambda: combo.count() == 1, timeout=WAIT_MS)
    assert combo.itemText(0) == "earlier" and combo.currentText() == ""  # nothing picked yet
    assert "2 trials, best val_accuracy" in combo.itemData(0, Qt.ItemDataRole.ToolTipRole)
    assert not panel.rows
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible, timeout=WAIT_MS)
    with qtbot.waitSignal(panel.studyShown, timeout=WAIT_MS):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.visualRect(view.model().index(0, 0)).center())
    assert combo.currentText() == "earlier" and panel.study == "earlier"
    assert len(panel.rows) == 2 and panel.table.rowCount() == 2
    assert panel.space_document() == {**space, "pruner": "median"}  # the study's own, whole
    assert "open its experiment" in panel.status.text()
    qtbot.wait(100)  # the status line wraps onto more lines: laid out on the next turn
    shoot(panel, "search_study_picked.png")
    assert window.model.spec().optim.lr == 0.01
    panel.status.linkActivated.emit("experiment")  # the status line's link
    assert window.model.spec().optim.lr == 0.05 and window.path is None
    assert "Run to continue it" in panel.status.text()
    panel.trials_spin.setValue(3)
    listed: list[list] = []  # the list is read again once the search ends
    panel.studiesListed.connect(listed.append)
    with qtbot.waitSignal(panel.searchFinished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert not warned.said
    assert finished.args[0].study == "earlier" and len(finished.args[0].rows) == 3  # continued
    qtbot.waitUntil(lambda: bool(listed), timeout=WAIT_MS)
    assert [s.trials for s in listed[-1]] == [3]
    qtbot.waitUntil(panel.run_button.isEnabled, timeout=WAIT_MS)


def test_a_study_still_being_read_when_a_search_starts_is_dropped(qtbot, window, warned,
                                                                  monkeypatch):
    """Show study, then Run before its read answers: the answer (another study's rows,
    objective and direction) must not replace the running search's."""
    pytest.importorskip("optuna")
    import threading

    import workbench.gui.tools.search.panel as search_panel
    from workbench.core.tools.search import StudyView, TrialRow

    release, reading = threading.Event(), threading.Event()
    stale = StudyView("stale", "minimize", "val_loss", None,
                      [TrialRow(90, "complete", 0.5, {"optim.lr": 0.1})])

    def slow_read(_url, _name):
        reading.set()
        release.wait(WAIT_MS / 1000)
        return stale

    monkeypatch.setattr(search_panel, "read_study", slow_read)
    panel = window.tools.open("search")
    panel.trials_spin.setValue(2)
    panel.study_combo.setEditText("fresh")
    panel.show_study()
    qtbot.waitUntil(reading.is_set, timeout=WAIT_MS)
    panel.trialEvent.connect(lambda _event: release.set())  # answers while the search runs
    try:
        with qtbot.waitSignal(panel.searchFinished, timeout=WAIT_MS) as finished:
            assert panel.run()
    finally:
        release.set()
    qtbot.waitUntil(lambda: not panel.tasks.is_running() and panel.tasks.threads() == 0,
                    timeout=WAIT_MS)
    result = finished.args[0]
    assert panel.state.study == "fresh" and panel.state.direction == "maximize"
    assert panel.state.objective == "val_accuracy" and 90 not in panel.rows
    assert sorted(panel.rows) == sorted(r.number for r in result.rows)


def test_search_panel_refuses_a_bad_space_with_a_dialog(qtbot, window, warned):
    pytest.importorskip("optuna")
    panel = window.tools.open("search")
    panel.editor.set_raw({"params": {"optim.lr": {"type": "float", "low": 0, "high": 1,
                                                  "log": True}}})
    assert not panel.run()
    assert "a log range must start above 0" in warned.said[-1]
    assert not panel.is_running() and not panel.rows


def test_without_optuna_the_app_says_how_to_install_it(qtbot, window, warned, monkeypatch):
    for name in [n for n in sys.modules if n.startswith("workbench.gui.tools.search")
                 or n == "workbench.core.tools.search"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert window.tools.open("search") is None
    assert "pip install 'workbench[search]'" in warned.said[-1]
