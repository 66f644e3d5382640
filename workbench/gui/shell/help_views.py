"""Help for a newcomer: Getting started (the README's stories as steps, each with a button that
does it), the keyboard shortcuts read from the window's own menus (so the list cannot go
stale), and the welcome strip offered on a first start.

None of them is modal: a person (or a test) keeps working with them open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMenuBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


def plain(text: str) -> str:
    """A menu text as a person reads it: no mnemonic ampersand, no trailing ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def menu_shortcuts(bar: QMenuBar) -> list[tuple[str, str]]:
    """(`File > Save`, `Ctrl+S`) for every action in the menus that has a shortcut, in menu
    order; an action with several shortcuts lists them all."""
    rows = []
    for where, action in _walk(bar.actions(), ()):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        keys = [k for k in keys if k]
        if keys:
            rows.append((" > ".join(where), ", ".join(keys)))
    return rows


def _walk(actions: list[QAction], where: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...],
                                                                           QAction]]:
    for action in actions:
        if action.isSeparator():
            continue
        menu = action.menu()
        path = (*where, plain(action.text()))
        if isinstance(menu, QMenu):
            yield from _walk(menu.actions(), path)
        else:
            yield path, action


class ShortcutsDialog(QDialog):
    """Every keyboard shortcut of the window's menus, as the menus have them right now."""

    def __init__(self, bar: QMenuBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.rows = menu_shortcuts(bar)
        self.table = QTableWidget(len(self.rows), 2)
        self.table.setHorizontalHeaderLabels(["Command", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        for row, (command, keys) in enumerate(self.rows):
            self.table.setItem(row, 0, QTableWidgetItem(command))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        note = QLabel("Read from the menus: a menu item shows its keys beside it too.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(520, min(620, 120 + 30 * len(self.rows)))


class GettingStartedDialog(QDialog):
    """The README's stories as numbered steps; `steps` holds (title, text, button text or
    None, action) and each button runs its action on the window."""

    def __init__(self, steps: list[tuple[str, str, str | None, Callable[[], Any]]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Getting started")
        self.buttons: dict[str, QPushButton] = {}
        body = QWidget()
        grid = QGridLayout(body)
        grid.setColumnStretch(1, 1)
        grid.setVerticalSpacing(12)
        for row, (title, text, button_text, action) in enumerate(steps):
            number = QLabel(f"{row + 1}")
            number.setObjectName("sectionTitle")
            number.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
            words = QLabel(f"<b>{title}</b><br>{text}")
            words.setWordWrap(True)
            words.setTextFormat(Qt.TextFormat.RichText)
            grid.addWidget(number, row, 0)
            grid.addWidget(words, row, 1)
            if button_text is not None:
                button = QPushButton(button_text)
                button.clicked.connect(lambda *_, act=action: act())
                grid.addWidget(button, row, 2, Qt.AlignmentFlag.AlignTop)
                self.buttons[title] = button
        grid.setRowStretch(len(steps), 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        # read top to bottom like a page: each step's button sits beside its own step, so one
        # below the fold is found by reading on (the layout test's rule for panels exempts it)
        scroll.setProperty("document", True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(close)
        self.resize(640, 600)


class WelcomeBanner(QFrame):
    """Offered on a first start (no recent files, no runs): where to begin, never modal. The
    window offers it once the store's runs are known (`offer`), never before; once the
    person has found the way in (trained, opened an example, closed it) it stays away."""

    exampleRequested = Signal()
    guideRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        self.decided = False  # offered or not, once: a later listing changes nothing
        text = QLabel("New here? The experiment on the left trains as it is: press "
                      "<b>Train</b>. Or start from an example.")
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        self.example_button = QPushButton("Open an example…")
        self.example_button.clicked.connect(self.exampleRequested)
        self.guide_button = QPushButton("Getting started")
        self.guide_button.clicked.connect(self.guideRequested)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Hide this")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)  # one row: it takes little of a laptop's height
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(text, 1)
        layout.addWidget(self.example_button)
        layout.addWidget(self.guide_button)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)

    def offer(self, first_start: bool) -> None:
        """Show it on a first start, decided once (the first time the runs are known)."""
        if not self.decided:
            self.decided = True
            self.setVisible(first_start)

    def dismiss(self) -> None:
        """Hide it for good: the person has found the way in."""
        self.decided = True
        self.hide()
