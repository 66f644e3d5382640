"""`workbench train --nproc N [--nnodes M ...]`: this node's part of a distributed run.

Each node runs the same command (its own `--node-rank` with `--master-addr`, or the same
`--rdzv-endpoint`, where torchrun numbers the nodes as they join). The command starts torchrun's
agent (`commands.agent`) and its ranks (`commands.rank`), and ends as a scheduler needs it:

- every node exits 0 when the run finished, 1 when it failed, and 128 + the signal (130, 143)
  when a signal to any node stopped it, each with one line that names the run's folder and the
  node keeping it (node 0, global rank 0's); the node keeping it shows the progress;
- a node that dies or is killed fails the others at their next collective (the next step, or
  the next report of a rank that is loading: within `distributed.TIMEOUT`, two minutes, when
  a node stops answering without closing its connections), each with one line, and nothing
  is left running: torchrun dies with this command, and each rank with its torchrun;
- the first SIGINT/SIGTERM goes to this node's ranks, which stop with every other node's at the
  same step, checkpointed; a second kills this node's torchrun and ranks at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from workbench.commands.common import CommandError, print_result, workspace_from
from workbench.commands.signals import SignalStop

log = logging.getLogger(__name__)

_ENDPOINT = re.compile(r"^[A-Za-z0-9_.:\[\]-]{1,253}:(\d{1,5})$")


def check_nodes(args: argparse.Namespace) -> None:
    """Refuse, in one line, a node's options that cannot make a run."""
    nnodes = args.nnodes
    if args.rdzv_endpoint is not None:
        m = _ENDPOINT.match(args.rdzv_endpoint)
        if not m or not 1 <= int(m.group(1)) <= 65_535:
            raise CommandError(f"--rdzv-endpoint: must be HOST:PORT, got "
                               f"{args.rdzv_endpoint[:80]!r}")
        if args.master_addr is not None:
            raise CommandError("--master-addr: give either --rdzv-endpoint or --master-addr "
                               "with --node-rank, not both")
    elif nnodes > 1:
        if args.master_addr is None:
            raise CommandError(f"--nnodes {nnodes}: give --rdzv-endpoint HOST:PORT (the nodes "
                               "are numbered as they join) or --master-addr HOST with "
                               "--node-rank N")
        if args.node_rank is None:
            raise CommandError(f"--node-rank: give this node's number, 0 to {nnodes - 1}, "
                               "with --master-addr")
    if args.node_rank is not None and args.node_rank >= nnodes:
        raise CommandError(f"--node-rank: must be below --nnodes ({nnodes}), got "
                           f"{args.node_rank}")


def run_distributed(args: argparse.Namespace) -> int:
    """Start this node's torchrun and ranks; say how the run ended; its exit status."""
    from workbench.commands.agent import REPORT_ENV
    from workbench.commands.run_flags import rank_flags
    from workbench.core.training.distributed import die_with_parent, launch_command

    c10d = args.rdzv_endpoint is not None
    if c10d and args.node_rank is not None:
        sys.stderr.write("workbench: note: with --rdzv-endpoint torchrun numbers the nodes as "
                         "they join and ignores --node-rank; the line naming the run says "
                         "which node keeps it\n")
    with tempfile.TemporaryDirectory(prefix="workbench-node-") as tmp:
        result_file, report_file = Path(tmp) / "result.json", Path(tmp) / "agent.json"
        cmd = launch_command(
            str(Path(args.spec).resolve()), args.nproc or 1, nnodes=args.nnodes,
            node_rank=None if c10d else args.node_rank, master_addr=args.master_addr,
            master_port=args.master_port, rdzv_endpoint=args.rdzv_endpoint,
            runs_dir=str(workspace_from(args).runs.root), agent=True,
            extra=[*rank_flags(args), "--result-file", str(result_file)])
        log.info("distributed run: %s", " ".join(cmd))
        env = {**os.environ, REPORT_ENV: str(report_file)}
        if getattr(args, "verbose", False):
            env["WORKBENCH_VERBOSE"] = "1"
        else:  # PyTorch's C++ warnings (a lost peer's socket, with 30 stack frames) stay out
            env.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
        proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent,
                                env=env)
        with ForwardSignals(proc) as forward:
            code = proc.wait()
        result, report = _read(result_file), _read(report_file)
    return conclude(result, report, code, forward.signal, nodes=args.nnodes)


