"""The Search panel: hyperparameter search with Optuna over the experiment in the editor.

Left: the search space (a row per field: a float or integer range, linear or log, or a list
of choices), the objective, the pruner, how many trials, the study's storage and name, and
Run / Stop / Show. Right: a live table of trials (double-click one to open its run), the best
value so far, the fields' importances and a parallel-coordinates plot. The search runs on a
worker thread; a stopped or crashed search resumes when run again with the same study.

Needs Optuna (the `[search]` extra): importing this module without it raises an ImportError
whose message says how to install it, and the app shows that message.
"""

from __future__ import annotations

import html
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import DataError
from workbench.core.tools.search import (
    DEFAULT_STARTUP,
    KINDS,
    MAX_STARTUP,
    OBJECTIVES,
    PRUNERS,
    SearchError,
    SearchResult,
    SearchRunner,
    SearchSpace,
    StudyInfo,
    StudyOpened,
    StudyView,
    TrialEnded,
    TrialEvent,
    TrialRow,
    TrialStarted,
    best_so_far,
    default_storage,
    default_study_name,
    importances,
    list_studies,
    parse_space,
    read_study,
    same_experiment,
)
from workbench.core.training.events import EpochEnded, RunStarted
from workbench.core.workspace import Workspace
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.compare.panel import COMMON_FIELDS
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.widgets import dialogs
from workbench.gui.widgets.layouts import FlowLayout, vertical_scroll
from workbench.gui.widgets.style import ACCENT
from workbench.spec import ExperimentSpec, SpecError

STATE_COLORS = {"complete": "#1d232b", "running": ACCENT, "pruned": "#8a94a1",
                "failed": "#b42318", "waiting": "#8a94a1"}
SPACE_COLUMNS = ("field", "type", "low", "high", "log", "step", "choices")


def suggested_fields(spec: ExperimentSpec) -> list[str]:
    """Fields a person often searches: the common ones and every layer's width and rate."""
    fields = [f for f in COMMON_FIELDS if f not in ("train.epochs", "train.seed")]
    for i, layer in enumerate(spec.model.layers):
        if layer.type in ("Linear", "Conv2d"):
            fields.append(f"model.layers[{i}].out")
        elif layer.type == "Dropout":
            fields.append(f"model.layers[{i}].p")
    return fields


