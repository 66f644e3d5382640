"""Forks: a new run that continues a stored run from one of its epoch checkpoints with some
settings changed ("what if I had lowered the rate at epoch 10?").

The fork starts from the checkpoint's weights, optimizer state, schedule state, random
streams and data order (the batch generator's state), so a fork that changes nothing repeats
its parent bit for bit on the CPU. Its folder is a run like any other, linked to its parent
(`parent`, `fork_epoch`, `fork_step` and `fork_changes` in its summary), and its metrics
begin with the parent's up to the fork, so its curves are whole on their own; the views draw
them as a branch of the parent's. The parent's folder is only read, and everything of it the
fork needs (its spec, checkpoint list and metrics) is read before the fork's folder is made: a
parent whose files cannot be read is refused with nothing created.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from workbench.core.store.metrics import MetricSeries
from workbench.core.store.runs import Run, RunError, RunStore
from workbench.core.tools.compare import parse_value, set_field
from workbench.core.training.callbacks import Callback
from workbench.core.training.state import checkpoint_epochs, epoch_checkpoint_name
from workbench.spec import ExperimentSpec, SpecError, derived_name

if TYPE_CHECKING:
    from workbench.core.data.cache import DataSource
    from workbench.core.training.loop import Trainer

_SECTIONS = ("data", "optim", "schedule", "regularization", "train")


class ForkError(ValueError):
    """A fork that cannot start; the message says which input and why, in one line."""


@dataclass(frozen=True)
class ForkPlan:
    """What a fork will run: its parent, the epoch it starts after, its spec and changes."""

    parent: Path
    epoch: int
    spec: ExperimentSpec
    changes: dict[str, Any]
    fresh_optimizer: bool  # the optimizer changed: its state starts afresh
    notes: tuple[str, ...] = ()

    def fork_step(self, parent: MetricSeries) -> int:
        """The global step at the end of the fork epoch, from the parent's metrics."""
        for epoch, step in zip(parent.epochs["epoch"], parent.epochs["global_step"],
                               strict=True):
            if epoch == self.epoch:
                return int(step)
        return 0


