"""Where one training step of the MNIST MLP (batch 32, one CPU thread) spends its time.

    python benchmarks/step_profile.py [--root /work/shared/datasets/mnist] [--batch 32]
        [--blocks 300] [--json]

Each part is timed on the CPU clock over many short blocks of steps, and the fastest block
is kept: on a machine shared with other work, a block that nobody interrupted is the cost of
the work itself (medians are printed too); the parts take turns block by block. The parts, in
the order a Workbench step runs them: the batch (gather, uint8 to float, normalize), forward
and backward, the optimizer (through `optimizer.step()`, and as the step updates), the metric
sums; then the whole Workbench step (`make_step` as the trainer builds it, with its batch), the
autograd step an expert writes (as benchmarks/hand_loops.py's CPU loop, with its batch), and
the step's matrix products alone (the bound).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hand_loops import mlp, normalize  # noqa: E402
from train_speed import make_spec, shape_rate  # noqa: E402

from workbench.core.data import DeviceBatches, load_splits  # noqa: E402
from workbench.core.model import build_model  # noqa: E402
from workbench.core.training.optim import build_optimizer, loss_function  # noqa: E402
from workbench.core.training.setup import make_step  # noqa: E402

CPU = torch.device("cpu")


def best_us(parts: dict[str, Callable[[int], object]], blocks: int,
            per_block: int = 8) -> dict[str, tuple[float, float]]:
    """(fastest, median) microseconds per call of each part over `blocks` blocks of
    `per_block` calls; the parts take turns block by block, so drift hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in parts}
    for work in parts.values():
        for i in range(50):
            work(i)
    for b in range(blocks):
        for name, work in parts.items():
            start = time.process_time()
            for i in range(per_block):
                work(b * per_block + i)
            times[name].append((time.process_time() - start) / per_block * 1e6)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("MNIST_ROOT",
                                                         "/work/shared/datasets/mnist"))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    spec = make_spec("mlp", args.root, 1, args.batch, "cpu")
    splits = load_splits(spec.data, 0)
    bs = args.batch
    batches = DeviceBatches(splits.train_x, splits.train_y, mean=splits.mean, std=splits.std,
                            batch_size=bs, device=CPU, shuffle=True,
                            generator=torch.Generator().manual_seed(1), image=True)
    n = batches.num_samples
    perm = torch.randperm(n)
    steps = n // bs

    def idx(i: int) -> torch.Tensor:
        j = i % steps
        return perm[j * bs:(j + 1) * bs]

    torch.manual_seed(0)
    model = build_model(spec.model.layers, splits.info.input_shape)
    optimizer = build_optimizer(spec, model.parameters(), CPU)
    loss_fn = loss_function(10)
    step, _ = make_step(model, optimizer, loss_fn, spec, 10, CPU, batch_size=bs,
                        input_shape=splits.info.input_shape, graph=False)
    xb, yb = batches.batch(idx(0))
    out = model(xb).detach()
    loss = loss_fn(out, yb).detach()

    def workbench_step(i: int) -> None:
        x, y = batches.batch(idx(i))
        step(x, y, 1e-3)

    parts: dict[str, Callable[[int], object]] = {
        "batch (gather, to float, normalize)": lambda i: batches.batch(idx(i)),
        "forward + backward": lambda i: step._gradients(xb, yb),
        "optimizer.step() (fused Adam)": lambda i: optimizer.step(),
        "the step's optimizer update": lambda i: step._optimizer_step(),
        "metric sums": lambda i: (step.loss_sum.add_(loss, alpha=bs),
                                  step.correct.add_((out.argmax(1) == yb).sum())),
        f"Workbench step ({step.kind}) with its batch": workbench_step,
    }
    x_all = normalize(splits.train_x, float(splits.mean[0]), float(splits.std[0]))
    torch.manual_seed(0)
    hand = mlp()
    hand_opt = torch.optim.Adam(hand.parameters(), lr=1e-3, fused=True)

    def expert_step(i: int) -> None:
        j = idx(i)
        x, y = x_all[j], splits.train_y[j]
        hand_opt.zero_grad(set_to_none=True)
        F.cross_entropy(hand(x), y).backward()
        hand_opt.step()

    parts["expert step (autograd) with its batch"] = expert_step
    rows = best_us(parts, args.blocks)
    rate = shape_rate(mlp(), bs, CPU, time.process_time)
    assert rate is not None
    flops = 6 * 784 * 256 * bs + 6 * (256 * 128 + 128 * 10) * bs - 2 * 784 * 256 * bs
    rows["the step's matrix products alone (bound)"] = (flops / rate / 1e3,) * 2
    for name, (fast, median) in rows.items():
        print(f"{name:45s} {fast:8.1f} us  (median {median:8.1f})")
    if args.json:
        print(json.dumps({k: {"best_us": round(v[0], 1), "median_us": round(v[1], 1)}
                          for k, v in rows.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
