"""The host of a tool opened on its own (`python -m workbench.gui.tools.<tool>...`, a test):
the same `ToolHost` the window is, without a window. It opens the tools a tool asks for (the
Compress panel's Export) through the registry, one of each, as windows of their own, and shuts
them down with it. A tool alone has no editor, Runs list or training panel: what needs them is
refused in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.gui.tools.registry import Tool, entry

if TYPE_CHECKING:
    from workbench.core.workspace import Workspace
    from workbench.spec import ExperimentSpec


class StandaloneHost:
    """`ToolHost` for a tool without a window: `parent` owns the windows it opens; `model` and
    `undo` (an ExperimentModel and its QUndoStack) are the edited experiment, when there is
    one."""

    def __init__(self, workspace: Workspace | None, parent: Any = None, *, model: Any = None,
                 undo: Any = None) -> None:
        self.workspace = workspace
        self.parent = parent
        self.model, self.undo = model, undo
        self.opened: dict[str, Tool] = {}

    def parent_widget(self) -> Any:
        return self.parent

    def experiment(self) -> ExperimentSpec:
        if self.model is None:
            raise LookupError("this tool was opened without an experiment")
        spec: ExperimentSpec = self.model.spec()
        return spec

    def edited(self) -> tuple[Any, Any]:
        if self.model is None or self.undo is None:
            raise LookupError("this tool was opened without an experiment to edit")
        return self.model, self.undo

    def run_feed(self) -> Any:
        return None

    def open_run(self, run_dir: str) -> bool:
        return False  # no editor to open it in

    def open_experiment(self, spec: ExperimentSpec, title: str) -> bool:
        return False

    def start_fork(self, plan: Any) -> bool:
        return False  # no training panel to train it in

    def open_tool(self, key: str, run_dir: str | None = None, **options: Any) -> Tool | None:
        """Open tool `key` (on `run_dir`) as a window of its own, or show the open one."""
        tool = self.opened.get(key)
        if tool is None:
            tool = entry(key).load().open_tool(self, run_dir, **options)
            if tool is None:
                return None
            self.opened[key] = tool
        elif run_dir is not None:
            tool.show_run(run_dir, **options)
        else:
            tool.reopen()
        tool.show()  # type: ignore[attr-defined]  # a QWidget
        return tool

    def get(self, key: str) -> Tool | None:
        return self.opened.get(key)

    def shutdown(self) -> None:
        """Shut down every tool it opened."""
        for tool in self.opened.values():
            tool.shutdown()
