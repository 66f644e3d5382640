"""Journeys through the Runs list, the hub of the app: the real main window at 1280x800, driven
only through its menus, buttons, context menu and the Runs list, as a person would.

A person trains a small run (the default spirals experiment, a few epochs), then works on it
from the list: prunes it from the Tools menu and from the context menu (unstructured,
structured with its defaults, structured with fine-tuning), exports it to ONNX, compares three
optimizers (one of them added from the list), stops a run and resumes it from the list, deletes
a run (asked first; a running one refused). No test presses a Refresh button: the runs a tool or
another process makes appear in the list by themselves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from dialog_answers import Answers
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from workbench.core.store.runs import Run, RunStatus  # noqa: E402
from workbench.core.training.events import EpochEnded, RunFinished  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.shell import project, run_history  # noqa: E402
from workbench.gui.shell.main_window import MainWindow  # noqa: E402
from workbench.gui.widgets import dialogs  # noqa: E402
from workbench.gui.widgets.style import apply_style  # noqa: E402

WAIT_MS = 120_000
LIST_MS = 20_000  # the list follows the store within a poll or two at most
SHOTS = Path("/tmp/hub-shots")


@pytest.fixture
def answers(monkeypatch):
    return Answers(monkeypatch)


def _open_window(qtbot, runs_root: Path) -> MainWindow:
    """The main window on a laptop's screen, over the run store at `runs_root`, ready."""
    apply_style(QApplication.instance())
    win = MainWindow(workspace=Workspace(runs_root))
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    if win.train_panel is None:  # torch still loading in the background
        with qtbot.waitSignal(win.trainPanelReady, timeout=WAIT_MS):
            pass
    return win


@pytest.fixture
def window(qtbot, answers, tmp_path):
    win = _open_window(qtbot, tmp_path / "runs")
    win.optim_panel.epochs.setValue(3)  # the default experiment, quick
    yield win
    win.undo.setClean()
    win.close()
    assert win.workspace.jobs.names() == []  # every thread ended with the window


def _shot(widget, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    widget.grab().save(str(SHOTS / name))


def _train(qtbot, win: MainWindow) -> RunFinished:
    panel = win.train_panel
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as ended:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    end = ended.args[0]
    assert isinstance(end, RunFinished), end
    _wait_selected(qtbot, win, end.run_dir)  # the list shows the new run, selected, ended
    qtbot.waitUntil(lambda: _listed(win)[end.run_dir] == RunStatus.FINISHED, timeout=LIST_MS)
    return end


def _listed(win: MainWindow) -> dict[str, str]:
    """What the Runs list shows: run folder -> status column."""
    tree = win.history.tree
    return {tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole): tree.topLevelItem(i).text(1)
            for i in range(tree.topLevelItemCount())}


def _wait_selected(qtbot, win: MainWindow, run_dir: str) -> None:
    qtbot.waitUntil(lambda: win.history.selected_path() == run_dir, timeout=LIST_MS)


def _click_run(qtbot, win: MainWindow, run_dir: str) -> None:
    """Click the run's row in the Runs list."""
    tree = win.history.tree
    qtbot.waitUntil(lambda: run_dir in _listed(win), timeout=LIST_MS)
    item = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
                if tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) == run_dir)
    tree.scrollToItem(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton,
                     pos=tree.visualItemRect(item).center())
    assert win.history.selected_path() == run_dir


def _context_action(qtbot, win: MainWindow, run_dir: str, key: str) -> bool:
    """Right-click the run's row and choose `key` from the menu that pops up; False when the
    menu shows it disabled."""
    tree = win.history.tree
    _click_run(qtbot, win, run_dir)
    item = tree.currentItem()
    tree.customContextMenuRequested.emit(tree.visualItemRect(item).center())
    menu = win.history.menu
    qtbot.waitUntil(menu.isVisible, timeout=5000)
    action = win.history.actions[key]
    assert action in menu.actions()
    enabled = action.isEnabled()
    if enabled:
        action.trigger()
    menu.close()
    return enabled


