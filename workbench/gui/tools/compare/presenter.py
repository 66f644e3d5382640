"""What the Compare panel decides, Qt-free (tested without a QApplication): the variants its
controls describe, the labels they get, a result row's cells, the points each curve gains, the
branch a fork is drawn from, which runs share a landscape, what the status line says when a
comparison ends, and reading stored runs and saved comparisons (on the panel's workers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.store.runs import Run, RunError
from workbench.core.tools.compare import (
    Comparison,
    Curves,
    ResultRow,
    Variant,
    curves_for,
    duration_text,
    failures_text,
    grid,
    load_comparison,
    parse_value,
    unique_label,
)
from workbench.core.tools.fork import branch_of
from workbench.spec import ExperimentSpec, SpecError

NOTHING = "(nothing)"  # the "Also vary" box when no field is varied
X_AXES = {"epoch": ("epoch", "epoch"), "step": ("global_step", "step"),
          "time": ("elapsed", "seconds")}
# each plot is named by its y axis (no title above it: two columns fit a narrow panel), in
# words short enough for the axis of a chart a third of a laptop screen high
PLOT_UNITS = {"train_loss": "train loss (log)", "val_loss": "val loss (log)",
              "train_accuracy": "train accuracy", "val_accuracy": "val accuracy",
              "lr": "learning rate"}
PLOTS = (("train_loss", "Training loss"), ("val_loss", "Validation loss"),
         ("train_accuracy", "Training accuracy"), ("val_accuracy", "Validation accuracy"),
         ("lr", "Learning rate"))
COLUMNS = ("variant", "status", "learning rate", "best val acc", "final val acc",
           "final train loss", "final val loss", "epochs to target", "time to target",
           "time / epoch", "time", "diverged")
TARGET_COLUMNS = (7, 8)  # named after the target accuracy
STATUS_COLUMN = 1


def build_variants(spec: ExperimentSpec, optimizers: dict[str, float | None], field: str,
                   values: str) -> list[Variant]:
    """The variants of `spec` the controls describe: each ticked optimizer at the rate the
    person gave it (None: the experiment's), crossed with `field`'s comma-separated `values`;
    nothing else of the experiment changes. SpecError naming the field when they are bad (no
    values, nothing varied, a value the field refuses)."""
    axes: dict[str, list[Any]] = {}
    overrides: dict[str, dict[str, Any]] = {}
    if optimizers:
        axes["optim.name"] = list(optimizers)
        overrides = {name: {"optim.lr": lr} for name, lr in optimizers.items()
                     if lr is not None}
    field = field.strip()
    if field and field != NOTHING:
        parsed = [parse_value(v) for v in values.split(",") if v.strip()]
        if not parsed:
            raise SpecError(field, "give the values to try, separated by commas")
        axes[field] = parsed
    if not axes:
        raise SpecError("vary", "tick at least one optimizer or choose a field to vary")
    return grid(spec, axes, overrides)


def label_apart(variants: Sequence[Variant], taken: Sequence[str]) -> None:
    """Give each new variant a label no other has (the core's rule: `sgd #2`), in place."""
    labels = list(taken)
    for variant in variants:
        variant.label = unique_label(variant.label, labels)
        labels.append(variant.label)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def num(v: float | None, fmt: str) -> str:
    return "-" if v is None or not math.isfinite(v) else format(v, fmt)


def row_cells(row: ResultRow) -> list[tuple[float | None, str] | str]:
    """A result row as the table shows it: text for a text cell, (value, text) for a number
    (sorted by its value)."""
    return [row.label, row.status, (row.lr, num(row.lr, "g")),
            (row.best_val_accuracy, pct(row.best_val_accuracy)),
            (row.final_val_accuracy, pct(row.final_val_accuracy)),
            (row.final_train_loss, num(row.final_train_loss, ".4f")),
            (row.final_val_loss, num(row.final_val_loss, ".4f")),
            (row.epochs_to_target,
             "-" if row.epochs_to_target is None else str(row.epochs_to_target)),
            (row.seconds_to_target, duration_text(row.seconds_to_target)),
            (row.seconds_per_epoch, duration_text(row.seconds_per_epoch)),
            (row.seconds, duration_text(row.seconds)),
            "yes" if row.diverged else "no"]


def target_headers(target_accuracy: float) -> tuple[str, str]:
    target = f"{100 * target_accuracy:g}%"
    return f"epochs to {target}", f"time to {target}"


def drawable(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.isfinite(x) & np.isfinite(y)


def drawable_log(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """On a log axis: finite and positive."""
    return drawable(x, y) & (y > 0)


def new_points(series: dict[str, list[float]], key: str, xkey: str, fed: int,
               first_step: int | None) -> tuple[list[float], list[float]]:
    """The points of `series[key]` after the first `fed`, against `xkey`; a fork's
    (`first_step` given) only from the step it branches off at."""
    ys = series[key]
    xs, new = list(series[xkey][fed:len(ys)]), list(ys[fed:])
    if first_step is not None:
        steps = series["global_step"][fed:len(ys)]
        keep = [i for i, s in enumerate(steps) if s >= first_step]
        xs, new = [xs[i] for i in keep], [new[i] for i in keep]
    return xs, new


def fork_of(run_dir: str | None) -> tuple[str, int, int] | None:
    """(parent, epoch, global step) when `run_dir` is a fork; None for anything else."""
    if not run_dir:
        return None
    try:
        return branch_of(Run(Path(run_dir)).summary())
    except RunError:
        return None


def with_parents(run_dirs: list[str], present: Sequence[str | None]) -> list[str]:
    """The runs to add, each fork preceded by its parent (when it is not there yet), so the
    fork is drawn as a branch of its parent's curves."""
    out: list[str] = []
    for run_dir in run_dirs:
        branch = fork_of(run_dir)
        parent = branch[0] if branch is not None else None
        if parent and parent not in present and parent not in out and Path(parent).is_dir():
            out.append(parent)
        if run_dir not in out:
            out.append(run_dir)
    return out


Branch = tuple[str, int, int] | None  # fork_of's answer


def read_runs(run_dirs: list[str], present: Sequence[str | None]
              ) -> tuple[list[tuple[str, ExperimentSpec, Curves, Branch]], list[str]]:
    """Each run's spec, stored curves and the branch it forks off (a fork's parent first),
    and what could not be read: on a worker, since a long run's metrics are megabytes."""
    loaded, problems = [], []
    for run_dir in with_parents(run_dirs, present):
        try:
            loaded.append((run_dir, Run(Path(run_dir)).spec(), Curves.from_run(run_dir),
                           fork_of(run_dir)))
        except RunError as exc:
            problems.append(str(exc))
    return loaded, problems


def read_comparison(path: str | Path
                    ) -> tuple[Comparison, list[Curves], dict[str | None, Branch]]:
    """A saved comparison, its runs' stored curves and the branches its forks start from
    (on a worker); SpecError when bad."""
    comparison = load_comparison(path)
    branches = {v.run_dir: fork_of(v.run_dir) for v in comparison.variants if v.run_dir}
    return comparison, curves_for(comparison), branches


def landscape_runs(variants: Sequence[Variant], center: Variant) -> dict[str, str]:
    """Label -> run of the variants whose paths the landscape around `center` can draw: those
    with a run and the same layers (the same weight space)."""
    return {v.label: v.run_dir for v in variants
            if v.run_dir and v.spec.model.layers == center.spec.model.layers}


def progress_text(curves: Sequence[Curves], label: str, index: int) -> str:
    done = sum(c.status not in ("pending", "running") for c in curves)
    curve = curves[index]
    why = f" ({curve.reason})" if curve.status in ("failed", "diverged") and curve.reason else ""
    return f"{done} of {len(curves)} variants done; {label}: {curve.status}{why}"


def ended_text(rows: Sequence[ResultRow], error: str | None, saved: str | None,
               save_error: str | None = None) -> str:
    """What the status line says once a comparison has ended: how many finished, which
    failed and why, an error that stopped the whole comparison, and where it was saved."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in counts.items())
    failed = failures_text(rows)
    head = (f"The comparison stopped on an error: {error}." if error else
            "Done with failures" if failed else "Done")
    text = f"{head} ({tally})" if tally else head
    if failed:
        text += f". {failed}"
    if saved:
        text += f". Saved as {saved}."
    elif save_error:
        text += f". Could not save it: {save_error}"
    return text


def rate_note(lr: float) -> str:
    """What the optimizers' rates mean, above them."""
    return (f"Each optimizer trains at the experiment's rate ({lr:g}) unless you give it "
            "its own here; nothing else of the experiment changes.")


def opened_text(name: str, comparison: Comparison) -> str:
    pending = comparison.pending()
    return (f"Opened {name}: {len(comparison.variants)} variants"
            + (f", {len(pending)} not run yet" if pending else ""))
