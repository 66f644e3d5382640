"""Health and decision-boundary monitors, headless: what they measure and how often they send."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from workbench import spec as specmod
from workbench.core.data import DeviceBatches
from workbench.core.store.runs import RunStore
from workbench.core.training.events import Boundary, EpochEnded, Health, LayerHealth, RunFinished
from workbench.core.training.loop import Trainer
from workbench.core.training.monitors import (
    BoundaryMonitor,
    HealthMonitor,
    grid_extent,
    health_warning,
)


def _spec(data: str = "moons", epochs: int = 3, **extra) -> specmod.ExperimentSpec:
    raw = {
        "name": "insight",
        "data": {"name": data, "samples": 400, "noise": 0.1},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2 if data != "blobs" else 4}]},
        "optim": {"name": "adam", "lr": 0.02},
        "train": {"epochs": epochs, "batch_size": 32, "seed": 0},
    }
    raw.update(extra)
    return specmod.from_dict(raw)


def _run(spec, callbacks, tmp_path) -> list:
    trainer = Trainer(spec, runs=RunStore(tmp_path / "runs"), callbacks=callbacks, threads=1)
    return list(trainer.events())


class FrozenClock:
    """A clock that only moves when told to: rate limits become deterministic."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_health_reports_every_weighted_layer(tmp_path):
    events = _run(_spec(), [HealthMonitor(per_epoch=4, min_interval=0)], tmp_path)
    assert isinstance(events[-1], RunFinished)
    health = [e for e in events if isinstance(e, Health)]
    assert len(health) >= 3  # at least one an epoch
    last = health[-1]
    assert [h.name for h in last.layers] == ["layer 1 (Linear)", "layer 3 (Linear)",
                                             "layer 5 (Linear)"]
    sizes = [2 * 16, 16 * 16, 16 * 2]
    for layer, size in zip(last.layers, sizes, strict=True):
        assert np.isfinite(layer.grad_norm) and layer.grad_norm > 0
        assert len(layer.edges) == len(layer.weight_hist) + 1 == 31
        assert sum(layer.weight_hist) == size
    assert 0.0 <= last.layers[0].dead_fraction <= 1.0
    assert 0.0 <= last.layers[1].dead_fraction <= 1.0
    assert last.layers[2].dead_fraction is None  # no ReLU after the output layer
    # the dead units are the ReLUs' (layers 2 and 4 in the editor), not the Linear layers'
    assert [h.relu_index for h in last.layers] == [1, 3, None]
    steps = [h.global_step for h in health]
    assert steps == sorted(set(steps))
    last_epoch = [e for e in events if isinstance(e, EpochEnded)][-1]
    assert steps[-1] == last_epoch.global_step  # the final weights are always reported


def test_monitors_do_not_change_training(tmp_path):
    plain = _run(_spec(), [], tmp_path)[-1]
    watched = _run(_spec(), [HealthMonitor(min_interval=0, per_epoch=8),
                             BoundaryMonitor(min_interval=0)], tmp_path)[-1]
    assert plain.test_loss == watched.test_loss
    assert plain.confusion == watched.confusion


def test_health_rate_limited_by_time(tmp_path):
    clock = FrozenClock()
    monitor = HealthMonitor(per_epoch=8, min_interval=10.0, clock=clock)
    events = _run(_spec(epochs=4), [monitor], tmp_path)
    health = [e for e in events if isinstance(e, Health)]
    # the clock never moves: the first report, then only the one after the last epoch
    assert len(health) == monitor.sent == 2


def test_dead_relu_share_measured_on_probe():
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(),
                          nn.Linear(4, 2))
    with torch.no_grad():
        model[0].bias.fill_(-1e3)  # every unit of the first ReLU is negative on any input
    x = torch.randn(64, 2)
    batches = DeviceBatches(x, torch.zeros(64, dtype=torch.long), mean=(0.0, 0.0),
                            std=(1.0, 1.0), batch_size=64, device=torch.device("cpu"),
                            shuffle=False, generator=None, image=False)
    fake = SimpleNamespace(model=model, val_batches=batches, train_batches=batches,
                           steps_per_epoch=4)
    monitor = HealthMonitor(min_interval=0)
    monitor.on_run_start(fake)
    health = monitor.measure(model, 0, 0.0)
    assert health.layers[0].dead_fraction == 1.0
    # the next layer only ever sees zeros: its units live exactly where their bias is positive
    assert health.layers[1].dead_fraction == float((model[2].bias <= 0).float().mean())
    assert health.layers[0].grad_norm == 0.0  # no backward yet
    assert "dead" in health.warning


