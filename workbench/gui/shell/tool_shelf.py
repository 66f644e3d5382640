"""The window's open tools, one of each, opened from the registry (`tools/registry.py`): a
panel becomes a tab of the centre, a dialog its own window. The shelf is also the tools'
`ToolHost`: what a tool may ask of the window (the experiment, the Runs list's feed, opening a
run, training a fork, another tool).

Tests open and find tools here: `window.tools.open("prune", run_dir)`, `window.tools.get(...)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtWidgets import QDialog, QWidget

from workbench.gui.run_rules import run_for_tool
from workbench.gui.tools.registry import TOOLS, Tool, ToolEntry, entry
from workbench.gui.widgets import dialogs

if TYPE_CHECKING:
    from PySide6.QtWidgets import QTabWidget

    from workbench.core.workspace import Workspace
    from workbench.gui.document.experiment_model import ExperimentModel
    from workbench.gui.shell.run_history import RunHistory
    from workbench.spec import ExperimentSpec


class ShelfWindow(Protocol):
    """What the shelf needs of its window (the main window)."""

    workspace: Workspace
    center: QTabWidget
    history: RunHistory
    model: ExperimentModel
    undo: Any

    def open_run(self, run_dir: str) -> bool: ...

    def open_experiment(self, spec: ExperimentSpec, title: str) -> bool: ...

    def start_fork(self, plan: Any) -> bool: ...


class ToolShelf:
    """The tools `window` has open, by key."""

    def __init__(self, window: ShelfWindow) -> None:
        self.window = window
        self.workspace = window.workspace
        self.entries: tuple[ToolEntry, ...] = TOOLS
        self._open: dict[str, Tool] = {}

    # -- opening and finding -----------------------------------------------------------------
    def get(self, key: str) -> Any:
        """The open tool `key` (its widget), or None."""
        return self._open.get(key)

    def open(self, key: str, run_dir: str | None = None, **options: Any) -> Any:
        """Open tool `key` (on `run_dir` when given; else on the run its declaration starts
        on), or bring the open one to the front (on `run_dir`); None when it cannot open (a
        message said why)."""
        tool_entry = entry(key)
        tool = self._open.get(key)
        if tool is None:
            start = run_dir if run_dir is not None else self._start_run(tool_entry)
            if start is None and tool_entry.needs_run:
                return None
            try:
                cls = tool_entry.load()
            except ImportError as exc:
                dialogs.warn(self.window, "Not available", f"This tool is not installed: {exc}")
                return None
            tool = cls.open_tool(self, start, **options)
            if tool is None:
                return None
            self._place(tool_entry, tool)
        else:
            target = run_dir
            if target is None and tool_entry.needs_run:  # Tools menu: the run selected now
                target = self._start_run(tool_entry, say=False)
            if target is not None:
                if tool.working_on() != target or options:
                    tool.show_run(target, **options)
            else:
                tool.reopen()
        self.focus(tool)
        return tool

    def _start_run(self, tool_entry: ToolEntry, *, say: bool = True) -> str | None:
        """The run a tool opened from the Tools menu starts on (see `ToolEntry.starts_on`)."""
        history = self.window.history
        if tool_entry.starts_on == "selected":
            return history.selected_path()
        if tool_entry.starts_on != "trained":
            return None
        info = run_for_tool(history.selected_info(), history.infos)
        if info is None:
            if say:
                dialogs.warn(self.window, "No trained model", "Train a model first (or select "
                                                              "a finished run in the Runs list).")
            return None
        return str(info.path)

    def _place(self, tool_entry: ToolEntry, tool: Tool) -> None:
        key = tool_entry.key
        self._open[key] = tool
        if isinstance(tool, QDialog):
            tool.finished.connect(lambda *_: self._forget(key, tool))
            tool.show()
        else:
            center = self.window.center
            index = center.addTab(tool, tool_entry.title)
            center.setTabToolTip(index, tool_entry.title)  # the whole title when it is elided
            center.setCurrentIndex(index)

    def focus(self, tool: Any) -> None:
        center = self.window.center
        index = center.indexOf(tool)
        if index >= 0:
            center.setCurrentIndex(index)
        else:
            tool.raise_()
            tool.activateWindow()

    # -- closing -----------------------------------------------------------------------------
    def _forget(self, key: str, tool: Tool) -> None:
        if self._open.get(key) is tool:
            del self._open[key]

    def close(self, widget: QWidget) -> None:
        """Shut down a tool whose tab closes (the tab itself is the window's)."""
        for key, tool in list(self._open.items()):
            if tool is widget:
                del self._open[key]
                tool.shutdown()

    def shutdown(self) -> None:
        """Shut down every open tool (the window closes)."""
        for key in list(self._open):
            self._open.pop(key).shutdown()

    def runs_in_use(self) -> set[str]:
        """The run folders the open tools work on."""
        return {run for tool in self._open.values() if (run := tool.working_on())}

    # -- ToolHost: what a tool may ask of the window -----------------------------------------
    def parent_widget(self) -> Any:
        return self.window

    def experiment(self) -> ExperimentSpec:
        return self.window.model.spec()

    def edited(self) -> tuple[Any, Any]:
        return self.window.model, self.window.undo

    def run_feed(self) -> Any:
        return self.window.history.feed

    def open_run(self, run_dir: str) -> bool:
        return self.window.open_run(run_dir)

    def open_experiment(self, spec: ExperimentSpec, title: str) -> bool:
        return self.window.open_experiment(spec, title)

    def start_fork(self, plan: Any) -> bool:
        return self.window.start_fork(plan)

    def open_tool(self, key: str, run_dir: str | None = None, **options: Any) -> Any:
        return self.open(key, run_dir, **options)
