"""What the Fork dialog decides and says, Qt-free (tested without a QApplication): which runs
can be forked and at which epochs, the editor's differences from a run as changes, how a value
reads in the changes table, and the line that says what a planned fork will do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.core.store.runs import Run, RunInfo
from workbench.core.tools.fork import ForkPlan, fork_points, spec_changes
from workbench.spec import ExperimentSpec


def with_checkpoints(infos: list[RunInfo]) -> list[tuple[RunInfo, list[int]]]:
    """The runs that kept epoch checkpoints, with those epochs: a folder scan each, so on a
    worker."""
    found = []
    for info in infos:
        epochs = [] if info.error else fork_points(info.path)
        if epochs:
            found.append((info, epochs))
    return found


def editor_changes(run_dir: str, editor: ExperimentSpec) -> dict[str, Any]:
    """Every setting where the `editor`'s experiment differs from the run's (its name aside);
    RunError when the run's spec cannot be read."""
    changes = spec_changes(Run(Path(run_dir)).spec(), editor)
    changes.pop("name", None)
    return changes


def value_text(value: Any) -> str:
    """A value as the table shows it (JSON for numbers, lists and null)."""
    return value if isinstance(value, str) else json.dumps(value)


def plan_text(plan: ForkPlan) -> str:
    """What a planned fork will do, with the plan's notes."""
    what = ", ".join(f"{k} = {value_text(v)}" for k, v in plan.changes.items())
    text = (f"Continues from the end of epoch {plan.epoch} to epoch {plan.spec.train.epochs} "
            "with " + (what if what else "nothing changed (it repeats its parent)") + ".")
    return " ".join([text, *plan.notes])
