"""`workbench resume RUN`: continue a stopped, interrupted or failed run exactly where its
checkpoint left it. A run that cannot be resumed (finished, training now, no checkpoint) is
refused in one line by the store's one rule (`Run.why_not_resumable`), and nothing changes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workbench.commands.common import (
    CommandError,
    add_run_arg,
    add_runs_dir,
    checked_workspace,
    find_run,
)
from workbench.core.store.locks import holder, is_locked
from workbench.core.store.runs import Run, RunError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("resume", help="continue a stopped, interrupted or failed run from its "
                                      "checkpoint")
    add_run_arg(p, "the stopped, interrupted or failed run")
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
        Run(path).summary()
    except RunError as exc:
        raise CommandError(str(exc)) from exc
    reason = Run(path).why_not_resumable()
    if reason is not None:
        raise CommandError(f"run {path.name}: {reason}")
    workspace = checked_workspace(path.parent)
    return drive(Trainer(resume=path, runs=workspace.runs, source=workspace), quiet=args.quiet)
