"""The main window: projects saved and opened (malformed ones refused), unsaved-changes
prompts, recent files, remembered layout, the run history, Train blocked by a shape error,
and the first click on Train training something real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from dialog_answers import Answers
from PySide6.QtCore import Qt, Signal  # noqa: E402
from PySide6.QtWidgets import QLabel  # noqa: E402

from workbench.core.store.runs import RunStore  # noqa: E402
from workbench.gui.shell import project  # noqa: E402
from workbench.gui.shell.main_window import MainWindow  # noqa: E402
from workbench.gui.tools.registry import TOOLS  # noqa: E402
from workbench.gui.widgets import dialogs  # noqa: E402
from workbench.spec import LayerSpec  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "screenshots"


class FakeTrainPanel(QLabel):
    """Stands in for the training panel where a test only needs what the window calls."""

    runStarted = Signal(object)
    runEnded = Signal(object)
    inspectRequested = Signal(str, int)

    def __init__(self, get_spec, runs, parent=None) -> None:
        super().__init__("training panel", parent)
        self.get_spec, self.runs = get_spec, runs
        self.blocked: str | None = None
        self.shown: list[str] = []

    def set_blocked(self, reason):
        self.blocked = reason

    def is_running(self):
        return False

    def stop_and_wait(self):
        return None

    def show_run(self, run_dir):
        self.shown.append(run_dir)
        return True


@pytest.fixture
def answers(monkeypatch):
    return Answers(monkeypatch, dialogs.Button.Discard)


def _open(qtbot, **kwargs) -> MainWindow:
    win = MainWindow(**kwargs)
    qtbot.addWidget(win)
    if win.train_panel is None:  # torch still loading in the background
        with qtbot.waitSignal(win.trainPanelReady, timeout=120_000):
            pass
    return win


@pytest.fixture
def window(qtbot, answers):
    win = _open(qtbot, train_panel_factory=FakeTrainPanel)
    yield win
    win.undo.setClean()
    win.close()
    assert win.workspace.jobs.names() == []  # closing stopped and waited for every job


def test_starts_with_a_default_experiment_that_can_train(window):
    assert window.model.live.data.name == "spirals"
    assert window.editor.problem is None
    assert window.train_panel is not None and window.train_panel.blocked is None
    assert window.windowTitle().startswith("untitled")


def test_shape_error_blocks_train_and_undo_redo(qtbot, window):
    window.editor.list.setCurrentRow(0)
    window.editor.palette_tree.select_type("MaxPool2d")
    qtbot.mouseClick(window.editor.buttons["insert"], Qt.MouseButton.LeftButton)
    reason = window.train_panel.blocked
    assert reason and "model.layers[0]" in reason and "image input" in reason
    assert window.editor.rows[0].property("error") is True
    assert window.isWindowModified()
    window.actions["undo"].trigger()
    assert window.train_panel.blocked is None
    window.actions["redo"].trigger()
    assert window.train_panel.blocked == reason
    assert window.actions["undo"].shortcut().toString() == "Ctrl+Z"
    assert "Ctrl+Shift+Z" in [s.toString() for s in window.actions["redo"].shortcuts()]


def test_save_and_reopen_round_trip(qtbot, window, answers, tmp_path):
    window.editor.rows[0].editors["out"].setValue(24)
    window.optim_panel.lr.setValue(0.05)
    path = tmp_path / "exp.json"
    assert window.save_to(path)
    saved = window.model.spec().to_dict()
    assert not window.isWindowModified() and window.windowTitle().startswith("exp.json")
    window.optim_panel.lr.setValue(0.2)
    assert window.new_experiment()  # answers Discard
    assert answers.asked and window.model.live.optim.lr == 0.02
    assert window.open_path(path)
    assert window.model.spec().to_dict() == saved
    assert project.recent_files(window.settings)[0] == str(path.resolve())


def test_malformed_project_is_refused_and_changes_nothing(window, answers, tmp_path):
    before = window.model.spec().to_dict()
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "model": {"layers": [{"type": "Linear"', encoding="utf-8")
    assert not window.open_path(bad)
    assert "not valid JSON" in answers.warned[-1]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"version": 1, "model": {"layers": [{"type": "Linear"}]},
                                 "optim": {"lr": -1}}), encoding="utf-8")
    assert not window.open_path(wrong)
    assert "optim.lr" in answers.warned[-1]
    assert window.model.spec().to_dict() == before and window.path is None


def test_close_with_unsaved_changes_asks(qtbot, answers):
    win = _open(qtbot, train_panel_factory=FakeTrainPanel)
    win.show()
    win.optim_panel.epochs.setValue(7)
    answers.next = dialogs.Button.Cancel
    assert not win.close()
    assert win.isVisible()
    answers.next = dialogs.Button.Discard
    assert win.close()
    assert len(answers.asked) == 2
    # the layout is remembered in the settings file under WORKBENCH_HOME
    assert project.settings().value("window/state") is not None


def test_run_history_lists_runs_and_damaged_ones_and_reopens(qtbot, window, answers):
    store = window.runs
    spec = window.model.spec()
    spec.name = "stored"
    spec.optim.lr = 0.005
    run = store.create(spec)
    run.append_metrics([{"kind": "epoch", "epoch": e, "train_loss": 1.0 / e,
                         "val_loss": 1.2 / e} for e in (1, 2, 3)])
    run.update_summary(status="finished", test_accuracy=0.9)
    damaged = store.root / "20000101-000000-broken-abc123"
    damaged.mkdir()
    (damaged / "summary.json").write_text("{not json", encoding="utf-8")
    qtbot.waitUntil(lambda: len(window.history.infos) == 2, timeout=20_000)  # by itself
    statuses = {i.name: ("damaged" if i.error else i.summary["status"])
                for i in window.history.infos}
    assert statuses == {run.path.name: "finished", damaged.name: "damaged"}
    window.history.select(str(damaged))
    assert not window.history.open_button.isEnabled()
    window.history.select(str(run.path))
    qtbot.waitUntil(lambda: bool(window.history.plot.listDataItems()), timeout=20_000)
    with qtbot.waitSignal(window.runOpened, timeout=20_000):  # read off the GUI thread
        window.history.open_selected()
    assert window.model.live.optim.lr == 0.005 and window.model.live.name == "stored"
    assert window.train_panel.shown == [str(run.path)]
    # an untitled document named after the run: Save asks where, undo has nothing to undo
    assert window.path is None and run.path.name in window.windowTitle()
    assert not window.actions["undo"].isEnabled()


def test_about_names_the_versions(window, answers):
    window.about()
    text = answers.warned[-1]
    assert "Workbench" in text and "PyTorch" in text and "Qt" in text and "Device" in text


def test_the_tools_menu_is_the_registry(window):
    import importlib.util

    tools_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    by_action = {window.actions[t.key]: t for t in TOOLS}
    assert [by_action[a] for a in tools_menu.actions() if a in by_action] == list(TOOLS)
    for tool in TOOLS:
        installed = importlib.util.find_spec(tool.module) is not None
        assert window.actions[tool.key].isEnabled() == installed
        keys = window.actions[tool.key].shortcut().toString()
        assert keys == (tool.shortcut or "")
    assert len({t.shortcut for t in TOOLS if t.shortcut}) == sum(bool(t.shortcut) for t in TOOLS)


def test_a_tool_whose_module_is_missing_says_so_and_opens_nothing(window, answers,
                                                                   monkeypatch):
    from workbench.gui.tools import registry

    missing = registry.ToolEntry("nothing", "Nothing", "&Nothing…",
                                 "workbench.gui.tools.nothing.panel:Panel")
    assert not missing.available()
    monkeypatch.setattr(registry, "TOOLS", (*registry.TOOLS, missing))
    assert window.tools.open("nothing") is None
    assert "not installed" in answers.warned[-1]
    assert window.center.count() == 1


def test_tools_open_as_tabs(qtbot, window, answers):
    tool = window.tools.open("playground")
    assert window.center.currentWidget() is tool
    assert window.tools.open("playground") is tool
    window._close_tool_tab(window.center.indexOf(tool))
    assert window.center.count() == 1
    assert window.tools.get("playground") is None  # closed: a new one opens next time
    assert window.tools.open("export") is None
    assert "Train a model first" in answers.warned[-1]


def test_first_click_on_train_trains_the_default_experiment(qtbot, answers):
    """The real training panel: the window opens on an experiment that trains as it is."""
    pytest.importorskip("workbench.gui.train.train_panel")
    from PySide6.QtWidgets import QApplication

    from workbench.core.training.events import RunFinished
    from workbench.gui.widgets.style import apply_style

    apply_style(QApplication.instance())
    win = _open(qtbot)
    win.resize(1380, 860)
    win.show()
    win.optim_panel.epochs.setValue(3)  # quick, but the same click
    panel = win.train_panel
    assert panel.train_button.isEnabled()
    with qtbot.waitSignal(panel.runEnded, timeout=120_000) as ended:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert isinstance(ended.args[0], RunFinished)
    assert not panel.is_running()
    qtbot.waitUntil(lambda: len(win.history.infos) == 1, timeout=20_000)
    assert len(RunStore().list()) == 1
    SHOTS.mkdir(exist_ok=True)
    win.grab().save(str(SHOTS / "main_window.png"))
    win.undo.setClean()
    win.close()


def test_main_window_blocks_train_in_the_real_panel(qtbot, answers):
    pytest.importorskip("workbench.gui.train.train_panel")
    win = _open(qtbot)
    win.model.set_layers([LayerSpec("Conv2d")])
    assert not win.train_panel.train_button.isEnabled()
    assert "image input" in win.train_panel.train_button.toolTip()
    win.undo.setClean()
    win.close()


HOSTILE_PROJECTS = {
    "not_utf8": (b'{"name": "caf\xe9"}', "not UTF-8 text"),
    "deep": (b"[" * 100_000, "nested more than 32 levels deep"),
    "long_number": (b'{"train": {"seed": ' + b"9" * 400 + b"}}", "train.seed"),
    "too_long_number": (b'{"train": {"seed": ' + b"9" * 5000 + b"}}", "too long to read"),
    "list_type": (b'{"model": {"layers": [{"type": ["Linear"]}]}}', "model.layers[0].type"),
    "nan": (b'{"optim": {"lr": NaN}}', "holds NaN"),
    "out_of_range": (b'{"optim": {"lr": 1e30}}', "optim.lr: must be a number from 1e-12"),
    "huge_out": (b'{"model": {"layers": [{"type": "Linear", "out": 1000000000}]}}',
                 "model.layers[0].out, layer 1 (Linear): must be a whole number from 1 to 65,536"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PROJECTS))
def test_hostile_projects_are_refused_with_a_dialog_from_open_and_open_recent(
        window, answers, tmp_path, name):
    data, says = HOSTILE_PROJECTS[name]
    before = window.model.spec().to_dict()
    path = tmp_path / f"{name}.json"
    path.write_bytes(data)
    assert not window.open_path(path, ask=False)  # File > Open…, after the file dialog
    assert says in answers.warned[-1]
    project.add_recent(window.settings, path)
    assert not window.open_recent(str(path))  # File > Open Recent
    assert len(answers.warned) == 2 and says in answers.warned[-1]
    assert window.model.spec().to_dict() == before and window.path is None  # nothing clamped


def test_a_huge_project_file_is_refused_unread(window, answers, tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(200 * 2**20)
    assert not window.open_path(path, ask=False)
    assert "too large: 209,715,200 bytes, more than the 1,048,576 allowed" in answers.warned[-1]


def test_a_network_that_cannot_fit_in_memory_blocks_train_with_the_numbers(window):
    window.model.set_layers([LayerSpec("Linear", {"out": 65_536})] * 12 + [
        LayerSpec("Linear", {"out": 2})])
    reason = window.train_panel.blocked
    assert reason and reason.startswith("the experiment needs about")
    assert "available" in reason and window.editor.memory_problem == reason
    window.model.set_layers([LayerSpec("Linear", {"out": 8}), LayerSpec("Linear", {"out": 2})])
    assert window.train_panel.blocked is None
    assert window.editor.memory_label.text().startswith("Memory to train: about")


class RunningTrainPanel(FakeTrainPanel):
    """A panel with a run in flight until it is told to stop, listed in the workspace's jobs
    as the real one's run is; records when it is stopped."""

    def __init__(self, get_spec, workspace, parent=None) -> None:
        super().__init__(get_spec, workspace, parent)
        self.running = True
        self.order: list[str] = []
        workspace.jobs.add("workbench-training", self, "Training spirals")

    def is_running(self):
        return self.running

    def stop(self):
        pass  # asked; it ends when waited for

    def stop_and_wait(self, timeout_ms=None):
        if self.running:
            self.order.append("stop")
        self.running = False
        return True


def test_closing_during_a_run_asks_about_unsaved_changes_before_stopping(qtbot, monkeypatch):
    win = _open(qtbot, train_panel_factory=RunningTrainPanel)
    panel = win.train_panel
    replies = {"Jobs still running": dialogs.Button.Yes,
               "Unsaved changes": dialogs.Button.Cancel}
    asked: list[str] = []

    def ask(_parent, title, text, *args, **kwargs):
        panel.order.append(title)
        asked.append(text)
        return replies[title]

    monkeypatch.setattr(dialogs, "ask", ask)
    win.show()
    win.optim_panel.epochs.setValue(7)
    assert not win.close()
    assert panel.order == ["Jobs still running", "Unsaved changes"]
    assert "Training spirals" in asked[0]  # the job, by name
    assert panel.is_running() and win.isVisible()  # cancelled: the run goes on
    panel.order.clear()
    replies["Unsaved changes"] = dialogs.Button.Discard
    assert win.close()
    assert panel.order == ["Jobs still running", "Unsaved changes", "stop"]
