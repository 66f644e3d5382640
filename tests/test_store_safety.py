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
from pathlib import Path

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
    temp = _kill_while_writing(run.path / "checkpoint.pt")
    _age(temp, 3600)
    store.list()
    assert not temp.exists()
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


# -- what a sweep and a listing may touch ----------------------------------------------------

def test_an_export_sweeps_only_its_own_temps_in_a_persons_folder(tmp_path):
    """`export RUN DIR/model.onnx` used to delete any old hidden `.x.ABC123.tmp` in DIR (a
    person's `.report.docx.A1B2C3.tmp`); now only the temps of the files it writes go."""
    from prune_fixtures import MOONS, train_run

    from workbench.cli import main

    run_dir = train_run(tmp_path / "runs", MOONS, data={"name": "moons", "samples": 200})
    home = tmp_path / "home"
    home.mkdir()
    theirs = [home / ".report.docx.A1B2C3.tmp", home / ".notes.txt.abcdef12.tmp",
              home / ".other.onnx.wb-abcd1234.tmp"]  # another file's temp: not this export's
    ours = home / ".model.onnx.wb-k3j4h5g6.tmp"  # a killed export of this same file
    for path in (*theirs, ours):
        path.write_text("x")
        _age(path, 3600)
    assert main(["export", run_dir, str(home / "model.onnx"), "--no-script"]) == 0
    assert all(p.read_text() == "x" for p in theirs)
    assert not ours.exists() and (home / "model.onnx").is_file()


def _kill_while_writing(target):
    """A real kill -9 in the middle of an atomic write of `target`; the temp it left."""
    code = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from workbench.core.store.atomic import write_atomic

        def write(f):
            f.write(b"x" * 1000)
            f.flush()
            print("writing", flush=True)
            os.kill(os.getpid(), 9)

        write_atomic(Path({str(target)!r}), write)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9 and "writing" in proc.stdout
    (temp,) = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
    return temp


def test_a_temp_killed_inside_checkpoints_is_swept_by_the_next_listing(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(SPEC)
    (run.path / "checkpoints").mkdir()
    temp = _kill_while_writing(run.path / "checkpoints" / "epoch-00003.pt")
    _age(temp, 3600)
    store.list()
    assert not temp.exists()
    assert not (run.path / "checkpoints" / "epoch-00003.pt").exists()


def test_a_listing_never_follows_a_linked_run_folder_out_of_the_store(tmp_path, capsys):
    """A run folder that is a link to elsewhere: `workbench runs` used to read it, probe its
    lock (creating `.lock` there) and sweep its temps. Links are not runs of the store."""
    from workbench.cli import main

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "summary.json").write_text(json.dumps({"status": "running", "name": "x"}))
    (elsewhere / "spec.json").write_text(SPEC.to_json())
    stale = elsewhere / ".checkpoint.pt.wb-abcd1234.tmp"
    stale.write_text("someone else's")
    _age(stale, 3600)
    store = RunStore(tmp_path / "runs")
    real = store.create(SPEC)
    (store.root / "20990101-000000-linked-abcdef").symlink_to(elsewhere)
    before = sorted(p.name for p in elsewhere.iterdir())
    assert [i.path for i in store.list()] == [real.path]
    assert main(["runs", "--runs-dir", str(store.root)]) == 0
    assert main(["runs", "--runs-dir", str(store.root), "--json"]) == 0
    out = capsys.readouterr().out
    assert "linked" not in out and "1 runs in" in out
    assert sorted(p.name for p in elsewhere.iterdir()) == before  # no .lock, the temp kept


def test_the_comparisons_folder_is_never_a_run(tmp_path, capsys):
    """After any comparison the Runs list and `workbench runs` showed `comparisons · damaged`,
    counted as a run."""
    from workbench.cli import main
    from workbench.core.tools.compare import Comparison, save_comparison

    store = RunStore(tmp_path / "runs")
    run = store.create(SPEC)
    save_comparison(Comparison("race", []), store)
    assert (store.root / "comparisons").is_dir()
    assert [i.path for i in store.list()] == [run.path]
    assert main(["runs", "--runs-dir", str(store.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1 runs in") and not any("damaged" in ln for ln in lines)
    assert main(["runs", "--runs-dir", str(store.root), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["run_dir"] for r in rows] == [str(run.path)]


def test_temps_of_a_long_legal_name_stay_within_the_name_limit(tmp_path):
    """A 250-character name is legal; its temp used to be 264 and fail to be made."""
    path = tmp_path / ("x" * 245 + ".json")
    write_text_atomic(path, "{}")
    assert path.read_text() == "{}"
    with temp_beside(tmp_path / ("é" * 127)) as tmp:  # 254 bytes of UTF-8
        assert len(os.fsencode(tmp.name)) <= 255
        tmp.write_text("x")


# -- resuming: one rule ----------------------------------------------------------------------

@pytest.mark.parametrize(("status", "checkpoint", "why"), [
    (RunStatus.STOPPED, True, None),
    (RunStatus.FAILED, True, None),
    (RunStatus.FINISHED, True, "it finished: nothing to resume"),
    (RunStatus.STOPPED, False, "it has no checkpoint to continue from"),
    (RunStatus.CREATED, True, "it is training now"),
])
def test_one_rule_says_whether_a_run_resumes(tmp_path, status, checkpoint, why):
    store = RunStore(tmp_path)
    run = store.create(SPEC)
    run.update_summary(status=status)
    if checkpoint:
        run.save_checkpoint({"epoch": 1})
    (info,) = store.list()
    assert info.resumable == (why is None) and run.why_not_resumable() == info.why_not_resumable
    assert why is None or why in info.why_not_resumable


def test_resuming_a_finished_run_says_so_and_changes_nothing(tmp_path, capsys):
    """It used to exit 0 silently and rewrite the run's summary."""
    from prune_fixtures import MOONS, train_run

    from workbench.cli import main

    run_dir = Path(train_run(tmp_path / "runs", MOONS, data={"name": "moons", "samples": 200}))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert main(["resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "it finished: nothing to resume" in err[0]
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert after == before
