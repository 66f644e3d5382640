"""`workbench` with no arguments: the desktop app."""

from __future__ import annotations

import logging
import os
import sys
import threading
from types import TracebackType

from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication

from workbench import __version__, logs

log = logging.getLogger(__name__)


def _log_uncaught(kind: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
    """An exception nothing caught (in a slot, say) goes to the log, then where it went."""
    log.critical("uncaught exception", exc_info=(kind, exc, tb))
    sys.__excepthook__(kind, exc, tb)


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        log.critical("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
    threading.__excepthook__(args)


def main(argv: list[str] | None = None) -> int:
    logs.ensure_configured()
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Workbench")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("Workbench")
    app.setDesktopFileName("workbench")  # ties the window to packaging/workbench.desktop
    from workbench.gui.shell import smoke
    from workbench.gui.shell.main_window import MainWindow
    from workbench.gui.shell.warmup import collect_on_gui_thread, settle_heap
    from workbench.gui.threads.worker import abandoned_still_running
    from workbench.gui.widgets.icon import app_icon
    from workbench.gui.widgets.style import apply_style

    collector = collect_on_gui_thread()  # never on the training thread
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
    code = app.exec()
    collector.timer.stop()
    # Deleted now, parent before children: a window left to the interpreter's exit is torn
    # down in whatever order PySide finds its objects (a view's items before the view).
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    if abandoned_still_running():  # a job left behind may be inside torch: no teardown
        log.warning("exiting with %d abandoned job(s) still running", abandoned_still_running())
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
