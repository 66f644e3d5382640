import json

import pytest

from workbench import spec as specmod
from workbench.core.store.specs import save_spec
from workbench.spec import ExperimentSpec, LayerSpec, SpecError


def mlp_dict(**overrides):
    d = {
        "version": 1,
        "data": {"name": "moons", "samples": 200},
        "model": {"layers": [{"type": "Linear", "out": 8}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 2, "batch_size": 16},
    }
    d.update(overrides)
    return d


def test_round_trip_is_lossless():
    spec = specmod.from_dict(mlp_dict())
    again = specmod.from_json(spec.to_json())
    assert again == spec
    assert json.loads(again.to_json()) == json.loads(spec.to_json())


def test_every_example_loads_and_round_trips():
    from workbench.paths import resources_dir

    examples = sorted((resources_dir() / "examples").glob("*.json"))
    assert len(examples) >= 4
    for path in examples:
        spec = specmod.load(path)
        assert specmod.from_json(spec.to_json()) == spec


def test_save_and_load(tmp_path):
    spec = specmod.from_dict(mlp_dict())
    save_spec(spec, tmp_path / "a.json")
    assert specmod.load(tmp_path / "a.json") == spec
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("optim.lr", -1, "optim.lr: must be a number from 1e-12 to 1,000,000, got -1"),
        ("optim.name", "adamax", "optim.name: must be one of"),
        ("train.epochs", 0, "train.epochs: must be a whole number from 1 to 100,000, got 0"),
        ("train.batch_size", 2.5, "train.batch_size: must be a whole number from 1 to"),
        ("train.device", "tpu", "train.device: must be auto, cpu, cuda"),
        ("schedule.name", "linear", "schedule.name: must be one of"),
        ("regularization.grad_clip", 0, "regularization.grad_clip: must be a number from 0.001"),
        ("data.name", "imagenet", "data.name: must be one of"),
        ("data.val_fraction", 0.95, "data.val_fraction: must be a number from 0 to 0.9"),
    ],
)
def test_validation_names_the_field(path, value, message):
    with pytest.raises(SpecError) as err:
        specmod.from_dict(mlp_dict()).with_value(path, value)
    assert str(err.value).startswith(message)
    assert err.value.path == path


def test_layer_parameter_errors_name_the_layer():
    d = mlp_dict()
    d["model"]["layers"].append({"type": "Linear", "out": -2})
    with pytest.raises(SpecError, match=r"model\.layers\[3\]\.out, layer 4 \(Linear\): must be "
                                        r"a whole number from 1 to 65,536, got -2"):
        specmod.from_dict(d)
    d["model"]["layers"][3] = {"type": "Linear", "width": 3}
    with pytest.raises(SpecError, match=r"model\.layers\[3\]\.width, layer 4 \(Linear\): Linear "
                                        r"has no parameter"):
        specmod.from_dict(d)
    d["model"]["layers"][3] = {"type": "Dense"}
    with pytest.raises(SpecError,
                       match=r"model\.layers\[3\]\.type, layer 4: unknown layer 'Dense'"):
        specmod.from_dict(d)


def test_unknown_fields_and_sections_are_refused():
    with pytest.raises(SpecError, match=r"optim\.learning_rate: unknown field"):
        specmod.from_dict(mlp_dict(optim={"learning_rate": 0.1}))
    with pytest.raises(SpecError, match=r"trainer: unknown section"):
        specmod.from_dict(mlp_dict(trainer={}))


def test_versions():
    with pytest.raises(SpecError, match="version: 7 is newer"):
        specmod.from_dict(mlp_dict(version=7))
    old = mlp_dict()
    del old["version"]
    old["lr"] = 0.05
    old["optimizer"] = "sgd"
    old.pop("optim")
    old["model"] = old["model"]["layers"]
    spec = specmod.from_dict(old)
    assert spec.version == 1
    assert (spec.optim.name, spec.optim.lr) == ("sgd", 0.05)
    assert len(spec.model.layers) == 3


def test_malformed_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    with pytest.raises(SpecError, match="not valid JSON"):
        specmod.load(bad)
    with pytest.raises(SpecError, match="cannot read"):
        specmod.load(tmp_path / "missing.json")


def test_layer_spec_flattens_params():
    layer = LayerSpec("Conv2d", {"out": 8, "kernel": 5})
    assert layer.to_dict() == {"type": "Conv2d", "out": 8, "kernel": 5}
    assert ExperimentSpec().version == 1
