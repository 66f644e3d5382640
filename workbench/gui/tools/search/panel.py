"""The Search panel: hyperparameter search with Optuna over the experiment in the editor.

Left: the search space (a row per field: a float or integer range, linear or log, or a list
of choices), the objective, the pruner, how many trials, the study's storage and name, and
Run / Stop / Show. Right: a live table of trials (double-click one to open its run), the best
value so far, the fields' importances and a parallel-coordinates plot. The search runs on a
worker thread; a stopped or crashed search resumes when run again with the same study.
Reading a stored study, its importances and the storage's studies are tasks too: starting a
search cancels a study or importances still being read (their answer would replace the rows,
space and objective of the running search), and a study read while a search runs is dropped.

Needs Optuna (the `[search]` extra): importing this module without it raises an ImportError
whose message says how to install it, and the app shows that message.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import DataError
from workbench.core.tools.search import (
    SearchError,
    SearchResult,
    SearchRunner,
    StudyInfo,
    StudyView,
    TrialRow,
    default_study_name,
    importances,
    list_studies,
    parse_space,
    read_study,
    same_experiment,
)
from workbench.core.workspace import Workspace
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.tools.search.plots import draw_best, draw_importance, draw_parallel, new_plot
from workbench.gui.tools.search.presenter import (
    SearchState,
    default_space,
    result_text,
    shown_importance,
    suggested_fields,
)
from workbench.gui.tools.search.space_editor import SpaceEditor
from workbench.gui.tools.search.study_form import StudyForm
from workbench.gui.tools.search.trials import TrialsPage
from workbench.gui.widgets import dialogs
from workbench.gui.widgets.layouts import FlowLayout, scroll_above
from workbench.spec import ExperimentSpec, SpecError


class SearchPanel(Tool, QWidget):
    """Search the experiment `get_spec()` returns; trials are runs in `runs`."""

    runOpenRequested = Signal(str)  # a trial's run folder
    trialEvent = Signal(object)  # every event of the search, as it arrives (a SearchEvent)
    searchFinished = Signal(object)  # SearchResult
    studyShown = Signal()
    experimentOpenRequested = Signal(object, str)  # a shown study's ExperimentSpec, a title
    studiesListed = Signal(object)  # list[StudyInfo]
    importancesShown = Signal(object)  # dict

    def __init__(self, get_spec: Callable[[], ExperimentSpec], workspace: Workspace,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.get_spec, self.workspace, self.runs = get_spec, workspace, workspace.runs
        self.tasks = Tasks(self, workspace.jobs)  # kinds: search, study, studies, importance
        self.runner: SearchRunner | None = None
        self.state = SearchState()  # the study shown: its trials, space, objective
        self.result: SearchResult | None = None
        self._build()
        self.editor.set_raw(default_space(get_spec()))
        self.list_studies()

    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **_: Any) -> SearchPanel:
        """The search over the experiment in the editor; a trial's run and a study's
        experiment open in the editor."""
        panel = cls(host.experiment, host.workspace, host.parent_widget())
        panel.runOpenRequested.connect(host.open_run)
        panel.experimentOpenRequested.connect(host.open_experiment)
        return panel

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        setup = QWidget()
        left = QVBoxLayout(setup)
        left.setContentsMargins(0, 0, 4, 0)
        box = QGroupBox("Search space")
        v = QVBoxLayout(box)
        self.editor = SpaceEditor(suggested_fields(self.get_spec()))
        v.addWidget(self.editor)
        row_box = QWidget()  # wraps onto two lines when the column is narrow
        row = FlowLayout(row_box, spacing=6, line_spacing=4)
        for text, slot in (("Add field", lambda: self.editor.add_row()),
                           ("Remove", self.editor.remove_row), ("Load…", self._load),
                           ("Save…", self._save)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        v.addWidget(row_box)
        left.addWidget(box, 1)

        self.form = StudyForm(self.runs)
        self.form.storageChanged.connect(self.list_studies)
        self.form.studyPicked.connect(self._study_picked)
        self.trials_spin, self.study_combo = self.form.trials_spin, self.form.study_combo
        left.addWidget(self.form)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run search")
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.show_button = QPushButton("Show study")
        self.show_button.setToolTip("Show the study's trials without running any")
        self.show_button.clicked.connect(self.show_study)
        for b in (self.run_button, self.stop_button, self.show_button):
            buttons.addWidget(b)
        self.status = QLabel("Set the ranges, then Run. A study resumes where it stopped.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                            | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.status.linkActivated.connect(self._link)

        self.tabs = QTabWidget()
        self.tabs.tabBar().setUsesScrollButtons(False)  # every tab's name in view, whole
        self.trials = TrialsPage()
        self.trials.openRequested.connect(self.open_trial)
        self.trials.bestRequested.connect(self.open_best)
        self.table, self.best_button = self.trials.table, self.trials.best_button
        self.tabs.addTab(self.trials, "Trials")
        self.best_plot = new_plot("best so far", "trial")
        self.tabs.addTab(self.best_plot, "Best so far")
        self.importance_plot = new_plot("", "share of the objective's variance (fANOVA)")
        self.importance_plot.getAxis("left").setStyle(showValues=False)
        self.tabs.addTab(self.importance_plot, "Importance")
        self.parallel_plot = new_plot("", "")
        self.parallel_plot.getAxis("left").setStyle(showValues=False)
        self.parallel_plot.showGrid(x=False, y=False)
        self.tabs.addTab(self.parallel_plot, "Parallel coordinates")
        self.tabs.currentChanged.connect(self._tab_changed)

        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
        # the set-up scrolls down on a short screen; Run, Stop and what they say stay in view
        splitter.addWidget(scroll_above(setup, buttons, self.status))
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([560, 440])  # the set-up first; the tabs keep their names whole
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._update_buttons()

    # -- what the tests and the tools read ---------------------------------------------------
    @property
    def rows(self) -> dict[int, TrialRow]:
        return self.state.rows

    @property
    def study(self) -> str:
        return self.state.study

    def parallel_lines(self) -> tuple[list[str], list[tuple[TrialRow, list[float]]]]:
        return self.state.parallel_lines()

    def best_row(self) -> TrialRow | None:
        return self.state.best_row()

    # -- the space ----------------------------------------------------------------------------
    def space_document(self) -> dict[str, Any]:
        return {**self.editor.raw(), **self.form.document()}

    def set_space(self, raw: dict[str, Any]) -> None:
        """Show a space document (a loaded file, a stored study's)."""
        self.editor.set_raw(raw)
        self.form.set_document(raw)

    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a search space", str(self.runs.root),
                                              "Search spaces (*.json)")
        if path:
            self.load_space_file(path)

    def load_space_file(self, path: str | Path) -> bool:
        from workbench.core.tools.search import load_space

        try:
            space = load_space(path)
        except SearchError as exc:
            dialogs.warn(self, "Cannot open the search space", str(exc))
            return False
        self.set_space(space.to_dict())
        return True

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the search space",
                                              str(self.runs.root / "space.json"),
                                              "Search spaces (*.json)")
        if path:
            self.save_space_file(path)

    def save_space_file(self, path: str | Path) -> bool:
        from workbench.core.store.atomic import write_text_atomic

        try:
            space = parse_space(self.space_document(), self.get_spec())
            write_text_atomic(Path(path), json.dumps(space.to_dict(), indent=2) + "\n")
        except (SearchError, SpecError, OSError) as exc:
            dialogs.warn(self, "Cannot save the search space", str(exc))
            return False
        return True

    # -- running ------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.tasks.is_running("search")

    def make_runner(self) -> SearchRunner:
        """The search the controls describe; SearchError (or SpecError) names what is wrong."""
        spec = self.get_spec()
        space = parse_space(self.space_document(), spec)
        return SearchRunner(spec, space, trials=self.trials_spin.value(),
                            storage=self.form.storage(), study=self.form.study() or None,
                            runs=self.runs,
                            source=self.workspace)

    def run(self) -> bool:
        """Start (or resume) the search; a bad space or storage is a dialog and changes
        nothing."""
        if self.is_running():
            return False
        try:
            runner = self.make_runner()
        except (SearchError, SpecError, DataError) as exc:
            dialogs.warn(self, "Cannot search", str(exc))
            self.status.setText(f"Cannot search: {html.escape(str(exc))}")
            return False
        self.tasks.cancel("study")  # stale now: their answer is about another study
        self.tasks.cancel("importance")
        self.runner = runner
        state = self.state
        state.space = runner.space
        state.url, state.study = runner.url, runner.study_name
        state.direction, state.objective = runner.direction, runner.objective
        state.rows.clear()
        state.importance = {}

        def work(emit: Callable[[Any], None], _cancel: threading.Event) -> SearchResult:
            runner.on_event = emit
            return runner.run()

        self.tasks.start("search", work, partial=self._on_event, done=self._on_result,
                         failed=self._on_error, finished=self._update_buttons,
                         expected=(SearchError, DataError), stop=runner.stop,
                         title=f"Search {runner.study_name}")
        self.status.setText(f"Opening study {html.escape(self.state.study)}…")
        self._update_buttons()
        return True

    def stop(self) -> None:
        if self.is_running():
            self.tasks.stop("search")
            self.status.setText("Stopping after this epoch; the trial in flight is retried "
                                "when the search is run again.")

    def shutdown(self) -> None:
        """Stop every background task and wait for it (closing the tab or the window)."""
        self.tasks.shutdown()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    def _on_event(self, event: Any) -> None:
        self._show_event(event)
        self.trialEvent.emit(event)

    def _show_event(self, event: Any) -> None:
        redraw, status = self.state.apply(event)
        if status is not None:
            self.status.setText(status)
        if redraw == "all":
            self._refresh()
        elif redraw == "table":
            self._fill_table()

    def _on_result(self, result: SearchResult) -> None:
        self.result = result
        self.state.rows = {r.number: r for r in result.rows}
        self._refresh()
        self.status.setText(result_text(result))
        self.searchFinished.emit(result)
        self.list_studies()

    def _on_error(self, message: str) -> None:
        self.status.setText(f"The search stopped: {html.escape(message)}")
        dialogs.warn(self, "The search stopped", message)

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.show_button.setEnabled(not running)

    # -- showing a stored study -----------------------------------------------------------------
    def show_study(self) -> None:
        """Show the named study's trials (from the storage) without running any."""
        if self.is_running():
            return
        url, name = self.form.url(), self.form.study()
        if not name:
            try:
                spec = self.get_spec()
                name = default_study_name(spec, parse_space(self.space_document(), spec))
            except (SearchError, SpecError) as exc:
                dialogs.warn(self, "Cannot show the study", str(exc))
                return
        self.tasks.start("study", lambda _emit, _cancel: read_study(url, name),
                         done=self._show_view, failed=self._say, expected=(SearchError,))
        self.state.url, self.state.study = url, name
        self.status.setText(f"Reading study {html.escape(name)}…")

    def list_studies(self) -> None:
        """List the storage's studies in the study box, off the GUI thread."""
        url = self.form.url()
        self.tasks.start("studies", lambda _emit, _cancel: list_studies(url),
                         done=self._show_studies, failed=self._say, expected=(SearchError,))

    def _show_studies(self, studies: list[StudyInfo]) -> None:
        self.form.show_studies(studies)
        self.studiesListed.emit(studies)

    def _study_picked(self) -> None:
        if not self.is_running():
            self.show_study()

    def _show_view(self, view: StudyView) -> None:
        if self.is_running():  # a search started since: the rows are its own
            return
        status = self.state.show_view(view, self.get_spec())
        if view.space is not None:
            self.set_space(view.space.to_dict())
        self._refresh()
        self.status.setText(status)
        self.studyShown.emit()

    def _link(self, href: str) -> None:
        experiment, study = self.state.study_experiment, self.state.study
        if href == "experiment" and experiment is not None:
            self.experimentOpenRequested.emit(experiment, f"{experiment.name} (study {study})")
            if same_experiment(experiment, self.get_spec()):
                self.status.setText(f"Study {html.escape(study)}: its experiment is in the "
                                    "editor. Run to continue it.")

    def _say(self, message: str) -> None:
        self.status.setText(html.escape(message))

    # -- the views ------------------------------------------------------------------------------
    def _refresh(self) -> None:
        self._fill_table()
        draw_best(self.best_plot, self.state)
        draw_parallel(self.parallel_plot, self.state)
        if self.tabs.currentWidget() is self.importance_plot:
            self.compute_importances()

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.importance_plot and not self.state.importance:
            self.compute_importances()

    def _fill_table(self) -> None:
        self.trials.fill(self.state)

    def open_trial(self, table_row: int) -> bool:
        row = self.state.trial_at(table_row)
        if row is None or not row.run_dir:
            self.status.setText("That trial has no run to open.")
            return False
        self.runOpenRequested.emit(row.run_dir)
        return True

    def open_best(self) -> bool:
        best = self.state.best_row()
        if best is None or not best.run_dir:
            self.status.setText("No trial has completed yet.")
            return False
        self.runOpenRequested.emit(best.run_dir)
        return True

    def compute_importances(self) -> None:
        """Each field's importance, computed off the GUI thread from the stored study."""
        url, study = self.state.url, self.state.study
        if not url or not study:
            return
        self.tasks.start("importance", lambda _emit, _cancel: importances(url, study),
                         done=self._draw_importance, failed=self._say, expected=(SearchError,))

    def _draw_importance(self, values: dict[str, float]) -> None:
        self.state.importance = dict(values)
        draw_importance(self.importance_plot, shown_importance(values))
        self.importancesShown.emit(self.state.importance)


__all__ = ["SearchPanel"]


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.gui.demo import demo_workspace, example_spec, show_alone
    from workbench.gui.widgets.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    sample = example_spec("moons_logistic")
    panel = SearchPanel(lambda: sample, demo_workspace())
    panel.trials_spin.setValue(8)
    sys.exit(show_alone(panel, (1280, 760), start=panel.run))
