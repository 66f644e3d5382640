"""Fork a run: pick a stored run and one of its epoch checkpoints, say what changes (a small
table of fields, or the experiment editor's differences from the run), and train the fork in
the training panel, drawn as a branch of its parent.

The fork is checked as it is edited (`plan_fork`, on a worker: it reads the run's files, and a
changed dataset's): the Fork button is enabled only for a fork that can run, and the line under
the table says why not. Every read (the runs with checkpoints, a run's spec for the editor's
changes) is a task too: nothing is read on the GUI thread.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.store.runs import RunError, RunInfo
from workbench.core.tools.compare import COMMON_FIELDS, parse_value
from workbench.core.tools.fork import ForkError, ForkPlan, plan_fork
from workbench.core.workspace import Workspace
from workbench.gui.run_rules import run_titles
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.fork.presenter import (
    editor_changes,
    plan_text,
    value_text,
    with_checkpoints,
)
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.widgets.style import ERROR, TEXT
from workbench.spec import ExperimentSpec


class ForkDialog(Tool, QDialog):
    """`forkRequested(ForkPlan)` when the person presses Fork with a fork that can run."""

    forkRequested = Signal(object)
    runsListed = Signal()  # the runs with checkpoints are in the picker
    checked = Signal(object)  # each check's outcome: the ForkPlan, or None
    changesTaken = Signal(object)  # the editor's changes, in the table (dict), or None

    def __init__(self, workspace: Workspace, get_spec: Callable[[], ExperimentSpec],
                 selected: str | None = None, parent: QWidget | None = None, *,
                 infos: list[RunInfo] | None = None) -> None:
        super().__init__(parent)
        self.runs, self.get_spec = workspace.runs, get_spec
        self.plan: ForkPlan | None = None
        self.tasks = Tasks(self, workspace.jobs)
        self._epochs: dict[str, list[int]] = {}  # run folder -> the epochs it can fork at
        self._wanted = selected
        self.setWindowTitle("Fork a run")

        self.run_combo = QComboBox()
        self.run_combo.currentIndexChanged.connect(self._run_changed)
        self.epoch_combo = QComboBox()
        self.epoch_combo.currentIndexChanged.connect(self.check)
        form = QFormLayout()
        form.addRow("Run", self.run_combo)
        form.addRow("Fork after epoch", self.epoch_combo)

        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["field", "new value"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self.check)
        add = QPushButton("Add change")
        add.clicked.connect(lambda: self.add_change("optim.lr", ""))
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove_selected)
        from_editor = QPushButton("Take the editor's changes")
        from_editor.setToolTip("Fill the table with every setting where the experiment in the "
                               "editor differs from the run")
        from_editor.clicked.connect(self.take_editor_changes)
        row = QHBoxLayout()
        for button in (add, remove, from_editor):
            row.addWidget(button)
        row.addStretch(1)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.fork_button = QPushButton("Fork and train")
        self.fork_button.setDefault(True)
        self.fork_button.clicked.connect(self.fork)
        self.fork_button.setEnabled(False)  # until a fork is planned
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.fork_button)
        buttons.addWidget(cancel)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Changes (nothing changed: the fork repeats its parent "
                                "exactly)"))
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.resize(620, 440)
        self._say("Looking for runs with epoch checkpoints…")
        runs, listed = self.runs, None if infos is None else tuple(infos)
        self.tasks.start("runs", lambda _report, _cancel: with_checkpoints(
            runs.list() if listed is None else list(listed)), done=self._fill_runs,
            failed=self._runs_failed, expected=(RunError, OSError))

    # -- the tool protocol -----------------------------------------------------------------
    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **_: Any) -> ForkDialog:
        """The dialog on `run_dir` (the selected run), offering the runs the Runs list has."""
        feed = host.run_feed()
        dialog = cls(host.workspace, host.experiment, run_dir, host.parent_widget(),
                     infos=feed.infos if feed is not None else None)
        dialog.forkRequested.connect(host.start_fork)
        return dialog

    def show_run(self, run_dir: str, **_: Any) -> None:
        self.set_run(run_dir)

    def working_on(self) -> str | None:
        return self.run_dir()

    def set_run(self, run_dir: str) -> None:
        """Fork `run_dir` (when it has epoch checkpoints to fork from)."""
        self._wanted = str(run_dir)  # also once the runs are listed
        index = self.run_combo.findData(str(run_dir))
        if index >= 0:
            self.run_combo.setCurrentIndex(index)

    # -- runs and epochs ----------------------------------------------------------------------
    def _fill_runs(self, found: list[tuple[RunInfo, list[int]]]) -> None:
        self._epochs = {str(info.path): epochs for info, epochs in found}
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        titles = run_titles([info for info, _epochs in found])  # runs alike told apart
        for (info, epochs), title in zip(found, titles, strict=True):
            self.run_combo.addItem(f"{title}  ·  {info.summary.get('status', '?')}  ·  "
                                   f"{len(epochs)} checkpoints", str(info.path))
        index = self.run_combo.findData(self._wanted) if self._wanted else -1
        self.run_combo.setCurrentIndex(max(0, index))
        self.run_combo.blockSignals(False)
        self._run_changed()
        self.runsListed.emit()

    def _runs_failed(self, message: str) -> None:
        self._say(f"Cannot list the runs: {message}", error=True)
        self.runsListed.emit()

    def run_dir(self) -> str | None:
        return self.run_combo.currentData()

    def _run_changed(self, *_: Any) -> None:
        self.tasks.cancel("editor")  # the changes from the run picked before are stale
        self.epoch_combo.blockSignals(True)
        self.epoch_combo.clear()
        run_dir = self.run_dir()
        for epoch in self._epochs.get(run_dir, []) if run_dir else []:
            self.epoch_combo.addItem(str(epoch), epoch)
        self.epoch_combo.setCurrentIndex(self.epoch_combo.count() - 1)
        self.epoch_combo.blockSignals(False)
        self.check()

    def set_epoch(self, epoch: int) -> None:
        self.epoch_combo.setCurrentIndex(self.epoch_combo.findData(epoch))

    # -- the changes ----------------------------------------------------------------------------
    def add_change(self, field: str, value: Any) -> None:
        row = self.table.rowCount()
        self.table.blockSignals(True)
        self.table.insertRow(row)
        combo = QComboBox()
        combo.setEditable(True)
        combo.addItems([f for f in COMMON_FIELDS if f != "model.dropout"])
        combo.setCurrentText(field)
        combo.currentTextChanged.connect(self.check)
        self.table.setCellWidget(row, 0, combo)
        text = value if isinstance(value, str) else value_text(value)
        self.table.setItem(row, 1, QTableWidgetItem(text))
        self.table.blockSignals(False)
        self.check()

    def _remove_selected(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)
            self.check()

    def clear_changes(self) -> None:
        self.table.setRowCount(0)
        self.check()

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for row in range(self.table.rowCount()):
            combo = self.table.cellWidget(row, 0)
            item = self.table.item(row, 1)
            field = combo.currentText().strip() if combo is not None else ""
            text = item.text().strip() if item is not None else ""
            if field and text:
                out[field] = parse_value(text)
        return out

    def take_editor_changes(self) -> None:
        """Fill the table with the editor's differences from the chosen run (its spec read
        off the GUI thread; `changesTaken` then)."""
        run_dir = self.run_dir()
        if run_dir is None:
            return
        editor = self.get_spec()
        self.tasks.start("editor", lambda _report, _cancel: editor_changes(run_dir, editor),
                         done=self._take_changes, failed=self._changes_failed,
                         expected=(RunError, OSError))

    def _changes_failed(self, message: str) -> None:
        self._say(message, error=True)
        self.changesTaken.emit(None)

    def _take_changes(self, changes: dict[str, Any]) -> None:
        self.table.setRowCount(0)
        for field, value in changes.items():
            self.add_change(field, value)
        if not changes:
            self.check()
            self._say("The editor's experiment is the run's: nothing to change.")
        self.changesTaken.emit(changes)

    # -- checking and forking -------------------------------------------------------------------
    def check(self, *_: Any) -> None:
        """Plan the fork as it stands, off the GUI thread (a newer edit drops the older
        check); the message says what it will do or why it cannot, and `checked` follows."""
        self.plan = None
        self.fork_button.setEnabled(False)
        self.tasks.cancel("plan")
        run_dir, epoch = self.run_dir(), self.epoch_combo.currentData()
        if self.tasks.is_running("runs"):
            self._say("Looking for runs with epoch checkpoints…")
        elif run_dir is None:
            self._say("No run has epoch checkpoints yet: train one (checkpoints are kept "
                      "every train.checkpoint_every epochs).", error=True)
        elif epoch is not None:
            changes = self.changes()
            self.tasks.start("plan", lambda _report, _cancel: plan_fork(run_dir, epoch, changes),
                             done=self._planned, failed=self._refused, expected=(ForkError,))

    def _planned(self, plan: ForkPlan) -> None:
        self.plan = plan
        self._say(plan_text(plan))
        self.fork_button.setEnabled(True)
        self.checked.emit(plan)

    def _refused(self, message: str) -> None:
        self._say(message, error=True)
        self.checked.emit(None)

    def _say(self, text: str, *, error: bool = False) -> None:
        color = ERROR if error else TEXT
        self.message.setText(f"<span style='color:{color}'>{html.escape(text)}</span>")

    def shutdown(self) -> None:
        self.tasks.shutdown()

    def done(self, result: int) -> None:  # accepted, rejected or closed: its thread ends too
        self.shutdown()
        super().done(result)

    def fork(self) -> None:
        """Train the fork of the latest check: an edit clears the plan until its own check
        answers (an older check's answer is dropped), so a plan here is never stale."""
        if self.plan is None:
            return
        self.forkRequested.emit(self.plan)
        self.accept()


__all__ = ["ForkDialog"]


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.core.training.loop import Trainer
    from workbench.gui.demo import demo_workspace, example_spec
    from workbench.gui.widgets.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    sample, workspace = example_spec().with_value("train.epochs", 5), demo_workspace()
    for _event in Trainer(sample, runs=workspace.runs).events():  # a run to fork, 5 checkpoints
        pass
    dialog = ForkDialog(workspace, lambda: sample)
    dialog.forkRequested.connect(lambda plan: print(plan))
    dialog.show()
    sys.exit(app.exec())
