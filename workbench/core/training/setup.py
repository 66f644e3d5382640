"""A run's set-up: everything it needs before its first step, built from the spec.

`prepare_run` resolves the device, takes the thread count (and for CUDA the backend
switches) from the process's one owner of them (`process.py`), checks that the network fits
in memory before anything is allocated, loads the data (on several ranks, each machine's
first rank first), builds the model from the run's own random streams (`streams.py`), the
optimizer, the schedule, the loss and the device batches, and wraps the model for a
distributed run. Nothing global is read or written but what the owner shares. `make_step`
picks the fastest training step once the model's starting state is known (a resume or a fork
restores it first). Nothing is stored here: the run's folder is the recorder's
(`recorder.py`), the stepping the loop's (`loop.py`).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from workbench.core.data import DeviceBatches, Splits
from workbench.core.data.cache import DataSource, info_from, load_from
from workbench.core.memory import EVAL_BATCH, MemoryEstimate, ensure_fits
from workbench.core.model import build_model, check
from workbench.core.training.backends import backend_settings
from workbench.core.training.linear_step import LinearStackStep, supports
from workbench.core.training.optim import LRSchedule, build_optimizer, loss_function
from workbench.core.training.process import PROCESS
from workbench.core.training.step import EagerStep, GraphStep, Masked, wants_graph
from workbench.core.training.streams import RunStreams
from workbench.core.training.threads import choose_threads
from workbench.spec import ExperimentSpec, SpecError, validate

if TYPE_CHECKING:
    from workbench.core.training.distributed import DistContext


@dataclass
class RunSetup:
    """What a run trains with, ready for its first step."""

    spec: ExperimentSpec
    device: torch.device
    num_threads: int
    memory: MemoryEstimate
    data: Splits
    num_classes: int
    model: nn.Module
    train_model: nn.Module  # the model, or its DistributedDataParallel wrapper
    streams: RunStreams  # initialisation, Dropout, shuffling and augmentation
    batch_size: int
    train_batches: DeviceBatches
    val_batches: DeviceBatches
    test_batches: DeviceBatches
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    loss_fn: nn.Module
    graph_wanted: bool  # the step is to be captured in a CUDA graph
    shared: tuple[str, ...] = ()  # what the run trains with that another job set, in words


def resolve_device(name: str) -> torch.device:
    """`auto` is the GPU when there is one; asking for a GPU this machine lacks is a clear
    error (a SpecError naming train.device)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError("train.device", f"{name} asked for, but this machine has no CUDA GPU; "
                                        "use auto or cpu")
    device = torch.device(name)
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.index is not None and device.index >= count:
        raise SpecError("train.device", f"{name} asked for, but this machine has {count} "
                                        f"GPU{'s' if count != 1 else ''} (cuda:0 to "
                                        f"cuda:{count - 1})")
    return device


