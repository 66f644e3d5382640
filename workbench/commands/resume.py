"""`workbench resume RUN_DIR`: continue a stopped run exactly where its checkpoint left it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workbench.commands.common import CommandError
from workbench.core.store.runs import Run, RunError
from workbench.core.workspace import Workspace


def add_parser(sub: Any) -> None:
    p = sub.add_parser("resume", help="continue a stopped run from its checkpoint")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from workbench.commands.train import drive
    from workbench.core.training.loop import Trainer

    path = Path(args.run_dir)
    if not (path / "checkpoint.pt").exists():
        raise CommandError(f"{path}: no checkpoint to resume from")
    try:
        Run(path).spec()
    except RunError as exc:
        raise CommandError(str(exc)) from exc
    workspace = Workspace(path.parent)
    return drive(Trainer(resume=path, runs=workspace.runs, source=workspace), quiet=args.quiet)
