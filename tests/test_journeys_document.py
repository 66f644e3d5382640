"""Journeys with the experiment as a document, driven as a person drives the real main window:
menus, buttons, keys and the Runs list only. Train the default and find the run under the
experiment's name; rename and train; MNIST from a folder of IDX files; save, close and reopen
from Open Recent; open an example and save it elsewhere (the package's file untouched); open a
run in the editor and save without overwriting the file opened before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("workbench.gui.train.train_panel")

from dialog_answers import Answers
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QPushButton  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.core.data.idx import write_idx  # noqa: E402
from workbench.core.training.events import RunFinished  # noqa: E402
from workbench.gui.shell.examples import examples_dir  # noqa: E402
from workbench.gui.shell.help_views import plain  # noqa: E402
from workbench.gui.shell.main_window import MainWindow  # noqa: E402
from workbench.gui.widgets import dialogs  # noqa: E402
from workbench.gui.widgets.style import apply_style  # noqa: E402

WAIT_MS = 180_000


class Person(Answers):
    """Answers the window's questions and file dialogs as a test scripts them, and records
    what it was asked."""

    def __init__(self, monkeypatch) -> None:
        super().__init__(monkeypatch, dialogs.Button.Discard)
        self.save_as: list[Path | None] = []  # the answers to Save's file dialog, in turn
        self.save_dialogs: list[str] = []  # the folder each Save dialog suggested
        self.open_files: list[Path] = []
        self.folders: list[Path] = []
        monkeypatch.setattr(QFileDialog, "getSaveFileName", self._save)
        monkeypatch.setattr(QFileDialog, "getOpenFileName", self._open)
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", self._folder)

    def _save(self, _parent, _caption, suggested, *_args, **_kwargs):
        self.save_dialogs.append(suggested)
        path = self.save_as.pop(0) if self.save_as else None
        return (str(path), "") if path else ("", "")

    def _open(self, *_args, **_kwargs):
        return (str(self.open_files.pop(0)), "") if self.open_files else ("", "")

    def _folder(self, *_args, **_kwargs):
        return str(self.folders.pop(0)) if self.folders else ""


@pytest.fixture
def person(monkeypatch):
    return Person(monkeypatch)


def open_window(qtbot) -> MainWindow:
    apply_style(QApplication.instance())
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    if window.train_panel is None:
        with qtbot.waitSignal(window.trainPanelReady, timeout=WAIT_MS):
            pass
    qtbot.waitUntil(lambda: window.history.listed_once, timeout=WAIT_MS)  # the runs known
    window.activateWindow()
    return window


def close_window(window: MainWindow) -> None:
    window.close()
    assert window.workspace.jobs.names() == []


def choose(window: MainWindow, *path: str) -> None:
    """Open the menus along `path` (as a click on each does: a submenu fills itself when it
    is shown) and trigger the item; an item matches by its text without the & and …, or by
    the start of it."""
    actions = window.menuBar().actions()
    opened: list[QMenu] = []
    for depth, text in enumerate(path):
        action = next((a for a in actions if plain(a.text()) == text), None) or next(
            (a for a in actions if plain(a.text()).startswith(text)), None)
        assert action is not None, f"no {text!r} in {[plain(a.text()) for a in actions]}"
        assert action.isEnabled(), f"{' > '.join(path[:depth + 1])} is disabled"
        menu = action.menu()
        if isinstance(menu, QMenu):
            menu.popup(QPoint(0, 0))
            opened.append(menu)
            actions = menu.actions()
        else:
            for m in reversed(opened):
                m.hide()
            action.trigger()
            return
    raise AssertionError(f"{' > '.join(path)} is a menu, not an item")


def press_ctrl_s(qtbot, window: MainWindow) -> None:
    """Ctrl+S in the window, as a person presses it with the window in front."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    target = QApplication.focusWidget() or window
    qtbot.keyClick(target, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)


def train(qtbot, window: MainWindow, epochs: int) -> RunFinished:
    """Set the epochs in the Optimizer tab and press Train; wait for the run to end."""
    choose(window, "View", "Optimizer editor")
    window.optim_panel.epochs.setValue(epochs)
    panel = window.train_panel
    assert panel.train_button.isEnabled(), panel.train_button.toolTip()
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as ended:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert isinstance(ended.args[0], RunFinished), ended.args[0]
    run_dir = str(ended.args[0].run_dir)

    def listed_finished() -> bool:  # the Runs list follows the store by itself: wait for it
        return not panel.is_running() and any(
            str(i.path) == run_dir and i.summary.get("status") == "finished"
            for i in window.history.infos)

    qtbot.waitUntil(listed_finished, timeout=WAIT_MS)
    return ended.args[0]


