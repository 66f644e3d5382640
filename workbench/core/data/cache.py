"""Datasets loaded once and shared: a bounded, thread-safe cache of splits and descriptions.

A dataset is keyed by its data spec (as canonical JSON), the seed, and the size and mtime of
every file a `path`- or `root`-based set reads, so editing the CSV on disk loads it afresh.
Two threads that ask for the same data at once load it once (the second waits, and sees the
first one's progress); a load that was cancelled or failed is not kept, and whoever still
waits loads it itself. The least recently used entries go when there are more than
`max_entries` or their tensors take more than `max_bytes` (the newest always stays).

Importing this module loads no torch: the GUI holds a cache before torch has loaded.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from workbench.core.data.errors import DataError
from workbench.spec import DataSpec
from workbench.spec.datasets import DATASETS

if TYPE_CHECKING:
    from workbench.core.data.splits import DatasetInfo, Splits

Progress = Callable[[int, int], None]
T = TypeVar("T")

MAX_ENTRIES = 4
MAX_BYTES = 2**30
WAIT_POLL_S = 0.05  # how often a caller waiting for another's load looks at its own cancel


class DataSource(Protocol):
    """Anything that hands out loaded datasets: a `DatasetCache`, the `Workspace`."""

    def splits(self, data: DataSpec, seed: int, *, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> Splits:
        """The train/val/test splits of `data` with `seed`."""

    def info(self, data: DataSpec, *, cancel: threading.Event | None = None) -> DatasetInfo:
        """What `data` looks like (shape, classes, size), without loading it whole."""


def _read_splits(data: DataSpec, seed: int, *, progress: Progress | None = None,
                 cancel: threading.Event | None = None) -> Splits:
    from workbench.core.data.loading import load_splits

    return load_splits(data, seed, progress=progress, cancel=cancel)


def info_from(source: DataSource | None, data: DataSpec, *,
              cancel: threading.Event | None = None) -> DatasetInfo:
    """The description from `source`, or read straight from disk when there is none."""
    if source is not None:
        return source.info(data, cancel=cancel)
    from workbench.core.data.loading import dataset_info

    return dataset_info(data)


def load_from(source: DataSource | None, data: DataSpec, seed: int, *,
              progress: Progress | None = None,
              cancel: threading.Event | None = None) -> Splits:
    """The splits from `source`, or read straight from disk when there is none."""
    if source is not None:
        return source.splits(data, seed, progress=progress, cancel=cancel)
    return _read_splits(data, seed, progress=progress, cancel=cancel)


def spec_key(data: DataSpec) -> str:
    """The data spec as canonical JSON: equal specs, equal keys."""
    return json.dumps(asdict(data), sort_keys=True, default=str)


# Files looked at per folder the spec names: a data root pointed at a home folder or a whole
# disk is looked at this far (hidden folders skipped), not walked for minutes on every load.
MAX_STAMPED = 50_000


def file_stamps(data: DataSpec) -> tuple[tuple[str, int, int], ...]:
    """(file, size, mtime) of the files under the set's `path` and `root` (the first
    MAX_STAMPED of each, hidden folders skipped), sorted; empty for generated, bundled and
    downloaded sets (their files never change under the same spec)."""
    stamps: list[tuple[str, int, int]] = []
    for where in (data.path, data.root):
        if not where:
            continue
        top = Path(where)
        try:
            if top.is_file():
                stamps.append(_stamp(top))
                continue
            stamps += _folder_stamps(top)
        except OSError:
            stamps.append((str(top), -1, -1))  # unreadable: the load says why
    return tuple(stamps)


def _folder_stamps(top: Path) -> list[tuple[str, int, int]]:
    stamps: list[tuple[str, int, int]] = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if len(stamps) == MAX_STAMPED:
                return stamps  # a larger tree: the files past these go unnoticed
            stamps.append(_stamp(Path(folder) / name))
    return stamps


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def splits_bytes(splits: Splits) -> int:
    return sum(t.nbytes for t in (splits.train_x, splits.train_y, splits.val_x, splits.val_y,
                                  splits.test_x, splits.test_y))


@dataclass
class _Flight(Generic[T]):
    """One computation in progress, which other callers of the same key wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: BaseException | None = None
    cancelled: bool = False
    listeners: list[Progress] = field(default_factory=list)


