"""`workbench lr-find SPEC.json`: the learning-rate range test, headless.

Prints the smoothed loss at each decade of the rate and the suggestions on stderr and, as its
last line, one JSON object with `suggested_lr` and the curve's summary. Ctrl-C or SIGTERM ends
the sweep after the step in flight (exit 130/143); nothing is stored, so a rerun starts over.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from workbench.commands.common import (
    CommandError,
    add_data_root,
    bounded,
    device_name,
    load_spec,
    print_result,
    spec_field,
    threads,
    with_data_root,
    workspace_from,
)
from workbench.commands.signals import SignalStop
from workbench.spec import Bound, SpecError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("lr-find", help="find a learning rate: the range test on a copy of the "
                                       "experiment's model (nothing is stored)")
    p.add_argument("spec", metavar="SPEC.json", help="the experiment spec")
    p.add_argument("--start", type=spec_field("optim.lr"), default=1e-7,
                   help="first rate (default 1e-7)")
    p.add_argument("--end", type=spec_field("optim.lr"), default=10.0,
                   help="last rate (default 10)")
    p.add_argument("--steps", type=bounded(Bound(10, 100_000, integer=True)), default=300,
                   help="training steps over the range (default 300)")
    p.add_argument("--device", type=device_name, metavar="{auto,cpu,cuda,cuda:N}",
                   help="override train.device")
    p.add_argument("--threads", type=threads, help="CPU threads for PyTorch")
    add_data_root(p)


def run(args: argparse.Namespace) -> int:
    from workbench.commands.train import preflight
    from workbench.core.data import DataError
    from workbench.core.tools.lr_find import LRFindError, check_range, lr_find

    spec = with_data_root(load_spec(args.spec), args)
    workspace = workspace_from(args)
    try:
        if args.device is not None:
            spec = spec.with_value("train.device", args.device)
        check_range(args.start, args.end, args.steps)
    except (SpecError, LRFindError) as exc:
        raise CommandError(str(exc)) from exc
    preflight(spec, workspace)
    with SignalStop() as stop:
        try:  # the data first, so that a bad dataset is one line before anything is printed
            workspace.splits(spec.data, spec.train.seed, cancel=stop.event)
            sys.stderr.write(f"range test of {spec.name}: {spec.optim.name}, rate "
                             f"{args.start:g} to {args.end:g} over {args.steps} steps\n")
            result = lr_find(spec, start_lr=args.start, end_lr=args.end, steps=args.steps,
                             threads=args.threads, source=workspace, cancel=stop.event)
        except (SpecError, DataError, LRFindError) as exc:
            if stop.signal is not None:
                return stop.stopped("before the range test began; nothing is stored")
            raise CommandError(str(exc)) from exc
    if stop.signal is not None:
        return stop.stopped(f"after {len(result.lrs)} of {args.steps} steps; nothing is "
                            "stored, run it again for a suggestion")
    sys.stderr.write(format_curve(result.lrs, result.smoothed) + "\n")
    how = {"diverged": "the loss exploded", "end": "reached the end rate",
           "cancelled": "cancelled"}[result.stop]
    steep = "-" if result.steepest_lr is None else f"{result.steepest_lr:.3g}"
    sys.stderr.write(f"stopped after {len(result.lrs)} steps ({how}) in {result.seconds:.1f} s\n"
                     f"steepest descent at {steep}; minimum at {result.minimum_lr:.3g}, "
                     f"/ 10 = {result.min_over_10:.3g}\nsuggested rate: "
                     f"{result.suggested_lr:.3g}\n")
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    print_result(result.summary())
    return 0


def format_curve(lrs: list[float], smoothed: list[float]) -> str:
    """The smoothed loss at the first rate of each decade, as two aligned columns."""
    lines = [f"{'rate':>10}  smoothed loss"]
    decade = None
    for lr, loss in zip(lrs, smoothed, strict=True):
        d = math.floor(math.log10(lr))
        if d != decade:
            decade = d
            lines.append(f"{lr:>10.3g}  {loss:.4g}")
    lines.append(f"{lrs[-1]:>10.3g}  {smoothed[-1]:.4g}")
    return "\n".join(lines)
