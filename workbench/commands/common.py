"""Pieces the subcommands share: the workspace, loading a spec with a one-line error, printing
the result."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from workbench import spec as specmod
from workbench.core.workspace import Workspace
from workbench.spec import BOUNDS, Bound, ExperimentSpec, SpecError
from workbench.spec.checks import show


class CommandError(Exception):
    """Bad input to a command: printed as one line, exit status 2."""


def add_runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", metavar="DIR", default=None,
                        help="where runs are stored (default: the per-user data folder)")


def workspace_from(args: argparse.Namespace) -> Workspace:
    """The command's workspace: its run store (`--runs-dir`) and dataset cache."""
    return Workspace(getattr(args, "runs_dir", None))


def load_spec(path: str) -> ExperimentSpec:
    try:
        return specmod.load(path)
    except SpecError as exc:
        raise CommandError(f"{path}: {exc}") from exc


def print_result(result: dict[str, Any]) -> None:
    """The last line of stdout: one JSON object that scripts can parse."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def bounded(bound: Bound) -> Callable[[str], Any]:
    """An argparse type for a number within `bound`; argparse names the flag in its one line:
    `argument --epochs: must be a whole number from 1 to 100,000, got '0'`."""

    def parse(text: str) -> int | float:
        value: int | float | None
        try:
            value = int(text) if bound.integer else float(text)
        except ValueError:  # not a number, or an integer past Python's digit limit
            value = None
        if value is None or not bound.contains(value):
            raise argparse.ArgumentTypeError(f"must be {bound.text()}, got {show(text)}")
        return value

    return parse


def spec_field(path: str) -> Callable[[str], Any]:
    """An argparse type for a flag that overrides a spec field: the field's own bound."""
    return bounded(BOUNDS[path])


def device_name(text: str) -> str:
    """An argparse type for --device: auto, cpu, cuda or cuda:N."""
    try:
        specmod.check_device("--device", text)
    except SpecError as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None
    return text


threads = spec_field("train.threads")
processes = bounded(Bound(1, 1_024, integer=True))
port = bounded(Bound(1, 65_535, integer=True))
