"""The desktop app: PySide6 and pyqtgraph views over the Qt-free core."""

from workbench.gui import refcount_guard

refcount_guard.apply()  # before any PySide6 call: PySide6 6.12 leaks None/True refs on 3.11
