"""`workbench report RUN [--out FILE]`: one self-contained HTML page of a run (its results,
curves, confusion matrix or regression plots, Inspect's pictures, the compression frontier
and the spec) that can be sent to someone without Workbench.

Prints the file on stderr and, as its last line, one JSON object naming it and the pictures
it holds. A run that failed gets a page too: the failure, its curves, and why there is
nothing to inspect.
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
    find_run,
    print_result,
    workspace_from,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="write a run's report: one HTML page with every picture "
                                      "inside it, to send to someone without Workbench")
    add_run_arg(p, "the run")
    p.add_argument("--out", metavar="FILE",
                   help="the HTML file to write (default: report.html in the run folder)")
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    run_dir = find_run(args)
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise CommandError(f"--out: {out} is a folder; name the HTML file to write")
    if out is not None and not out.parent.is_dir():
        raise CommandError(f"--out: {out.parent} is not a folder")
    from workbench.core.store.runs import RunError
    from workbench.core.tools.inspect.report import write_report

    def say(what: str) -> None:
        sys.stderr.write(f"report: {what}\n")

    try:
        report = write_report(run_dir, out, source=workspace_from(args), progress=say)
    except RunError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from exc
    for note in report.notes:
        sys.stderr.write(f"note: {note}\n")
    sys.stderr.write(f"wrote {report.path} ({len(report.html):,} bytes, "
                     f"{len(report.pictures)} pictures)\n")
    print_result({"run_dir": str(run_dir), "report": str(report.path),
                  "bytes": len(report.html.encode("utf-8")), "pictures": report.pictures,
                  "notes": report.notes})
    return 0
