"""How many CPU threads PyTorch trains with: the physical cores but one, unless told.

Measured on a 2-core machine shared with other work (README, "Threads"): PyTorch's default of
one thread per core made every operation wait at OpenMP's barrier for whichever of its threads
the scheduler had taken away, so an epoch of the MNIST MLP took 5-60x as long as with one
thread, and a small CNN 4-10x. Leaving one core free costs at most 1/N of the throughput on an
idle machine of N cores and keeps the GUI (or whatever else runs) and the training team from
stalling each other. Hyper-threads share a core's arithmetic units, so they are not counted.

The order of precedence: an explicit count (the CLI's `--threads`), the spec's `train.threads`,
`OMP_NUM_THREADS` when the environment sets it (torchrun sets it to 1 for each of several ranks
on one machine), then the automatic count.
"""

from __future__ import annotations

import os
from pathlib import Path

_CPU_SYS = Path("/sys/devices/system/cpu")


def usable_cpus() -> set[int]:
    """The logical CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        return set(range(os.cpu_count() or 1))


def physical_cores(cpus: set[int] | None = None, sys_root: Path = _CPU_SYS) -> int:
    """Distinct physical cores among `cpus` (default: the usable ones); a logical CPU whose
    topology cannot be read counts as a core of its own."""
    cores: set[tuple[str, str]] = set()
    for cpu in cpus if cpus is not None else usable_cpus():
        topology = sys_root / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            package, core = "cpu", str(cpu)
        cores.add((package, core))
    return max(1, len(cores))


def automatic_threads(cores: int | None = None) -> int:
    """The physical cores but one (at least one)."""
    return max(1, (physical_cores() if cores is None else cores) - 1)


def _from_environment() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def choose_threads(explicit: int | None = None, spec_threads: int | None = None) -> int:
    """The thread count a run uses, by the precedence in this module's docstring."""
    return explicit or spec_threads or _from_environment() or automatic_threads()


__all__ = ["automatic_threads", "choose_threads", "physical_cores", "usable_cpus"]
