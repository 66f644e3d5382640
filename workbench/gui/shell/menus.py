"""The window's menu bar: File, Edit, Tools (every tool of the registry, then the run and
multi-GPU commands), View and Help. Each command is a `QAction` in `window.actions`, by key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import (
    QAction,
    QKeySequence,
    QUndoStack,
)
from PySide6.QtWidgets import QDockWidget, QTabWidget

from workbench.gui.shell.tool_shelf import ToolShelf


class MenusMixin:
    """Builds the window's menus (mixed into `MainWindow`)."""

    undo: QUndoStack
    tools: ToolShelf
    actions: dict[str, QAction]
    editors: QTabWidget
    editors_dock: QDockWidget
    history_dock: QDockWidget

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
            "export_report": self._action("Export &report…", self.export_report),
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
        file_menu.addAction(self.actions["export_report"])
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
        self.actions["launch"] = self._action("&Launch on several machines…",
                                              self.launch_dialog)
        tools_menu.addAction(self.actions["launch"])
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

