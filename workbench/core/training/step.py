"""The training step: forward, loss, backward, clip, update, with metrics summed on the device.

The host never waits on the device inside a step: loss and correct counts accumulate in
device tensors that `take` reads a few times a second.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import torch
from torch import nn

from workbench.core.memory import EVAL_BATCH
from workbench.core.training.optim import CAPTURABLE, set_lr, uses_coupled_l2
from workbench.spec import ExperimentSpec

# (parameters, masks of the same shapes): what the step multiplies after every update
Masked = tuple[list[torch.Tensor], list[torch.Tensor]]


class EagerStep:
    """One optimizer step per call, in plain PyTorch; works on every device and model."""

    kind = "eager"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                 spec: ExperimentSpec, num_classes: int, device: torch.device, *,
                 masked: Masked = ([], [])) -> None:
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
        self.masked_params, self.masks = masked
        self.loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.count = 0
        self._lr: float | None = None
        self._grads_to_none = True
        self.loss_scale = 1.0  # a rank's share of an uneven global batch (distributed runs)

    def _forward(self, x: torch.Tensor, y: torch.Tensor, *,
                 cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        ctx: Any = (torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=cache)
                    if self.autocast else contextlib.nullcontext())
        with ctx:
            out = self.model(x)
            loss = self.loss_fn(out.float(), y)
        return out, loss

    def set_lr(self, lr: float) -> None:
        if lr != self._lr:
            set_lr(self.optimizer, lr)
            self._lr = lr

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        self.set_lr(lr)
        self.optimizer.zero_grad(set_to_none=self._grads_to_none)
        self._update(x, y)

    def _update(self, x: torch.Tensor, y: torch.Tensor, *, cache: bool = True) -> None:
        """Forward, backward, clip, step and metric sums: the part a CUDA graph captures."""
        out, loss = self._gradients(x, y, cache=cache)
        if self.l2_apart > 0:
            with torch.no_grad():  # else each gradient would join the autograd graph
                grads = [p.grad for p in self.params if p.grad is not None]
                torch._foreach_add_(grads, [p for p in self.params if p.grad is not None],
                                    alpha=self.l2_apart)
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.clip)
        self._optimizer_step()
        if self.masks:  # pruned weights stay zero, whatever momentum would make of them
            with torch.no_grad():
                torch._foreach_mul_(self.masked_params, self.masks)
        n = y.shape[0]
        self.loss_sum.add_(loss.detach(), alpha=n)
        if self.classify:
            self.correct.add_((out.detach().argmax(1) == y).sum())
        self.count += n

    def _optimizer_step(self) -> None:
        self.optimizer.step()

    def _gradients(self, x: torch.Tensor, y: torch.Tensor, *,
                   cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward: the gradients in `p.grad`; (outputs, loss)."""
        out, loss = self._forward(x, y, cache=cache)
        total = loss * self.loss_scale if self.loss_scale != 1.0 else loss
        if self.l1 > 0:
            total = total + self.l1 * sum(w.abs().sum() for w in self.weights)
        total.backward()
        return out, loss

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


# One capture at a time in this process: comparisons train variants side by side on threads.
_CAPTURE_LOCK = threading.Lock()


class GraphStep(EagerStep):
    """The whole step (forward, loss, backward, clip, update, metric sums) as one CUDA graph.

    At small batches a GPU is bound by kernel launches; replaying one graph removes them.
    Needs a capturable optimizer (a tensor learning rate). The warm-up steps that capture
    requires are undone, so the run starts from exactly the weights and optimizer state it
    was given. A batch of another size (the last, partial one) runs eagerly.
    """

    kind = "cuda-graph"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                 spec: ExperimentSpec, num_classes: int, device: torch.device, *,
                 batch_size: int, input_shape: tuple[int, ...], masked: Masked = ([], [])) -> None:
        super().__init__(model, optimizer, loss_fn, spec, num_classes, device, masked=masked)
        self._grads_to_none = False  # keep the graph's gradient tensors for eager batches
        self.batch_size = batch_size
        memory = torch.channels_last if (spec.train.channels_last and len(input_shape) == 3) \
            else torch.contiguous_format
        self.static_x = torch.zeros((batch_size, *input_shape), device=device).contiguous(
            memory_format=memory)
        self.static_y = (torch.zeros(batch_size, dtype=torch.long, device=device) if self.classify
                         else torch.zeros(batch_size, 1, device=device))
        self.graph = self._capture()

    def _state_tensors(self) -> list[torch.Tensor]:
        tensors = [*self.model.parameters(), *self.model.buffers()]
        for state in self.optimizer.state.values():
            tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
        return tensors

    def _capture(self) -> torch.cuda.CUDAGraph:
        before = {id(t): t.detach().clone() for t in self._state_tensors()}
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(3):
                    self.optimizer.zero_grad(set_to_none=True)
                    self._update(self.static_x, self.static_y, cache=False)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            for gen in _own_generators(self.model):  # Dropout's: replays advance the stream
                graph.register_generator_state(gen)
            self.optimizer.zero_grad(set_to_none=True)
            # thread_local: another run's syncs on its own thread neither fail nor spoil this
            with _CAPTURE_LOCK, torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self._update(self.static_x, self.static_y, cache=False)
            torch.cuda.synchronize(self.device)
        finally:
            with torch.no_grad():  # undo the warm-up: the state as it was given
                for t in self._state_tensors():
                    if id(t) in before:
                        t.copy_(before[id(t)])
                    else:
                        t.zero_()  # optimizer state the warm-up created: fresh is zero
                self.loss_sum.zero_()
                self.correct.zero_()
            self.count = 0
        return graph

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        if x.shape[0] != self.batch_size:
            super().__call__(x, y, lr)
            return
        self.set_lr(lr)
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        self.graph.replay()
        self.count += self.batch_size


def _own_generators(model: nn.Module) -> list[torch.Generator]:
    """The run's own CUDA generators its layers draw from (`network.RunDropout`'s)."""
    found: dict[int, torch.Generator] = {}
    for m in model.modules():
        gen = getattr(m, "generator", None)
        if isinstance(gen, torch.Generator) and gen.device.type == "cuda":
            found[id(gen)] = gen
    return list(found.values())


def wants_graph(spec: ExperimentSpec, device: torch.device) -> bool:
    """Capture on CUDA when the spec allows it and the optimizer can run inside a graph."""
    return device.type == "cuda" and spec.train.cuda_graph and spec.optim.name in CAPTURABLE


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, transform: Any,
             loss_fn: nn.Module, num_classes: int, *, batch_size: int = EVAL_BATCH,
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
