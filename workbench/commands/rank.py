"""One process of a distributed run: `python -m workbench.commands.rank SPEC.json` under torchrun.

It takes the flags `workbench train` takes (the same definitions, `run_flags.add_run_flags`).
Global rank 0 stores the run and shows its progress; when the run folder exists it tells every
rank where the run is kept (its folder, node 0's host), and at the end how the run ended and
which signal stopped it, if one did. Each node's first rank writes that to `--result-file`,
which `workbench train --nproc` reads; without one (a person's own torchrun, an sbatch script)
it says it in a line of its own, so every node's output names the run and the node keeping it.

SIGTERM (torchrun sends it to every rank when it is stopped) and SIGINT (`workbench train`
passes its own on) ask the run to stop: the ranks agree on it at their next collective and
stop together, checkpointed; a rank that is gone fails the others at that collective. A rank
ends with 0 when the run finished or was stopped, 1 when it failed, 2 for bad input, and
128 + the signal when stopped before training began.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from workbench import logs
from workbench.core.store.atomic import write_text_atomic
from workbench.core.training.callbacks import Callback

PEER_LOST = "another rank of this distributed run died or stopped answering"


class RankStopped(RuntimeError):
    """Raised in a rank stopped before its trainer existed."""


class _FaultInjection(Callback):
    """`WORKBENCH_FAULT=RANK:STEP` kills that rank at that step: how tests prove a dead rank
    ends the run cleanly on every other rank."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank, self.step = rank, step

    def on_progress(self, trainer: Any, progress: Any) -> None:
        if trainer.dist.rank == self.rank and progress.global_step >= self.step:
            os._exit(13)


class _StopOnSignal:
    """The first SIGTERM/SIGINT asks the trainer to stop (before there is one, it ends the
    rank); later ones are let be. A scheduler (SLURM's scancel) signals every process of a
    node at once, so the rank hears one stop from it, one from torchrun and one from
    `workbench train`: what ends a rank at once is theirs to do (torchrun kills its ranks
    30 s after passing a stop on, `workbench train` at its second signal)."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if self.trainer is None:
            raise RankStopped("this rank was stopped before training began")
        self.trainer.stop()


def _die_with_agent() -> None:
    """A rank whose torchrun is killed (kill -9, the OOM killer) gets SIGTERM and stops with
    the others instead of training on as an orphan (Linux; elsewhere nothing)."""
    from workbench.core.training.distributed import die_with_parent

    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # it died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


class _Node:
    """This rank's node, and what the ranks tell each other about the run."""

    def __init__(self, ctx: Any, result_file: Path | None) -> None:
        self.ctx = ctx
        self.node = int(os.environ.get("GROUP_RANK", 0))
        self.nodes = int(os.environ.get("GROUP_WORLD_SIZE", 1))
        self.lead = ctx.local_rank == 0  # speaks for the node
        self.result_file = result_file if self.lead else None
        self.kept: dict[str, Any] = {}

    def where(self, run_dir: str) -> None:
        """Learn from rank 0 where the run is kept (a collective: every rank calls it once,
        as its run starts), and say it."""
        import torch.distributed as dist

        box: list[Any] = [{"run_dir": run_dir, "node": self.node, "host": socket.gethostname()}
                          if self.ctx.is_main else None]
        dist.broadcast_object_list(box, src=0)
        self.kept = box[0]
        self.write({"status": "running"})
        if self.lead and self.nodes > 1:
            sys.stderr.write(f"workbench: node {self.node} of {self.nodes}: {self.kept_text()}"
                             "\n")

    def kept_text(self) -> str:
        k = self.kept
        if k.get("node") == self.node:
            return f"this node keeps the run, in {k.get('run_dir')}"
        return f"the run is kept by node {k.get('node')} (host {k.get('host')}) in " \
               f"{k.get('run_dir')}"

    def conclude(self, result: dict[str, Any] | None, stopped_by: int | None) -> None:
        """After a run that ended on this rank: every rank learns rank 0's result and the
        first signal that stopped any rank (a collective, as `where` is)."""
        import torch.distributed as dist

        mine = {"result": result if self.ctx.is_main else None,
                "signal": stopped_by, "node": self.node}
        every: list[Any] = [None] * self.ctx.world_size
        dist.all_gather_object(every, mine)
        final = dict(every[0]["result"] or {})
        stops = [e for e in every if e["signal"] is not None]
        if stops:
            final["stopped_by"] = {"signal": signal.Signals(stops[0]["signal"]).name,
                                   "node": stops[0]["node"]}
        self.write({**final, "final": True})
        if self.lead and self.result_file is None and self.nodes > 1:
            sys.stderr.write(f"workbench: node {self.node} of {self.nodes}: the run "
                             f"{final.get('status')}; {self.kept_text()}\n")

    def write(self, values: dict[str, Any]) -> None:
        """The node's result file, with where the run is kept."""
        if self.result_file is not None:
            record = {"run_dir": self.kept.get("run_dir"), **values, "node": self.node,
                      "nodes": self.nodes, "kept_on": {k: self.kept.get(k)
                                                       for k in ("node", "host")}}
            write_text_atomic(self.result_file, json.dumps(record))


