"""The Runs list follows the store incrementally: only the run folders whose files changed are
read again, a lock is probed only for a run that says running, and a listing's probe never
makes a delete fail "in use". The GUI's feed does it off the GUI thread."""

from __future__ import annotations

import os
import threading
import time

import pytest
from filelock import FileLock

from workbench import spec as specmod
from workbench.core.store import listing as listing_mod
from workbench.core.store import runs as runs_mod
from workbench.core.store.listing import BEING_MADE_S, RunListing, same_runs
from workbench.core.store.locks import LOCK_NAME, RunLock
from workbench.core.store.runs import RunStatus, RunStore

WAIT_MS = 60_000


def _spec(name: str = "listed") -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": name, "data": {"name": "moons", "samples": 100},
        "model": {"layers": [{"type": "Linear", "out": 2}]},
        "train": {"epochs": 1}})


def _store(tmp_path, n: int = 5) -> RunStore:
    store = RunStore(tmp_path / "runs")
    for i in range(n):
        store.create(_spec(f"run{i}")).update_summary(status=RunStatus.FINISHED,
                                                      test_accuracy=0.5)
    return store


def _info(listing, path):
    return next(i for i in listing.infos if i.path == path)


class Counting:
    """Counts the summaries read and the locks probed, wherever the store's code does."""

    def __init__(self, monkeypatch) -> None:
        self.summaries = self.probes = 0
        summary, probe = runs_mod.Run.summary, runs_mod.is_locked

        def counted_summary(run):
            self.summaries += 1
            return summary(run)

        def counted_probe(path):
            self.probes += 1
            return probe(path)

        monkeypatch.setattr(runs_mod.Run, "summary", counted_summary)
        monkeypatch.setattr(runs_mod, "is_locked", counted_probe)
        monkeypatch.setattr(listing_mod, "is_locked", counted_probe)

    def reset(self) -> None:
        self.summaries = self.probes = 0


def test_only_the_folders_that_changed_are_read_again(tmp_path, monkeypatch):
    store = _store(tmp_path)
    count = Counting(monkeypatch)
    listing = RunListing(store)
    first = listing.update()
    assert first.reread == 5 and len(first.infos) == 5
    assert [i.path for i in first.infos] == list(store.folders())  # newest first
    count.reset()
    again = listing.update()
    assert again.reread == 0 and count.summaries == 0 and count.probes == 0
    assert all(a is b for a, b in zip(again.infos, first.infos, strict=True))
    assert same_runs(again.infos, first.infos)

    changed = first.infos[2].path
    runs_mod.Run(changed).update_summary(test_accuracy=0.9)  # an atomic replace
    count.reset()
    after = listing.update()
    assert after.reread == 1 and count.summaries == 1 and count.probes == 0
    assert _info(after, changed).summary["test_accuracy"] == 0.9
    assert not same_runs(after.infos, first.infos)

    store.delete(first.infos[0].path)
    new = store.create(_spec("newest"))
    after = listing.update()
    paths = {i.path for i in after.infos}
    assert after.reread == 1 and new.path in paths and first.infos[0].path not in paths
    assert [(i.path, i.summary) for i in after.infos] == \
        [(i.path, i.summary) for i in store.list()]  # what a whole listing says


def test_a_running_run_is_probed_not_read_and_shows_interrupted_once_its_lock_is_free(
        tmp_path, monkeypatch):
    store = _store(tmp_path, 2)
    run = store.create(_spec("live"))
    run.update_summary(status=RunStatus.RUNNING)
    lock = RunLock(run.path).acquire()
    count = Counting(monkeypatch)
    listing = RunListing(store)
    try:
        first = listing.update()
        assert _info(first, run.path).status == RunStatus.RUNNING
        assert run.path in first.watch  # a live run is watched
        count.reset()
        assert listing.update().reread == 0
        assert count.summaries == 0 and count.probes == 1  # the running one, only
    finally:
        lock.release()  # its process "died": the summary still says running
    gone = listing.update()
    assert _info(gone, run.path).status == RunStatus.INTERRUPTED and gone.reread == 1
    count.reset()
    assert listing.update().reread == 0 and count.probes == 0


def test_a_folder_being_made_is_kept_apart_until_it_is_old(tmp_path):
    store = _store(tmp_path, 1)
    making = store.root / "29990101-000000-making-abc123"
    making.mkdir()
    listing = RunListing(store)
    first = listing.update()
    assert making in first.making and making in first.watch
    assert making not in {i.path for i in first.infos}
    old = time.time() - 2 * BEING_MADE_S
    os.utime(making, (old, old))
    later = listing.update()
    assert not later.making
    assert next(i for i in later.infos if i.path == making).error  # damaged, then


