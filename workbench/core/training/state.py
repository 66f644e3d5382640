"""Where a run stands: the loop's state, and the checkpoint format that saves and restores it.

One place for both, so that what the loop tracks and what a resume needs cannot drift apart.
A checkpoint holds the model, optimizer, schedule, this state, the run's own random streams
(`streams.py`), the callbacks' states and the pruning masks: enough to continue bit for bit on
the CPU. Version 3 keeps the run's streams where version 2 kept the global generator's state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from workbench.core.training.streams import RunStreams

CHECKPOINT_VERSION = 3
EPOCH_CHECKPOINTS = "checkpoints"  # the run's subfolder of epoch checkpoints (forks start there)
_EPOCH_FILE = re.compile(r"^epoch-(\d+)\.pt$")


@dataclass
class LoopState:
    """The position of a run; the loop updates it as it goes, hooks and checkpoints read it."""

    epoch: int = 0  # epochs done
    step: int = 0  # steps done in the epoch in flight
    global_step: int = 0
    elapsed: float = 0.0  # training seconds before this process took over (a resume)
    epoch_elapsed: float = 0.0  # seconds of the epoch in flight before a resume
    best_val_accuracy: float | None = None
    # the loss of the run's starting weights over a split, and which (its verdict's baseline)
    start_loss: float | None = None
    start_split: str | None = None
    last_loss: float | None = None  # over the last epoch (the last steps until one ends)
    # loss sum, correct, samples of the epoch in flight (read from the device so far)
    epoch_sums: list[float] = field(default_factory=lambda: [0.0, 0, 0])
    # the generator's state when the epoch began: it redraws the epoch's permutation
    epoch_gen_state: torch.Tensor | None = None


def capture(state: LoopState, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            schedule: Any, streams: RunStreams, elapsed: float,
            epoch_elapsed: float, callbacks: dict[str, Any],
            masks: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The checkpoint of a run at `state`, with the seconds trained so far."""
    ckpt: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(), "epoch": state.epoch, "step": state.step,
        "global_step": state.global_step,
        "epoch_sums": [float(state.epoch_sums[0]), int(state.epoch_sums[1]),
                       int(state.epoch_sums[2])],
        "epoch_gen_state": (state.epoch_gen_state if state.step
                            else streams.batches.get_state()),
        **streams.state_dict(),
        "elapsed": float(elapsed), "best_val_accuracy": state.best_val_accuracy,
        "last_loss": state.last_loss,
        "start_loss": state.start_loss, "start_split": state.start_split,
        "epoch_elapsed": float(epoch_elapsed) if state.step else 0.0,
        "callbacks": callbacks, "masks": {k: m.detach().cpu() for k, m in masks.items()},
    }
    return ckpt


def loop_state(ckpt: dict[str, Any]) -> LoopState:
    """The loop's position as a checkpoint recorded it."""
    return LoopState(epoch=ckpt["epoch"], step=ckpt["step"], global_step=ckpt["global_step"],
                     elapsed=ckpt["elapsed"], epoch_elapsed=ckpt.get("epoch_elapsed", 0.0),
                     best_val_accuracy=ckpt["best_val_accuracy"],
                     last_loss=ckpt.get("last_loss"),
                     start_loss=ckpt.get("start_loss"), start_split=ckpt.get("start_split"),
                     epoch_sums=list(ckpt["epoch_sums"]),
                     epoch_gen_state=ckpt["epoch_gen_state"])


def callback_states(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The callbacks' states; version 1 checkpoints kept early stopping's under its own key."""
    states = dict(ckpt.get("callbacks", {}))
    if "early_stopping" in ckpt:
        states.setdefault("EarlyStopping", ckpt["early_stopping"])
    return states


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any], *,
                         keep_settings: bool) -> None:
    """Restore an optimizer's state; with `keep_settings` its own hyperparameters (betas,
    momentum, weight decay, fused...) win over the checkpoint's, as a fork that changes them
    needs. `load_state_dict` alone would bring back the checkpoint's."""
    settings = [{k: v for k, v in group.items() if k != "params"}
                for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    if keep_settings:
        for group, own in zip(optimizer.param_groups, settings, strict=True):
            group.update(own)


def epoch_checkpoint_name(epoch: int) -> str:
    """Where a run keeps the checkpoint taken at the end of `epoch` (relative to the run)."""
    return f"{EPOCH_CHECKPOINTS}/epoch-{epoch:05d}.pt"


def checkpoint_epochs(run_dir: str | Path) -> list[int]:
    """The epochs whose end a run kept a checkpoint of, in order (empty when none)."""
    folder = Path(run_dir) / EPOCH_CHECKPOINTS
    if not folder.is_dir():
        return []
    found = (_EPOCH_FILE.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


__all__ = ["CHECKPOINT_VERSION", "EPOCH_CHECKPOINTS", "LoopState", "callback_states", "capture",
           "checkpoint_epochs", "epoch_checkpoint_name", "load_optimizer_state", "loop_state"]
