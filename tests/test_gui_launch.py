"""Beyond one process from the app: the launch dialog's torchrun command trains the saved spec."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QGuiApplication  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.gui.shell.main_window import MainWindow  # noqa: E402
from workbench.gui.widgets import dialogs  # noqa: E402


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


def test_the_launch_dialogs_copied_command_saves_the_spec_and_the_line_runs(window, tmp_path):
    """Tools > Launch on several machines…, one node whose first node is this machine: the
    copied line (built by the core's ClusterLaunch) trains the saved experiment."""
    import socket

    window.path = tmp_path / "exp.json"
    dialog = window.launch_dialog()
    with socket.socket() as free:  # a port nothing listens on, for the rendezvous
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    dialog.head.setText("127.0.0.1")
    dialog.port.setValue(port)
    dialog.runs_dir.setText(str(tmp_path / "runs"))
    line = dialog.copy()
    assert QGuiApplication.clipboard().text() == line == dialog.command
    args = shlex.split(line)
    assert args[0] == "torchrun" and "--nnodes=1" in args
    assert f"--rdzv-endpoint=127.0.0.1:{port}" in args
    spec_path = tmp_path / "exp.launch.json"
    assert args[args.index("workbench.commands.rank") + 1] == str(spec_path)
    assert specmod.load(spec_path) == window.model.spec()
    # The same line, run with this Python's torchrun module, trains the experiment.
    result_file = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", *args[1:], "--epochs", "1",
           "--result-file", str(result_file)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(result_file.read_text())["status"] == "finished"
    dialog.close()


def test_all_gpus_is_off_without_several_gpus(window):
    assert not window.actions["all_gpus"].isEnabled()


def test_settle_heap_freezes_what_is_alive_and_still_collects_later_garbage():
    import gc
    import weakref

    from workbench.gui.shell.warmup import settle_heap

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


def test_stopping_all_gpus_stops_torchrun_and_every_rank(qtbot, tmp_path):
    """"Train on all GPUs" runs `workbench train --nproc N`, which runs torchrun, which runs
    the ranks; Stop must end them all (here two CPU ranks), the run saved as stopped."""
    from workbench.core.store.runs import Run
    from workbench.core.training.distributed import descendants, kill_tree
    from workbench.gui.shell.launch import MultiGpuRun

    spec = specmod.from_dict({
        "name": "all", "data": {"name": "moons", "samples": 3000},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": 500, "batch_size": 8, "device": "cpu"}})
    runs = tmp_path / "runs"
    run = MultiGpuRun(spec, tmp_path / "spec.json", 2, runs)
    ended = []
    run.ended.connect(ended.append)
    run.start()
    pid = int(run.process.processId())
    try:
        qtbot.waitUntil(lambda: any('"kind": "epoch"' in p.read_text()
                                    for p in runs.glob("*/metrics.jsonl")), timeout=300_000)
        tree = descendants(pid)
        assert len(tree) >= 3  # torchrun and two ranks below the command
        run.stop_and_wait()
    finally:
        kill_tree(pid)  # nothing outlives a failed test
    assert not run.is_running()
    qtbot.waitUntil(lambda: bool(ended), timeout=10_000)
    assert ended[0]["status"] == "stopped"
    assert Run(ended[0]["run_dir"]).summary()["status"] == "stopped"

    def alive(p):
        try:
            with open(f"/proc/{p}/stat") as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    qtbot.waitUntil(lambda: not any(alive(p) for p in tree), timeout=60_000)


def test_a_run_on_all_gpus_is_a_job_and_keeps_only_the_tail_of_its_output(qtbot, tmp_path):
    """It was not in the workspace's registry (closing stopped it without asking) and kept
    all of its stderr; a command that cannot start said nothing."""
    from workbench.core.workspace import JobRegistry
    from workbench.gui.shell.launch import TAIL_BYTES, MultiGpuRun

    jobs = JobRegistry()
    spec = specmod.from_dict({"name": "loud", "data": {"name": "moons"},
                              "model": {"layers": [{"type": "Linear", "out": 2}]}})
    run = MultiGpuRun(spec, tmp_path / "spec.json", 2, tmp_path / "runs", jobs=jobs)
    noisy = ("import sys\n"
             "for i in range(20000): sys.stderr.write(f'warning {i}: ' + 'x' * 80 + '\\n')\n"
             "sys.stderr.write('RuntimeError: the last words\\n'); sys.exit(3)")
    run.process.setProgram(sys.executable)  # a child that writes 1.8 MB to stderr, then fails
    run.process.setArguments(["-c", noisy])
    with qtbot.waitSignal(run.ended, timeout=120_000) as ended:
        run.start()
        assert jobs.titles() == ["Training loud on 2 GPUs"]
    assert ended.args[0] == {"status": "failed", "error": "RuntimeError: the last words"}
    assert len(run.err.data) <= TAIL_BYTES and run.err.dropped > 1_000_000
    assert len(jobs) == 0

    missing = MultiGpuRun(spec, tmp_path / "spec.json", 2, tmp_path / "runs", jobs=jobs)
    missing.process.setProgram(str(tmp_path / "no-such-program"))
    with qtbot.waitSignal(missing.ended, timeout=60_000) as ended:
        missing.start()
    assert ended.args[0]["status"] == "failed" and "could not start" in ended.args[0]["error"]
    assert len(jobs) == 0


def test_the_tail_keeps_whole_lines_of_the_last_bytes():
    from workbench.gui.shell.launch import StreamTail

    tail = StreamTail(limit=16)
    tail.add(b"aaaa\nbbbb\ncccc\n")
    assert tail.lines() == ["aaaa", "bbbb", "cccc"] and tail.dropped == 0
    tail.add(b"dd\n")  # keeps "aa\nbbbb\ncccc\ndd\n": the cut line is dropped
    assert tail.lines() == ["bbbb", "cccc", "dd"] and tail.dropped == 2
    tail.add(b"eeee\n")  # keeps "bb\ncccc\ndd\neeee\n"
    assert tail.lines() == ["cccc", "dd", "eeee"]
    tail.add(b"ff\n")  # keeps "cccc\ndd\neeee\nff\n": cut where a line starts
    assert tail.lines() == ["cccc", "dd", "eeee", "ff"] and len(tail.data) == 16
