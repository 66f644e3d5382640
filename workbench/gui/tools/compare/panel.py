"""The Compare panel: race optimizers (or any field's values) on the current experiment.

Left: what varies (optimizers, each at the experiment's rate unless the person gives it its
own; and optionally one more field), the target accuracy, Run/Stop, and adding past runs,
saving and opening comparisons. Right: overlaid curves (one colour per variant) against
epoch, step or time; a sortable results table (each variant's rate, a failure's reason); and
the loss landscape around one variant's final weights, computed off the thread. Every file the
panel reads or writes (runs' metrics and summaries, saved comparisons, the store's listing) is
read or written by the panel's tasks, on data from the workspace's cache.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.tools.compare import (
    COMMON_FIELDS,
    DEFAULT_OPTIMIZERS,
    Comparison,
    ComparisonRunner,
    Curves,
    ResultRow,
    default_name,
    results,
    save_comparison,
)
from workbench.core.training.events import EpochEnded, RunFailed, RunFinished
from workbench.core.workspace import Workspace
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.compare.curves import CurvesPage
from workbench.gui.tools.compare.files import ComparisonFilesMixin
from workbench.gui.tools.compare.landscape import LandscapePage
from workbench.gui.tools.compare.presenter import (
    NOTHING,
    Branch,
    build_variants,
    ended_text,
    label_apart,
    progress_text,
    rate_note,
)
from workbench.gui.tools.compare.results_table import ResultsTable
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.widgets import dialogs
from workbench.gui.widgets.fields import SciSpinBox
from workbench.gui.widgets.layouts import FlowLayout, fit_table_width, scroll_above
from workbench.gui.widgets.style import HINT
from workbench.spec import OPTIMIZER_TITLES, OPTIMIZERS, ExperimentSpec, SpecError

REDRAW_MS = 250  # points that arrive within this go into one redraw
FOLD_SETUP_BELOW = 1000  # a comparison that starts in a narrower panel folds the set-up away
LR_WIDTH = 96
FOLLOWS_STYLE = f"font-style: italic; color: {HINT};"  # a rate that follows the experiment's


class ComparePanel(ComparisonFilesMixin, Tool, QWidget):
    """Compare variants of the experiment `get_spec()` returns; runs go to the workspace."""

    comparisonFinished = Signal()  # its variants ended and the comparison is saved
    saved = Signal(str)  # Save wrote the comparison to this file
    landscapeReady = Signal()
    runsRead = Signal()  # stored runs or a saved comparison asked for are shown (or refused)

    def __init__(self, get_spec: Callable[[], ExperimentSpec], workspace: Workspace,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.get_spec = get_spec
        self.workspace = workspace
        self.runs = workspace.runs
        self.comparison = Comparison("comparison")
        self.curves: list[Curves] = []
        self.tasks = Tasks(self, workspace.jobs)
        self._table_dirty = False
        self._branches: dict[str | None, Branch] = {}  # run -> the fork it is (read off-thread)
        self._adding: list[str] = []  # runs asked for, being read
        self._own_rates: dict[str, float] = {}  # the rates the person set (else the spec's)
        self._syncing = False
        self._error: str | None = None  # what stopped the running comparison, if anything
        self.feed: Any = None
        self._build()
        self.sync_rates()
        self._timer = QTimer(self)  # single-shot: started by new data, idle otherwise
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)

    # -- the tool protocol -----------------------------------------------------------------
    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **_: Any) -> ComparePanel:
        """Compare on the experiment in the editor; "Add past runs…" offers the Runs list's."""
        panel = cls(host.experiment, host.workspace, host.parent_widget())
        feed = host.run_feed()
        if feed is not None:
            panel.follow(feed)
        try:
            model, _undo = host.edited()
        except LookupError:  # opened alone, on an experiment nobody edits
            model = None
        if model is not None:  # the rates that follow the experiment follow its edits
            model.changed.connect(panel.sync_rates)
        if run_dir is not None:
            panel.show_run(run_dir)
        return panel

    def show_run(self, run_dir: str, **_: Any) -> None:
        """Add `run_dir`'s curves, unless the comparison has them (or is reading them)."""
        if run_dir not in [v.run_dir for v in self.comparison.variants] + self._adding:
            self.add_runs([run_dir])

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        setup = QWidget()
        left = QVBoxLayout(setup)
        box = QGroupBox("Optimizers")
        self.rate_note = QLabel()
        self.rate_note.setObjectName("hint")
        self.rate_note.setWordWrap(True)
        self.optim_table = QTableWidget(len(OPTIMIZERS), 2)
        self.optim_table.setHorizontalHeaderLabels(["optimizer", "learning rate"])
        self.optim_table.verticalHeader().setVisible(False)
        self.optim_table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.optim_table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.optim_checks: dict[str, QCheckBox] = {}
        self.optim_lrs: dict[str, QDoubleSpinBox] = {}
        for row, name in enumerate(OPTIMIZERS):
            check = QCheckBox(OPTIMIZER_TITLES[name])
            check.setChecked(name in DEFAULT_OPTIMIZERS)
            lr = SciSpinBox.for_field("optim.lr")
            lr.setFixedWidth(LR_WIDTH)  # a rate such as 0.001 or 1e-05, not twelve decimals
            lr.valueChanged.connect(lambda value, n=name: self._rate_edited(n, value))
            self.optim_checks[name] = check
            self.optim_lrs[name] = lr
            self.optim_table.setCellWidget(row, 0, check)
            self.optim_table.setCellWidget(row, 1, lr)
        self.optim_table.setMinimumHeight(30 * len(OPTIMIZERS) + 30)
        fit_table_width(self.optim_table)  # every optimizer's name whole
        self.rates_button = QPushButton("Use the experiment's rate for all")
        self.rates_button.clicked.connect(self.reset_rates)
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.rate_note)
        box_layout.addWidget(self.rates_button)
        box_layout.addWidget(self.optim_table)
        left.addWidget(box)

        vary = QGroupBox("Also vary")
        form = QFormLayout(vary)
        self.field_combo = QComboBox()
        self.field_combo.setEditable(True)
        self.field_combo.addItem(NOTHING)
        self.field_combo.addItems([f for f in COMMON_FIELDS if f != "optim.name"])
        self.field_combo.currentTextChanged.connect(self._field_changed)
        self.values_edit = QLineEdit()
        self.values_edit.setPlaceholderText("values, separated by commas")
        form.addRow("field", self.field_combo)
        form.addRow("values", self.values_edit)
        self.target_spin = QDoubleSpinBox()
        self.target_spin.setRange(0.0, 1.0)
        self.target_spin.setDecimals(3)
        self.target_spin.setSingleStep(0.01)
        self.target_spin.setValue(0.9)
        self.target_spin.valueChanged.connect(self._target_changed)
        form.addRow("target accuracy", self.target_spin)
        left.addWidget(vary)

        left.addStretch(1)
        # what acts stays in view below the settings, however short the screen
        actions = QWidget()
        below = QVBoxLayout(actions)
        below.setContentsMargins(0, 0, 0, 0)
        self.run_button = QPushButton("Run comparison")
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.stop_button)
        below.addLayout(row)
        more = QWidget()
        row2 = FlowLayout(more, spacing=6, line_spacing=4)
        for text, slot in (("Add past runs…", self._pick_runs), ("Open…", self._open),
                           ("Save", self._save), ("Clear", self.clear)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row2.addWidget(button)
        below.addWidget(more)
        self.status = QLabel("Pick optimizers or a field to vary, then Run.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        below.addWidget(self.status)

        self.tabs = QTabWidget()
        self.curves_page = CurvesPage()
        self.curves_page.axisChanged.connect(self._schedule)
        self.tabs.addTab(self.curves_page, "Curves")
        self.results_table = ResultsTable()
        self.tabs.addTab(self.results_table, "Results")
        self.landscape = LandscapePage(self.workspace, self.tasks)
        self.landscape.ready.connect(self.landscapeReady)
        self.tabs.addTab(self.landscape, "Landscape")

        # the set-up column folds away (a button in the tabs' corner) to give the plots room
        self.setup = scroll_above(setup, actions)
        self.setup_button = QToolButton()
        self.setup_button.setCheckable(True)
        self.setup_button.setChecked(True)
        self.setup_button.setAutoRaise(True)
        self.setup_button.toggled.connect(self.show_setup)
        self.show_setup(True)
        self.tabs.setCornerWidget(self.setup_button, Qt.Corner.TopLeftCorner)
        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.setup)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def show_setup(self, shown: bool) -> None:
        """Show or fold away the set-up column (the plots take its room)."""
        self.setup.setVisible(shown)
        self.setup_button.setArrowType(Qt.ArrowType.LeftArrow if shown
                                       else Qt.ArrowType.RightArrow)
        self.setup_button.setToolTip("Hide the set-up column" if shown
                                     else "Show the set-up column (optimizers, Run, Save)")
        if self.setup_button.isChecked() != shown:
            self.setup_button.setChecked(shown)

    # -- building and running -------------------------------------------------------------
    def _field_changed(self, text: str) -> None:
        self.values_edit.setText(COMMON_FIELDS.get(text, ""))

    def _target_changed(self, value: float) -> None:
        self.comparison.target_accuracy = value
        self._schedule(table=True)

    def chosen_optimizers(self) -> dict[str, float | None]:
        """The ticked optimizers, each with the rate the person gave it (None: the
        experiment's)."""
        return {name: self._own_rates.get(name) for name in OPTIMIZERS
                if self.optim_checks[name].isChecked()}

    def set_optimizers(self, chosen: dict[str, float | None]) -> None:
        """Tick these optimizers, each with its own rate (None: the experiment's), and untick
        the rest."""
        for name in OPTIMIZERS:
            self.optim_checks[name].setChecked(name in chosen)
            rate = chosen.get(name)
            if rate is None:
                self._own_rates.pop(name, None)
            else:
                self.optim_lrs[name].setValue(rate)  # the person's own rate
        self.sync_rates()

    def sync_rates(self) -> None:
        """Show each optimizer's rate: its own, else the experiment's (greyed and italic,
        following the experiment as it is edited)."""
        try:
            lr = self.get_spec().optim.lr
        except (SpecError, ValueError):
            return
        self.rate_note.setText(rate_note(lr))
        self._syncing = True
        try:
            for name, spin in self.optim_lrs.items():
                own = name in self._own_rates
                spin.setValue(self._own_rates[name] if own else lr)
                spin.setStyleSheet("" if own else FOLLOWS_STYLE)
                spin.setToolTip(f"{OPTIMIZER_TITLES[name]}'s own rate (the experiment's is "
                                f"{lr:g})" if own else
                                f"The experiment's rate, {lr:g}: type another to give "
                                f"{OPTIMIZER_TITLES[name]} its own")
        finally:
            self._syncing = False
        self.rates_button.setEnabled(bool(self._own_rates))

    def _rate_edited(self, name: str, value: float) -> None:
        if not self._syncing:
            self._own_rates[name] = value
            self.sync_rates()

    def reset_rates(self) -> None:
        """Every optimizer at the experiment's rate again."""
        self._own_rates.clear()
        self.sync_rates()

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.sync_rates()  # the experiment may have changed while the panel was hidden
        super().showEvent(event)

    def set_field(self, path: str, values: str) -> None:
        self.field_combo.setCurrentText(path)
        self.values_edit.setText(values)

    def build_variants(self) -> list[Any]:
        """The variants the controls describe; SpecError naming the field when they are bad."""
        return build_variants(self.get_spec(), self.chosen_optimizers(),
                              self.field_combo.currentText(), self.values_edit.text())

    def run(self) -> None:
        """Add the variants the controls describe and run every pending one."""
        if self.is_running():
            return
        self.sync_rates()
        try:
            variants = self.build_variants()
        except SpecError as exc:
            self.status.setText(f"Cannot run: {exc}")
            return
        if not self.comparison.variants:
            self.comparison = Comparison(default_name(self.get_spec()), [],
                                         self.target_spin.value())
        other = self.comparison.other_data(variants[0].spec)
        if other is not None:
            dialogs.warn(self, "Other data", f"The experiment's variants join runs trained on "
                         f"other data: {other}.")
        label_apart(variants, [v.label for v in self.comparison.variants])
        for variant in variants:
            self.comparison.variants.append(variant)
            self.curves.append(Curves())
        self._sync_lines()
        self.start_pending()

    def start_pending(self, **runner_options: Any) -> None:
        pending = self.comparison.pending()
        if not pending:
            self.status.setText("Nothing to run: every variant has its run.")
            return
        runner = ComparisonRunner(self.comparison, self.runs, source=self.workspace,
                                  **runner_options)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        if self.width() < FOLD_SETUP_BELOW:  # a narrow panel: the race gets the room
            self.show_setup(False)
        self.status.setText(f"Running {len(pending)} variants one after another...")
        self._error = None
        self._running = pending
        self.tasks.start("compare", lambda _report, _cancel: runner.events(),
                         partial=self._on_event, stop=runner.stop, failed=self._on_error,
                         finished=self._on_finished,
                         title=f"Comparison of {len(pending)} variants")

    def stop(self) -> None:
        """Stop the variants in flight; what they did so far is kept and saved."""
        self.tasks.stop("compare")

    def is_running(self) -> bool:
        return self.tasks.is_running("compare")

    def shutdown(self) -> None:
        """Stop every background job and wait for it (closing the window, tests)."""
        self.tasks.shutdown()
        self._timer.stop()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)

    def _on_event(self, pair: Any) -> None:
        index, event = pair
        self.comparison.record(index, event)  # the run folder, on this thread: the runner's
        self.curves[index].add(event)  # events carry it, it writes into nothing of ours
        self._schedule(table=isinstance(event, EpochEnded | RunFinished | RunFailed))
        if isinstance(event, RunFinished | RunFailed):
            self.status.setText(progress_text(self.curves, self.comparison.variants[index].label,
                                              index))

    def _on_error(self, message: str) -> None:
        """The comparison itself stopped on an error: the variants it had not ended fail
        with it, so each row says what happened."""
        self._error = message
        for index in getattr(self, "_running", []):
            if index < len(self.curves) and self.curves[index].status in ("pending", "running"):
                self.curves[index].add(RunFailed(None, message, ""))

    def _on_finished(self) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self._table_dirty = True
        self._redraw()
        rows, error = self.rows(), self._error
        self.status.setText(ended_text(rows, error, None) + " Saving…")
        comparison, runs = copy.deepcopy(self.comparison), self.runs
        self.tasks.start("save", lambda _report, _cancel: save_comparison(comparison, runs),
                         done=lambda path: self._saved_after_run(rows, error, path.name),
                         failed=lambda message: self._saved_after_run(rows, error, None,
                                                                      message),
                         expected=(OSError,))

    def _saved_after_run(self, rows: list[ResultRow], error: str | None, saved: str | None,
                         save_error: str | None = None) -> None:
        self.status.setText(ended_text(rows, error, saved, save_error))
        self.comparisonFinished.emit()

    def clear(self) -> None:
        if self.is_running():
            return
        self.tasks.cancel("add")
        self._adding = []
        self._clear_lines()
        self.comparison = Comparison("comparison", [], self.target_spin.value())
        self.curves = []
        self._table_dirty = True
        self._redraw()
        self.curves_page.placeholder.show_content(False)

    # -- drawing --------------------------------------------------------------------------
    def _clear_lines(self) -> None:
        self.curves_page.clear()

    def _sync_lines(self) -> None:
        """Create the curves of variants added since the last call (created once, then fed)."""
        legend = self.curves_page.sync(self.comparison.variants)
        self.landscape.set_variants(self.comparison.variants, legend)

    def _schedule(self, *, table: bool = False) -> None:
        """Redraw soon: the curves' new points (and the table, with `table`)."""
        self._table_dirty = self._table_dirty or table
        if not self._timer.isActive():
            self._timer.start()

    def branch_starts(self) -> dict[int, int]:
        """Variant index -> the global step its curves start at: a fork whose parent is in
        the comparison is drawn as a branch off the parent's curves, from the fork on."""
        present = {v.run_dir for v in self.comparison.variants if v.run_dir}
        out = {}
        for index, variant in enumerate(self.comparison.variants):
            branch = self._branches.get(variant.run_dir)  # read with the run; a new one is none
            if branch is not None and branch[0] in present:
                out[index] = branch[2]
        return out

    def _redraw(self) -> None:
        self._timer.stop()
        self.curves_page.feed(self.curves, self.branch_starts())
        self.curves_page.draw()
        if self._table_dirty:
            self._table_dirty = False
            self.results_table.fill(self.rows(), self.comparison.target_accuracy)

    def rows(self) -> list[ResultRow]:
        return results(self.comparison, self.curves)

    # -- landscape ------------------------------------------------------------------------
    def compute_landscape(self) -> None:
        """Compute the slice around the chosen variant's final weights, off the GUI thread."""
        self.landscape.compute()


if __name__ == "__main__":
    import sys

    import pyqtgraph as pg

    from workbench.gui.demo import demo_workspace, example_spec, show_alone
    from workbench.gui.widgets.style import apply_style

    apply_style(pg.mkQApp("Compare"))
    sample = example_spec().with_value("train.epochs", 15)
    panel = ComparePanel(lambda: sample, demo_workspace())
    sys.exit(show_alone(panel, (1400, 820), start=panel.run))