def prepare_run(spec: ExperimentSpec, *, cleanup: contextlib.ExitStack,
                data: Splits | None = None, source: DataSource | None = None,
                threads: int | None = None, dist: DistContext | None = None,
                initial_state: dict[str, torch.Tensor] | None = None,
                cancel: threading.Event | None = None) -> RunSetup:
    """Build the run of `spec`; what it sets for the process is undone by `cleanup`.

    `data` is a loaded dataset to share (else it comes from `source`, the workspace's cache),
    `threads` the CLI's --threads, `initial_state` the weights to start from (else the seed's),
    `cancel` stops a load or download. Raises SpecError, DataError (bad input) or DoesNotFit.
    """
    thread_share = cleanup.enter_context(
        PROCESS.threads(choose_threads(threads, spec.train.threads)))
    validate(spec)  # a spec made in code, not read from a file, is checked all the same
    device = dist.device if dist else resolve_device(spec.train.device)
    # Shapes and memory from the description, before the data or the model take any.
    info = data.info if data is not None else info_from(source, spec.data, cancel=cancel)
    report = check(spec.model.layers, info.input_shape, info.num_classes)
    memory = ensure_fits(spec, report, info, device)
    if data is None:
        def load() -> Splits:
            return load_from(source, spec.data, spec.train.seed, cancel=cancel)

        data = dist.local_main_first(load) if dist else load()
    info = data.info
    check(spec.model.layers, info.input_shape, info.num_classes)
    streams = RunStreams.seeded(spec.train.seed, device)
    model = build_model(spec.model.layers, info.input_shape, generator=streams.model,
                        dropout=streams.dropout)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    layout = torch.channels_last if spec.train.channels_last else torch.contiguous_format
    # Module.to takes memory_format (documented), which torch's stubs leave out.
    model = model.to(device, memory_format=layout)  # type: ignore[call-overload]
    shared = [thread_share.note]
    if device.type == "cuda":
        shared.append(cleanup.enter_context(
            PROCESS.backends(backend_settings(model, device))).note)
    train_batches, val_batches, test_batches = _batches(spec, data, device, streams.batches,
                                                        dist)
    train_model = model
    if dist:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=ids)
    graph_wanted = wants_graph(spec, device) and dist is None
    optimizer = build_optimizer(spec, model.parameters(), device, capturable=graph_wanted)
    steps_per_epoch = len(train_batches)
    return RunSetup(
        spec=spec, device=device, num_threads=thread_share.value, memory=memory, data=data,
        num_classes=info.num_classes, model=model, train_model=train_model, streams=streams,
        batch_size=train_batches.batch_size, train_batches=train_batches,
        val_batches=val_batches, test_batches=test_batches, steps_per_epoch=steps_per_epoch,
        optimizer=optimizer, schedule=LRSchedule(spec, steps_per_epoch),
        loss_fn=loss_function(info.num_classes), graph_wanted=graph_wanted,
        shared=tuple(note for note in shared if note))


def _batches(spec: ExperimentSpec, data: Splits, device: torch.device, gen: torch.Generator,
             dist: DistContext | None) -> tuple[DeviceBatches, DeviceBatches, DeviceBatches]:
    """Training batches (shuffled by `gen`, augmented, a lone last sample dropped), and the
    validation and test splits in evaluation batches."""
    n_train = data.train_x.shape[0]
    bs = n_train if spec.optim.name == "gd" else min(spec.train.batch_size, n_train)
    world = dist.world_size if dist else 1
    common = {"mean": data.mean, "std": data.std, "device": device,
              "image": data.info.kind == "image", "channels_last": spec.train.channels_last}
    train = DeviceBatches(
        data.train_x, data.train_y, batch_size=bs, shuffle=True, generator=gen,
        augment=spec.data.augment if spec.data.augment.active else None,
        drop_last=0 < n_train % bs < 2 * world, **common)
    val = DeviceBatches(data.val_x, data.val_y, batch_size=EVAL_BATCH, shuffle=False,
                        generator=None, **common)
    test = DeviceBatches(data.test_x, data.test_y, batch_size=EVAL_BATCH, shuffle=False,
                         generator=None, **common)
    return train, val, test


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
              spec: ExperimentSpec, num_classes: int, device: torch.device, *,
              batch_size: int, input_shape: tuple[int, ...], graph: bool,
              masked: Masked = ([], [])) -> tuple[EagerStep, str | None]:
    """The fastest step this run allows, and why it fell back to eager (None if it did not)."""
    if not graph:
        kind = LinearStackStep if supports(model, loss_fn, spec, device) else EagerStep
        return kind(model, optimizer, loss_fn, spec, num_classes, device, masked=masked), None
    try:
        step = GraphStep(model, optimizer, loss_fn, spec, num_classes, device,
                         batch_size=batch_size, input_shape=input_shape, masked=masked)
    except Exception as exc:  # any capture failure: the eager step always works
        reason = f"CUDA graph capture failed ({type(exc).__name__}: {exc}); running eagerly"
        optimizer.zero_grad(set_to_none=True)
        return EagerStep(model, optimizer, loss_fn, spec, num_classes, device,
                         masked=masked), reason
    return step, None


__all__ = ["RunSetup", "make_step", "prepare_run", "resolve_device"]
