"""What the app offers on a stored run, Qt-free: whether it has a trained model, whether it
can be resumed, why an action of the Runs list does not apply to it, the run a tool opens on,
and the line that names it. The Runs list, the window, the run pickers and the tools read them
here (tested without a QApplication, tests/test_presenters.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from workbench.core.store.runs import RunInfo, RunStatus

# Runs whose status can still change: they are training (or about to).
LIVE = frozenset({RunStatus.CREATED, RunStatus.RUNNING})


def has_model(info: RunInfo) -> str | None:
    """Why a tool that needs trained weights cannot take this run (None: it can)."""
    if info.error:
        return "the run folder is damaged"
    status = info.status
    if status in (RunStatus.FINISHED, RunStatus.STOPPED):
        return None
    if status == RunStatus.FAILED:
        return "the run failed: it has no trained model"
    if status in LIVE:
        return "the run is still training"
    return f"the run is {status}: it has no final model (resume it first)"


def can_resume(info: RunInfo) -> bool:
    """Stopped, interrupted or failed, with a checkpoint to continue from."""
    return info.resumable or (info.error is None and info.status == RunStatus.FAILED
                              and (info.path / "checkpoint.pt").is_file())


def why_not(key: str, info: RunInfo | None, needs: str | None = None) -> str | None:
    """Why the Runs list's action `key` does not apply to the run (None: it does). The list's
    own actions are open, resume, folder and delete; a tool's action says what it `needs`:
    "model" (a trained model) or "ended" (a run not training now)."""
    if info is None:
        return "select a run in the list first"
    if key == "folder":
        return None
    if key == "delete":
        return "it is training: stop it first" if info.status in LIVE else None
    if info.error:
        return "the run folder is damaged"
    if key == "open":
        return None
    if key == "resume":
        if info.status == RunStatus.FINISHED:
            return "it finished: nothing to resume"
        if info.status in LIVE:
            return "it is training now"
        return None if can_resume(info) else "it has no checkpoint to continue from"
    if needs == "model":
        return has_model(info)
    if info.status in LIVE:
        return "it is still training"
    return None


def run_for_tool(selected: RunInfo | None, infos: Sequence[RunInfo]) -> RunInfo | None:
    """The run a tool on trained models opens on: the selected one when it has a trained
    model, else the newest that has; None when no run has one."""
    if selected is not None and has_model(selected) is None:
        return selected
    return next((i for i in infos if has_model(i) is None), None)


def run_to_resume(selected: RunInfo | None, infos: Sequence[RunInfo]) -> RunInfo | None:
    """The run Resume continues: the selected one when it can be resumed, else the newest
    that was stopped or interrupted after its first checkpoint; None when there is none."""
    if selected is not None and can_resume(selected):
        return selected
    return next((i for i in infos if i.resumable), None)


def result_text(summary: dict[str, Any]) -> str:
    """A run's result in a few characters: its test accuracy, or its test MSE."""
    if summary.get("test_accuracy") is not None:
        return f"{100 * summary['test_accuracy']:.1f}% test"
    if summary.get("test_mse") is not None:
        return f"MSE {summary['test_mse']:.4g}"
    return ""


def run_title(info: RunInfo) -> str:
    """One line for a run: its name, result and when it was made."""
    s = info.summary
    name = s.get("name", info.name)
    acc = s.get("test_accuracy")
    result = f" · test {acc:.1%}" if isinstance(acc, int | float) else ""
    created = s.get("created")
    when = time.strftime(" · %d %b %H:%M", time.localtime(created)) \
        if isinstance(created, int | float) else ""
    return f"{name}{result}{when} ({info.name[-6:]})"
