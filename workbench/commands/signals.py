"""SIGINT and SIGTERM while a command works: the first asks for a cooperative stop, a second
quits at once with 128 + the signal (130 for Ctrl-C, 143 for SIGTERM). One class for train,
resume, fork, search and a node of a distributed run."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any


class StopOnSignal:
    """The first SIGINT/SIGTERM calls `stop(signum)` (by default `target.stop()`: the step in
    flight ends, what must be saved is saved) and says `doing`; a second calls `at_once()` and
    exits at once. Only the main thread can receive signals; elsewhere this does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    doing = "stopping after this step and saving a checkpoint"
    at_once_text = "stopped at once"

    def __init__(self, target: Any, *, doing: str | None = None) -> None:
        self.target = target
        self.doing = doing or self.doing
        self.signal: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
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
        self.target.stop()

    def at_once(self) -> None:
        """What a second signal does before the process exits."""

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:
            self.at_once()
            sys.stderr.write(f"\nworkbench: {self.at_once_text}\n")
            os._exit(128 + signum)
        self.signal = signum
        self.stop(signum)
        sys.stderr.write(f"\nworkbench: {signal.Signals(signum).name}: {self.doing} "
                         "(again to quit at once)\n")

    @property
    def exit_code(self) -> int | None:
        """128 + the signal (130 for Ctrl-C, 143 for SIGTERM) once one stopped the work."""
        return None if self.signal is None else 128 + self.signal
