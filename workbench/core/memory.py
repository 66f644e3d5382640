"""How much memory an experiment needs, estimated from its shapes before anything is allocated.

A network that cannot fit must be refused with the numbers, not found out by a swapping
machine or an allocator's error half-way through. The estimate is arithmetic over the layer
report (`core.model.analyze`), so the app's editor shows it on every edit; the CLI's preflight
and the trainer's setup refuse what exceeds the device's available memory.

What is counted (float32 throughout; bf16 only makes some activations smaller):
parameters, their gradients, the optimizer's state (by optimizer), the activations one
training batch keeps for backward plus the backward pass's largest gradient pair, the
resident dataset (images stay uint8), one evaluation batch, and on the CPU the checkpoint
being serialized (weights and optimizer state, twice: the buffer and its bytes). Training
and evaluation do not overlap, so the sum is on the safe side. Against the peak resident
memory a CPU run added (four networks on MNIST) it was 1.1-1.4x for runs of 600 MB and more;
for small ones PyTorch's own ~100 MB of workspace dominates, which matters to no refusal.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.spec import DataSpec, ExperimentSpec, SpecError
from workbench.spec.datasets import split_sizes

if TYPE_CHECKING:
    import torch

    from workbench.core.data.splits import DatasetInfo
    from workbench.core.model import ModelReport

# samples per evaluation batch: validation, test, a run's start, prune's figures, the measured
# variants; the one home of the number (the memory estimate counts one such batch)
EVAL_BATCH = 1024
FLOAT = 4  # bytes of a float32
# float32 tensors of optimizer state per parameter
OPTIMIZER_STATE = {"gd": 0, "sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2, "adamw": 2,
                   "rmsprop": 1, "adagrad": 1}
INDEXED_POOLS = frozenset({"MaxPool2d"})  # keep int64 indices of their maxima for backward


def human_bytes(n: float) -> str:
    """1.2 GB, 340 MB, 12 KB (powers of 1024, as the editor shows sizes)."""
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes an experiment needs on its device, by what holds them."""

    parameters: int
    gradients: int
    optimizer: int
    activations: int
    data: int
    evaluation: int
    checkpoint: int = 0
    optimizer_name: str = ""

    @property
    def total(self) -> int:
        return (self.parameters + self.gradients + self.optimizer + self.activations
                + self.data + self.evaluation + self.checkpoint)

    def breakdown(self) -> str:
        parts = [("parameters", self.parameters), ("gradients", self.gradients),
                 (f"{self.optimizer_name or 'optimizer'} state", self.optimizer),
                 ("activations", self.activations), ("data", self.data),
                 ("evaluation", self.evaluation), ("checkpoint", self.checkpoint)]
        return ", ".join(f"{name} {human_bytes(n)}" for name, n in parts if n)


@dataclass(frozen=True)
class DeviceMemory:
    """What a device has free now; `available` None when it cannot be told."""

    label: str  # "the CPU", "the GPU cuda:0"
    available: int | None


class DoesNotFit(SpecError):
    """An experiment that needs more memory than its device has; the message has the numbers."""

    def __init__(self, estimate: MemoryEstimate, memory: DeviceMemory) -> None:
        assert memory.available is not None
        super().__init__("", f"the experiment needs about {human_bytes(estimate.total)} of "
                             f"memory ({estimate.breakdown()}); {memory.label} has "
                             f"{human_bytes(memory.available)} available: use fewer or "
                             "narrower layers, a smaller batch or less data")
        self.estimate = estimate
        self.memory = memory


def train_samples(data: DataSpec, num_samples: int, test_samples: int | None) -> int:
    """Training samples a dataset of `num_samples` leaves after its validation and test (an
    official test split of `test_samples` leaves the rest to split into train and val)."""
    if test_samples is not None:
        return max(1, split_sizes(num_samples - test_samples, data.val_fraction, 0.0)[0])
    return max(1, split_sizes(num_samples, data.val_fraction, data.test_fraction)[0])


