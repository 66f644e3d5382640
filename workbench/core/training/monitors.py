"""Looking inside a network while it trains: callbacks that emit `Health` and `Boundary` events.

Both are rate-limited (by steps and by wall time) so that a long run does not flood the GUI,
and both measure on fixed inputs in eval mode without touching the trainer's random streams:
a run with a monitor attached trains bit for bit like one without.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from workbench.core.training.callbacks import Callback, TrainerView
from workbench.core.training.events import Boundary, Health, LayerHealth
from workbench.spec.layers import layer_name

if TYPE_CHECKING:
    from workbench.core.data import DeviceBatches
    from workbench.core.training.events import Progress

VANISHING = 1e-7
EXPLODING = 1e3
DEAD_WARNING = 0.5  # half a layer's units never firing is already a network that lost them
Clock = Callable[[], float]


def probe_inputs(batches: DeviceBatches, n: int) -> torch.Tensor:
    """The first `n` samples normalized as `DeviceBatches.batch` does, without augmentation,
    so no random number is drawn from the training generator."""
    x = batches.x[:n].to(torch.float32)
    if batches.image:
        x = x / 255.0
    x = (x - batches.mean) / batches.std
    if batches.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _weighted(module: nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() > 1


class HealthMonitor(Callback):
    """Per-layer gradient norm and weight histogram, and the share of dead ReLU units.

    Sent at most `per_epoch` times an epoch and at most once every `min_interval` seconds
    (plus once at the end of the last epoch). Dead units are measured on a probe batch of up
    to `probe_size` validation samples (train samples when there is no validation split):
    a unit is dead when it is never positive on the probe.
    """

    def __init__(self, *, per_epoch: int = 4, min_interval: float = 0.5, bins: int = 30,
                 probe_size: int = 256, clock: Clock = time.monotonic) -> None:
        if per_epoch < 1 or bins < 1 or probe_size < 1:
            raise ValueError("per_epoch, bins and probe_size must be at least 1")
        self.per_epoch = per_epoch
        self.min_interval = min_interval
        self.bins = bins
        self.probe_size = probe_size
        self.clock = clock
        self.layers: list[WatchedLayer] = []
        self.sent = 0
        self._last_step = -math.inf
        self._last_time = -math.inf
        self._probe: torch.Tensor | None = None

    def on_run_start(self, trainer: TrainerView) -> None:
        self.layers = _layers_with_activation(trainer.model)
        batches = trainer.val_batches if trainer.val_batches.num_samples else trainer.train_batches
        self._probe = probe_inputs(batches, self.probe_size)
        self._every = max(1, trainer.steps_per_epoch // self.per_epoch)
        self._last_step = -math.inf
        self._last_time = -math.inf

    def on_progress(self, trainer: TrainerView, progress: Progress) -> None:
        now = self.clock()
        if (progress.global_step - self._last_step < self._every
                or now - self._last_time < self.min_interval):
            return
        self._last_step = progress.global_step
        self._last_time = now
        epoch = progress.epoch + progress.step / max(1, progress.steps_per_epoch)
        self._send(trainer, progress.global_step, epoch)

    def on_epoch_end(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        last = record["epoch"] == trainer.spec.train.epochs
        if last and record["global_step"] != self._last_step:
            self._last_step = record["global_step"]
            self._send(trainer, record["global_step"], record["epoch"])

    def _send(self, trainer: TrainerView, global_step: int, epoch: float) -> None:
        self.sent += 1
        trainer.emit(self.measure(trainer.model, global_step, epoch))

    def measure(self, model: nn.Module, global_step: int, epoch: float) -> Health:
        """One `Health` event for the model's current weights and latest gradients."""
        dead = self._dead_fractions(model)
        layers = []
        for name, module, _, relu_index in self.layers:
            grads = [p.grad for p in module.parameters() if p.grad is not None]
            grad_norm = (float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
                         if grads else 0.0)
            weight = module.weight
            assert isinstance(weight, torch.Tensor)  # `_weighted` chose layers that have one
            weights = weight.detach().float().cpu().numpy().ravel()
            finite = weights[np.isfinite(weights)]
            counts, edges = np.histogram(finite if finite.size else np.zeros(1), bins=self.bins)
            layers.append(LayerHealth(name, grad_norm, tuple(float(c) for c in counts),
                                      tuple(float(e) for e in edges), dead.get(name),
                                      relu_index if name in dead else None))
        return Health(global_step, float(epoch), tuple(layers), health_warning(layers))

    @torch.no_grad()
    def _dead_fractions(self, model: nn.Module) -> dict[str, float]:
        """Share of units never positive after each ReLU, keyed by the layer feeding it."""
        watched = [(name, act) for name, _, act, _ in self.layers if act is not None]
        if not watched or self._probe is None or self._probe.shape[0] == 0:
            return {}
        alive: dict[str, torch.Tensor] = {}
        hooks = []
        for name, act in watched:
            def hook(_m: nn.Module, _i: Any, out: torch.Tensor, name: str = name) -> None:
                positive = out > 0
                if positive.dim() > 2:  # a channel is one unit: alive anywhere in the image
                    positive = positive.flatten(2).any(dim=2)
                alive[name] = positive.any(dim=0)
            hooks.append(act.register_forward_hook(hook))
        was_training = model.training
        model.eval()
        try:
            model(self._probe)
        finally:
            model.train(was_training)
            for h in hooks:
                h.remove()
        return {name: 1.0 - float(a.float().mean()) for name, a in alive.items()}


WatchedLayer = tuple[str, nn.Module, nn.Module | None, int | None]


