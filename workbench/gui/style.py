"""The app's look: Qt's Fusion style, a light palette and `resources/style.qss`."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from workbench.paths import resources_dir

ACCENT = "#2f6fde"
CLASS_COLORS = ("#2f6fde", "#e4572e", "#29a35a", "#9b5de5", "#f2a541", "#17becf", "#d62789",
                "#8c564b", "#7f7f7f", "#bcbd22")


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    for role, color in (
        (QPalette.ColorRole.Window, "#f5f6f8"),
        (QPalette.ColorRole.Base, "#ffffff"),
        (QPalette.ColorRole.AlternateBase, "#f0f2f5"),
        (QPalette.ColorRole.Button, "#ffffff"),
        (QPalette.ColorRole.Highlight, ACCENT),
        (QPalette.ColorRole.HighlightedText, "#ffffff"),
        (QPalette.ColorRole.Text, "#1d232b"),
        (QPalette.ColorRole.WindowText, "#1d232b"),
        (QPalette.ColorRole.ButtonText, "#1d232b"),
        (QPalette.ColorRole.ToolTipBase, "#ffffff"),
        (QPalette.ColorRole.ToolTipText, "#1d232b"),
    ):
        palette.setColor(role, QColor(color))
    app.setPalette(palette)
    qss = resources_dir() / "style.qss"
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
