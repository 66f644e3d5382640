"""Faults as the app shows them: an interrupted run is listed as such and Tools > Resume
continues it exactly; a bug's banner names its traceback and opens it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from test_gui_project import Answers, _open  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.core.store.runs import Run, RunStatus, RunStore  # noqa: E402
from workbench.core.training.events import EpochEnded, RunFinished  # noqa: E402
from workbench.core.training.loop import Trainer  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402


def interrupted_run(root) -> str:
    """A run whose process went away after two epochs: its trainer is dropped mid-run."""
    spec = specmod.from_dict({
        "name": "cut", "data": {"name": "moons", "samples": 300},
        "model": {"layers": [{"type": "Linear", "out": 8}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "train": {"epochs": 4, "batch_size": 32, "device": "cpu"}})
    events = Trainer(spec, runs=RunStore(root)).events()
    started = next(events)
    for event in events:
        if isinstance(event, EpochEnded) and event.epoch == 2:
            break
    events.close()  # the process is gone: its lock with it, its summary still says running
    return started.run_dir


def test_the_app_shows_an_interrupted_run_and_resumes_it(qtbot, monkeypatch):
    Answers(monkeypatch)
    win = _open(qtbot)
    run_dir = interrupted_run(win.runs.root)
    qtbot.waitUntil(lambda: [i.status for i in win.history.infos] == [RunStatus.INTERRUPTED],
                    timeout=20_000)  # the Runs list follows the store by itself
    item = win.history.tree.topLevelItem(0)
    assert item.text(1) == RunStatus.INTERRUPTED
    assert "Resume continues it" in item.toolTip(1)
    panel = win.train_panel
    with qtbot.waitSignal(panel.runEnded, timeout=120_000) as ended:
        assert win.actions["resume_run"].isEnabled()
        win.actions["resume_run"].trigger()
    assert isinstance(ended.args[0], RunFinished) and ended.args[0].run_dir == run_dir
    assert [r["epoch"] for r in Run(run_dir).metrics("epoch")] == [1, 2, 3, 4]
    assert Run(run_dir).summary()["status"] == "finished"
    win.undo.setClean()
    win.close()


def test_a_bugs_banner_names_its_traceback_and_opens_it(qtbot, monkeypatch, tmp_path):
    from PySide6.QtGui import QDesktopServices

    from workbench.core.training import monitors
    from workbench.core.training.events import RunFailed
    from workbench.gui.train.train_panel import TrainPanel

    def broken(self, trainer, record):
        raise ZeroDivisionError("a bug in a monitor")

    monkeypatch.setattr(monitors.BoundaryMonitor, "on_epoch_end", broken)
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url))
    spec = specmod.from_dict({"name": "bug", "data": {"name": "moons", "samples": 200},
                              "model": {"layers": [{"type": "Linear", "out": 2}]},
                              "train": {"epochs": 2, "device": "cpu"}})
    panel = TrainPanel(lambda: spec, Workspace(tmp_path / "runs"))
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.runEnded, timeout=120_000) as ended:
        panel.start()
    failed = ended.args[0]
    assert isinstance(failed, RunFailed) and failed.details.endswith("traceback.txt")
    assert "ZeroDivisionError" in Path(failed.details).read_text()
    assert not panel.banner.isHidden() and failed.details in panel.banner.text.text()
    panel.banner.details_button.click()
    assert [url.toLocalFile() for url in opened] == [failed.details]
