"""Smoke mode (`WORKBENCH_SMOKE=1 workbench`): the app proves it works end to end, unattended.

It opens the bundled example `mnist_small_cnn` cut to one epoch (the bundled `mnist_small`
data), presses Train as a person would, waits for the run to end, prints one JSON line and
quits: status 0 when the run finished, 1 when it failed, could not start or ran out of time.
packaging/smoke_test.sh runs the built app this way; tests run the source tree this way.

`WORKBENCH_SMOKE_T0` (seconds since the epoch, set by the caller just before it starts the
process) makes the timings count from the launch, bootloader and imports included.
"""

from __future__ import annotations

import gc
import json
import os
import time
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer

from workbench import spec as specmod
from workbench.gui.document import undo
from workbench.paths import resources_dir

ENV = "WORKBENCH_SMOKE"
EXAMPLE = "mnist_small_cnn"
TIMEOUT_S = float(os.environ.get("WORKBENCH_SMOKE_TIMEOUT", "600"))


def requested() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def _launch_time() -> float:
    try:
        return float(os.environ["WORKBENCH_SMOKE_T0"])
    except (KeyError, ValueError):
        return time.time()


class SmokeRun(QObject):
    """Drives a shown MainWindow through one training run; `start()` and return to the loop."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.t0 = _launch_time()
        self.result: dict[str, Any] = {"smoke": "workbench", "example": EXAMPLE}
        self._watchdog = QTimer(self)
        self._watchdog.setSingleShot(True)
        self._watchdog.timeout.connect(self._timed_out)
        self._done = False

    def _mark(self, key: str) -> None:
        self.result[key] = round(time.time() - self.t0, 2)

    def start(self) -> None:
        """Call right after `window.show()`; the work happens in the event loop."""
        self._watchdog.start(int(TIMEOUT_S * 1000))
        QTimer.singleShot(0, self._window_up)

    def _window_up(self) -> None:
        self._mark("window_s")
        spec = specmod.load(resources_dir() / "examples" / f"{EXAMPLE}.json")
        spec.train.epochs = 1
        undo.push_spec(self.window.undo, self.window.model, spec, "Smoke test: one epoch")
        if self.window.train_panel is None:
            self.window.trainPanelReady.connect(self._train)
        else:
            self._train()

    def _train(self) -> None:
        self._mark("torch_ready_s")
        self.result["frozen_objects"] = gc.get_freeze_count()  # app.main's settle_heap ran
        panel = self.window.train_panel
        if not panel.train_button.isEnabled():
            self._finish(False, f"Train is disabled: {self.window.blocked_reason()}")
            return
        panel.runStarted.connect(self._started)
        panel.runEnded.connect(self._ended)
        panel.train_button.click()
        if not panel.is_running():
            self._finish(False, f"the run did not start: {getattr(panel.banner, 'reason', '?')}")

    def _started(self, event: Any) -> None:
        self._mark("run_started_s")
        self.result["device"] = event.device_name
        self.result["train_size"] = event.train_size

    def _ended(self, event: Any) -> None:
        self.result["run_dir"] = event.run_dir
        if hasattr(event, "reason"):
            self._finish(False, f"{event.reason} (try: {event.hint})")
            return
        self.result.update(epochs=event.epochs, train_seconds=round(event.seconds, 2),
                           test_accuracy=event.test_accuracy)
        self._finish(not event.stopped, "stopped before the end" if event.stopped else None)

    def _timed_out(self) -> None:
        self._finish(False, f"no result within {TIMEOUT_S:g} s")

    def _finish(self, ok: bool, error: str | None) -> None:
        if self._done:
            return
        self._done = True
        self._watchdog.stop()
        self._mark("total_s")
        self.result["ok"] = ok
        if error:
            self.result["error"] = error
        panel = self.window.train_panel
        if panel is not None and panel.is_running():  # out of time: stop without asking
            panel.stop_and_wait()
        self.window.undo.setClean()  # the smoke test's edit is nobody's work to save
        self.window.close()  # the person's way out: saves the layout, ends every thread
        print(json.dumps(self.result), flush=True)
        QCoreApplication.exit(0 if ok else 1)
