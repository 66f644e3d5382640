"""`workbench train SPEC.json`: run an experiment headless with a progress bar."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workbench.commands.common import (
    CommandError,
    Exit,
    add_runs_dir,
    bounded,
    port,
    print_result,
    processes,
    workspace_from,
)
from workbench.commands.run_flags import add_run_flags, run_spec
from workbench.commands.signals import SignalStop
from workbench.core.workspace import Workspace
from workbench.spec import Bound, ExperimentSpec, SpecError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train an experiment spec headless and store the run")
    p.add_argument("spec", metavar="SPEC.json", help="the experiment spec")
    add_run_flags(p)
    add_runs_dir(p)
    d = p.add_argument_group("several processes (DistributedDataParallel through torchrun)")
    d.add_argument("--nproc", type=processes, help="processes per node (GPUs, or CPU ranks)")
    d.add_argument("--nnodes", type=processes, default=1, help="machines (nodes) in the run")
    d.add_argument("--node-rank", type=bounded(Bound(0, 1_023, integer=True)),
                   help="this node's number, 0 to nnodes-1 (with --master-addr)")
    d.add_argument("--master-addr", help="the host of node 0 (with --node-rank)")
    d.add_argument("--master-port", type=port)
    d.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="the rendezvous of a cluster's nodes; they are numbered as they join")


def run(args: argparse.Namespace) -> int:
    from workbench.core.training.loop import Trainer

    spec = run_spec(args)
    workspace = workspace_from(args)
    distributed = args.nproc or args.nnodes > 1
    if distributed:
        from workbench.commands.launch import check_nodes

        check_nodes(args)
    preflight(spec, workspace)
    if distributed:
        from workbench.commands.launch import run_distributed

        return run_distributed(args)
    trainer = Trainer(spec, runs=workspace.runs, source=workspace, threads=args.threads)
    return drive(trainer, quiet=args.quiet)


def preflight(spec: ExperimentSpec, workspace: Workspace) -> None:
    """Refuse, before anything runs (exit status 2), a stack that does not fit the dataset, a
    GPU the machine lacks, and an experiment that will not fit the device's memory."""
    from workbench.core.data import DataError
    from workbench.core.memory import ensure_fits
    from workbench.core.model import check
    from workbench.core.training.loop import resolve_device

    try:
        info = workspace.info(spec.data)
        report = check(spec.model.layers, info.input_shape, info.num_classes,
                       target=info.target)
        ensure_fits(spec, report, info, resolve_device(spec.train.device))
    except (SpecError, DataError) as exc:
        raise CommandError(str(exc)) from exc


