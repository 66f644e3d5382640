"""What the window does with stored runs and beyond one process: open a run's experiment, train
a fork or resume a run in the training panel, add the selected run to the comparison, and
train on every GPU of the machine (torchrun) or show the command that trains on several
machines (and a SLURM script).
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QTabWidget

from workbench.core.store.runs import RunError
from workbench.core.workspace import Workspace
from workbench.gui.run_rules import run_to_resume
from workbench.gui.shell.presenter import blocked_reason, report_run, run_document
from workbench.gui.shell.reports import ReportExport
from workbench.gui.shell.run_history import RunHistory
from workbench.gui.shell.tool_shelf import ToolShelf
from workbench.gui.threads.tasks import Tasks
from workbench.gui.widgets import dialogs


class RunActionsMixin:
    """The run commands (mixed into `MainWindow`)."""

    workspace: Workspace
    runs: Any
    history: RunHistory
    tools: ToolShelf
    center: QTabWidget
    train_panel: Any
    gpu_name: str | None
    actions: dict[str, QAction]
    closing: bool
    tasks: Tasks
    runOpened: Any  # Signal(str): a run's experiment is in the editor
    reports: ReportExport

    def add_selected_to_comparison(self) -> Any:
        """Tools > Add the selected run to the comparison."""
        info = self.history.selected_info()
        reason = self.history.why_not("compare")
        if info is None or reason is not None:
            dialogs.warn(self, "Nothing to add", "Select a run that has ended in the Runs list "
                         f"first ({reason}).")
            return None
        return self.tools.open("compare", str(info.path))

    def resume_run(self) -> bool:
        """Continue the run selected in the Runs list when it can be resumed, else the newest
        that can; says so when there is none."""
        info = run_to_resume(self.history.selected_info(), self.history.infos)
        if info is None:
            dialogs.warn(self, "Nothing to resume", "No run was stopped or interrupted after "
                                                    "its first checkpoint.")
            return False
        return self.resume_path(str(info.path))

    def resume_path(self, run_dir: str) -> bool:
        """Continue this run from its last checkpoint in the training panel."""
        if self.train_panel is None or self.train_panel.is_running():
            dialogs.warn(self, "Cannot resume", "A run is training; stop it first.")
            return False
        self.center.setCurrentWidget(self.train_panel)
        return self.train_panel.resume_stored(run_dir)


    def export_report(self) -> bool:
        """File > Export report…: the report of the run selected in the Runs list (else the
        one the training view shows, else the newest that ended), to a file the person
        picks, written off the GUI thread."""
        shown = getattr(self.train_panel, "shown_run", None)
        run_dir = report_run(self.history.selected_info(), shown, self.history.infos)
        return self.reports.ask_and_export(run_dir)

    # -- runs -------------------------------------------------------------------------------
    def open_run(self, run_dir: str) -> bool:
        """Open a stored run's experiment as an untitled document named after the run (Save
        asks where, so no file opened before is overwritten) and show its curves, once its
        spec is read off the GUI thread (`runOpened` then); unsaved changes to the current
        experiment are asked about first. A newer request drops an older one's answer."""
        self.tasks.start("open", lambda _report, _cancel: run_document(run_dir),
                         done=lambda read: self._run_read(run_dir, *read),
                         failed=self._open_failed, expected=(RunError, OSError))
        return True

    def _run_read(self, run_dir: str, spec: Any, title: str) -> None:
        if not self.maybe_save():
            return
        self._set_document(spec, None, title)
        self.history.select(run_dir)
        if self.train_panel is not None:
            self.train_panel.show_run(run_dir)
            self.center.setCurrentWidget(self.train_panel)
        self.runOpened.emit(run_dir)

    def _open_failed(self, message: str) -> None:
        dialogs.warn(self, "Cannot open run", message)

    def start_fork(self, plan: Any) -> bool:
        """Train a fork (a `ForkPlan`) in the training panel, as its current run."""
        if self.train_panel is None:
            dialogs.warn(self, "Cannot fork yet", "PyTorch is still loading; try again soon.")
            return False
        if self.train_panel.is_running():
            dialogs.warn(self, "A run is training", "Stop the current run before forking.")
            return False
        if not self.train_panel.start_fork(plan):
            return False
        self.center.setCurrentWidget(self.train_panel)
        return True

    # -- beyond one process ---------------------------------------------------------------
    def gpu_count(self) -> int:
        torch = sys.modules.get("torch")
        return torch.cuda.device_count() if torch is not None and self.gpu_name else 0

    def launch_dialog(self) -> Any:
        """Tools > Launch on several machines…: the torchrun command for N nodes and a SLURM
        batch script, from the experiment as it is now."""
        from workbench.gui.shell.launch import LaunchDialog, launch_spec_path

        reason = blocked_reason(self.editor.problem, self.model.live, None)  # not this GPU's
        if reason:
            dialogs.warn(self, "Cannot launch", f"The experiment cannot train: {reason}")
            return None
        spec = self.model.spec()
        dialog = LaunchDialog(spec, launch_spec_path(spec, self.path), self.runs.root,
                              max(1, self.gpu_count()), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.launch = dialog
        return dialog

    def train_on_all_gpus(self) -> None:
        """Train the experiment with DistributedDataParallel on every GPU of this machine."""
        from workbench.gui.shell.launch import MultiGpuRun, launch_spec_path

        reason = self.blocked_reason()
        if reason:
            dialogs.warn(self, "Cannot train", reason)
            return
        spec = self.model.spec()
        self.multi_gpu = MultiGpuRun(spec, launch_spec_path(spec, self.path), self.gpu_count(),
                                     self.runs.root, self, jobs=self.workspace.jobs)
        self.multi_gpu.ended.connect(self._multi_gpu_ended)
        self.actions["all_gpus"].setEnabled(False)
        self.actions["stop_all_gpus"].setEnabled(True)
        self.multi_gpu.start()
        self.statusBar().showMessage(f"Training on {self.gpu_count()} GPUs…")

    def stop_all_gpus(self) -> None:
        """Stop the run on all GPUs: every rank stops after its step and saves; the end
        arrives as for a run that finished."""
        multi_gpu = getattr(self, "multi_gpu", None)
        if multi_gpu is not None and multi_gpu.is_running():
            multi_gpu.stop()
            self.actions["stop_all_gpus"].setEnabled(False)
            self.statusBar().showMessage("Stopping every rank after its step…")

    def _multi_gpu_ended(self, result: dict) -> None:
        if self.closing:  # stopped by closing the window: nothing left to tell
            return
        self.actions["all_gpus"].setEnabled(self.gpu_count() > 1)
        self.actions["stop_all_gpus"].setEnabled(False)
        self.history.refresh()
        if result.get("status") == "stopped":
            self.statusBar().showMessage(f"Stopped on all GPUs: {result.get('run_dir')}", 10000)
        elif result.get("status") == "failed":
            dialogs.warn(self, "Training on all GPUs failed", result.get("error", "unknown"))
        else:
            if result.get("run_dir"):
                self.history.select(result["run_dir"])
            self.statusBar().showMessage(f"Finished on all GPUs: {result.get('run_dir')}", 10000)

