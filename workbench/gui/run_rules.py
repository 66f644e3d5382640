"""What the app offers on a stored run, Qt-free: whether it has a trained model, whether it
can be resumed, why an action of the Runs list does not apply to it, the run a tool opens on,
and the label that names it among the others (the Runs list's and every picker's). The Runs
list, the window, the run pickers and the tools read them here (tested without a
QApplication, tests/test_presenters.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.core.store.runs import LIVE, RunInfo, RunStatus

__all__ = ["LIVE", "has_model", "result_text", "run_for_tool", "run_labels", "run_titles",
           "run_to_resume", "why_not"]


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
    if key == "resume":  # the store's one rule, as `workbench resume` and `runs` have it
        return info.why_not_resumable
    if info.error:
        return "the run folder is damaged"
    if key == "open":
        return None
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
    that can (stopped, interrupted or failed after its first checkpoint); None when there is
    none."""
    if selected is not None and selected.resumable:
        return selected
    return next((i for i in infos if i.resumable), None)


def result_text(summary: dict[str, Any]) -> str:
    """A run's result in a few characters: its test accuracy, or its test MSE."""
    if summary.get("test_accuracy") is not None:
        return f"{100 * summary['test_accuracy']:.1f}% test"
    if summary.get("test_mse") is not None:
        return f"MSE {summary['test_mse']:.4g}"
    return ""


def short_id(folder: str) -> str:
    """The random end of a run folder's name (`20261207-045516-spirals-9be24d` -> 9be24d)."""
    return Path(folder).name[-6:]


def _fork(s: dict[str, Any]) -> str | None:
    epoch = s.get("fork_epoch")
    return f"fork at epoch {epoch}" if isinstance(epoch, int) else None


def _parent(s: dict[str, Any]) -> str | None:
    parent = s.get("pruned_from") or s.get("parent")
    return f"from {short_id(parent)}" if isinstance(parent, str) and parent else None


def _trial(s: dict[str, Any]) -> str | None:
    trial = s.get("trial")
    return f"trial {trial}" if isinstance(trial, int) else None


def _lr(s: dict[str, Any]) -> str | None:
    lr = s.get("lr")
    return f"lr {lr:g}" if isinstance(lr, int | float) else None


def _optimizer(s: dict[str, Any]) -> str | None:
    name = s.get("optimizer")
    return name if isinstance(name, str) else None


def _dataset(s: dict[str, Any]) -> str | None:
    name = s.get("dataset")
    return f"on {name}" if isinstance(name, str) else None


# What can tell runs of one name apart, in the order a label names it.
_DIFFERENCES: tuple[Callable[[dict[str, Any]], str | None], ...] = (
    _optimizer, _lr, _trial, _fork, _parent, _dataset)


def run_name(info: RunInfo) -> str:
    """A run's experiment name (its folder's name when the folder is damaged)."""
    name = info.summary.get("name") if not info.error else None
    return name if isinstance(name, str) and name else info.name


def run_labels(infos: Sequence[RunInfo]) -> list[str]:
    """One label a run, the one rule of the Runs list and every run picker: the run's name,
    and where several runs share it, what differs between them (optimizer, learning rate,
    trial, fork epoch, parent), then the folder's short id for runs still alike."""
    groups: dict[str, list[int]] = {}
    for index, info in enumerate(infos):
        groups.setdefault(run_name(info), []).append(index)
    labels = [run_name(info) for info in infos]
    for name, members in groups.items():
        if len(members) < 2:
            continue
        parts: dict[int, list[str]] = {i: [] for i in members}
        for difference in _DIFFERENCES:
            values = {i: difference(infos[i].summary) for i in members}
            if len(set(values.values())) > 1:
                for i, value in values.items():
                    if value is not None:
                        parts[i].append(value)
        for i in members:
            labels[i] = f"{name} · {', '.join(parts[i])}" if parts[i] else name
        seen: dict[str, int] = {}
        for i in members:
            seen[labels[i]] = seen.get(labels[i], 0) + 1
        for i in members:
            if seen[labels[i]] > 1:
                labels[i] = f"{labels[i]} #{short_id(str(infos[i].path))}"
    return labels


def run_titles(infos: Sequence[RunInfo]) -> list[str]:
    """One line a run for a picker: its label (`run_labels`), result and when it was made."""
    titles = []
    for info, label in zip(infos, run_labels(infos), strict=True):
        s = info.summary
        acc = s.get("test_accuracy")
        result = f" · test {acc:.1%}" if isinstance(acc, int | float) else ""
        created = s.get("created")
        when = time.strftime(" · %d %b %H:%M", time.localtime(created)) \
            if isinstance(created, int | float) else ""
        titles.append(f"{label}{result}{when}")
    return titles