def _new_runs(qtbot, win: MainWindow, known: set[str], count: int) -> list[str]:
    """Wait until `count` runs beyond `known` are listed, ended; their folders."""
    def fresh() -> list[str]:
        return [p for p, status in _listed(win).items() if p not in known
                and status in (RunStatus.FINISHED, RunStatus.STOPPED)]
    qtbot.waitUntil(lambda: len(fresh()) >= count, timeout=LIST_MS)
    return fresh()


def _create_pruned(qtbot, panel) -> str:
    with qtbot.waitSignal(panel.runCreated, timeout=WAIT_MS) as created:
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(panel.apply_button.isEnabled, timeout=WAIT_MS)
    assert "New run" in panel.apply_status.text(), panel.apply_status.text()
    return created.args[0]


def test_prune_the_selected_run_from_the_tools_menu_and_the_context_menu(qtbot, window):
    parent = _train(qtbot, window).run_dir
    known = set(_listed(window))

    # Tools > Prune… opens on the run selected in the list, ready to prune
    window.actions["prune"].trigger()
    panel = window.tools.get("prune")
    qtbot.waitUntil(lambda: panel.session is not None or "Cannot" in panel.run_label.text(),
                    timeout=WAIT_MS)
    assert panel.session is not None, panel.run_label.text()
    assert panel.run_dir() == parent and panel.picker.run_dir() == parent
    assert panel.slider.isEnabled() and panel.apply_button.isEnabled()
    assert Path(parent).name in panel.run_label.text()
    panel.slider.setValue(50)  # unstructured, global, no fine-tuning
    panel.epochs.setValue(0)
    first = _create_pruned(qtbot, panel)
    assert _new_runs(qtbot, window, known, 1) == [first]  # in the list, by itself
    assert Run(Path(first)).summary()["pruned_from"] == parent
    _shot(window, "prune_from_tools.png")
    window._close_tool_tab(window.center.indexOf(panel))

    # the context menu of the parent's row: Prune… again; structured with the defaults, at 0%
    known |= {first}
    assert _context_action(qtbot, window, parent, "prune")
    panel = window.tools.get("prune")
    assert window.center.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.session is not None, timeout=WAIT_MS)
    assert panel.run_dir() == parent
    panel.kind.setCurrentIndex(1)  # structured (neurons)
    assert panel.slider.value() == 0 and panel.epochs.value() == 1  # the defaults
    zero = _create_pruned(qtbot, panel)
    summary = Run(Path(zero)).summary()
    assert summary["status"] == RunStatus.FINISHED and summary["finetune_epochs"] == 1
    assert summary["parameters"] == summary["parameters_before"]  # 0% removes nothing

    # structured at 40% with two epochs of fine-tuning: a smaller network that still works
    panel.slider.setValue(40)
    panel.epochs.setValue(2)
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.config.amount == 0.4,
                    timeout=WAIT_MS)
    smaller = _create_pruned(qtbot, panel)
    summary = Run(Path(smaller)).summary()
    assert summary["finetune_epochs"] == 2 and summary["parameters"] < \
        summary["parameters_before"]
    assert summary["test_accuracy"] > 0.5
    assert set(_new_runs(qtbot, window, known, 2)) == {zero, smaller}

    # the picker switches the panel to another run: the pruned one
    picker = panel.picker
    qtbot.waitUntil(lambda: picker.findData(smaller) >= 0, timeout=LIST_MS)
    picker.setCurrentIndex(picker.findData(smaller))
    picker.activated.emit(picker.currentIndex())
    qtbot.waitUntil(lambda: panel.session is not None
                    and str(panel.session.run.path) == smaller, timeout=WAIT_MS)
    _shot(window, "prune_from_context_menu.png")


