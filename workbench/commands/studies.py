"""`workbench studies`: list the hyperparameter searches kept in a storage (by default the
SQLite file in the runs folder), with their trials and best value; resume one with
`workbench search SPEC.json --space SPACE.json --study NAME`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from workbench.commands.common import CommandError, add_runs_dir, workspace_from


def add_parser(sub: Any) -> None:
    p = sub.add_parser("studies", help="list hyperparameter searches (needs the [search] "
                                       "extra)")
    p.add_argument("--storage", metavar="URL",
                   help="an SQLAlchemy database URL (default: sqlite in the runs folder)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    try:
        from workbench.core.tools.search import (
            SearchError,
            default_storage,
            list_studies,
            shown_url,
        )
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    url = args.storage or default_storage(workspace_from(args).runs)
    try:
        studies = list_studies(url)
    except SearchError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        for study in studies:
            sys.stdout.write(json.dumps(asdict(study)) + "\n")
        return 0
    if not studies:
        sys.stdout.write(f"no studies in {shown_url(url)}\n")
        return 0
    count = f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'}"
    sys.stdout.write(f"{count} in {shown_url(url)}; resume one with "
                     "`workbench search SPEC.json --space SPACE.json --study NAME`\n")
    for study in studies:
        sys.stdout.write(f"{study.name:<40} {study.direction:<8} {study.line()}\n")
    return 0
