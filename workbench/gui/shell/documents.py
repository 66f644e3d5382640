"""The window's document: the experiment being edited, saved as a spec JSON file or untitled
(an example, a run, a study opened as a copy); New, Open, Open Recent, Open Example, Save, Save
As, the title, and asking about unsaved changes. A malformed file is refused with a message
and changes nothing; nothing is written inside Workbench's own folder.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QFileDialog, QMenu

from workbench import spec as specmod
from workbench.core.store.specs import save_spec
from workbench.gui.document.experiment_model import ExperimentModel
from workbench.gui.shell import project
from workbench.gui.shell.examples import Example, examples, is_bundled
from workbench.gui.shell.help_views import WelcomeBanner
from workbench.gui.shell.presenter import suggested_file_name, window_title
from workbench.gui.widgets import dialogs
from workbench.spec import ExperimentSpec, SpecError


class DocumentsMixin:
    """The document's commands (mixed into `MainWindow`)."""

    model: ExperimentModel
    undo: QUndoStack
    settings: QSettings
    path: Path | None
    doc_title: str | None
    welcome: WelcomeBanner
    recent_menu: QMenu
    examples_menu: QMenu

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


    # -- projects ---------------------------------------------------------------------------
    def _update_title(self) -> None:
        self.setWindowTitle(window_title(self.path, self.doc_title))

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
        self.welcome.dismiss()
        self.statusBar().showMessage(f"Opened the example {example.title}: "
                                     f"{example.description}", 8000)
        return True

    def save(self) -> bool:
        if self.path is None or is_bundled(self.path):
            return self.save_as()
        return self.save_to(self.path)

    def save_as(self) -> bool:
        suggested = str(Path(self._folder()) / suggested_file_name(self.model.live.name))
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