class Display:
    """What a run shows on stderr as it trains: its first line, a progress bar (none when
    `quiet`), a line per epoch, and the warnings of a run that ended but did not learn. The
    CLI's runs and the rank of a distributed run that keeps it show the same."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def show(self, event: Any) -> None:
        from tqdm import tqdm

        from workbench.core.training.events import (
            EpochEnded,
            Progress,
            RunFailed,
            RunFinished,
            RunStarted,
        )

        if isinstance(event, RunStarted):
            self.bar = tqdm(total=event.epochs * event.steps_per_epoch, disable=self.quiet,
                            initial=event.start_epoch * event.steps_per_epoch,
                            file=sys.stderr, unit="step", dynamic_ncols=True)
            self.bar.write(f"run {event.run_dir} on {event.device_name} ({event.step_kind} "
                           f"step), {event.num_params:,} parameters, "
                           f"{event.train_size:,} training samples", file=sys.stderr)
            if event.step_note:
                self.bar.write(f"note: {event.step_note}", file=sys.stderr)
        elif isinstance(event, Progress) and self.bar is not None:
            self.bar.n = event.global_step
            self.bar.set_postfix(epoch=event.epoch + 1, loss=f"{event.train_loss:.4f}",
                                 refresh=False)
            self.bar.refresh()
        elif isinstance(event, EpochEnded) and self.bar is not None:
            val = f" val_loss {event.val_loss:.4f}" if event.val_loss is not None else ""
            acc = (f" val_acc {event.val_accuracy:.4f}" if event.val_accuracy is not None
                   else "")
            self.bar.write(f"epoch {event.epoch}: train_loss {event.train_loss:.4f}{val}"
                           f"{acc} ({event.epoch_seconds:.2f} s)", file=sys.stderr)
        elif isinstance(event, RunFinished | RunFailed):
            self.close()
            for warning in event.summary.get("warnings", []) \
                    if isinstance(event, RunFinished) else ():  # it ended, but did it learn?
                sys.stderr.write(f"workbench: warning: {warning['message']}\n"
                                 f"  hint: {warning['hint']}\n")
            if isinstance(event, RunFinished):
                for line in _equation_lines(event.summary):
                    sys.stderr.write(line + "\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class StopOnSignal(SignalStop):
    """SIGINT and SIGTERM while a run trains: the first one stops it cooperatively (the step in
    flight ends, a checkpoint is written, the run is "stopped" and resumable); a second one
    exits at once (the run then shows as interrupted, resumable from its last checkpoint).
    """

    says = "stopping after this step and saving a checkpoint"

    def __init__(self, trainer: Any) -> None:
        super().__init__(trainer.stop, exit_at_once=True)
        self.trainer = trainer


def drive(trainer: Any, *, quiet: bool = False, extra: tuple[str, ...] = ()) -> int:
    """Run a trainer to its end with a progress bar; print the result as the last line, with
    the `extra` fields of the run's summary.

    Exit status (`Exit`): 0 when the run ended, 1 when it failed, 2 when it was refused before
    a run was made, 130/143 when SIGINT/SIGTERM stopped it (cooperatively, see StopOnSignal).
    """
    from workbench.core.training.events import RunFailed, RunFinished

    display = Display(quiet=quiet)
    result: dict[str, Any] = {}
    with StopOnSignal(trainer) as stopper:
        try:
            for event in trainer.events():
                display.show(event)
                if isinstance(event, RunFinished):
                    result = finished_result(event)
                    result.update({key: event.summary.get(key) for key in extra})
                elif isinstance(event, RunFailed):
                    return _failed(event, stopper.exit_code)
        except KeyboardInterrupt:  # not on the main thread: no handler was installed
            trainer.stop()
            raise
        finally:
            display.close()
    if stopper.exit_code is not None and result.get("status") == "stopped":
        sys.stderr.write(f"workbench: stopped; continue with: workbench resume "
                         f"{result['run_dir']}\n")
    print_result(result)
    return stopper.exit_code or 0


def _failed(event: Any, signal_code: int | None) -> int:
    """Report a failed run; a stop that came before training began is still a stop, and a
    refusal before any run was made (bad data, no network, a folder that cannot be written;
    not a bug, which names its details) is bad input, one line (Exit.BAD_INPUT)."""
    if signal_code is not None and event.run_dir is None:
        sys.stderr.write("workbench: stopped before training began\n")
        print_result({"run_dir": None, "status": "stopped", "error": event.reason})
        return signal_code
    if event.run_dir is None and event.details is None:
        raise CommandError(event.reason)
    sys.stderr.write(f"workbench: run failed: {event.reason}\n  hint: {event.hint}\n")
    if event.details:
        sys.stderr.write(f"  details: {event.details}\n")
    print_result({"run_dir": event.run_dir, "status": "failed", "error": event.reason,
                  "hint": event.hint, "details": event.details})
    return Exit.FAILED


def finished_result(event: Any) -> dict[str, Any]:
    s = event.summary
    out: dict[str, Any] = {
        "run_dir": event.run_dir,
        "status": s.get("status"),
        "test_loss": event.test_loss,
        "val_accuracy": s.get("val_accuracy"),
        "best_val_accuracy": event.best_val_accuracy,
        "epochs": event.epochs,
        "seconds": round(event.seconds, 3),
        "device": s.get("device"),
        "early_stopped": event.early_stopped,
        "verdict": s.get("verdict"),
        "warnings": s.get("warnings", []),
    }
    if event.test_accuracy is not None:
        out["test_accuracy"] = event.test_accuracy
    else:
        out["test_mse"] = event.test_loss
    for key in ("regression", "equation"):  # a regression's figures, a linear model's equation
        if isinstance(s.get(key), dict):
            out[key] = _brief(s[key])
    return out
def _equation_lines(summary: dict[str, Any]) -> list[str]:
    """A linear model's equation in the data's own units, as lines for the terminal."""
    equation = summary.get("equation")
    if not isinstance(equation, dict) or not isinstance(equation.get("lines"), list):
        return []
    return ["equation (in the data's own units):",
            *(f"  {line}" for line in equation["lines"] if isinstance(line, str))]


def _brief(entry: dict[str, Any]) -> dict[str, Any]:
    """A summary entry without its long lists (the plot's points, every coefficient of an
    image): what a result line should hold."""
    return {k: v for k, v in entry.items()
            if not (isinstance(v, list | dict) and len(v) > 20)}
