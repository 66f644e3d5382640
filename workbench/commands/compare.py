"""`workbench compare SPEC.json --vary optim.name=sgd,adam`: race variants of one experiment.

Every combination of the `--vary` values runs from the same initial weights on the same
batches. A value may carry its own settings: `--vary optim.name=sgd:lr=0.05,adam:lr=0.001`.
Prints a results table on stderr and, as its last line, one JSON object with a `runs` list.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from workbench.commands.common import (
    CommandError,
    add_data_root,
    add_runs_dir,
    bounded,
    device_name,
    load_data,
    load_spec,
    print_result,
    spec_field,
    threads,
    with_data_root,
    workspace_from,
)
from workbench.spec import Bound, SpecError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="train variants of an experiment fairly and compare them")
    p.add_argument("spec", metavar="SPEC.json", help="the experiment spec to vary")
    p.add_argument("--vary", action="append", required=True, metavar="FIELD=V1,V2",
                   help="a field and its values, e.g. optim.name=sgd,adam or optim.lr=0.1,0.01;"
                        " a value may set more fields: adam:lr=0.001. Repeat for a grid")
    p.add_argument("--epochs", type=spec_field("train.epochs"),
                   help="override train.epochs for every variant")
    p.add_argument("--device", type=device_name, metavar="{auto,cpu,cuda,cuda:N}",
                   help="override train.device")
    p.add_argument("--target", type=bounded(Bound(0, 1)), default=0.9, metavar="ACC",
                   help="the validation accuracy whose time to reach is reported (default 0.9)")
    p.add_argument("--side-by-side", type=_side_by_side, default=1, metavar="N",
                   help="variants trained at once: a number, or auto (several on a GPU)")
    p.add_argument("--name", help="save the comparison under this name (default: from the spec)")
    p.add_argument("--threads", type=threads,
                   help="CPU threads for PyTorch (default: the spec's train.threads, else the "
                        "physical cores but one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_root(p)
    add_runs_dir(p)


def build(args: argparse.Namespace) -> Any:
    from workbench.core.tools.compare import Comparison, default_name, grid, parse_vary

    spec = with_data_root(load_spec(args.spec), args)
    try:
        for path, value in (("train.epochs", args.epochs), ("train.device", args.device)):
            if value is not None:
                spec = spec.with_value(path, value)
        axes: dict[str, list[Any]] = {}
        overrides: dict[str, dict[str, Any]] = {}
        for text in args.vary:
            path, values, extra = parse_vary(text)
            if path in axes:
                raise SpecError(path, "varied twice; give all its values in one --vary")
            axes[path] = values
            for key, fields in extra.items():
                overrides.setdefault(key, {}).update(fields)
        variants = grid(spec, axes, overrides)
    except SpecError as exc:
        raise CommandError(str(exc)) from exc
    return Comparison(args.name or default_name(spec), variants, target_accuracy=args.target)


def _side_by_side(text: str) -> int | str:
    """An argparse type: auto, or how many variants train at once."""
    return "auto" if text == "auto" else bounded(Bound(1, 64, integer=True))(text)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from workbench.core.tools.compare import ComparisonRunner, Curves, results, save_comparison
    from workbench.core.training.events import (
        EpochEnded,
        Progress,
        RunFailed,
        RunFinished,
        RunStarted,
    )

    comparison = build(args)
    side = args.side_by_side
    workspace = workspace_from(args)
    load_data(workspace, [v.spec for v in comparison.variants])
    runs = workspace.runs
    runner = ComparisonRunner(comparison, runs, threads=args.threads, side_by_side=side,
                              source=workspace)
    curves = [Curves() for _ in comparison.variants]
    n = len(comparison.variants)
    bars: dict[int, Any] = {}
    sys.stderr.write(f"comparing {n} variants: {', '.join(v.label for v in comparison.variants)}"
                     "\n")
    try:
        for index, event in runner.events():
            comparison.record(index, event)
            curves[index].add(event)
            label = comparison.variants[index].label
            if isinstance(event, RunStarted):
                bars[index] = tqdm(total=event.epochs * event.steps_per_epoch,
                                   disable=args.quiet, file=sys.stderr, unit="step",
                                   dynamic_ncols=True, desc=f"[{index + 1}/{n}] {label}")
            elif isinstance(event, Progress) and index in bars:
                bars[index].n = event.global_step
                bars[index].set_postfix(loss=f"{event.train_loss:.4f}", refresh=False)
                bars[index].refresh()
            elif isinstance(event, EpochEnded) and index in bars:
                acc = (f" val_acc {event.val_accuracy:.4f}"
                       if event.val_accuracy is not None else "")
                bars[index].write(f"{label} epoch {event.epoch}: train_loss "
                                  f"{event.train_loss:.4f}{acc}", file=sys.stderr)
            elif isinstance(event, RunFailed):
                sys.stderr.write(f"{label}: {curves[index].status}: {event.reason}\n")
            if isinstance(event, RunFailed | RunFinished):
                bar = bars.pop(index, None)
                if bar is not None:
                    bar.close()
    except KeyboardInterrupt:
        runner.stop()
        raise
    finally:
        for bar in bars.values():
            bar.close()
    path = save_comparison(comparison, runs)
    rows = results(comparison, curves)
    sys.stderr.write(format_table(rows, comparison.target_accuracy) + f"\nsaved {path}\n")
    print_result({"comparison": str(path), "target_accuracy": comparison.target_accuracy,
                  "runs": [{"variant": r.label, "run_dir": r.run_dir, "status": r.status,
                            "best_val_accuracy": r.best_val_accuracy,
                            "final_val_accuracy": r.final_val_accuracy,
                            "final_train_loss": _json_num(r.final_train_loss),
                            "epochs_to_target": r.epochs_to_target,
                            "seconds_to_target": _round(r.seconds_to_target),
                            "seconds_per_epoch": _round(r.seconds_per_epoch),
                            "seconds": _round(r.seconds), "diverged": r.diverged,
                            "first_batch_loss": r.first_batch_loss} for r in rows]})
    return 0 if all(r.status in ("finished", "diverged") for r in rows) else 1


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _json_num(value: float | None) -> float | None:
    """Non-finite numbers are not JSON: a diverged loss is reported as null."""
    return value if value is not None and math.isfinite(value) else None


def format_table(rows: list[Any], target: float) -> str:
    """The results as aligned text columns, for the terminal and the report."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None or not math.isfinite(v) else format(v, fmt)

    head = ["variant", "best val acc", "final val acc", "final train loss",
            f"epochs to {100 * target:g}%", f"s to {100 * target:g}%", "s/epoch", "seconds",
            "diverged"]
    body = [[r.label, pct(r.best_val_accuracy), pct(r.final_val_accuracy),
             num(r.final_train_loss, ".4f"),
             "-" if r.epochs_to_target is None else str(r.epochs_to_target),
             num(r.seconds_to_target, ".1f"), num(r.seconds_per_epoch, ".1f"),
             num(r.seconds, ".1f"), "yes" if r.diverged else "no"] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
             for line in [head, *body]]
    return "\n".join(lines)