def rank_parser() -> argparse.ArgumentParser:
    """A rank's arguments: the spec, where the run goes, and every flag of one run that
    `workbench train` takes."""
    from workbench.commands.common import add_runs_dir
    from workbench.commands.run_flags import add_run_flags

    parser = argparse.ArgumentParser(prog="workbench.commands.rank")
    parser.add_argument("spec")
    parser.add_argument("--result-file")
    add_runs_dir(parser)
    add_run_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from workbench.commands.common import CommandError
    from workbench.commands.run_flags import run_spec
    from workbench.commands.train import Display, finished_result

    args = rank_parser().parse_args(argv)
    logs.configure(verbose=os.environ.get("WORKBENCH_VERBOSE") == "1")
    try:
        spec = run_spec(args)
    except CommandError as exc:
        sys.stderr.write(f"workbench: error: {exc}\n")
        return 2
    on_signal = _StopOnSignal()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _die_with_agent()
    try:
        return _run(args, spec, on_signal, Display, finished_result)
    except RankStopped:
        if on_signal.signum is None:
            raise
        sys.stderr.write("workbench: a rank was stopped before training began\n")
        return 128 + on_signal.signum


def _run(args: argparse.Namespace, spec: Any, on_signal: _StopOnSignal, display_type: Any,
         finished_result: Any) -> int:
    from workbench.commands.common import DATA_ROOT_NAME
    from workbench.core.training.distributed import init_from_env, shutdown
    from workbench.core.training.events import RunFailed, RunFinished, RunStarted
    from workbench.core.training.loop import Trainer
    from workbench.core.workspace import Workspace

    ctx = init_from_env(spec.train.device)
    node = _Node(ctx, Path(args.result_file) if args.result_file else None)
    callbacks: list[Callback] = []
    fault = os.environ.get("WORKBENCH_FAULT")
    if fault:
        rank, step = (int(v) for v in fault.split(":"))
        callbacks.append(_FaultInjection(rank, step))
    workspace = Workspace(args.runs_dir, data_root_name=DATA_ROOT_NAME)
    trainer = Trainer(spec, runs=workspace.runs, source=workspace, dist=ctx, callbacks=callbacks,
                      threads=args.threads)
    on_signal.trainer = trainer
    display = display_type(quiet=args.quiet) if ctx.is_main else None
    events = trainer.events()
    code = 1
    ended: dict[str, Any] | None = None
    try:
        for event in events:
            if isinstance(event, RunStarted):
                node.where(event.run_dir)  # before the progress bar starts
            if display is not None:
                display.show(event)
            if isinstance(event, RunFinished):
                ended = finished_result(event)
            elif isinstance(event, RunFailed):
                if args.result_file is None:  # else `workbench train` says it, once
                    sys.stderr.write(f"workbench: rank {ctx.rank}: run failed: {event.reason}"
                                     "\n")
                node.write({"run_dir": event.run_dir or node.kept.get("run_dir"),
                            "status": "failed", "error": event.reason, "hint": event.hint})
        if ended is not None:
            node.conclude(ended, on_signal.signum)
            code = 0
    except RuntimeError as exc:  # a collective of ours met a rank that is gone
        events.close()
        if args.result_file is None:
            sys.stderr.write(f"workbench: rank {ctx.rank}: {PEER_LOST}\n")
        with contextlib.suppress(OSError):
            node.write({"status": "failed", "error": PEER_LOST, "details": str(exc)[:500]})
    finally:
        if display is not None:
            display.close()
        shutdown(together=code == 0)
    return code


if __name__ == "__main__":
    sys.exit(main())