def _read(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        value = json.loads(path.read_text())
        if isinstance(value, dict):
            return value
    return {}


INTERNAL = ("final",)


def conclude(result: dict[str, Any], report: dict[str, Any], code: int,
             own_signal: int | None, *, nodes: int = 1) -> int:
    """One line on stderr and the result as the last line of stdout; the exit status: 0 when
    the run finished, 1 when it failed, 128 + the signal that stopped it (this node's own, or
    the one another node was sent)."""
    public = {k: v for k, v in result.items() if k not in INTERNAL}
    run_dir = result.get("run_dir")
    where = kept_text(result)
    if result.get("final") and result.get("status") in ("finished", "stopped") and (
            code == 0 or own_signal is not None):
        if result["status"] == "stopped":
            by = result.get("stopped_by") or {}
            signum = own_signal or _signum(by.get("signal")) or signal.SIGTERM
            origin = f" on node {by['node']}" if nodes > 1 and "node" in by else ""
            sys.stderr.write(f"workbench: stopped by {signal.Signals(signum).name}{origin}; "
                             f"{where}; continue with: workbench resume {run_dir}\n")
            print_result(public)
            return 128 + signum
        if nodes > 1:
            sys.stderr.write(f"workbench: the run finished on {nodes} nodes; {where}\n")
        print_result(public)
        return 128 + own_signal if own_signal is not None else 0
    if own_signal is not None:  # stopped, but not cleanly: the run shows interrupted
        sys.stderr.write(f"workbench: distributed run stopped before it could save; {where}\n")
        print_result({**public, "run_dir": run_dir, "status": "stopped",
                      "error": "stopped before the ranks could save"})
        return 128 + own_signal
    reason = failure_reason(result, report, code)
    if run_dir and _keeps_the_run(result):
        _record_failure(Path(run_dir), reason)
    sys.stderr.write(f"workbench: distributed run failed: {reason}; {where}\n")
    print_result({**public, "run_dir": run_dir, "status": "failed", "error": reason})
    return 1


def _signum(name: Any) -> int | None:
    try:
        return int(signal.Signals[name]) if isinstance(name, str) else None
    except KeyError:
        return None


def kept_text(result: dict[str, Any]) -> str:
    """Where the run is kept, as one node's line says it."""
    run_dir = result.get("run_dir")
    kept = result.get("kept_on") or {}
    if not run_dir:
        return "no run folder was made"
    if kept.get("node") is None or result.get("nodes", 1) == 1:
        return f"the run is in {run_dir}"
    if _keeps_the_run(result):
        return f"this node ({result.get('node')}) keeps the run, in {run_dir}"
    return (f"this is node {result.get('node')}; the run is kept by node {kept['node']} "
            f"(host {kept.get('host')}) in {run_dir}")


def _keeps_the_run(result: dict[str, Any]) -> bool:
    kept = result.get("kept_on") or {}
    return kept.get("node") is None or kept.get("node") == result.get("node")


def failure_reason(result: dict[str, Any], report: dict[str, Any], code: int) -> str:
    """Why the run failed, on one line: the rank that failed first with its real exit status
    or signal, else what this node's first rank said, else how torchrun ended. A rank that
    reported its run's failure (exit 1) or was stopped by torchrun (SIGTERM, SIGINT) after
    another failed is a consequence; any other status is the likelier cause."""
    error = result.get("error") if result.get("status") == "failed" else None
    failures = report.get("failures") or []
    if failures:
        def consequence(f: dict[str, Any]) -> bool:
            return f.get("exitcode") == 1 or f.get("signal") in ("SIGTERM", "SIGINT")

        first = sorted(failures, key=lambda f: (consequence(f), f.get("timestamp", 0),
                                                f.get("rank", 0)))[0]
        if first.get("exitcode") == 1 and error:
            return str(error)
        how = (f"was killed by {first['signal']}" if first.get("signal")
               else f"exited with status {first.get('exitcode')}")
        return f"rank {first.get('rank')} {how}"
    if error:
        return str(error)
    if report.get("error"):
        return f"torchrun failed: {report['error']}"
    if report.get("signal"):
        return f"torchrun was stopped by {report['signal']}"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"torchrun was killed by {signal.Signals(-code).name}"
    return f"torchrun exited with status {code}"


def _record_failure(run_dir: Path, reason: str) -> None:
    """A run whose rank 0 could not say it failed (killed) is marked failed here, with why."""
    from workbench.core.store.runs import Run, RunError

    with contextlib.suppress(OSError, RunError):  # a folder that is gone: still say why
        run = Run(run_dir)
        if run.summary().get("status") == "running":
            run.update_summary(status="failed", error=reason)


class ForwardSignals(SignalStop):
    """While torchrun runs: the first SIGINT/SIGTERM goes to this node's ranks (which stop
    with every other node's, checkpointed; torchrun itself, before its ranks exist); a second
    kills torchrun and its ranks at once."""

    says = "stopping every rank after its step and saving a checkpoint"
    at_once_text = "every rank of this node stopped at once"

    def __init__(self, proc: Any) -> None:
        super().__init__(exit_at_once=True)
        self.target = proc

    def stop(self, signum: int) -> None:
        from workbench.core.training.distributed import children

        for pid in children(self.target.pid) or [self.target.pid]:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)

    def at_once(self) -> None:
        from workbench.core.training.distributed import kill_tree

        kill_tree(self.target.pid)
