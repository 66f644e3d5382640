"""Extras that hook into the training loop through `on_*` methods, as Lightning's callbacks do.

A callback may emit events through `trainer.emit`, ask the loop to stop through
`trainer.request_stop`, or end the run by raising `RunAbort`.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from workbench.core.training.events import Progress
    from workbench.core.training.loop import Trainer


class RunAbort(RuntimeError):
    """Ends the run as failed with a reason and a hint for the person."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class Callback:
    def on_run_start(self, trainer: Trainer) -> None:
        """Called once the model, the data and the run folder are ready."""

    def on_progress(self, trainer: Trainer, progress: Progress) -> None:
        """Called a few times a second with the metrics read from the device."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Called after validation, with the epoch's metrics record."""

    def on_run_end(self, trainer: Trainer) -> None:
        """Called before the final test evaluation, also after a stop."""


NAN_HINT = "lower the learning rate, or clip gradients (regularization.grad_clip)"


class NanGuard(Callback):
    """Ends the run at the first non-finite loss, before any checkpoint holds such weights."""

    def on_progress(self, trainer: Trainer, progress: Progress) -> None:
        self._check(progress.train_loss, f"epoch {progress.epoch + 1}, step {progress.step}")

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._check(record["train_loss"], f"epoch {record['epoch']}")
        self._check(record["val_loss"], f"epoch {record['epoch']} (validation)")

    @staticmethod
    def _check(value: float, where: str) -> None:
        if not math.isfinite(value):
            raise RunAbort(f"the loss became {value} at {where}", NAN_HINT)


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

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        loss = record["val_loss"]
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

    def on_run_end(self, trainer: Trainer) -> None:
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
