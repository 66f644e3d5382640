"""What the window and the Runs list decide, Qt-free (tested without a QApplication): the
Runs list's actions built from the tool registry, the window's title, the file name Save As
suggests, and why the experiment cannot train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workbench.gui.tools.registry import TOOLS, ToolEntry


@dataclass(frozen=True)
class ListAction:
    """An action of the list on the selected run: its own (open, resume, folder, delete) or a
    tool's (`key` names it in the registry; `needs` is its `RunAction.needs`). `primary` ones
    are buttons too; the rest sit in the More menu beside them."""

    key: str
    text: str
    tip: str
    needs: str | None = None
    primary: bool = False


def list_actions(tools: Sequence[ToolEntry] = TOOLS) -> tuple[ListAction, ...]:
    """What the list offers, in menu order: open and resume, then each tool that declares a run
    action (in the registry's order), then the folder and delete."""
    offered = [ListAction(t.key, t.run_action.text, t.run_action.tip, t.run_action.needs,
                          t.run_action.primary)
               for t in tools if t.run_action is not None]
    return (ListAction("open", "Open in editor", "Load the run's experiment into the editor",
                       primary=True),
            ListAction("resume", "Resume", "Continue the run from its last checkpoint",
                       primary=True),
            *[a for a in offered if a.primary], *[a for a in offered if not a.primary],
            ListAction("folder", "Show folder", "Open the run's folder in the file manager"),
            ListAction("delete", "Delete…", "Remove the run and its files for good"))
