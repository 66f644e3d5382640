"""Optimizers, learning-rate schedules and losses from the spec.

The schedule is a plain function of (epoch, step) rather than a torch LR scheduler, so the
editor can preview the curve without a model, a resumed run lands on the same value, and a
captured CUDA graph can read the rate from a tensor that is filled in place. Curves (cosine,
exponential, inverse square root) move every step; step decay and plateau once an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from workbench.spec import ExperimentSpec

# Fused kernels exist for these on CUDA and on the CPU (one kernel for the whole update).
_FUSED = {"gd", "sgd", "momentum", "nesterov", "adam", "adamw"}
# These can run inside a captured CUDA graph (no host sync in their step): Adam, AdamW and
# RMSprop through `capturable=True`, SGD through its fused kernel reading a tensor rate.
CAPTURABLE = {"gd", "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"}


def uses_coupled_l2(spec: ExperimentSpec) -> bool:
    """AdamW's weight decay is decoupled, so the L2 penalty is added to its gradients apart."""
    return spec.optim.name == "adamw" and spec.regularization.l2 > 0


def build_optimizer(
    spec: ExperimentSpec,
    params: Iterable[nn.Parameter],
    device: torch.device | None = None,
    *,
    capturable: bool = False,
) -> torch.optim.Optimizer:
    """The optimizer the spec names; L2 (`regularization.l2`) is its coupled weight decay."""
    o = spec.optim
    l2 = spec.regularization.l2
    kw: dict[str, Any] = {"lr": o.lr}
    if device is not None and device.type in ("cuda", "cpu") and o.name in _FUSED:
        kw["fused"] = True
    name = o.name
    if capturable:
        if name not in CAPTURABLE:
            raise ValueError(f"{name} cannot run inside a CUDA graph")
        if name in ("adam", "adamw", "rmsprop"):
            kw["capturable"] = True
        kw["lr"] = torch.tensor(o.lr, device=device)
    params = list(params)
    if name in ("gd", "sgd"):
        return torch.optim.SGD(params, weight_decay=o.weight_decay + l2, **kw)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, momentum=o.momentum, nesterov=name == "nesterov",
                               weight_decay=o.weight_decay + l2, **kw)
    if name == "adam":
        return torch.optim.Adam(params, betas=o.betas, eps=o.eps,
                                weight_decay=o.weight_decay + l2, **kw)
    if name == "adamw":
        return torch.optim.AdamW(params, betas=o.betas, eps=o.eps,
                                 weight_decay=o.weight_decay, **kw)
    if name == "rmsprop":
        kw.pop("fused", None)
        return torch.optim.RMSprop(params, alpha=o.alpha, eps=o.eps,
                                   weight_decay=o.weight_decay + l2, **kw)
    if name == "adagrad":
        return torch.optim.Adagrad(params, eps=o.eps, weight_decay=o.weight_decay + l2, **kw)
    raise ValueError(f"unknown optimizer {name!r}")