class _Memo(Generic[T]):
    """A thread-safe LRU of computed values with one computation in flight per key."""

    def __init__(self, max_entries: int, max_bytes: int, size_of: Callable[[T], int]) -> None:
        if max_entries < 1 or max_bytes < 0:
            raise ValueError("a cache keeps at least one entry and a non-negative byte budget")
        self.max_entries, self.max_bytes, self.size_of = max_entries, max_bytes, size_of
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._flights: dict[Hashable, _Flight[T]] = {}
        self.hits = self.computed = 0

    def get(self, key: Hashable, compute: Callable[[Progress], T], *,
            progress: Progress | None, cancel: threading.Event | None) -> T:
        while True:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return self._entries[key][0]
                flight = self._flights.get(key)
                mine = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight()
                if progress is not None:
                    flight.listeners.append(progress)
            if mine:
                return self._compute(key, flight, compute, cancel)
            value = self._wait(flight, progress, cancel)
            if value is not None:
                return value

    def _compute(self, key: Hashable, flight: _Flight[T], compute: Callable[[Progress], T],
                 cancel: threading.Event | None) -> T:
        def report(done: int, total: int) -> None:
            with self._lock:
                listeners = list(flight.listeners)
            for listener in listeners:
                listener(done, total)

        try:
            value = compute(report)
        except BaseException as exc:
            flight.error = exc
            flight.cancelled = cancel is not None and cancel.is_set()
            with self._lock:
                del self._flights[key]
            flight.done.set()
            raise
        with self._lock:
            self.computed += 1
            self._entries[key] = (value, self.size_of(value))
            self._evict()
            del self._flights[key]
        flight.value = value
        flight.done.set()
        return value

    def _wait(self, flight: _Flight[T], progress: Progress | None,
              cancel: threading.Event | None) -> T | None:
        """Another caller's result; None when its computation was cancelled (try again)."""
        try:
            while not flight.done.wait(WAIT_POLL_S):
                if cancel is not None and cancel.is_set():
                    raise DataError("loading cancelled")
        finally:
            with self._lock:
                if progress is not None and progress in flight.listeners:
                    flight.listeners.remove(progress)
        if flight.error is None:
            return flight.value
        if flight.cancelled:
            return None
        if isinstance(flight.error, DataError):
            raise DataError(str(flight.error)) from flight.error
        raise RuntimeError(f"loading the data failed in another thread: "
                           f"{type(flight.error).__name__}: {flight.error}") from flight.error

    def _evict(self) -> None:
        total = sum(size for _, size in self._entries.values())
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries
                                          or total > self.max_bytes):
            _, (_, size) = self._entries.popitem(last=False)
            total -= size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._entries.values())


Loader = Callable[..., "Splits"]


class DatasetCache:
    """Loaded splits and dataset descriptions, shared by everything in one process.

    `splits` may read and download large files and `info` reads whole CSVs and scans image
    folders: call both off the GUI thread. `loader` is `load_splits` unless a test gives one.
    """

    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES,
                 loader: Loader | None = None) -> None:
        self._loader = loader
        self._splits: _Memo[Splits] = _Memo(max_entries, max_bytes, splits_bytes)
        self._infos: _Memo[DatasetInfo] = _Memo(64, 0, lambda _info: 0)

    def splits(self, data: DataSpec, seed: int, *, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> Splits:
        """Train/val/test splits of `data` with `seed`, loaded at most once while cached."""
        key = (spec_key(data), int(seed), file_stamps(data))

        loader = self._loader or _read_splits

        def load(report: Progress) -> Splits:
            return loader(data, seed, progress=report, cancel=cancel)

        return self._splits.get(key, load, progress=progress, cancel=cancel)

    def info(self, data: DataSpec, *, cancel: threading.Event | None = None) -> DatasetInfo:
        """What the data looks like (shape, classes); files are looked at once while cached."""
        from workbench.core.data.loading import dataset_info

        entry = DATASETS.get(data.name)
        if entry is None or (entry.input_shape is not None and entry.num_classes is not None):
            return dataset_info(data)  # the catalogue knows (or says the name is unknown)
        key = (json.dumps([data.name, data.path, data.root, data.label_column, data.target]),
               file_stamps(data))
        return self._infos.get(key, lambda _report: dataset_info(data), progress=None,
                               cancel=cancel)

    def clear(self) -> None:
        self._splits.clear()
        self._infos.clear()

    def stats(self) -> dict[str, Any]:
        """Entries, bytes held, hits and loads (for tests and the about box)."""
        return {"entries": len(self._splits), "bytes": self._splits.bytes(),
                "hits": self._splits.hits, "loads": self._splits.computed,
                "infos": len(self._infos), "info_reads": self._infos.computed}


__all__ = ["DataSource", "DatasetCache", "file_stamps", "info_from", "load_from", "spec_key"]