def test_export_the_selected_run_and_refuse_a_failed_one(qtbot, window, answers):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    run = _train(qtbot, window).run_dir
    # a run that failed, made elsewhere: it appears by itself, and cannot be exported
    failed = window.runs.create(window.model.spec())
    failed.update_summary(status=RunStatus.FAILED, error="loss became NaN")
    qtbot.waitUntil(lambda: _listed(window).get(str(failed.path)) == RunStatus.FAILED,
                    timeout=LIST_MS)
    _click_run(qtbot, window, str(failed.path))
    history = window.history
    export = history.buttons["export"]
    assert not export.isEnabled() and "failed" in export.toolTip()
    assert "damaged" not in export.toolTip()

    # the Export button of the list, on the trained run
    _click_run(qtbot, window, run)
    assert export.isEnabled()
    qtbot.mouseClick(export, Qt.MouseButton.LeftButton)
    dialog = window.tools.get("export")
    assert dialog.run_dir == run and dialog.picker.run_dir() == run
    assert dialog.path_edit.text() == str(Path(run) / "model.onnx")
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS) as done:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    result = done.args[0]
    assert Path(result.path) == Path(run) / "model.onnx" and Path(result.path).is_file()
    onnx.checker.check_model(onnx.load(result.path))
    assert all(c.max_abs_diff < 1e-3 for c in result.checks)
    assert "Verified" in dialog.status.text()
    assert dialog.picker.findData(str(failed.path)) < 0  # its picker offers no failed run

    # Tools > Export while the dialog is open: it turns to the run selected now
    second = _train(qtbot, window).run_dir
    _click_run(qtbot, window, second)
    window.actions["export"].trigger()
    assert window.tools.get("export") is dialog and dialog.run_dir == second
    assert dialog.path_edit.text() == str(Path(second) / "model.onnx")
    dialog.close()


