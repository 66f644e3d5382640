"""The memory estimate: exact on known shapes, and a refusal with numbers where it cannot fit."""

from __future__ import annotations

import json

import pytest

from workbench import spec as specmod
from workbench.cli import main
from workbench.core import memory
from workbench.core.data import dataset_info
from workbench.core.memory import (
    DeviceMemory,
    DoesNotFit,
    check_fits,
    cpu_memory,
    estimate_memory,
    human_bytes,
    train_samples,
)
from workbench.core.model import check
from workbench.core.store.runs import RunStore
from workbench.core.training.events import RunFailed
from workbench.core.training.loop import Trainer

# Ten layers of 65,536 units: 39 billion parameters, over 600 GB with Adam: no machine has it.
HUGE = [{"type": "Flatten"}] + [{"type": "Linear", "out": 65_536}] * 10 + [
    {"type": "Linear", "out": 10}]


def make(data, layers, **sections):
    return specmod.from_dict({"data": data, "model": {"layers": layers}, **sections})


def estimate(spec, cpu=True):
    info = dataset_info(spec.data)
    return estimate_memory(spec, check(spec.model.layers, info.input_shape, info.num_classes),
                           num_samples=info.num_samples, test_samples=info.test_samples,
                           num_classes=info.num_classes, cpu=cpu)


def test_an_mlp_on_moons_by_hand():
    spec = make({"name": "moons", "samples": 1000, "val_fraction": 0.1, "test_fraction": 0.2},
                [{"type": "Linear", "out": 8}, {"type": "ReLU"}, {"type": "Linear", "out": 2}],
                optim={"name": "adam"}, train={"batch_size": 32})
    e = estimate(spec)
    params = 2 * 8 + 8 + 8 * 2 + 2  # 42
    assert (e.parameters, e.gradients, e.optimizer) == (4 * params, 4 * params, 8 * params)
    # per sample: input 2 floats x3, outputs 8 + 8 + 2, backward 2 x widest (8)
    assert e.activations == 32 * 4 * (3 * 2 + 18 + 2 * 8)
    assert e.data == 1000 * (2 * 4 + 8)  # float features and int64 labels
    assert e.evaluation == 1000 * 4 * (3 * 2 + 2 * 8)
    assert e.checkpoint == 2 * (4 * params + 8 * params)  # the buffer and its bytes
    assert e.total == sum((e.parameters, e.gradients, e.optimizer, e.activations, e.data,
                           e.evaluation, e.checkpoint))
    on_gpu = estimate(spec, cpu=False)
    assert on_gpu.checkpoint == 0 and on_gpu.total == e.total - e.checkpoint


def test_images_stay_uint8_and_pooling_keeps_indices():
    spec = make({"name": "mnist_small"},
                [{"type": "Conv2d", "out": 4, "kernel": 3, "padding": 1},
                 {"type": "MaxPool2d", "kernel": 2}, {"type": "Flatten"},
                 {"type": "Linear", "out": 10}], optim={"name": "sgd"},
                train={"batch_size": 10})
    e = estimate(spec)
    params = 1 * 4 * 9 + 4 + 4 * 14 * 14 * 10 + 10
    assert (e.parameters, e.optimizer) == (4 * params, 0)  # plain SGD keeps no state
    assert e.data == 6000 * (28 * 28 + 8)  # one byte a pixel
    conv, pool = 4 * 28 * 28, 4 * 14 * 14
    per_sample = 4 * (3 * 784 + conv + pool + pool + 10 + 2 * conv) + 8 * pool
    assert e.activations == 10 * per_sample


def test_full_batch_gd_holds_every_training_sample_at_once():
    layers = [{"type": "Flatten"}, {"type": "Linear", "out": 10}]
    sgd = estimate(make({"name": "mnist"}, layers, optim={"name": "sgd"}))
    gd = estimate(make({"name": "mnist"}, layers, optim={"name": "gd"}))
    n_train = train_samples(specmod.DataSpec(name="mnist"), 70_000, 10_000)
    assert n_train == 54_000  # 60,000 minus the 10% validation
    assert gd.activations == sgd.activations * n_train // 32


@pytest.mark.parametrize(("optimizer", "copies"), [("sgd", 0), ("momentum", 1), ("adam", 2),
                                                   ("adamw", 2), ("rmsprop", 1),
                                                   ("adagrad", 1)])
def test_optimizer_state_by_optimizer(optimizer, copies):
    e = estimate(make({"name": "moons"}, [{"type": "Linear", "out": 2}],
                      optim={"name": optimizer}))
    assert e.optimizer == copies * e.parameters


def test_refusal_names_both_numbers():
    e = estimate(make({"name": "mnist"}, HUGE))
    with pytest.raises(DoesNotFit) as err:
        check_fits(e, DeviceMemory("the CPU", 12 * 2**30))
    text = str(err.value)
    assert text.startswith(f"the experiment needs about {human_bytes(e.total)} of memory")
    assert "; the CPU has 12 GB available" in text and "\n" not in text
    check_fits(e, DeviceMemory("the CPU", None))  # unknown: nothing refused


def test_cpu_memory_is_read_without_torch():
    available = cpu_memory().available
    assert available is not None and available > 2**26


def test_the_cli_refuses_what_cannot_fit_before_anything_runs(tmp_path, capsys):
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({"data": {"name": "mnist"}, "model": {"layers": HUGE}}))
    assert main(["train", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the experiment needs about" in err[0]
    assert "the CPU has" in err[0] and "available" in err[0]
    assert not (tmp_path / "runs").exists()  # no run folder, no download
    assert not list((tmp_path / "workbench-home").glob("**/*.gz"))


def test_the_trainer_fails_cleanly_without_allocating(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "cpu_memory", lambda: DeviceMemory("the CPU", 10_000))
    spec = make({"name": "moons", "samples": 200}, [{"type": "Linear", "out": 2}])
    events = list(Trainer(spec, runs=RunStore(tmp_path)).events())
    assert len(events) == 1 and isinstance(events[0], RunFailed)
    assert "the experiment needs about" in events[0].reason
    assert "likely a bug" not in events[0].hint
    assert not any(tmp_path.iterdir())


def test_the_trainer_checks_a_spec_made_in_code(tmp_path):
    spec = make({"name": "moons"}, [{"type": "Linear", "out": 2}])
    spec.model.layers[0].params["out"] = 10**9  # bypassing validation
    events = list(Trainer(spec, runs=RunStore(tmp_path)).events())
    assert isinstance(events[-1], RunFailed)
    assert events[-1].reason.startswith("model.layers[0].out, layer 1 (Linear): must be a whole")
