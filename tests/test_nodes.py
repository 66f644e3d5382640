"""Two nodes simulated on this machine, as a cluster runs them: two `workbench train --nproc 1
--nnodes 2` commands (gloo, a localhost rendezvous on a free port). Every node exits as a
scheduler needs (0 for a finished run, the same status for a failed or stopped one), names the
run's folder and the node keeping it, and nothing outlives a node that is killed.

Waits are keyed to the run's progress (an epoch in its metrics), with generous limits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.core.store.runs import Run
from workbench.core.training.distributed import descendants, kill_tree

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc to find every process of a node")

SPEC = {
    "version": 1, "name": "nodes",
    "data": {"name": "moons", "samples": 500, "noise": 0.2},
    "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                         {"type": "Linear", "out": 2}]},
    "optim": {"name": "sgd", "lr": 0.1},
    "train": {"epochs": 2, "batch_size": 32, "seed": 0, "device": "cpu"},
}
# Long enough to be caught training (about 260 steps an epoch), short enough to resume.
LONG = {**SPEC, "data": {**SPEC["data"], "samples": 3000},
        "train": {**SPEC["train"], "epochs": 15, "batch_size": 8}}
LIMIT_S = 300  # for anything on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One simulated node: its `workbench train` command, output kept in files."""

    def __init__(self, tmp: Path, name: str, spec: Path, runs: Path, *flags: str) -> None:
        self.out, self.err = tmp / f"{name}.out", tmp / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workbench", "train", str(spec), "--nproc", "1",
                 "--nnodes", "2", "--runs-dir", str(runs), *flags],
                stdout=out, stderr=err, text=True)
        self.tree: list[int] = []

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=LIMIT_S)
        finally:
            kill_tree(self.proc.pid)  # nothing outlives a failed test

    def stderr(self) -> str:
        return self.err.read_text()

    def result(self) -> dict:
        return json.loads(self.out.read_text().strip().splitlines()[-1])

    def number(self) -> int | None:
        """The node's number as its first line says it (torchrun numbers c10d nodes)."""
        for line in self.stderr().splitlines():
            if line.startswith("workbench: node ") and " of 2:" in line:
                return int(line.split()[2])
        return None

    def last_line(self) -> str:
        return [x for x in self.stderr().splitlines() if x.startswith("workbench:")][-1]


def wait_for_an_epoch(runs: Path, nodes: list[Node]) -> None:
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        for node in nodes:
            assert node.proc.poll() is None, node.stderr()[-3000:]
        if all(node.number() is not None for node in nodes) and any(
                '"kind": "epoch"' in p.read_text() for p in runs.glob("*/metrics.jsonl")):
            for node in nodes:
                node.tree = descendants(node.proc.pid)
            return
        time.sleep(0.2)
    raise AssertionError("no epoch ended in time")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def assert_nothing_left(nodes: list[Node]) -> None:
    pids = [pid for node in nodes for pid in [node.proc.pid, *node.tree]]
    deadline = time.monotonic() + 60
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if alive(p)]


def write(tmp: Path, spec: dict) -> Path:
    path = tmp / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_two_nodes_finish_with_status_0_each_naming_the_run_and_its_node(tmp_path):
    """`--master-addr`/`--node-rank`: both exit 0 (node 1 used to exit 1, "a rank exited with
    status 0"); every flag reaches every rank (`--data-root` used to be "unrecognized")."""
    spec, runs, port = write(tmp_path, SPEC), tmp_path / "runs", str(free_port())
    common = ("--master-addr", "127.0.0.1", "--master-port", port, "--data-root", str(tmp_path),
              "--seed", "3")
    nodes = [Node(tmp_path, f"n{r}", spec, runs, *common, "--node-rank", str(r))
             for r in (0, 1)]
    codes = [node.wait() for node in nodes]
    assert codes == [0, 0], [node.stderr()[-3000:] for node in nodes]
    results = [node.result() for node in nodes]
    run_dir = results[0]["run_dir"]
    assert [r["run_dir"] for r in results] == [run_dir, run_dir]
    assert [r["status"] for r in results] == ["finished", "finished"]
    assert [r["node"] for r in results] == [0, 1]
    assert all(r["kept_on"]["node"] == 0 and r["kept_on"]["host"] for r in results)
    summary = Run(run_dir).summary()
    assert summary["world_size"] == 2 and summary["status"] == "finished"
    assert Run(run_dir).spec().train.seed == 3 and Run(run_dir).spec().data.root == str(tmp_path)
    last = [node.last_line() for node in nodes]
    assert last[0].startswith("workbench: the run finished on 2 nodes") and run_dir in last[0]
    assert "this node (0) keeps the run" in last[0]
    assert f"the run is kept by node 0 (host {socket.gethostname()}) in {run_dir}" in last[1]
    assert "epoch 1: train_loss" in nodes[0].stderr()  # the progress is where the run is
    assert "epoch 1: train_loss" not in nodes[1].stderr()
    assert "Traceback" not in nodes[0].stderr() + nodes[1].stderr()


