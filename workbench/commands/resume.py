"""`workbench resume RUN`: continue a stopped or interrupted run exactly where its
checkpoint left it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workbench.commands.common import CommandError, add_run_arg, add_runs_dir, find_run
from workbench.core.store.locks import holder, is_locked
from workbench.core.store.runs import Run, RunError, RunStatus
from workbench.core.workspace import Workspace


def add_parser(sub: Any) -> None:
    p = sub.add_parser("resume", help="continue a stopped or interrupted run from its checkpoint")
    add_run_arg(p, "the stopped or interrupted run")
    add_runs_dir(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    args.run_dir = str(find_run(args))  # a name, a prefix, latest or a path
    from workbench.commands.train import drive
    from workbench.core.training.loop import Trainer

    path = Path(args.run_dir)
    if not (path / "spec.json").is_file():
        raise CommandError(f"{path}: not a run folder (no spec.json)")
    if is_locked(path):
        raise CommandError(f"run {path.name} is in use by {holder(path)}; wait for it to end "
                           "or stop it there")
    try:
        Run(path).spec()
        status = Run(path).current_status()
    except RunError as exc:
        raise CommandError(str(exc)) from exc
    if not (path / "checkpoint.pt").exists():
        if status == RunStatus.INTERRUPTED:
            raise CommandError(f"{path}: the run was interrupted before its first checkpoint, "
                               "so it cannot be resumed; train it again")
        raise CommandError(f"{path}: no checkpoint to resume from")
    workspace = Workspace(path.parent)
    return drive(Trainer(resume=path, runs=workspace.runs, source=workspace), quiet=args.quiet)