def test_compare_three_optimizers_one_added_from_the_runs_list(qtbot, window, answers):
    adam = _train(qtbot, window).run_dir  # the default experiment trains with Adam
    window.actions["compare"].trigger()
    panel = window.tools.get("compare")
    for name, check in panel.optim_checks.items():
        check.setChecked(name in ("sgd", "rmsprop"))
    known = set(_listed(window))
    with qtbot.waitSignal(panel.comparisonFinished, timeout=WAIT_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    compared = _new_runs(qtbot, window, known, 2)  # in the list, by themselves
    assert {Run(Path(p)).summary()["optimizer"] for p in compared} == {"sgd", "rmsprop"}
    # each at the experiment's own rate, not one picked for it behind the person's back
    assert {Run(Path(p)).summary()["lr"] for p in compared} == {window.model.spec().optim.lr}
    # the saved comparison's folder, inside the runs folder, is never listed as a run
    assert (window.runs.root / "comparisons").is_dir()
    history = window.history
    history.refresh()
    qtbot.waitUntil(lambda: not history.feed.tasks.is_running(), timeout=LIST_MS)
    assert not any(Path(p).name == "comparisons" for p in _listed(window))
    assert all(i.error is None for i in history.infos) and len(history.infos) == 3

    # the trained run joins from the Runs list's context menu
    assert _context_action(qtbot, window, adam, "compare")
    assert window.center.currentWidget() is panel
    qtbot.waitUntil(lambda: len(panel.comparison.variants) == 3, timeout=LIST_MS)  # read
    variants = panel.comparison.variants
    assert [v.spec.optim.name for v in variants] == ["sgd", "rmsprop", "adam"]
    assert variants[2].run_dir == adam
    page = panel.curves_page
    qtbot.waitUntil(lambda: len(page.lines) == 3 and page.lines[2]["train_loss"].n >= 3,
                    timeout=LIST_MS)  # its curves are drawn beside the others
    rows = panel.rows()
    assert len(rows) == 3 and all(r.best_val_accuracy is not None for r in rows)
    # and once only: Tools > Add the selected run... says nothing new
    window.actions["compare_selected"].trigger()
    assert len(panel.comparison.variants) == 3
    _shot(window, "compare_three.png")

    # a run of other data (MNIST) joining the spirals race is warned about
    mnist = window.runs.create(window.model.spec().with_value("data.name", "mnist_small")
                               .with_value("name", "digits"))
    mnist.update_summary(status=RunStatus.FINISHED)
    assert not answers.warned
    assert _context_action(qtbot, window, str(mnist.path), "compare")
    qtbot.waitUntil(lambda: len(panel.comparison.variants) == 4, timeout=LIST_MS)
    assert len(answers.warned) == 1 and "mnist_small" in answers.warned[0]
    assert "spirals" in answers.warned[0] and "not comparable" in answers.warned[0]


def test_stop_a_run_and_resume_it_from_the_runs_list_delete_refused_while_it_runs(
        qtbot, window, answers):
    window.optim_panel.epochs.setValue(40)
    panel = window.train_panel
    history = window.history

    def pause_after_two_epochs(event):
        if isinstance(event, EpochEnded) and event.epoch == 2:
            panel.runner.trainEvent.disconnect(pause_after_two_epochs)
            qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)

    started: list = []
    panel.runStarted.connect(lambda e: (started.append(e),
                                        panel.runner.trainEvent.connect(pause_after_two_epochs)))
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as ended:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(started), timeout=WAIT_MS)
        run_dir = started[0].run_dir
        # while it trains (paused), the list shows it running and will not delete it
        qtbot.waitUntil(lambda: _listed(window).get(run_dir) == RunStatus.RUNNING,
                        timeout=WAIT_MS)
        _wait_selected(qtbot, window, run_dir)
        assert not history.actions["delete"].isEnabled()
        assert "training" in history.actions["delete"].toolTip()
        assert not history.trigger("delete") and not answers.asked
        assert not history.buttons["resume"].isEnabled()
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    stopped = ended.args[0]
    assert stopped.stopped and stopped.run_dir == run_dir
    assert Path(run_dir).is_dir()
    # one Resume in the app: the training view pauses and continues, the Runs list resumes
    assert not hasattr(panel, "resume_button") and panel.pause_button.text() == "Pause"
    assert "Resume (Runs list) continues it" in panel.status.text()
    qtbot.waitUntil(lambda: _listed(window).get(run_dir) == RunStatus.STOPPED, timeout=LIST_MS)

    _click_run(qtbot, window, run_dir)
    resume = history.buttons["resume"]
    assert resume.isEnabled()
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as ended:
        qtbot.mouseClick(resume, Qt.MouseButton.LeftButton)
    finished = ended.args[0]
    assert isinstance(finished, RunFinished) and not finished.stopped
    assert finished.run_dir == run_dir
    assert [r["epoch"] for r in Run(Path(run_dir)).metrics("epoch")] == list(range(1, 41))
    qtbot.waitUntil(lambda: _listed(window).get(run_dir) == RunStatus.FINISHED, timeout=LIST_MS)
    assert not resume.isEnabled() and "finished" in resume.toolTip()


def test_delete_a_run_asks_first_and_a_run_made_by_the_cli_appears(qtbot, window, answers,
                                                                   tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(run_history, "show_folder", lambda path: shown.append(path) or True)
    run = _train(qtbot, window).run_dir
    history = window.history

    assert _context_action(qtbot, window, run, "folder")
    assert shown == [run]

    answers.next = dialogs.Button.No  # asked, and the person says no: nothing changes
    assert _context_action(qtbot, window, run, "delete")
    assert len(answers.asked) == 1 and Path(run).name in answers.asked[0]
    assert Path(run).is_dir()
    answers.next = dialogs.Button.Yes  # from the More menu beside the buttons this time
    assert history.actions["delete"] in history.more_menu.actions()
    with qtbot.waitSignal(history.deleted, timeout=WAIT_MS):
        history.actions["delete"].trigger()
    assert not Path(run).exists()
    qtbot.waitUntil(lambda: run not in _listed(window), timeout=LIST_MS)

    # a run trained by the command line, in another process, appears by itself
    spec = tmp_path / "spec.json"
    spec.write_text(window.model.spec().to_json(), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "workbench", "train", str(spec), "--epochs", "1",
                    "--quiet", "--threads", "1", "--runs-dir", str(window.runs.root)],
                   check=True, timeout=300, capture_output=True)
    qtbot.waitUntil(lambda: RunStatus.FINISHED in _listed(window).values(), timeout=LIST_MS)
    cli_run = next(iter(_listed(window)))
    _click_run(qtbot, window, cli_run)
    assert history.buttons["prune"].isEnabled() and history.buttons["export"].isEnabled()
    _shot(window, "runs_after_cli.png")


