"""`workbench fork RUN --epoch N --set optim.lr=0.001`: continue a run from one of its
epoch checkpoints with settings changed, as a new run linked to its parent.

With nothing set the fork repeats its parent exactly (bit for bit on the CPU). Prints the
progress on stderr and, as its last line, one JSON object with the new run and its parent.
Everything is checked before the new run's folder is made (the parent's spec, checkpoint and
metrics, a runs folder that can be written); Ctrl-C or SIGTERM stops it as it stops `train`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.commands.common import (
    CommandError,
    add_run_arg,
    add_runs_dir,
    checked_workspace,
    find_run,
    load_data,
    spec_field,
    threads,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("fork", help="continue a run from an epoch checkpoint with changed "
                                    "settings, as a new linked run")
    add_run_arg(p, "the run to fork")
    p.add_argument("--epoch", type=spec_field("train.epochs"), metavar="N",
                   help="the epoch to fork at (one the run kept a checkpoint of)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="sets",
                   help="a changed setting, e.g. optim.lr=0.001 or train.epochs=20; repeat")
    p.add_argument("--threads", type=threads, help="CPU threads for PyTorch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    args.run_dir = str(find_run(args))  # a name, a prefix, latest or a path
    from workbench.commands.train import drive
    from workbench.core.store.runs import RunError
    from workbench.core.tools.fork import (
        ForkError,
        fork_points,
        fork_trainer,
        load_checkpoint,
        parse_sets,
        plan_fork,
    )

    try:
        if args.epoch is None:
            epochs = fork_points(args.run_dir)
            have = f"it has {', '.join(map(str, epochs))}" if epochs else "it has none"
            raise ForkError(f"--epoch: give the epoch to fork at; {have}")
        plan = plan_fork(args.run_dir, args.epoch, parse_sets(args.sets))
        workspace = checked_workspace(args.runs_dir or plan.parent.parent)  # beside its parent
        load_data(workspace, [plan.spec])
        trainer = fork_trainer(plan, runs=workspace.runs, source=workspace,
                               threads=args.threads, checkpoint=load_checkpoint(plan))
        workspace.runs.check_writable()  # last: it makes the runs folder when missing
    except (ForkError, RunError) as exc:
        raise CommandError(str(exc)) from exc
    changed = ", ".join(f"{k}={v}" for k, v in plan.changes.items()) or "nothing changed"
    sys.stderr.write(f"forking {Path(plan.parent).name} at epoch {plan.epoch}: {changed}\n")
    for note in plan.notes:
        sys.stderr.write(f"note: {note}\n")
    return drive(trainer, quiet=args.quiet, extra=("parent", "fork_epoch", "fork_changes"))
