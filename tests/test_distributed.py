"""Two gloo processes on the CPU follow the one-process curve; a dead rank fails cleanly."""

import json
import os
import subprocess
import sys

from workbench.core.store.runs import Run
from workbench.core.training.distributed import launch_command

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
    assert "workbench: distributed run failed:" in result.stderr
    assert Run(last["run_dir"]).summary()["status"] == "failed"


def test_launch_command_passes_cluster_options():
    cmd = launch_command("/x/spec.json", 8, nnodes=2, node_rank=1,
                         rdzv_endpoint="head:29400", runs_dir="/runs")
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert "--nproc-per-node=8" in cmd and "--nnodes=2" in cmd and "--node-rank=1" in cmd
    assert "--rdzv-endpoint=head:29400" in cmd and "--standalone" not in cmd
    assert cmd[-4:] == ["workbench.commands.rank", "/x/spec.json", "--runs-dir", "/runs"]
    assert "--standalone" in launch_command("s.json", 2)
