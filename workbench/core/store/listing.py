"""The store's runs kept current by reading again only the run folders that changed.

`RunStore.list` reads every run's summary and probes every run's lock; the app's Runs list,
which follows the store while a run trains beside it, did that every few seconds and on every
change, competing with the training thread for the GIL. `RunListing.update` instead looks at
each folder's stamp (the folder's and its summary's change time, size and inode: two `stat`
calls, no reading) and reads again only the folders whose stamp moved since its last update,
and a run whose summary says running once its lock is free (its process died: it shows as
interrupted); a lock is probed only for a run that says running. A folder created a moment
ago without its summary yet is a run being made: kept apart (to watch), not shown as damaged.

It reads files: call it on a worker, one update at a time (it keeps what it read between
updates); each `Listing` it returns is a new value, sharing the runs that did not change with
the last one. Unlike `RunStore.list` it writes nothing: temps a killed writer left are swept by
the next trainer or `workbench runs`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.core.store.locks import is_locked
from workbench.core.store.runs import (
    LIVE,
    RunInfo,
    RunStatus,
    RunStore,
    newest_first,
    read_info,
)

# A folder this young without its summary is a run being made, not a damaged one.
BEING_MADE_S = 10.0

Stamp = tuple[int, ...]


@dataclass(frozen=True)
class Listing:
    """The store's runs (newest first), the folders of runs being made, the folders worth
    watching for changes (the store, or the nearest folder above it that exists, and the runs
    still live or being made), and how many folders this update read."""

    infos: tuple[RunInfo, ...]
    making: tuple[Path, ...]
    watch: tuple[Path, ...]
    reread: int


class RunListing:
    """The runs of `store`, updated incrementally (see the module)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._known: dict[Path, tuple[Stamp, RunInfo | None]] = {}

    def update(self) -> Listing:
        """Look at the store now; RunError when its folder cannot be read."""
        now = time.time()
        infos: list[RunInfo] = []
        making: list[Path] = []
        known: dict[Path, tuple[Stamp, RunInfo | None]] = {}
        reread = 0
        for path in self.store.folders():
            stamp = _stamp(path)
            if stamp is None:
                continue  # removed meanwhile
            before = self._known.get(path)
            if before is not None and before[0] == stamp and not _moved_on(path, before[1],
                                                                            stamp, now):
                info = before[1]
            else:
                info = read_info(path)
                reread += 1
                if info.error is not None and _being_made(stamp, now):
                    info = None  # its summary comes in a moment
            known[path] = (stamp, info)
            if info is None:
                making.append(path)
            else:
                infos.append(info)
        self._known = known
        listed = tuple(newest_first(infos))
        return Listing(listed, tuple(making), self._watch(listed, making), reread)

    def _watch(self, infos: tuple[RunInfo, ...], making: list[Path]) -> tuple[Path, ...]:
        root = self.store.root
        place = root if root.is_dir() else _existing_parent(root)
        live = [i.path for i in infos if i.error is None and i.status in LIVE]
        return (place, *live, *making)


def _stamp(path: Path) -> Stamp | None:
    """What changes when a run's files do: the folder's change time and inode (a file made,
    renamed or removed in it, which every atomic write is) and its summary's change time, size
    and inode (0s while it has none). None when the folder is gone."""
    try:
        folder = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    try:
        summary = os.stat(path / "summary.json")
        own: Stamp = (summary.st_mtime_ns, summary.st_size, summary.st_ino)
    except OSError:
        own = (0, 0, 0)
    return (folder.st_mtime_ns, folder.st_ino, *own)


def _being_made(stamp: Stamp, now: float) -> bool:
    """A folder without a summary, made less than BEING_MADE_S ago."""
    return stamp[2:] == (0, 0, 0) and now - stamp[0] / 1e9 < BEING_MADE_S


def _moved_on(path: Path, info: RunInfo | None, stamp: Stamp, now: float) -> bool:
    """What no stamp shows: a run being made for too long (damaged, then), or a run whose
    summary says running while nobody holds its lock any more (its process died)."""
    if info is None:
        return not _being_made(stamp, now)
    return info.error is None and info.status == RunStatus.RUNNING and is_locked(path) is False


def same_runs(a: Sequence[RunInfo], b: Sequence[RunInfo]) -> bool:
    """Whether two listings show the same runs: those not read again are the same objects,
    so only the ones read again are compared by value."""
    return len(a) == len(b) and all(
        x is y or (x.path, x.summary, x.error) == (y.path, y.summary, y.error)
        for x, y in zip(a, b, strict=True))


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.is_dir():
            return parent
    return Path("/")


__all__ = ["BEING_MADE_S", "Listing", "RunListing", "same_runs"]
