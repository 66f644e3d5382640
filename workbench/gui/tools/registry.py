"""The tools, declared: what each is called, where it sits in the menus, its shortcut, whether
it needs a run, which run it starts on and how the Runs list offers it.

The window builds the Tools menu, the Runs list's buttons, More and context menus, Help's list
of shortcuts and its closing from `TOOLS`; the tests open every tool from it. A declaration
names the tool's widget as `module:Class` (napari's `python_name`), imported when the tool is
first opened, so a tool whose module is missing (an optional extra not installed) is offered
disabled and the window starts without importing any tool. The widget keeps the `Tool`
protocol below (Spyder's plugins: open, show a run, say what it uses, shut down), and reaches
the app (and other tools) only through its `ToolHost`.

No Qt here: the declarations are plain data, and the protocols name Qt types only for mypy.

Adding a tool: write its package under `gui/tools/` (a widget keeping `Tool`), then add one
`ToolEntry` to `TOOLS`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from workbench.core.workspace import Workspace
    from workbench.spec import ExperimentSpec

StartsOn = Literal["trained", "selected"]
Needs = Literal["model", "ended"]


@dataclass(frozen=True)
class RunAction:
    """How the Runs list offers a tool on the selected run: a button when `primary`, else an
    item of its More menu (and always of its context menu). `needs` says which runs it takes:
    "model" (a trained model: finished or stopped) or "ended" (anything not training now)."""

    text: str
    tip: str
    needs: Needs = "ended"
    primary: bool = False


@dataclass(frozen=True)
class ToolEntry:
    """One tool. `widget` is "module:Class"; `starts_on` is the run it opens on from the Tools
    menu ("trained": the selected run when it has a trained model, else the newest that has;
    "selected": the selected run, whatever it is; None: no run); `needs_run` refuses to open
    (saying why) when there is no such run, and a second Tools-menu click moves it to the run
    selected then."""

    key: str
    title: str  # a tab's title, a dialog's name in messages
    menu_text: str  # with its & mnemonic
    widget: str
    shortcut: str | None = None
    menu: str = "Tools"
    starts_on: StartsOn | None = None
    needs_run: bool = False
    run_action: RunAction | None = None

    @property
    def module(self) -> str:
        return self.widget.partition(":")[0]

    def available(self) -> bool:
        """Whether the tool's module is installed (checked without importing it)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            return False

    def load(self) -> type[Tool]:
        """The tool's widget class, importing its module; ImportError says what is missing."""
        module, _, name = self.widget.partition(":")
        cls: type[Tool] = getattr(importlib.import_module(module), name)
        return cls


TOOLS: tuple[ToolEntry, ...] = (
    ToolEntry("prune", "Prune", "&Prune…", "workbench.gui.tools.prune.panel:PrunePanel",
              shortcut="Ctrl+Shift+P", starts_on="trained",
              run_action=RunAction("Prune…", "Prune the run's network with a slider and make a "
                                   "smaller run", needs="model", primary=True)),
    ToolEntry("export", "Export", "&Export to ONNX…",
              "workbench.gui.tools.export.dialog:ExportDialog", shortcut="Ctrl+E",
              starts_on="trained", needs_run=True,
              run_action=RunAction("Export to ONNX…", "Write the run's network as an ONNX file, "
                                   "verified", needs="model", primary=True)),
    ToolEntry("compress", "Compress", "Co&mpress…",
              "workbench.gui.tools.compress.panel:CompressPanel", shortcut="Ctrl+Shift+M",
              starts_on="trained",
              run_action=RunAction("Compress…", "Measure the run's pruned and quantized variants",
                                   needs="model")),
    ToolEntry("inspect", "Inspect", "&Inspect…", "workbench.gui.tools.inspect.panel:InspectPanel",
              shortcut="Ctrl+I", starts_on="trained",
              run_action=RunAction("Inspect…", "See what the run's network learned and why it "
                                   "answers as it does", needs="model")),
    ToolEntry("compare", "Compare", "&Compare optimizers…",
              "workbench.gui.tools.compare.panel:ComparePanel", shortcut="Ctrl+Shift+C",
              run_action=RunAction("Add to comparison", "Draw the run's curves in Compare "
                                   "beside others")),
    ToolEntry("playground", "Playground", "Play&ground…",
              "workbench.gui.tools.playground.panel:PlaygroundPanel", shortcut="Ctrl+Shift+G"),
    ToolEntry("lr_find", "Find learning rate", "Find &learning rate…",
              "workbench.gui.tools.lr_find.dialog:LRFindDialog", shortcut="Ctrl+L"),
    ToolEntry("fork", "Fork", "&Fork run…", "workbench.gui.tools.fork.dialog:ForkDialog",
              shortcut="Ctrl+Shift+F", starts_on="selected",
              run_action=RunAction("Fork…", "Continue the run from one of its epochs with "
                                   "something changed")),
    ToolEntry("search", "Search", "&Search hyperparameters…",
              "workbench.gui.tools.search.panel:SearchPanel", shortcut="Ctrl+Shift+H"),
)


