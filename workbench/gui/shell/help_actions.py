"""The window's Help: Getting started (the README's stories as steps, each a button that takes
the first step), the keyboard shortcuts read from the menus, About, and the welcome strip's
examples menu. Help windows are not modal; one of each is open at a time.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QMenu,
    QTabWidget,
    QWidget,
)

from workbench import __version__
from workbench.gui.editors.name_field import NameField
from workbench.gui.shell.help_views import GettingStartedDialog, ShortcutsDialog
from workbench.gui.shell.presenter import device_text
from workbench.gui.widgets import dialogs


class HelpMixin:
    """The Help commands (mixed into `MainWindow`)."""

    _help: dict[str, QDialog]
    gpu_name: str | None
    runs: Any
    train_panel: Any
    center: QTabWidget
    editors_dock: QDockWidget
    history_dock: QDockWidget
    name_field: NameField
    tools: Any

    # -- help -------------------------------------------------------------------------------
    def about_text(self) -> str:
        import PySide6
        from PySide6.QtCore import qVersion

        torch_version = sys.modules["torch"].__version__ if "torch" in sys.modules \
            else "not loaded yet"
        device = device_text(self.gpu_name)
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
            ("See what the network learned",
             "Inspect shows a trained run's first-layer weights, why it answered a test "
             "sample as it did (attribution maps, each with how to read it) and what each "
             "class is recognised by.", "Inspect…", self._inspect),
            ("Send a run to someone",
             "File > Export report… writes one HTML page with the run's results, curves, "
             "pictures and spec, readable without Workbench.", "Export report…",
             self.export_report),
            ("Train on several machines",
             "Tools > Launch on several machines… gives the command every node runs and a "
             "SLURM batch script for a cluster.", "Launch…", self.launch_dialog),
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

    def _inspect(self) -> None:
        self.tools.open("inspect")

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

