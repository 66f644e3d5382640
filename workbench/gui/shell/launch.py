"""Beyond one process from the app: the launch dialog (the torchrun command that trains the
current experiment on N machines, and a SLURM batch script that runs it), and "Train on all
GPUs" as a `workbench train --nproc N` child process, which owns torchrun and its ranks:
stopping it stops them all (it passes the stop on, and they die with it). The run is a job
of the workspace's registry, so closing the window names it, stops it and waits a few seconds
at most (then its processes are killed: the last checkpoint stays, resumable). Of its output
only the tail is kept (the result is its last line, a failure's reason the last of stderr): a
long run's output is never held whole.

The command and the script are the core's (`core.cluster.ClusterLaunch`, what `workbench
cluster` prints and writes), with the experiment saved as a spec file beside the project so the
line can be pasted on a node that sees the same file.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QProcess, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.store.specs import save_spec
from workbench.gui.shell.presenter import launch_note, sbatch_file_name
from workbench.paths import self_command, user_data_dir
from workbench.spec import ExperimentSpec

if TYPE_CHECKING:
    from workbench.core.cluster import ClusterLaunch
    from workbench.core.workspace import JobRegistry

log = logging.getLogger(__name__)


def launch_spec_path(spec: ExperimentSpec, project_path: Path | None) -> Path:
    """Where the launch spec goes: beside the project file, or in the per-user folder."""
    if project_path is not None:
        return project_path.with_name(f"{project_path.stem}.launch.json")
    return user_data_dir() / "launch" / f"{spec.name or 'experiment'}.json"


class LaunchDialog(QDialog):
    """Tools > Launch on several machines…: the torchrun line every node runs (the same on
    each), built from the experiment as it is now, to copy; and a SLURM batch script to save.
    Copying or saving first saves the experiment to `spec_path` (the line names it)."""

    def __init__(self, spec: ExperimentSpec, spec_path: Path, runs_dir: Path,
                 procs_per_node: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Launch on several machines")
        self.spec = spec
        self.spec_path = spec_path.resolve()
        self.command = ""
        self.saved_script: Path | None = None
        form = QFormLayout()
        self.nodes = QSpinBox()
        self.nodes.setRange(1, 1_024)
        self.nodes.setToolTip("machines in the run; each runs the same line")
        self.procs = QSpinBox()
        self.procs.setRange(1, 1_024)
        self.procs.setValue(max(1, procs_per_node))
        gpus = spec.train.device != "cpu"
        self.procs.setToolTip("processes per machine: one per GPU" if gpus else
                              "processes per machine (the experiment trains on the CPU)")
        self.head = QLineEdit(socket.gethostname())
        self.head.setToolTip("the first node's host name or address: the rendezvous listens "
                             "there")
        self.port = QSpinBox()
        self.port.setRange(1, 65_535)
        self.port.setValue(29_500)
        self.data_root = QLineEdit()
        self.data_root.setPlaceholderText("the experiment's own")
        self.data_root.setToolTip("the folder holding the dataset's files, at the same path on "
                                  "every node (--data-root); empty: the experiment's data.root")
        self.runs_dir = QLineEdit(str(runs_dir))
        self.runs_dir.setToolTip("where node 0 keeps the run (--runs-dir): a shared folder lets "
                                 "the app and `workbench resume` find it from elsewhere")
        form.addRow("Nodes", self.nodes)
        form.addRow("GPUs per node" if gpus else "Processes per node", self.procs)
        form.addRow("First node", self.head)
        form.addRow("Port", self.port)
        form.addRow("Data folder", self.data_root)
        form.addRow("Runs folder", self.runs_dir)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMinimumHeight(80)
        self.text.setMaximumHeight(110)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("hint")
        self.copy_button = QPushButton("Copy command")
        self.copy_button.clicked.connect(self.copy)
        slurm = QGroupBox("SLURM batch script (optional settings)")
        slurm_form = QFormLayout(slurm)
        self.time = QLineEdit()
        self.time.setPlaceholderText("e.g. 4:00:00")
        self.partition = QLineEdit()
        self.account = QLineEdit()
        slurm_form.addRow("Time limit", self.time)
        slurm_form.addRow("Partition", self.partition)
        slurm_form.addRow("Account", self.account)
        self.save_button = QPushButton("Save SLURM script…")
        self.save_button.clicked.connect(self.save_script)
        slurm_form.addRow(self.save_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("The command every node runs:"))
        layout.addWidget(self.text)
        layout.addWidget(self.copy_button)
        layout.addWidget(self.note)
        layout.addWidget(slurm)
        layout.addWidget(buttons)
        for box in (self.nodes, self.procs, self.port):
            box.valueChanged.connect(self.update_command)
        for edit in (self.head, self.data_root, self.runs_dir):
            edit.textChanged.connect(self.update_command)
        self.update_command()
        self.resize(max(640, self.sizeHint().width()), self.sizeHint().height())

    def launch(self) -> ClusterLaunch:
        """The launch the fields describe; ClusterError (one line) when one is wrong."""
        from workbench.core.cluster import ClusterError, ClusterLaunch

        data = self.data_root.text().strip()
        runs = self.runs_dir.text().strip()
        if not runs:
            raise ClusterError("Runs folder: name the folder where node 0 keeps the run")
        return ClusterLaunch(self.spec_path, self.spec, self.nodes.value(),
                             self.procs.value(), Path(runs).expanduser().resolve(),
                             Path(data).expanduser().resolve() if data else None,
                             self.port.value())

    def update_command(self) -> None:
        """Redraw the line from the fields (a wrong field says why instead)."""
        from workbench.core.cluster import ClusterError

        head = self.head.text().strip()
        try:
            if not head or any(c.isspace() for c in head):
                raise ClusterError("First node: name its host (no spaces)")
            launch = self.launch()
            self.command = shlex.join(launch.torchrun(head))
        except ClusterError as exc:
            self.command = ""
            self.text.setPlainText(f"Cannot make the command: {exc}")
            self.note.setText("")
        else:
            self.text.setPlainText(self.command)
            self.note.setText(launch_note(launch.nodes, launch.runs_dir, self.spec_path,
                                          launch.data_folder, self.spec.data.name))
        self.copy_button.setEnabled(bool(self.command))
        self.save_button.setEnabled(bool(self.command))

    def _save_spec(self) -> bool:
        from workbench.gui.widgets import dialogs

        try:
            save_spec(self.spec, self.spec_path)
        except OSError as exc:
            dialogs.warn(self, "Cannot save the launch spec",
                         f"{self.spec_path}: {exc.strerror or exc}")
            return False
        return True

    def copy(self) -> str:
        """Save the experiment and put the line on the clipboard; the line ("" when not)."""
        if not self.command or not self._save_spec():
            return ""
        QGuiApplication.clipboard().setText(self.command)
        self.note.setText(self.note.text() + " Copied.")
        return self.command

    def save_script(self) -> Path | None:
        """Ask where, then write the SLURM batch script (and save the experiment it runs)."""
        start = str(self.spec_path.with_name(sbatch_file_name(self.spec.name)))
        path, _ = QFileDialog.getSaveFileName(self, "Save SLURM script", start,
                                              "SLURM batch scripts (*.sbatch *.sh);;"
                                              "All files (*)")
        return self.write_script(Path(path)) if path else None

    def write_script(self, path: Path) -> Path | None:
        """Write the batch script to `path` (executable, with the user's umask); a wrong
        SLURM setting or an unwritable place is a dialog and writes nothing."""
        from workbench.core.cluster import ClusterError
        from workbench.core.store.atomic import write_text_atomic
        from workbench.gui.widgets import dialogs

        def optional(edit: QLineEdit) -> str | None:
            return edit.text().strip() or None

        try:
            script = self.launch().sbatch(time=optional(self.time),
                                          partition=optional(self.partition),
                                          account=optional(self.account))
        except ClusterError as exc:
            dialogs.warn(self, "Cannot write the script", str(exc))
            return None
        if path.is_dir():
            dialogs.warn(self, "Cannot write the script", f"{path} is a folder")
            return None
        if not self._save_spec():
            return None
        try:
            write_text_atomic(path, script)
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(path, 0o755 & ~mask)
        except OSError as exc:
            dialogs.warn(self, "Cannot write the script", f"{path}: {exc.strerror or exc}")
            return None
        self.saved_script = path
        self.note.setText(self.note.text() + f" Saved {path.name}: submit it with "
                                             f"sbatch {shlex.quote(str(path))}.")
        return path


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
