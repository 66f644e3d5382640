"""The training step: forward, loss, backward, clip, update, with metrics summed on the device.

The host never waits on the device inside a step: loss and correct counts accumulate in
device tensors that `take` reads a few times a second.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from workbench.core.optim import set_lr, uses_coupled_l2
from workbench.spec import ExperimentSpec


class EagerStep:
    """One optimizer step per call, in plain PyTorch; works on every device and model."""

    kind = "eager"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                 spec: ExperimentSpec, num_classes: int, device: torch.device) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.classify = num_classes > 0
        self.device = device
        reg = spec.regularization
        self.l1 = reg.l1
        self.l2_apart = spec.regularization.l2 if uses_coupled_l2(spec) else 0.0
        self.clip = reg.grad_clip
        self.autocast = spec.train.precision == "bf16"
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.weights = [p for p in self.params if p.dim() > 1]
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.count = 0

    def _forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctx: Any = (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.autocast
                    else contextlib.nullcontext())
        with ctx:
            out = self.model(x)
            loss = self.loss_fn(out.float(), y)
        return out, loss

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        set_lr(self.optimizer, lr)
        out, loss = self._forward(x, y)
        total = loss
        if self.l1 > 0:
            total = total + self.l1 * sum(w.abs().sum() for w in self.weights)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.l2_apart > 0:
            grads = [p.grad for p in self.params if p.grad is not None]
            torch._foreach_add_(grads, [p for p in self.params if p.grad is not None],
                                alpha=self.l2_apart)
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.clip)
        self.optimizer.step()
        n = y.shape[0]
        self.loss_sum += loss.detach() * n
        if self.classify:
            self.correct += (out.detach().argmax(1) == y).sum()
        self.count += n

    def grad_norm(self) -> float:
        """The gradients' global L2 norm after the latest step (one host sync)."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return 0.0
        return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))

    def take(self) -> tuple[float, int, int]:
        """Read and reset the sums: (loss sum, correct, samples)."""
        loss_sum, correct, count = float(self.loss_sum), int(self.correct), self.count
        self.loss_sum.zero_()
        self.correct.zero_()
        self.count = 0
        return loss_sum, correct, count


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, transform: Any,
             loss_fn: nn.Module, num_classes: int, *, batch_size: int = 1024,
             want_predictions: bool = False) -> dict[str, Any]:
    """Mean loss and accuracy over (x, y) in eval mode; sums stay on the device until the end.

    `transform(idx)` turns indices into a normalized batch (the same one training uses).
    """
    was_training = model.training
    model.eval()
    n = x.shape[0]
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    preds = []
    try:
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(n, start + batch_size), device=x.device)
            xb, yb = transform(idx)
            out = model(xb).float()
            loss_sum += loss_fn(out, yb) * yb.shape[0]
            if num_classes > 0:
                p = out.argmax(1)
                correct += (p == yb).sum()
                if want_predictions:
                    preds.append(p)
    finally:
        model.train(was_training)
    result: dict[str, Any] = {"loss": float(loss_sum) / max(1, n)}
    result["accuracy"] = int(correct) / max(1, n) if num_classes > 0 else None
    if want_predictions and preds:
        result["predictions"] = torch.cat(preds).cpu()
    return result