def runs_listed(window: MainWindow) -> list[tuple[str, str]]:
    """(name, status) of every row of the Runs list, as it reads on screen, newest first."""
    tree = window.history.tree
    return [(tree.topLevelItem(i).text(0), tree.topLevelItem(i).text(1))
            for i in range(tree.topLevelItemCount())]


def type_name(qtbot, window: MainWindow, name: str) -> None:
    edit = window.name_field.edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, name)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


# -- journeys ----------------------------------------------------------------------------------
def test_train_the_default_then_rename_and_train_again(qtbot, person):
    window = open_window(qtbot)
    assert window.welcome.isVisible()  # a first start offers a way in, without a modal
    assert window.name_field.edit.text() == "spirals"
    first = train(qtbot, window, 3)
    assert not window.welcome.isVisible()
    assert runs_listed(window) == [("spirals", "finished")]
    assert "-spirals-" in Path(first.run_dir).name

    type_name(qtbot, window, "two spirals / tanh")
    assert window.model.live.name == "two spirals / tanh"
    assert "name" in window.actions["undo"].text()  # one undo step
    second = train(qtbot, window, 3)
    assert runs_listed(window) == [("two spirals / tanh", "finished"), ("spirals", "finished")]
    folder = Path(second.run_dir)
    assert folder.parent == window.runs.root and "two-spirals---tanh" in folder.name

    steps = window.undo.count()
    for bad, says in (("x" * 10_000, "at most 200 characters"), ("   ", "must not be empty")):
        edit = window.name_field.edit
        edit.setText(bad)  # a paste
        qtbot.keyClick(edit, Qt.Key.Key_Return)
        assert says in window.name_field.problem.text()
        assert window.name_field.problem.isVisible()
        assert window.model.live.name == "two spirals / tanh" == edit.text()
        assert window.undo.count() == steps  # nothing changed
    choose(window, "Edit", "Undo")
    assert window.name_field.edit.text() == "spirals"
    window.undo.setClean()
    close_window(window)


