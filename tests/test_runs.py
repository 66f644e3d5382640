import pytest

from workbench import spec as specmod
from workbench.core.store.runs import Run, RunError, RunStore


def test_create_list_and_damage(tmp_path):
    spec = specmod.from_dict({"data": {"name": "moons"},
                              "model": {"layers": [{"type": "Linear", "out": 2}]}})
    store = RunStore(tmp_path)
    run = store.create(spec)
    run.append_metrics([{"kind": "epoch", "epoch": 1, "global_step": 5}])
    assert run.metrics("epoch")[0]["epoch"] == 1
    assert run.spec() == spec
    other = store.create(spec)
    (other.path / "summary.json").write_text("not json")
    infos = store.list()
    assert {i.path for i in infos} == {run.path, other.path}
    damaged = [i for i in infos if i.error]
    assert len(damaged) == 1 and "summary.json" in damaged[0].error


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    run = Run(tmp_path)
    run.save_checkpoint({"x": 1})
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError, match="damaged or truncated checkpoint"):
        run.load_checkpoint()
    with pytest.raises(RunError, match="no such file"):
        run.load_model_state()


def test_metrics_survive_a_torn_last_line(tmp_path):
    run = Run(tmp_path)
    run.append_metrics([{"kind": "step", "global_step": 1}])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "st')
    assert len(run.metrics()) == 1


def test_one_reader_gives_the_same_series_live_and_stored(tmp_path):
    """The series a run's events make as they arrive are the ones read back from its folder
    (the compare panel, the run history and the curves view all read through it)."""
    import math

    from workbench.core.store.metrics import MetricSeries, read_series
    from workbench.core.training.events import EpochEnded, Progress, RunFinished
    from workbench.core.training.loop import Trainer

    spec = specmod.from_dict({
        "data": {"name": "moons", "samples": 200},
        "model": {"layers": [{"type": "Linear", "out": 8}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "train": {"epochs": 2, "batch_size": 16}})
    live = MetricSeries()
    end = None
    for event in Trainer(spec, runs=RunStore(tmp_path)).events():
        if isinstance(event, Progress):
            live.add_step(vars(event))
        elif isinstance(event, EpochEnded):
            live.add_epoch(vars(event))
        elif isinstance(event, RunFinished):
            end = event
    stored = read_series(Run(end.run_dir))

    def same(a: list[float], b: list[float]) -> bool:
        return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y))
                                        for x, y in zip(a, b, strict=True))

    assert len(live.epochs["epoch"]) == 2 and live.steps["epoch"][-1] == 2.0
    assert all(same(live.steps[k], stored.steps[k]) for k in live.steps)
    assert all(same(live.epochs[k], stored.epochs[k]) for k in live.epochs)
    xs, ys = stored.points("epochs", "epoch", "val_accuracy")
    assert xs == [1.0, 2.0] and all(0 <= y <= 1 for y in ys)


def test_slug_is_shared_by_run_folders_and_comparisons(tmp_path):
    from workbench.core.store.runs import slug
    from workbench.core.tools.compare import Comparison, save_comparison

    assert slug("adam lr=0.1/x", 40, "run") == "adam-lr-0-1-x" and slug("", 40, "run") == "run"
    path = save_comparison(Comparison("sgd vs adam"), RunStore(tmp_path))
    assert path.name == f"{slug('sgd vs adam', 60, 'comparison')}.json"


@pytest.mark.parametrize("name", ["../../escape", "a/b\\c:d", "..", "名前" * 100])
def test_a_run_folder_stays_in_the_store_whatever_the_experiment_is_called(tmp_path, name):
    spec = specmod.ExperimentSpec(name=name)
    specmod.validate(spec)
    store = RunStore(tmp_path / "runs")
    run = store.create(spec)
    assert run.path.parent == store.root and len(run.path.name) < 80
    assert run.summary()["name"] == name  # the list shows the name as typed


def test_delete_removes_a_run_and_refuses_one_in_use_or_outside(tmp_path):
    from workbench.core.store.errors import RunInUse

    spec = specmod.from_dict({"data": {"name": "moons"},
                              "model": {"layers": [{"type": "Linear", "out": 2}]}})
    store = RunStore(tmp_path / "runs")
    kept, gone, busy = store.create(spec), store.create(spec), store.create(spec)
    (gone.path / "checkpoints").mkdir()
    (gone.path / "checkpoints" / "epoch-1.pt").write_bytes(b"x")
    store.delete(gone.path)
    assert not gone.path.exists()
    assert {i.path for i in store.list()} == {kept.path, busy.path}
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []

    lock = busy.lock()  # a trainer has it
    try:
        with pytest.raises(RunInUse, match="in use"):
            store.delete(busy.path)
    finally:
        lock.release()
    assert (busy.path / "summary.json").is_file()

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "summary.json").write_text("{}")
    for wrong in (outside, store.root, tmp_path / "runs" / "missing", kept.path / ".."):
        with pytest.raises(RunError):
            store.delete(wrong)
    not_a_run = store.root / "notes"
    not_a_run.mkdir()
    with pytest.raises(RunError, match="not a run folder"):
        store.delete(not_a_run)
    assert outside.exists() and kept.path.exists() and not_a_run.exists()
