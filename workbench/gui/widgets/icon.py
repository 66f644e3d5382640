"""The app's icon, read from `resources/icons` (drawn by `resources/icons/make_icons.py`)."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

from workbench.paths import resources_dir

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def app_icon() -> QIcon:
    """Every bundled size in one QIcon, so each place it shows picks a crisp one; an empty
    icon (Qt's default then) if the files are missing, never an error."""
    icon = QIcon()
    folder = resources_dir() / "icons"
    for size in ICON_SIZES:
        path = folder / f"workbench-{size}.png"
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    return icon
