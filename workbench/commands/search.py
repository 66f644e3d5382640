"""`workbench search SPEC.json --space space.json --trials N`: a hyperparameter search with
Optuna (TPE, with pruning of hopeless trials), kept in a study that survives crashes.

Run it again with the same files (or `--study`) to resume; start it on several machines with
one `--storage` URL to share the work. Prints a line per trial on stderr and, as its last
line, one JSON object with the best trial.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workbench.commands.common import (
    CommandError,
    add_data_root,
    add_runs_dir,
    bounded,
    load_spec,
    print_result,
    spec_field,
    threads,
    with_data_root,
    workspace_from,
)
from workbench.commands.signals import SignalStop
from workbench.spec import Bound


def add_parser(sub: Any) -> None:
    p = sub.add_parser("search", help="search hyperparameters with Optuna (needs the [search] "
                                      "extra); resumable")
    p.add_argument("spec", metavar="SPEC.json", help="the experiment spec to start from")
    p.add_argument("--space", required=True, metavar="SPACE.json",
                   help="the fields to search and their ranges (see the README)")
    p.add_argument("--trials", type=bounded(Bound(1, 100_000, integer=True)), required=True,
                   metavar="N",
                   help="finished trials the study should reach (counting earlier ones)")
    p.add_argument("--storage", metavar="URL",
                   help="an SQLAlchemy database URL (default: sqlite in the runs folder)")
    p.add_argument("--study", metavar="NAME", help="the study's name (default: from the spec "
                                                   "and the space, so a rerun resumes)")
    p.add_argument("--seed", type=spec_field("train.seed"),
                   help="the sampler's seed (default: random)")
    p.add_argument("--threads", type=threads, help="CPU threads for PyTorch")
    add_data_root(p)
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 when the study has its trials (and one completed), 1 when none
    completed or this process gave up after trials failing in a row, 128 + the signal when
    SIGINT/SIGTERM stopped it (the trial in flight ends and is run again by the next search)."""
    try:
        from workbench.core.tools.search import SearchError, SearchRunner, load_space
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    from workbench.commands.train import preflight

    spec = with_data_root(load_spec(args.spec), args)
    workspace = workspace_from(args)
    preflight(spec, workspace)
    try:
        space = load_space(args.space, spec)
        runner = SearchRunner(spec, space, trials=args.trials, storage=args.storage,
                              study=args.study, runs=workspace.runs, source=workspace,
                              threads=args.threads, on_event=_print_event,
                              sampler_seed=args.seed)
        with SignalStop(runner.stop, says="stopping the search after the trial's step",
                        exit_at_once=True) as stopper:
            result = runner.run()
    except SearchError as exc:
        raise CommandError(str(exc)) from exc
    best = result.best
    if result.gave_up:
        sys.stderr.write(f"workbench: search ended: {result.gave_up}\n")
    if best is None:
        sys.stderr.write("no trial completed\n")
    else:
        sys.stderr.write(f"best: trial {best.number}, {result.objective} {best.value:.4f} "
                         f"({_params(best.params)})\n  run {best.run_dir}\n")
    if stopper.signal is not None:
        sys.stderr.write(f"workbench: stopped; the trial in flight runs again when the search "
                         f"is resumed (the same command, or --study {result.study})\n")
    print_result(result.to_dict())
    if stopper.signal is not None:
        return 128 + stopper.signal
    return 0 if best is not None and not result.gave_up else 1


def _params(params: dict[str, Any]) -> str:
    from workbench.core.tools.search import shown_params

    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in shown_params(params).items())


def _print_event(event: Any) -> None:
    from workbench.core.tools.search import StudyOpened, TrialEnded, TrialEvent, TrialStarted
    from workbench.core.training.events import RunStarted

    if isinstance(event, StudyOpened):
        done = sum(r.state in ("complete", "pruned") for r in event.rows)
        sys.stderr.write(f"study {event.name} in {event.storage}: {event.direction} "
                         f"{event.objective}; {done} of {event.target} trials finished\n")
    elif isinstance(event, TrialStarted):
        sys.stderr.write(f"trial {event.number}: {_params(event.params)}\n")
    elif isinstance(event, TrialEvent) and isinstance(event.event, RunStarted):
        sys.stderr.write(f"trial {event.number} runs in {event.event.run_dir}\n")
    elif isinstance(event, TrialEnded):
        row = event.row
        value = "-" if row.value is None else f"{row.value:.4f}"
        why = f": {row.error}" if row.error else ""
        sys.stderr.write(f"trial {row.number} {row.state} after {row.epochs} epochs, "
                         f"{value}{why}\n")
    sys.stderr.flush()
