"""Beyond one process from the app: the torchrun command for the current experiment, and
"Train on all GPUs" as a `workbench train --nproc N` child process, which owns torchrun and its
ranks: stopping it stops them all (it passes the stop on, and they die with it).

The command is built by `workbench.core.training.distributed.launch_command`, the same one the
CLI runs, with the experiment saved as a spec file beside the project so the line can be pasted on a
cluster node that has the same file.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, Signal

from workbench.core.store.specs import save_spec
from workbench.paths import self_command, user_data_dir
from workbench.spec import ExperimentSpec


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


class MultiGpuRun(QObject):
    """`workbench train SPEC --nproc N` as a child process; `ended(result)` with its last-line
    JSON (or {"status": "failed", "error": ...}) when it exits."""

    ended = Signal(object)

    def __init__(self, spec: ExperimentSpec, spec_path: Path, nproc: int, runs_dir: Path,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        save_spec(spec, spec_path)
        self.process = QProcess(self)
        program, *first = self_command()
        self.process.setProgram(program)
        self.process.setArguments([*first, "train", str(spec_path), "--nproc", str(nproc),
                                   "--runs-dir", str(runs_dir), "--quiet"])
        self.process.finished.connect(self._finished)

    def start(self) -> None:
        self.process.start()

    def is_running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def stop(self) -> None:
        """Ask every rank to stop after its step (they save a checkpoint); returns at once."""
        if self.is_running():
            self.process.terminate()  # the command passes it on to torchrun and its ranks

    def stop_and_wait(self, timeout_ms: int = STOP_TIMEOUT_MS) -> None:
        """Stop and wait; what is still running after `timeout_ms` is killed, ranks and all."""
        if not self.is_running():
            return
        self.process.terminate()
        if not self.process.waitForFinished(timeout_ms):
            from workbench.core.training.distributed import kill_tree

            kill_tree(int(self.process.processId()))
            self.process.waitForFinished(5_000)

    def _finished(self, code: int, _status: Any) -> None:
        out = bytes(self.process.readAllStandardOutput().data()).decode(errors="replace")
        lines = out.strip().splitlines()
        try:
            result = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            result = {}
        if code != 0 and result.get("status") not in ("failed", "stopped"):
            err = bytes(self.process.readAllStandardError().data()).decode(errors="replace")
            tail = err.strip().splitlines()[-1] if err.strip() else f"exit status {code}"
            result = {"status": "failed", "error": tail}
        self.ended.emit(result)