def entry(key: str) -> ToolEntry:
    """The declaration of tool `key`; KeyError names the known ones."""
    for tool in TOOLS:
        if tool.key == key:
            return tool
    raise KeyError(f"no tool {key!r}; the tools are {', '.join(t.key for t in TOOLS)}")


class ToolHost(Protocol):
    """What a tool may ask of the app that opened it: the window, or `StandaloneHost` for a
    tool opened on its own. A tool reaches another tool only through `open_tool`."""

    workspace: Workspace

    def parent_widget(self) -> Any:
        """The widget a tool's window belongs to (None: a top-level window)."""

    def experiment(self) -> ExperimentSpec:
        """The experiment in the editor, now."""

    def edited(self) -> tuple[Any, Any]:
        """(ExperimentModel, QUndoStack): the edited experiment, for a tool that changes it."""

    def run_feed(self) -> Any:
        """The Runs list's `RunFeed`, whose runs a tool's picker offers (None: a tool lists
        the store itself)."""

    def open_run(self, run_dir: str) -> bool:
        """Open a stored run's experiment in the editor (read off the GUI thread: True when
        asked, the experiment arrives once read; False where there is no editor)."""

    def open_experiment(self, spec: ExperimentSpec, title: str) -> bool:
        """Open an experiment as an untitled document named `title`."""

    def start_fork(self, plan: Any) -> bool:
        """Train a planned fork in the training panel."""

    def open_tool(self, key: str, run_dir: str | None = None, **options: Any) -> Any:
        """Open another tool (on `run_dir`), one of each."""


class Tool:
    """What the window asks of an open tool's widget (a panel in a tab, or a dialog), mixed in
    before its Qt class (`class PrunePanel(Tool, QWidget)`); the defaults suit a tool that
    works on no run."""

    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **options: Any) -> Tool | None:
        """The tool for `host`, on `run_dir` when given; None when it cannot open (it said
        why). Every tool says how it opens (its constructor's arguments are its own):
        `tests/test_presenters.py` checks that each declared tool defines it."""
        raise NotImplementedError(f"{cls.__name__} does not say how it opens")

    def show_run(self, run_dir: str, **options: Any) -> None:
        """Work on `run_dir` now. A tool that opens on runs (a run action, or a run it starts
        on) defines it, as the protocol test checks; one that works on no run, asked to show
        a run (another tool opening it on one), comes to the front as it is."""
        self.reopen()

    def working_on(self) -> str | None:
        """The run folder it works on: not to be deleted under it."""
        return None

    def reopen(self) -> None:
        """Asked for again while it is open (the menu, a button): it is brought to the front;
        a tool whose opening starts work (the rate finder's test) starts it again here."""

    def shutdown(self) -> None:
        """Stop its background work and wait for it (its tab or the window closes): a few
        seconds at most, as `Tasks.shutdown` does; a job that ignores its stop is abandoned
        then. When the window closes, its jobs were already asked to stop and waited for
        together (the workspace's registry), so this returns at once. Long jobs a person
        starts carry a title (`Tasks.start`), which closing names before it stops them."""
