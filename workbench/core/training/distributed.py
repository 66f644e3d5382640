"""Training on several processes (GPUs or CPU cores, one machine or many) through torchrun.

`launch_command` builds the exact `torchrun` line for an experiment; each process it starts
runs `python -m workbench.commands.rank`, which reads torchrun's environment (`init_from_env`)
and drives a `Trainer` with a `DistContext`. NCCL on GPUs, gloo on CPUs.

Every rank holds the whole (small) training set resident and all ranks draw the same global
permutation; rank r trains on its slice of each global batch. So the global batch size and the
learning rate mean what they mean in one process, and two processes follow the one-process
loss curve up to the order of floating-point reductions.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

TIMEOUT = timedelta(seconds=120)  # a collective that waits longer than this fails, never hangs


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum a few numbers over every rank (float64, one collective)."""
        device = self.device if self.backend == "nccl" else torch.device("cpu")
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()


def init_from_env(device_pref: str = "auto") -> DistContext:
    """Join the process group torchrun set up (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*)."""
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = torch.cuda.is_available() and device_pref != "cpu"
    if use_cuda:
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT)
    return DistContext(rank, world, local, device, backend)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launch_command(spec_path: str, nproc: int, *, nnodes: int = 1, node_rank: int | None = None,
                   master_addr: str | None = None, master_port: int | None = None,
                   rdzv_endpoint: str | None = None, runs_dir: str | None = None,
                   extra: list[str] | None = None, python: str | None = None) -> list[str]:
    """The torchrun command line that trains `spec_path` on `nproc` processes per node."""
    cmd = [python or sys.executable, "-m", "torch.distributed.run",
           f"--nproc-per-node={nproc}", f"--nnodes={nnodes}", "--max-restarts=0"]
    if rdzv_endpoint:
        cmd += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    elif nnodes == 1 and master_addr is None:
        cmd += ["--standalone"]
    if node_rank is not None:
        cmd += [f"--node-rank={node_rank}"]
    if master_addr:
        cmd += [f"--master-addr={master_addr}"]
    if master_port:
        cmd += [f"--master-port={master_port}"]
    cmd += ["-m", "workbench.commands.rank", spec_path]
    if runs_dir:
        cmd += ["--runs-dir", runs_dir]
    return cmd + list(extra or [])
