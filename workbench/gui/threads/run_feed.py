"""The runs of the store as they are now, without a Refresh button.

`RunFeed` lists the run store on a worker thread (listing reads every run's summary: never on
the GUI thread) whenever the store changes: a file-system watch on the runs folder and on the
folders of runs that are still training tells it at once (a run created, written or ended, by
this app, another tool or another process such as the command line), and a slow poll catches
what no watch sees (a process that died, a folder on a file system without notifications).
Changes are gathered for a moment and listed once; a listing that a newer one overtakes is
dropped. `listed(infos)` fires after the first listing and whenever the list differs from the
last one.

`RunCombo` is the run picker every tool offers: the runs a tool can work on, from a feed (the
Runs list's, in the app) or from a listing of its own (a tool opened alone).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QWidget

from workbench.core.store.runs import RunInfo, RunStore
from workbench.gui.run_rules import LIVE, has_model, run_titles
from workbench.gui.threads.tasks import Tasks

GATHER_MS = 250  # changes within this are listed once
POLL_MS = 5000  # the slow look that catches what no watch reports
# A folder this young without its summary is a run being made, not a damaged one.
BEING_MADE_S = 10.0


def list_runs(runs: RunStore) -> tuple[list[RunInfo], list[Path]]:
    """The store's runs, and apart from them the folders of runs being made (created this
    instant, their summary not written yet): those are watched, not shown as damaged."""
    infos, making = [], []
    now = time.time()
    for info in runs.list():
        if info.error is not None and not (info.path / "summary.json").exists():
            try:
                young = now - info.path.stat().st_mtime < BEING_MADE_S
            except OSError:
                continue  # removed meanwhile
            if young:
                making.append(info.path)
                continue
        infos.append(info)
    return infos, making


def _key(infos: list[RunInfo]) -> list[tuple[str, Any, str | None]]:
    return [(str(i.path), i.summary, i.error) for i in infos]


class RunFeed(QObject):
    """The store's runs, newest first, kept current off the GUI thread; `listed(infos)`."""

    listed = Signal(object)  # list[RunInfo]

    def __init__(self, runs: RunStore, parent: QObject | None = None, *, jobs: Any = None,
                 poll_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self.runs = runs
        self.infos: list[RunInfo] = []
        self.listings = 0  # listings delivered (changed or not): tests wait on it
        self.tasks = Tasks(self, jobs)
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
        """List the store again (off the GUI thread); the newest listing wins."""
        if self._closed:
            return
        runs = self.runs
        self.tasks.start("list", lambda _report, _cancel: list_runs(runs), done=self._on_listed)

    def _changed(self, _path: str) -> None:
        if not self._closed:
            self._gather.start()

    def _on_listed(self, listing: tuple[list[RunInfo], list[Path]]) -> None:
        infos, making = listing
        self.listings += 1
        self._watch(infos, making)
        if _key(infos) == _key(self.infos) and self.listings > 1:
            return  # the first listing is news even when the store is empty
        self.infos = infos
        self.listed.emit(infos)

    def _watch(self, infos: list[RunInfo], making: list[Path]) -> None:
        """The runs folder (or, before it exists, the folder it will be made in) and the
        folders of the runs still training or being made."""
        root = self.runs.root
        wanted = {str(root if root.is_dir() else _existing_parent(root))}
        wanted |= {str(i.path) for i in infos if i.error is None and i.status in LIVE}
        wanted |= {str(path) for path in making}
        watched = set(self.watcher.directories())
        if watched - wanted:
            self.watcher.removePaths(sorted(watched - wanted))
        if wanted - watched:
            self.watcher.addPaths(sorted(wanted - watched))
            self._gather.start()  # what changed there between the listing and the watch

    def shutdown(self) -> None:
        """Stop following the store and wait for a listing in flight."""
        self._closed = True
        self._poll.stop()
        self._gather.stop()
        self.tasks.shutdown()


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.is_dir():
            return parent
    return Path("/")


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
        runs = self.runs
        self.tasks.start("list", lambda _report, _cancel: list_runs(runs)[0],
                         done=self.set_infos)

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
