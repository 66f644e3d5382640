"""The dataset cache and the workspace: load once, share, stay bounded, never keep a cancelled
load, and notice a data file that changed on disk."""

from __future__ import annotations

import os
import threading

import pytest

from workbench.core.data import DataError, load_splits
from workbench.core.data.cache import DatasetCache, file_stamps
from workbench.core.workspace import JobRegistry, Workspace
from workbench.spec import DataSpec


class CountingLoader:
    """load_splits, counting the loads; `gate` (when given) holds every load until set."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls = 0
        self.gate = gate
        self.started = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, data, seed, *, progress=None, cancel=None):
        with self.lock:
            self.calls += 1
        self.started.set()
        if progress is not None:
            progress(1, 2)
        if self.gate is not None:
            while not self.gate.wait(0.01):
                if cancel is not None and cancel.is_set():
                    raise DataError("loading cancelled")
        if progress is not None:
            progress(2, 2)
        return load_splits(data, seed, progress=progress, cancel=cancel)


def moons(samples: int = 200) -> DataSpec:
    return DataSpec(name="moons", samples=samples, noise=0.1)


def write_csv(path, rows: int) -> None:
    lines = ["a,b,label"] + [f"{i},{i % 7},{i % 2}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_same_data_and_seed_loads_once_and_is_shared():
    loader = CountingLoader()
    cache = DatasetCache(loader=loader)
    first = cache.splits(moons(), 0)
    again = cache.splits(moons(), 0)
    assert again is first and loader.calls == 1
    other_seed = cache.splits(moons(), 1)
    other_spec = cache.splits(moons(300), 0)
    assert loader.calls == 3 and other_seed is not first and len(other_spec.train_x) == 210
    assert cache.stats()["hits"] == 1 and cache.stats()["loads"] == 3


def test_a_changed_file_is_loaded_afresh(tmp_path):
    csv = tmp_path / "t.csv"
    write_csv(csv, 40)
    data = DataSpec(name="csv", path=str(csv))
    cache = DatasetCache()
    before = cache.splits(data, 0)
    assert cache.splits(data, 0) is before
    assert cache.info(data).input_shape == (2,)
    write_csv(csv, 80)
    os.utime(csv, ns=(1, 1))  # a different mtime even on a coarse clock
    after = cache.splits(data, 0)
    assert after is not before
    assert len(after.train_x) + len(after.val_x) + len(after.test_x) == 80
    assert cache.stats()["info_reads"] == 1
    cache.info(data)
    assert cache.stats()["info_reads"] == 2


def test_file_stamps_cover_every_file_under_a_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"1")
    (tmp_path / "b.png").write_bytes(b"22")
    stamps = file_stamps(DataSpec(name="image_folder", path=str(tmp_path)))
    assert [(os.path.basename(p), size) for p, size, _ in stamps] == [("b.png", 2), ("x.png", 1)]
    assert file_stamps(moons()) == ()


def test_two_threads_asking_at_once_load_once_and_both_see_progress():
    gate = threading.Event()
    loader = CountingLoader(gate)
    cache = DatasetCache(loader=loader)
    got: list = [None, None]
    seen: list[list] = [[], []]

    def ask(i: int) -> None:
        got[i] = cache.splits(moons(), 0, progress=lambda d, t, i=i: seen[i].append((d, t)))

    first = threading.Thread(target=ask, args=(0,))
    first.start()
    assert loader.started.wait(30)
    second = threading.Thread(target=ask, args=(1,))
    second.start()
    while not any(len(f.listeners) == 2 for f in cache._splits._flights.values()):
        threading.Event().wait(0.01)  # the second is waiting on the first's load
    gate.set()
    first.join(30)
    second.join(30)
    assert got[0] is got[1] and got[0] is not None and loader.calls == 1
    assert seen[0] and seen[1]  # the waiter saw the loader's progress


def test_a_cancelled_load_is_not_kept_and_a_waiter_loads_it_itself():
    gate = threading.Event()
    loader = CountingLoader(gate)
    cache = DatasetCache(loader=loader)
    cancel = threading.Event()
    errors: list[Exception] = []
    waited: list = []

    def cancelled_caller() -> None:
        try:
            cache.splits(moons(), 0, cancel=cancel)
        except DataError as exc:
            errors.append(exc)

    first = threading.Thread(target=cancelled_caller)
    first.start()
    assert loader.started.wait(30)
    second = threading.Thread(target=lambda: waited.append(
        cache.splits(moons(), 0, progress=lambda _d, _t: None)))
    second.start()
    while not any(len(f.listeners) == 1 for f in cache._splits._flights.values()):
        threading.Event().wait(0.01)  # the second is waiting on the first's load
    cancel.set()
    first.join(30)
    gate.set()
    second.join(30)
    assert errors and "cancelled" in str(errors[0])
    assert waited and waited[0] is not None and loader.calls == 2
    assert cache.splits(moons(), 0) is waited[0] and loader.calls == 2


def test_a_waiter_can_cancel_its_own_wait():
    gate = threading.Event()
    loader = CountingLoader(gate)
    cache = DatasetCache(loader=loader)
    holder = threading.Thread(target=lambda: cache.splits(moons(), 0))
    holder.start()
    assert loader.started.wait(30)
    mine = threading.Event()
    mine.set()
    with pytest.raises(DataError, match="cancelled"):
        cache.splits(moons(), 0, cancel=mine)
    gate.set()
    holder.join(30)
    assert loader.calls == 1


def test_a_failed_load_is_not_kept(tmp_path):
    data = DataSpec(name="csv", path=str(tmp_path / "missing.csv"))
    cache = DatasetCache()
    with pytest.raises(DataError, match="missing.csv"):
        cache.splits(data, 0)
    assert cache.stats()["entries"] == 0
    write_csv(tmp_path / "missing.csv", 30)
    assert len(cache.splits(data, 0).train_x) > 0


def test_bounded_by_entries_and_by_bytes():
    loader = CountingLoader()
    cache = DatasetCache(max_entries=2, loader=loader)
    a = cache.splits(moons(100), 0)
    cache.splits(moons(120), 0)
    cache.splits(moons(100), 0)  # a is now the most recently used
    cache.splits(moons(140), 0)  # evicts 120
    assert cache.stats()["entries"] == 2 and loader.calls == 3
    assert cache.splits(moons(100), 0) is a and loader.calls == 3
    cache.splits(moons(120), 0)
    assert loader.calls == 4

    small = DatasetCache(max_bytes=1, loader=loader)
    small.splits(moons(100), 0)
    kept = small.splits(moons(120), 0)
    assert small.stats()["entries"] == 1  # over the budget: only the newest stays
    assert small.splits(moons(120), 0) is kept


def test_catalogue_info_needs_no_file_and_is_not_cached():
    cache = DatasetCache()
    info = cache.info(DataSpec(name="mnist"))
    assert info.input_shape == (1, 28, 28) and info.num_classes == 10
    assert cache.stats()["infos"] == 0
    with pytest.raises(DataError, match="unknown dataset"):
        cache.info(DataSpec(name="nope"))


class FakeJob:
    def __init__(self) -> None:
        self.stopped = False
        self.running = True

    def stop(self) -> None:
        self.stopped = True

    def is_running(self) -> bool:
        return self.running

    def stop_and_wait(self, timeout_ms=None) -> bool:
        self.stopped = True
        self.running = False
        return True


def test_workspace_holds_the_store_the_cache_and_the_jobs(tmp_path):
    ws = Workspace(tmp_path / "runs")
    assert ws.runs.root == tmp_path / "runs"
    assert ws.splits(moons(), 0) is ws.splits(moons(), 0)
    jobs: JobRegistry = ws.jobs
    job = FakeJob()
    jobs.add("loader", job)
    assert jobs.names() == ["loader"] and len(jobs) == 1
    assert ws.shutdown() and job.stopped and not job.running and len(jobs) == 0


def test_file_stamps_look_at_a_bounded_number_of_files(tmp_path, monkeypatch):
    """A data root pointed at a huge tree (a home folder) is looked at up to a bound on every
    load, not walked whole; hidden folders (.git, caches) are skipped."""
    from workbench.core.data import cache

    monkeypatch.setattr(cache, "MAX_STAMPED", 5)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "objects").write_bytes(b"x")
    for i in range(9):
        (tmp_path / f"f{i}.bin").write_bytes(b"x" * i)
    stamps = file_stamps(DataSpec(name="mnist", root=str(tmp_path)))
    assert [os.path.basename(s[0]) for s in stamps] == [f"f{i}.bin" for i in range(5)]
