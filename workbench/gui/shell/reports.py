"""File > Export report…: a run's one-file HTML report (the core's `write_report`: the result,
the curves, the confusion matrix or the regression plots, the equation, Inspect's pictures and
the spec, every picture inside the page) written where the person picks, off the GUI thread.

The run is the one selected in the Runs list, else the one the training view shows, else the
newest that has ended. A second export cancels the first; the window's closing stops it with
the workspace's other jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from workbench.gui.shell.presenter import report_file_name
from workbench.gui.threads.tasks import Tasks
from workbench.gui.widgets import dialogs

if TYPE_CHECKING:
    from workbench.core.workspace import Workspace


class ReportExport(QObject):
    """Exports reports for `window` (its status bar says how it goes). `written(Report)` once
    a report is on disk, `failedWith(message)` when it could not be written."""

    written = Signal(object)
    failedWith = Signal(str)

    def __init__(self, window: QWidget, workspace: Workspace) -> None:
        super().__init__(window)
        self.window = window
        self.workspace = workspace
        self.tasks = Tasks(self, workspace.jobs)
        self.folder: Path | None = None  # where the last report went

    def ask_and_export(self, run_dir: str | None) -> bool:
        """Ask where, then write `run_dir`'s report; False when there is nothing to do."""
        if run_dir is None:
            dialogs.warn(self.window, "No run to report",
                         "Train a run first, or select one that has ended in the Runs list.")
            return False
        folder = self.folder or Path.home()
        path, _ = QFileDialog.getSaveFileName(self.window, "Export report",
                                              str(folder / report_file_name(run_dir)),
                                              "HTML pages (*.html *.htm);;All files (*)")
        if not path:
            return False
        return self.export(run_dir, Path(path))

    def export(self, run_dir: str, path: Path) -> bool:
        """Write `run_dir`'s report to `path` (".html" added when it has no suffix) on a
        worker; False (and a dialog) when `path` cannot be a file."""
        if path.suffix == "":
            path = path.with_suffix(".html")
        if path.is_dir():
            dialogs.warn(self.window, "Cannot export the report", f"{path} is a folder")
            return False
        self.folder = path.parent
        workspace = self.workspace

        def work(emit: Any, cancel: Any) -> Any:
            from workbench.core.tools.inspect.report import write_report

            return write_report(run_dir, path, source=workspace, cancel=cancel, progress=emit)

        self._say(f"Writing the report of {Path(run_dir).name}…")
        self.tasks.start("report", work, partial=lambda what: self._say(
            f"Writing the report of {Path(run_dir).name}: {what}…"), done=self._done,
            failed=self._failed, expected=_expected())
        return True

    def is_running(self) -> bool:
        return self.tasks.is_running("report")

    def _say(self, text: str, timeout_ms: int = 0) -> None:
        bar = getattr(self.window, "statusBar", None)
        if bar is not None:
            bar().showMessage(text, timeout_ms)

    def _done(self, report: Any) -> None:
        pictures = len(report.pictures)
        notes = f" ({'; '.join(report.notes)})" if report.notes else ""
        self._say(f"Report written to {report.path}: {pictures} picture"
                  f"{'s' if pictures != 1 else ''} inside the page{notes}", 15_000)
        self.written.emit(report)

    def _failed(self, message: str) -> None:
        self._say("The report was not written", 10_000)
        dialogs.warn(self.window, "Cannot export the report", message)
        self.failedWith.emit(message)

    def shutdown(self) -> None:
        self.tasks.shutdown()


def _expected() -> tuple[type[BaseException], ...]:
    """The report's failures that are the run's state or the place, not bugs."""
    from workbench.core.data.errors import DataError
    from workbench.core.store.errors import RunError
    from workbench.core.tools.inspect.network import InspectError

    return (RunError, InspectError, DataError, OSError)


__all__ = ["ReportExport"]
