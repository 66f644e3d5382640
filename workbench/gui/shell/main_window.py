"""The main window: editors (model, data, optimizer) on the left, training in the centre, the
run history in a dock; File/Edit/Tools/View/Help menus; projects saved as spec JSON.

The window creates the one `Workspace` (run store, dataset cache, background jobs) and hands it
to every panel and tool; closing the window names every job its registry lists, stops them
all and waits a few seconds at most (a job that has not ended by then is abandoned, in the
log).

PyTorch is not imported on the way to a visible window: a worker thread imports it just after
the window is painted, and the training panel, which needs it, is put in place then (at once
when torch is already loaded).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QGuiApplication,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QLabel,
    QMainWindow,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.workspace import Workspace
from workbench.gui.document.experiment_model import ExperimentModel
from workbench.gui.editors.data_panel import DataPanel
from workbench.gui.editors.model_editor import ModelEditor
from workbench.gui.editors.name_field import NameField
from workbench.gui.editors.optim_panel import OptimPanel
from workbench.gui.shell import project
from workbench.gui.shell.documents import DocumentsMixin
from workbench.gui.shell.help_actions import HelpMixin
from workbench.gui.shell.help_views import WelcomeBanner
from workbench.gui.shell.menus import MenusMixin
from workbench.gui.shell.presenter import blocked_reason, running_jobs_question
from workbench.gui.shell.reports import ReportExport
from workbench.gui.shell.run_actions import RunActionsMixin
from workbench.gui.shell.run_history import RunHistory
from workbench.gui.shell.tool_shelf import ToolShelf
from workbench.gui.shell.warmup import heavy_loaded, load_heavy
from workbench.gui.threads.tasks import Tasks
from workbench.gui.widgets import dialogs
from workbench.spec import ExperimentSpec

TrainPanelFactory = Callable[[Callable[[], ExperimentSpec], Workspace, QWidget], QWidget]
# Importing torch cannot be cut short, and a process that ends while another thread imports
# it can hang in its own teardown: closing waits this long for the warm-up, not forever.
WARMUP_WAIT_MS = 120_000

def first_size() -> QSize:
    """The window's size on a first start: roomy, but never larger than the screen."""
    width, height = 1380, 860
    screen = QGuiApplication.primaryScreen()
    if screen is not None:
        available = screen.availableGeometry()
        width = min(width, max(1024, available.width()))
        height = min(height, max(700, available.height()))
    return QSize(width, height)


def _stacked(top: QWidget, rest: QWidget) -> QWidget:
    """`top` above `rest`, which takes the height left."""
    column = QWidget()
    layout = QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addWidget(top)
    layout.addWidget(rest, 1)
    return column


def _title_height(window: QWidget) -> int:
    """The height of a dock's title bar in this style."""
    style = window.style()
    return style.pixelMetric(QStyle.PixelMetric.PM_TitleBarHeight, None, window)


def _real_train_panel(get_spec: Callable[[], ExperimentSpec], workspace: Workspace,
                      parent: QWidget) -> QWidget:
    from workbench.gui.train.train_panel import TrainPanel

    return TrainPanel(get_spec, workspace, parent)


