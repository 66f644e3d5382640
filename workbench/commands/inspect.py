"""`workbench inspect RUN [--sample N] [--out DIR]`: what a trained network learned and why it
answers as it does, as PNG pictures plus `inspect.json` (the numbers), on the run's own data.

Prints each picture's file and what it shows on stderr and, as its last line, one JSON object
with the folder, the files, and the headline numbers (the equation of a linear model, the
test accuracy, the samples' answers).
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
    bounded,
    find_run,
    print_result,
    workspace_from,
)
from workbench.spec import Bound

SAMPLE = Bound(0, 100_000_000, integer=True)
PER_CLASS = Bound(1, 10_000, integer=True)
FOLDER = "inspect"  # inside the run folder, unless --out says where


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="draw what a trained run's network learned and why it "
                                       "answers as it does (PNG pictures and their numbers)")
    add_run_arg(p, "the trained run")
    p.add_argument("--sample", type=bounded(SAMPLE), action="append", metavar="N",
                   dest="samples",
                   help="a test sample to explain, numbered from 0 in test order (as "
                        "inspect.json lists the misclassified); repeat for more (default: "
                        "sample 0 and the first misclassified one)")
    p.add_argument("--out", metavar="DIR",
                   help=f"the folder for the pictures (default: {FOLDER}/ in the run folder)")
    p.add_argument("--per-class", type=bounded(PER_CLASS), default=50, metavar="K",
                   help="correctly classified samples averaged per class (default 50)")
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    run_dir = find_run(args)
    out = Path(args.out) if args.out else run_dir / FOLDER
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out: {out} is a file, not a folder")
    from workbench.core.store.runs import RunError
    from workbench.core.tools.inspect.inspection import inspect_run, write_inspection
    from workbench.core.tools.inspect.network import InspectError

    def say(what: str) -> None:
        sys.stderr.write(f"inspect: {what}\n")

    try:
        result = inspect_run(run_dir, source=workspace_from(args), samples=args.samples,
                             per_class=args.per_class, progress=say)
    except (RunError, InspectError) as exc:
        raise CommandError(str(exc)) from exc
    try:
        files = write_inspection(result, out)
    except OSError as exc:
        raise CommandError(f"--out: cannot write {exc.filename or out}: "
                           f"{exc.strerror or exc}") from exc
    doc = result.to_json()
    for path in files:
        sys.stderr.write(f"wrote {path}\n")
    if result.equation is not None:
        sys.stderr.write("equation (in the data's own units):\n")
        for line in result.equation.lines:
            sys.stderr.write(f"  {line}\n")
    summary: dict[str, Any] = {"run_dir": str(run_dir), "out": str(out),
                               "files": [p.name for p in files], "task": result.task}
    for key in ("test_accuracy", "equation"):
        if key in doc:
            summary[key] = doc[key]["lines"] if key == "equation" else doc[key]
    if "misclassified" in doc:
        summary["misclassified"] = len(doc["misclassified"])
    summary["samples"] = [{k: s[k] for k in ("index", "true", "predicted", "true_class",
                                             "predicted_class") if k in s}
                          for s in doc["samples"]]
    print_result(summary)
    return 0
