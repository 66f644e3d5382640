"""The yardsticks Workbench is measured against: training loops written by hand in plain PyTorch.

Self-contained on purpose (torch only; tests/test_benchmarks.py checks that nothing from
Workbench is imported), so a ratio against them measures Workbench against PyTorch, not against
itself. Each loop is a generator: it trains one epoch (then evaluates the validation set, as
any script does) per `next()`, and returns the test accuracy when done, so a driver can run
several loops interleaved and time each epoch from outside.

- `expert_loop`: what an expert writes: the normalized dataset resident on the device,
  `randperm` batches, the fused optimizer, loss and accuracy summed on the device; on CUDA the
  whole step (forward, loss, backward, update, sums) captured in one CUDA graph.
- `dataloader_loop`: the loop most tutorials teach: TensorDataset + DataLoader(shuffle) and
  `.to(device)` per batch, the default optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Loop = Generator[None, None, float]  # one epoch per next(); returns the test accuracy


@dataclass(frozen=True)
class Data:
    """Normalized float inputs and class targets on the CPU."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def normalize(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 (N,C,H,W) images to float, normalized once, as a script does up front."""
    return (images.float() / 255 - mean) / std


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, 10))


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


MODELS: dict[str, Callable[[], nn.Sequential]] = {"mlp": mlp, "cnn": cnn}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()
    model.train()
    return int(correct) / max(1, len(x))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def expert_loop(make: Callable[[], nn.Module], data: Data, *, epochs: int, batch: int,
                lr: float, seed: int, device: torch.device) -> Loop:
    torch.manual_seed(seed)
    model = make().to(device)
    x, y = data.train_x.to(device), data.train_y.to(device)
    val_x, val_y = data.val_x.to(device), data.val_y.to(device)
    cuda = device.type == "cuda"
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        opt.step()
        loss_sum.add_(loss.detach())
        correct.add_((out.detach().argmax(1) == yb).sum())

    if cuda:
        opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(lr, device=device),
                               fused=True, capturable=True)
        static_x = torch.zeros((batch, *x.shape[1:]), device=device)
        static_y = torch.zeros(batch, dtype=torch.long, device=device)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up before capture, as torch.cuda.graph requires
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                step(static_x, static_y)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            step(static_x, static_y)
        with torch.no_grad():  # start from the initial weights and a fresh optimizer
            model.load_state_dict(start)
            for state in opt.state.values():
                for value in state.values():
                    value.zero_()
        loss_sum.zero_()
        correct.zero_()
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    n = len(x)
    for _ in range(epochs):
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            if cuda and len(idx) == batch:
                torch.index_select(x, 0, idx, out=static_x)
                torch.index_select(y, 0, idx, out=static_y)
                graph.replay()
                continue
            if not cuda:
                opt.zero_grad(set_to_none=True)
            step(x[idx], y[idx])
        accuracy(model, val_x, val_y)
        _sync(device)
        yield
    return accuracy(model, data.test_x.to(device), data.test_y.to(device))


def dataloader_loop(make: Callable[[], nn.Module], data: Data, *, epochs: int, batch: int,
                    lr: float, seed: int, device: torch.device) -> Loop:
    torch.manual_seed(seed)
    model = make().to(device)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data.train_x, data.train_y), batch_size=batch,
        shuffle=True, generator=torch.Generator().manual_seed(seed + 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        accuracy(model, data.val_x.to(device), data.val_y.to(device))
        _sync(device)
        yield
    return accuracy(model, data.test_x.to(device), data.test_y.to(device))


__all__ = ["MODELS", "Data", "Loop", "accuracy", "dataloader_loop", "expert_loop", "normalize"]