def test_the_list_follows_the_store_and_keeps_the_selection(qtbot, tmp_path):
    """Runs made, changed and removed behind the list's back show without a Refresh, and
    the selected run stays selected through every update."""
    from workbench.core.store.runs import RunStore
    from workbench.gui.shell.run_history import RunHistory

    store = RunStore(tmp_path / "runs")  # not made yet: the list watches for it
    history = RunHistory(store)
    qtbot.addWidget(history)
    spec = project.default_spec()
    first = store.create(spec)
    qtbot.waitUntil(lambda: len(history.infos) == 1, timeout=LIST_MS)
    history.select(str(first.path))
    assert history.buttons["open"].isEnabled()
    assert not history.buttons["prune"].isEnabled()  # created, not trained
    first.update_summary(status=RunStatus.FAILED, error="loss became NaN")
    qtbot.waitUntil(lambda: history.infos[0].status == RunStatus.FAILED, timeout=LIST_MS)
    assert not history.buttons["resume"].isEnabled()
    assert "checkpoint" in history.buttons["resume"].toolTip()
    first.save_checkpoint({"epoch": 1})  # failed after a checkpoint: it can go on from there
    history.select(str(tmp_path / "not-a-run"))  # never listed: the selection stays
    second = store.create(spec)
    qtbot.waitUntil(lambda: len(history.infos) == 2, timeout=LIST_MS)
    assert history.selected_path() == str(first.path)
    assert history.buttons["resume"].isEnabled()
    assert "failed" in history.buttons["export"].toolTip()
    store.delete(second.path)
    qtbot.waitUntil(lambda: len(history.infos) == 1, timeout=LIST_MS)
    assert history.selected_path() == str(first.path)
    history.close()
    assert history.tasks.threads() == 0 and history.feed.tasks.threads() == 0


def _row_texts(win: MainWindow) -> dict[str, str]:
    """What the Runs list shows in its Run column: run folder -> text."""
    tree = win.history.tree
    return {tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole): tree.topLevelItem(i).text(0)
            for i in range(tree.topLevelItemCount())}


def _in_view(win: MainWindow, run_dir: str) -> bool:
    tree = win.history.tree
    item = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
                if tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) == run_dir)
    return tree.viewport().rect().contains(tree.visualItemRect(item))