def test_hidden_reserved_and_linked_folders_are_not_runs(tmp_path):
    store = _store(tmp_path, 1)
    (store.root / ".deleted-x").mkdir()
    (store.root / runs_mod.COMPARISONS).mkdir()
    (store.root / "a-link").symlink_to(tmp_path)
    (store.root / "a-file").write_text("not a run")
    infos = RunListing(store).update().infos
    assert len(infos) == 1 and infos[0].error is None
    assert RunListing(RunStore(tmp_path / "nowhere")).update().watch == (tmp_path,)


def test_a_probe_holding_the_lock_does_not_make_a_delete_fail(tmp_path, monkeypatch):
    """A listing's probe takes the run's lock for an instant; a delete that came then was
    refused "in use" (it tried once)."""
    store = _store(tmp_path, 1)
    path = store.list()[0].path
    probe = FileLock(str(path / LOCK_NAME), thread_local=False)
    probe.acquire()
    trying = threading.Event()
    acquire = RunLock.acquire

    def noted(self, *args, **kwargs):
        trying.set()
        return acquire(self, *args, **kwargs)

    monkeypatch.setattr(RunLock, "acquire", noted)
    failures: list[BaseException] = []

    def delete() -> None:
        try:
            store.delete(path)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failures.append(exc)

    deleter = threading.Thread(target=delete)
    deleter.start()
    assert trying.wait(WAIT_MS / 1000)
    probe.release()
    deleter.join(WAIT_MS / 1000)
    assert not failures and not path.exists()


def test_the_feed_reads_no_unchanged_run_again(qtbot, tmp_path, monkeypatch):
    pytest.importorskip("PySide6")
    from workbench.gui.threads.run_feed import RunFeed

    store = _store(tmp_path)
    count = Counting(monkeypatch)
    feed = RunFeed(store)
    try:
        with qtbot.waitSignal(feed.listed, timeout=WAIT_MS):
            feed.start()
        assert len(feed.infos) == 5
        count.reset()
        for _ in range(3):  # the poll, or a change nobody made
            seen = feed.listings
            feed.refresh()
            qtbot.waitUntil(lambda: feed.listings > seen, timeout=WAIT_MS)  # noqa: B023
        assert count.summaries == 0 and count.probes == 0
        runs_mod.Run(feed.infos[1].path).update_summary(test_accuracy=0.75)
        count.reset()  # the write read the summary too
        with qtbot.waitSignal(feed.listed, timeout=WAIT_MS):  # the watch, or the poll
            pass
        assert count.summaries == 1 and feed.infos[1].summary["test_accuracy"] == 0.75
    finally:
        feed.shutdown()


def test_runs_made_within_one_second_are_listed_newest_first(tmp_path, monkeypatch):
    """A comparison's variants and a search's trials are made within a second: their order
    came from the random part of their folders' names, so 'newest first' was false."""
    monkeypatch.setattr(runs_mod.time, "strftime", lambda _fmt, *_a: "20261207-120000")
    store = RunStore(tmp_path / "runs")
    made = [store.create(_spec(f"same-second-{i}")).path for i in range(12)]
    newest_first = list(reversed(made))
    assert [info.path for info in store.list()] == newest_first
    assert [info.path for info in RunListing(store).update().infos] == newest_first


def test_the_runs_list_rewrites_only_the_rows_that_changed(qtbot, tmp_path):
    """A run made, one whose summary changed and one deleted touch only their own rows: the
    other rows are the same items, the selection and its place stay. The list was rebuilt
    whole each time (45-75 ms of the GUI thread for 200 runs, beside a training run)."""
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from workbench.gui.shell.run_history import RunHistory

    store = _store(tmp_path)
    history = RunHistory(store)
    qtbot.addWidget(history)
    try:
        qtbot.waitUntil(lambda: history.listed_once and len(history.infos) == 5,
                        timeout=WAIT_MS)
        tree = history.tree

        def rows() -> dict[str, object]:
            return {tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole): tree.topLevelItem(i)
                    for i in range(tree.topLevelItemCount())}

        before = rows()
        kept = str(history.infos[3].path)
        history.select(kept)
        runs_mod.Run(history.infos[1].path).update_summary(status=RunStatus.STOPPED)
        changed = str(history.infos[1].path)
        gone = history.infos[4].path
        store.delete(gone)
        made = str(store.create(_spec("made")).path)
        qtbot.waitUntil(lambda: made in rows() and str(gone) not in rows()
                        and rows()[changed].text(1) == RunStatus.STOPPED, timeout=WAIT_MS)
        after = rows()
        assert list(after)[0] == made  # newest first
        assert all(after[path] is item for path, item in before.items()
                   if path in after)  # the same rows, the changed one rewritten in place
        assert history.selected_path() == kept
    finally:
        history.shutdown()