def test_mnist_from_a_folder_of_idx_files(qtbot, person, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "my mnist"
    for stem, n in (("train", 300), ("t10k", 100)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):  # a bright bar whose place says the digit: learnable
            images[i, 2 + 2 * label: 4 + 2 * label, 4:24] = 255
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", labels)

    window = open_window(qtbot)
    choose(window, "View", "Data editor")
    data = window.data_panel
    combo = data.combo
    combo.setCurrentIndex(combo.findData("mnist"))
    person.folders.append(folder)
    browse = data.rows["root"].findChild(QPushButton)
    qtbot.mouseClick(browse, Qt.MouseButton.LeftButton)
    assert window.model.live.data.root == str(folder)
    with qtbot.waitSignal(data.loaded, timeout=WAIT_MS) as loaded:
        qtbot.mouseClick(data.load_button, Qt.MouseButton.LeftButton)
    assert len(loaded.args[0].train_x) + len(loaded.args[0].val_x) == 300
    choose(window, "View", "Model editor")
    templates = window.editor.buttons["templates"].menu()
    next(a for a in templates.actions() if a.text() == "MLP").trigger()
    type_name(qtbot, window, "my digits")
    end = train(qtbot, window, 1)
    assert runs_listed(window)[0] == ("my digits", "finished")
    summary = json.loads((Path(end.run_dir) / "summary.json").read_text(encoding="utf-8"))
    assert summary["dataset"] == "mnist" and summary["test_accuracy"] > 0.3
    window.undo.setClean()
    close_window(window)


def test_save_close_and_reopen_from_open_recent(qtbot, person, tmp_path):
    window = open_window(qtbot)
    type_name(qtbot, window, "kept")
    choose(window, "View", "Optimizer editor")
    window.optim_panel.epochs.setValue(7)
    person.save_as.append(tmp_path / "kept")
    press_ctrl_s(qtbot, window)
    saved = tmp_path / "kept.json"
    assert saved.exists() and window.path == saved
    assert window.windowTitle().startswith("kept.json")
    spec = window.model.spec()
    close_window(window)
    assert person.asked == []  # saved: nothing to ask on closing

    again = open_window(qtbot)
    assert not again.welcome.isVisible()  # not a first start any more
    choose(again, "File", "Open Recent", "kept.json")
    assert again.model.spec() == spec == specmod.load(saved)
    assert again.name_field.edit.text() == "kept" and again.optim_panel.epochs.value() == 7
    close_window(again)


def test_open_an_example_and_save_it_elsewhere(qtbot, person, tmp_path):
    package_file = examples_dir() / "moons_logistic.json"
    before = package_file.read_bytes()
    window = open_window(qtbot)
    qtbot.mouseClick(window.welcome.example_button, Qt.MouseButton.LeftButton)  # offered
    popup = QApplication.activePopupWidget()
    assert isinstance(popup, QMenu)
    offered = [a.text() for a in popup.actions()]
    assert len(offered) == len(list(examples_dir().glob("*.json")))
    assert "Spirals playground — Two spirals · 5 layers · Adam · 60 epochs" in offered
    popup.hide()
    next(a for a in popup.actions() if a.text().startswith("Spirals playground")).trigger()
    assert "Spirals playground (example)" in window.windowTitle()
    assert not window.welcome.isVisible()
    choose(window, "File", "Open Example", "Moons logistic")
    assert window.path is None and "Moons logistic (example)" in window.windowTitle()
    assert window.model.live.data.name == "moons"

    person.save_as.append(tmp_path / "mine.json")
    press_ctrl_s(qtbot, window)  # untitled: Save asks where
    assert len(person.save_dialogs) == 1
    assert not Path(person.save_dialogs[0]).resolve().is_relative_to(examples_dir().resolve())
    assert specmod.load(tmp_path / "mine.json") == specmod.load(package_file)
    assert package_file.read_bytes() == before

    person.open_files.append(package_file)  # File > Open on the package's file by hand
    choose(window, "File", "Open")
    assert window.path is None and "(example)" in window.windowTitle()
    person.save_as.append(package_file)  # and Save As pointed into the package
    choose(window, "File", "Save As")
    assert "Workbench's own folder" in person.warned[-1]
    assert package_file.read_bytes() == before
    person.save_as.append(None)
    press_ctrl_s(qtbot, window)  # still untitled: asks again, a cancel writes nothing
    assert len(person.save_dialogs) == 3 and window.path is None
    assert package_file.read_bytes() == before
    window.undo.setClean()
    close_window(window)


def test_open_a_run_in_the_editor_and_save_it_as_a_new_file(qtbot, person, tmp_path):
    window = open_window(qtbot)
    end = train(qtbot, window, 2)
    first = tmp_path / "first.json"
    person.save_as.append(first)
    type_name(qtbot, window, "other experiment")
    press_ctrl_s(qtbot, window)
    first_bytes = first.read_bytes()
    window.optim_panel.epochs.setValue(9)  # an unsaved change

    tree = window.history.tree
    row = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
               if tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) == str(end.run_dir))
    tree.setCurrentItem(row)
    person.next = dialogs.Button.Discard
    with qtbot.waitSignal(window.runOpened, timeout=20_000):  # its spec is read off the GUI thread
        qtbot.mouseClick(window.history.open_button, Qt.MouseButton.LeftButton)
    assert len(person.asked) == 1 and "unsaved changes" in person.asked[0]
    assert window.path is None and Path(end.run_dir).name in window.windowTitle()
    assert window.model.live.name == "spirals" and window.optim_panel.epochs.value() == 2
    assert not window.actions["undo"].isEnabled()  # a fresh document, nothing to undo into

    second = tmp_path / "from the run.json"
    person.save_as.append(second)
    press_ctrl_s(qtbot, window)
    assert len(person.save_dialogs) == 2  # Ctrl+S asked where
    assert first.read_bytes() == first_bytes  # the file opened before is untouched
    assert specmod.load(second) == specmod.load(Path(end.run_dir) / "spec.json")
    close_window(window)


def test_help_getting_started_and_shortcuts(qtbot, person):
    window = open_window(qtbot)
    choose(window, "Help", "Keyboard shortcuts")
    shortcuts = window._help["shortcuts"]
    assert ("File > Save", "Ctrl+S") in shortcuts.rows
    assert ("View > Data editor", "Ctrl+2") in shortcuts.rows
    choose(window, "Help", "Getting started")
    guide = window._help["guide"]
    qtbot.mouseClick(guide.buttons["Pick the data"], Qt.MouseButton.LeftButton)
    assert window.editors.currentWidget() is window.data_panel
    qtbot.mouseClick(guide.buttons["Give it a name"], Qt.MouseButton.LeftButton)
    assert window.focusWidget() is window.name_field.edit
    assert window.name_field.edit.selectedText() == window.model.live.name
    qtbot.mouseClick(guide.buttons["Look back at runs"], Qt.MouseButton.LeftButton)
    assert window.history_dock.isVisible()
    close_window(window)