class MainWindow(MenusMixin, DocumentsMixin, RunActionsMixin, HelpMixin, QMainWindow):
    """`trainPanelReady` fires once the training panel is in place (at once when torch was
    already loaded); `runOpened(run_dir)` once `open_run` has put a run's experiment in the
    editor."""

    trainPanelReady = Signal()
    runOpened = Signal(str)  # a stored run's experiment is in the editor (`open_run`)

    def __init__(self, spec: ExperimentSpec | None = None, *,
                 workspace: Workspace | None = None,
                 train_panel_factory: TrainPanelFactory | None = None,
                 settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else project.settings()
        self.workspace = workspace if workspace is not None else Workspace()
        self.runs = self.workspace.runs
        self.model = ExperimentModel(spec if spec is not None else project.default_spec(), self)
        self.undo = QUndoStack(self)
        self.path: Path | None = None
        self.closing = False
        self.doc_title: str | None = None  # an untitled document's title (an example, a run)
        self.gpu_name: str | None = None
        self.train_panel: Any = None
        self._train_factory = train_panel_factory or _real_train_panel
        self._help: dict[str, QDialog] = {}

        self.editor = ModelEditor(self.model, self.undo, self.workspace)
        self.data_panel = DataPanel(self.model, self.undo, self.workspace, auto_load=False)
        self.tools = ToolShelf(self)  # the tools, opened from the registry
        self.tasks = Tasks(self, self.workspace.jobs)  # the window's own reads (open a run)
        self.reports = ReportExport(self, self.workspace)  # File > Export report…
        self.optim_panel = OptimPanel(self.model, self.undo, lazy_preview=True,
                                      workspace=self.workspace, lr_finder=self._find_lr,
                                      data_shape=self.editor.dataset_io)
        self.editors = QTabWidget()
        self.editors.setObjectName("editors")
        self.editors.addTab(self.editor, "Model")
        self.editors.addTab(self.data_panel, "Data")
        self.editors.addTab(self.optim_panel, "Optimizer")
        self.name_field = NameField(self.model, self.undo)
        self.welcome = WelcomeBanner()  # above the training view, once the runs are known
        self.welcome.hide()
        self.welcome.exampleRequested.connect(self._welcome_example)
        self.welcome.guideRequested.connect(self.getting_started)
        editors_dock = QDockWidget("Experiment", self)
        editors_dock.setObjectName("editorsDock")
        editors_dock.setWidget(_stacked(self.name_field, self.editors))
        editors_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                 | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, editors_dock)
        self.editors_dock = editors_dock

        self.history = RunHistory(self.runs, jobs=self.workspace.jobs, busy=self._runs_in_use)
        self.history.listed.connect(self._runs_known)
        self.history.openRequested.connect(self.open_run)
        self.history.resumeRequested.connect(self.resume_path)
        self.history.toolRequested.connect(self._tool_requested)
        history_dock = QDockWidget("Runs", self)
        history_dock.setObjectName("runsDock")
        history_dock.setWidget(self.history)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, history_dock)
        self.history_dock = history_dock

        self.center = QTabWidget()
        self.center.setObjectName("center")
        self.center.setTabsClosable(True)
        self.center.setElideMode(Qt.TextElideMode.ElideRight)  # many tools: shorter tab titles
        self.center.tabCloseRequested.connect(self._close_tool_tab)
        self.placeholder = QLabel("Loading PyTorch…")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.center.addTab(self.placeholder, "Train")
        self._uncloseable(0)
        self.setCentralWidget(_stacked(self.welcome, self.center))

        self._build_menus()
        self.undo.cleanChanged.connect(self._clean_changed)
        self.model.changed.connect(self.update_blocked)
        self.model.specReplaced.connect(self._update_title)
        self.editor.reportChanged.connect(self._report_changed)
        self.statusBar().showMessage("Ready")
        self._update_title()
        self.resize(first_size())
        # the editors take a bit less than half the width, the training view the rest
        self.resizeDocks([editors_dock], [int(self.width() * 0.44)], Qt.Orientation.Horizontal)
        # the Runs list shows eight rows on a first start; the person's size is kept after
        self.resizeDocks([history_dock], [self.history.default_height() + _title_height(self)],
                         Qt.Orientation.Vertical)
        self._restore_layout()
        # the layer stack has the focus at first: in the Name field, the whole name would be
        # selected, one key press from replaced
        self.editor.list.setFocus()

        if heavy_loaded():
            self._torch_loaded(load_heavy())
        else:
            QTimer.singleShot(100, self._warm_up)

    # -- slots (methods, not lambdas: Qt disconnects them when the window goes) -------------
    def _clean_changed(self, clean: bool) -> None:
        self.setWindowModified(not clean)

    def _report_changed(self, _report: Any) -> None:
        self.update_blocked()
        self.optim_panel.update_preview()  # a file's size may have become known

    def _runs_known(self, infos: list[Any]) -> None:
        """Once the store's runs are known, a first start (nothing opened, nothing trained)
        offers a way in; before that nothing is offered (the list was still empty)."""
        self.welcome.offer(not project.recent_files(self.settings) and not infos)

    def _run_started(self, event: Any) -> None:
        self.welcome.dismiss()
        run_dir = getattr(event, "run_dir", None)
        if run_dir:
            self.history.select(run_dir)  # once the list shows it
        else:
            self.history.refresh()

    # -- torch and the training panel -------------------------------------------------------
    def _warm_up(self) -> None:
        """Import torch on a worker thread once the window is painted; the window stays live."""
        from workbench.gui.threads.worker import ThreadWorker

        self.statusBar().showMessage("Loading PyTorch…")
        self._warmup = ThreadWorker(lambda _emit, _cancel: load_heavy(), name="workbench-warmup",
                                    jobs=self.workspace.jobs, parent=self)
        self._warmup.returned.connect(self._torch_ready)
        self._warmup.errored.connect(self._torch_import_failed)
        self._warmup.start()

    def _torch_ready(self, gpu: str) -> None:
        self.statusBar().showMessage("Ready", 3000)
        self._torch_loaded(gpu)

    def _torch_import_failed(self, message: str, _trace: str) -> None:
        self._torch_failed(f"PyTorch could not be loaded: {message}")

    def _torch_loaded(self, gpu: str) -> None:
        self.gpu_name = gpu
        self.actions["all_gpus"].setEnabled(self.gpu_count() > 1)
        self.optim_panel.set_gpu(gpu or None)
        self.editor.set_gpu(gpu)
        self.optim_panel.enable_preview()
        self.data_panel.enable_auto_load()
        if self.train_panel is None:
            self._install_train_panel()

    def _torch_failed(self, reason: str) -> None:
        self.placeholder.setText(f"Training is not available: {reason}")
        self.statusBar().showMessage(reason)

    def _install_train_panel(self) -> None:
        panel = self._train_factory(self.model.spec, self.workspace, self)
        panel.runStarted.connect(self._run_started)
        panel.runEnded.connect(self._run_ended)
        panel.inspectRequested.connect(self._inspect_requested)
        self.train_panel = panel
        self.center.insertTab(0, panel, "Train")
        self.center.removeTab(1)
        self.center.setCurrentIndex(0)
        self._uncloseable(0)
        self.placeholder.deleteLater()
        self.update_blocked()
        self.trainPanelReady.emit()

    def _uncloseable(self, index: int) -> None:
        bar = self.center.tabBar()
        for side in (bar.ButtonPosition.RightSide, bar.ButtonPosition.LeftSide):
            button = bar.tabButton(index, side)
            if button is not None:
                button.resize(0, 0)
                button.hide()

    def _run_ended(self, event: Any) -> None:
        self.history.refresh()
        run_dir = getattr(event, "run_dir", None)
        if run_dir:
            self.history.select(run_dir)

    # -- why Train is disabled ----------------------------------------------------------------
    def blocked_reason(self) -> str | None:
        """The first reason this experiment cannot train (a shape error first, then a bad
        value, then memory it will not fit in), or None."""
        return blocked_reason(self.editor.problem, self.model.live, self.editor.memory_problem)

    def update_blocked(self) -> None:
        if self.train_panel is not None:
            self.train_panel.set_blocked(self.blocked_reason())

    # -- tools ------------------------------------------------------------------------------
    def _tool_requested(self, key: str, run_dir: str) -> None:
        self.tools.open(key, run_dir)

    def _inspect_requested(self, run_dir: str, sample: int) -> None:
        """Results' link (or a mistake double-clicked): Inspect on the run shown, at the
        sample."""
        if sample >= 0:
            self.tools.open("inspect", run_dir, sample=sample)
        else:
            self.tools.open("inspect", run_dir)

    def _find_lr(self) -> Any:
        return self.tools.open("lr_find")

    def _runs_in_use(self) -> set[str]:
        """Run folders an open tool or the training works on: not to be deleted under it."""
        used = self.tools.runs_in_use()
        started = getattr(self.train_panel, "started", None)
        if self.train_panel is not None and self.train_panel.is_running() \
                and getattr(started, "run_dir", None):
            used.add(str(started.run_dir))
        return used

    def _close_tool_tab(self, index: int) -> None:
        widget = self.center.widget(index)
        if widget is self.train_panel or widget is self.placeholder:
            return
        self.tools.close(widget)
        self.center.removeTab(index)
        widget.deleteLater()

    # -- layout and closing ---------------------------------------------------------------------
    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Ask every question first (stop the running jobs, each named? save the experiment?),
        and only then stop the jobs: a person who cancels any question keeps them going."""
        running = self.workspace.jobs.titles()
        if running:
            answer = dialogs.ask(self, "Jobs still running", running_jobs_question(running))
            if answer != dialogs.Button.Yes:
                event.ignore()
                return
        if not self.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """End every job this window started (training, tools, data loads, listings, a run on
        all GPUs): all are asked to stop at once, then waited for together, STOP_WAIT_MS at
        most (the warm-up's import of torch, WARMUP_WAIT_MS); a job still running then is
        abandoned, with a line in the log. The panels' own shutdowns follow and return at
        once."""
        self.closing = True  # what ends from now on is not reported (no dialog after closing)
        self.save_layout()
        jobs = self.workspace.jobs
        jobs.ask_all_to_stop()
        warmup = getattr(self, "_warmup", None)
        if warmup is not None and warmup.is_running():
            warmup.stop_and_wait(WARMUP_WAIT_MS)
        jobs.stop_all()
        self.history.shutdown()
        self.editor.shutdown()
        self.data_panel.shutdown()
        self.optim_panel.shutdown()
        self.tools.shutdown()
        if self.train_panel is not None:
            self.train_panel.stop_and_wait()  # its reads too; delivers the run's last events
        self.tasks.shutdown()
