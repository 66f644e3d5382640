"""What the fair runner adds to each variant's trainer: the fairness check (the loss of the
initial weights on the first batch) and the weight trail the loss landscape draws."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.core.store.runs import Run
from workbench.core.training.callbacks import Callback

TRAIL_MAX_BYTES = 256 * 2**20  # weight snapshots kept per run for the loss landscape


@dataclass(frozen=True)
class FairStart:
    """Emitted after RunStarted: the loss of the initial weights on the first training batch."""

    first_batch_loss: float


class FirstBatchLoss(Callback):
    """The loss of the initial weights on the first training batch (eval mode, no RNG used).

    Equal across variants exactly when they share weights and batch order: the fairness check.
    It is emitted as `FairStart` and kept in the run's summary.
    """

    def __init__(self) -> None:
        self.value: float | None = None

    @torch.no_grad()
    def on_run_start(self, trainer: Any) -> None:
        gen = trainer.gen
        saved = gen.get_state()
        batches = trainer.train_batches
        perm = torch.randperm(batches.x.shape[0], generator=gen, device=batches.device)
        xb, yb = batches.batch(perm[:trainer.batch_size])
        gen.set_state(saved)
        model = trainer.model
        was_training = model.training
        model.eval()
        try:
            self.value = float(trainer.loss_fn(model(xb).float(), yb))
        finally:
            model.train(was_training)
        trainer.emit(FairStart(self.value))
        if trainer.run is not None:
            trainer.run.update_summary(first_batch_loss=self.value)


class WeightTrail(Callback):
    """Flattened weights at the start and after every epoch, for the loss landscape.

    Kept in memory and written to `trail.pt` in the run folder, so a reopened comparison can
    draw its paths too. Skipped for models too large to keep cheaply.
    """

    def __init__(self) -> None:
        self.points: list[torch.Tensor] = []
        self.epochs: list[int] = []
        self.enabled = True

    def _snap(self, trainer: Any, epoch: int) -> None:
        if not self.enabled:
            return
        params = [p.detach() for p in trainer.model.parameters()]
        n = sum(p.numel() for p in params)
        if 4 * n * (trainer.spec.train.epochs + 1) > TRAIL_MAX_BYTES:
            self.enabled = False
            self.points.clear()
            return
        self.points.append(torch.cat([p.reshape(-1).float().cpu() for p in params]))
        self.epochs.append(epoch)

    def on_run_start(self, trainer: Any) -> None:
        self._snap(trainer, 0)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self._snap(trainer, int(record["epoch"]))

    def on_run_end(self, trainer: Any) -> None:
        if self.points and trainer.run is not None:
            trainer.run.save_state("trail.pt", {"epochs": list(self.epochs),
                                                "weights": torch.stack(self.points)})


def load_trail(run_dir: str | Path) -> tuple[list[int], torch.Tensor] | None:
    """(epochs, (T, P) weights) saved by WeightTrail, or None when the run kept none."""
    path = Path(run_dir) / "trail.pt"
    if not path.exists():
        return None
    state = Run(Path(run_dir)).load_state("trail.pt")
    return list(state["epochs"]), state["weights"]
