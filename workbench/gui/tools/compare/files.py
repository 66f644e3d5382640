"""The Compare panel's files: past runs added to the race (read off the GUI thread, a fork
with its parent, runs of other data warned about), and comparisons saved and opened again.
Mixed into `ComparePanel`; every read and write runs on the panel's tasks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QDialog, QDoubleSpinBox, QFileDialog, QLabel, QMessageBox

from workbench.core.store.runs import RunInfo, RunStore
from workbench.core.tools.compare import (
    Comparison,
    Curves,
    comparisons_dir,
    default_name,
    save_comparison,
)
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.compare.presenter import Branch, opened_text, read_comparison, read_runs
from workbench.gui.tools.compare.run_picker import RunPicker
from workbench.gui.widgets import dialogs
from workbench.spec import ExperimentSpec, SpecError


class ComparisonFilesMixin:
    """Adding stored runs, saving and opening comparisons (mixed into `ComparePanel`)."""

    comparison: Comparison
    curves: list[Curves]
    tasks: Tasks
    runs: RunStore
    feed: Any
    status: QLabel
    target_spin: QDoubleSpinBox
    runsRead: Any  # Signal(): the runs or comparison asked for are shown (or refused)
    saved: Any  # Signal(str): Save wrote the comparison to this file
    _branches: dict[str | None, Branch]
    _adding: list[str]

    get_spec: Callable[[], ExperimentSpec]

    if TYPE_CHECKING:  # the panel's own, named here for the type checker only
        def is_running(self) -> bool: ...
        def _sync_lines(self) -> None: ...
        def _clear_lines(self) -> None: ...
        def _schedule(self, *, table: bool = False) -> None: ...

    def add_runs(self, run_dirs: list[str]) -> None:
        """Add stored runs (a fork brings its parent), read off the GUI thread; unreadable
        ones are reported and skipped. Runs asked for while others are read join them."""
        self._adding += [d for d in run_dirs if d not in self._adding]
        wanted = list(self._adding)
        present = [v.run_dir for v in self.comparison.variants]
        self.tasks.start("add", lambda _report, _cancel: read_runs(wanted, present),
                         done=self._runs_read, failed=self._read_failed)

    def _runs_read(self, result: tuple[list[tuple[str, ExperimentSpec, Curves, Branch]],
                                       list[str]]) -> None:
        loaded, problems = result
        self._adding = []
        if not self.comparison.variants:
            self.comparison = Comparison(default_name(self.get_spec()), [],
                                         self.target_spin.value())
        present = {v.run_dir for v in self.comparison.variants}
        others = []
        for run_dir, spec, curves, branch in loaded:
            if run_dir not in present:
                other = self.comparison.other_data(spec)
                variant = self.comparison.add_run(run_dir, spec=spec)
                if other is not None:
                    others.append(f"{variant.label}: {other}")
                self.curves.append(curves)
                self._branches[run_dir] = branch
        self._sync_lines()
        self._schedule(table=True)
        if problems:
            self.status.setText("Skipped: " + "; ".join(problems))
        if others:
            self.status.setText("Added runs trained on other data: " + "; ".join(others))
            dialogs.warn(self, "Other data", "These runs trained on other data than the "
                         "comparison's, so their figures are no fair race:\n\n"
                         + "\n".join(others))
        self.runsRead.emit()

    def _read_failed(self, message: str) -> None:
        self._adding = []
        self.status.setText(f"Cannot read the runs: {message}")
        self.runsRead.emit()

    def follow(self, feed: Any) -> None:
        """Take the runs "Add past runs…" offers from a `RunFeed` (the Runs list's) instead
        of listing the store."""
        self.feed = feed

    def _pick_runs(self) -> None:
        """Offer the Runs list's runs (or the store's, listed off the GUI thread)."""
        if self.feed is not None:
            self._offer_runs(self.feed.infos)
            return
        runs = self.runs
        self.tasks.start("list", lambda _report, _cancel: runs.list(), done=self._offer_runs)

    def _offer_runs(self, infos: list[RunInfo]) -> None:
        dialog = RunPicker(self.runs, self, infos=infos)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.add_runs(dialog.chosen())

    def save(self, path: Path | None = None) -> None:
        """Write the comparison (off the GUI thread); `saved(path)` when written."""
        if not self.comparison.variants:
            self.status.setText("Nothing to save yet.")
            return
        comparison, runs = copy.deepcopy(self.comparison), self.runs
        self.tasks.start("save", lambda _report, _cancel: save_comparison(comparison, runs,
                                                                           path),
                         done=self._saved, failed=self._save_failed, expected=(OSError,))

    def _saved(self, path: Path) -> None:
        self.status.setText(f"Saved as {path}")
        self.saved.emit(str(path))

    def _save_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Save comparison", f"Could not save: {message}")

    def _save(self) -> None:
        self.save()

    def open_comparison(self, path: str | Path) -> None:
        """Show a saved comparison from its runs' stored metrics (read off the GUI thread);
        bad files change nothing."""
        if self.is_running():
            self.status.setText("Stop the running comparison first.")
            return
        self.tasks.start("add", lambda _report, _cancel: read_comparison(path),
                         done=lambda read: self._comparison_read(path, read),
                         failed=self._open_failed, expected=(SpecError,))

    def _comparison_read(self, path: str | Path,
                         read: tuple[Comparison, list[Curves], dict[str | None, Branch]]
                         ) -> None:
        comparison, curves, branches = read
        self._adding = []
        if self.is_running():  # a comparison started while the file was read
            return
        self._clear_lines()
        self.comparison = comparison
        self.curves = curves
        self._branches.update(branches)
        self.target_spin.blockSignals(True)
        self.target_spin.setValue(comparison.target_accuracy)
        self.target_spin.blockSignals(False)
        self._sync_lines()
        self._schedule(table=True)
        self.status.setText(opened_text(Path(path).name, comparison))
        self.runsRead.emit()

    def _open_failed(self, message: str) -> None:
        self.status.setText(f"Cannot open: {message}")
        self.runsRead.emit()

    def _open(self) -> None:
        folder = comparisons_dir(self.runs)
        path, _ = QFileDialog.getOpenFileName(self, "Open comparison", str(folder),
                                              "Comparisons (*.json)")
        if path:
            self.open_comparison(path)
