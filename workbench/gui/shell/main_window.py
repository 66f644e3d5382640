"""The main window: editors (model, data, optimizer) on the left, training in the centre, the
run history in a dock; File/Edit/Tools/View/Help menus; projects saved as spec JSON.

The window creates the one `Workspace` (run store, dataset cache, background jobs) and hands it
to every panel and tool; closing the window stops and waits for every job it lists.

PyTorch is not imported on the way to a visible window: a worker thread imports it just after
the window is painted, and the training panel, which needs it, is put in place then (at once
when torch is already loaded).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QCursor,
    QGuiApplication,
    QKeySequence,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench import __version__
from workbench import spec as specmod
from workbench.core.store.runs import Run, RunError
from workbench.core.store.specs import save_spec
from workbench.core.workspace import Workspace
from workbench.gui.editors.data_panel import DataPanel
from workbench.gui.editors.experiment_model import ExperimentModel
from workbench.gui.editors.model_editor import ModelEditor
from workbench.gui.editors.name_field import NameField
from workbench.gui.editors.optim_panel import OptimPanel
from workbench.gui.run_rules import run_to_resume
from workbench.gui.shell import project
from workbench.gui.shell.examples import Example, examples, is_bundled
from workbench.gui.shell.help_views import GettingStartedDialog, ShortcutsDialog, WelcomeBanner
from workbench.gui.shell.run_history import RunHistory
from workbench.gui.shell.tool_shelf import ToolShelf
from workbench.gui.shell.warmup import heavy_loaded, load_heavy
from workbench.gui.widgets import dialogs
from workbench.spec import ExperimentSpec, SpecError

TrainPanelFactory = Callable[[Callable[[], ExperimentSpec], Workspace, QWidget], QWidget]

def first_size() -> QSize:
    """The window's size on a first start: roomy, but never larger than the screen."""
    width, height = 1380, 860
    screen = QGuiApplication.primaryScreen()
    if screen is not None:
        available = screen.availableGeometry()
        width = min(width, max(1024, available.width()))
        height = min(height, max(700, available.height()))
    return QSize(width, height)


def _real_train_panel(get_spec: Callable[[], ExperimentSpec], workspace: Workspace,
                      parent: QWidget) -> QWidget:
    from workbench.gui.train.train_panel import TrainPanel

    return TrainPanel(get_spec, workspace, parent)