def test_a_killed_node_stops_the_other_with_one_line_and_leaves_nothing(tmp_path):
    """kill -9 of every process of one node (c10d rendezvous; node numbers by arrival): the
    other fails at its next step with one line naming the run, and nothing is left running."""
    spec, runs = write(tmp_path, LONG), tmp_path / "runs"
    endpoint = f"127.0.0.1:{free_port()}"
    first = Node(tmp_path, "a", spec, runs, "--rdzv-endpoint", endpoint, "--quiet")
    second = Node(tmp_path, "b", spec, runs, "--rdzv-endpoint", endpoint, "--quiet",
                  "--node-rank", "0")  # ignored by c10d, and said so
    nodes = [first, second]
    try:
        wait_for_an_epoch(runs, nodes)
        assert {n.number() for n in nodes} == {0, 1}
        victim = next(n for n in nodes if n.number() == 1)
        survivor = next(n for n in nodes if n.number() == 0)
        for pid in [victim.proc.pid, *victim.tree]:
            os.kill(pid, signal.SIGKILL)
        code = survivor.wait()
    finally:
        for node in nodes:
            kill_tree(node.proc.pid)
    assert code == 1, survivor.stderr()[-3000:]
    result = survivor.result()
    assert result["status"] == "failed" and result["node"] == 0
    err = survivor.stderr()
    assert "Traceback" not in err and "frame #" not in err
    after = err.split("epoch 1:")[-1].splitlines()[1:]
    said = [line for line in after if line.startswith("workbench:")]
    assert len(said) == 1, after
    assert said[0].startswith("workbench: distributed run failed: another rank of this "
                              "distributed run died or stopped answering; this node (0) keeps "
                              f"the run, in {result['run_dir']}")
    assert Run(result["run_dir"]).summary()["status"] == "failed"
    assert "ignores --node-rank" in second.stderr()
    assert_nothing_left(nodes)


