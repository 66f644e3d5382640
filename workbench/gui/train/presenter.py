"""What the training panel reads and says, Qt-free (tested without a QApplication): a stored
run as it shows one (its summary and curves, and a fork's parent's curves to branch from), what
resuming a run reads first, what a run shares with the process's other jobs, and how long a
run has taken. The readers run on a worker.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.store.metrics import MetricSeries, read_series
from workbench.core.store.runs import Run, RunError
from workbench.core.tools.fork import branch_of
from workbench.spec import ExperimentSpec


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass(frozen=True)
class StoredRun:
    """A stored run as the panel shows it; `branch` (parent, epoch, step) for a fork, with
    its parent's curves when they can be read (a fork's own curves are whole anyway)."""

    path: Path
    summary: dict[str, Any]
    series: MetricSeries
    branch: tuple[str, int, int] | None = None
    parent_series: MetricSeries | None = None

    def progress_text(self) -> str:
        """`Stored run small-cnn: stopped after 40% into epoch 1` (how far, when the summary
        says it)."""
        name = self.summary.get("name", self.path.name)
        done = self.summary.get("done")
        after = f" after {done}" if isinstance(done, str) and done else ""
        return f"Stored run {name}: {self.summary.get('status', 'unknown')}{after}"


def run_caption(run_dir: str | Path, name: str) -> str:
    """Which run the training view shows: its experiment's name and its folder's short id,
    as the tools' run pickers write it (`small-cnn (eae875)`)."""
    return f"{name} ({Path(run_dir).name[-6:]})"


def read_stored(run_dir: str | Path) -> StoredRun:
    """Read a stored run's summary and curves; RunError or OSError when they cannot be."""
    run = Run(Path(run_dir))
    summary = run.summary()
    series = read_series(run)
    branch = branch_of(summary)
    parent = None
    if branch is not None:
        with contextlib.suppress(RunError, OSError):
            parent = read_series(Run(Path(branch[0])))
    return StoredRun(run.path, summary, series, branch, parent)


def read_resumable(run_dir: str | Path) -> ExperimentSpec:
    """The spec of a run to resume; RunError when the store's one rule refuses it (finished,
    no checkpoint: what `workbench resume` says) or it cannot be read."""
    run = Run(Path(run_dir))
    reason = run.why_not_resumable()
    if reason is not None:
        raise RunError(f"{run.path.name} cannot be resumed: {reason}")
    return run.spec()


def shared_text(process_note: str | None, run_notes: tuple[str, ...] | list[str]) -> str:
    """The line under the training panel's status while jobs share the process: what they
    share now (the process owner's note) and what this run trains with that another job set
    (its RunStarted's notes); "" when it runs alone with what it asked for."""
    parts = []
    if process_note:
        parts.append(f"{process_note[0].upper()}{process_note[1:]}: PyTorch sets these for the "
                     "whole process, so jobs running together share them.")
    parts += [f"This run trains with {note}." for note in run_notes]
    return " ".join(parts)
