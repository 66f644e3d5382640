"""The training step of a plain stack of Linear layers and activations, written out by hand.

For a multi-layer perceptron at small batches on a CPU, autograd's bookkeeping (a graph node
per operation, its saved tensors, a fresh gradient tensor per parameter, every step) costs
about half as much again as the matrix products themselves. This step calls the kernels
autograd would call, in the same order and with the same arguments, so its gradients, and
with them whole runs, are bit for bit those of `EagerStep` (tests/test_linear_step.py checks
every supported layer); it only builds no graph and writes each gradient into the same tensor
every step. Everything after the gradients (decoupled L2, clipping, the optimizer, pruning
masks, the metric sums) is `EagerStep`'s own code, but a fused Adam or AdamW is stepped by
`FusedAdamUpdate`, the same kernels without torch.optim's per-step Python.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.core.network import RunDropout
from workbench.core.training.optim import FusedAdamUpdate
from workbench.core.training.step import EagerStep, Masked
from workbench.spec import ExperimentSpec

aten = torch.ops.aten
MEAN = 1  # ATen's reduction code for "mean", what the losses' default reduction passes
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU)
SUPPORTED = (nn.Flatten, nn.Linear, nn.Dropout, RunDropout, *ACTIVATIONS)


def supports(model: nn.Module, loss_fn: nn.Module, spec: ExperimentSpec,
             device: torch.device) -> bool:
    """Whether `LinearStackStep` can train this model: a CPU run in fp32 of an nn.Sequential
    of Flatten, Linear, Dropout and simple activations, with the default cross-entropy or
    mean squared error, without an L1 penalty (whose gradient autograd forms in its own way);
    not a distributed run, whose model is wrapped."""
    if device.type != "cpu" or spec.train.precision != "fp32" or spec.regularization.l1 > 0:
        return False
    if type(model) is not nn.Sequential or not any(isinstance(m, nn.Linear) for m in model):
        return False
    plain_ce = (type(loss_fn) is nn.CrossEntropyLoss and loss_fn.weight is None
                and loss_fn.label_smoothing == 0 and loss_fn.ignore_index == -100)
    plain_mse = type(loss_fn) is nn.MSELoss
    if not (plain_ce or plain_mse) or loss_fn.reduction != "mean":
        return False
    return all(type(m) in SUPPORTED and not getattr(m, "inplace", False) for m in model) \
        and all(m.p < 1 for m in model if isinstance(m, nn.Dropout))


class LinearStackStep(EagerStep):
    """`EagerStep` for a stack `supports` accepts, with its forward and backward by hand."""

    kind = "linear-stack"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                 spec: ExperimentSpec, num_classes: int, device: torch.device, *,
                 masked: Masked = ([], [])) -> None:
        super().__init__(model, optimizer, loss_fn, spec, num_classes, device, masked=masked)
        self.layers = list(model.children())  # `supports` made sure it is an nn.Sequential
        self.first = next(i for i, m in enumerate(self.layers) if isinstance(m, nn.Linear))
        for p in self.params:  # overwritten in place by every step: never zeroed or reallocated
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.one = torch.ones((), device=device)  # what `loss.backward()` seeds the graph with
        self.update = (FusedAdamUpdate(optimizer) if FusedAdamUpdate.applies(optimizer)
                       else optimizer.step)

    def _optimizer_step(self) -> None:
        self.update()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        self.set_lr(lr)
        self._update(x, y)

    @torch.no_grad()
    def _gradients(self, x: torch.Tensor, y: torch.Tensor, *,
                   cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        saved: list[Any] = []  # what each layer's backward reads
        a = x
        for layer in self.layers:
            a = self._layer_forward(layer, a, saved)
        out = a
        loss, g = self._loss_and_grad(out, y)
        for i in range(len(self.layers) - 1, self.first - 1, -1):
            g = self._layer_backward(self.layers[i], g, saved[i], need_input=i > self.first)
        return out, loss

    def _layer_forward(self, layer: nn.Module, a: torch.Tensor,
                       saved: list[Any]) -> torch.Tensor:
        if isinstance(layer, nn.Linear):  # F.linear: addmm with the bias, mm without
            saved.append(a)
            if layer.bias is None:
                return torch.mm(a, layer.weight.t())
            return torch.addmm(layer.bias, a, layer.weight.t())
        if isinstance(layer, nn.Flatten):
            saved.append(a.shape)
            return a.flatten(layer.start_dim, layer.end_dim)
        if isinstance(layer, nn.Dropout):  # the CPU's dropout: a Bernoulli mask, then a product
            if not layer.training or layer.p == 0:
                saved.append(None)
                return a
            keep = 1 - layer.p  # from the run's generator (RunDropout), or torch's global one
            noise = torch.empty_like(a).bernoulli_(keep, generator=getattr(layer, "generator",
                                                                           None)).div_(keep)
            saved.append(noise)
            return a * noise
        if isinstance(layer, nn.ReLU | nn.Tanh | nn.Sigmoid):  # their backward reads the result
            fn = torch.relu if isinstance(layer, nn.ReLU) else \
                torch.tanh if isinstance(layer, nn.Tanh) else torch.sigmoid
            a = fn(a)
            saved.append(a)
            return a
        saved.append(a)  # LeakyReLU and GELU: their backward reads the input
        if isinstance(layer, nn.LeakyReLU):
            return F.leaky_relu(a, layer.negative_slope)
        assert isinstance(layer, nn.GELU)
        return F.gelu(a, approximate=layer.approximate)

    def _layer_backward(self, layer: nn.Module, g: torch.Tensor, s: Any, *,
                        need_input: bool) -> torch.Tensor:
        """Write the layer's parameter gradients; return the gradient of its input."""
        if isinstance(layer, nn.Linear):  # mat2 = weight.t() is column-major: (g^T a)^T^T
            torch.mm(g.t(), s, out=layer.weight.grad)
            if layer.bias is not None:
                torch.sum(g, 0, out=layer.bias.grad)
            return g.mm(layer.weight) if need_input else g
        if isinstance(layer, nn.Flatten):
            return g.reshape(s)
        if isinstance(layer, nn.Dropout):
            return g if s is None else g * s
        if isinstance(layer, nn.ReLU):
            return aten.threshold_backward(g, s, 0)
        if isinstance(layer, nn.Tanh):
            return aten.tanh_backward(g, s)
        if isinstance(layer, nn.Sigmoid):
            return aten.sigmoid_backward(g, s)
        if isinstance(layer, nn.LeakyReLU):
            return aten.leaky_relu_backward(g, s, layer.negative_slope, False)
        assert isinstance(layer, nn.GELU)
        return aten.gelu_backward(g, s, approximate=layer.approximate)

    def _loss_and_grad(self, out: torch.Tensor,
                       y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean loss and its gradient with respect to `out`, as autograd forms them."""
        if not self.classify:
            return F.mse_loss(out, y), aten.mse_loss_backward(self.one, out, y, MEAN)
        logp = torch.log_softmax(out, 1)
        loss, total_weight = aten.nll_loss_forward(logp, y, None, MEAN, -100)
        g = aten.nll_loss_backward(self.one, logp, y, None, MEAN, -100, total_weight)
        return loss, aten._log_softmax_backward_data(g, logp, 1, out.dtype)
