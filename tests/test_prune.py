"""Pruning real small models: masks, exact structured removal, notes, sweeps, fine-tuning."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from prune_fixtures import CNN, MLP, MOONS, train_run

from workbench.cli import main
from workbench.core.model import build_model
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.prune import PruneConfig, PruneError, PruneSession
from workbench.core.tools.prune_apply import create_pruned_run, shrink


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("mlp-runs"), MLP)


@pytest.fixture(scope="module")
def mlp_session(mlp_run) -> PruneSession:
    return PruneSession(mlp_run)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("cnn-runs"), CNN, batch_size=128)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_global_unstructured_reaches_the_amount_and_costs_accuracy(mlp_session):
    base = mlp_session.baseline
    assert base.sparsity == 0 and base.val_accuracy > 0.6
    half = mlp_session.evaluate(PruneConfig(0.5))
    assert half.sparsity == pytest.approx(0.5, abs=1e-3)
    assert half.params_after < half.params_before
    heavy = mlp_session.evaluate(PruneConfig(0.97))
    assert heavy.val_accuracy < base.val_accuracy - 0.1
    by_layer = {s.index: s for s in half.layers}
    assert all(0 < s.sparsity < 1 and s.params_after < s.params_before for s in by_layer.values())


def test_per_layer_prunes_each_layer_by_its_own_amount(mlp_session):
    result = mlp_session.evaluate(PruneConfig(per_layer={1: 0.8, 3: 0.2, 5: 0.0}))
    sparsity = {s.index: s.sparsity for s in result.layers}
    assert sparsity[1] == pytest.approx(0.8, abs=1e-3)
    assert sparsity[3] == pytest.approx(0.2, abs=1e-2)
    assert sparsity[5] == 0


def test_structured_half_removes_half_the_hidden_units_exactly(mlp_session, tmp_path):
    config = PruneConfig(0.5, structured=True, per_layer={1: 0.5, 3: 0.5})
    result = mlp_session.evaluate(config)
    units = {s.index: s.units_after for s in result.layers}
    assert units == {1: 16, 3: 8, 5: 10}
    layers, state = shrink(mlp_session, result)
    small = build_model(layers, mlp_session.info.input_shape)
    small.load_state_dict(state)
    small.eval()
    assert sum(p.numel() for p in small.parameters()) == result.params_after
    masked = build_model(mlp_session.spec.model.layers, mlp_session.info.input_shape)
    masked.load_state_dict(mlp_session.masked_state(result.masks))
    masked.eval()
    x = mlp_session.val_x[:50]
    with torch.no_grad():
        torch.testing.assert_close(small(x), masked(x), rtol=1e-5, atol=1e-5)


def test_structured_cnn_with_batchnorm_shrinks_and_matches(cnn_run, tmp_path):
    session = PruneSession(cnn_run)
    config = PruneConfig(0.5, structured=True, per_layer={0: 0.5, 4: 0.5, 10: 0.5})
    result = session.evaluate(config)
    pruned = create_pruned_run(session, config, runs=RunStore(tmp_path))
    run = Run(Path(pruned.run_dir))
    outs = [layer.params.get("out") for layer in run.spec().model.layers
            if layer.type in ("Conv2d", "Linear")]
    assert outs == [3, 4, 8, 10]
    assert pruned.summary["val_accuracy"] == pytest.approx(result.val_accuracy)
    assert pruned.summary["bytes_after"] < pruned.summary["bytes_before"]
    assert pruned.summary["parameters"] == result.params_after
    state = run.load_model_state()
    assert state["1.running_mean"].shape == (3,) and state["10.weight"].shape == (8, 4 * 7 * 7)


def test_new_run_is_linked_and_parent_untouched(mlp_run, mlp_session, tmp_path):
    parent_model = Path(mlp_run) / "model.pt"
    before = _digest(parent_model)
    pruned = create_pruned_run(mlp_session, PruneConfig(0.6), runs=RunStore(tmp_path))
    assert _digest(parent_model) == before
    summary = Run(Path(pruned.run_dir)).summary()
    assert summary["parent"] == str(Path(mlp_run)) == summary["pruned_from"]
    assert summary["status"] == "finished"
    assert summary["sparsity"] == pytest.approx(0.6, abs=1e-3)
    for key in ("val_accuracy", "test_accuracy", "parameters", "latency_ms_after"):
        assert summary[key] is not None


def test_notes_say_when_pruning_changes_nothing(mlp_session, tmp_path):
    tiny = mlp_session.evaluate(PruneConfig(per_layer={5: 0.002}))
    assert any("rounds to no weight" in n for n in tiny.notes)
    assert tiny.sparsity == 0
    once = create_pruned_run(mlp_session, PruneConfig(0.7), runs=RunStore(tmp_path))
    again = PruneSession(once.run_dir).evaluate(PruneConfig(0.5))
    assert any("already" in n and "changes nothing" in n for n in again.notes)
    assert again.sparsity == pytest.approx(0.7, abs=1e-3)


def test_sensitivity_has_a_curve_per_layer_and_the_network(mlp_session):
    amounts = (0.0, 0.5, 0.95)
    points = list(mlp_session.sensitivity(amounts=amounts))
    assert len(points) == (len(mlp_session.layers) + 1) * len(amounts)
    assert {p.layer for p in points} == {1, 3, 5, None}
    at_zero = [p for p in points if p.amount == 0]
    assert all(p.val_accuracy == mlp_session.baseline.val_accuracy for p in at_zero)
    network = [p.val_accuracy for p in points if p.layer is None]
    assert network[-1] < network[0]
    structured = list(mlp_session.sensitivity(structured=True, amounts=(0.5,)))
    assert {p.layer for p in structured} == {1, 3, None}


def test_finetuning_recovers_accuracy_with_the_mask_fixed(tmp_path):
    moons = {"name": "moons", "samples": 800, "noise": 0.15}
    parent = train_run(tmp_path / "runs", MOONS, data=moons, epochs=12, lr=0.01,
                       batch_size=16, name="moons")
    session = PruneSession(parent)
    config = PruneConfig(0.9)
    pruned = session.evaluate(config)
    assert pruned.val_accuracy < session.baseline.val_accuracy - 0.05
    result = create_pruned_run(session, config, runs=RunStore(tmp_path / "runs"),
                               finetune_epochs=4)
    s = result.summary
    assert s["val_accuracy_pruned"] == pytest.approx(pruned.val_accuracy)
    assert s["val_accuracy"] > s["val_accuracy_pruned"] + 0.03
    assert s["sparsity"] == pytest.approx(pruned.sparsity, abs=1e-6)
    state = Run(Path(result.run_dir)).load_model_state()
    for key, mask in pruned.masks.items():
        assert torch.all(state[key][mask == 0] == 0)


def test_bad_requests_say_why(mlp_session, tmp_path):
    with pytest.raises(PruneError, match="between 0 and 0.99"):
        mlp_session.evaluate(PruneConfig(1.0))
    with pytest.raises(PruneError, match="layer 5 cannot be pruned"):
        mlp_session.evaluate(PruneConfig(structured=True, per_layer={5: 0.5}))
    empty = RunStore(tmp_path).create(mlp_session.spec)
    with pytest.raises(PruneError, match="model.pt"):
        PruneSession(empty.path)


def test_cli_prune_prints_one_json_line(mlp_run, tmp_path, capsys):
    code = main(["prune", mlp_run, "--amount", "0.5", "--structured", "--per-layer",
                 "--runs-dir", str(tmp_path)])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    for key in ("run_dir", "sparsity", "parameters", "val_accuracy", "test_accuracy"):
        assert key in result
    assert Path(result["run_dir"]).parent == tmp_path
    assert result["parameters"] < result["parameters_before"]
    assert math.isfinite(result["val_accuracy"])


def test_cli_prune_bad_run_is_one_line_error(tmp_path, capsys):
    assert main(["prune", str(tmp_path / "nope"), "--amount", "0.5"]) == 2
    assert "error" in capsys.readouterr().err


def test_structured_pruning_with_batchnorm_after_flatten_matches_the_shrunk_model(tmp_path):
    """A BatchNorm1d after the Flatten of a conv output has H*W entries per channel: pruning
    a channel masks its whole block, and the masked network equals the physically smaller
    one."""
    import numpy as np

    from workbench.core.data.idx import write_idx

    rng = np.random.default_rng(0)
    root = tmp_path / "digits"
    for stem, n in (("train", 160), ("t10k", 40)):
        write_idx(root / f"{stem}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    layers = [{"type": "Conv2d", "out": 6, "kernel": 3, "stride": 2}, {"type": "ReLU"},
              {"type": "MaxPool2d", "kernel": 3}, {"type": "Flatten"}, {"type": "BatchNorm"},
              {"type": "Linear", "out": 12}, {"type": "ReLU"}, {"type": "Linear", "out": 10}]
    run_dir = train_run(tmp_path / "runs", layers, epochs=2, batch_size=32,
                        data={"name": "mnist", "root": str(root), "val_fraction": 0.25})
    session = PruneSession(run_dir)
    result = session.evaluate(PruneConfig(0.5, structured=True, per_layer={0: 0.5}))
    gone = sorted(set(range(6)) - set(result.kept_units[0].tolist()))
    assert len(gone) == 3
    bn_mask = result.masks["4.weight"].reshape(6, 16)  # 6 channels of 4x4 after the pooling
    assert (bn_mask[gone] == 0).all() and (bn_mask[result.kept_units[0]] == 1).all()

    new_layers, state = shrink(session, result)
    small = build_model(new_layers, session.info.input_shape)
    small.load_state_dict(state)
    assert state["4.running_mean"].shape == (3 * 16,) and state["5.weight"].shape == (12, 48)
    session.model.load_state_dict(session.masked_state(result.masks))
    with torch.no_grad():
        masked = session.model.eval()(session.val_x)
        shrunk = small.eval()(session.val_x)
    torch.testing.assert_close(shrunk, masked, rtol=1e-5, atol=1e-5)


def test_a_run_with_the_longest_name_prunes_into_a_readable_run(tmp_path):
    run_dir = train_run(tmp_path, MOONS, data={"name": "moons", "samples": 200}, name="n" * 200)
    pruned = create_pruned_run(PruneSession(run_dir), PruneConfig(0.5), runs=RunStore(tmp_path))
    name = Run(Path(pruned.run_dir)).spec().name  # read back: within the reader's bound
    assert name.endswith("-pruned") and len(name) == 200


@pytest.mark.parametrize("layers", [MOONS, [{"type": "Linear", "out": 2}]],
                         ids=["three-layers", "one-layer"])
def test_create_pruned_run_with_the_panels_defaults_structured_or_at_zero(tmp_path, layers):
    """The prune panel's defaults (global, 0%, one epoch of fine-tuning), unstructured and
    structured, make a finished run: once `Tensor list must have at least one tensor`."""
    parent = train_run(tmp_path / "runs", layers,
                       data={"name": "moons", "samples": 300, "noise": 0.2})
    session = PruneSession(parent)
    for config in (PruneConfig(amount=0.0), PruneConfig(amount=0.0, structured=True),
                   PruneConfig(amount=0.3, structured=True)):
        pruned = create_pruned_run(session, config, runs=RunStore(tmp_path / "runs"),
                                   finetune_epochs=1)
        summary = Run(Path(pruned.run_dir)).summary()
        assert summary["status"] == "finished" and summary["finetune_epochs"] == 1, config
        if config.amount == 0.0:
            assert summary["parameters"] == summary["parameters_before"]


def test_the_unpruned_figures_are_the_run_s_own(tmp_path):
    """One evaluation batch size everywhere (it was 1024 in the trainer, 4096 in prune): the
    prune session's figures of the unpruned network are the run's summary, to the last bit."""
    run_dir = train_run(tmp_path, MLP, data={"name": "mnist_small", "val_fraction": 0.5})
    summary = Run(run_dir).summary()
    baseline = PruneSession(run_dir).baseline
    assert (baseline.val_loss, baseline.val_accuracy) == (summary["val_loss"],
                                                          summary["val_accuracy"])
