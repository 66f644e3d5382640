"""The fault suite: what a person may do to Workbench that it must survive.

- `kill -9` at random moments over many short runs (and their resumes): every run is
  finished, stopped or interrupted, every interrupted one with a checkpoint resumes to the end,
  every JSON file parses and every checkpoint loads; no epoch is logged twice.
- A runs folder that turns read-only, a disk that fills: the CLI says so in one line, exit 1,
  and the run is left failed or interrupted, never "running" with a live process.
- Two processes resuming one run: one trains, the other is told who holds it.
- 100 start/stop cycles of the app's real training panel: no thread left, memory flat.
- SIGTERM in the long commands (a quantized export, `prune --finetune`, a compress search,
  lr-find), sent once each has reached a given point of its work (never after a fixed time):
  exit 143, nothing half-made left, and the same command (or `resume`) then finishes.

`WORKBENCH_FAULT_RUNS` sets how many runs the kill test kills (default 8: about a minute on
two busy cores); the suite is in the default test run.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from workbench.cli import main
from workbench.core.store import runs as runs_module
from workbench.core.store.runs import Run, RunStatus, RunStore
from workbench.core.workspace import Workspace

SPEC = {
    "name": "fault",
    "data": {"name": "moons", "samples": 2000, "noise": 0.2},
    "model": {"layers": [{"type": "Linear", "out": 32}, {"type": "ReLU"},
                         {"type": "Linear", "out": 2}]},
    "optim": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 12, "batch_size": 16, "seed": 0, "device": "cpu"},
}
KILLS = int(os.environ.get("WORKBENCH_FAULT_RUNS", "8"))


def _spec_file(tmp_path: Path, **train) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**SPEC, "train": {**SPEC["train"], **train}}))
    return path


def _start(*args: str) -> tuple[subprocess.Popen, queue.Queue]:
    proc = subprocess.Popen([sys.executable, "-m", "workbench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stderr:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def _wait_for_start(proc: subprocess.Popen, lines: queue.Queue) -> bool:
    """True once the run has started training; False when the process ended first."""
    while True:
        line = lines.get(timeout=300)
        if line == "":
            proc.wait(timeout=60)
            return False
        if line.startswith("run "):
            return True


def check_store(root: Path) -> list:
    """Every file of every run is whole; returns the store's view of the runs."""
    infos = RunStore(root).list()
    for info in infos:
        assert info.error is None, info.error
        json.loads((info.path / "spec.json").read_text())
        json.loads((info.path / "summary.json").read_text())
        lines = (info.path / "metrics.jsonl").read_text().splitlines() \
            if (info.path / "metrics.jsonl").exists() else []
        for line in lines[:-1]:  # the last line may be torn by a kill; the reader skips it
            json.loads(line)
        for name in ("checkpoint.pt", "model.pt"):
            if (info.path / name).exists():
                torch.load(info.path / name, weights_only=True)
        assert not [p for p in info.path.iterdir() if p.name.endswith(".tmp")
                    and time.time() - p.stat().st_mtime > 120]
        assert info.status in (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.INTERRUPTED)
    return infos