class FusedAdamUpdate:
    """`optimizer.step()` of a fused Adam or AdamW on the CPU, without torch.optim's per-step
    Python (grouping the tensors, checking them, a profiler record): the same two kernels with
    the same arguments, so the same bits (tests/test_linear_step.py), in about a third less time
    at MLP sizes. The state stays in the optimizer, so checkpoints and resume are unchanged; a
    step before the state exists (the first) goes through `optimizer.step()`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.group = optimizer.param_groups[0]
        self.params = list(self.group["params"])

    @staticmethod
    def applies(optimizer: torch.optim.Optimizer) -> bool:
        groups = optimizer.param_groups
        if not isinstance(optimizer, torch.optim.Adam) or len(groups) != 1:
            return False
        g = groups[0]
        return (bool(g["fused"]) and not g["capturable"] and not g["amsgrad"]
                and not g["differentiable"] and not isinstance(g["lr"], torch.Tensor)
                and all(p.device.type == "cpu" and p.dtype == torch.float32
                        for p in g["params"]))

    def __call__(self) -> None:
        state = self.optimizer.state
        params = self.params
        grads = [p.grad for p in params]
        if len(state) != len(params) or any(g is None for g in grads):
            self.optimizer.step()
            return
        g = self.group
        steps = [state[p]["step"] for p in params]
        torch._foreach_add_(steps, 1)
        fused = torch._fused_adamw_ if g["decoupled_weight_decay"] else torch._fused_adam_
        beta1, beta2 = g["betas"]
        with torch.no_grad():
            fused(params, grads, [state[p]["exp_avg"] for p in params],
                  [state[p]["exp_avg_sq"] for p in params], [], steps, amsgrad=False,
                  lr=g["lr"], beta1=beta1, beta2=beta2, weight_decay=g["weight_decay"],
                  eps=g["eps"], maximize=g["maximize"], grad_scale=None, found_inf=None)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's rate; a tensor rate (captured graphs) is filled in place."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


class LRSchedule:
    """The learning rate at each step: a linear per-step warm-up, then the schedule.

    Step decay and reduce-on-plateau hold their rate for whole epochs (as their names say);
    the curves (cosine, exponential, inverse square root) are functions of the
    fractional epoch and move every step, starting at the full rate where warm-up ends, so a
    cosine over the epochs after warm-up reaches `min_lr` at the run's end. The preview
    (`lr_curve`), the trainer and the exported script all read this one function.
    """

    def __init__(self, spec: ExperimentSpec, steps_per_epoch: int) -> None:
        self.s = spec.schedule
        self.lr0 = spec.optim.lr
        self.epochs = spec.train.epochs
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.plateau_factor = 1.0
        self._best = math.inf
        self._bad_epochs = 0

    def base(self, epoch: int, step: int = 0) -> float:
        """The schedule's rate at `step` of `epoch` (0-based), before warm-up's ramp."""
        s, lr0 = self.s, self.lr0
        if s.name == "constant":
            return lr0
        if s.name == "step":
            return lr0 * s.gamma ** (epoch // s.step_size)
        if s.name == "plateau":
            return lr0 * self.plateau_factor
        # the curves: t epochs since warm-up ended (0 during it), fractional
        t = max(0.0, epoch + step / self.steps_per_epoch - s.warmup_epochs)
        if s.name == "exponential":
            return lr0 * s.gamma**t
        if s.name == "inv_sqrt":
            return lr0 / math.sqrt(1.0 + s.decay * t)
        if s.name == "cosine":
            span = max(self.epochs - s.warmup_epochs, 1 / self.steps_per_epoch)
            return s.min_lr + (lr0 - s.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(t / span,
                                                                                   1.0)))
        raise ValueError(f"unknown schedule {s.name!r}")

    def lr(self, epoch: int, step: int) -> float:
        """The rate for `step` (0-based, within `epoch`): during warm-up a linear ramp to the
        schedule's rate, never above it (a fractional last warm-up step reaches it exactly)."""
        warm_steps = self.s.warmup_epochs * self.steps_per_epoch
        g = epoch * self.steps_per_epoch + step
        base = self.base(epoch, step)
        if g < warm_steps:
            return base * min(1.0, (g + 1) / warm_steps)
        return base

    def on_epoch_end(self, val_loss: float) -> None:
        """Reduce-on-plateau's memory: cut the rate after `patience` epochs without progress."""
        if self.s.name != "plateau" or not math.isfinite(val_loss):
            return
        if val_loss < self._best * (1 - 1e-4):
            self._best = val_loss
            self._bad_epochs = 0
        else:
            self._bad_epochs += 1
            if self._bad_epochs > self.s.patience:
                self.plateau_factor *= self.s.factor
                self._bad_epochs = 0

    def state_dict(self) -> dict[str, float]:
        return {"plateau_factor": self.plateau_factor, "best": self._best,
                "bad_epochs": self._bad_epochs}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.plateau_factor = float(state["plateau_factor"])
        self._best = float(state["best"])
        self._bad_epochs = int(state["bad_epochs"])


def lr_curve(spec: ExperimentSpec, steps_per_epoch: int) -> tuple[list[float], list[float]]:
    """The planned rate against (fractional) epoch, for previews; plateau shown as flat."""
    sched = LRSchedule(spec, steps_per_epoch)
    n = sched.steps_per_epoch
    stride = max(1, (n * spec.train.epochs) // 2000)
    xs: list[float] = []
    ys: list[float] = []
    for epoch in range(spec.train.epochs):
        for step in range(0, n, stride):
            xs.append(epoch + step / n)
            ys.append(sched.lr(epoch, step))
    xs.append(float(spec.train.epochs))
    ys.append(ys[-1] if ys else spec.optim.lr)
    return xs, ys


def loss_function(num_classes: int) -> nn.Module:
    """Cross-entropy for classes, mean squared error for regression (num_classes 0)."""
    return nn.CrossEntropyLoss() if num_classes > 0 else nn.MSELoss()
