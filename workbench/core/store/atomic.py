"""Atomic file writes: a temporary file in the same folder, fsynced, renamed into place, the
folder fsynced after the rename.

A crash or a full disk leaves either the old file or the new one, never half of either. The new
file gets the permissions the old one had, or the user's umask (as `open` would give it), not
the 0600 of a temporary file.

A temporary file is hidden and named `.<name>.wb-<random>.tmp` (`<name>` cut short so that the
whole stays within the 255 bytes a file name may have): a name only Workbench makes, so that a
person's own `.report.docx.A1B2C3.tmp` is never taken for one. The writer holds an exclusive
`flock` on it while it writes, so `remove_stale_temps` can tell one left by a killed process
(lock free) from one being written right now (lock held) and removes only the first kind. The
sweep runs only where Workbench keeps its own files (a run folder and its sub-folders), or for
the temps of the files a person named (an export's), and never follows a link.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no flock; stale temps are then recognised by age alone
    fcntl = None  # type: ignore[assignment]

TEMP_SUFFIX = ".tmp"
TEMP_MARK = ".wb-"  # between the file's name and mkstemp's eight random characters
NAME_MAX = 255  # bytes of one file name on the file systems Workbench meets (ext4, APFS, NTFS)
_TEMP_NAME = re.compile(r"^\.(?P<name>.*)\.wb-[a-z0-9_]{8}\.tmp$", re.DOTALL)
_TEMP_OVERHEAD = len(".") + len(TEMP_MARK) + 8 + len(TEMP_SUFFIX)
MAX_SWEEP_DEPTH = 3  # a run folder, checkpoints/ and compress/ inside it, and one more level
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


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) `folder` takes; NAME_MAX where the system cannot say."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _cut(name: str, limit: int) -> str:
    """`name` cut to at most `limit` bytes as the file system stores it, never inside a
    character."""
    data = os.fsencode(name)[:max(0, limit)]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end == len(data) and exc.reason == "unexpected end of data":
            data = data[:exc.start]  # the cut fell inside a character
    return os.fsdecode(data)


def temp_prefix(name: str, limit: int = NAME_MAX) -> str:
    """What a temporary file beside `name` starts with (its random part and suffix follow):
    the name cut so that the temp's whole name stays within `limit` bytes."""
    return f".{_cut(name, limit - _TEMP_OVERHEAD)}{TEMP_MARK}"


def is_temp_name(name: str, of: str | None = None) -> bool:
    """Whether `name` is a temporary file Workbench made (beside the file `of`, when given)."""
    match = _TEMP_NAME.match(name)
    if match is None:
        return False
    return of is None or name.startswith(temp_prefix(of))


def unwritable(folder: Path) -> OSError | None:
    """Why no file can be written in `folder` (a read-only file system, no permission), or
    None when one can. The probe is an unnamed temporary file: nothing appears there."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=temp_prefix("probe")):
            pass
    except OSError as exc:
        return exc
    return None


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
    mode = _mode_for(path)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path.name, name_max(path.parent)),
                                    suffix=TEMP_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        _lock_fd(fd)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
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
    fsynced and renamed over `path` when the block ends, removed when it raises.

    A writer may replace the file at that name instead of writing into it (safetensors does,
    as 0600): the file found there at the end is the one given the permissions and fsynced.
    """
    path = Path(path)
    mode = _mode_for(path)
    with _locked_temp(path) as (_fd, tmp):
        yield tmp
        _settle(tmp, mode)


def _settle(path: Path, mode: int) -> None:
    """Give the file now at `path` its final permissions and make its bytes durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


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
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # its writer is alive and holds it
    finally:
        os.close(fd)
    return True


def remove_stale_temps(folder: Path, *, recursive: bool = False,
                       of: Iterable[str] | None = None) -> list[Path]:
    """Remove the temporary files a killed Workbench writer left in `folder`; what was removed.

    Only names Workbench makes are touched (`is_temp_name`), only plain files, and with `of`
    only the temps of those file names (an export sweeps the temps of the files it writes in
    a person's folder, nothing else there). `recursive` goes into sub-folders (a run's
    `checkpoints/`), never through a link. Never fails: a folder that cannot be read or
    written keeps its temps.
    """
    names = None if of is None else list(of)
    removed: list[Path] = []
    now = time.time()
    pending = [(Path(folder), 0)]
    while pending:
        current, depth = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive and depth < MAX_SWEEP_DEPTH:
                        pending.append((Path(entry.path), depth + 1))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            if not (is_temp_name(entry.name) if names is None
                    else any(is_temp_name(entry.name, of=n) for n in names)):
                continue
            path = Path(entry.path)
            if _is_stale(path, now):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


WORK_LOCK = ".workbench-lock"


@contextlib.contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A private folder in the system's temporary folder for a tool's intermediate files,
    removed when the block ends however it ends (an error, a stop on a signal). Its holder
    keeps a lock in it, so that `remove_stale_work_dirs` removes the folders of killed
    processes (kill -9 runs no cleanup) and never a live one's."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    fd = os.open(folder / WORK_LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        _lock_fd(fd)
        yield folder
    finally:
        os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_work_dirs(prefix: str) -> list[Path]:
    """Remove the `work_dir(prefix)` folders that killed processes of this user left; never
    fails, never follows a link, never touches a folder whose holder is alive."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            continue
        lock = Path(entry.path) / WORK_LOCK
        # a folder without a lock is an older Workbench's: gone once it is a day old
        stale = (_is_stale(lock, now) if lock.exists()
                 else now - info.st_mtime > _UNLOCKED_STALE_AFTER_S)
        if stale:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


__all__ = ["NAME_MAX", "fsync_folder", "is_temp_name", "name_max", "remove_stale_temps",
           "remove_stale_work_dirs", "temp_beside", "temp_prefix", "umask", "unwritable",
           "work_dir", "write_atomic", "write_bytes_atomic", "write_text_atomic"]
