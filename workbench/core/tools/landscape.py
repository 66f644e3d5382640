"""The loss along a 2-D slice of weight space, and training paths projected onto it.

Following Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets"): around a centre
(a variant's final weights) take two random directions, each rescaled filter by filter to the
norm of the weights it perturbs (biases and other 1-D parameters are left still), and evaluate
the loss on a grid of centre + a*d1 + b*d2 over a subset of the training data. Paths (weights
after every epoch) are projected onto the slice by least squares. Random directions in a
space of many dimensions are nearly orthogonal to any path, so paths look short on them;
`directions="pca"` spans the slice by the paths' two principal directions instead (Li et al.,
section 7), on which the paths show their true shape.

Slow for big models: run it off the GUI thread; `progress(done, total)` reports grid rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from workbench.core.data import DeviceBatches, Splits
from workbench.core.model import build_to_load
from workbench.core.training.optim import loss_function
from workbench.spec import ExperimentSpec


@dataclass(frozen=True)
class Landscape:
    alphas: np.ndarray  # (R,) coordinates along d1
    betas: np.ndarray  # (R,) coordinates along d2
    losses: np.ndarray  # (R, R): losses[j, i] at (alphas[i], betas[j])
    paths: dict[str, np.ndarray]  # label -> (T, 2) projected coordinates
    center_label: str
    directions: str  # "random" or "pca"
    center_loss: float


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """A random direction over the model's parameters, as one flat vector (Li et al. 2018).

    Each filter (a row of a weight, an output channel of a kernel) gets the norm of the
    matching filter of the weights; 1-D parameters (biases, norms) get zero.
    """
    parts = []
    for p in model.parameters():
        w = p.detach()
        if w.dim() <= 1:
            parts.append(torch.zeros(w.numel(), dtype=torch.float32))
            continue
        d = torch.randn(w.shape, generator=generator, dtype=torch.float32)
        w_rows = w.reshape(w.shape[0], -1).float().cpu()
        d_rows = d.reshape(d.shape[0], -1)
        scale = w_rows.norm(dim=1, keepdim=True) / (d_rows.norm(dim=1, keepdim=True) + 1e-10)
        parts.append((d_rows * scale).reshape(-1))
    return torch.cat(parts)


def pca_directions(center: torch.Tensor,
                   trails: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The two principal directions of every path's offsets from the centre (unit vectors)."""
    rows = [t.float() - center for t in trails.values() if len(t)]
    offsets = torch.cat(rows) if rows else torch.zeros(0, center.numel())
    if offsets.shape[0] < 2:
        raise ValueError("PCA directions need paths with at least two points")
    # The small Gram matrix (N, N) instead of an SVD of (N, P): N is a few dozen points.
    gram = offsets @ offsets.T
    values, vectors = torch.linalg.eigh(gram.double())
    order = torch.argsort(values, descending=True)[:2]
    dirs = []
    for k in order:
        v = offsets.T @ vectors[:, k].float()
        dirs.append(v / (v.norm() + 1e-12))
    if len(dirs) < 2 or float(values[order[1]]) <= 1e-12 * max(1.0, float(values[order[0]])):
        raise ValueError("the paths span fewer than two directions; use random directions")
    return dirs[0], dirs[1]


def project(points: torch.Tensor, center: torch.Tensor, d1: torch.Tensor,
            d2: torch.Tensor) -> np.ndarray:
    """Least-squares coordinates (a, b) of each point - centre on span(d1, d2): (T, 2)."""
    basis = torch.stack([d1, d2], dim=1).double()  # (P, 2)
    offsets = (points.double() - center.double()).T  # (P, T)
    gram = basis.T @ basis
    coords = torch.linalg.solve(gram, basis.T @ offsets)  # (2, T)
    return coords.T.numpy()


@torch.no_grad()
def loss_landscape(spec: ExperimentSpec, data: Splits, center_state: dict[str, torch.Tensor],
                   trails: Mapping[str, torch.Tensor], *, center_label: str = "",
                   directions: str = "random", resolution: int = 21, span: float | None = None,
                   samples: int = 512, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None,
                   cancel: threading.Event | None = None) -> Landscape:
    """The loss on a (resolution x resolution) grid around `center_state`, and the paths.

    `trails` maps a label to (T, P) flattened parameters (WeightTrail's order: the model's
    parameters in order). `span` is the half-width of the grid in direction units; None
    covers the paths with a margin (at least 1: one filter norm, for random directions).
    """
    if directions not in ("random", "pca"):
        raise ValueError(f"directions must be 'random' or 'pca', got {directions!r}")
    if resolution < 3:
        raise ValueError(f"resolution must be at least 3, got {resolution}")
    info = data.info
    model = build_to_load(spec.model.layers, info.input_shape)
    model.load_state_dict(center_state)
    model.eval()
    params = list(model.parameters())
    center = parameters_to_vector(params).detach().float().clone()
    for label, trail in trails.items():
        if trail.shape[-1] != center.numel():
            raise ValueError(f"{label}: its path has {trail.shape[-1]} parameters, the "
                             f"model {center.numel()}; it is a different network")
    if directions == "pca":
        d1, d2 = pca_directions(center, trails)
    else:
        gen = torch.Generator().manual_seed(seed)
        d1 = filter_normalized_direction(model, gen)
        d2 = filter_normalized_direction(model, gen)
    paths = {label: project(trail, center, d1, d2) for label, trail in trails.items()}
    if span is None:
        reach = max((float(np.abs(p).max()) for p in paths.values() if len(p)), default=0.0)
        span = max(reach * 1.25, 1.0 if directions == "random" else 1e-3)
    n = min(samples, len(data.train_x))
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.train_x), generator=gen)[:n]
    batches = DeviceBatches(data.train_x[idx], data.train_y[idx], mean=data.mean, std=data.std,
                            batch_size=max(1, n), device=torch.device("cpu"), shuffle=False,
                            generator=None, image=info.is_image)
    xb, yb = batches.batch(torch.arange(n))
    loss_fn = loss_function(info.num_classes)
    alphas = np.linspace(-span, span, resolution)
    betas = np.linspace(-span, span, resolution)
    losses = np.zeros((resolution, resolution))
    for j, b in enumerate(betas):
        if cancel is not None and cancel.is_set():
            raise InterruptedError("cancelled")
        for i, a in enumerate(alphas):
            vector_to_parameters(center + float(a) * d1 + float(b) * d2, params)
            losses[j, i] = float(loss_fn(model(xb).float(), yb))
        if progress is not None:
            progress(j + 1, resolution)
    vector_to_parameters(center, params)
    center_loss = float(loss_fn(model(xb).float(), yb))
    return Landscape(alphas, betas, losses, paths, center_label, directions, center_loss)


def landscape_for_runs(spec: ExperimentSpec, data: Splits, center_run: str,
                       run_trails: Mapping[str, str], **options: Any) -> Landscape:
    """`loss_landscape` from stored runs: the centre's model.pt and every run's trail.pt."""
    from pathlib import Path

    from workbench.core.store.runs import Run
    from workbench.core.tools.compare import load_trail

    center_state = Run(Path(center_run)).load_model_state()
    trails = {}
    for label, run_dir in run_trails.items():
        trail = load_trail(run_dir)
        if trail is not None:
            trails[label] = trail[1]
    return loss_landscape(spec, data, center_state, trails, **options)


__all__ = [
    "Landscape",
    "filter_normalized_direction",
    "landscape_for_runs",
    "loss_landscape",
    "pca_directions",
    "project",
]
