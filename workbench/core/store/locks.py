"""Run folder locks: whoever trains or resumes a run holds its lock.

A second trainer on the same run (another `workbench resume`, the CLI beside the app, a
second window) is refused with who holds it, instead of both writing one metrics log. The lock
is an `flock` (through `filelock`), so the system lets go of it when its process dies: a run
whose summary says "running" but whose lock is free was interrupted.

`.lock` is the lock file; `.owner.json` (process id, host, since when) is written by the
holder beside it, only so that a refusal can say who holds the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from workbench.core.store.atomic import write_text_atomic
from workbench.core.store.errors import RunError, RunInUse

LOCK_NAME = ".lock"
OWNER_NAME = ".owner.json"
# A trainer waits this long for the lock: a reader probing it (`is_locked`) holds it for
# microseconds and must never make a trainer fail.
ACQUIRE_TIMEOUT_S = 2.0


def holder(folder: Path) -> str:
    """Who holds the lock, in words: "process 123 on host a" (or "another process")."""
    try:
        owner = json.loads((Path(folder) / OWNER_NAME).read_text(encoding="utf-8"))
        return f"process {int(owner['pid'])} on host {owner['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class RunLock:
    """The lock of one run folder; `with RunLock(path):` or `acquire()` / `release()`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._lock = FileLock(str(self.folder / LOCK_NAME), thread_local=False)
        self.held = False

    def acquire(self, timeout: float = ACQUIRE_TIMEOUT_S) -> RunLock:
        """Take the lock or raise RunInUse naming the holder (RunError when the folder
        cannot hold a lock at all)."""
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise RunInUse(f"run {self.folder.name} is in use by {holder(self.folder)}; "
                           "wait for it to end or stop it there") from None
        except OSError as exc:
            raise RunError(f"{self.folder}: cannot lock the run folder "
                           f"({exc.strerror or exc})") from exc
        self.held = True
        with contextlib.suppress(OSError):  # the name of the holder is a courtesy
            write_text_atomic(self.folder / OWNER_NAME, json.dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
        return self

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(OSError):
            (self.folder / OWNER_NAME).unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def is_locked(folder: str | Path) -> bool | None:
    """Whether some trainer holds the run now; None when that cannot be told (a folder that
    cannot be written, where no lock can be taken to probe)."""
    path = Path(folder) / LOCK_NAME
    probe = FileLock(str(path), thread_local=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return None
    probe.release()
    return False


__all__ = ["ACQUIRE_TIMEOUT_S", "LOCK_NAME", "OWNER_NAME", "RunLock", "holder", "is_locked"]