def default_space(spec: ExperimentSpec) -> dict[str, Any]:
    """A first space: the rate over three decades around the usual ones, and the width of the
    first hidden layer around its own."""
    params: dict[str, Any] = {"optim.lr": {"type": "float", "low": 1e-4, "high": 0.1,
                                           "log": True}}
    hidden = [i for i, layer in enumerate(spec.model.layers[:-1]) if layer.type == "Linear"]
    if hidden:
        out = int(spec.model.layers[hidden[0]].params.get("out", 64))
        params[f"model.layers[{hidden[0]}].out"] = {
            "type": "int", "low": max(2, out // 4), "high": max(4, out * 2), "log": True}
    return {"params": params}


class SpaceEditor(QWidget):
    """The search space as a table a person edits; `raw()` is the JSON document it stands for."""

    def __init__(self, fields: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields = fields
        self.table = QTableWidget(0, len(SPACE_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(SPACE_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()  # each column as wide as its header and cells;
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)  # the choices take what is left (or scroll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)

    def add_row(self, path: str = "optim.lr", entry: dict[str, Any] | None = None) -> None:
        entry = entry or {"type": "float", "low": 1e-4, "high": 0.1, "log": True}
        row = self.table.rowCount()
        self.table.insertRow(row)
        field = QComboBox()
        field.setEditable(True)
        field.setMinimumContentsLength(12)  # the popup lists the longer paths whole
        field.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        field.addItems(self.fields)
        field.setCurrentText(path)
        kind = QComboBox()
        kind.addItems(list(KINDS))
        kind.setCurrentText(str(entry.get("type", "float")))
        log = QCheckBox()
        log.setChecked(bool(entry.get("log", False)))
        self.table.setCellWidget(row, 0, field)
        self.table.setCellWidget(row, 1, kind)
        for col, key in ((2, "low"), (3, "high")):
            self.table.setItem(row, col, QTableWidgetItem(_shown(entry.get(key))))
        self.table.setCellWidget(row, 4, log)
        self.table.setItem(row, 5, QTableWidgetItem(_shown(entry.get("step"))))
        choices = entry.get("choices")
        self.table.setItem(row, 6, QTableWidgetItem(
            ", ".join(_shown(c) for c in choices) if isinstance(choices, list) else ""))

    def remove_row(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)

    def set_raw(self, raw: dict[str, Any]) -> None:
        self.table.setRowCount(0)
        for path, entry in raw.get("params", {}).items():
            self.add_row(path, entry)

    def raw(self) -> dict[str, Any]:
        """The space's `params`, from the table (cells are read as JSON when they parse)."""
        params: dict[str, Any] = {}
        for row in range(self.table.rowCount()):
            path = self.table.cellWidget(row, 0).currentText().strip()
            kind = self.table.cellWidget(row, 1).currentText()
            if not path:
                continue
            entry: dict[str, Any] = {"type": kind}
            if kind == "categorical":
                text = self.table.item(row, 6).text()
                entry["choices"] = [_value(t) for t in text.split(",") if t.strip()]
            else:
                for col, key in ((2, "low"), (3, "high")):
                    entry[key] = _value(self.table.item(row, col).text())
                if self.table.cellWidget(row, 4).isChecked():
                    entry["log"] = True
                step = self.table.item(row, 5).text().strip()
                if step:
                    entry["step"] = _value(step)
            params[path] = entry
        return {"params": params}


def _value(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


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
        self.rows: dict[int, TrialRow] = {}
        self.space: SearchSpace | None = None
        self.direction = "maximize"
        self.objective = "val_accuracy"
        self.study = ""
        self.url = ""
        self.study_experiment: ExperimentSpec | None = None  # of the study shown
        self.result: SearchResult | None = None
        self.importance: dict[str, float] = {}
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

        study = QGroupBox("Study")
        form = QFormLayout(study)
        self.objective_combo = QComboBox()
        self.objective_combo.setMinimumContentsLength(14)  # the column may be narrower
        self.objective_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.objective_combo.addItem("by the task (accuracy or loss)", None)
        self.objective_combo.setToolTip("By the task: the validation accuracy for a "
                                        "classifier, the validation loss for regression")
        for name, direction in OBJECTIVES.items():
            self.objective_combo.addItem(f"{name} ({direction})", name)
        self.pruner_combo = QComboBox()
        for name in PRUNERS:
            self.pruner_combo.addItem(name, name)
        self.trials_spin = QSpinBox()
        self.trials_spin.setRange(1, 100_000)
        self.trials_spin.setValue(20)
        self.startup_spin = QSpinBox()
        self.startup_spin.setRange(0, MAX_STARTUP)
        self.startup_spin.setValue(DEFAULT_STARTUP)
        self.startup_spin.setToolTip("Trials sampled at random before TPE learns from them")
        self.storage_edit = QLineEdit()
        self.storage_edit.setPlaceholderText("search.db in the runs folder")
        self.storage_edit.setToolTip("Any SQLAlchemy database URL; give several machines the "
                                     "same one to share the work. Empty: an SQLite file, "
                                     f"search.db in {self.runs.root}")
        self.storage_edit.editingFinished.connect(self.list_studies)
        self.study_combo = QComboBox()  # the storage's studies; a new name starts a new one
        self.study_combo.setEditable(True)
        self.study_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.study_combo.setMinimumContentsLength(14)
        self.study_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.study_combo.lineEdit().setPlaceholderText("named from the experiment")
        self.study_combo.setToolTip("Pick a stored study to show its trials (Run continues "
                                    "it), or type a new name to start one")
        self.study_combo.activated.connect(self._study_picked)
        form.addRow("objective", self.objective_combo)
        form.addRow("pruner", self.pruner_combo)
        form.addRow("trials", self.trials_spin)
        form.addRow("random trials", self.startup_spin)
        form.addRow("storage", self.storage_edit)
        form.addRow("study", self.study_combo)
        left.addWidget(study)

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
        left.addLayout(buttons)
        self.status = QLabel("Set the ranges, then Run. A study resumes where it stopped.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                            | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.status.linkActivated.connect(self._link)
        left.addWidget(self.status)

        self.tabs = QTabWidget()
        self.tabs.tabBar().setUsesScrollButtons(False)  # every tab's name in view, whole
        self.tabs.addTab(self._build_table(), "Trials")
        self.best_plot = self._plot("best so far", "trial")
        self.tabs.addTab(self.best_plot, "Best so far")
        self.importance_plot = self._plot("", "share of the objective's variance (fANOVA)")
        self.importance_plot.getAxis("left").setStyle(showValues=False)
        self.tabs.addTab(self.importance_plot, "Importance")
        self.parallel_plot = self._plot("", "")
        self.parallel_plot.getAxis("left").setStyle(showValues=False)
        self.parallel_plot.showGrid(x=False, y=False)
        self.tabs.addTab(self.parallel_plot, "Parallel coordinates")
        self.tabs.currentChanged.connect(self._tab_changed)

        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(vertical_scroll(setup))  # scrolls down on a short screen
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([560, 440])  # the set-up first; the tabs keep their names whole
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._update_buttons()

    def _build_table(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_trial(row))
        v.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open run")
        self.open_button.clicked.connect(lambda: self.open_trial(self.table.currentRow()))
        self.best_button = QPushButton("Open best run")
        self.best_button.clicked.connect(self.open_best)
        row.addWidget(self.open_button)
        row.addWidget(self.best_button)
        row.addStretch(1)
        v.addLayout(row)
        note = QLabel("Opening a run loads its experiment into the editor.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        v.addWidget(note)
        return page

    @staticmethod
    def _plot(left: str, bottom: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w")
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setLabel("left", left)
        plot.setLabel("bottom", bottom)
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)
        plot.setMenuEnabled(False)
        return plot

    # -- the space ----------------------------------------------------------------------------
    def space_document(self) -> dict[str, Any]:
        raw = self.editor.raw()
        objective = self.objective_combo.currentData()
        if objective is not None:
            raw["objective"] = objective
        raw["pruner"] = self.pruner_combo.currentData()
        raw["startup_trials"] = self.startup_spin.value()
        return raw

    def set_space(self, raw: dict[str, Any]) -> None:
        """Show a space document (a loaded file, a stored study's)."""
        self.editor.set_raw(raw)
        index = self.objective_combo.findData(raw.get("objective"))
        self.objective_combo.setCurrentIndex(max(0, index))
        self.pruner_combo.setCurrentIndex(max(0, self.pruner_combo.findData(
            raw.get("pruner", "median"))))
        startup = raw.get("startup_trials", DEFAULT_STARTUP)
        self.startup_spin.setValue(startup if isinstance(startup, int) else DEFAULT_STARTUP)

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
                            storage=self.storage_edit.text().strip() or None,
                            study=self.study_combo.currentText().strip() or None,
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
        self.runner = runner
        self.space = runner.space
        self.url, self.study = runner.url, runner.study_name
        self.direction, self.objective = runner.direction, runner.objective
        self.rows.clear()
        self.importance = {}

        def work(emit: Callable[[Any], None], _cancel: threading.Event) -> SearchResult:
            runner.on_event = emit
            return runner.run()

        self.tasks.start("search", work, partial=self._on_event, done=self._on_result,
                         failed=self._on_error, finished=self._update_buttons,
                         expected=(SearchError, DataError), stop=runner.stop)
        self.status.setText(f"Opening study {html.escape(self.study)}…")
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
        if isinstance(event, StudyOpened):
            self.rows = {r.number: r for r in event.rows}
            done = sum(r.state in ("complete", "pruned") for r in event.rows)
            self.status.setText(f"Study {html.escape(event.name)}: {done} of {event.target} "
                                f"trials finished; {event.direction} {event.objective}.")
            self._refresh()
        elif isinstance(event, TrialStarted):
            self.rows[event.number] = TrialRow(event.number, "running", None, event.params)
            self._fill_table()
            self.status.setText(f"Trial {event.number} is training…")
        elif isinstance(event, TrialEvent):
            row = self.rows.get(event.number)
            inner = event.event
            if row is None:
                return
            if isinstance(inner, RunStarted):
                self.rows[event.number] = _replace(row, run_dir=inner.run_dir)
                self._fill_table()
            elif isinstance(inner, EpochEnded):
                value = getattr(inner, self.objective, None)
                self.rows[event.number] = _replace(row, epochs=inner.epoch, value=value)
                self._fill_table()
        elif isinstance(event, TrialEnded):
            self.rows[event.row.number] = event.row
            self._refresh()

    def _on_result(self, result: SearchResult) -> None:
        self.result = result
        self.rows = {r.number: r for r in result.rows}
        self._refresh()
        best = result.best
        counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
        head = "Stopped" if result.stopped else "Done"
        if best is None:
            self.status.setText(f"{head}: {counts or 'no trials'}; none completed yet.")
        else:
            self.status.setText(
                f"{head}: {counts}. Best: trial {best.number}, {result.objective} "
                f"{best.value:.4f} ({html.escape(_params_text(best.params))}). Double-click "
                "a trial to open its run.")
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
        url = self.storage_edit.text().strip() or default_storage(self.runs)
        name = self.study_combo.currentText().strip()
        if not name:
            try:
                spec = self.get_spec()
                name = default_study_name(spec, parse_space(self.space_document(), spec))
            except (SearchError, SpecError) as exc:
                dialogs.warn(self, "Cannot show the study", str(exc))
                return
        self.tasks.start("study", lambda _emit, _cancel: read_study(url, name),
                         done=self._show_view, failed=self._say, expected=(SearchError,))
        self.url, self.study = url, name
        self.status.setText(f"Reading study {html.escape(name)}…")

    def list_studies(self) -> None:
        """List the storage's studies in the study box, off the GUI thread."""
        url = self.storage_edit.text().strip() or default_storage(self.runs)
        self.tasks.start("studies", lambda _emit, _cancel: list_studies(url),
                         done=self._show_studies, failed=self._say, expected=(SearchError,))

    def _show_studies(self, studies: list[StudyInfo]) -> None:
        typed = self.study_combo.currentText()
        self.study_combo.clear()
        for info in studies:
            self.study_combo.addItem(info.name)
            self.study_combo.setItemData(self.study_combo.count() - 1, info.line(),
                                         Qt.ItemDataRole.ToolTipRole)
        self.study_combo.setEditText(typed)
        self.studiesListed.emit(studies)

    def _study_picked(self, _index: int) -> None:
        if not self.is_running():
            self.show_study()

    def _show_view(self, view: StudyView) -> None:
        self.space = view.space
        self.direction = view.direction
        self.objective = view.objective or self.objective
        if view.space is not None:
            self.set_space(view.space.to_dict())
        self.rows = {r.number: r for r in view.rows}
        self.importance = {}
        self.study_experiment = view.experiment
        self._refresh()
        head = f"Study {html.escape(view.name)}: {len(view.rows)} trials."
        if view.experiment is None or same_experiment(view.experiment, self.get_spec()):
            self.status.setText(f"{head} Run to continue it.")
        else:
            self.status.setText(f"{head} It searches another experiment than the editor's: "
                                "<a href='experiment'>open its experiment</a>, then Run to "
                                "continue it.")
        self.studyShown.emit()

    def _link(self, href: str) -> None:
        if href == "experiment" and self.study_experiment is not None:
            self.experimentOpenRequested.emit(self.study_experiment,
                                              f"{self.study_experiment.name} (study {self.study})")
            if same_experiment(self.study_experiment, self.get_spec()):
                self.status.setText(f"Study {html.escape(self.study)}: its experiment is in "
                                    "the editor. Run to continue it.")

    def _say(self, message: str) -> None:
        self.status.setText(html.escape(message))

    # -- the views ------------------------------------------------------------------------------
    def _refresh(self) -> None:
        self._fill_table()
        self._draw_best()
        self._draw_parallel()
        if self.tabs.currentWidget() is self.importance_plot:
            self.compute_importances()

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.importance_plot and not self.importance:
            self.compute_importances()

    def param_names(self) -> list[str]:
        if self.space is not None:
            return [p.path for p in self.space.params]
        names: list[str] = []
        for row in self.rows.values():
            names += [k for k in row.params if k not in names]
        return names

    def _fill_table(self) -> None:
        names = self.param_names()
        headers = ["#", "state", self.objective, "epochs", *names, "run"]
        table = self.table
        selected = table.currentRow()
        table.setColumnCount(len(headers))
        table.setHorizontalHeaderLabels(headers)
        rows = sorted(self.rows.values(), key=lambda r: r.number)
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            value = "-" if row.value is None else f"{row.value:.4f}"
            cells = [str(row.number), row.state, value, str(row.epochs),
                     *(_fmt(row.params.get(n, "")) for n in names),
                     Path(row.run_dir).name if row.run_dir else ""]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setForeground(pg.mkColor(STATE_COLORS.get(row.state, "#1d232b")))
                if c == len(cells) - 1 and row.error:
                    item.setToolTip(row.error)
                table.setItem(r, c, item)
        table.resizeColumnsToContents()
        if 0 <= selected < len(rows):
            table.selectRow(selected)

    def trial_at(self, table_row: int) -> TrialRow | None:
        rows = sorted(self.rows.values(), key=lambda r: r.number)
        return rows[table_row] if 0 <= table_row < len(rows) else None

    def open_trial(self, table_row: int) -> bool:
        row = self.trial_at(table_row)
        if row is None or not row.run_dir:
            self.status.setText("That trial has no run to open.")
            return False
        self.runOpenRequested.emit(row.run_dir)
        return True

    def best_row(self) -> TrialRow | None:
        done = [r for r in self.rows.values() if r.state == "complete" and r.value is not None]
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda r: r.value)  # type: ignore[arg-type, return-value]

    def open_best(self) -> bool:
        best = self.best_row()
        if best is None or not best.run_dir:
            self.status.setText("No trial has completed yet.")
            return False
        self.runOpenRequested.emit(best.run_dir)
        return True

    def _draw_best(self) -> None:
        plot = self.best_plot
        plot.clear()
        rows = list(self.rows.values())
        done = [r for r in rows if r.state == "complete" and r.value is not None]
        plot.setLabel("left", f"best {self.objective} so far")
        if not done:
            return
        plot.plot([r.number for r in done], [r.value for r in done], pen=None, symbol="o",
                  symbolSize=6, symbolBrush="#b8c2d0", symbolPen=None)
        xs, ys = best_so_far(rows, self.direction)
        plot.plot(xs, ys, pen=pg.mkPen(ACCENT, width=2), stepMode=None, symbol="o",
                  symbolSize=7, symbolBrush=ACCENT, symbolPen=None)

    def compute_importances(self) -> None:
        """Each field's importance, computed off the GUI thread from the stored study."""
        if not self.url or not self.study:
            return
        url, study = self.url, self.study
        self.tasks.start("importance", lambda _emit, _cancel: importances(url, study),
                         done=self._draw_importance, failed=self._say, expected=(SearchError,))

    def _draw_importance(self, values: dict[str, float]) -> None:
        self.importance = dict(values)
        plot = self.importance_plot
        plot.clear()
        if not values:
            text = pg.TextItem("Importances appear once two trials have completed with "
                               "different results.", color="#5b6675")
            plot.addItem(text)
            self.importancesShown.emit(self.importance)
            return
        names = list(values)[::-1]  # the most important on top
        widths = [values[n] for n in names]
        plot.addItem(pg.BarGraphItem(x0=0, y=list(range(len(names))), height=0.5,
                                     width=widths, brush=ACCENT, pen=None))
        for i, name in enumerate(names):  # the name above its bar: long paths stay readable
            label = pg.TextItem(f"{name}   {100 * values[name]:.0f}%", color="#1d232b",
                                anchor=(0, 1))
            label.setPos(0, i + 0.28)
            plot.addItem(label)
        plot.setXRange(0, 1, padding=0.02)
        plot.setYRange(-0.5, len(names) - 0.1, padding=0)
        self.importancesShown.emit(self.importance)

    def parallel_lines(self) -> tuple[list[str], list[tuple[TrialRow, list[float]]]]:
        """Axis names and, per finished trial, its values scaled to 0..1 on each axis (ranges
        by the space: log axes in log; choices spread evenly); the objective last."""
        names = self.param_names()
        rows = [r for r in sorted(self.rows.values(), key=lambda r: r.number)
                if r.state in ("complete", "pruned") and all(n in r.params for n in names)]
        values = [r.value for r in rows if r.value is not None and math.isfinite(r.value)]
        lo_v, hi_v = (min(values), max(values)) if values else (0.0, 1.0)
        params = {p.path: p for p in self.space.params} if self.space is not None else {}
        out = []
        for row in rows:
            ys = [_scale(params.get(n), row.params[n], [r.params[n] for r in rows])
                  for n in names]
            value = row.value
            ys.append(0.5 if value is None or hi_v == lo_v else (value - lo_v) / (hi_v - lo_v))
            out.append((row, ys))
        return [*names, self.objective], out

    def axis_ends(self, names: list[str],
                  lines: list[tuple[TrialRow, list[float]]]) -> list[tuple[str, str]]:
        params = {p.path: p for p in self.space.params} if self.space is not None else {}
        rows = [row for row, _ys in lines]
        ends = [_ends(params.get(n), [r.params[n] for r in rows]) for n in names[:-1]]
        values = [r.value for r in rows if r.value is not None]
        ends.append((_fmt(min(values)), _fmt(max(values))) if values else ("", ""))
        return ends

    def _draw_parallel(self) -> None:
        """A line per finished trial across one axis per field and the objective; complete
        trials coloured from worst (dark) to best (yellow), pruned ones grey and dashed."""
        plot = self.parallel_plot
        plot.clear()
        names, lines = self.parallel_lines()
        if not lines:
            return
        xs = np.arange(len(names), dtype=float)
        for x, (low, high) in zip(xs, self.axis_ends(names, lines), strict=True):
            plot.addItem(pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen("#c5ccd6", width=1)))
            for y, text, anchor in ((0.0, low, (0.5, 0)), (1.0, high, (0.5, 1))):
                label = pg.TextItem(text, color="#5b6675", anchor=anchor, fill="#ffffffc8")
                label.setPos(x, y)
                plot.addItem(label)
        done = [ys[-1] for row, ys in lines if row.state == "complete"]
        lo, hi = (min(done), max(done)) if done else (0.0, 1.0)
        cmap = pg.colormap.get("viridis")
        for row, ys in lines:  # the best drawn last, on top
            if row.state != "complete":
                plot.plot(xs, ys, pen=pg.mkPen("#c5ccd6", width=1, style=Qt.PenStyle.DashLine))
        for row, ys in sorted(lines, key=lambda line: line[1][-1]
                              * (1 if self.direction == "maximize" else -1)):
            if row.state == "complete":
                t = 0.5 if hi == lo else (ys[-1] - lo) / (hi - lo)
                t = t if self.direction == "maximize" else 1 - t
                plot.plot(xs, ys, pen=pg.mkPen(cmap.map(t, mode="qcolor"), width=2))
        plot.getAxis("bottom").setTicks([[(i, n) for i, n in enumerate(names)]])
        plot.setXRange(-0.3, len(names) - 0.7, padding=0)
        plot.setYRange(-0.08, 1.08, padding=0)


def _ends(param: Any, column: list[Any]) -> tuple[str, str]:
    """What the bottom and top of a field's axis stand for."""
    if param is not None and param.kind == "categorical":
        return _fmt(param.choices[0]), _fmt(param.choices[-1])
    if param is not None:
        return _fmt(param.low), _fmt(param.high)
    numbers = [v for v in column if isinstance(v, int | float) and not isinstance(v, bool)]
    return (_fmt(min(numbers)), _fmt(max(numbers))) if numbers else ("", "")


def _scale(param: Any, value: Any, column: list[Any]) -> float:
    """A value's place on its axis, 0..1."""
    if param is not None and param.kind == "categorical":
        choices = list(param.choices)
        i = next((k for k, c in enumerate(choices) if c == value), 0)
        return 0.5 if len(choices) == 1 else i / (len(choices) - 1)
    if not isinstance(value, int | float) or isinstance(value, bool):
        distinct = sorted({json.dumps(v) for v in column})
        i = distinct.index(json.dumps(value))
        return 0.5 if len(distinct) == 1 else i / (len(distinct) - 1)
    if param is not None:
        lo, hi, log = float(param.low), float(param.high), param.log
    else:
        numbers = [float(v) for v in column]
        lo, hi, log = min(numbers), max(numbers), False
    if log and lo > 0 and value > 0:
        lo, hi, value = math.log10(lo), math.log10(hi), math.log10(value)
    return 0.5 if hi == lo else (float(value) - lo) / (hi - lo)


def _replace(row: TrialRow, **changes: Any) -> TrialRow:
    from dataclasses import replace

    return replace(row, **changes)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {_fmt(v)}" for k, v in params.items())


__all__ = ["SearchPanel", "SpaceEditor", "default_space", "suggested_fields"]


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.gui.demo import demo_runs, example_spec
    from workbench.gui.widgets.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    sample = example_spec("moons_logistic")
    panel = SearchPanel(lambda: sample, Workspace(demo_runs()))
    panel.trials_spin.setValue(8)
    panel.resize(1280, 760)
    panel.show()
    panel.run()
    code = app.exec()
    panel.shutdown()
    sys.exit(code)