def fork_points(run_dir: str | Path) -> list[int]:
    """The epochs a run can be forked at (those it kept a checkpoint of)."""
    return checkpoint_epochs(run_dir)


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`["optim.lr=0.001", "optim.name=sgd"]` -> {"optim.lr": 0.001, "optim.name": "sgd"}."""
    changes: dict[str, Any] = {}
    for item in items:
        path, eq, text = item.partition("=")
        path = path.strip()
        if not eq or not path:
            raise ForkError(f"--set: expected FIELD=VALUE, got {item!r}")
        if path in changes:
            raise ForkError(f"--set: {path} is set twice")
        changes[path] = parse_value(text)
    return changes


def spec_changes(old: ExperimentSpec, new: ExperimentSpec) -> dict[str, Any]:
    """The fields that differ, by dotted path (`optim.lr`, `model.layers[2].p`); the name and
    a layer stack of another length count as one change each (`name`, `model.layers`)."""
    a, b = old.to_dict(), new.to_dict()
    out: dict[str, Any] = {}
    for section in _SECTIONS:
        _diff(a[section], b[section], section, out)
    la, lb = a["model"]["layers"], b["model"]["layers"]
    if len(la) != len(lb) or any(x["type"] != y["type"] for x, y in zip(la, lb, strict=False)):
        out["model.layers"] = lb
    else:
        for i, (x, y) in enumerate(zip(la, lb, strict=True)):
            for key in sorted(set(x) | set(y)):
                if key != "type" and x.get(key) != y.get(key):
                    out[f"model.layers[{i}].{key}"] = y.get(key)
    return out


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key in b:
        if isinstance(b[key], dict) and isinstance(a.get(key), dict):
            _diff(a[key], b[key], f"{prefix}.{key}", out)
        elif a.get(key) != b[key]:
            out[f"{prefix}.{key}"] = b[key]


def plan_fork(run_dir: str | Path, epoch: int, changes: Mapping[str, Any] | None = None, *,
              spec: ExperimentSpec | None = None) -> ForkPlan:
    """Check a fork before anything runs: ForkError names the bad input.

    Give the changed fields (`changes`), or the whole spec the fork should run (`spec`, e.g.
    the experiment editor's), whose differences from the parent's become the changes.
    """
    parent = Path(run_dir)
    if not (parent / "spec.json").is_file():
        raise ForkError(f"{parent} is not a run folder (no spec.json)")
    try:
        parent_spec = Run(parent).spec()
        summary = Run(parent).summary()
    except RunError as exc:
        raise ForkError(str(exc)) from exc
    epochs = fork_points(parent)
    if not epochs:
        raise ForkError(f"{parent.name} kept no epoch checkpoints to fork from (it ran with "
                        "train.checkpoint_every 0, or before runs kept them)")
    if epoch not in epochs:
        raise ForkError(f"epoch {epoch}: {parent.name} has no checkpoint of it; it has "
                        f"epochs {_ranges(epochs)}")
    if spec is not None:
        changes = spec_changes(parent_spec, spec)
        changes.pop("name", None)
    changes = dict(changes or {})
    new = parent_spec
    try:
        for path, value in changes.items():
            new = set_field(new, path, value)
    except SpecError as exc:
        raise ForkError(str(exc)) from None
    if "name" not in changes:
        new = new.with_value("name", derived_name(parent_spec.name, f" fork@{epoch}"))
    if new.train.epochs <= epoch:
        raise ForkError(f"train.epochs: the fork starts after epoch {epoch}, so it must be more "
                        f"than {epoch}, got {new.train.epochs}")
    _check_same_network(parent_spec, new)
    _check_same_device_kind(summary, new)
    notes = []
    fresh = new.optim.name != parent_spec.optim.name
    if fresh:
        notes.append(f"the optimizer changed ({parent_spec.optim.name} -> {new.optim.name}): "
                     "its state starts afresh")
    if new.data != parent_spec.data or new.train.seed != parent_spec.train.seed:
        notes.append("the data or seed changed: the fork's batches are not its parent's")
    return ForkPlan(parent, epoch, new, changes, fresh, tuple(notes))


def _check_same_network(old: ExperimentSpec, new: ExperimentSpec) -> None:
    """The parent's weights must fit the fork's network: same parameter names and shapes.

    Only a fork that changes the layers or the data needs the check (and the data's
    description, which may read a file); the dialog plans forks as they are edited."""
    from workbench.core.data import DataError, dataset_info
    from workbench.core.model import build_model, check

    if new.model == old.model and new.data == old.data:
        return
    shapes = []
    for spec in (old, new):
        try:
            info = dataset_info(spec.data)
            check(spec.model.layers, info.input_shape, info.num_classes)
        except (SpecError, DataError) as exc:
            raise ForkError(str(exc)) from None
        with torch.device("meta"):
            model = build_model(spec.model.layers, info.input_shape)
        shapes.append({k: tuple(v.shape) for k, v in model.state_dict().items()})
    if shapes[0] != shapes[1]:
        differ = sorted(set(shapes[0].items()) ^ set(shapes[1].items()))
        raise ForkError(f"model: the parent's weights do not fit the changed network "
                        f"({differ[0][0]}); a fork keeps the parent's layers and their sizes")


def _check_same_device_kind(summary: dict[str, Any], new: ExperimentSpec) -> None:
    from workbench.core.training.loop import resolve_device

    ran_on = str(summary.get("device") or "cpu").split(":")[0]
    try:
        goes_on = resolve_device(new.train.device).type
    except SpecError as exc:
        raise ForkError(str(exc)) from None
    if ran_on != goes_on:
        raise ForkError(f"train.device: the parent ran on {ran_on} and its data order lives "
                        f"there; fork it on {ran_on} (this would run on {goes_on})")


def _ranges(epochs: list[int]) -> str:
    """1, 2, 3, 5 -> "1-3, 5"."""
    runs: list[list[int]] = []
    for epoch in epochs:
        if runs and epoch == runs[-1][-1] + 1:
            runs[-1].append(epoch)
        else:
            runs.append([epoch])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def load_checkpoint(plan: ForkPlan) -> dict[str, Any]:
    """The checkpoint the fork continues from (without optimizer state when it changed)."""
    ckpt = Run(plan.parent).load_state(epoch_checkpoint_name(plan.epoch))
    if ckpt.get("epoch") != plan.epoch or ckpt.get("step") != 0:
        raise RunError(f"{plan.parent / epoch_checkpoint_name(plan.epoch)}: not the end of "
                       f"epoch {plan.epoch}; the run folder may be damaged")
    if plan.fresh_optimizer:
        ckpt["optimizer"] = None
    return ckpt


def parent_records(plan: ForkPlan) -> list[dict[str, Any]]:
    """The parent's step and epoch records (what a fork inherits, up to its step); ForkError
    when its metrics cannot be read."""
    try:
        records = Run(plan.parent).metrics()
    except RunError as exc:
        raise ForkError(f"cannot read the parent's metrics: {exc}") from None
    return [r for r in records if r.get("kind") in ("step", "epoch")]


class ForkLink(Callback):
    """Links the new run to its parent: the summary fields, and the parent's metrics up to
    the fork at the head of the run's own (so its curves are whole on their own). The
    parent's records are read when the link is made, before the fork's folder exists."""

    def __init__(self, plan: ForkPlan, records: list[dict[str, Any]] | None = None) -> None:
        self.plan = plan
        self.records = parent_records(plan) if records is None else records

    def on_run_start(self, trainer: Any) -> None:
        run = trainer.run
        if run is None:
            return
        step = trainer.state.global_step
        inherited = [r for r in self.records if r.get("global_step", 0) <= step]
        run.append_metrics(inherited)
        run.update_summary(parent=str(self.plan.parent), fork_epoch=self.plan.epoch,
                           fork_step=step, fork_changes=self.plan.changes)


def fork_trainer(plan: ForkPlan, *, runs: RunStore | None = None,
                 callbacks: Sequence[Callback] = (), threads: int | None = None,
                 source: DataSource | None = None,
                 checkpoint: dict[str, Any] | None = None) -> Trainer:
    """A Trainer for the fork (a new run beside its parent unless `runs` says otherwise);
    ForkError, before anything is made, when the parent's metrics cannot be read. The epoch
    checkpoint is read when training starts, unless given (`load_checkpoint(plan)`, read
    first by a caller that must refuse a damaged one before anything is made)."""
    from workbench.core.training.loop import Trainer

    start = (functools.partial(load_checkpoint, plan) if checkpoint is None
             else lambda: checkpoint)
    return Trainer(plan.spec, runs=runs or RunStore(plan.parent.parent), parent=plan.parent,
                   callbacks=[ForkLink(plan), *callbacks], threads=threads, source=source,
                   start_from=start)


def series_until(series: MetricSeries, step: int) -> MetricSeries:
    """The part of a run's curves up to `step`: what a fork inherits from its parent."""
    out = MetricSeries()
    for table, cut in ((series.steps, out.steps), (series.epochs, out.epochs)):
        keep = [i for i, s in enumerate(table["global_step"]) if s <= step]
        for key, values in table.items():
            cut[key] = [values[i] for i in keep]
    return out


def branch_of(summary: Mapping[str, Any]) -> tuple[str, int, int] | None:
    """(parent folder, fork epoch, fork global step) of a forked run's summary, else None."""
    parent, epoch, step = (summary.get(k) for k in ("parent", "fork_epoch", "fork_step"))
    if isinstance(parent, str) and isinstance(epoch, int) and isinstance(step, int):
        return parent, epoch, step
    return None


__all__ = ["ForkError", "ForkLink", "ForkPlan", "branch_of", "fork_points", "fork_trainer",
           "load_checkpoint", "parent_records", "parse_sets", "plan_fork", "series_until",
           "spec_changes"]
