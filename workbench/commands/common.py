"""Pieces the subcommands share: the exit statuses, the workspace, loading a spec with a
one-line error, printing the result (stopping on a signal is in signals.py)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Any

from workbench import spec as specmod
from workbench.core.workspace import Workspace
from workbench.spec import BOUNDS, Bound, ExperimentSpec, SpecError
from workbench.spec.checks import show


class Exit(IntEnum):
    """The exit status of every command, one per kind of ending (the README's table).

    OK: done. FAILED: the work began and failed (a run that diverged or ran out of memory, a
    disk that filled while training, a bug). BAD_INPUT: refused in one line before anything
    changed (a bad spec, flag, file, folder, dataset or run; no network for a download; a
    folder that cannot be written). 128 + the signal: stopped on request after the step in
    flight, what was made whole or recorded as stopped (SIGINT 130, SIGTERM 143; SIGPIPE 141:
    whoever read the output went away).
    """

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    SIGINT = 128 + signal.SIGINT
    SIGPIPE = 128 + signal.SIGPIPE
    SIGTERM = 128 + signal.SIGTERM


class CommandError(Exception):
    """Bad input to a command: printed as one line, exit status 2 (Exit.BAD_INPUT)."""


def add_runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", metavar="DIR", default=None,
                        help="where runs are stored (default: the per-user data folder)")


RUN_HELP = ("a run: its name as `workbench runs` lists it, a unique start of that name, "
            "'latest', or its folder's path")


def add_run_arg(parser: argparse.ArgumentParser, what: str) -> None:
    """The positional RUN of a command that works on a stored run (its `--runs-dir`, added by
    the command, says where names are looked up)."""
    parser.add_argument("run_dir", metavar="RUN", help=f"{what}: {RUN_HELP}")


def find_run(args: argparse.Namespace) -> Path:
    """The run folder `args.run_dir` names: a folder holding a run, else a run in the store
    (`--runs-dir`, else the per-user one) by folder name, unique prefix, experiment name or
    'latest'. Anything else is a one-line error that says where it looked."""
    text = str(args.run_dir)
    if not text or len(text) > 4_096 or "\0" in text:
        raise CommandError(f"RUN must be a run's name or folder, got {show(text)}")
    path = Path(text)
    if (path / "spec.json").is_file() or (path / "summary.json").is_file():
        return path
    store = workspace_from(args).runs
    infos = store.list()
    named = [i for i in infos if i.name == text]
    if not named and text == "latest":
        named = [i for i in infos if i.error is None][:1]
    if not named:
        named = [i for i in infos if i.name.startswith(text)]
    if not named:
        named = [i for i in infos if i.error is None and i.summary.get("name") == text][:1]
    if len(named) == 1:
        return named[0].path
    if named:
        shown = ", ".join(i.name for i in named[:5]) + (" …" if len(named) > 5 else "")
        raise CommandError(f"{show(text)} matches {len(named)} runs ({shown}); give more of "
                           "the name")
    where = "not a run folder (no spec.json)" if path.is_dir() else f"no run in {store.root}"
    raise CommandError(f"{show(text)}: {where} (`workbench runs` lists them; "
                       "--runs-dir looks elsewhere)")


def workspace_from(args: argparse.Namespace) -> Workspace:
    """The command's workspace: its run store (`--runs-dir`) and dataset cache. A runs folder
    that cannot hold runs (a file, a device) is refused in one line; a dataset it cannot
    download names the way to give the files: `--data-root` where the command takes it, else
    the spec's data.root."""
    name = DATA_ROOT_NAME if hasattr(args, "data_root") else "data.root in the run's spec.json"
    return checked_workspace(getattr(args, "runs_dir", None), data_root_name=name)


DATA_ROOT_NAME = "--data-root (data.root)"


def add_data_root(parser: argparse.ArgumentParser) -> None:
    """`--data-root DIR`, for every command that reads an experiment's data."""
    parser.add_argument("--data-root", metavar="DIR",
                        help="override data.root: the folder that holds the dataset's files "
                             "(e.g. MNIST's four *-ubyte.gz), for a machine without internet")


def with_data_root(spec: ExperimentSpec, args: argparse.Namespace) -> ExperimentSpec:
    """`spec` with `--data-root` applied, when given: a folder, or a one-line error."""
    root = getattr(args, "data_root", None)
    if root is None:
        return spec
    if not root or "\0" in root or not Path(root).is_dir():
        raise CommandError(f"--data-root: {show(root)} is not a folder")
    try:
        return spec.with_value("data.root", root)
    except SpecError as exc:
        raise CommandError(str(exc)) from exc


def checked_workspace(runs_dir: str | Path | None, *,
                      data_root_name: str = DATA_ROOT_NAME) -> Workspace:
    """A workspace on `runs_dir` (None: the per-user one), refused in one line when that is
    not a folder, or not where a folder can be made."""
    from workbench.core.store.runs import RunError

    workspace = Workspace(runs_dir, data_root_name=data_root_name)
    try:
        workspace.runs.check()
    except RunError as exc:
        raise CommandError(f"--runs-dir: {exc}" if runs_dir is not None else str(exc)) \
            from None
    return workspace


def writable_workspace(runs_dir: str | Path | None) -> Workspace:
    """A workspace whose store new runs can be written to, checked before anything is made."""
    from workbench.core.store.runs import RunError

    workspace = checked_workspace(runs_dir)
    try:
        workspace.runs.check_writable()
    except RunError as exc:
        raise CommandError(str(exc)) from None
    return workspace


def load_data(workspace: Workspace, specs: list[ExperimentSpec]) -> None:
    """Load each experiment's data into the workspace's cache before anything runs, so that
    a bad dataset (a damaged file, a missing folder, no network for a download) is refused in
    one line, as `train` refuses it, instead of failing every run; the runs then find it
    there."""
    from workbench.core.data import DataError

    for spec in specs:
        try:
            workspace.splits(spec.data, spec.train.seed)
        except DataError as exc:
            raise CommandError(str(exc)) from exc


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