class MainWindow(QMainWindow):
    """`trainPanelReady` fires once the training panel is in place (at once when torch was
    already loaded)."""

    trainPanelReady = Signal()

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
        self.doc_title: str | None = None  # an untitled document's title (an example, a run)
        self.gpu_name: str | None = None
        self.train_panel: Any = None
        self._train_factory = train_panel_factory or _real_train_panel
        self._help: dict[str, QDialog] = {}

        self.editor = ModelEditor(self.model, self.undo, self.workspace)
        self.data_panel = DataPanel(self.model, self.undo, self.workspace, auto_load=False)
        self.tools = ToolShelf(self)  # the tools, opened from the registry
        self.optim_panel = OptimPanel(self.model, self.undo, lazy_preview=True,
                                      workspace=self.workspace, lr_finder=self._find_lr)
        self.editors = QTabWidget()
        self.editors.setObjectName("editors")
        self.editors.addTab(self.editor, "Model")
        self.editors.addTab(self.data_panel, "Data")
        self.editors.addTab(self.optim_panel, "Optimizer")
        self.name_field = NameField(self.model, self.undo)
        self.welcome = WelcomeBanner()
        self.welcome.exampleRequested.connect(self._welcome_example)
        self.welcome.guideRequested.connect(self.getting_started)
        experiment = QWidget()
        experiment_layout = QVBoxLayout(experiment)
        experiment_layout.setContentsMargins(0, 0, 0, 0)
        experiment_layout.setSpacing(2)
        experiment_layout.addWidget(self.welcome)
        experiment_layout.addWidget(self.name_field)
        experiment_layout.addWidget(self.editors, 1)
        editors_dock = QDockWidget("Experiment", self)
        editors_dock.setObjectName("editorsDock")
        editors_dock.setWidget(experiment)
        editors_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                 | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, editors_dock)
        self.editors_dock = editors_dock

        self.history = RunHistory(self.runs, jobs=self.workspace.jobs, busy=self._runs_in_use)
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
        self.setCentralWidget(self.center)

        self._build_menus()
        self.undo.cleanChanged.connect(self._clean_changed)
        self.model.changed.connect(self.update_blocked)
        self.model.specReplaced.connect(self._update_title)
        self.editor.reportChanged.connect(self._report_changed)
        self.data_panel.loaded.connect(self._data_loaded)
        self.statusBar().showMessage("Ready")
        self._update_title()
        self.resize(first_size())
        # the editors take a bit less than half the width, the training view the rest
        self.resizeDocks([editors_dock], [int(self.width() * 0.44)], Qt.Orientation.Horizontal)
        self.resizeDocks([history_dock], [170], Qt.Orientation.Vertical)
        self._restore_layout()
        # a first start (nothing opened, nothing trained) offers a way in; never modal
        self.welcome.setVisible(not project.recent_files(self.settings)
                                and not self.history.infos)
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

    def _data_loaded(self, splits: Any) -> None:
        self.optim_panel.set_train_size(len(splits.train_x))

    def _run_started(self, event: Any) -> None:
        self.welcome.hide()
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
        if self.editor.problem:
            return self.editor.problem
        try:
            specmod.validate(self.model.live)
        except SpecError as exc:
            return str(exc)
        return self.editor.memory_problem

    def update_blocked(self) -> None:
        if self.train_panel is not None:
            self.train_panel.set_blocked(self.blocked_reason())

    # -- menus ------------------------------------------------------------------------------
    def _action(self, text: str, slot: Callable[[], Any], shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda *_: slot())
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.actions: dict[str, QAction] = {
            "new": self._action("&New", self.new_experiment, QKeySequence.StandardKey.New),
            "open": self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open),
            "save": self._action("&Save", self.save, QKeySequence.StandardKey.Save),
            "save_as": self._action("Save &As…", self.save_as, "Ctrl+Shift+S"),
            "quit": self._action("&Quit", self.close, "Ctrl+Q"),  # Windows has no standard one
        }
        file_menu.addAction(self.actions["new"])
        file_menu.addAction(self.actions["open"])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.examples_menu = file_menu.addMenu("Open E&xample")
        self.examples_menu.aboutToShow.connect(self._fill_examples)
        file_menu.addSeparator()
        file_menu.addAction(self.actions["save"])
        file_menu.addAction(self.actions["save_as"])
        file_menu.addSeparator()
        file_menu.addAction(self.actions["quit"])

        edit_menu = bar.addMenu("&Edit")
        undo = self.undo.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)
        self.actions["undo"], self.actions["redo"] = undo, redo

        tools_menu = bar.addMenu("&Tools")
        for tool in self.tools.entries:
            action = self._action(tool.menu_text, lambda k=tool.key: self.tools.open(k),
                                  tool.shortcut)
            action.setEnabled(tool.available())
            tools_menu.addAction(action)
            self.actions[tool.key] = action

        self.actions["compare_selected"] = self._action(
            "A&dd the selected run to the comparison", self.add_selected_to_comparison)
        tools_menu.addAction(self.actions["compare_selected"])
        self.actions["resume_run"] = self._action("&Resume a stopped or interrupted run",
                                                  self.resume_run)
        tools_menu.addAction(self.actions["resume_run"])
        tools_menu.addSeparator()
        tools_menu.addAction(self._action("Copy &launch command (torchrun)",
                                          self.copy_launch_command))
        self.actions["all_gpus"] = self._action("Train on &all GPUs", self.train_on_all_gpus)
        self.actions["all_gpus"].setEnabled(False)  # until the GPUs are counted
        tools_menu.addAction(self.actions["all_gpus"])
        self.actions["stop_all_gpus"] = self._action("&Stop training on all GPUs",
                                                     self.stop_all_gpus)
        self.actions["stop_all_gpus"].setEnabled(False)  # while such a run trains
        tools_menu.addAction(self.actions["stop_all_gpus"])

        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.editors_dock.toggleViewAction())
        view_menu.addAction(self.history_dock.toggleViewAction())
        for i, name in enumerate(("Model", "Data", "Optimizer")):
            view_menu.addAction(self._action(f"{name} editor",
                                             lambda i=i: self._show_editor(i), f"Ctrl+{i + 1}"))

        help_menu = bar.addMenu("&Help")
        self.actions["getting_started"] = self._action("&Getting started", self.getting_started,
                                                       QKeySequence.StandardKey.HelpContents)
        self.actions["shortcuts"] = self._action("&Keyboard shortcuts", self.show_shortcuts)
        help_menu.addAction(self.actions["getting_started"])
        help_menu.addAction(self.actions["shortcuts"])
        help_menu.addSeparator()
        help_menu.addAction(self._action("&About Workbench", self.about))

    def _show_editor(self, index: int) -> None:
        self.editors_dock.show()
        self.editors.setCurrentIndex(index)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = project.recent_files(self.settings)
        for path in files:
            self.recent_menu.addAction(Path(path).name,
                                       lambda p=path: self.open_recent(p)).setToolTip(path)
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _fill_examples(self) -> None:
        self.fill_examples_menu(self.examples_menu)

    def fill_examples_menu(self, menu: QMenu) -> None:
        """One item an example: its name, and what it trains on the status bar and tooltip."""
        menu.clear()
        menu.setToolTipsVisible(True)
        for example in examples():
            action = menu.addAction(f"{example.title} — {example.description}",
                                    lambda e=example: self.open_example(e))
            action.setToolTip(f"Opens an untitled copy of {example.path.name}")
            action.setStatusTip(example.description)
        if not examples():
            menu.addAction("(no examples installed)").setEnabled(False)

    # -- tools ------------------------------------------------------------------------------
    def _tool_requested(self, key: str, run_dir: str) -> None:
        self.tools.open(key, run_dir)

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

    def _close_tool_tab(self, index: int) -> None:
        widget = self.center.widget(index)
        if widget is self.train_panel or widget is self.placeholder:
            return
        self.tools.close(widget)
        self.center.removeTab(index)
        widget.deleteLater()

    # -- projects ---------------------------------------------------------------------------
    def _update_title(self) -> None:
        name = self.path.name if self.path else self.doc_title or "untitled"
        self.setWindowTitle(f"{name}[*] — Workbench")

    def is_dirty(self) -> bool:
        return not self.undo.isClean()

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; False when the person cancels."""
        if not self.is_dirty():
            return True
        buttons = dialogs.Button.Save | dialogs.Button.Discard | dialogs.Button.Cancel
        answer = dialogs.ask(self, "Unsaved changes",
                             "The experiment has unsaved changes. Save them first?",
                             buttons, dialogs.Button.Save)
        if answer == dialogs.Button.Save:
            return self.save()
        return answer == dialogs.Button.Discard

    def _set_document(self, spec: ExperimentSpec, path: Path | None,
                      title: str | None = None) -> None:
        """Make `spec` the document: saved at `path`, or untitled (`title` names it in the
        window's title, and Save asks where to write it)."""
        self.model.replace(spec)
        self.undo.clear()
        self.undo.setClean()
        self.path = path
        self.doc_title = None if path is not None else title
        self.setWindowModified(False)
        self._update_title()
        self.update_blocked()

    def new_experiment(self) -> bool:
        if not self.maybe_save():
            return False
        self._set_document(project.default_spec(), None)
        return True

    def open_dialog(self) -> bool:
        if not self.maybe_save():
            return False
        path, _ = QFileDialog.getOpenFileName(self, "Open experiment", self._folder(),
                                              project.PROJECT_FILTER)
        return self.open_path(path, ask=False) if path else False

    def open_recent(self, path: str) -> bool:
        return self.open_path(path)

    def open_path(self, path: str | Path, *, ask: bool = True) -> bool:
        """Open a spec file; a malformed one is refused with a message and changes nothing."""
        if ask and not self.maybe_save():
            return False
        path = Path(path)
        try:
            spec = specmod.load(path)
        except SpecError as exc:
            dialogs.warn(self, "Cannot open experiment",
                         f"{path} is not a Workbench experiment that can be opened:\n\n{exc}")
            if not path.exists():
                project.remove_recent(self.settings, str(path.resolve()))
            return False
        if is_bundled(path):  # an example picked by hand: a copy, so Save asks where
            self._set_document(spec, None, f"{Example(path, spec).title} (example)")
            self.statusBar().showMessage(f"Opened a copy of the example {path.name}; "
                                         "Save asks where to keep it", 8000)
            return True
        self._set_document(spec, path)
        project.add_recent(self.settings, path)
        self.statusBar().showMessage(f"Opened {path}", 5000)
        return True

    def open_experiment(self, spec: ExperimentSpec, title: str) -> bool:
        """Open `spec` (a stored study's experiment) as an untitled document named `title`;
        unsaved changes are asked about first."""
        if not self.maybe_save():
            return False
        self._set_document(spec, None, title)
        self.statusBar().showMessage(f"Opened {title}; Save asks where to keep it", 8000)
        return True

    def open_example(self, example: Example) -> bool:
        """Open a bundled example as an untitled copy: Save asks where, the package's file
        is never written."""
        if not self.maybe_save():
            return False
        self._set_document(example.spec, None, f"{example.title} (example)")
        self.welcome.hide()
        self.statusBar().showMessage(f"Opened the example {example.title}: "
                                     f"{example.description}", 8000)
        return True

    def save(self) -> bool:
        if self.path is None or is_bundled(self.path):
            return self.save_as()
        return self.save_to(self.path)

    def save_as(self) -> bool:
        name = "".join(c if c.isalnum() or c in "-_ " else "-" for c in self.model.live.name)
        suggested = str(Path(self._folder()) / f"{name.strip() or 'experiment'}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save experiment", suggested,
                                              project.PROJECT_FILTER)
        return self.save_to(path) if path else False

    def save_to(self, path: str | Path) -> bool:
        path = Path(path)
        if path.suffix == "":
            path = path.with_suffix(".json")
        if is_bundled(path):
            dialogs.warn(self, "Cannot save there",
                         f"{path} is inside Workbench's own folder (its bundled examples and "
                         "code): an update would replace it. Choose another folder.")
            return False
        try:
            save_spec(self.model.spec(), path)
        except OSError as exc:
            dialogs.warn(self, "Cannot save", f"Saving to {path} failed: {exc}")
            return False
        self.path = path
        self.undo.setClean()
        self._update_title()
        project.add_recent(self.settings, path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _folder(self) -> str:
        if self.path is not None and not is_bundled(self.path):
            return str(self.path.parent)
        recent = project.recent_files(self.settings)
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    # -- runs -------------------------------------------------------------------------------
    def open_run(self, run_dir: str) -> bool:
        """Open a stored run's experiment as an untitled document named after the run (Save
        asks where, so no file opened before is overwritten) and show its curves; unsaved
        changes to the current experiment are asked about first."""
        try:
            spec = Run(Path(run_dir)).spec()
        except RunError as exc:
            dialogs.warn(self, "Cannot open run", str(exc))
            return False
        if not self.maybe_save():
            return False
        self._set_document(spec, None, f"{spec.name} (from run {Path(run_dir).name})")
        self.history.select(run_dir)
        if self.train_panel is not None:
            self.train_panel.show_run(run_dir)
            self.center.setCurrentWidget(self.train_panel)
        return True

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

    def copy_launch_command(self) -> str:
        """Save the experiment beside the project and put its torchrun line on the clipboard."""
        from PySide6.QtGui import QGuiApplication

        from workbench.gui.shell.launch import torchrun_command

        try:
            line = torchrun_command(self.model.spec(), self.path, max(1, self.gpu_count()))
        except OSError as exc:
            dialogs.warn(self, "Cannot save the launch spec", str(exc))
            return ""
        QGuiApplication.clipboard().setText(line)
        dialogs.inform(self, "Launch command copied",
                       f"Paste it on a machine that has the spec file:\n\n{line}\n\n"
                       "On a cluster add --nnodes, --node-rank and --rdzv-endpoint.")
        return line

    def train_on_all_gpus(self) -> None:
        """Train the experiment with DistributedDataParallel on every GPU of this machine."""
        from workbench.gui.shell.launch import MultiGpuRun, launch_spec_path

        reason = self.blocked_reason()
        if reason:
            dialogs.warn(self, "Cannot train", reason)
            return
        spec = self.model.spec()
        self.multi_gpu = MultiGpuRun(spec, launch_spec_path(spec, self.path), self.gpu_count(),
                                     self.runs.root, self)
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

    # -- help -------------------------------------------------------------------------------
    def about_text(self) -> str:
        import PySide6
        from PySide6.QtCore import qVersion

        torch_version = sys.modules["torch"].__version__ if "torch" in sys.modules \
            else "not loaded yet"
        if self.gpu_name is None:
            device = "still looking"
        else:
            device = f"GPU: {self.gpu_name}" if self.gpu_name else "CPU (no CUDA GPU found)"
        return (f"<b>Workbench {__version__}</b><br>Train neural networks by clicking.<br><br>"
                f"PyTorch {torch_version}<br>Qt {qVersion()} (PySide6 {PySide6.__version__})"
                f"<br>Device: {device}<br>Runs: {self.runs.root}")

    def about(self) -> None:
        dialogs.about(self, "About Workbench", self.about_text())

    def _show_help(self, key: str, dialog: QDialog) -> QDialog:
        """Show a help window, one of each kind, non-modal."""
        old = self._help.pop(key, None)
        if old is not None:
            old.close()
            old.deleteLater()
        self._help[key] = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def getting_started(self) -> QDialog:
        """The README's stories as steps, each with a button that takes the first step."""
        steps = [
            ("Train the experiment that is open",
             "It learns two interleaved spirals in seconds on a CPU. Press <b>Train</b> and "
             "watch the loss fall and the decision boundary take shape.",
             "Show Train", self._show_train),
            ("Give it a name",
             "Runs are listed under the experiment's name, at the top of the Experiment "
             "panel.", "Edit the name", self._edit_name),
            ("Start from an example",
             "MNIST digits, a small CNN, regression on a sine: an example opens as an untitled "
             "copy, so saving asks where to keep it.", "Open an example…",
             self._welcome_example),
            ("Build the network",
             "Drag layers from the palette; every row shows its output shape and "
             "parameters, and a layer that does not fit turns red.", "Model tab",
             lambda: self._show_editor(0)),
            ("Pick the data",
             "A 2-D set, MNIST-style images (<b>Download and load</b>, or point <i>Folder</i> "
             "at the four *-ubyte.gz files), CIFAR-10, or your own CSV or image folder.",
             "Data tab", lambda: self._show_editor(1)),
            ("Choose how it learns",
             "The optimizer, the learning-rate schedule, regularization, epochs and batch "
             "size; <b>Find…</b> beside the rate runs the range test.", "Optimizer tab",
             lambda: self._show_editor(2)),
            ("Look back at runs",
             "Every run is kept in the Runs list: select one for its curves, open it in the "
             "editor, or use it in a tool (Tools: prune, export, compare).", "Show Runs",
             self._show_runs),
            ("Keep the experiment",
             "File > Save writes a JSON spec, the same file <tt>workbench train</tt> runs "
             "headless.", "Save As…", self.save_as),
        ]
        return self._show_help("guide", GettingStartedDialog(steps, self))

    def show_shortcuts(self) -> QDialog:
        return self._show_help("shortcuts", ShortcutsDialog(self.menuBar(), self))

    def _show_train(self) -> None:
        if self.train_panel is not None:
            self.center.setCurrentWidget(self.train_panel)

    def _edit_name(self) -> None:
        self.editors_dock.show()
        self.activateWindow()  # from the Getting started window: back to the main one
        self.name_field.edit.setFocus()
        self.name_field.edit.selectAll()

    def _show_runs(self) -> None:
        self.history_dock.show()
        self.history_dock.raise_()

    def _welcome_example(self) -> None:
        """The examples as a menu at the mouse (from the welcome strip or Getting started)."""
        menu = QMenu(self)
        self.fill_examples_menu(menu)
        menu.aboutToHide.connect(menu.deleteLater)
        button = self.sender()
        if isinstance(button, QWidget):
            menu.popup(button.mapToGlobal(button.rect().bottomLeft()))
        else:
            menu.popup(QCursor.pos())

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
        """Ask every question first (stop the run? save the experiment?), and only then stop
        the run and wait for it: a person who cancels any question keeps their run going."""
        running = self.train_panel is not None and self.train_panel.is_running()
        if running:
            answer = dialogs.ask(self, "Training in progress",
                                 "A run is still training. Stop it (it is saved) and quit?")
            if answer != dialogs.Button.Yes:
                event.ignore()
                return
        if not self.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """End every thread this window started (data loads, tools, training)."""
        self.save_layout()
        self.history.shutdown()
        self.editor.shutdown()
        self.data_panel.shutdown()
        self.optim_panel.shutdown()
        self.tools.shutdown()
        warmup = getattr(self, "_warmup", None)
        if warmup is not None:
            warmup.stop_and_wait()  # an import cannot be cut short: wait for it to end
        if self.train_panel is not None and self.train_panel.is_running():
            self.train_panel.stop_and_wait()
        multi_gpu = getattr(self, "multi_gpu", None)
        if multi_gpu is not None:
            multi_gpu.stop_and_wait()
        self.workspace.shutdown()  # anything a panel left behind
