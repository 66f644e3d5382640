"""Run folders under faults: atomic writes with the user's permissions and a durable rename,
temp files a killed writer left are removed (never a live writer's), a lock per run, and a run
whose process died shown as interrupted, never written as such."""

import json
import os
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from workbench import spec as specmod
from workbench.core.store import atomic
from workbench.core.store.atomic import (
    remove_stale_temps,
    temp_beside,
    write_bytes_atomic,
    write_text_atomic,
)
from workbench.core.store.locks import RunLock, is_locked
from workbench.core.store.runs import Run, RunInUse, RunStatus, RunStore

SPEC = specmod.from_dict({"name": "s", "data": {"name": "moons"},
                          "model": {"layers": [{"type": "Linear", "out": 2}]}})


def test_atomic_write_gives_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    atomic._umask = None  # read afresh: the process umask the test set
    try:
        write_text_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
        atomic._umask = None
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


def test_atomic_write_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text("old")
    path.chmod(0o640)
    write_text_atomic(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_atomic_write_fsyncs_the_folder_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def record(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    write_bytes_atomic(tmp_path / "x.bin", b"abc")
    assert synced == [False, True]  # the file, then its folder


def test_a_full_disk_leaves_the_old_file_and_names_the_new_one(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_text_atomic(path, "old")

    def full(_f):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as caught:
        atomic.write_atomic(path, full)
    assert caught.value.errno == 28 and caught.value.filename == str(path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def _age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_stale_temps_are_removed_but_not_a_live_writers(tmp_path):
    dead = tmp_path / ".checkpoint.pt.wb-abcd1234.tmp"
    dead.write_bytes(b"half")
    _age(dead, 3600)
    young = tmp_path / ".summary.json.wb-efgh5678.tmp"  # its writer may not have locked it yet
    young.write_bytes(b"x")
    mine = [tmp_path / "notes.tmp", tmp_path / ".report.docx.A1B2C3.tmp",
            tmp_path / ".summary.json.abcd1234.tmp"]  # not ours: never touched
    for path in mine:
        path.write_text("keep")
        _age(path, 3600)
    with temp_beside(tmp_path / "metrics.jsonl") as live:
        live.write_text("being written")
        _age(live, 3600)
        removed = remove_stale_temps(tmp_path)
        assert removed == [dead]
        assert live.exists() and young.exists() and all(p.exists() for p in mine)
    assert (tmp_path / "metrics.jsonl").read_text() == "being written"


def test_a_killed_writers_temp_is_removed_when_the_store_lists(tmp_path):
    """A real kill -9 in the middle of an atomic write, then `list`."""
    store = RunStore(tmp_path)
    run = store.create(SPEC)
    code = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from workbench.core.store.atomic import write_atomic

        def write(f):
            f.write(b"x" * 1000)
            f.flush()
            print("writing", flush=True)
            os.kill(os.getpid(), 9)

        write_atomic(Path({str(run.path / 'checkpoint.pt')!r}), write)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9 and "writing" in proc.stdout
    temps = [p for p in run.path.iterdir() if p.name.startswith(".checkpoint.pt.")]
    assert len(temps) == 1
    _age(temps[0], 3600)
    store.list()
    assert not temps[0].exists()
    assert not (run.path / "checkpoint.pt").exists()


def test_a_second_lock_names_the_holder(tmp_path):
    run = RunStore(tmp_path).create(SPEC)
    with RunLock(run.path):
        assert is_locked(run.path) is True
        with pytest.raises(RunInUse, match=rf"in use by process {os.getpid()} on host "):
            RunLock(run.path).acquire(timeout=0.1)
    assert is_locked(run.path) is False
    with RunLock(run.path):
        pass


def test_a_lock_in_another_process_is_seen_and_dies_with_it(tmp_path):
    run = RunStore(tmp_path).create(SPEC)
    code = (f"import sys, time\nfrom workbench.core.store.locks import RunLock\n"
            f"lock = RunLock({str(run.path)!r}).acquire()\nprint('held', flush=True)\n"
            f"sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunInUse, match=rf"process {proc.pid} on host"):
            RunLock(run.path).acquire(timeout=0.1)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    RunLock(run.path).acquire(timeout=5).release()


def test_a_running_run_without_its_process_shows_as_interrupted(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(SPEC)
    run.update_summary(status=RunStatus.RUNNING)
    before = (run.path / "summary.json").read_bytes()
    info = store.list()[0]
    assert info.status == "interrupted" and not info.resumable
    assert run.current_status() == "interrupted"
    assert (run.path / "summary.json").read_bytes() == before  # shown, never written
    with RunLock(run.path):
        assert store.list()[0].status == "running"
    run.save_checkpoint({"epoch": 1})
    assert store.list()[0].resumable


def test_a_run_that_ends_while_being_listed_is_not_called_interrupted(tmp_path, monkeypatch):
    """The reader sees "running", then the lock free: the trainer wrote "finished" just before
    it let go, and the reader must read that, not call the run interrupted."""
    from workbench.core.store import runs as runs_module

    store = RunStore(tmp_path)
    run = store.create(SPEC)
    run.update_summary(status=RunStatus.RUNNING)
    real = runs_module.is_locked

    def finish_then_probe(path):
        Run(path).update_summary(status=RunStatus.FINISHED)
        return real(path)

    monkeypatch.setattr(runs_module, "is_locked", finish_then_probe)
    assert store.list()[0].status == "finished"


def test_workbench_runs_and_resume_speak_of_interrupted_runs(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.create(SPEC)
    run.update_summary(status=RunStatus.RUNNING)
    env = {**os.environ}
    out = subprocess.run([sys.executable, "-m", "workbench", "runs", "--runs-dir",
                          str(store.root), "--json"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert json.loads(out.stdout.splitlines()[0])["status"] == "interrupted"
    res = subprocess.run([sys.executable, "-m", "workbench", "resume", str(run.path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2
    assert "interrupted before its first checkpoint, so it cannot be resumed" in res.stderr
