"""SIGINT and SIGTERM while a command works, one class for every command: the first asks for a
cooperative stop (the step in flight ends, what was half-made is removed or recorded as
stopped) and the command exits with 128 + the signal (130 for Ctrl-C, 143 for SIGTERM); a
second stops at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Self

from workbench.commands.common import Exit


class StopNow(KeyboardInterrupt):
    """A second signal: stop at once (unwinding, so that work folders and temporary files
    are still removed); `code` is the exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class SignalStop:
    """The first SIGINT/SIGTERM sets `event` and calls `stop` (by default `on_stop()`), which
    the work checks between steps, and says `says`. A second one stops at once: by unwinding
    (StopNow), so that work folders and temporary files are still removed, or with
    `exit_at_once` by calling `at_once()` and ending the process there (a trainer's last
    checkpoint is whole; the run then shows as interrupted).

    Only the main thread can receive signals; elsewhere this does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    says = "stopping after this step"
    at_once_text = "stopped at once"

    def __init__(self, on_stop: Callable[[], object] | None = None, *, says: str | None = None,
                 exit_at_once: bool = False) -> None:
        self.event = threading.Event()
        self.signal: int | None = None
        self.on_stop = on_stop
        self.says = says or self.says
        self.exit_at_once = exit_at_once
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    def stop(self, signum: int) -> None:
        """What the first signal does besides setting `event`."""
        if self.on_stop is not None:
            self.on_stop()

    def at_once(self) -> None:
        """What a second signal does before the process exits (with `exit_at_once`)."""

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:
            if not self.exit_at_once:
                raise StopNow(128 + signum)
            self.at_once()
            sys.stderr.write(f"\nworkbench: {self.at_once_text}\n")
            os._exit(128 + signum)
        self.signal = signum
        self.event.set()
        self.stop(signum)
        sys.stderr.write(f"\nworkbench: {signal.Signals(signum).name}: {self.says} (again to "
                         "stop at once)\n")

    @property
    def exit_code(self) -> int | None:
        """128 + the signal that stopped the work (130 for Ctrl-C, 143 for SIGTERM); None
        while none has."""
        return None if self.signal is None else 128 + self.signal

    def stopped(self, what: str) -> int:
        """Say in one line what the stop left, and return the exit status."""
        sys.stderr.write(f"workbench: stopped: {what}\n")
        return self.exit_code or Exit.SIGINT
