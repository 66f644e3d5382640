"""The learning-rate range test on real small data: sensible suggestions for every optimizer,
classification and regression, and nothing of the experiment touched."""

from __future__ import annotations

import json
import math

import pytest
import torch

from workbench import spec as specmod
from workbench.cli import main
from workbench.core.data import load_splits
from workbench.core.tools.lr_find import LRFindError, lr_find, steepest
from workbench.spec import OPTIMIZERS


def moons(optimizer: str = "adam", **train) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "moons-lr",
        "data": {"name": "moons", "samples": 400, "noise": 0.15},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Dropout", "p": 0.1}, {"type": "Linear", "out": 2}]},
        "optim": {"name": optimizer, "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 16, "seed": 1, "device": "cpu", **train},
    })


def test_adam_on_moons_suggests_a_rate_below_the_blow_up(tmp_path):
    result = lr_find(moons(), threads=1)
    assert result.task == "classification"
    assert len(result.lrs) == len(result.losses) == len(result.smoothed)
    assert result.lrs[0] == pytest.approx(1e-7)
    assert all(b > a for a, b in zip(result.lrs, result.lrs[1:], strict=False))
    assert result.steepest_lr is not None
    assert 1e-4 <= result.suggested_lr <= 0.5
    assert result.suggested_lr <= result.minimum_lr
    assert result.min_over_10 == pytest.approx(result.minimum_lr / 10)
    assert result.best_loss < result.smoothed[0]  # the loss did fall somewhere
    summary = result.summary()
    assert json.loads(json.dumps(summary))["suggested_lr"] == result.suggested_lr
    assert len(summary["curve"]) <= 25


def test_nothing_of_the_experiment_changes(_isolated_home):
    spec = moons()
    before_spec = spec.to_dict()
    data = load_splits(spec.data, spec.train.seed)
    copies = {k: getattr(data, k).clone() for k in ("train_x", "train_y", "val_x", "val_y")}
    torch.manual_seed(1234)
    rng = torch.get_rng_state()
    threads = torch.get_num_threads()
    lr_find(spec, data=data, steps=50, threads=1)
    assert spec.to_dict() == before_spec
    for key, tensor in copies.items():
        assert torch.equal(getattr(data, key), tensor)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_num_threads() == threads
    assert not (_isolated_home / "runs").exists() or not any((_isolated_home / "runs").iterdir())


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_gives_a_finite_suggestion(optimizer):
    result = lr_find(moons(optimizer), steps=80, threads=1)
    assert math.isfinite(result.suggested_lr) and result.suggested_lr > 0
    assert result.lrs[0] <= result.suggested_lr <= result.lrs[-1]


def test_regression_and_a_loss_that_explodes():
    spec = specmod.from_dict({
        "data": {"name": "sine", "samples": 400},
        "model": {"layers": [{"type": "Linear", "out": 32}, {"type": "Tanh"},
                             {"type": "Linear", "out": 1}]},
        "optim": {"name": "sgd"}, "train": {"batch_size": 16, "device": "cpu"},
    })
    result = lr_find(spec, threads=1)
    assert result.task == "regression"
    assert result.stop == "diverged"
    assert len(result.lrs) < 300
    assert result.smoothed[-1] > 4 * result.best_loss or not math.isfinite(result.losses[-1])
    assert result.suggested_lr < result.lrs[-1]


MNIST_SMALL_MLP = {
    "name": "mnist-small-mlp",
    "data": {"name": "mnist_small", "val_fraction": 0.1},
    "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 128},
                         {"type": "ReLU"}, {"type": "Linear", "out": 10}]},
    "optim": {"name": "adam", "lr": 0.001},
    "train": {"batch_size": 32, "device": "cpu"},
}


def test_mnist_small_mlp_with_adam_lands_in_the_usual_range():
    result = lr_find(specmod.from_dict(MNIST_SMALL_MLP), threads=1)
    assert 1e-4 <= result.suggested_lr <= 1e-1