def test_health_warning_names_the_layer():
    def layer(name, norm):
        return LayerHealth(name, norm, (1.0,), (0.0, 1.0), None)

    assert health_warning([layer("0: Linear", 0.5)]) is None
    assert "vanishing in 2: Linear" in health_warning([layer("0: Linear", 0.5),
                                                      layer("2: Linear", 1e-9)])
    assert "exploding in 0: Linear" in health_warning([layer("0: Linear", 5e3)])
    assert "exploding" in health_warning([layer("0: Linear", float("nan"))])
    dead = LayerHealth("layer 1 (Linear)", 0.5, (1.0,), (0.0, 1.0), 0.85, relu_index=1)
    assert "dead ReLU units (never positive on the probe samples): 85% in layer 2 (ReLU)" \
        in health_warning([dead])
    unnumbered = LayerHealth("fc (Linear)", 0.5, (1.0,), (0.0, 1.0), 0.85)
    assert "85% in the ReLU after fc (Linear)" in health_warning([unnumbered])
    alive = LayerHealth("layer 1 (Linear)", 0.5, (1.0,), (0.0, 1.0), 0.2)
    assert health_warning([alive]) is None


def test_boundary_grid_matches_the_model(tmp_path):
    spec = _spec(epochs=8)
    monitor = BoundaryMonitor(resolution=80, min_interval=0)
    trainer = Trainer(spec, runs=RunStore(tmp_path / "runs"), callbacks=[monitor], threads=1)
    events = list(trainer.events())
    bounds = [e for e in events if isinstance(e, Boundary)]
    assert len(bounds) >= 3
    assert bounds[0].global_step == 0
    last = bounds[-1]
    assert last.probs.shape == (80, 80)
    assert last.probs.min() >= 0.0 and last.probs.max() <= 1.0
    assert not np.allclose(bounds[0].probs, last.probs)  # it learned
    x = trainer.data.train_x.numpy()
    y = trainer.data.train_y.numpy()
    x0, x1, y0, y1 = last.extent
    assert x0 < x[:, 0].min() and x[:, 0].max() < x1
    assert y0 < x[:, 1].min() and x[:, 1].max() < y1
    # row = y, column = x: looking the training points up in the grid gives their labels
    col = np.round((x[:, 0] - x0) / (x1 - x0) * 79).astype(int)
    row = np.round((x[:, 1] - y0) / (y1 - y0) * 79).astype(int)
    grid_accuracy = ((last.probs[row, col] > 0.5) == y).mean()
    assert grid_accuracy > 0.9
    assert isinstance(events[-1], RunFinished) and events[-1].test_accuracy > 0.9


def test_boundary_many_classes_and_rate_limit(tmp_path):
    clock = FrozenClock()
    monitor = BoundaryMonitor(resolution=20, min_interval=1.0, clock=clock)
    events = _run(_spec("blobs", epochs=3), [monitor], tmp_path)
    bounds = [e for e in events if isinstance(e, Boundary)]
    assert len(bounds) == 2  # at the start and after the last epoch: the clock stood still
    assert set(np.unique(bounds[-1].probs)) <= {0.0, 1.0, 2.0, 3.0}


def test_boundary_ignores_other_datasets(tmp_path):
    spec = _spec("sine", model={"layers": [{"type": "Linear", "out": 8}, {"type": "Tanh"},
                                           {"type": "Linear", "out": 1}]})
    monitor = BoundaryMonitor(min_interval=0)
    events = _run(spec, [monitor], tmp_path)
    assert not monitor.active
    assert not [e for e in events if isinstance(e, Boundary)]
    assert isinstance(events[-1], RunFinished)


def test_grid_extent_never_empty():
    assert grid_extent(np.array([[1.0, 2.0], [1.0, 2.0]]), 0.1)[0] < 1.0
    with pytest.raises(ValueError):
        BoundaryMonitor(resolution=1)
