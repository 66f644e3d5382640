"""One node's torchrun, as `workbench train --nproc` runs it: torchrun's own agent, in this
process, so that how each rank ended is known (`python -m workbench.commands.agent` takes
torchrun's arguments; the packaged app runs it as `workbench _torchrun`).

What it adds to plain torchrun:

- With `WORKBENCH_AGENT_REPORT=FILE` in its environment it writes there, as JSON, each failed
  rank's real exit status or signal (torchrun itself exits 1 for any of them) and the signal
  that stopped the agent, if one did.
- torchrun's log (its warnings, its 50-line ChildFailedError) goes to Workbench's log file,
  not to the terminal: `workbench train` says what happened in one line.
- The agents of a finished run wait for each other at most `EXIT_BARRIER_S` (torchrun's
  default is 300 s): a node whose agent was stopped never comes to that barrier, and the
  other nodes' ranks have all ended by then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

REPORT_ENV = "WORKBENCH_AGENT_REPORT"
EXIT_BARRIER_S = 30


def _torch_logs_to_file() -> None:
    """torchrun's loggers write to Workbench's log (and, with --verbose, to stderr)."""
    from workbench import logs

    logs.configure(verbose=os.environ.get("WORKBENCH_VERBOSE") == "1")
    ours = logging.getLogger(logs.LOGGER)
    ours.propagate = False  # a handler torch put on the root logger would print it again
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher",
                            "torch.distributed.run")):
            logger = logging.getLogger(name)
            logger.propagate = False
            logger.handlers = list(ours.handlers)
            logger.setLevel(logging.INFO)


def _short_exit_barrier() -> None:
    from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent
    from torch.distributed.launcher import api

    class _Agent(LocalElasticAgent):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("exit_barrier_timeout", EXIT_BARRIER_S)
            super().__init__(*args, **kwargs)

    api.LocalElasticAgent = _Agent  # type: ignore[misc]  # what launch_agent constructs


def _write_report(report: dict[str, Any]) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        with contextlib.suppress(OSError):
            Path(path).write_text(json.dumps(report))


def failure_record(rank: int, failure: Any) -> dict[str, Any]:
    """A failed rank as the report holds it: its exit status, or the signal that ended it."""
    code = int(failure.exitcode)
    record: dict[str, Any] = {"rank": int(rank), "local_rank": int(failure.local_rank),
                              "exitcode": code, "timestamp": int(failure.timestamp)}
    if code < 0:
        with contextlib.suppress(ValueError):
            record["signal"] = signal.Signals(-code).name
    return record


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(sys.argv[1:] if argv is None else argv)
    _torch_logs_to_file()
    _short_exit_barrier()
    try:
        run(args)
    except ChildFailedError as exc:
        failures = sorted((failure_record(r, f) for r, f in exc.failures.items()),
                          key=lambda f: (f["timestamp"], f["rank"]))
        _write_report({"failures": failures})
        return 1
    except SignalException as exc:
        _write_report({"failures": [], "signal": signal.Signals(exc.sigval).name})
        return 128 + int(exc.sigval)
    except Exception as exc:  # the rendezvous failed: a peer that never came, a lost store
        logging.getLogger("workbench.commands.agent").exception("torchrun failed")
        text = str(exc).strip().splitlines()
        _write_report({"failures": [], "error": text[0] if text else type(exc).__name__})
        return 1
    _write_report({"failures": []})
    return 0


if __name__ == "__main__":
    sys.exit(main())