def test_the_runs_list_shows_eight_rows_tells_alike_runs_apart_and_keeps_its_run_in_view(
        qtbot, window, answers):
    """At 1280x800: eight rows at least; runs of one name say what differs; the run asked
    for, and a new one, are scrolled into view; the Delete key deletes, asking first."""
    history = window.history
    assert history.rows_shown() >= 8, history.rows_shown()
    spec = window.model.spec()
    made = []
    for lr in (0.02, 0.05, 0.02, 0.02, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        run = window.runs.create(spec.with_value("optim.lr", lr))
        run.update_summary(status=RunStatus.FINISHED, test_accuracy=0.5)
        made.append(str(run.path))
    qtbot.waitUntil(lambda: len(_listed(window)) == len(made), timeout=LIST_MS)
    texts = _row_texts(window)
    assert len(set(texts.values())) == len(texts), texts  # no two rows read the same
    assert texts[made[1]] == "spirals · lr 0.05"
    assert texts[made[0]].startswith("spirals · lr 0.02 #")  # three alike: their short ids
    _shot(window, "runs_alike.png")

    # the oldest run, asked for (as opening it does), is scrolled into view
    oldest = made[0]
    history.tree.scrollToTop()
    assert not _in_view(window, oldest)
    history.select(oldest)
    assert history.selected_path() == oldest and _in_view(window, oldest)

    # a new run, with the list scrolled to its end, is selected and shown
    history.tree.scrollToBottom()
    end = _train(qtbot, window)
    assert history.selected_path() == end.run_dir and _in_view(window, end.run_dir)
    qtbot.waitUntil(lambda: _listed(window).get(end.run_dir) == RunStatus.FINISHED,
                    timeout=LIST_MS)
    assert _in_view(window, end.run_dir)  # and stays shown as the list updates

    # the Delete key, on the list: asked, then deleted
    _click_run(qtbot, window, made[4])
    answers.next = dialogs.Button.No
    qtbot.keyClick(history.tree, Qt.Key.Key_Delete)
    assert len(answers.asked) == 1 and Path(made[4]).name in answers.asked[0]
    assert Path(made[4]).is_dir()
    answers.next = dialogs.Button.Yes
    with qtbot.waitSignal(history.deleted, timeout=WAIT_MS):
        qtbot.keyClick(history.tree, Qt.Key.Key_Delete)
    assert not Path(made[4]).exists()


def test_the_runs_lists_size_is_kept_and_the_welcome_waits_for_the_runs(qtbot, tmp_path,
                                                                        answers):
    """The person's size of the Runs list comes back with the window. The welcome strip is
    offered only on a first start: a store that holds runs is no first start, though the list
    was still empty when the window was made (it showed on every start)."""
    def opened() -> MainWindow:
        win = _open_window(qtbot, tmp_path / "runs")
        qtbot.waitUntil(lambda: win.history.listed_once, timeout=LIST_MS)
        return win

    first = opened()
    assert first.welcome.isVisible()  # nothing trained, nothing opened: a first start
    first.resizeDocks([first.history_dock], [180], Qt.Orientation.Vertical)  # made smaller
    qtbot.waitUntil(lambda: abs(first.history_dock.height() - 180) <= 2)
    kept = first.history_dock.height()
    spec = project.default_spec()
    run = first.runs.create(spec)
    run.update_summary(status=RunStatus.FINISHED)
    first.undo.setClean()
    first.close()

    again = opened()
    assert not again.welcome.isVisible()  # the store holds a run: not a first start
    assert abs(again.history_dock.height() - kept) <= 2, (again.history_dock.height(), kept)
    again.undo.setClean()
    again.close()
    assert again.workspace.jobs.names() == []


def test_the_pickers_tell_two_runs_of_one_experiment_apart(qtbot, window):
    """Two runs of the same experiment: Fork's picker offered two identical lines; every
    picker labels runs as the Runs list does (the rule that says what differs)."""
    window.optim_panel.epochs.setValue(2)
    first = _train(qtbot, window).run_dir
    second = _train(qtbot, window).run_dir
    texts = _row_texts(window)
    assert texts[first] != texts[second] and texts[first].startswith("spirals #")
    window.actions["fork"].trigger()  # Tools > Fork run…
    dialog = window.tools.get("fork")
    qtbot.waitUntil(lambda: dialog.run_combo.count() == 2, timeout=LIST_MS)
    lines = {dialog.run_combo.itemData(i): dialog.run_combo.itemText(i) for i in range(2)}
    assert lines[first] != lines[second]
    assert lines[first].startswith(texts[first]) and lines[second].startswith(texts[second])
    dialog.reject()
    window.actions["prune"].trigger()  # the tools' run picker, the same rule
    picker = window.tools.get("prune").picker
    qtbot.waitUntil(lambda: picker.count() == 2, timeout=LIST_MS)
    offered = {picker.itemData(i): picker.itemText(i) for i in range(2)}
    assert offered[first].startswith(texts[first]) and offered[second].startswith(texts[second])
