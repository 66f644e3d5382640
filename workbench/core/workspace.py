"""The workspace: the one Qt-free object the app and the commands hold.

It owns what every part of the program shares (as Dangerzone's `DangerzoneCore` does): the
run store, the dataset cache (a dataset is loaded once per data spec, seed and file stamps,
and shared by the data panel, the trainer, prune, export, the comparison and the landscape),
the registry of background jobs, so that closing the app can stop and wait for every one, and
(`process`) the owner of the settings PyTorch keeps only for the whole process.
Panels and commands take a workspace instead of building their own core objects; the core
functions take it as their `source` of data (`core.data.cache.DataSource`).

Importing it loads no torch: the window holds one before torch has loaded.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from workbench.core.data.cache import DatasetCache, Progress
from workbench.core.data.errors import DATA_ROOT_NAME
from workbench.core.store.runs import RunStore
from workbench.core.training.process import PROCESS, ProcessSettings
from workbench.spec import DataSpec

if TYPE_CHECKING:
    from workbench.core.data.splits import DatasetInfo, Splits


class Job(Protocol):
    """A background job as the registry sees it (the GUI's worker is one)."""

    def stop(self) -> None:
        """Ask the job to end; returns at once."""

    def is_running(self) -> bool:
        """Whether the job's thread is still running."""

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """Ask the job to end and wait for it; True when it has."""


class JobRegistry:
    """The background jobs running now, by name; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, tuple[str, Job]] = {}

    def add(self, name: str, job: Job) -> None:
        with self._lock:
            self._jobs[id(job)] = (name, job)

    def discard(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(id(job), None)

    def names(self) -> list[str]:
        """The names of the registered jobs, oldest first."""
        with self._lock:
            return [name for name, _ in self._jobs.values()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def stop_all(self, timeout_ms: int | None = None) -> bool:
        """Ask every job to stop and wait for each; True when all have ended in time."""
        with self._lock:
            jobs = [job for _, job in self._jobs.values()]
        for job in jobs:
            job.stop()
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        ended = True
        for job in jobs:
            left = None if deadline is None else max(0, int(1000 * (deadline - time.monotonic())))
            if job.stop_and_wait(left):
                self.discard(job)
            else:
                ended = False
        return ended


class Workspace:
    """The run store, the dataset cache and the background jobs of one app or command."""

    def __init__(self, runs: RunStore | str | Path | None = None, *,
                 cache: DatasetCache | None = None,
                 data_root_name: str = DATA_ROOT_NAME) -> None:
        self.runs = runs if isinstance(runs, RunStore) else RunStore(runs)
        self.data = cache if cache is not None else DatasetCache()
        self.jobs = JobRegistry()
        self.data_root_name = data_root_name  # how the person sets data.root here

    def splits(self, data: DataSpec, seed: int, *, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> Splits:
        """The dataset's splits, from the cache (loaded on the caller's thread when missing).
        A dataset that cannot be downloaded names the way to give its files as this
        workspace's person sets it (the app's Folder field, the CLI's --data-root)."""
        from workbench.core.data.errors import OfflineError

        try:
            return self.data.splits(data, seed, progress=progress, cancel=cancel)
        except OfflineError as exc:
            raise exc.worded(self.data_root_name) from None

    def info(self, data: DataSpec, *, cancel: threading.Event | None = None) -> DatasetInfo:
        """The dataset's description, from the cache; may read the file: not on the GUI
        thread."""
        return self.data.info(data, cancel=cancel)

    @property
    def process(self) -> ProcessSettings:
        """The one owner of what PyTorch keeps for the whole process (the CPU thread count,
        the CUDA switches) while jobs overlap; its `note` says what the running jobs share,
        for the app to show (None while at most one runs)."""
        return PROCESS

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop every background job and wait for it; True when all have ended."""
        return self.jobs.stop_all(timeout_ms)


__all__ = ["Job", "JobRegistry", "Workspace"]
