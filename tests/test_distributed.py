"""Two gloo processes on the CPU follow the one-process curve; a dead rank fails cleanly; the
ranks agree on validation metrics and stops; a stop leaves no process; the packaged app
launches them without `python -m`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workbench.cli import main
from workbench.core.store.runs import Run
from workbench.core.training.distributed import descendants, kill_tree, launch_command

SPEC = {
    "version": 1, "name": "ddp",
    "data": {"name": "moons", "samples": 500, "noise": 0.2},
    "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                         {"type": "Linear", "out": 2}]},
    "optim": {"name": "sgd", "lr": 0.1},
    "train": {"epochs": 3, "batch_size": 32, "seed": 0, "device": "cpu"},
}


def workbench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def epoch_losses(run_dir):
    return [(r["train_loss"], r["val_loss"]) for r in Run(run_dir).metrics("epoch")]


def test_two_processes_match_one(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    one = workbench("train", str(spec), "--runs-dir", str(tmp_path / "one"), "--quiet")
    two = workbench("train", str(spec), "--nproc", "2", "--runs-dir", str(tmp_path / "two"))
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    assert "epoch 3: train_loss" in two.stderr  # rank 0 shows the progress (none, once)
    r1 = json.loads(one.stdout.strip().splitlines()[-1])
    r2 = json.loads(two.stdout.strip().splitlines()[-1])
    assert Run(r2["run_dir"]).summary()["world_size"] == 2
    for (t1, v1), (t2, v2) in zip(epoch_losses(r1["run_dir"]), epoch_losses(r2["run_dir"]),
                                  strict=True):
        assert abs(t1 - t2) < 1e-4 and abs(v1 - v2) < 1e-4
    assert abs(r1["test_accuracy"] - r2["test_accuracy"]) < 0.02


def test_a_dead_rank_fails_the_run_cleanly(tmp_path, monkeypatch):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "train": {**SPEC["train"], "epochs": 200}}))
    monkeypatch.setenv("WORKBENCH_FAULT", "1:20")
    result = workbench("train", str(spec), "--nproc", "2", "--runs-dir", str(tmp_path / "r"),
                       env=dict(os.environ))
    assert result.returncode == 1
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["status"] == "failed"
    assert last["error"] == "rank 1 exited with status 13"  # its own, not "status 1"
    said = [line for line in result.stderr.splitlines() if line.startswith("workbench:")]
    assert said == [f"workbench: distributed run failed: rank 1 exited with status 13; the run "
                    f"is in {last['run_dir']}"]
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr
    assert Run(last["run_dir"]).summary()["status"] == "failed"


def test_launch_command_passes_cluster_options():
    cmd = launch_command("/x/spec.json", 8, nnodes=2, node_rank=1,
                         rdzv_endpoint="head:29400", runs_dir="/runs")
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert "--nproc-per-node=8" in cmd and "--nnodes=2" in cmd
    assert not any(c.startswith("--node-rank") for c in cmd)  # c10d numbers nodes by arrival
    assert "--rdzv-endpoint=head:29400" in cmd and "--standalone" not in cmd
    assert cmd[-4:] == ["workbench.commands.rank", "/x/spec.json", "--runs-dir", "/runs"]
    assert "--standalone" in launch_command("s.json", 2)
    static = launch_command("s.json", 1, nnodes=2, node_rank=1, master_addr="head",
                            master_port=29500, agent=True)
    assert static[1:3] == ["-m", "workbench.commands.agent"]
    assert "--node-rank=1" in static and "--master-addr=head" in static


RANK_SCRIPT = """
import json, sys
from workbench import spec as specmod
from workbench.core.store.runs import RunStore
from workbench.core.training.callbacks import Callback
from workbench.core.training.distributed import init_from_env, shutdown
from workbench.core.training.loop import Trainer
from workbench.core.training.step import evaluate

class Record(Callback):
    def __init__(self):
        self.rows = []
    def on_epoch_end(self, trainer, record):
        b = trainer.val_batches
        own = evaluate(trainer.model, b.x, b.y, b.batch, trainer.loss_fn, trainer.num_classes)
        self.rows.append({"record": record["val_loss"], "own": own["loss"],
                          "lr": record["lr"]})

ctx = init_from_env("cpu")
record = Record()
spec = specmod.from_dict(json.loads(sys.argv[1]))
events = list(Trainer(spec, runs=RunStore(sys.argv[2]), dist=ctx, callbacks=[record]).events())
shutdown()
with open(f"{sys.argv[3]}/rank{ctx.rank}.json", "w") as f:
    json.dump({"rows": record.rows, "last": type(events[-1]).__name__}, f)
"""


def test_ranks_decide_on_the_validation_loss_averaged_over_them(tmp_path):
    """With BatchNorm each rank's running statistics differ after its last step, so each
    would see its own validation loss; the plateau schedule and early stopping must see one."""
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    spec = {**SPEC, "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "BatchNorm"},
                                         {"type": "ReLU"}, {"type": "Linear", "out": 2}]},
            "schedule": {"name": "plateau", "patience": 0, "factor": 0.5},
            "regularization": {"early_stop_patience": 2}}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", str(script), json.dumps(spec),
                           str(tmp_path / "runs"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["last"] for r in ranks] == ["RunFinished", "RunFinished"]
    rows0, rows1 = ranks[0]["rows"], ranks[1]["rows"]
    assert len(rows0) == len(rows1) >= 1
    assert any(a["own"] != b["own"] for a, b in zip(rows0, rows1, strict=True))
    for a, b in zip(rows0, rows1, strict=True):
        assert a["record"] == b["record"] and a["lr"] == b["lr"]
        assert abs(a["record"] - (a["own"] + b["own"]) / 2) < 1e-12


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for_epoch(runs: Path, proc, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be stopped"
        if any('"kind": "epoch"' in p.read_text() for p in runs.glob("*/metrics.jsonl")):
            return
        time.sleep(0.2)
    raise AssertionError("no epoch ended in time")


def test_sigterm_stops_every_rank_together_and_leaves_no_process(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "data": {**SPEC["data"], "samples": 3000},
                                "train": {**SPEC["train"], "epochs": 500, "batch_size": 8}}))
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(spec), "--nproc",
                             "2", "--runs-dir", str(runs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_epoch(runs, proc)
        tree = descendants(proc.pid)
        assert len(tree) >= 3  # torchrun and two ranks
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
    finally:
        kill_tree(proc.pid)  # nothing outlives a failed test
    assert proc.returncode == 143, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "stopped"
    run = Run(result["run_dir"])
    assert run.summary()["status"] == "stopped"
    assert run.load_checkpoint()["global_step"] > 0
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in tree if _alive(pid)]


def test_the_packaged_app_launches_torchrun_and_its_ranks_without_python_m(tmp_path,
                                                                           monkeypatch,
                                                                           capsys):
    """In the frozen app `sys.executable` is Workbench itself: it runs `_torchrun` and the
    ranks (`_rank`); a stand-in executable that is `python -m workbench` proves the line."""
    exe = tmp_path / "workbench-app"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m workbench \"$@\"\n")
    exe.chmod(0o755)
    cmd = launch_command("/x/spec.json", 2, frozen=True, python=str(exe))
    assert cmd[:2] == [str(exe), "_torchrun"] and "-m" not in cmd
    assert cmd[cmd.index("--no-python") + 1:] == [str(exe), "_rank", "/x/spec.json"]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "train": {**SPEC["train"], "epochs": 1}}))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    assert main(["train", str(spec), "--nproc", "2", "--runs-dir", str(tmp_path / "r")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "finished"
    assert Run(result["run_dir"]).summary()["world_size"] == 2
