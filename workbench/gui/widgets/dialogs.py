"""Every message box the app shows goes through here, so tests can answer them without a screen.

Tests monkeypatch `ask` / `inform` / `warn` (or set `dialogs.ANSWER`) instead of facing a modal
dialog that would block the event loop.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

Button = QMessageBox.StandardButton


def ask(parent: QWidget | None, title: str, text: str,
        buttons: Button = Button.Yes | Button.No, default: Button = Button.No) -> Button:
    """A question; returns the button the person pressed."""
    return QMessageBox.question(parent, title, text, buttons, default)


def warn(parent: QWidget | None, title: str, text: str) -> None:
    """Something went wrong and nothing was changed."""
    QMessageBox.warning(parent, title, text)


def inform(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.information(parent, title, text)


def about(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.about(parent, title, text)
