"""The runs of the store as they are now, without a Refresh button.

`RunFeed` follows the run store off the GUI thread (`core/store/listing.py`: each update looks
at every folder's stamp and reads again only the folders that changed, and probes the lock of
a run only while it says running), whenever the store changes: a file-system watch on the runs
folder and on the folders of runs that are still training tells it at once (a run created,
written or ended, by this app, another tool or another process such as the command line), and
a slow poll catches what no watch sees (a process that died, a folder on a file system without
notifications). Changes are gathered for a moment and looked at once. `listed(infos)` fires
after the first look (an empty store too) and when the runs differ from the last ones;
`failed(message)` when the store cannot be read. The GUI thread does no file I/O for it.

`RunCombo` is the run picker every tool offers: the runs a tool can work on, from a feed (the
Runs list's, in the app) or from a listing of its own (a tool opened alone).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QWidget

from workbench.core.store.listing import Listing, RunListing, same_runs
from workbench.core.store.runs import RunError, RunInfo, RunStore
from workbench.gui.run_rules import has_model, run_titles
from workbench.gui.threads.tasks import Tasks

GATHER_MS = 250  # changes within this are looked at once
POLL_MS = 5000  # the slow look that catches what no watch reports


class RunFeed(QObject):
    """The store's runs, newest first, kept current off the GUI thread; `listed(infos)`."""

    listed = Signal(object)  # list[RunInfo]
    failed = Signal(str)  # the store cannot be read

    def __init__(self, runs: RunStore, parent: QObject | None = None, *, jobs: Any = None,
                 poll_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self.runs = runs
        self.infos: list[RunInfo] = []
        self.listings = 0  # updates delivered (changed or not): tests wait on it
        self.reread = 0  # run folders read again by those updates, in all
        self.tasks = Tasks(self, jobs)
        self._listing = RunListing(runs)  # touched only by the "list" task, one at a time
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self._changed)
        self._gather = QTimer(self, singleShot=True, interval=GATHER_MS)
        self._gather.timeout.connect(self.refresh)
        self._poll = QTimer(self, interval=poll_ms)
        self._poll.timeout.connect(self.refresh)
        self._closed = False

    def start(self) -> None:
        """List now, then follow the store."""
        self._poll.start()
        self.refresh()

    def refresh(self) -> None:
        """Look at the store again (off the GUI thread); the newest look wins."""
        if self._closed:
            return
        listing = self._listing
        self.tasks.start("list", lambda _report, _cancel: listing.update(),
                         done=self._on_listed, failed=self.failed.emit,
                         expected=(RunError, OSError))

    def _changed(self, _path: str) -> None:
        if not self._closed:
            self._gather.start()

    def _on_listed(self, listing: Listing) -> None:
        self.listings += 1
        self.reread += listing.reread
        self._watch(listing.watch)
        if same_runs(listing.infos, self.infos) and self.listings > 1:
            return  # the first look is news even when the store is empty
        self.infos = list(listing.infos)
        self.listed.emit(self.infos)

    def _watch(self, folders: tuple[Path, ...]) -> None:
        """The runs folder (or, before it exists, the folder it will be made in) and the
        folders of the runs still training or being made."""
        wanted = {str(path) for path in folders}
        watched = set(self.watcher.directories())
        if watched - wanted:
            self.watcher.removePaths(sorted(watched - wanted))
        if wanted - watched:
            self.watcher.addPaths(sorted(wanted - watched))
            self._gather.start()  # what changed there between the look and the watch

    def shutdown(self) -> None:
        """Stop following the store and wait for a look in flight."""
        self._closed = True
        self._poll.stop()
        self._gather.stop()
        self.tasks.shutdown()


class RunCombo(QComboBox):
    """Pick a run a tool can work on (by default: one with a trained model).

    `follow(feed)` keeps it in step with a `RunFeed`; without one, `refresh()` lists the store
    on a worker. `runChosen(run_dir)` when the person picks another run (not when the code
    sets one with `set_run`); `offered()` after each listing.
    """

    runChosen = Signal(str)
    offered = Signal()  # after a listing filled it

    def __init__(self, runs: RunStore, parent: QWidget | None = None, *, jobs: Any = None,
                 accept: Callable[[RunInfo], str | None] = has_model) -> None:
        super().__init__(parent)
        self.runs = runs
        self.accept = accept
        self.tasks = Tasks(self, jobs)
        self._listing = RunListing(runs)  # a tool opened alone: its own look at the store
        self.setMinimumContentsLength(18)  # grows with its panel; narrow, it elides
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setToolTip("The run this tool works on: every run that finished (or was stopped) "
                        "with a trained model, newest first")
        self.setPlaceholderText("No finished run yet: train one first")
        self.activated.connect(self._activated)

    def follow(self, feed: RunFeed) -> None:
        feed.listed.connect(self.set_infos)
        self.set_infos(feed.infos)

    def refresh(self) -> None:
        listing = self._listing
        self.tasks.start("list", lambda _report, _cancel: list(listing.update().infos),
                         done=self.set_infos, failed=self._list_failed,
                         expected=(RunError, OSError))

    def _list_failed(self, message: str) -> None:
        self.setPlaceholderText(f"Cannot list the runs: {message}")
        self.set_infos([])

    def set_infos(self, infos: list[RunInfo]) -> None:
        """Offer these runs (those the tool can take), keeping the current one."""
        current = self.run_dir()
        self.blockSignals(True)
        self.clear()
        offered = [info for info in infos if self.accept(info) is None]
        for info, title in zip(offered, run_titles(offered), strict=True):
            self.addItem(title, str(info.path))
            self.setItemData(self.count() - 1, str(info.path), Qt.ItemDataRole.ToolTipRole)
        if current is not None:
            self._select(current)
        self.blockSignals(False)
        self.offered.emit()

    def run_dir(self) -> str | None:
        data = self.currentData()
        return str(data) if data else None

    def set_run(self, run_dir: str) -> None:
        """Show `run_dir` as the current run (listed under its folder name until a listing
        names it)."""
        self.blockSignals(True)
        self._select(str(run_dir))
        self.blockSignals(False)

    def _select(self, run_dir: str) -> None:
        index = self.findData(run_dir)
        if index < 0:
            self.insertItem(0, Path(run_dir).name, run_dir)
            index = 0
        self.setCurrentIndex(index)

    def _activated(self, index: int) -> None:
        run_dir = self.itemData(index)
        if run_dir:
            self.runChosen.emit(str(run_dir))

    def shutdown(self) -> None:
        self.tasks.shutdown()


__all__ = ["RunCombo", "RunFeed"]
