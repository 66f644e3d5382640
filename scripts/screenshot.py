"""Make docs/screenshot.png, the README's picture of the app: the window at 1280x800 (the
target laptop screen), offscreen, after training the experiment it opens with, with the
decision boundary on show. The PNG is reduced to a 256-colour palette to stay small.

    QT_QPA_PLATFORM=offscreen python scripts/screenshot.py [OUT.png]

Runs and settings go to a temporary folder, never the person's.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

SIZE = (1280, 800)
ROOT = Path(__file__).resolve().parent.parent


def main(out: Path) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="workbench-screenshot-")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from workbench.gui.shell.main_window import MainWindow
    from workbench.gui.widgets.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    window = MainWindow()
    window.resize(*SIZE)
    window.show()
    window.resizeDocks([window.editors_dock], [int(SIZE[0] * 0.44)], Qt.Orientation.Horizontal)

    def wait(done: object, seconds: float = 300) -> None:
        end = time.monotonic() + seconds
        while not done():  # type: ignore[operator]
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there in time")
            app.processEvents()
            time.sleep(0.01)

    wait(lambda: window.train_panel is not None)
    panel = window.train_panel
    ended: list[object] = []
    panel.runEnded.connect(ended.append)
    panel.train_button.click()
    wait(lambda: ended)
    panel.tabs.setCurrentWidget(panel.boundary)
    history = window.history  # the list follows the store: wait for it to show the end
    wait(lambda: (info := history.selected_info()) is not None
         and info.summary.get("status") == "finished" and not history.tasks.is_running())
    for _ in range(20):
        app.processEvents()
    raw = out.with_suffix(".raw.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(raw))
    window.undo.setClean()
    window.close()
    with Image.open(raw) as image:
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
            out, optimize=True)
    raw.unlink()
    print(f"{out}: {out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png")
