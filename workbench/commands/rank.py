"""One process of a distributed run: `python -m workbench.commands.rank SPEC.json` under torchrun.

Rank 0 stores the run and writes the result (and early on its run folder) to `--result-file`,
which `workbench train --nproc` reads. SIGTERM (torchrun sends it to every rank when it is
stopped, or when another rank died) and SIGINT ask the run to stop: the ranks agree on it at
their next collective and stop together, checkpointed (or, when a rank is gone, fail with a
clear error at that collective); a second signal stops the rank at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from workbench import spec as specmod
from workbench.core.store.atomic import write_text_atomic
from workbench.core.training.callbacks import Callback
from workbench.spec import SpecError


class RankStopped(RuntimeError):
    """Raised in a rank when torchrun stops it because another rank failed."""


class _FaultInjection(Callback):
    """`WORKBENCH_FAULT=RANK:STEP` kills that rank at that step: how tests prove a dead rank
    ends the run cleanly on every other rank."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank, self.step = rank, step

    def on_progress(self, trainer: Any, progress: Any) -> None:
        if trainer.dist.rank == self.rank and progress.global_step >= self.step:
            os._exit(13)


class _StopOnSignal:
    """The first SIGTERM/SIGINT asks the trainer to stop; a second ends this rank."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.signals = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.signals += 1
        if self.trainer is None or self.signals > 1:
            raise RankStopped("this rank was stopped (by torchrun, after another rank failed "
                              "or the run was stopped)")
        self.trainer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbench.commands.rank")
    parser.add_argument("spec")
    parser.add_argument("--runs-dir")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--device")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--result-file")
    args = parser.parse_args(argv)

    from workbench.core.training.distributed import init_from_env, shutdown
    from workbench.core.training.events import RunFailed, RunFinished, RunStarted
    from workbench.core.training.loop import Trainer
    from workbench.core.workspace import Workspace

    try:
        spec = specmod.load(args.spec)
        for field, value in (("train.epochs", args.epochs), ("train.device", args.device),
                             ("train.seed", args.seed)):
            if value is not None:
                spec = spec.with_value(field, value)
    except SpecError as exc:
        sys.stderr.write(f"workbench: error: {args.spec}: {exc}\n")
        return 2
    on_signal = _StopOnSignal()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctx = init_from_env(spec.train.device)
    callbacks: list[Callback] = []
    fault = os.environ.get("WORKBENCH_FAULT")
    if fault:
        rank, step = (int(v) for v in fault.split(":"))
        callbacks.append(_FaultInjection(rank, step))
    result_file = Path(args.result_file) if args.result_file and ctx.is_main else None
    workspace = Workspace(args.runs_dir)
    trainer = Trainer(spec, runs=workspace.runs, source=workspace, dist=ctx, callbacks=callbacks)
    on_signal.trainer = trainer
    code = 0
    try:
        for event in trainer.events():
            if isinstance(event, RunStarted) and result_file:
                write_text_atomic(result_file, json.dumps({"run_dir": event.run_dir}))
            elif isinstance(event, RunFinished) and result_file:
                from workbench.commands.train import finished_result

                write_text_atomic(result_file, json.dumps(finished_result(event)))
            elif isinstance(event, RunFailed):
                sys.stderr.write(f"workbench: rank {ctx.rank}: run failed: {event.reason}\n")
                if result_file:
                    write_text_atomic(result_file, json.dumps(
                        {"run_dir": event.run_dir, "status": "failed", "error": event.reason,
                         "hint": event.hint}))
                code = 1
    finally:
        shutdown(together=code == 0)
    return code


if __name__ == "__main__":
    sys.exit(main())
