"""Making pruning permanent: fold masks, physically remove units, fine-tune, store a new run.

Structured pruning removes the units for real: the Linear's rows (or Conv2d's channels) and
their bias, the BatchNorm entries after them and the next layer's matching inputs, and the new
run's spec carries the smaller `out`, so it rebuilds the smaller model exactly. Unstructured
pruning keeps the dense shapes with zeros in them. Fine-tuning hands the masks to the trainer,
whose step keeps pruned weights at zero after every update (in a captured CUDA graph too) and
whose checkpoints carry them through a resume. The parent run is only read.

What pruning decided (the parent, the pruning, sparsity, sizes, latencies) is in the new run's
summary from the moment the run exists, so a fine-tuning stopped by a signal (or killed) and
resumed later still says what it is; the accuracies follow when it ends.
"""

from __future__ import annotations

import io
import math
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.core.data import DeviceBatches
from workbench.core.memory import EVAL_BATCH
from workbench.core.model import build_to_load
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.prune import PruneConfig, PruneError, PruneResult, PruneSession
from workbench.core.training.callbacks import Callback
from workbench.core.training.events import Event, RunFailed, RunFinished
from workbench.core.training.failures import explain
from workbench.core.training.step import evaluate
from workbench.spec import ExperimentSpec, LayerSpec, ModelSpec, SpecError, derived_name

LATENCY_REPEATS = 200


def shrink(session: PruneSession, result: PruneResult) -> tuple[list[LayerSpec],
                                                                dict[str, torch.Tensor]]:
    """The smaller stack and its weights after structured pruning (masks folded in)."""
    state = session.masked_state(result.masks)
    layers = session.shrunk_layers(result.kept_units)
    for index, keep in result.kept_units.items():
        link = session.links[index]
        for i in (index, *link.batchnorms):
            entries = keep if i == index else link.batchnorm_entries(i, keep)
            for name in ("weight", "bias", "running_mean", "running_var"):
                key = f"{i}.{name}"
                if key in state:
                    state[key] = state[key][entries].clone()
        key = f"{link.consumer}.weight"
        state[key] = state[key][:, link.consumer_inputs(keep)].clone()
    return layers, state