def test_cancel_and_progress(monkeypatch):
    import threading

    from workbench.core.tools import lr_find as module

    monkeypatch.setattr(module, "REPORT_INTERVAL", 0.0)  # a report a step: fast machines too

    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.step >= 20:
            cancel.set()

    result = lr_find(moons(), steps=300, threads=1, cancel=cancel, progress=progress)
    assert result.stop == "cancelled"
    assert sum(len(p.lrs) for p in seen) == len(result.lrs)


def test_steepest_is_where_the_loss_falls_fastest():
    lrs = [10 ** (-6 + 6 * i / 199) for i in range(200)]
    loss = [1.0 / (1 + math.exp(4 * (math.log10(lr) + 3))) + 0.1 for lr in lrs]  # drop at 1e-3
    assert steepest(lrs, loss) == pytest.approx(1e-3, rel=0.15)
    assert steepest(lrs, [1.0] * len(lrs)) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"start_lr": 0.0}, "start_lr: must be a positive number"),
    ({"start_lr": 1.0, "end_lr": 0.1}, "end_lr: must be above start_lr"),
    ({"steps": 3}, "steps: must be an integer from 10"),
    ({"end_lr": math.inf}, "end_lr: must be a positive number"),
])
def test_bad_ranges_are_refused(kwargs, message):
    with pytest.raises(LRFindError, match=message):
        lr_find(moons(), **kwargs)


def test_command_prints_the_suggestion_last(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text(moons().to_json())
    assert main(["lr-find", str(path), "--steps", "120", "--threads", "1"]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["suggested_lr"] > 0 and result["steps"] <= 120
    assert "suggested rate" in out.err and "smoothed loss" in out.err


def test_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text(moons().to_json())
    assert main(["lr-find", str(path), "--start", "1", "--end", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "end_lr: must be above start_lr" in err[0]
    with pytest.raises(SystemExit) as exit_:
        main(["lr-find", str(path), "--start", "-1"])
    assert exit_.value.code == 2


def _noisy_table(path, n: int = 800) -> None:
    """A regression whose batches are noisy next to what a network can learn of it."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = 1 + 0.3 * x[:, 0] + 0.1 * np.sin(3 * x[:, 1]) + rng.normal(size=n)
    path.write_text("a,b,c,target\n" + "".join(
        f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{t:.4f}\n" for r, t in zip(x, y, strict=True)))


def test_a_noisy_regression_is_not_read_in_its_first_noisy_steps(tmp_path):
    """It suggested 1.7e-07: the debiased average of the first few batches fell (it was their
    noise) faster than the real descent, three decades later, did."""
    table = tmp_path / "noisy.csv"
    _noisy_table(table)
    spec = specmod.from_dict({
        "data": {"name": "csv", "path": str(table)},
        "model": {"layers": [{"type": "Linear", "out": 32}, {"type": "ReLU"},
                             {"type": "Linear", "out": 1}]},
        "optim": {"name": "sgd"}, "train": {"batch_size": 32, "device": "cpu"}})
    result = lr_find(spec, threads=1)
    assert result.task == "regression"
    assert 1e-4 <= result.steepest_lr <= result.minimum_lr
    assert result.suggested_lr == result.steepest_lr
    at = result.lrs.index(min(result.lrs, key=lambda lr: abs(lr - result.steepest_lr)))
    fall = result.start_loss - result.best_loss
    assert result.smoothed[at] <= result.start_loss - 0.1 * fall  # in the descent itself


def test_notes_say_what_the_curve_shows():
    """Adam on MNIST: the loss came down, then rose above where it started without passing
    4x its minimum. It said 'the loss never exploded up to 10'."""
    result = lr_find(specmod.from_dict(MNIST_SMALL_MLP), threads=1)
    end = result.smoothed[-1]
    assert result.stop == "end" and end > result.start_loss > result.best_loss
    assert end < 4 * result.best_loss
    (note,) = result.notes
    assert "never exploded" not in note
    for figure in (f"{result.best_loss:.3g}", f"{end:.3g}", f"{result.start_loss:.3g}",
                   "above where it started", "4× its minimum"):
        assert figure in note
    assert result.summary()["start_loss"] == result.start_loss