def estimate_memory(spec: ExperimentSpec, report: ModelReport, *, num_samples: int,
                    test_samples: int | None, num_classes: int,
                    cpu: bool = True) -> MemoryEstimate:
    """The estimate for a stack that fits its data (`report` from `analyze`, without error)
    of `num_samples` (`test_samples` of them an official test split; `num_classes` 0: a
    regression). `cpu`: the device is the CPU, which also holds the checkpoints as they are
    written. Pure arithmetic: cheap enough for every edit in the app."""
    n = max(1, num_samples)
    n_train = train_samples(spec.data, n, test_samples)
    batch = n_train if spec.optim.name == "gd" else min(spec.train.batch_size, n_train)
    p = report.total_params
    inputs = math.prod(report.input_shape)
    outputs = [math.prod(r.out_shape) for r in report.layers if r.out_shape is not None]
    indices = sum(math.prod(r.out_shape) for r in report.layers
                  if r.type in INDEXED_POOLS and r.out_shape is not None)
    widest = max([inputs, *outputs])
    # The input as a float copy, normalized and augmented (3 copies); every layer's output,
    # kept for backward; the gradients flowing back through the widest layer (2).
    per_sample = FLOAT * (3 * inputs + sum(outputs) + 2 * widest) + 8 * indices
    per_eval_sample = FLOAT * (3 * inputs + 2 * widest)
    image = len(report.input_shape) == 3
    label_bytes = 8 if num_classes > 0 else FLOAT
    sample_bytes = inputs * (1 if image else FLOAT) + label_bytes
    state = FLOAT * p * OPTIMIZER_STATE.get(spec.optim.name, 2)
    return MemoryEstimate(
        parameters=FLOAT * p, gradients=FLOAT * p, optimizer=state,
        activations=batch * per_sample, data=n * sample_bytes,
        evaluation=min(EVAL_BATCH, n) * per_eval_sample,
        checkpoint=2 * (FLOAT * p + state) if cpu else 0, optimizer_name=spec.optim.name)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Room left under a container's memory limit (cgroup v2), when there is one."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def cpu_memory() -> DeviceMemory:
    """The CPU's available memory: MemAvailable, within a container's limit. Needs no torch."""
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if not found:
        try:
            found = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (ValueError, OSError, AttributeError):
            found = []
    return DeviceMemory("the CPU", min(found) if found else None)


def device_memory(device: torch.device) -> DeviceMemory:
    """The available memory of a resolved device (CUDA: free memory on that GPU now)."""
    if device.type != "cuda":
        return cpu_memory()
    import torch

    index = device.index if device.index is not None else torch.cuda.current_device()
    try:
        free, _total = torch.cuda.mem_get_info(index)
    except RuntimeError:  # a GPU in a bad state: training will say so itself
        return DeviceMemory(f"the GPU cuda:{index}", None)
    return DeviceMemory(f"the GPU cuda:{index}", int(free))


def check_fits(estimate: MemoryEstimate, memory: DeviceMemory) -> None:
    """Raise DoesNotFit when the estimate exceeds what the device has available."""
    if memory.available is not None and estimate.total > memory.available:
        raise DoesNotFit(estimate, memory)


def ensure_fits(spec: ExperimentSpec, report: ModelReport, info: DatasetInfo,
                device: torch.device) -> MemoryEstimate:
    """The estimate, after refusing (DoesNotFit) an experiment that will not fit `device`."""
    estimate = estimate_memory(spec, report, num_samples=info.num_samples,
                               test_samples=info.test_samples, num_classes=info.num_classes,
                               cpu=device.type != "cuda")
    check_fits(estimate, device_memory(device))
    return estimate


__all__ = ["DeviceMemory", "DoesNotFit", "MemoryEstimate", "check_fits", "cpu_memory",
           "device_memory", "ensure_fits", "estimate_memory", "human_bytes", "train_samples"]
