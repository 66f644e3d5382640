"""A run's results as PNG pictures for its report: the curves, the confusion matrix or the
regression plots, and the compression frontier. Drawn from what the run stored (its metrics,
its summary, its compression record), as `render.py` draws Inspect's views."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.core.store.metrics import MetricSeries
from workbench.core.tools.inspect.render import (
    MAX_TICK_LABELS,
    colorbar,
    new_figure,
    plain_text,
    png_of,
    ticks,
)

MAX_ANNOTATED_CLASSES = 20  # a confusion matrix up to this size has its counts written in


def curves(series: MetricSeries) -> bytes | None:
    """Loss, accuracy (classification) and learning rate against epoch; None with no points."""
    panels: list[tuple[str, list[tuple[str, str, str, str]]]] = [
        ("loss", [("steps", "train_loss", "train (steps)", "#95a5a6"),
                  ("epochs", "train_loss", "train (epochs)", "#2c7bb6"),
                  ("epochs", "val_loss", "validation", "#e67e22")]),
        ("accuracy", [("epochs", "train_accuracy", "train", "#2c7bb6"),
                      ("epochs", "val_accuracy", "validation", "#e67e22")]),
        ("learning rate", [("epochs", "lr", "learning rate", "#27ae60")]),
    ]
    drawn = []
    for title, lines in panels:
        found = [(series.points(table, "epoch", key), label, colour)
                 for table, key, label, colour in lines]
        if any(xs for (xs, _), _, _ in found):
            drawn.append((title, found))
    if not drawn:
        return None
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(4.2 * len(drawn), 3.4)
    axes = fig.subplots(1, len(drawn), squeeze=False)[0]
    for ax, (title, found) in zip(axes, drawn, strict=True):
        for (xs, ys), label, colour in found:
            if not xs:
                continue
            marker = "o" if len(xs) <= 30 and "steps" not in label else None
            ax.plot(xs, ys, label=label, color=colour, marker=marker, markersize=3,
                    linewidth=0.8 if "steps" in label else 1.5)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        if title == "loss" and all(y > 0 for (_, ys), _, _ in found for y in ys):
            ax.set_yscale("log")
        if len([1 for (xs, _), _, _ in found if xs]) > 1:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return png_of(fig)


def confusion(counts: Sequence[Sequence[int]], class_names: Sequence[str]) -> bytes:
    """The test confusion matrix: true classes down, predicted across, counts in the cells."""
    matrix = np.asarray(counts, dtype=np.int64)
    k = len(matrix)
    names = [str(n) for n in class_names[:k]] + [str(i) for i in range(len(class_names), k)]
    side = min(11.0, 3.5 + 0.45 * min(k, MAX_TICK_LABELS))
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0, interpolation="nearest")
    colorbar(fig, image, ax, "test samples")
    if k <= MAX_ANNOTATED_CLASSES:
        top = max(1, int(matrix.max()))
        for (r, c), v in np.ndenumerate(matrix):
            ax.text(c, r, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > 0.6 * top else "black")
    ticks(ax, "x", names, rotate=k * max((len(n) for n in names), default=0) > 60)
    ticks(ax, "y", names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    right = int(np.trace(matrix))
    total = int(matrix.sum())
    ax.set_title(f"Test confusion matrix: {right:,} of {total:,} right "
                 f"({right / max(1, total):.1%})")
    return png_of(fig)


def regression(entry: dict[str, Any], target: str = "y") -> bytes | None:
    """Predicted against true (the diagonal is a perfect answer) and the residuals (predicted
    minus true) against true, from a summary's `regression` entry; None without points."""
    pairs = [(t, p) for t, p in zip(entry.get("true") or [], entry.get("predicted") or [],
                                    strict=False)
             if isinstance(t, int | float) and isinstance(p, int | float)
             and math.isfinite(t) and math.isfinite(p)]
    if not pairs:
        return None
    truth = np.array([t for t, _ in pairs])
    predicted = np.array([p for _, p in pairs])
    fig = new_figure(10, 4.2)
    left, right = fig.subplots(1, 2)
    lo, hi = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    left.scatter(truth, predicted, s=12, alpha=0.7, color="#2c7bb6")
    left.plot([lo, hi], [lo, hi], color="black", linewidth=1, linestyle="--",
              label="predicted = true")
    left.set_xlabel(plain_text(f"true {target}"))
    left.set_ylabel(plain_text(f"predicted {target}"))
    left.legend(fontsize=8)
    left.set_title("predicted against true")
    residual = predicted - truth
    right.scatter(truth, residual, s=12, alpha=0.7, color="#c0392b")
    right.axhline(0, color="black", linewidth=1, linestyle="--")
    right.set_xlabel(plain_text(f"true {target}"))
    right.set_ylabel("residual (predicted - true)")
    right.set_title("residuals")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    figures = []
    for key, label in (("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²")):
        value = entry.get(key)
        if isinstance(value, int | float):
            figures.append(f"{label} {value:.4g}")
    shown = len(pairs)
    of = entry.get("points_of")
    count = f"{shown:,} test samples" + (f" of {of:,}" if isinstance(of, int) and of > shown
                                         else "")
    fig.suptitle(f"Regression on the test split ({count}): " + ", ".join(figures))
    return png_of(fig)


def frontier(variants: Sequence[Any], front: Sequence[Any]) -> bytes | None:
    """Test accuracy (or minus the loss) against file size of every measured variant, the
    Pareto front joined by a line; `variants` are `core.tools.compress.Variant`s."""
    usable = [v for v in variants if v.refused is None and math.isfinite(v.quality)]
    if not usable:
        return None
    accuracy = all(v.measured.test_accuracy is not None for v in usable)
    fig = new_figure(8, 4.6)
    ax = fig.add_subplot()
    for v in usable:
        y = v.measured.test_accuracy * 100 if accuracy else v.measured.test_loss
        ax.scatter(v.measured.bytes / 1e3, y, color="#95a5a6" if v not in front else "#c0392b",
                   s=24, zorder=3)
        ax.annotate(plain_text(v.label), (v.measured.bytes / 1e3, y), xytext=(4, 3),
                    textcoords="offset points", fontsize=7)
    if front:
        xs = [v.measured.bytes / 1e3 for v in front]
        ys = [v.measured.test_accuracy * 100 if accuracy else v.measured.test_loss
              for v in front]
        ax.plot(xs, ys, color="#c0392b", linewidth=1, label="Pareto front")
        ax.legend(fontsize=8)
    sizes = [v.measured.bytes for v in usable]
    wide = max(sizes) > 10 * max(1, min(sizes))  # a log scale only when it spans a decade
    if wide:
        ax.set_xscale("log")
    ax.set_xlabel("file size (kB, log scale)" if wide else "file size (kB)")
    ax.set_ylabel("test accuracy (%)" if accuracy else "test loss")
    ax.grid(alpha=0.3, which="both")
    ax.set_title("Compressed variants: accuracy against size")
    return png_of(fig)


__all__ = ["confusion", "curves", "frontier", "regression"]
