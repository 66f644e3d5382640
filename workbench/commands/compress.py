"""`workbench compress RUN [--max-drop 0.5]`: a run's size / speed / accuracy frontier.

Without `--max-drop`: measure the run and every run pruned from it (float and int8, with
onnxruntime on this machine) and print the variants and the Pareto set. With it: search for
the smallest variant that loses at most that many validation accuracy points, pruning (into
new runs linked to this one), fine-tuning, quantizing and verifying as it goes.

Ctrl-C or SIGTERM stops it after the step in flight (exit 130/143): what was measured stays in
each run's record, and running it again continues; a search prints and records what it found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.commands.common import (
    CommandError,
    Exit,
    add_run_arg,
    add_runs_dir,
    bounded,
    checked_workspace,
    find_run,
    print_result,
    writable_workspace,
)
from workbench.commands.export import add_quantize_arguments, quantize_config, variant_table
from workbench.commands.signals import SignalStop
from workbench.core.tools.compress_settings import (
    DEFAULT_FINETUNE_EPOCHS,
    DEFAULT_PROBES,
    MAX_DROP_LIMIT,
    MAX_FINETUNE_EPOCHS,
    MAX_PROBES,
)
from workbench.spec import Bound


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compress", help="measure a run's compressed variants, or find the "
                       "smallest that keeps an accuracy (--max-drop)")
    add_run_arg(p, "the trained run")
    p.add_argument("--max-drop", type=bounded(Bound(0, MAX_DROP_LIMIT)), default=None,
                   metavar="POINTS", help="search for the smallest variant within this many "
                   "validation accuracy points of the run's float model")
    p.add_argument("--finetune", type=bounded(Bound(0, MAX_FINETUNE_EPOCHS, integer=True)),
                   default=DEFAULT_FINETUNE_EPOCHS, metavar="EPOCHS",
                   help=f"fine-tuning epochs of each pruned run (default "
                   f"{DEFAULT_FINETUNE_EPOCHS})")
    p.add_argument("--unstructured", action="store_true",
                   help="prune single weights (stored sparse) instead of whole units")
    p.add_argument("--probes", type=bounded(Bound(1, MAX_PROBES, integer=True)),
                   default=DEFAULT_PROBES, metavar="N",
                   help=f"pruned runs the search may make (default {DEFAULT_PROBES})")
    add_quantize_arguments(p, default="auto")
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    args.run_dir = str(find_run(args))  # a name, a prefix, latest or a path
    from workbench.core.cancel import Cancelled
    from workbench.core.tools.compress import (
        CompressError,
        compress_to_target,
        measure_family,
        pareto,
    )
    from workbench.core.tools.export import ExportError
    from workbench.core.tools.prune import PruneError

    config = quantize_config(args, args.quantize)
    # pruned runs go beside their parent unless --runs-dir says otherwise; a search makes
    # them, so their store must be writable before anything is measured
    store = args.runs_dir or Path(args.run_dir).parent
    workspace = checked_workspace(store) if args.max_drop is None else writable_workspace(store)
    with SignalStop() as stop:
        try:
            if args.max_drop is None:
                variants = measure_family(args.run_dir, workspace.runs, config, report=_note,
                                          source=workspace, cancel=stop.event)
            else:
                result = compress_to_target(args.run_dir, args.max_drop, runs=workspace.runs,
                                            finetune_epochs=args.finetune,
                                            structured=not args.unstructured, config=config,
                                            probes=args.probes, report=_progress,
                                            source=workspace, cancel=stop.event)
        except Cancelled as exc:
            return stop.stopped(str(exc))
        except (CompressError, ExportError, PruneError) as exc:
            if stop.signal is not None:
                return stop.stopped("what was measured is kept; run it again to continue")
            raise CommandError(str(exc)) from exc
    if args.max_drop is None:
        if stop.signal is not None:
            return stop.stopped("what was measured is kept in each run's record; run it "
                                "again to continue")
        front = pareto(variants)
        sys.stderr.write(variant_table([(_name(v), v.measured) for v in variants]))
        sys.stderr.write("Pareto set (size against test accuracy): "
                         + "; ".join(_name(v) for v in front) + "\n")
        print_result({"run_dir": args.run_dir, "variants": [v.to_dict() for v in variants],
                      "pareto": [v.to_dict() for v in front]})
        return Exit.OK
    best = result.best
    if best is not None:
        m = best.measured
        sys.stderr.write(
            f"smallest within {result.max_drop:g} points: {_name(best)}: {m.bytes:,} bytes "
            f"({result.reference_bytes / m.bytes:.1f}x smaller), val "
            f"{m.val_accuracy:.2%} (float {result.reference_val_accuracy:.2%}), test "
            f"{m.test_accuracy:.2%} (float {result.reference_test_accuracy:.2%}), "
            f"{best.file or 'file not kept'}\n")
    print_result(result.to_dict())
    if stop.signal is not None:
        return stop.stopped("the search, with what it found so far (kept in the run's "
                            "record); run it again to search anew")
    return Exit.OK


def _name(v: Any) -> str:
    return f"{v.run_name[-6:]} {v.label}" + (" (refused)" if v.refused else "")


def _note(message: Any) -> None:
    if isinstance(message, str):
        sys.stderr.write(f"note: {message}\n")


def _progress(item: Any) -> None:
    from workbench.core.tools.compress import TargetStep, in_points
    from workbench.core.training.events import EpochEnded

    if isinstance(item, TargetStep):
        verdict = "holds" if item.holds else "too far"
        sys.stderr.write(f"{item.action:8s} {verdict}, {in_points(item.drop)}: {item.note}\n")
    elif isinstance(item, EpochEnded):
        acc = f"{item.val_accuracy:.2%}" if item.val_accuracy is not None else "—"
        sys.stderr.write(f"  fine-tuning epoch {item.epoch}: val accuracy {acc}\n")