def test_a_signal_to_one_node_stops_every_node_cooperatively(tmp_path):
    """SIGINT to node 1 only: every rank stops at the same step with a checkpoint, and both
    nodes exit 130 (the status of the signal one was sent) with the run resumable."""
    spec, runs, port = write(tmp_path, LONG), tmp_path / "runs", str(free_port())
    common = ("--master-addr", "127.0.0.1", "--master-port", port, "--quiet")
    nodes = [Node(tmp_path, f"n{r}", spec, runs, *common, "--node-rank", str(r))
             for r in (0, 1)]
    try:
        wait_for_an_epoch(runs, nodes)
        nodes[1].proc.send_signal(signal.SIGINT)
        codes = [node.wait() for node in nodes]
    finally:
        for node in nodes:
            kill_tree(node.proc.pid)
    assert codes == [130, 130], [node.stderr()[-3000:] for node in nodes]
    results = [node.result() for node in nodes]
    assert [r["status"] for r in results] == ["stopped", "stopped"]
    assert results[0]["stopped_by"] == {"signal": "SIGINT", "node": 1}
    for node in nodes:
        assert node.last_line().startswith("workbench: stopped by SIGINT on node 1; ")
        assert f"workbench resume {results[0]['run_dir']}" in node.last_line()
    run = Run(results[0]["run_dir"])
    assert run.summary()["status"] == "stopped"
    step = run.load_checkpoint()["global_step"]
    assert step > 0
    assert_nothing_left(nodes)
    resumed = subprocess.run([sys.executable, "-m", "workbench", "resume", str(run.path),
                              "--quiet"], capture_output=True, text=True, timeout=LIMIT_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run.summary()["status"] == "finished" and run.summary()["epochs_done"] == 15


def test_every_flag_of_train_reaches_each_rank(tmp_path):
    """The ranks take the flags `train` takes (one definition): a flag added to `train` but
    not to the ranks fails here (`--data-root` used to be "unrecognized" in every rank)."""
    from workbench.cli import build_parser
    from workbench.commands.rank import rank_parser
    from workbench.commands.run_flags import rank_flags

    spec = write(tmp_path, SPEC)
    given = ["--epochs", "2", "--device", "cpu", "--seed", "5", "--data-root", str(tmp_path),
             "--threads", "1", "--quiet"]
    args = build_parser().parse_args(["train", str(spec), *given])
    ranks = rank_parser().parse_args([str(spec), *rank_flags(args)])
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    launch_only = {"help", "spec", "runs_dir", "nproc", "nnodes", "node_rank", "master_addr",
                   "master_port", "rdzv_endpoint"}
    for action in train._actions:
        if action.dest not in launch_only:
            assert getattr(ranks, action.dest) == getattr(args, action.dest), action.dest


@pytest.mark.parametrize("flags, says", [
    (["--nnodes", "2"], "--nnodes 2: give --rdzv-endpoint HOST:PORT"),
    (["--nnodes", "2", "--master-addr", "h"], "--node-rank: give this node's number, 0 to 1"),
    (["--nnodes", "2", "--master-addr", "h", "--node-rank", "2"],
     "--node-rank: must be below --nnodes (2), got 2"),
    (["--nnodes", "2", "--rdzv-endpoint", "h"], "--rdzv-endpoint: must be HOST:PORT"),
    (["--nnodes", "2", "--rdzv-endpoint", "h:99999"], "--rdzv-endpoint: must be HOST:PORT"),
    (["--nnodes", "2", "--rdzv-endpoint", "h:1", "--master-addr", "h"],
     "--master-addr: give either --rdzv-endpoint"),
])
def test_node_options_that_cannot_make_a_run_are_one_line(tmp_path, capsys, flags, says):
    from workbench.cli import main

    assert main(["train", str(write(tmp_path, SPEC)), "--nproc", "1", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err


def test_a_rank_is_reported_with_its_own_exit_status_or_signal(capsys):
    from workbench.commands.launch import conclude

    kept = {"run_dir": "/runs/r", "node": 1, "nodes": 2, "kept_on": {"node": 0, "host": "h0"},
            "status": "running"}
    bad_input = {"failures": [{"rank": 1, "local_rank": 0, "exitcode": 2, "timestamp": 5}]}
    assert conclude(kept, bad_input, 1, None, nodes=2) == 1
    err = capsys.readouterr().err
    assert err == ("workbench: distributed run failed: rank 1 exited with status 2; this is "
                   "node 1; the run is kept by node 0 (host h0) in /runs/r\n")
    killed = {"failures": [
        {"rank": 0, "local_rank": 0, "exitcode": 1, "timestamp": 4},
        {"rank": 1, "local_rank": 1, "exitcode": -9, "signal": "SIGKILL", "timestamp": 5}]}
    assert conclude({**kept, "status": "failed", "error": "lost"}, killed, 1, None) == 1
    assert "rank 1 was killed by SIGKILL" in capsys.readouterr().err


def test_the_rank_that_failed_first_is_named_not_the_ones_stopped_after_it(capsys):
    """Under load torchrun's SIGTERM to the other ranks can land in the same second as the
    first failure: the one that exited 13 is the cause."""
    from workbench.commands.launch import failure_reason

    report = {"failures": [
        {"rank": 0, "local_rank": 0, "exitcode": -15, "signal": "SIGTERM", "timestamp": 7},
        {"rank": 1, "local_rank": 1, "exitcode": 13, "timestamp": 7}]}
    assert failure_reason({}, report, 1) == "rank 1 exited with status 13"
