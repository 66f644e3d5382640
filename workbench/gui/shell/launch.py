"""Beyond one process from the app: the torchrun command for the current experiment, and
"Train on all GPUs" as a `workbench train --nproc N` child process, which owns torchrun and its
ranks: stopping it stops them all (it passes the stop on, and they die with it). The run is a job
of the workspace's registry, so closing the window names it, stops it and waits a few seconds
at most (then its processes are killed: the last checkpoint stays, resumable). Of its output
only the tail is kept (the result is its last line, a failure's reason the last of stderr):
a long run's output is never held whole.

The command is built by `workbench.core.training.distributed.launch_command`, the same one the
CLI runs, with the experiment saved as a spec file beside the project so the line can be pasted on a
cluster node that has the same file.
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QProcess, Signal

from workbench.core.store.specs import save_spec
from workbench.paths import self_command, user_data_dir
from workbench.spec import ExperimentSpec

if TYPE_CHECKING:
    from workbench.core.workspace import JobRegistry

log = logging.getLogger(__name__)


def launch_spec_path(spec: ExperimentSpec, project_path: Path | None) -> Path:
    """Where the launch spec goes: beside the project file, or in the per-user folder."""
    if project_path is not None:
        return project_path.with_name(f"{project_path.stem}.launch.json")
    return user_data_dir() / "launch" / f"{spec.name or 'experiment'}.json"


def torchrun_command(spec: ExperimentSpec, project_path: Path | None, nproc: int) -> str:
    """Save the spec and return the `torchrun ...` line that trains it on `nproc` processes."""
    from workbench.core.training.distributed import launch_command

    path = launch_spec_path(spec, project_path)
    save_spec(spec, path)
    cmd = launch_command(str(path), nproc, frozen=False)  # for a node with Workbench installed
    return shlex.join(["torchrun", *cmd[3:]])  # `torchrun` is `python -m torch.distributed.run`


STOP_TIMEOUT_MS = 60_000  # torchrun gives its ranks 30 s to stop before it kills them
TAIL_BYTES = 64 << 10  # of each of the child's streams


class StreamTail:
    """The last `limit` bytes of a stream read in pieces, as text lines (a first line the cut
    went through is dropped)."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0  # bytes let go of from the front
        self._whole = True  # the cut fell at the start of a line

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        extra = len(self.data) - self.limit
        if extra > 0:
            self._whole = self.data[extra - 1:extra] == b"\n"
            del self.data[:extra]
            self.dropped += extra

    def lines(self) -> list[str]:
        lines = self.data.decode(errors="replace").strip().splitlines()
        return lines if self._whole else lines[1:]


class MultiGpuRun(QObject):
    """`workbench train SPEC --nproc N` as a child process; `ended(result)` with its last-line
    JSON (or {"status": "failed", "error": ...}) when it exits or cannot start. Given the
    workspace's `jobs`, it is listed there (as `title`) while it runs."""

    ended = Signal(object)

    def __init__(self, spec: ExperimentSpec, spec_path: Path, nproc: int, runs_dir: Path,
                 parent: QObject | None = None, *, jobs: JobRegistry | None = None) -> None:
        super().__init__(parent)
        save_spec(spec, spec_path)
        self.jobs = jobs
        self.title = f"Training {spec.name or 'the experiment'} on {nproc} GPUs"
        self.out, self.err = StreamTail(), StreamTail()
        self.process = QProcess(self)
        program, *first = self_command()
        self.process.setProgram(program)
        self.process.setArguments([*first, "train", str(spec_path), "--nproc", str(nproc),
                                   "--runs-dir", str(runs_dir), "--quiet"])
        self.process.readyReadStandardOutput.connect(self._read_out)
        self.process.readyReadStandardError.connect(self._read_err)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)

    def start(self) -> None:
        if self.jobs is not None:
            self.jobs.add("workbench-multi-gpu", self, self.title)
        self.process.start()

    def is_running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def stop(self) -> None:
        """Ask every rank to stop after its step (they save a checkpoint); returns at once."""
        if self.is_running():
            self.process.terminate()  # the command passes it on to torchrun and its ranks

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """Stop and wait at most `timeout_ms` (STOP_TIMEOUT_MS when None); what is still
        running then is killed, ranks and all, with a line in the log. True when it ended
        on its own."""
        if not self.is_running():
            return True
        self.process.terminate()
        limit = STOP_TIMEOUT_MS if timeout_ms is None else timeout_ms
        if self.process.waitForFinished(max(1, limit)):
            return True
        from workbench.core.training.distributed import kill_tree

        log.warning("%s did not stop within %.1f s: its processes were killed (its last "
                    "checkpoint stays, resumable)", self.title, limit / 1000)
        kill_tree(int(self.process.processId()))
        self.process.waitForFinished(5_000)
        return False

    def _read_out(self) -> None:
        self.out.add(bytes(self.process.readAllStandardOutput().data()))

    def _read_err(self) -> None:
        self.err.add(bytes(self.process.readAllStandardError().data()))

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:  # no `finished` follows
            self._end({"status": "failed", "error": "the training command could not start: "
                       f"{self.process.errorString()}"})

    def _finished(self, code: int, _status: Any) -> None:
        self._read_out()
        self._read_err()
        lines = self.out.lines()
        try:
            result = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            result = {}
        if not isinstance(result, dict):
            result = {}
        if code != 0 and result.get("status") not in ("failed", "stopped"):
            err = self.err.lines()
            result = {"status": "failed", "error": err[-1] if err else f"exit status {code}"}
        self._end(result)

    def _end(self, result: dict[str, Any]) -> None:
        if self.jobs is not None:
            self.jobs.discard(self)
        self.ended.emit(result)
