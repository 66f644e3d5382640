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
