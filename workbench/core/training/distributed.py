"""Training on several processes (GPUs or CPU cores, one machine or many) through torchrun.

`launch_command` builds the exact `torchrun` line for an experiment; each process it starts
runs `python -m workbench.commands.rank`, which reads torchrun's environment (`init_from_env`)
and drives a `Trainer` with a `DistContext`. NCCL on GPUs, gloo on CPUs. In the packaged app,
where there is no `python -m`, the app's own executable plays both parts (`workbench _torchrun`
and `workbench _rank`).

Ranks agree before they decide: each machine's first rank loads (downloads) the data before
the others; validation metrics are averaged over the ranks before early stopping or the plateau
schedule read them; a stop asked of any rank is seen by all at the same step.

Every rank holds the whole (small) training set resident and all ranks draw the same global
permutation; rank r trains on its slice of each global batch. So the global batch size and the
learning rate mean what they mean in one process, and two processes follow the one-process
loss curve up to the order of floating-point reductions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist

from workbench.paths import is_frozen

T = TypeVar("T")

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

    def local_main_first(self, work: Callable[[], T]) -> T:
        """`work()` on each machine's first rank, then on the others once it succeeded there:
        a download happens once per machine, and the other ranks find it in the cache.
        A failure on a first rank fails every rank (the others with a pointer to it)."""
        first = self.local_rank == 0
        failure: BaseException | None = None
        result: T | None = None
        if first:
            try:
                result = work()
            except Exception as exc:  # every rank must reach the collective below
                failure = exc
        (failed,) = self.all_reduce_sum([1.0 if failure is not None else 0.0])
        if failure is not None:
            raise failure
        if failed:
            from workbench.core.data.errors import DataError

            raise DataError("the first rank of a machine could not load the data; its error "
                            "is above")
        return result if first else work()  # type: ignore[return-value]


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


def shutdown(*, together: bool = False) -> None:
    """Leave the process group. `together` (a run that ended normally on every rank): wait
    at a barrier first, so no rank tears its connections down while a peer still uses them
    (under load a rank that left early made its peer abort in gloo: "terminate called
    without an active exception", a finished run reported failed)."""
    if dist.is_available() and dist.is_initialized():
        if together:
            with contextlib.suppress(RuntimeError):  # a peer is gone: nothing to wait for
                dist.barrier()
        dist.destroy_process_group()


def launch_command(spec_path: str, nproc: int, *, nnodes: int = 1, node_rank: int | None = None,
                   master_addr: str | None = None, master_port: int | None = None,
                   rdzv_endpoint: str | None = None, rdzv_id: str | None = None,
                   runs_dir: str | None = None, extra: list[str] | None = None,
                   python: str | None = None, frozen: bool | None = None,
                   agent: bool = False) -> list[str]:
    """The torchrun command line that trains `spec_path` on `nproc` processes per node.

    With `rdzv_endpoint` (c10d rendezvous) torchrun numbers the nodes as they join and
    ignores a node rank, so none is passed. `agent` runs Workbench's own torchrun agent
    (`workbench.commands.agent`, which records each rank's exit status) instead of torchrun;
    `frozen` (default: whether this is the packaged app) makes the app's executable run it
    (`_torchrun`) and the ranks (`--no-python ... _rank`).
    """
    frozen = is_frozen() if frozen is None else frozen
    exe = python or sys.executable
    if frozen:
        cmd = [exe, "_torchrun"]
    else:
        cmd = [exe, "-m", "workbench.commands.agent" if agent else "torch.distributed.run"]
    cmd += [f"--nproc-per-node={nproc}", f"--nnodes={nnodes}", "--max-restarts=0"]
    if rdzv_endpoint:
        cmd += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
        if rdzv_id:
            cmd += [f"--rdzv-id={rdzv_id}"]
    elif nnodes == 1 and master_addr is None:
        cmd += ["--standalone"]
    elif node_rank is not None:
        cmd += [f"--node-rank={node_rank}"]
    if master_addr and not rdzv_endpoint:
        cmd += [f"--master-addr={master_addr}"]
    if master_port and not rdzv_endpoint:
        cmd += [f"--master-port={master_port}"]
    cmd += ["--no-python", exe, "_rank", spec_path] if frozen else \
        ["-m", "workbench.commands.rank", spec_path]
    if runs_dir:
        cmd += ["--runs-dir", runs_dir]
    return cmd + list(extra or [])


def die_with_parent() -> None:
    """For `preexec_fn`: the child gets SIGTERM when its parent dies, however it dies (Linux;
    elsewhere nothing). torchrun then stops its ranks instead of leaving them running."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def children(pid: int) -> list[int]:
    """The processes `pid` started (torchrun's: its ranks); [] where there is none."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in (Path("/proc") / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (children first), read from /proc; [] where there is none."""
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children(todo.pop())
        found += below
        todo += below
    return found


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to `pid` and everything below it (torchrun's ranks are session leaders of
    their own, so a process group does not reach them)."""
    for target in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            os.kill(target, sig)
