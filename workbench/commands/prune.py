"""`workbench prune RUN --amount 0.5`: prune a trained run headless into a new run.

Ctrl-C or SIGTERM stops it after the step in flight (exit 130/143): before the new run is
made, nothing is; while it fine-tunes, the run is left stopped with what pruning decided in
its summary, and `workbench resume RUN` finishes the fine-tuning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.commands.common import (
    CommandError,
    Exit,
    add_run_arg,
    add_runs_dir,
    bounded,
    find_run,
    print_result,
    spec_field,
    writable_workspace,
)
from workbench.commands.signals import SignalStop
from workbench.core.workspace import Workspace
from workbench.spec import BOUNDS, Bound

if TYPE_CHECKING:
    from workbench.core.tools.prune_apply import PrunedRun

AMOUNT = Bound(0, 0.99)  # core.tools.prune.MAX_AMOUNT, not imported here: it loads torch
FINETUNE_EPOCHS = Bound(0, BOUNDS["train.epochs"].hi, integer=True)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("prune", help="prune a trained run by magnitude into a new run")
    add_run_arg(p, "the trained run")
    p.add_argument("--amount", type=bounded(AMOUNT), required=True,
                   help="share pruned, 0..0.99: of weights, or of units with --structured")
    p.add_argument("--structured", action="store_true",
                   help="remove whole neurons/channels (the model really shrinks)")
    p.add_argument("--per-layer", action="store_true",
                   help="prune every layer by the amount (default: rank the network globally)")
    p.add_argument("--norm", choices=("l1", "l2"), default="l1",
                   help="how units are ranked with --structured (default l1)")
    p.add_argument("--finetune", type=bounded(FINETUNE_EPOCHS), default=0, metavar="EPOCHS",
                   help="train the pruned network this many epochs with its mask fixed")
    p.add_argument("--lr", type=spec_field("optim.lr"), default=None,
                   help="fine-tuning learning rate "
                   "(default: the run's)")
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    args.run_dir = str(find_run(args))  # a name, a prefix, latest or a path
    from workbench.core.tools.prune import PruneError

    # the pruned run goes beside its parent unless --runs-dir says otherwise
    workspace = writable_workspace(args.runs_dir or Path(args.run_dir).parent)
    with SignalStop() as stop:
        try:
            pruned = _prune(args, workspace, stop)
        except PruneError as exc:
            if stop.signal is not None:
                return stop.stopped("before the pruned run was stored; nothing was made")
            raise CommandError(str(exc)) from exc
    s = pruned.summary
    sys.stderr.write(
        f"val accuracy {s['val_accuracy_parent']} -> {s['val_accuracy_pruned']} pruned"
        + (f" -> {s['val_accuracy']} after {s.get('epochs_done', args.finetune)} epochs"
           if args.finetune else "")
        + f"; {s['bytes_before']:,} -> {s['bytes_after']:,} bytes; CPU latency "
        f"{s['latency_ms_before']:.3f} -> {s['latency_ms_after']:.3f} ms\n")
    keys = ("sparsity", "parameters", "parameters_stored", "parameters_before", "val_accuracy",
            "test_accuracy", "val_accuracy_parent", "val_accuracy_pruned", "bytes_before",
            "bytes_after", "latency_ms_before", "latency_ms_after", "latency_ms_256_before",
            "latency_ms_256_after", "status", "pruned_from")
    print_result({"run_dir": pruned.run_dir, **{k: s.get(k) for k in keys}})
    if stop.signal is not None:
        return stop.stopped(f"fine-tuning after {s.get('epochs_done', 0)} of {args.finetune} "
                            f"epochs; continue with: workbench resume {pruned.run_dir}")
    return Exit.OK


def _prune(args: argparse.Namespace, workspace: Workspace, stop: SignalStop) -> PrunedRun:
    """Evaluate, report and store the pruned run (fine-tuned as asked)."""
    from workbench.core.tools.prune import PruneConfig, PruneSession
    from workbench.core.tools.prune_apply import create_pruned_run

    session = PruneSession(args.run_dir, source=workspace, cancel=stop.event)
    targets = session.structured_layers if args.structured else session.layers
    config = PruneConfig(
        amount=args.amount, structured=args.structured, norm=args.norm,
        per_layer={lay.index: args.amount for lay in targets} if args.per_layer else None)
    preview = session.evaluate(config)
    for note in preview.notes:
        sys.stderr.write(f"note: {note}\n")
    for lay in preview.layers:
        sys.stderr.write(f"{lay.label:28s} sparsity {lay.sparsity:6.1%}  parameters "
                         f"{lay.params_before:,} -> {lay.params_after:,}\n")
    return create_pruned_run(session, config, runs=workspace.runs,
                             finetune_epochs=args.finetune, lr=args.lr, on_event=_progress,
                             cancel=stop.event)


def _progress(event: Any) -> None:
    """The fine-tuning, a line an epoch."""
    from workbench.core.training.events import EpochEnded, RunStarted

    if isinstance(event, RunStarted):
        sys.stderr.write(f"fine-tuning {event.run_dir} for {event.epochs} epochs\n")
    elif isinstance(event, EpochEnded):
        acc = f"{event.val_accuracy:.2%}" if event.val_accuracy is not None else "—"
        sys.stderr.write(f"  fine-tuning epoch {event.epoch}: val accuracy {acc}\n")
