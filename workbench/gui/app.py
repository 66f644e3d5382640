"""`workbench` with no arguments: the desktop app."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from workbench import __version__


def main(argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Workbench")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("Workbench")
    app.setDesktopFileName("workbench")  # ties the window to packaging/workbench.desktop
    from workbench.gui import smoke
    from workbench.gui.icon import app_icon
    from workbench.gui.main_window import MainWindow
    from workbench.gui.style import apply_style
    from workbench.gui.warmup import settle_heap

    apply_style(app)
    app.setWindowIcon(app_icon())
    window = MainWindow()
    if window.train_panel is None:  # the long-lived objects are all made once it is in place
        window.trainPanelReady.connect(settle_heap)
    else:
        settle_heap()
    window.show()
    if smoke.requested():  # WORKBENCH_SMOKE=1: train one epoch unattended, print JSON, quit
        smoke.SmokeRun(window).start()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
