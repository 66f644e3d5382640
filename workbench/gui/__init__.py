"""The desktop app: PySide6 and pyqtgraph views over the Qt-free core."""
