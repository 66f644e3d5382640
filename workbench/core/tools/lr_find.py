"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates"; fastai's `lr_find`).

On a fresh copy of the experiment's model, with its data, batches, optimizer, loss and
regularization, the rate rises exponentially from `start_lr` to `end_lr`, one training step at
each value, and the loss is smoothed with a debiased moving average. The test stops once the
smoothed loss passes `diverge_factor` times the best seen (or turns non-finite). Two rates
are suggested: where the smoothed loss falls fastest against log(rate) (the steepest descent),
and a tenth of the rate at its minimum, both read only where the smoothed loss averages enough
batches to be more than their noise (`settled`), and the descent only where the loss has come
down a tenth of its fall. The notes say what the curve shows, true to its numbers. Nothing of
the experiment changes: no run is stored, the data is only read, and it draws only from its
own random streams (the trainer's), so nothing else running in the process sees a number move.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.core.data import Splits
from workbench.core.data.cache import DataSource
from workbench.core.training.step import EagerStep
from workbench.spec import ExperimentSpec

START_LR = 1e-7
END_LR = 10.0
STEPS = 300
BETA = 0.98  # the loss's moving average, as fastai's
DIVERGE_FACTOR = 4.0
SKIP_START = 10  # the first points' smoothed loss is still mostly noise: no divergence there
SLOPE_DECADES = 0.5  # the width of the window the steepest slope is fitted over
FALL_SHARE = 0.1  # a descent begins where the loss is this share of its whole fall down
REPORT_INTERVAL = 0.2  # seconds between progress reports


class LRFindError(ValueError):
    """The test could not say anything (the loss was never finite); the message says why."""


@dataclass(frozen=True)
class LRFindProgress:
    """The points measured since the previous report, for a live plot."""

    step: int
    total: int
    lrs: tuple[float, ...]
    smoothed: tuple[float, ...]


@dataclass(frozen=True)
class LRFindResult:
    """The curve and the suggestions; `stop` is "diverged", "end" or "cancelled"."""

    lrs: list[float]
    losses: list[float]  # each step's batch loss, before the update at that rate
    smoothed: list[float]
    steepest_lr: float | None
    minimum_lr: float  # the rate at the smoothed loss's minimum, once it can be read
    stop: str
    task: str  # "classification" | "regression"
    seconds: float
    notes: list[str] = field(default_factory=list)
    start: float | None = None  # the smoothed loss where it can first be read (`settled`)

    @property
    def start_loss(self) -> float:
        """Where the loss started: the first smoothed point that averages enough batches."""
        return self.smoothed[0] if self.start is None else self.start

    @property
    def min_over_10(self) -> float:
        return self.minimum_lr / 10

    @property
    def suggested_lr(self) -> float:
        """The steepest descent when it lies at or below the minimum, else the minimum / 10."""
        steep = self.steepest_lr
        return steep if steep is not None and steep <= self.minimum_lr else self.min_over_10

    @property
    def best_loss(self) -> float:
        """The smoothed loss at `minimum_lr`."""
        return self.smoothed[self.lrs.index(self.minimum_lr)]

    def summary(self, points: int = 25) -> dict[str, Any]:
        """What the command prints as JSON: the suggestions and a thinned curve."""
        idx = np.unique(np.linspace(0, len(self.lrs) - 1, min(points, len(self.lrs)))
                        .round().astype(int))
        return {
            "suggested_lr": self.suggested_lr, "steepest_lr": self.steepest_lr,
            "minimum_lr": self.minimum_lr, "min_over_10": self.min_over_10,
            "best_loss": self.best_loss, "start_loss": self.start_loss,
            "steps": len(self.lrs), "stop": self.stop, "task": self.task,
            "lr_range": [self.lrs[0], self.lrs[-1]], "seconds": round(self.seconds, 3),
            "curve": [[self.lrs[i], _finite_or_none(self.smoothed[i])] for i in idx],
            "notes": list(self.notes),
        }


def lr_find(spec: ExperimentSpec, *, data: Splits | None = None,
            source: DataSource | None = None, start_lr: float = START_LR,
            end_lr: float = END_LR, steps: int = STEPS, beta: float = BETA,
            diverge_factor: float = DIVERGE_FACTOR, threads: int | None = None,
            cancel: threading.Event | None = None,
            progress: Callable[[LRFindProgress], None] | None = None) -> LRFindResult:
    """Run the range test for `spec` on `data`, else on the data `source` (the workspace's
    cache) hands out, else read here; see the module."""
    check_range(start_lr, end_lr, steps)
    from workbench.core.training.loop import Trainer

    began = time.perf_counter()
    trainer = Trainer(spec, data=data, source=source, store=False, threads=threads)
    try:
        trainer.prepare()
        return _sweep(trainer, start_lr, end_lr, steps, beta, diverge_factor, cancel, progress,
                      began)
    finally:
        trainer.close()  # the thread count (and CUDA switches) it shared, given back


def check_range(start_lr: float, end_lr: float, steps: int) -> None:
    """One-line errors for a range that cannot be swept."""
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise LRFindError(f"{name}: must be a positive number, got {value!r}")
    if end_lr <= start_lr:
        raise LRFindError(f"end_lr: must be above start_lr ({start_lr:g}), got {end_lr:g}")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 10 <= steps <= 100_000:
        raise LRFindError(f"steps: must be an integer from 10 to 100000, got {steps!r}")


def _sweep(trainer: Any, start_lr: float, end_lr: float, steps: int, beta: float,
           diverge_factor: float, cancel: threading.Event | None,
           progress: Callable[[LRFindProgress], None] | None, began: float) -> LRFindResult:
    spec = trainer.spec
    step = EagerStep(trainer.model, trainer.optimizer, trainer.loss_fn, spec,
                     trainer.num_classes, trainer.device)
    batches, gen, bs = trainer.train_batches, trainer.gen, trainer.batch_size
    n = batches.num_samples
    per_epoch = len(batches)
    ratio = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, stop = 0.0, math.inf, "end"
    sent, last_report = 0, time.perf_counter()
    perm = torch.empty(0)
    trainer.model.train()
    for i in range(steps):
        if cancel is not None and cancel.is_set():
            stop = "cancelled"
            break
        if i % per_epoch == 0:
            perm = torch.randperm(n, generator=gen, device=batches.device)
        k = i % per_epoch
        xb, yb = batches.batch(perm[k * bs:(k + 1) * bs])
        lr = start_lr * ratio**i
        step(xb, yb, lr)
        loss_sum, _correct, count = step.take()
        loss = loss_sum / max(1, count)
        lrs.append(lr)
        losses.append(loss)
        if not math.isfinite(loss):
            smoothed.append(math.inf)
            stop = "diverged"
            break
        avg = beta * avg + (1 - beta) * loss
        smooth = avg / (1 - beta ** (i + 1))
        smoothed.append(smooth)
        best = min(best, smooth)
        now = time.perf_counter()
        if progress is not None and (now - last_report >= REPORT_INTERVAL or i == steps - 1):
            progress(LRFindProgress(i + 1, steps, tuple(lrs[sent:]), tuple(smoothed[sent:])))
            sent, last_report = len(lrs), now
        if smooth > diverge_factor * best and i >= SKIP_START:
            stop = "diverged"
            break
    if progress is not None and sent < len(lrs):
        progress(LRFindProgress(len(lrs), steps, tuple(lrs[sent:]), tuple(smoothed[sent:])))
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if not finite:
        raise LRFindError("the loss was not finite even at the smallest rate "
                          f"({start_lr:g}); check the data and the network")
    warm = settled(len(lrs), beta)
    reading = [i for i in finite if i >= warm] or finite
    low = min(reading, key=lambda i: smoothed[i])
    start = smoothed[reading[0]]
    # a descent counts where the loss lies a tenth of its whole fall below where it started
    below = start - FALL_SHARE * (start - smoothed[low])
    steep = (steepest(lrs[reading[0]:low + 1], smoothed[reading[0]:low + 1], below=below)
             if smoothed[low] < start else None)
    result = LRFindResult(
        lrs=lrs, losses=losses, smoothed=smoothed, steepest_lr=steep, minimum_lr=lrs[low],
        stop=stop, task="classification" if trainer.num_classes > 0 else "regression",
        seconds=time.perf_counter() - began, start=start)
    result.notes.extend(what_it_shows(result, end_lr, diverge_factor))
    return result


def settled(points: int, beta: float = BETA) -> int:
    """The first point whose smoothed loss averages enough batches to be read: about
    1 / (1 - beta) of them (50 at fastai's 0.98), at most a quarter of the curve. Before it
    the debiased average holds a handful of batches, and its falls and rises are their noise
    (a regression suggested 1.7e-07 from them)."""
    return max(2, min(round(1 / (1 - beta)), points // 4))


def what_it_shows(result: LRFindResult, end_lr: float, diverge_factor: float) -> list[str]:
    """Notes that say what the curve shows, true to its numbers."""
    notes = []
    best, end, start = result.best_loss, result.smoothed[-1], result.start_loss
    if result.stop == "end":
        if end <= best * 1.05:
            notes.append(f"the loss was still falling at {end_lr:g}; a larger end rate shows "
                         "more")
        else:
            above = f", above where it started ({start:.3g})" if end > start else ""
            notes.append(f"the loss rose from its minimum {best:.3g} (at {result.minimum_lr:.2g})"
                         f" to {end:.3g} at {end_lr:g}{above}, but never past "
                         f"{diverge_factor:g}× its minimum, where the test stops")
    if best >= start:
        notes.append("the loss did not fall anywhere in the range; no rate here helps: check "
                     "the data and the network, or try a wider range")
    elif result.steepest_lr is None:
        notes.append("the loss fell nowhere steadily enough to name its steepest descent; "
                     "the suggestion is the minimum / 10")
    return notes


def steepest(lrs: Sequence[float], smoothed: Sequence[float], *,
             below: float | None = None) -> float | None:
    """The rate where the smoothed loss falls fastest against log10(rate), among the points up
    to the minimum (and, with `below`, only where the loss has come down under it); None
    when there are too few points or the loss never falls.

    The slope is fitted over `SLOPE_DECADES` around each point: differences of neighbours
    would be ruled by noise at small rates, where the points are close and the loss is flat.
    """
    x = np.log10(np.asarray(lrs, dtype=float))
    y = np.asarray(smoothed, dtype=float)
    if len(x) < 5 or x[-1] - x[0] < SLOPE_DECADES:
        return None
    half = max(2, int(round(SLOPE_DECADES / 2 / ((x[-1] - x[0]) / (len(x) - 1)))))
    best, best_slope = None, -1e-9 * max(1.0, float(np.abs(y).max()))  # rounding is no fall
    for i in range(half, len(x) - half):
        if below is not None and y[i] > below:
            continue
        xs, ys = x[i - half:i + half + 1], y[i - half:i + half + 1]
        slope = float(np.polyfit(xs, ys, 1)[0])
        if slope < best_slope:
            best, best_slope = i, slope
    return None if best is None else float(10 ** x[best])


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = ["LRFindError", "LRFindProgress", "LRFindResult", "check_range", "lr_find",
           "settled", "steepest", "what_it_shows"]
