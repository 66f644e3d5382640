"""Every number in a spec has a bound, and every spec file is read with a one-line refusal."""

import json

import pytest

from workbench import spec as specmod
from workbench.spec import BOUNDS, SpecError
from workbench.spec.layers import CATALOGUE


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


def refused(path, value):
    with pytest.raises(SpecError) as err:
        specmod.from_dict(mlp_dict()).with_value(path, value)
    return err.value


@pytest.mark.parametrize(
    ("path", "value", "bound"),
    [
        ("data.samples", 10**12, "a whole number from 10 to 1,000,000"),
        ("train.seed", 2**63, "a whole number from 0 to 2,147,483,647"),
        ("train.seed", 10**400, "a whole number from 0 to 2,147,483,647"),
        ("train.epochs", 10**9, "a whole number from 1 to 100,000"),
        ("train.batch_size", 10**9, "a whole number from 1 to 1,000,000"),
        ("data.augment.crop_pad", 1000, "a whole number from 0 to 16"),
        ("schedule.warmup_epochs", 1e9, "a number from 0 to 10,000"),
        ("schedule.step_size", 10**7, "a whole number from 1 to 100,000"),
        ("optim.lr", 1e30, "a number from 1e-12 to 1,000,000"),
        ("optim.lr", 0, "a number from 1e-12 to 1,000,000"),
        ("schedule.factor", 1.0, "a number from 0.01 to 0.99"),
        ("optim.momentum", 1.0, "a number from 0 to 0.999"),
        ("optim.lr", 10**400, "a number from 1e-12 to 1,000,000"),
        ("optim.weight_decay", 1e9, "a number from 0 to 10"),
        ("regularization.early_stop_patience", 10**6, "a whole number from 1 to 10,000"),
        ("regularization.grad_clip", 1e300, "a number from 0.001 to 1,000,000"),
    ],
)
def test_absurd_numbers_are_refused_naming_the_field_and_the_bound(path, value, bound):
    err = refused(path, value)
    assert err.path == path
    assert str(err).startswith(f"{path}: must be {bound}, got ")
    assert len(str(err)) < 200 and "\n" not in str(err)  # a 400-digit number is not pasted


def test_every_bound_accepts_its_ends_and_refuses_beyond_them():
    base = specmod.from_dict(mlp_dict())
    for path, bound in BOUNDS.items():
        if path == "optim.betas":
            continue
        spec = base
        if path in ("data.val_fraction", "data.test_fraction"):  # together below 0.95
            spec = spec.with_value("data.test_fraction" if path.endswith("val_fraction")
                                   else "data.val_fraction", 0.0)
        if path == "optim.momentum":
            spec = spec.with_value("optim.name", "sgd")  # momentum 0 is refused for momentum
        cast = int if bound.integer else float
        for value in (bound.lo, bound.hi):
            assert spec.with_value(path, cast(value)) is not None, (path, value)
        for beyond in (bound.hi * 10 + 1, bound.lo - 1, bound.lo / 2 if bound.lo > 0 else -1):
            with pytest.raises(SpecError, match=path.replace(".", r"\.")):
                spec.with_value(path, cast(beyond) if cast(beyond) != bound.lo else -1)


def test_every_numeric_layer_parameter_has_both_bounds():
    for ltype in CATALOGUE.values():
        for p in ltype.params:
            if p.kind is not bool:
                assert p.lo < p.hi, (ltype.name, p.name)
                assert p.bound.contains(p.default) or (p.optional and p.default is None)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"type": "Linear", "out": 10**9},
         "out, layer 1 (Linear): must be a whole number from 1 to 65,536"),
        ({"type": "Linear", "out": 1e30},
         "out, layer 1 (Linear): must be a whole number from 1 to 65,536"),
        ({"type": "Conv2d", "out": 10**6},
         "out, layer 1 (Conv2d): must be a whole number from 1 to 4,096"),
        ({"type": "Conv2d", "kernel": 999},
         "kernel, layer 1 (Conv2d): must be a whole number from 1 to 64"),
        ({"type": "MaxPool2d", "stride": 10**5},
         "stride, layer 1 (MaxPool2d): must be a whole number from 1 to 64"),
        ({"type": "Dropout", "p": 1.0}, "p, layer 1 (Dropout): must be a number from 0 to 0.99"),
        ({"type": [1, 2]}, "type, layer 1: unknown layer [1, 2]"),
        ({"type": 5}, "type, layer 1: unknown layer 5"),
        ({"type": {"a": 1}}, "type, layer 1: unknown layer {'a': 1}"),
    ],
)
def test_layer_parameters_are_bounded(layer, message):
    d = mlp_dict()
    d["model"]["layers"][0] = layer
    with pytest.raises(SpecError) as err:
        specmod.from_dict(d)
    assert str(err.value).startswith(f"model.layers[0].{message}")


@pytest.mark.parametrize("device", ["cuda:abc", "cuda:", "cuda:-1", "cuda:01", "gpu", "cpu ",
                                    "cuda:99999", 3, None])
def test_device_must_be_auto_cpu_cuda_or_cuda_n(device):
    assert refused("train.device", device).path == "train.device"


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:7", "cuda:1023"])
def test_good_devices_pass(device):
    assert specmod.from_dict(mlp_dict()).with_value("train.device", device).train.device == device