@pytest.mark.slow
def test_random_kill_9_leaves_every_run_whole_and_resumable(tmp_path):
    rng = random.Random(12)
    root = tmp_path / "runs"
    spec = _spec_file(tmp_path)
    killed = 0
    while killed < KILLS:
        interrupted = [i for i in RunStore(root).list() if i.resumable]
        if interrupted and rng.random() < 0.5:  # kill a resume too
            proc, lines = _start("resume", str(interrupted[0].path), "--quiet")
        else:
            proc, lines = _start("train", str(spec), "--runs-dir", str(root), "--quiet")
        try:
            if _wait_for_start(proc, lines):
                time.sleep(rng.uniform(0.0, 1.5))
                proc.kill()
                killed += 1
            proc.wait(timeout=120)
        finally:
            proc.kill()
        check_store(root)
    if not any(i.status == RunStatus.INTERRUPTED for i in check_store(root)):
        # every kill came after its run (or resume) had finished: one that cannot miss
        proc, lines = _start("train", str(spec), "--runs-dir", str(root), "--quiet")
        try:
            assert _wait_for_start(proc, lines)
            proc.kill()
            proc.wait(timeout=120)
        finally:
            proc.kill()
    infos = check_store(root)
    assert any(i.status == RunStatus.INTERRUPTED for i in infos)
    for info in infos:
        if info.status == RunStatus.INTERRUPTED and not info.resumable:
            done = subprocess.run([sys.executable, "-m", "workbench", "resume", str(info.path)],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 2 and "cannot be resumed" in done.stderr
            continue
        if info.status == RunStatus.FINISHED:
            continue
        done = subprocess.run([sys.executable, "-m", "workbench", "resume", str(info.path),
                               "--quiet"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        epochs = [r["epoch"] for r in Run(info.path).metrics("epoch")]
        assert epochs == list(range(1, SPEC["train"]["epochs"] + 1))
        assert Run(info.path).summary()["status"] == "finished"
    check_store(root)


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_a_folder_that_turns_read_only_or_full_fails_in_one_line(tmp_path, monkeypatch,
                                                                 capsys, code):
    """Once the first checkpoint is written, every write in the store fails: the CLI reports
    it in one line (not as a bug), exit 1, and the run shows as interrupted, resumable from
    that checkpoint (its summary could not say more)."""
    real_text, real_bytes = runs_module.write_text_atomic, runs_module.write_bytes_atomic
    checkpointed = []

    def refuse(path):
        if checkpointed:
            raise OSError(code, os.strerror(code), str(path))

    def write_text(path, text):
        refuse(path)
        real_text(path, text)

    def write_bytes(path, data):
        refuse(path)
        real_bytes(path, data)
        if Path(path).name == "checkpoint.pt":
            checkpointed.append(path)

    monkeypatch.setattr(runs_module, "write_text_atomic", write_text)
    monkeypatch.setattr(runs_module, "write_bytes_atomic", write_bytes)
    root = tmp_path / "runs"
    code_out = main(["train", str(_spec_file(tmp_path, epochs=3)), "--runs-dir", str(root),
                     "--quiet"])
    captured = capsys.readouterr()
    assert code_out == 1
    failed = [ln for ln in captured.err.splitlines() if ln.startswith("workbench: run failed")]
    assert len(failed) == 1 and "cannot write" in failed[0] and "bug" not in captured.err
    monkeypatch.undo()
    (info,) = RunStore(root).list()
    assert info.status == RunStatus.INTERRUPTED and info.resumable
    assert main(["resume", str(info.path), "--quiet"]) == 0
    assert [r["epoch"] for r in Run(info.path).metrics("epoch")] == [1, 2, 3]


def test_two_processes_resuming_one_run_one_trains_the_other_is_told(tmp_path):
    root = tmp_path / "runs"
    first, lines = _start("train", str(_spec_file(tmp_path, epochs=400)), "--runs-dir",
                          str(root), "--quiet")
    try:
        assert _wait_for_start(first, lines)
        (info,) = RunStore(root).list()
        assert info.status == RunStatus.RUNNING
        second = subprocess.run([sys.executable, "-m", "workbench", "resume", str(info.path)],
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert f"is in use by process {first.pid} on host" in second.stderr
        first.send_signal(signal.SIGINT)
        out, _ = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 130
    assert json.loads(out.strip().splitlines()[-1])["status"] == "stopped"
    steps = [r["global_step"] for r in Run(info.path).metrics()]
    assert steps == sorted(steps)  # one writer: the log never went back


def _python_threads() -> set[threading.Thread]:
    """Threads Python started (not the stand-ins it makes for Qt's threads when they log)."""
    return {t for t in threading.enumerate() if type(t).__name__ != "_DummyThread"}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_hundred_start_stop_cycles_in_the_app_leave_nothing_running(qtbot, tmp_path):
    pytest.importorskip("PySide6")
    from workbench import spec as specmod
    from workbench.gui.train.train_panel import TrainPanel

    spec = specmod.from_dict({**SPEC, "data": {**SPEC["data"], "samples": 400},
                              "train": {**SPEC["train"], "epochs": 1000}})
    panel = TrainPanel(lambda: spec, Workspace(tmp_path / "runs"))
    qtbot.addWidget(panel)
    threads_before = _python_threads()
    rss = []
    for cycle in range(100):
        with qtbot.waitSignal(panel.runEnded, timeout=120_000):
            assert panel.start()
            if cycle % 2:  # every other time, let it reach training first
                qtbot.waitUntil(lambda: panel.started is not None, timeout=120_000)
            panel.stop()
        assert not panel.is_running() and panel.runner.qthread.isFinished()
        if cycle in (19, 99):
            gc.collect()
            rss.append(_rss_mb())
    assert _python_threads() <= threads_before
    assert rss[1] - rss[0] < 50, rss  # MB over the last 80 cycles
    ends = [i.status for i in RunStore(tmp_path / "runs").list()]
    assert ends and set(ends) <= {RunStatus.STOPPED, RunStatus.FINISHED}


# -- long commands under SIGTERM: keyed to their progress, never to a clock -------------------

def _wait_for_line(proc: subprocess.Popen, lines: queue.Queue, start: str) -> bool:
    """True once the command wrote a stderr line starting with `start`; False when it ended
    without one."""
    while True:
        line = lines.get(timeout=300)
        if line == "":
            proc.wait(timeout=60)
            return False
        if line.lstrip().startswith(start):
            return True


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> str:
    from prune_fixtures import MOONS, train_run

    return train_run(tmp_path_factory.mktemp("runs"), MOONS,
                     data={"name": "moons", "samples": 600}, batch_size=32)


def test_sigterm_stops_a_quantized_export_and_removes_its_work_folder(trained_run, tmp_path,
                                                                        monkeypatch):
    """It died on SIGTERM leaving /tmp/workbench-quantize-*; now the step in flight ends,
    nothing is written, the work folder goes, exit 143, and the same command then works."""
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(work))
    out = tmp_path / "q.onnx"
    args = ("export", trained_run, str(out), "--quantize", "static", "--per-channel", "no",
            "--max-drop", "100")
    proc, lines = _start(*args)
    try:
        while not list(work.glob("workbench-quantize-*")):  # its work has begun
            assert proc.poll() is None, "the export ended before its work folder was made"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert not out.exists() and not list(work.glob("workbench-quantize-*"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".q.onnx")]
    again = subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert out.is_file() and not list(work.glob("workbench-quantize-*"))


def test_a_killed_quantization_leaves_a_work_folder_the_next_one_removes(trained_run,
                                                                         tmp_path, monkeypatch):
    from workbench.core.store import atomic
    from workbench.core.tools.quantize import WORK_PREFIX

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(atomic.tempfile, "tempdir", None)  # read TMPDIR afresh
    code = ("import os\nfrom workbench.core.store.atomic import work_dir\n"
            f"with work_dir({WORK_PREFIX!r}) as w:\n    (w / 'float.onnx').write_bytes(b'x')\n"
            "    print('working', flush=True)\n    os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9 and "working" in proc.stdout
    (left,) = tmp_path.glob(f"{WORK_PREFIX}*")
    then = time.time() - 3600
    os.utime(left / atomic.WORK_LOCK, (then, then))
    with atomic.work_dir(WORK_PREFIX) as live:
        assert atomic.remove_stale_work_dirs(WORK_PREFIX) == [left]
        assert live.is_dir() and not left.exists()


def test_sigterm_during_prune_finetune_leaves_a_run_that_says_what_it_is(tmp_path):
    """SIGTERM used to kill `prune --finetune` and leave a run whose `pruned_from` and
    `sparsity` stayed null after resume; now it stops after the step in flight (143), the
    run is stopped with what pruning decided, and `resume` finishes it keeping both."""
    from prune_fixtures import MOONS, train_run

    root = tmp_path / "runs"
    parent = train_run(root, MOONS, data={"name": "moons", "samples": 20_000}, batch_size=16)
    proc, lines = _start("prune", parent, "--amount", "0.5", "--finetune", "6")
    try:
        assert _wait_for_line(proc, lines, "fine-tuning epoch 1:")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "stopped" and result["pruned_from"] == parent
    run = Run(Path(result["run_dir"]))
    summary = run.summary()
    assert summary["pruned_from"] == parent and summary["sparsity"] == result["sparsity"] > 0.3
    assert main(["resume", str(run.path), "--quiet"]) == 0
    summary = run.summary()
    assert summary["status"] == "finished" and summary["epochs_done"] == 6
    assert summary["pruned_from"] == parent and summary["sparsity"] == result["sparsity"]


def test_sigterm_stops_a_compress_search_which_keeps_what_it_found(trained_run, tmp_path):
    import shutil

    run_dir = tmp_path / "runs" / Path(trained_run).name
    shutil.copytree(trained_run, run_dir)
    proc, lines = _start("compress", str(run_dir), "--max-drop", "5", "--finetune", "1",
                         "--per-channel", "no")
    try:
        assert _wait_for_line(proc, lines, "measure")  # the original is measured
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert json.loads(out.strip().splitlines()[-1])["stopped"] is True
    from workbench.core.tools.compress import last_target, variants_of

    assert last_target(run_dir)["stopped"] is True
    assert {v.kind for v in variants_of(run_dir)} >= {"fp32"}
    again = subprocess.run([sys.executable, "-m", "workbench", "compress", str(run_dir),
                            "--per-channel", "no"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]


def test_sigterm_stops_lr_find_after_its_step(tmp_path):
    proc, lines = _start("lr-find", str(_spec_file(tmp_path)), "--steps", "100000",
                         "--start", "1e-9", "--end", "1e-8")
    try:
        assert _wait_for_line(proc, lines, "range test of")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143


def test_a_second_signal_unwinds_at_once_and_still_removes_the_work_folder(tmp_path,
                                                                         monkeypatch):
    """A long command's second Ctrl-C stops at once, but by unwinding: the work folder and
    temporary files go on the way out (a plain kill left /tmp/workbench-quantize-*)."""
    from workbench.commands.signals import SignalStop, StopNow
    from workbench.core.store import atomic

    monkeypatch.setattr(atomic.tempfile, "tempdir", str(tmp_path))
    stopped = []
    with pytest.raises(StopNow) as caught, SignalStop(lambda: stopped.append(1)) as stop, \
            atomic.work_dir("workbench-quantize-") as work:
        stop._handle(signal.SIGTERM, None)
        assert stop.event.is_set() and stopped == [1] and stop.exit_code == 143
        (work / "float.onnx").write_bytes(b"x")
        stop._handle(signal.SIGTERM, None)
    assert caught.value.code == 143 and not work.exists()
