"""Taking an experiment to a cluster: the torchrun line every node runs, and a SLURM batch
script that runs it on N nodes (`srun torchrun ...`, the rendezvous on the job's first node).

Every node must see the same paths: the spec file, the data folder (or each node downloads
the dataset into its own cache, which needs the internet on the compute nodes) and the runs
folder. Global rank 0's node keeps the run (its folder, checkpoints and metrics); the other
nodes write nothing there, so the runs folder needs to be shared only for `workbench resume`
and the app to find the run from elsewhere.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.core.training.distributed import launch_command
from workbench.spec import ExperimentSpec

DEFAULT_PORT = 29500
MAX_NODES = 1_024
MAX_PROCS = 1_024
_TIME = re.compile(r"^(\d+-)?\d{1,3}(:\d{2}){0,2}$")  # SLURM's --time: 30, 4:00:00, 2-00:00:00
_WORD = re.compile(r"^[A-Za-z0-9_.,:@+-]{1,128}$")  # a partition, an account, a job name


class ClusterError(ValueError):
    """A cluster setting that cannot make a launch: one line naming it."""


@dataclass(frozen=True)
class ClusterLaunch:
    """How an experiment trains on `nodes` machines with `procs_per_node` processes each (a
    GPU each, or CPU processes when the spec trains on the CPU)."""

    spec_path: Path
    spec: ExperimentSpec
    nodes: int
    procs_per_node: int
    runs_dir: Path
    data_root: Path | None = None
    port: int = DEFAULT_PORT

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise ClusterError(f"--nodes: must be a whole number from 1 to {MAX_NODES}, "
                               f"got {self.nodes}")
        if not 1 <= self.procs_per_node <= MAX_PROCS:
            raise ClusterError(f"--gpus-per-node: must be a whole number from 1 to "
                               f"{MAX_PROCS}, got {self.procs_per_node}")
        if not 1 <= self.port <= 65_535:
            raise ClusterError(f"--port: must be a whole number from 1 to 65,535, got "
                               f"{self.port}")

    @property
    def gpus(self) -> bool:
        return self.spec.train.device != "cpu"

    @property
    def data_folder(self) -> str | None:
        """The folder every node reads the data from (None: a generated set, or each node's
        download cache)."""
        if self.data_root is not None:
            return str(self.data_root)
        return self.spec.data.root or self.spec.data.path

    def torchrun(self, head: str, *, rdzv_id: str = "workbench") -> list[str]:
        """The command each node runs (the same on every node), `head` being the first
        node's host, where the rendezvous listens."""
        extra = ["--data-root", str(self.data_root)] if self.data_root is not None else []
        cmd = launch_command(str(self.spec_path), self.procs_per_node, nnodes=self.nodes,
                             rdzv_endpoint=f"{head}:{self.port}", rdzv_id=rdzv_id,
                             runs_dir=str(self.runs_dir), extra=[*extra, "--quiet"],
                             frozen=False)
        return ["torchrun", *cmd[3:]]  # `python -m torch.distributed.run` is torchrun

    def sbatch(self, *, job_name: str | None = None, time: str | None = None,
               partition: str | None = None, account: str | None = None) -> str:
        """A SLURM batch script: one task per node, each running torchrun, which starts the
        node's processes; the rendezvous is on the job's first node."""
        name = job_name or "workbench-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", self.spec.name)
                                           .strip("-")[:60] or "run")
        options = [("job-name", name), ("nodes", str(self.nodes)), ("ntasks-per-node", "1")]
        if self.gpus:
            options.append(("gpus-per-node", str(self.procs_per_node)))
        for key, value, check in (("time", time, _TIME), ("partition", partition, _WORD),
                                  ("account", account, _WORD)):
            if value is not None:
                if not check.match(value):
                    raise ClusterError(f"--{key}: not a SLURM {key}, got {value[:60]!r}")
                options.append((key, value))
        if not _WORD.match(name):
            raise ClusterError(f"--job-name: letters, digits and _.,:@+- only, got "
                               f"{name[:60]!r}")
        options.append(("output", f"{name}-%j.out"))
        cmd = self.torchrun('"$head_node"', rdzv_id='"$SLURM_JOB_ID"')
        words = [a if a.startswith(("--rdzv-endpoint=", "--rdzv-id=")) else shlex.quote(a)
                 for a in cmd]
        words = ['--nnodes="$SLURM_NNODES"' if w.startswith("--nnodes=") else w for w in words]
        split = words.index("-m")
        srun = (f"srun {' '.join(words[:split])} \\\n    {' '.join(words[split:])}")
        data = self.data_folder or ("generated, or downloaded by each node (which needs the "
                                    "internet there)")
        lines = [
            "#!/bin/bash",
            f"# Train {self.spec.name!r} on {self.nodes} node(s) x {self.procs_per_node} "
            f"{'GPU' if self.gpus else 'CPU process'}(es) with torchrun; written by "
            "`workbench cluster`.",
            "# Every node must see these paths (a shared filesystem):",
            f"#   the spec:        {self.spec_path}",
            f"#   the data:        {data}",
            f"#   the runs folder: {self.runs_dir} (node 0 keeps the run there)",
            *[f"#SBATCH --{key}={value}" for key, value in options],
            "set -eu  # not pipefail: head closing the pipe early must not end the job",
            *_environment(),
            'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)',
            srun,
            "",
        ]
        return "\n".join(lines)


def _environment() -> list[str]:
    """The lines that make this Python environment (Workbench, torchrun) the job's."""
    if sys.prefix != sys.base_prefix:  # a virtual environment: it must be shared too
        return [f"source {shlex.quote(str(Path(sys.prefix) / 'bin' / 'activate'))}"]
    return [f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"  '
            "# where this Python's torchrun is"]


__all__ = ["ClusterError", "ClusterLaunch", "DEFAULT_PORT"]