def state_bytes(state: Mapping[str, torch.Tensor]) -> int:
    """The size of the weights as model.pt stores them."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    return buf.getbuffer().nbytes


def cpu_latency_ms(model: nn.Module, input_shape: tuple[int, ...], *, batch: int = 1,
                   repeats: int = LATENCY_REPEATS) -> float:
    """Median CPU time of one forward pass at `batch`, in milliseconds, in eval mode."""
    model = model.eval()
    # its own generator: drawing from the process's would move another job's random numbers
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(0))
    times = []
    with torch.inference_mode():
        for _ in range(10):
            model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


@dataclass(frozen=True)
class PrunedRun:
    run_dir: str
    summary: dict[str, Any]


def _accuracy(model: nn.Module, session: PruneSession, split: str) -> dict[str, Any]:
    s = session.splits
    x, y = (s.val_x, s.val_y) if split == "val" else (s.test_x, s.test_y)
    batches = DeviceBatches(x, y, mean=s.mean, std=s.std, batch_size=EVAL_BATCH,
                            device=torch.device("cpu"), shuffle=False, generator=None,
                            image=session.info.is_image)
    return evaluate(model, batches.x, batches.y, batches.batch, session.loss_fn,
                    session.num_classes)


def create_pruned_run(session: PruneSession, config: PruneConfig, *, runs: RunStore,
                      finetune_epochs: int = 0, lr: float | None = None,
                      on_event: Callable[[Event], None] | None = None,
                      cancel: threading.Event | None = None) -> PrunedRun:
    """Prune, make it permanent, optionally fine-tune, and store the result as a new run.

    Fine-tuning uses the parent's optimizer at its base learning rate (or `lr`) with a
    constant schedule. `cancel` stops fine-tuning after the step in flight; the run keeps
    the weights it reached, stopped and resumable (PruneError, with nothing stored, when it
    is set before the run is made). The summary holds sparsity, parameters, accuracy before
    and after fine-tuning, and size and CPU latency before and after.
    """
    tuned = _finetune_spec(session.spec, finetune_epochs, lr)
    result = session.evaluate(config)
    info = session.info
    if config.structured:
        layers, state = shrink(session, result)
        keep_masks: dict[str, torch.Tensor] = {}
    else:
        layers = [LayerSpec(la.type, dict(la.params)) for la in session.spec.model.layers]
        state = session.masked_state(result.masks)
        keep_masks = {k: m for k, m in result.masks.items() if (m == 0).any()}
    model: nn.Module = build_to_load(layers, info.input_shape)
    model.load_state_dict(state)
    spec = session.spec.copy()
    spec.model = ModelSpec(layers=layers)
    spec.name = derived_name(session.spec.name, "-pruned")
    pruned_val = _accuracy(model, session, "val")
    parent = session.run.path
    base_model = build_to_load(session.spec.model.layers, info.input_shape)
    base_model.load_state_dict(session.base)
    pruning: dict[str, Any] = {
        "pruned_from": str(parent),
        "prune": config.describe(),
        **_counts(model, session),
        "parameters_before": session.params_before,
        "val_accuracy_parent": session.baseline.val_accuracy,
        "val_accuracy_pruned": pruned_val["accuracy"],
        "val_loss_pruned": pruned_val["loss"],
        "finetune_epochs": finetune_epochs,
        "bytes_before": state_bytes(session.base),
        "bytes_after": state_bytes(model.state_dict()),
        "latency_ms_before": cpu_latency_ms(base_model, info.input_shape),
        "latency_ms_after": cpu_latency_ms(model, info.input_shape),
        "latency_ms_256_before": cpu_latency_ms(base_model, info.input_shape, batch=256,
                                                repeats=30),
        "latency_ms_256_after": cpu_latency_ms(model, info.input_shape, batch=256, repeats=30),
        "notes": list(result.notes),
    }
    if cancel is not None and cancel.is_set():
        raise PruneError("stopped before the pruned run was stored; nothing was made")
    status = "finished"
    if tuned is not None:
        spec.optim, spec.schedule, spec.train = tuned.optim, tuned.schedule, tuned.train
        model, run_dir, status = _finetune(spec, state, keep_masks, session, runs, parent,
                                           on_event, cancel, pruning)
    else:
        try:
            run = runs.create(spec, parent=parent, **pruning)
            run.save_model(model.state_dict())
        except OSError as exc:
            raise PruneError(f"{explain(exc).reason}; the pruned run was not stored") from exc
        run_dir = str(run.path)
    val = _accuracy(model, session, "val")
    test = _accuracy(model, session, "test")
    summary: dict[str, Any] = {
        **pruning, **_counts(model, session), "status": status,
        "val_accuracy": val["accuracy"], "val_loss": val["loss"],
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
    }
    try:
        summary = Run(Path(run_dir)).update_summary(**summary)
    except OSError as exc:
        raise PruneError(f"{explain(exc).reason}; the pruned run {run_dir} lacks its "
                         "summary") from exc
    return PrunedRun(run_dir, summary)


def _counts(model: nn.Module, session: PruneSession) -> dict[str, Any]:
    """Sparsity and parameter counts of the pruned network (fine-tuning keeps them: the
    pruned weights stay zero)."""
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")
               and p.dim() > 1]
    kept = sum(int((w != 0).sum()) for w in weights)
    original = sum(math.prod(lay.weight_shape) for lay in session.layers)
    return {"sparsity": 1.0 - kept / max(1, original),
            "parameters": sum(int((p != 0).sum()) for p in model.parameters()),
            "parameters_stored": sum(p.numel() for p in model.parameters())}


class _PruneRecord(Callback):
    """Writes what pruning decided into the fine-tuning run's summary as soon as it exists."""

    def __init__(self, pruning: dict[str, Any]) -> None:
        self.pruning = pruning

    def on_run_start(self, trainer: Any) -> None:
        if trainer.run is not None:
            trainer.run.update_summary(**self.pruning)


class _CancelWatch(Callback):
    def __init__(self, cancel: threading.Event | None) -> None:
        self.cancel = cancel

    def on_progress(self, trainer: Any, progress: Any) -> None:
        if self.cancel is not None and self.cancel.is_set():
            trainer.stop()


def _finetune_spec(spec: ExperimentSpec, epochs: int,
                   lr: float | None) -> ExperimentSpec | None:
    """The parent's spec set up for fine-tuning (None: no fine-tuning), validated before any
    work: a rate of 0 or NaN would store a run that nothing could resume or export."""
    if epochs == 0:
        return None
    try:
        tuned = spec.with_value("train.epochs", epochs).with_value("schedule.name", "constant")
        tuned = tuned.with_value("schedule.warmup_epochs", 0.0)
        return tuned.with_value("optim.lr", lr) if lr is not None else tuned
    except SpecError as exc:
        raise PruneError(f"fine-tuning: {exc}") from None


def _finetune(spec: ExperimentSpec, state: dict[str, torch.Tensor],
              masks: dict[str, torch.Tensor], session: PruneSession, runs: RunStore,
              parent: Path, on_event: Callable[[Event], None] | None,
              cancel: threading.Event | None,
              pruning: dict[str, Any]) -> tuple[nn.Module, str, str]:
    from workbench.core.training.loop import Trainer

    trainer = Trainer(spec, runs=runs, data=session.splits, initial_state=state,
                      masks=masks, callbacks=[_PruneRecord(pruning), _CancelWatch(cancel)],
                      parent=parent)
    finished: RunFinished | None = None
    for event in trainer.events():
        if on_event is not None:
            on_event(event)
        if isinstance(event, RunFailed):
            raise PruneError(f"fine-tuning failed: {event.reason} ({event.hint})")
        if isinstance(event, RunFinished):
            finished = event
    assert finished is not None
    status = "stopped" if finished.stopped else "finished"
    return trainer.model.to("cpu").eval(), finished.run_dir, status


__all__ = ["PrunedRun", "cpu_latency_ms", "create_pruned_run", "shrink",
           "state_bytes"]
