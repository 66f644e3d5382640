"""Closing never waits forever: a job that ignores its stop (a connect to a database server
that never answers) is abandoned after a few seconds with a line in the log, delivers nothing
more, and the process still ends cleanly; closing the window names every running job."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from workbench.core.workspace import STOP_WAIT_MS, JobRegistry  # noqa: E402
from workbench.gui.threads.tasks import Tasks  # noqa: E402
from workbench.gui.threads.worker import ThreadWorker, abandoned_still_running  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WAIT_MS = 60_000


def _stubborn(release: threading.Event):
    """A work that ignores its cancel until the test lets it go."""

    def work(_emit, _cancel):
        release.wait()
        return "late"

    return work


def test_a_worker_that_ignores_its_stop_is_abandoned_and_delivers_nothing(qtbot, caplog):
    release = threading.Event()
    jobs = JobRegistry()
    worker = ThreadWorker(_stubborn(release), name="workbench-stuck", jobs=jobs,
                          title="A stuck job")
    delivered: list[object] = []
    worker.returned.connect(delivered.append)
    worker.finished.connect(lambda: delivered.append("finished"))
    worker.start()
    assert jobs.titles() == ["A stuck job"]
    left_before = abandoned_still_running()
    try:
        with caplog.at_level(logging.WARNING, logger="workbench.gui.threads.worker"):
            assert not worker.stop_and_wait(100)
        assert worker.abandoned and worker.is_running()
        assert abandoned_still_running() == left_before + 1
        assert len(jobs) == 0  # left behind: closing no longer waits for it
        assert "A stuck job did not end within 0.1 s" in caplog.text
        assert "abandoned" in caplog.text
        assert not worker.stop_and_wait()  # asked again: it does not wait a second time
    finally:
        release.set()
    qtbot.waitUntil(lambda: not worker.is_running(), timeout=WAIT_MS)
    qtbot.wait(50)  # anything it might still have queued would arrive now
    assert delivered == [] and abandoned_still_running() == left_before


def test_tasks_shutdown_waits_for_all_together_then_abandons(qtbot, caplog):
    from PySide6.QtCore import QObject

    owner = QObject()
    release = threading.Event()
    jobs = JobRegistry()
    tasks = Tasks(owner, jobs)
    done: list[object] = []
    for kind in ("a", "b", "c"):
        tasks.start(kind, _stubborn(release), done=done.append, title=f"job {kind}")
    tasks.start("quick", lambda _emit, cancel: cancel.wait(WAIT_MS / 1000))  # ends on cancel
    try:
        assert sorted(jobs.titles()) == ["job a", "job b", "job c"]  # housekeeping: unnamed
        with caplog.at_level(logging.WARNING):
            assert not tasks.shutdown(300)
        assert tasks.threads() == 0 and len(jobs) == 0
        assert caplog.text.count("abandoned") == 3
    finally:
        release.set()
    names = {"workbench-a", "workbench-b", "workbench-c"}
    qtbot.waitUntil(lambda: not any(t.name in names for t in threading.enumerate()),
                    timeout=WAIT_MS)
    assert done == []


def test_the_registry_waits_once_for_all_its_jobs(qtbot):
    """Three stuck jobs cost one limit, not three: they are asked to stop side by side."""
    release = threading.Event()
    jobs = JobRegistry()
    workers = [ThreadWorker(_stubborn(release), name=f"workbench-{i}", jobs=jobs)
               for i in range(3)]
    for worker in workers:
        worker.start()
    try:
        assert not jobs.stop_all(200)
        assert all(w.abandoned for w in workers) and len(jobs) == 0
    finally:
        release.set()
    qtbot.waitUntil(lambda: not any(w.is_running() for w in workers), timeout=WAIT_MS)


CLOSE_SCRIPT = textwrap.dedent("""
    import json, logging, sys, threading, time
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    import torch  # the window's warm-up is then done at once
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from workbench.gui import app
    from workbench.gui.shell.main_window import MainWindow
    from workbench.gui.widgets import dialogs

    asked = []
    def ask(_parent, title, text, *args, **kwargs):
        asked.append(text)
        return dialogs.Button.Yes
    dialogs.ask = ask
    never = threading.Event()  # nobody sets it: the job ignores every stop

    def close_with_a_stuck_job():
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
        window.tasks.start("stuck", lambda _emit, _cancel: never.wait(),
                           title="Connecting to a database that never answers")
        window.undo.setClean()
        t0 = time.monotonic()
        closed = window.close()
        print(json.dumps({"closed": closed, "seconds": time.monotonic() - t0,
                          "asked": asked, "jobs": window.workspace.jobs.names()}), flush=True)

    QTimer.singleShot(0, close_with_a_stuck_job)
    sys.exit(app.main([sys.argv[0]]))  # the app's own exit, the stuck job's thread still waiting
""")


def test_closing_the_window_with_a_job_that_ignores_its_stop_returns_and_exits_0(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_HOME=str(tmp_path / "home"))
    try:
        done = subprocess.run([sys.executable, "-c", CLOSE_SCRIPT],
                              cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=STOP_WAIT_MS / 1000 + 240)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"closing the window waited for a job that ignores its stop: {exc}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(lines[-1])
    assert report["closed"] and report["jobs"] == []
    assert "Connecting to a database that never answers" in report["asked"][0]
    assert "Connecting to a database that never answers did not end within" in done.stderr
    assert "exiting with 1 abandoned job(s) still running" in done.stderr
    assert "Fatal Python error" not in done.stderr


def test_closing_names_the_run_and_the_comparison_and_stops_both(qtbot, monkeypatch, tmp_path):
    """It used to ask about the training run only, and stop a comparison without asking."""
    from workbench.core.workspace import Workspace
    from workbench.gui.shell.main_window import MainWindow
    from workbench.gui.widgets import dialogs

    asked: list[str] = []
    reply = {"answer": dialogs.Button.No}

    def ask(_parent, _title, text, *args, **kwargs):
        asked.append(text)
        return reply["answer"]

    monkeypatch.setattr(dialogs, "ask", ask)
    window = MainWindow(workspace=Workspace(tmp_path / "runs"))
    qtbot.addWidget(window)
    if window.train_panel is None:
        with qtbot.waitSignal(window.trainPanelReady, timeout=120_000):
            pass
    window.optim_panel.epochs.setValue(500)
    window.undo.setClean()
    with qtbot.waitSignal(window.train_panel.runStarted, timeout=WAIT_MS):
        window.train_panel.start()
    compare = window.tools.open("compare")
    compare.set_optimizers({"sgd": 0.1, "adam": 0.01})
    compare.set_field("(nothing)", "")
    compare.run()
    qtbot.waitUntil(lambda: len(window.workspace.jobs.titles()) == 2, timeout=WAIT_MS)
    assert not window.close()  # the person says no: both go on
    assert "Training spirals" in asked[0] and "Comparison of 2 variants" in asked[0]
    assert window.train_panel.is_running() and compare.is_running()
    reply["answer"] = dialogs.Button.Yes
    assert window.close()
    assert window.workspace.jobs.names() == []
    assert not window.train_panel.is_running() and not compare.is_running()