def test_texts_are_bounded():
    assert refused("name", "x" * 10_000).path == "name"
    assert refused("data.root", "a\0b").path == "data.root"
    assert refused("data.path", "p" * 100_000).path == "data.path"
    d = mlp_dict()
    d["model"]["layers"] = [{"type": "ReLU"}] * 5_000
    with pytest.raises(SpecError, match="model.layers: must hold at most 1,000 layers"):
        specmod.from_dict(d)


def test_momentum_zero_is_refused_for_the_momentum_optimizers():
    base = specmod.from_dict(mlp_dict()).with_value("optim.momentum", 0.0)
    for name, says in (("nesterov", "Nesterov momentum needs a momentum above 0"),
                       ("momentum", "pick sgd")):
        with pytest.raises(SpecError, match=says) as err:
            base.with_value("optim.name", name)
        assert err.value.path == "optim.momentum"
    assert base.with_value("optim.name", "sgd").optim.momentum == 0.0


def test_watching_validation_loss_needs_validation_data():
    no_val = specmod.from_dict(mlp_dict()).with_value("data.val_fraction", 0.0)
    with pytest.raises(SpecError) as err:
        no_val.with_value("regularization.early_stop_patience", 3)
    assert err.value.path == "regularization.early_stop_patience"
    assert "data.val_fraction is 0" in str(err.value)
    with pytest.raises(SpecError) as err:
        no_val.with_value("schedule.name", "plateau")
    assert err.value.path == "schedule.name" and "data.val_fraction" in str(err.value)
    assert no_val.with_value("schedule.name", "cosine").schedule.name == "cosine"


# -- spec files ----------------------------------------------------------------------------

def load_bytes(tmp_path, data: bytes):
    path = tmp_path / "spec.json"
    path.write_bytes(data)
    return specmod.load(path)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    spec = load_bytes(tmp_path, b"\xef\xbb\xbf" + json.dumps(mlp_dict()).encode())
    assert spec.model.layers[0].params == {"out": 8}
    assert specmod.from_json("\ufeff" + json.dumps(mlp_dict())).data.samples == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"name": "caf\xe9"}', "not UTF-8 text (byte 0xe9 at offset 13)"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8 text (byte 0xff at offset 0)"),
        (b"[" * 100_000 + b"]" * 100_000, "nested more than 32 levels deep"),
        (b'{"a":' * 50 + b"1" + b"}" * 50, "nested more than 32 levels deep"),
        (b'{"train": {"seed": ' + b"9" * 5000 + b"}}", "holds a number too long to read"),
        (b'{"train": {"seed": ' + b"9" * 400 + b"}}",
         "train.seed: must be a whole number from 0 to 2,147,483,647, got a 400-digit integer"),
        (b'{"optim": {"lr": ' + b"9" * 400 + b"}}", "optim.lr: must be a number from 1e-12"),
        (b'{"optim": {"lr": 1e400}}', "holds the number 1e400, too large to represent"),
        (b'{"optim": {"lr": NaN}}', "holds NaN, which is not a number JSON allows"),
        (b'{"optim": {"lr": -Infinity}}', "holds -Infinity, which is not a number JSON allows"),
        (b'{"model": {"layers": [{"type": ["Linear"]}]}}',
         "model.layers[0].type, layer 1: unknown layer"),
        (b'{"model": {"layers": [5]}}', "model.layers[0], layer 1: must be an object"),
        (b'{"model": {"layers": [], "extra": 1}}', "model.extra: unknown field"),
        (b'{"version": -3}', "version: must be a whole number from 0 to 1"),
        (b'{"optim": [1], "lr": 0.1}', "optim: must be an object"),
        (b"[]", "a spec must be a JSON object, got list"),
        (b"42", "a spec must be a JSON object, got int"),
        (b"", "not valid JSON (line 1, column 1)"),
    ],
    ids=lambda v: v[:24].decode("latin-1") if isinstance(v, bytes) else v[:12],
)
def test_hostile_spec_files_give_one_line(tmp_path, data, message):
    with pytest.raises(SpecError) as err:
        load_bytes(tmp_path, data)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


def test_a_huge_spec_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(50 * 2**20)
    with pytest.raises(SpecError, match=r"too large: 52,428,800 bytes, more than the 1,048,576"):
        specmod.load(path)


def test_a_folder_or_a_pipe_is_not_a_spec(tmp_path):
    import os

    with pytest.raises(SpecError, match="not a plain file"):
        specmod.load(tmp_path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a plain file"):  # opening it would wait forever
        specmod.load(fifo)


@pytest.mark.parametrize(("name", "says"), [
    ("", "name: must not be empty"), ("   ", "name: must not be empty"),
    ("a\nb", "name: must be one line"), ("tab\there", "name: must be one line"),
    ("x" * 201, "name: must be at most 200 characters, got 201"),
])
def test_a_name_must_be_readable_text(name, says):
    with pytest.raises(SpecError, match=says):
        specmod.from_dict(mlp_dict()).with_value("name", name)


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b\\c", "MNIST — 3 layers", "é" * 200])
def test_a_name_with_separators_or_any_script_is_fine(name):
    assert specmod.from_dict(mlp_dict()).with_value("name", name).name == name


@pytest.mark.parametrize("base", ["spirals", "x" * 200, "a" * 190 + " " * 10])
def test_a_derived_name_stays_a_valid_name(base):
    for suffix in ("-pruned", " fork@12", " [" + "lr=0.1," * 40 + "]"):
        name = specmod.derived_name(base, suffix)
        specmod.check_name(name)
        assert name.startswith(base[:1]) and (len(suffix) >= 200 or name.endswith(suffix))
