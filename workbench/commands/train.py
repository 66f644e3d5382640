"""`workbench train SPEC.json`: run an experiment headless with a progress bar."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from workbench.commands.common import (
    CommandError,
    Exit,
    SignalStop,
    add_runs_dir,
    bounded,
    device_name,
    load_spec,
    port,
    print_result,
    processes,
    spec_field,
    threads,
    workspace_from,
)
from workbench.core.workspace import Workspace
from workbench.spec import Bound, ExperimentSpec, SpecError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train an experiment spec headless and store the run")
    p.add_argument("spec", metavar="SPEC.json", help="the experiment spec")
    p.add_argument("--epochs", type=spec_field("train.epochs"), help="override train.epochs")
    p.add_argument("--device", type=device_name, metavar="{auto,cpu,cuda,cuda:N}",
                   help="override train.device")
    p.add_argument("--seed", type=spec_field("train.seed"), help="override train.seed")
    p.add_argument("--data-root", metavar="DIR",
                   help="override data.root: the folder that holds the dataset's files "
                        "(e.g. MNIST's four *-ubyte.gz), for a machine without internet")
    p.add_argument("--threads", type=threads,
                   help="CPU threads for PyTorch (default: the spec's train.threads, else the "
                        "physical cores but one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_runs_dir(p)
    d = p.add_argument_group("several processes (DistributedDataParallel through torchrun)")
    d.add_argument("--nproc", type=processes, help="processes per node (GPUs, or CPU ranks)")
    d.add_argument("--nnodes", type=processes, default=1)
    d.add_argument("--node-rank", type=bounded(Bound(0, 1_023, integer=True)))
    d.add_argument("--master-addr")
    d.add_argument("--master-port", type=port)
    d.add_argument("--rdzv-endpoint", help="HOST:PORT of the rendezvous (clusters)")


def run(args: argparse.Namespace) -> int:
    from workbench.core.training.loop import Trainer

    spec = load_spec(args.spec)
    if args.data_root is not None and not os.path.isdir(args.data_root):
        raise CommandError(f"--data-root: {args.data_root} is not a folder")
    try:
        for field, value in (("train.epochs", args.epochs), ("train.device", args.device),
                             ("train.seed", args.seed), ("data.root", args.data_root)):
            if value is not None:
                spec = spec.with_value(field, value)
    except SpecError as exc:
        raise CommandError(str(exc)) from exc
    workspace = workspace_from(args)
    preflight(spec, workspace)
    if args.nproc or args.nnodes > 1:
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
        report = check(spec.model.layers, info.input_shape, info.num_classes)
        ensure_fits(spec, report, info, resolve_device(spec.train.device))
    except (SpecError, DataError) as exc:
        raise CommandError(str(exc)) from exc


def run_distributed(args: argparse.Namespace) -> int:
    """Start torchrun; a rank that dies ends the run on every rank with one clear error.

    torchrun runs in its own session and dies with this process (SIGTERM from the kernel when
    this one goes, however it goes), so its ranks never outlive the command. The first
    SIGINT/SIGTERM is passed on as SIGTERM: the ranks stop together, checkpointed (exit
    130/143); a second kills torchrun and every rank at once.
    """
    import contextlib
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    from workbench.core.store.runs import Run, RunError
    from workbench.core.training.distributed import die_with_parent, kill_tree, launch_command

    extra = []
    for flag, value in (("--epochs", args.epochs), ("--device", args.device),
                        ("--seed", args.seed), ("--data-root", args.data_root)):
        if value is not None:
            extra += [flag, str(value)]
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = launch_command(
            str(Path(args.spec).resolve()), args.nproc or 1, nnodes=args.nnodes,
            node_rank=args.node_rank, master_addr=args.master_addr,
            master_port=args.master_port, rdzv_endpoint=args.rdzv_endpoint,
            runs_dir=str(workspace_from(args).runs.root),
            extra=[*extra, "--result-file", str(result_file)])
        sys.stderr.write("workbench: " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent)
        with _ForwardSignals(proc, kill_tree) as forward:
            code = proc.wait()
        result: dict[str, Any] = {}
        if result_file.exists():
            with contextlib.suppress(OSError, ValueError):
                result = json.loads(result_file.read_text())
    if forward.exit_code is not None and result.get("status") in ("stopped", "finished"):
        print_result(result)
        return forward.exit_code
    if code == 0 and result.get("status") != "failed" and "test_loss" in result:
        print_result(result)
        return 0
    run_dir = result.get("run_dir")
    if forward.exit_code is not None:  # stopped, but not cleanly: the run shows interrupted
        sys.stderr.write("workbench: distributed run stopped before it could save\n")
        print_result({"run_dir": run_dir, "status": "stopped",
                      "error": "stopped before the ranks could save"})
        return forward.exit_code
    reason = result.get("error") or f"a rank exited with status {code}; every rank was stopped"
    if run_dir:
        with contextlib.suppress(OSError, RunError):  # a run folder that is gone: still say why
            Run(Path(run_dir)).update_summary(status="failed", error=reason)
    sys.stderr.write(f"workbench: distributed run failed: {reason}\n")
    print_result({"run_dir": run_dir, "status": "failed", "error": reason})
    return 1


class _ForwardSignals:
    """While torchrun runs: the first SIGINT/SIGTERM becomes its SIGTERM (a cooperative stop
    of every rank); a second kills it and its ranks at once."""

    def __init__(self, proc: Any, kill_tree: Any) -> None:
        self.proc, self.kill_tree = proc, kill_tree
        self.signal: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _ForwardSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:
            self.kill_tree(self.proc.pid)
            sys.stderr.write("\nworkbench: every rank stopped at once\n")
            os._exit(128 + signum)
        self.signal = signum
        self.proc.send_signal(signal.SIGTERM)
        sys.stderr.write(f"\nworkbench: {signal.Signals(signum).name}: stopping every rank "
                         "after its step and saving a checkpoint (again to quit at once)\n")

    @property
    def exit_code(self) -> int | None:
        return None if self.signal is None else 128 + self.signal


class StopOnSignal(SignalStop):
    """SIGINT and SIGTERM while a run trains: the first one stops it cooperatively (the step in
    flight ends, a checkpoint is written, the run is "stopped" and resumable); a second one
    exits at once (the run then shows as interrupted, resumable from its last checkpoint).
    """

    SAYS = "stopping after this step and saving a checkpoint"

    def __init__(self, trainer: Any) -> None:
        super().__init__(trainer.stop, exit_at_once=True)
        self.trainer = trainer


def drive(trainer: Any, *, quiet: bool = False, extra: tuple[str, ...] = ()) -> int:
    """Run a trainer to its end with a progress bar; print the result as the last line, with
    the `extra` fields of the run's summary.

    Exit status (`Exit`): 0 when the run ended, 1 when it failed, 2 when it was refused before
    a run was made, 130/143 when SIGINT/SIGTERM stopped it (cooperatively, see StopOnSignal).
    """
    from tqdm import tqdm

    from workbench.core.training.events import (
        EpochEnded,
        Progress,
        RunFailed,
        RunFinished,
        RunStarted,
    )

    bar = None
    result: dict[str, Any] = {}
    with StopOnSignal(trainer) as stopper:
        try:
            for event in trainer.events():
                if isinstance(event, RunStarted):
                    bar = tqdm(total=event.epochs * event.steps_per_epoch, disable=quiet,
                               initial=event.start_epoch * event.steps_per_epoch,
                               file=sys.stderr, unit="step", dynamic_ncols=True)
                    bar.write(f"run {event.run_dir} on {event.device_name} ({event.step_kind} "
                              f"step), {event.num_params:,} parameters, "
                              f"{event.train_size:,} training samples", file=sys.stderr)
                    if event.step_note:
                        bar.write(f"note: {event.step_note}", file=sys.stderr)
                elif isinstance(event, Progress) and bar is not None:
                    bar.n = event.global_step
                    bar.set_postfix(epoch=event.epoch + 1, loss=f"{event.train_loss:.4f}",
                                    refresh=False)
                    bar.refresh()
                elif isinstance(event, EpochEnded) and bar is not None:
                    val = (f" val_loss {event.val_loss:.4f}" if event.val_loss is not None
                           else "")
                    acc = (f" val_acc {event.val_accuracy:.4f}"
                           if event.val_accuracy is not None else "")
                    bar.write(f"epoch {event.epoch}: train_loss {event.train_loss:.4f}{val}"
                              f"{acc} ({event.epoch_seconds:.2f} s)", file=sys.stderr)
                elif isinstance(event, RunFinished):
                    result = finished_result(event)
                    result.update({key: event.summary.get(key) for key in extra})
                    for warning in result["warnings"]:  # it ended, but did it learn?
                        sys.stderr.write(f"workbench: warning: {warning['message']}\n"
                                         f"  hint: {warning['hint']}\n")
                elif isinstance(event, RunFailed):
                    if bar is not None:
                        bar.close()
                        bar = None
                    return _failed(event, stopper.exit_code)
        except KeyboardInterrupt:  # not on the main thread: no handler was installed
            trainer.stop()
            raise
        finally:
            if bar is not None:
                bar.close()
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
    return out
