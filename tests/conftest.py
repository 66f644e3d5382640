"""Test set-up: headless Qt, and every per-user folder inside the test's temporary folder."""

from __future__ import annotations

import gc
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Runs, caches and settings go to a temporary folder, never the user's."""
    home = tmp_path / "workbench-home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return home


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread(request):
    """In a test with Qt, the cyclic collector runs on the GUI thread only, as in the app
    (`warmup.collect_on_gui_thread`): on a worker it can free a widget and deadlock."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("qapp")
    from workbench.gui.shell.warmup import collect_on_gui_thread

    collector = collect_on_gui_thread(0.5)
    try:
        yield
    finally:
        collector.timer.stop()
        gc.collect()  # what the test left, here on the GUI thread
        gc.enable()
