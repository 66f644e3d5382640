"""A run's metrics as curves: the one reader of `metrics.jsonl` (and of live events) into series.

A step point is a `Progress` (its `metrics.jsonl` record is the same fields), an epoch point
an `EpochEnded` or its record. Each series is a list of floats, NaN where a value is missing
(no validation split, no accuracy for a regression), so every series of a table has the same
length. The step series' `epoch` is fractional (epoch + step / steps_per_epoch), so step
curves can be drawn against epoch, step or time alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.core.store.runs import Run

STEP_KEYS = ("global_step", "epoch", "elapsed", "train_loss", "train_accuracy", "lr",
             "samples_per_sec")
EPOCH_KEYS = ("epoch", "global_step", "elapsed", "train_loss", "train_accuracy", "val_loss",
              "val_accuracy", "lr", "epoch_seconds")


def number(value: Any) -> float:
    """A metric as a float; a missing one as NaN."""
    return math.nan if value is None else float(value)


@dataclass
class MetricSeries:
    """Step-level and epoch-level series of one run, by key."""

    steps: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STEP_KEYS})
    epochs: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in EPOCH_KEYS})

    def add_step(self, point: Mapping[str, Any]) -> None:
        """One `Progress` (as a mapping) or one `step` record."""
        per_epoch = max(1, int(point.get("steps_per_epoch") or 1))
        values = {**point, "epoch": point.get("epoch", 0) + point.get("step", 0) / per_epoch}
        for key in STEP_KEYS:
            self.steps[key].append(number(values.get(key)))

    def add_epoch(self, point: Mapping[str, Any]) -> None:
        """One `EpochEnded` (as a mapping) or one `epoch` record."""
        for key in EPOCH_KEYS:
            self.epochs[key].append(number(point.get(key)))

    def points(self, table: str, x: str, y: str) -> tuple[list[float], list[float]]:
        """(xs, ys) of one curve, the points where both are finite."""
        series = self.steps if table == "steps" else self.epochs
        pairs = [(a, b) for a, b in zip(series[x], series[y], strict=True)
                 if math.isfinite(a) and math.isfinite(b)]
        return [a for a, _ in pairs], [b for _, b in pairs]


def read_series(run: Run) -> MetricSeries:
    """The stored run's metrics as series (a torn last line after a crash is skipped)."""
    series = MetricSeries()
    for record in run.metrics():
        kind = record.get("kind")
        if kind == "step":
            series.add_step(record)
        elif kind == "epoch":
            series.add_epoch(record)
    return series


__all__ = ["EPOCH_KEYS", "STEP_KEYS", "MetricSeries", "number", "read_series"]
