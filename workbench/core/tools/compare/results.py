"""Curves and results: what each variant has done (step and epoch series, its state) and the
results table computed from them, live from events or from a stored run's metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.store.metrics import MetricSeries, read_series
from workbench.core.store.runs import Run, RunError
from workbench.core.tools.compare.callbacks import FairStart
from workbench.core.tools.compare.variants import Comparison
from workbench.core.training.callbacks import NAN_HINT
from workbench.core.training.events import EpochEnded, Progress, RunFailed, RunFinished, RunStarted

# A run whose final training loss is this many times its starting loss counts as diverged,
# even when it stayed finite (the NaN guard marks the non-finite ones).
DIVERGED_FACTOR = 10.0


def diverged(reason: str | None, hint: str | None) -> bool:
    """Whether a failure (its reason and hint) is the network diverging."""
    return hint == NAN_HINT or "non-finite" in (reason or "")


def is_divergence(event: RunFailed) -> bool:
    return diverged(event.reason, event.hint)


@dataclass
class Curves(MetricSeries):
    """What one variant has done so far: its step and epoch series (`MetricSeries`, the same
    reader a stored run's metrics go through), and its state."""

    status: str = "pending"  # pending, running, finished, stopped, diverged, failed
    run_dir: str | None = None
    seconds: float | None = None
    reason: str | None = None
    first_batch_loss: float | None = None

    def add(self, event: Any) -> None:
        if isinstance(event, FairStart):
            self.first_batch_loss = event.first_batch_loss
        elif isinstance(event, RunStarted):
            self.status = "running"
            self.run_dir = event.run_dir or None
        elif isinstance(event, Progress):
            self.add_step(vars(event))
        elif isinstance(event, EpochEnded):
            self.add_epoch(vars(event))
        elif isinstance(event, RunFinished):
            self.status = "stopped" if event.stopped else "finished"
            self.seconds = event.seconds
            self.run_dir = event.run_dir or self.run_dir
        elif isinstance(event, RunFailed):
            self.status = "diverged" if is_divergence(event) else "failed"
            self.reason = event.reason
            self.run_dir = event.run_dir or self.run_dir
            if self.seconds is None:
                elapsed = self.steps["elapsed"] or self.epochs["elapsed"]
                self.seconds = elapsed[-1] if elapsed else 0.0

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Curves:
        """Rebuild the curves of a stored run from its metrics and summary."""
        run = Run(Path(run_dir))
        series = read_series(run)
        curves = cls(steps=series.steps, epochs=series.epochs, run_dir=str(run.path))
        try:
            summary = run.summary()
        except RunError:
            summary = {}
        status = summary.get("status", "finished")
        if status == "failed":
            curves.status = "diverged" if diverged(summary.get("error"), summary.get("hint")) \
                else "failed"
            curves.reason = summary.get("error")
        else:
            curves.status = status if status in ("finished", "stopped") else "stopped"
        seconds = summary.get("seconds")
        if seconds is None and curves.epochs["elapsed"]:
            seconds = curves.epochs["elapsed"][-1]
        curves.seconds = seconds
        curves.first_batch_loss = summary.get("first_batch_loss")
        return curves


@dataclass(frozen=True)
class ResultRow:
    label: str
    status: str
    best_val_accuracy: float | None
    final_val_accuracy: float | None
    final_train_loss: float | None
    final_val_loss: float | None
    epochs_to_target: int | None
    seconds_to_target: float | None
    seconds_per_epoch: float | None
    seconds: float | None
    diverged: bool
    first_batch_loss: float | None
    run_dir: str | None
    lr: float | None = None  # the rate the variant trained at (its own, or the experiment's)
    reason: str | None = None  # why it failed, when it did

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def result_row(label: str, curves: Curves, target: float, lr: float | None = None
               ) -> ResultRow:
    """One line of the results table, computed from the curves (and the variant's rate)."""
    e = curves.epochs
    val_acc = e["val_accuracy"]
    finite_acc = _finite(val_acc)
    epochs_to = seconds_to = None
    for i, acc in enumerate(val_acc):
        if not math.isnan(acc) and acc >= target:
            epochs_to, seconds_to = int(e["epoch"][i]), e["elapsed"][i]
            break
    train_loss = e["train_loss"][-1] if e["train_loss"] else (
        curves.steps["train_loss"][-1] if curves.steps["train_loss"] else None)
    per_epoch = e["epoch_seconds"]
    start = curves.first_batch_loss
    blew_up = (train_loss is not None and start is not None and start > 0
               and (math.isnan(train_loss) or train_loss > DIVERGED_FACTOR * start))
    return ResultRow(
        label=label, status=curves.status, lr=lr,
        best_val_accuracy=max(finite_acc) if finite_acc else None,
        final_val_accuracy=finite_acc[-1] if finite_acc else None,
        final_train_loss=train_loss, final_val_loss=e["val_loss"][-1] if e["val_loss"] else None,
        epochs_to_target=epochs_to, seconds_to_target=seconds_to,
        seconds_per_epoch=sum(per_epoch) / len(per_epoch) if per_epoch else None,
        seconds=curves.seconds, diverged=curves.status == "diverged" or blew_up,
        first_batch_loss=curves.first_batch_loss, run_dir=curves.run_dir,
        reason=curves.reason if curves.status in ("failed", "diverged") else None)


def results(comparison: Comparison, curves: Sequence[Curves]) -> list[ResultRow]:
    return [result_row(v.label, c, comparison.target_accuracy, v.spec.optim.lr)
            for v, c in zip(comparison.variants, curves, strict=True)]


def duration_text(seconds: float | None) -> str:
    """A duration as the results show it, never rounded to nothing: 0.41 ms, 35 ms, 1.24 s,
    75.3 s ("-" when unknown). An epoch of a small set takes milliseconds."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1:
        ms = 1000 * seconds
        return f"{ms:.2g} ms" if ms < 10 else f"{ms:.0f} ms"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def failures_text(rows: Sequence[ResultRow]) -> str:
    """The variants that failed and why, one clause each ("" when none did)."""
    return "; ".join(f"{r.label} {r.status}: {r.reason or 'no reason given'}"
                     for r in rows if r.status in ("failed", "diverged"))


def curves_for(comparison: Comparison) -> list[Curves]:
    """Curves of every variant: from its stored run when it has one, else empty (pending)."""
    out = []
    for variant in comparison.variants:
        if variant.run_dir and Path(variant.run_dir).is_dir():
            out.append(Curves.from_run(variant.run_dir))
        else:
            out.append(Curves())
    return out
