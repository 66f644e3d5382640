"""The fault suite: what a person may do to Workbench that it must survive.

- `kill -9` at random moments over many short runs (and their resumes): every run is
  finished, stopped or interrupted, every interrupted one with a checkpoint resumes to the end,
  every JSON file parses and every checkpoint loads; no epoch is logged twice.
- A runs folder that turns read-only, a disk that fills: the CLI says so in one line, exit 1,
  and the run is left failed or interrupted, never "running" with a live process.
- Two processes resuming one run: one trains, the other is told who holds it.
- 100 start/stop cycles of the app's real training panel: no thread left, memory flat.

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
        assert not panel.is_running() and panel.runner.ended()
        if cycle in (19, 99):
            gc.collect()
            rss.append(_rss_mb())
    assert _python_threads() <= threads_before
    assert rss[1] - rss[0] < 50, rss  # MB over the last 80 cycles
    ends = [i.status for i in RunStore(tmp_path / "runs").list()]
    assert ends and set(ends) <= {RunStatus.STOPPED, RunStatus.FINISHED}
