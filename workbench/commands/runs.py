"""`workbench runs`: list the stored runs, newest first, with their folders; damaged folders
are reported, and runs whose process died are shown as interrupted. Every command that takes a
RUN accepts the name printed here."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workbench.commands.common import add_runs_dir, workspace_from


def add_parser(sub: Any) -> None:
    p = sub.add_parser("runs", help="list stored runs")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    store = workspace_from(args).runs
    infos = store.list()
    if args.json:
        for info in infos:
            sys.stdout.write(json.dumps({"run_dir": str(info.path), "error": info.error,
                                         **info.summary, "resumable": info.resumable}) + "\n")
        return 0
    if not infos:
        sys.stdout.write(f"no runs in {store.root}\n")
        return 0
    sys.stdout.write(f"{len(infos)} runs in {store.root}; give a command a run's name or "
                     "folder\n")
    sys.stdout.write(f"{'run':<48} {'status':<11} {'dataset':<14} {'epochs':>6} "
                     f"{'test acc':>9} {'seconds':>8}  folder\n")
    for info in infos:
        if info.error:
            sys.stdout.write(f"{info.name:<48} damaged: {info.error}  {info.path}\n")
            continue
        s = info.summary
        acc = s.get("test_accuracy")
        acc_text = f"{acc:.4f}" if isinstance(acc, float) else (
            f"mse {s['test_mse']:.3g}" if isinstance(s.get("test_mse"), float) else "-")
        secs = s.get("seconds")
        sys.stdout.write(
            f"{info.name:<48} {s.get('status', '?'):<11} {s.get('dataset', '?'):<14} "
            f"{s.get('epochs_done', 0):>6} {acc_text:>9} "
            f"{secs if secs is not None else '-':>8}  {info.path}\n")
    interrupted = [i for i in infos if i.status == "interrupted"]
    if interrupted:
        sys.stdout.write(f"\n{len(interrupted)} interrupted (their process died); resume with "
                         "`workbench resume RUN` the ones with a checkpoint: "
                         + (", ".join(i.name for i in interrupted if i.resumable) or "none")
                         + "\n")
    return 0