def _layers_with_activation(model: nn.Module) -> list[WatchedLayer]:
    """(display name, weighted layer, the ReLU its output reaches or None, that ReLU's index
    in the stack) in model order.

    A ReLU counts for the nearest weighted layer before it, through shape-keeping layers
    (BatchNorm, Dropout) but not through another weighted layer or activation.
    """
    found: list[WatchedLayer] = []
    open_index: int | None = None
    for name, module in model.named_children():
        if _weighted(module):
            label = (layer_name(int(name), type(module).__name__) if name.isdigit()
                     else f"{name} ({type(module).__name__})")
            found.append((label, module, None, None))
            open_index = len(found) - 1
        elif isinstance(module, nn.ReLU) and open_index is not None:
            label, layer, _, _ = found[open_index]
            found[open_index] = (label, layer, module, int(name) if name.isdigit() else None)
            open_index = None
        elif not isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.Dropout | nn.Dropout2d):
            open_index = None
    return found


def dead_units_of(health: LayerHealth) -> str:
    """The layer whose dead units `health.dead_fraction` counts, in a sentence: the ReLU
    (`layer 3 (ReLU)`), or the ReLU after a layer the editor does not number."""
    if health.relu_index is not None:
        return layer_name(health.relu_index, "ReLU")
    return f"the ReLU after {health.name}"


def health_warning(layers: list[LayerHealth]) -> str | None:
    """A sentence naming what looks wrong, with what to try; None when all looks fine."""
    messages = []
    exploding = [h for h in layers if not math.isfinite(h.grad_norm) or h.grad_norm > EXPLODING]
    vanishing = [h for h in layers if h.grad_norm < VANISHING]
    dead = [h for h in layers if h.dead_fraction is not None and h.dead_fraction >= DEAD_WARNING]
    if exploding:
        names = ", ".join(h.name for h in exploding)
        messages.append(f"gradients are exploding in {names} (norm > {EXPLODING:g}): lower the "
                        "learning rate or clip gradients")
    if vanishing:
        names = ", ".join(h.name for h in vanishing)
        cure = ("the dead units below pass none back" if dead else
                "try ReLU activations, BatchNorm, or a higher learning rate")
        messages.append(f"gradients are vanishing in {names} (norm < {VANISHING:g}): {cure}")
    if dead:
        names = ", ".join(f"{h.dead_fraction:.0%} in {dead_units_of(h)}" for h in dead
                          if h.dead_fraction is not None)
        messages.append(f"dead ReLU units (never positive on the probe samples): {names}; "
                        "lower the learning rate or use LeakyReLU")
    return "; ".join(messages) or None


class BoundaryMonitor(Callback):
    """The model's prediction on a `resolution` x `resolution` grid over a 2-D dataset.

    The grid covers the training points with a `margin` share of their span on each side, in
    raw input units; the inputs are normalized as the trainer's batches are. `probs[row, col]`
    is at y = row, x = col (row 0 at the bottom, y0): the probability of class 1 for two
    classes, the predicted class for more. Sent at most once every `min_interval` seconds,
    at the start, and after the last epoch. Does nothing for other datasets.
    """

    def __init__(self, *, resolution: int = 80, min_interval: float = 0.25,
                 margin: float = 0.1, clock: Clock = time.monotonic) -> None:
        if resolution < 2:
            raise ValueError("resolution must be at least 2")
        self.resolution = resolution
        self.min_interval = min_interval
        self.margin = margin
        self.clock = clock
        self.active = False
        self.sent = 0
        self._grid: torch.Tensor | None = None
        self._last_time = -math.inf
        self.extent = (0.0, 1.0, 0.0, 1.0)

    def on_run_start(self, trainer: TrainerView) -> None:
        data = trainer.data
        self.active = (data is not None and tuple(data.info.input_shape) == (2,)
                       and trainer.num_classes >= 2)
        if data is None or not self.active:
            return
        self.extent = grid_extent(data.train_x.float().numpy(), self.margin)
        x0, x1, y0, y1 = self.extent
        xs = torch.linspace(x0, x1, self.resolution)
        ys = torch.linspace(y0, y1, self.resolution)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        raw = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(trainer.device)
        batches = trainer.train_batches
        self._grid = (raw - batches.mean) / batches.std
        self._last_time = -math.inf
        self._send(trainer, 0)

    def on_progress(self, trainer: TrainerView, progress: Progress) -> None:
        if self.active and self.clock() - self._last_time >= self.min_interval:
            self._send(trainer, progress.global_step)

    def on_epoch_end(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        if self.active and record["epoch"] == trainer.spec.train.epochs:
            self._send(trainer, record["global_step"])

    @torch.no_grad()
    def predict(self, model: nn.Module) -> np.ndarray:
        """The (resolution, resolution) grid of class-1 probability or predicted class."""
        assert self._grid is not None
        was_training = model.training
        model.eval()
        try:
            out = model(self._grid).float()
        finally:
            model.train(was_training)
        two = out.shape[1] == 2
        values = torch.softmax(out, dim=1)[:, 1] if two else out.argmax(dim=1).float()
        return values.reshape(self.resolution, self.resolution).cpu().numpy()

    def _send(self, trainer: TrainerView, global_step: int) -> None:
        self._last_time = self.clock()
        self.sent += 1
        trainer.emit(Boundary(global_step, self.extent, self.predict(trainer.model)))


def grid_extent(points: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) around the points, widened by `margin` of the span (never empty)."""
    lo = points.min(axis=0)
    hi = points.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo = lo - margin * span
    hi = hi + margin * span
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


__all__ = ["BoundaryMonitor", "HealthMonitor", "grid_extent", "health_warning", "probe_inputs"]


def app_monitors() -> list[Callback]:
    """The monitors the app's training panel attaches to every run (benchmarks measure the
    same set): health at most once a second on a small probe, and the decision boundary."""
    return [HealthMonitor(min_interval=1.0, probe_size=128), BoundaryMonitor()]
