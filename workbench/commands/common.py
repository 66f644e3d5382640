"""Pieces the subcommands share: loading a spec with a one-line error, printing the result."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from workbench import spec as specmod
from workbench.core.store.runs import RunStore
from workbench.spec import ExperimentSpec, SpecError


class CommandError(Exception):
    """Bad input to a command: printed as one line, exit status 2."""


def add_runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", metavar="DIR", default=None,
                        help="where runs are stored (default: the per-user data folder)")


def store_from(args: argparse.Namespace) -> RunStore:
    return RunStore(args.runs_dir)


def load_spec(path: str) -> ExperimentSpec:
    try:
        return specmod.load(path)
    except SpecError as exc:
        raise CommandError(f"{path}: {exc}") from exc


def print_result(result: dict[str, Any]) -> None:
    """The last line of stdout: one JSON object that scripts can parse."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def int_at_least(lo: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= `lo`, refused with "must be <what>" otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = lo - 1
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1, "a positive integer")
