"""A regression's results (its errors and the points of its plots), and what a run's summary
gains at its end: those results, and a linear model's equation in the data's own units.

The trainer calls `summary_entries` once, when a run ends, so that `summary.json`, the
command line's result and the app's Results read the same figures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.core.data import DeviceBatches, Splits
from workbench.core.tools.inspect.equation import linear_equation
from workbench.core.tools.inspect.network import target_name
from workbench.spec import LayerSpec

log = logging.getLogger(__name__)

MAX_POINTS = 2_000  # (true, predicted) pairs kept for the plots; evenly thinned beyond


def regression_results(predicted: np.ndarray, truth: np.ndarray, *,
                       max_points: int = MAX_POINTS) -> dict[str, Any]:
    """Test errors in the target's own units and the points of the plots of predicted against
    true and of the residuals (predicted - true): `true` and `predicted` lists, the whole
    split or `max_points` of it evenly spaced in test order (`points_of` says how many)."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1)
    n = len(truth)
    error = predicted - truth
    mse = float(np.mean(error**2)) if n else math.nan
    spread = float(np.sum((truth - truth.mean()) ** 2)) if n else 0.0
    keep = (np.arange(n) if n <= max_points
            else np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64)))
    return {
        "n": n,
        "mse": _finite(mse),
        "rmse": _finite(math.sqrt(mse) if n else math.nan),
        "mae": _finite(float(np.mean(np.abs(error))) if n else math.nan),
        # R² = 1 - SS_res / SS_tot; undefined when every true value is the same
        "r2": _finite(1.0 - float(np.sum(error**2)) / spread) if spread > 0 else None,
        "points_of": n,
        "true": [_finite(float(v)) for v in truth[keep]],
        "predicted": [_finite(float(v)) for v in predicted[keep]],
    }


def _finite(value: float) -> float | None:
    """A figure for JSON: None where it is not a finite number (JSON has no NaN)."""
    return value if math.isfinite(value) else None


@torch.no_grad()
def _predicted(model: nn.Module, batches: DeviceBatches) -> np.ndarray:
    was_training = model.training
    model.eval()
    try:
        n = batches.num_samples
        outs = [model(batches.batch(torch.arange(s, min(n, s + 1024),
                                                 device=batches.device))[0]).float()
                for s in range(0, n, 1024)]
    finally:
        model.train(was_training)
    return torch.cat(outs)[:, 0].cpu().double().numpy() if outs else np.zeros(0)


def summary_entries(model: nn.Module, layers: Sequence[LayerSpec], splits: Splits,
                    test: DeviceBatches) -> dict[str, Any]:
    """What a run's summary gains at its end: `regression` (the test errors and the plots'
    points) for a regression, `equation` for a network with no hidden layer. A failure here
    is logged with its traceback and leaves the summary as it was: the run has trained."""
    entries: dict[str, Any] = {}
    try:
        if splits.info.num_classes == 0 and test.num_samples:
            truth = test.y.reshape(-1).double().cpu().numpy()
            entries["regression"] = {"target": target_name(splits.info),
                                     **regression_results(_predicted(model, test), truth)}
        if isinstance(model, nn.Sequential):
            equation = linear_equation(model, layers, splits)
            if equation is not None:
                entries["equation"] = equation.to_summary()
    except Exception:  # noqa: BLE001 - a figure that cannot be made must not fail the run
        log.exception("could not add the regression results or the equation to the summary")
    return entries


__all__ = ["MAX_POINTS", "regression_results", "summary_entries"]
