"""The playground's surfaces and trajectories: each equals a direct torch.optim loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.tools.surfaces import PLAYGROUND_OPTIMIZERS, SURFACES, trajectory

DIRECT = {
    "sgd": lambda p, h: torch.optim.SGD([p], **h),
    "momentum": lambda p, h: torch.optim.SGD([p], momentum=0.9, **h),
    "nesterov": lambda p, h: torch.optim.SGD([p], momentum=0.9, nesterov=True, **h),
    "adam": lambda p, h: torch.optim.Adam([p], **h),
    "adamw": lambda p, h: torch.optim.AdamW([p], weight_decay=0.0, **h),
    "rmsprop": lambda p, h: torch.optim.RMSprop([p], **h),
    "adagrad": lambda p, h: torch.optim.Adagrad([p], **h),
}


def direct_loop(fn, start, make, steps):
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make(p)
    points = [p.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        fn(p[0], p[1]).backward()
        opt.step()
        points.append(p.detach().clone())
    return torch.stack(points).numpy()


@pytest.mark.parametrize("name", sorted(PLAYGROUND_OPTIMIZERS))
@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_trajectory_equals_a_direct_torch_optim_loop(surface, name):
    s = SURFACES[surface]
    lr = PLAYGROUND_OPTIMIZERS[name][1]["lr"] / 2
    got = trajectory(s.fn, s.start, name, {"lr": lr}, steps=60)
    want = direct_loop(s.fn, s.start, lambda p: DIRECT[name](p, {"lr": lr}), 60)
    assert not got.diverged
    np.testing.assert_array_equal(got.points, want)
    assert got.losses[0] == pytest.approx(float(s.fn(*map(torch.tensor, s.start))))


def test_momentum_beats_sgd_on_the_ill_conditioned_bowl():
    s = SURFACES["bowl"]
    sgd = trajectory(s.fn, s.start, "sgd", {"lr": 0.01}, steps=200)
    momentum = trajectory(s.fn, s.start, "momentum", {"lr": 0.01}, steps=200)
    assert momentum.losses[-1] < sgd.losses[-1] < sgd.losses[0]


def test_a_diverging_trajectory_stops_and_says_so():
    s = SURFACES["rosenbrock"]
    t = trajectory(s.fn, s.start, "sgd", {"lr": 0.1}, steps=100)
    assert t.diverged and len(t.points) < 101 and np.isfinite(t.points).all()


def test_bad_optimizer_settings_are_refused():
    s = SURFACES["beale"]
    with pytest.raises(ValueError, match="unknown optimizer"):
        trajectory(s.fn, s.start, "lbfgs2", {}, 5)
    with pytest.raises(ValueError, match="adam"):
        trajectory(s.fn, s.start, "adam", {"lr": -1.0}, 5)


def test_surface_grids_cover_their_minima():
    for s in SURFACES.values():
        xs, ys, values = s.grid(50)
        assert values.shape == (50, 50) and np.isfinite(values).all()
        assert values.min() >= s.floor - 1e-9
        for mx, my in s.minima:
            assert xs[0] <= mx <= xs[-1] and ys[0] <= my <= ys[-1]
            assert float(s.fn(torch.tensor(mx), torch.tensor(my))) == pytest.approx(
                s.floor, abs=1e-6)
