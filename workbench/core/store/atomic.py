"""Atomic file writes: a temporary file in the same folder, fsynced, renamed into place, the
folder fsynced after the rename.

A crash or a full disk leaves either the old file or the new one, never half of either. The new
file gets the permissions the old one had, or the user's umask (as `open` would give it), not
the 0600 of a temporary file.

A temporary file is hidden and named `.<name>.<random>.tmp`; the writer holds an exclusive
`flock` on it while it writes, so `remove_stale_temps` can tell one left by a killed process
(lock free) from one being written right now (lock held) and removes only the first kind.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no flock; stale temps are then recognised by age alone
    fcntl = None  # type: ignore[assignment]

TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")
STALE_AFTER_S = 60.0  # a temp younger than this may be one whose writer has not locked it yet
_UNLOCKED_STALE_AFTER_S = 24 * 3600.0  # without flock, only a day-old temp is surely stale

_umask_lock = threading.Lock()
_umask: int | None = None


def umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    global _umask
    with _umask_lock:
        if _umask is None:
            try:
                with open("/proc/self/status", encoding="ascii") as f:
                    line = next(ln for ln in f if ln.startswith("Umask:"))
                _umask = int(line.split()[1], 8)
            except (OSError, StopIteration, ValueError):
                _umask = os.umask(0o022)
                os.umask(_umask)
        return _umask


def _mode_for(path: Path) -> int:
    """The permissions the written file gets: the old file's, else what umask allows."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~umask()


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable; a no-op where folders cannot be opened (Windows) or
    fsynced (some network file systems)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lock_fd(fd: int) -> None:
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _with_filename(exc: OSError, path: Path) -> OSError:
    """The same error naming the file (a write's ENOSPC names none)."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, str(path))


@contextlib.contextmanager
def _locked_temp(path: Path) -> Iterator[tuple[int, Path]]:
    """A temporary file beside `path`, locked and with the final permissions; renamed over
    `path` (and the folder fsynced) when the block ends, removed when it raises."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        _lock_fd(fd)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _mode_for(path))
        yield fd, tmp
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _with_filename(exc, path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def temp_beside(path: Path) -> Iterator[Path]:
    """A temporary file name beside `path` for a writer that takes a name (an exporter);
    fsynced and renamed over `path` when the block ends, removed when it raises."""
    with _locked_temp(Path(path)) as (fd, tmp):
        yield tmp
        os.fsync(fd)


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call `write` on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked_temp(path) as (fd, _tmp), os.fdopen(fd, "wb", closefd=False) as f:
        write(f)
        f.flush()
        os.fsync(fd)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def _is_stale(path: Path, now: float) -> bool:
    try:
        age = now - path.lstat().st_mtime
    except OSError:
        return False
    if fcntl is None:
        return age > _UNLOCKED_STALE_AFTER_S
    if age < STALE_AFTER_S:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # its writer is alive and holds it
    finally:
        os.close(fd)
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files a killed writer left in `folder`; what was removed.

    Never fails: a folder that cannot be read or written keeps its temps.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not _TEMP_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if _is_stale(path, now):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


__all__ = ["fsync_folder", "remove_stale_temps", "temp_beside", "umask", "write_atomic",
           "write_bytes_atomic", "write_text_atomic"]
