"""Extras that hook into the training loop through `on_*` methods, as Lightning's callbacks do.

A callback may emit events through `trainer.emit`, ask the loop to stop through
`trainer.request_stop`, or end the run by raising `RunAbort`. What a callback must carry over
a resume it returns from `state_dict`; the checkpoint keeps it under the callback's `state_key`
and `load_state_dict` gets it back. The trainer calls the hooks in this order: `setup` (model,
optimizer and data ready, the training step not yet built), `on_run_start`, then `on_progress`
a few times a second and `on_epoch_end` after validation, `on_stop` when a stop request ends
an epoch early, and `on_run_end` last, before the final test evaluation.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from workbench.core.training.state import checkpoint_epochs, epoch_checkpoint_name

if TYPE_CHECKING:
    from workbench.core.data import DeviceBatches, Splits
    from workbench.core.store.runs import Run
    from workbench.core.training.distributed import DistContext
    from workbench.core.training.events import Event, Progress
    from workbench.core.training.state import LoopState
    from workbench.spec import ExperimentSpec


class TrainerView(Protocol):
    """What a callback may read and call on the trainer that drives it."""

    spec: ExperimentSpec
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    device: torch.device
    data: Splits | None
    train_batches: DeviceBatches
    val_batches: DeviceBatches
    gen: torch.Generator
    steps_per_epoch: int
    batch_size: int
    num_classes: int
    dist: DistContext | None
    state: LoopState
    masks: dict[str, torch.Tensor]

    @property
    def run(self) -> Run | None: ...

    def emit(self, event: Event) -> None: ...

    def request_stop(self, *, early: bool = False) -> None: ...

    def stop(self) -> None: ...

    def checkpoint_state(self) -> dict[str, Any]: ...


class RunAbort(RuntimeError):
    """Ends the run as failed with a reason and a hint for the person."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class Callback:
    """A no-op at every hook; subclasses override the ones they need."""

    @property
    def state_key(self) -> str:
        """Where the checkpoint keeps this callback's state."""
        return type(self).__name__

    def setup(self, trainer: TrainerView) -> None:
        """Called once model, optimizer and data exist, before the training step is built."""

    def on_run_start(self, trainer: TrainerView) -> None:
        """Called once the run folder is ready and a resumed run's state is restored."""

    def on_progress(self, trainer: TrainerView, progress: Progress) -> None:
        """Called a few times a second with the metrics read from the device."""

    def on_epoch_end(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        """Called after validation, with the epoch's metrics record."""

    def on_stop(self, trainer: TrainerView) -> None:
        """Called when a stop request ends the run before its last epoch ended."""

    def on_run_end(self, trainer: TrainerView) -> None:
        """Called before the final test evaluation, also after a stop."""

    def state_dict(self) -> dict[str, Any] | None:
        """What a resumed run needs of this callback; None: nothing."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what `state_dict` returned when the checkpoint was written."""


NAN_HINT = "lower the learning rate, or clip gradients (regularization.grad_clip)"


class NanGuard(Callback):
    """Ends the run at the first non-finite loss, before any checkpoint holds such weights."""

    def on_progress(self, trainer: TrainerView, progress: Progress) -> None:
        self._check(progress.train_loss, f"epoch {progress.epoch + 1}, step {progress.step}")

    def on_epoch_end(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        self._check(record["train_loss"], f"epoch {record['epoch']}")
        if record["val_loss"] is not None:
            self._check(record["val_loss"], f"epoch {record['epoch']} (validation)")

    @staticmethod
    def _check(value: float, where: str) -> None:
        if not math.isfinite(value):
            raise RunAbort(f"the loss became {value} at {where}", NAN_HINT)


def weights_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


class EarlyStopping(Callback):
    """Stops when validation loss has not improved for `patience` epochs; restores the best."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stopped = False

    def on_epoch_end(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        loss = record["val_loss"]
        if loss is None:
            return
        if loss < self.best - self.min_delta:
            self.best = loss
            self.best_epoch = record["epoch"]
            self.bad_epochs = 0
            self.best_state = {k: v.detach().to("cpu", copy=True)
                               for k, v in trainer.model.state_dict().items()}
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                self.stopped = True
                trainer.request_stop(early=True)

    def on_run_end(self, trainer: TrainerView) -> None:
        if self.stopped and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": copy.copy(self.best_state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]
        self.best_state = state["best_state"]


class Checkpointing(Callback):
    """Writes everything needed to continue exactly (`checkpoint.pt`): after every epoch, and
    when a stop ends an epoch early (or comes before the first step: a run stopped that soon
    is still resumable). Never writes non-finite weights: that ends the run.

    Every `train.checkpoint_every` epochs (and after the planned last one) it also keeps a
    copy as an epoch checkpoint, the points a run can be forked from; only the newest
    `train.keep_checkpoints` of them are kept. The epoch checkpoint is written first: a kill
    between the two writes leaves `checkpoint.pt` an epoch behind, and the resume repeats
    that epoch and writes its epoch checkpoint again, so the fork points have no hole. The
    trainer runs it after every other callback, so the state it saves includes theirs.
    """

    def on_epoch_end(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        state = self._state(trainer)
        if state is None:
            return
        keeps = self._keeps_epoch(trainer)
        if keeps:
            assert trainer.run is not None
            trainer.run.save_state(epoch_checkpoint_name(trainer.state.epoch), state)
        self._save(trainer, state)
        if keeps:
            self._drop_old(trainer)

    def on_stop(self, trainer: TrainerView) -> None:
        if trainer.state.step > 0 or trainer.state.global_step == 0:
            state = self._state(trainer)
            if state is not None:
                self._save(trainer, state)

    @staticmethod
    def _state(trainer: TrainerView) -> dict[str, Any] | None:
        """The checkpoint as of now (None when the run is not stored)."""
        if trainer.run is None:
            return None
        if not weights_finite(trainer.model):
            raise RunAbort("the weights became non-finite", NAN_HINT)
        return trainer.checkpoint_state()

    @staticmethod
    def _save(trainer: TrainerView, state: dict[str, Any]) -> None:
        assert trainer.run is not None
        trainer.run.save_checkpoint(state)
        trainer.run.update_summary(epochs_done=trainer.state.epoch,
                                   checkpoint_step=trainer.state.global_step)

    @staticmethod
    def _keeps_epoch(trainer: TrainerView) -> bool:
        train = trainer.spec.train
        epoch = trainer.state.epoch
        return train.checkpoint_every > 0 and (epoch % train.checkpoint_every == 0
                                               or epoch == train.epochs)

    @staticmethod
    def _drop_old(trainer: TrainerView) -> None:
        """Only the newest `train.keep_checkpoints` epoch checkpoints stay."""
        run = trainer.run
        assert run is not None
        keep = trainer.spec.train.keep_checkpoints
        if keep is not None:
            for old in checkpoint_epochs(run.path)[:-keep]:
                (run.path / epoch_checkpoint_name(old)).unlink(missing_ok=True)


__all__ = ["NAN_HINT", "Callback", "Checkpointing", "EarlyStopping", "NanGuard", "RunAbort",
           "TrainerView", "weights_finite"]
