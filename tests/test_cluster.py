"""`workbench cluster`: the torchrun line for N nodes and a SLURM batch script, written from
the experiment; the script is valid bash, names what the nodes must share, and run with
stand-ins for `srun` and `scontrol` on two local "nodes" it trains the run (world size 2)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_nodes import free_port

from workbench.cli import main
from workbench.core.store.runs import Run

SPEC = {
    "version": 1, "name": "my cluster run",
    "data": {"name": "moons", "samples": 400, "noise": 0.2},
    "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                         {"type": "Linear", "out": 2}]},
    "optim": {"name": "sgd", "lr": 0.1},
    "train": {"epochs": 2, "batch_size": 32, "seed": 0, "device": "cpu"},
}


def write_spec(folder: Path, spec: dict = SPEC) -> Path:
    path = folder / "spec dir" / "spec.json"  # a space: the script must quote it
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


def status(argv: list[str]) -> int:
    """The exit status of a command line (argparse's own refusals exit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_command_and_the_sbatch_script_name_what_the_nodes_share(tmp_path, capsys):
    spec = write_spec(tmp_path, {**SPEC, "train": {**SPEC["train"], "device": "auto"}})
    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    script = tmp_path / "job.sbatch"
    assert main(["cluster", str(spec), "--nodes", "4", "--gpus-per-node", "8", "--sbatch",
                 str(script), "--data-root", str(data), "--runs-dir", str(runs), "--head",
                 "node01", "--time", "4:00:00", "--partition", "gpu"]) == 0
    out = last_json(capsys)
    assert out["command"].startswith("torchrun --nproc-per-node=8 --nnodes=4 ")
    assert "--rdzv-backend=c10d --rdzv-endpoint=node01:29500" in out["command"]
    assert f"-m workbench.commands.rank '{spec}' --runs-dir {runs} --data-root {data}" \
        in out["command"]
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert os.access(script, os.X_OK)
    for line in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1",
                 "#SBATCH --gpus-per-node=8", "#SBATCH --time=4:00:00",
                 "#SBATCH --partition=gpu", "#SBATCH --job-name=workbench-my-cluster-run",
                 'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)'):
        assert line in text.splitlines()
    assert "srun torchrun " in text and '--rdzv-endpoint="$head_node":29500' in text
    assert f"the spec:        {spec}" in text and f"the data:        {data}" in text
    assert f"the runs folder: {runs}" in text and f"'{spec}'" in text
    # nothing is overwritten that was not allowed, bad settings are one line
    assert main(["cluster", str(spec), "--nodes", "2", "--gpus-per-node", "1", "--sbatch",
                 str(script)]) == 2
    assert "exists (--force replaces it)" in capsys.readouterr().err
    assert script.read_text() == text
    for flags, says in ((["--time", "soon"], "--time: not a SLURM time"),
                        (["--partition", "a b"], "--partition: not a SLURM partition"),
                        (["--nodes", "0"], "--nodes: must be"),
                        (["--data-root", str(tmp_path / "none")], "--data-root")):
        argv = ["cluster", str(spec), "--nodes", "2", "--gpus-per-node", "1", "--sbatch",
                str(tmp_path / "other.sbatch"), *flags]
        assert status(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "other.sbatch").exists()


SRUN = """#!/bin/bash
# srun for a job of $SLURM_NNODES nodes on this one machine: the command once per node
for i in $(seq 1 "$SLURM_NNODES"); do "$@" & done
status=0
for job in $(jobs -p); do wait "$job" || status=$?; done
exit $status
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_sbatch_script_trains_on_two_simulated_nodes(tmp_path, capsys):
    spec, runs = write_spec(tmp_path), tmp_path / "runs"
    script = tmp_path / "job.sbatch"
    port = free_port()
    assert main(["cluster", str(spec), "--nodes", "2", "--gpus-per-node", "1", "--sbatch",
                 str(script), "--runs-dir", str(runs), "--port", str(port)]) == 0
    capsys.readouterr()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(SRUN)
    (bin_dir / "scontrol").write_text("#!/bin/bash\necho 127.0.0.1\necho 127.0.0.2\n")
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    torchrun = bin_dir / "torchrun"  # this interpreter's, whatever the PATH holds
    torchrun.write_text(f"#!/bin/bash\nexec {sys.executable} -m torch.distributed.run \"$@\"\n")
    torchrun.chmod(0o755)
    text = script.read_text().replace("\nsrun ", f"\nexport PATH={bin_dir}:\"$PATH\"\nsrun ")
    script.write_text(text)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_NNODES": "2",
           "SLURM_JOB_NODELIST": "node[01-02]", "SLURM_JOB_ID": "4242"}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [p for p in runs.iterdir() if (p / "summary.json").exists()]
    summary = Run(run_dir).summary()
    assert summary["status"] == "finished" and summary["world_size"] == 2
    lines = [x for x in done.stderr.splitlines() if x.startswith("workbench: node ")]
    ends = sorted(x for x in lines if "the run finished" in x)
    assert ends == [f"workbench: node 0 of 2: the run finished; this node keeps the run, in "
                    f"{run_dir}",
                    f"workbench: node 1 of 2: the run finished; the run is kept by node 0 "
                    f"(host {socket.gethostname()}) in {run_dir}"]
