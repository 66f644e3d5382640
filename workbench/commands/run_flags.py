"""The flags of one run, one definition for `train`, its ranks and the nodes of a cluster:
`add_run_flags` declares them, `rank_flags` gives back those a command was given (as every
rank of a distributed run takes them, so a new flag cannot be dropped on the way), and
`run_spec` applies them to the spec file."""

from __future__ import annotations

import argparse

from workbench.commands.common import (
    CommandError,
    add_data_root,
    device_name,
    load_spec,
    spec_field,
    threads,
    with_data_root,
)
from workbench.spec import ExperimentSpec, SpecError


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of one run, which `train` takes and passes on to every rank of a distributed
    run (`rank_flags`): one definition, so a new flag cannot be dropped on the way."""
    parser.add_argument("--epochs", type=spec_field("train.epochs"),
                        help="override train.epochs")
    parser.add_argument("--device", type=device_name, metavar="{auto,cpu,cuda,cuda:N}",
                        help="override train.device")
    parser.add_argument("--seed", type=spec_field("train.seed"), help="override train.seed")
    add_data_root(parser)
    parser.add_argument("--threads", type=threads,
                        help="CPU threads for PyTorch (default: the spec's train.threads, else "
                             "the physical cores but one)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        dest="sets", help="set a field of the spec, e.g. data.target=quantity "
                                          "or optim.lr=0.01; repeat")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def rank_flags(args: argparse.Namespace) -> list[str]:
    """The run flags given to this command, as each rank of a distributed run takes them."""
    probe = argparse.ArgumentParser(add_help=False)
    add_run_flags(probe)
    out: list[str] = []
    for action in probe._actions:
        value = getattr(args, action.dest, None)
        if value is None or value is False or value == []:
            continue
        flag = action.option_strings[-1]
        if isinstance(value, list):  # a repeated flag (--set), each given again
            out += [part for item in value for part in (flag, str(item))]
        else:
            out += [flag] if value is True else [flag, str(value)]
    return out


def run_spec(args: argparse.Namespace) -> ExperimentSpec:
    """The spec file with the run flags applied (`--set FIELD=VALUE` first, then the named
    flags), checked; a one-line CommandError if not."""
    from workbench.core.fields import set_field
    from workbench.core.tools.fork import ForkError, parse_sets

    spec = load_spec(args.spec)
    sets = getattr(args, "sets", [])
    try:
        for field, value in parse_sets(sets).items():
            spec = set_field(spec, field, value)
        for field, value in (("train.epochs", args.epochs), ("train.device", args.device),
                             ("train.seed", args.seed)):
            if value is not None:
                spec = spec.with_value(field, value)
    except ForkError as exc:
        raise CommandError(str(exc)) from exc
    except SpecError as exc:
        raise CommandError(f"--set: {exc}" if sets else str(exc)) from exc
    return with_data_root(spec, args)
