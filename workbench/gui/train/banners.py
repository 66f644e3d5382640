"""The boxes above a run's views: red for a run that failed (why, what to try, its details),
amber for one that is not failing but not well either."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from workbench.gui.widgets.style import FAILURE_STYLE, NOTICE_STYLE


class _Banner(QFrame):
    """A dismissible box of selectable text above the run's views; `extra` buttons sit
    between the text and the close button."""

    def __init__(self, name: str, style: str, extra: tuple[QPushButton, ...] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setStyleSheet(style)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("\u2715")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 4, 6)
        layout.addWidget(self.text, 1)
        for button in (*extra, close):
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()


class FailureBanner(_Banner):
    """A visible red box with why a run failed and what to try; dismissed with its button.

    A bug's details (its traceback in the run folder, or the log) are named, with a button that
    opens them.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        details_button = QPushButton("Open details")
        super().__init__("failure", FAILURE_STYLE, (details_button,), parent)
        self.details_button = details_button
        details_button.setToolTip("Open the file with what went wrong")
        details_button.clicked.connect(self.open_details)
        self.details: str | None = None

    def show_failure(self, reason: str, hint: str, details: str | None = None) -> None:
        self.reason = reason
        self.hint = hint
        self.details = details
        text = f"<b>The run failed:</b> {_escape(reason)}<br><b>Try:</b> {_escape(hint)}"
        if details:
            text += f"<br><b>Details:</b> {_escape(details)}"
        self.text.setText(text)
        self.details_button.setVisible(bool(details))
        self.show()

    def open_details(self) -> None:
        if self.details:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.details))


class NoticeBanner(_Banner):
    """An amber box for a run that is not failing but not well either: a health warning while
    it trains, or an outcome that did not learn (diverged, one class, chance) when it ends."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("notice", NOTICE_STYLE, parent=parent)
        self.kind: str | None = None  # "health" or "outcome": what it shows now

    def show_notice(self, kind: str, title: str, items: list[tuple[str, str]]) -> None:
        """`items`: (what is wrong, what to try) pairs."""
        self.kind = kind
        lines = [f"<b>\u26a0 {_escape(title)}</b>"]
        for message, hint in items:
            lines.append(f"{_escape(message)}" + (f" \u2014 <b>Try:</b> {_escape(hint)}"
                                                  if hint else ""))
        self.text.setText("<br>".join(lines))
        self.show()

    def clear(self) -> None:
        self.kind = None
        self.text.setText("")
        self.hide()


def _escape(text: str) -> str:
    return html.escape(text, quote=False)
