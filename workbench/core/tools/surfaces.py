"""Classic 2-D test surfaces and optimizer trajectories on them, from the real `torch.optim`.

The playground shows how optimizers move on surfaces a person can see whole: a narrow curved
valley (Rosenbrock), flat plateaus with sharp walls (Beale), several minima (Himmelblau), a
saddle, and an ill-conditioned bowl. Each trajectory is a plain `torch.optim` loop on a
2-element parameter, so what the person sees is what PyTorch does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Surface:
    name: str
    title: str
    fn: Fn  # f(x, y) on tensors, elementwise
    box: tuple[float, float, float, float]  # x0, x1, y0, y1: the recommended view
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    log_scale: bool  # colour by log(f - floor + 1e-3): the surface is >= floor everywhere
    floor: float = 0.0
    description: str = ""

    def grid(self, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xs, ys, values (len(ys), len(xs))) over the view box, for a contour plot."""
        x0, x1, y0, y1 = self.box
        xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
        ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        with torch.no_grad():
            values = self.fn(gx, gy)
        return xs.numpy(), ys.numpy(), values.numpy()


def rosenbrock(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2
            + (2.625 - x + x * y**3) ** 2)


def himmelblau(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def saddle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x**2 - y**2 + 0.25 * y**4


def bowl(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * x**2 + 25.0 * y**2


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface("rosenbrock", "Rosenbrock", rosenbrock, (-2.0, 2.0, -1.0, 3.0), (-1.5, 2.5),
                ((1.0, 1.0),), True,
                description="a long curved valley; the minimum at (1, 1) is easy to find "
                            "and slow to reach"),
        Surface("beale", "Beale", beale, (-4.5, 4.5, -4.5, 4.5), (-1.0, 3.0),
                ((3.0, 0.5),), True,
                description="flat plateaus and steep walls; the minimum is at (3, 0.5)"),
        Surface("himmelblau", "Himmelblau", himmelblau, (-5.0, 5.0, -5.0, 5.0), (0.0, -0.5),
                ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186),
                 (3.584428, -1.848126)), True,
                description="four equal minima: which one an optimizer finds depends on "
                            "where it starts"),
        Surface("saddle", "Saddle", saddle, (-2.0, 2.0, -2.5, 2.5), (-1.8, 0.01),
                ((0.0, math.sqrt(2.0)), (0.0, -math.sqrt(2.0))), False, floor=-1.0,
                description="x^2 - y^2 + y^4/4: at the origin the gradient vanishes but it is "
                            "no minimum; starting near y = 0, plain SGD lingers there"),
        Surface("bowl", "Ill-conditioned bowl", bowl, (-4.0, 4.0, -2.0, 2.0), (-3.5, 1.5),
                ((0.0, 0.0),), True,
                description="0.5 x^2 + 25 y^2: curvature 50 times larger across than along; "
                            "SGD zig-zags, momentum and Adam go straighter"),
    )
}

# The optimizers the playground offers, their torch classes, and settings that work on the
# surfaces above (their scales are far from a network's, so the rates differ from training).
PLAYGROUND_OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {"lr": 5e-4}),
    "momentum": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.9, "nesterov": True}),
    "adam": (torch.optim.Adam, {"lr": 0.05}),
    "adamw": (torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.0}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.01}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.5}),
}


def make_optimizer(name: str, params: list[torch.Tensor],
                   hyperparams: Mapping[str, Any] | None = None) -> torch.optim.Optimizer:
    """The torch optimizer `name` with the playground defaults, overridden by `hyperparams`."""
    if name not in PLAYGROUND_OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(PLAYGROUND_OPTIMIZERS)})")
    cls, defaults = PLAYGROUND_OPTIMIZERS[name]
    kwargs = {**defaults, **(hyperparams or {})}
    try:
        return cls(params, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class Trajectory:
    points: np.ndarray  # (n, 2): the start, then the position after each step
    losses: np.ndarray  # (n,): f at each point
    diverged: bool  # stopped early because the position or loss became non-finite


def trajectory(fn: Fn, start: tuple[float, float], optimizer_name: str,
               hyperparams: Mapping[str, Any] | None = None, steps: int = 200,
               escape: float = 1e6) -> Trajectory:
    """Run `steps` steps of the real torch optimizer from `start` on f(x, y).

    Stops early (diverged) when the position or the loss is non-finite or beyond `escape`.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    p = torch.tensor([float(start[0]), float(start[1])], dtype=torch.float64,
                     requires_grad=True)
    opt = make_optimizer(optimizer_name, [p], hyperparams)
    points = [p.detach().clone()]
    with torch.no_grad():
        losses = [float(fn(p[0], p[1]))]
    diverged = False
    for _ in range(steps):
        opt.zero_grad()
        loss = fn(p[0], p[1])
        loss.backward()
        opt.step()
        with torch.no_grad():
            value = float(fn(p[0], p[1]))
        position = p.detach().clone()
        if not (math.isfinite(value) and torch.isfinite(position).all()
                and float(position.abs().max()) < escape):
            diverged = True
            break
        points.append(position)
        losses.append(value)
    return Trajectory(torch.stack(points).numpy(), np.asarray(losses), diverged)


__all__ = [
    "PLAYGROUND_OPTIMIZERS",
    "SURFACES",
    "Surface",
    "Trajectory",
    "make_optimizer",
    "trajectory",
]
