"""Beyond one process from the app: the copied torchrun command trains the saved spec."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QGuiApplication  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.gui import dialogs  # noqa: E402
from workbench.gui.main_window import MainWindow  # noqa: E402


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    told: list[str] = []
    monkeypatch.setattr(dialogs, "inform", lambda _p, _t, text: told.append(text))
    monkeypatch.setattr(dialogs, "ask", lambda *a, **k: dialogs.Button.Discard)
    from test_gui_project import FakeTrainPanel

    win = MainWindow(train_panel_factory=FakeTrainPanel)
    qtbot.addWidget(win)
    if win.train_panel is None:
        with qtbot.waitSignal(win.trainPanelReady, timeout=120_000):
            pass
    win.told = told
    yield win
    win.undo.setClean()
    win.close()


def test_copy_launch_command_saves_the_spec_and_the_line_runs(window, tmp_path):
    window.path = tmp_path / "exp.json"
    line = window.copy_launch_command()
    assert QGuiApplication.clipboard().text() == line
    assert line in window.told[0]
    args = shlex.split(line)
    assert args[0] == "torchrun" and "--standalone" in args
    spec_path = tmp_path / "exp.launch.json"
    assert args[args.index("workbench.commands.rank") + 1] == str(spec_path)
    assert specmod.load(spec_path) == window.model.spec()
    # The same line, run with this Python's torchrun module, trains the experiment.
    result_file = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", *args[1:], "--epochs", "1",
           "--runs-dir", str(tmp_path / "runs"), "--result-file", str(result_file)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(result_file.read_text())["status"] == "finished"


def test_all_gpus_is_off_without_several_gpus(window):
    assert not window.actions["all_gpus"].isEnabled()


def test_settle_heap_freezes_what_is_alive_and_still_collects_later_garbage():
    import gc
    import weakref

    from workbench.gui.warmup import settle_heap

    class Node:
        pass

    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        later = Node()
        later.self = later  # a cycle made after the freeze: only the collector frees it
        alive = weakref.ref(later)
        del later
        gc.collect()
        assert alive() is None
    finally:
        gc.unfreeze()
