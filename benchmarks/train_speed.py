"""Workbench's trainer against two hand-written PyTorch loops, on the same data, in one process.

    python benchmarks/train_speed.py [--root ../shared/datasets/mnist] [--models mlp,cnn]
                                     [--epochs 3] [--device auto] [--train-subset N] [--json]

Contenders run interleaved epoch by epoch (one epoch of each in turn), so the drift of a shared
or throttled machine hits them alike and the ratio compares epochs trained side by side in time:
- `dataloader`: the typical script: TensorDataset + DataLoader(shuffle) + `.to(device)` per batch.
- `tuned`: the whole dataset resident on the device, `randperm` batches, fused optimizer where
  available; on CUDA the whole step captured in one CUDA graph.
- `workbench`: `Trainer(spec).events()`, the same code the app and the CLI run.
Reported: seconds per epoch after the first (the first pays for warm-up and capture), samples
per second, the ratio workbench / tuned, and the test accuracy of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench import spec as specmod
from workbench.core.data import DeviceBatches, Splits, load_splits
from workbench.core.model import build_model
from workbench.core.training.events import EpochEnded, RunFailed, RunFinished, RunStarted
from workbench.core.training.loop import Trainer, resolve_device

ROOT = Path(__file__).resolve().parents[1]

MLP = [{"type": "Flatten"}, {"type": "Linear", "out": 256}, {"type": "ReLU"},
       {"type": "Linear", "out": 128}, {"type": "ReLU"}, {"type": "Linear", "out": 10}]
CNN = [{"type": "Conv2d", "out": 16, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
       {"type": "Conv2d", "out": 32, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
       {"type": "Flatten"}, {"type": "Linear", "out": 10}]
MODELS = {"mlp": (MLP, 32), "cnn": (CNN, 128)}


def make_spec(model: str, root: str, epochs: int, device: str) -> specmod.ExperimentSpec:
    layers, batch = MODELS[model]
    return specmod.from_dict({
        "name": f"bench-{model}",
        "data": {"name": "mnist", "root": root, "val_fraction": 0.1},
        "model": {"layers": layers},
        "optim": {"name": "adam", "lr": 0.001},
        "train": {"epochs": epochs, "batch_size": batch, "seed": 0, "device": device},
    })


def subset(splits: Splits, n: int | None) -> Splits:
    if not n:
        return splits
    return Splits(splits.info, splits.train_x[:n], splits.train_y[:n], splits.val_x,
                  splits.val_y, splits.test_x, splits.test_y, splits.mean, splits.std)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def test_accuracy(model: nn.Module, splits: Splits, device: torch.device) -> float:
    batches = DeviceBatches(splits.test_x, splits.test_y, mean=splits.mean, std=splits.std,
                            batch_size=1024, device=device, shuffle=False, generator=None,
                            image=True)
    model.eval()
    correct = torch.zeros((), device=device, dtype=torch.long)
    with torch.no_grad():
        for xb, yb in batches.epoch():
            correct += (model(xb).argmax(1) == yb).sum()
    model.train()
    return int(correct) / splits.test_x.shape[0]


def fresh_model(spec: specmod.ExperimentSpec, splits: Splits,
                device: torch.device) -> nn.Module:
    torch.manual_seed(spec.train.seed)
    return build_model(spec.model.layers, splits.info.input_shape).to(device)


Epochs = Iterator[float]  # yields seconds per epoch, then returns the test accuracy


def run_dataloader(spec: specmod.ExperimentSpec, splits: Splits,
                   device: torch.device) -> Epochs:
    """The loop most tutorials teach."""
    model = fresh_model(spec, splits, device)
    mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
    std = torch.tensor(splits.std).view(1, -1, 1, 1)
    x = (splits.train_x.float() / 255 - mean) / std
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, splits.train_y), batch_size=spec.train.batch_size,
        shuffle=True, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=spec.optim.lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(spec.train.epochs):
        sync(device)
        start = time.perf_counter()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        sync(device)
        yield time.perf_counter() - start
    return test_accuracy(model, splits, device)


def run_tuned(spec: specmod.ExperimentSpec, splits: Splits, device: torch.device) -> Epochs:
    """What an expert writes: resident data, randperm batches; on CUDA one captured step."""
    model = fresh_model(spec, splits, device)
    bs = spec.train.batch_size
    batches = DeviceBatches(splits.train_x, splits.train_y, mean=splits.mean, std=splits.std,
                            batch_size=bs, device=device, shuffle=True,
                            generator=torch.Generator(device=device).manual_seed(1), image=True)
    loss_fn = nn.CrossEntropyLoss()
    n = batches.x.shape[0]
    cuda = device.type == "cuda"
    if cuda:
        opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(spec.optim.lr, device=device),
                               fused=True, capturable=True)
        static_idx = torch.arange(bs, device=device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                xb, yb = batches.batch(static_idx)
                loss_fn(model(xb), yb).backward()
                opt.step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            xb, yb = batches.batch(static_idx)
            loss_fn(model(xb), yb).backward()
            opt.step()
    else:
        opt = torch.optim.Adam(model.parameters(), lr=spec.optim.lr, fused=True)
    gen = batches.generator
    for _ in range(spec.train.epochs):
        sync(device)
        start = time.perf_counter()
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            if cuda and idx.shape[0] == bs:
                static_idx.copy_(idx)
                graph.replay()
                continue
            xb, yb = batches.batch(idx)
            opt.zero_grad(set_to_none=not cuda)
            loss_fn(model(xb), yb).backward()
            opt.step()
        sync(device)
        yield time.perf_counter() - start
    return test_accuracy(model, splits, device)


def run_workbench(spec: specmod.ExperimentSpec, splits: Splits, device: torch.device,
                  kinds: dict[str, str]) -> Epochs:
    """The trainer as the app runs it; `kinds` records which step it chose."""
    trainer = Trainer(spec, data=splits, store=False)
    for event in trainer.events():
        if isinstance(event, RunStarted):
            kinds[spec.name] = event.step_kind
        elif isinstance(event, EpochEnded):
            yield event.epoch_seconds
        elif isinstance(event, RunFinished):
            return event.test_accuracy or 0.0
        elif isinstance(event, RunFailed):
            raise RuntimeError(f"workbench run failed: {event.reason}")
    raise RuntimeError("the trainer ended without a result")


def interleave(contenders: dict[str, Epochs]) -> dict[str, tuple[list[float], float]]:
    """One epoch of each contender in turn until all are done: (epoch seconds, test acc)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    accuracy: dict[str, float] = {}
    live = dict(contenders)
    while live:
        for name, gen in list(live.items()):
            try:
                times[name].append(next(gen))
            except StopIteration as done:
                accuracy[name] = done.value
                del live[name]
    return {name: (times[name], accuracy[name]) for name in contenders}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on the first N training images (quick CPU runs)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    results: dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                               "threads": torch.get_num_threads(), "models": {}}
    for name in args.models.split(","):
        spec = make_spec(name, args.root, args.epochs, args.device)
        splits = subset(load_splits(spec.data, spec.train.seed), args.train_subset)
        n_train = splits.train_x.shape[0]
        per: dict[str, dict[str, list[float]]] = {}
        kinds = results.setdefault("workbench_step", {})
        for repeat in range(args.repeats):
            runs = {"dataloader": run_dataloader(spec, splits, device),  # generators: lazy
                    "tuned": run_tuned(spec, splits, device),
                    "workbench": run_workbench(spec, splits, device, kinds)}
            order = list(runs)[repeat % 3:] + list(runs)[:repeat % 3]
            done = interleave({c: runs[c] for c in order})
            for contender, (times, acc) in done.items():
                entry = per.setdefault(contender, {"epoch_s": [], "acc": []})
                entry["epoch_s"] += times[1:] if len(times) > 1 else times
                entry["acc"].append(acc)
                print(f"{name} {contender:<10} epochs {[round(t, 3) for t in times]} "
                      f"test acc {acc:.4f}", file=sys.stderr)
        table = {}
        for contender, entry in per.items():
            sec = statistics.median(entry["epoch_s"])
            table[contender] = {"epoch_s": round(sec, 4),
                                "samples_per_s": round(n_train / sec),
                                "test_accuracy": round(statistics.mean(entry["acc"]), 4)}
        table["ratio_workbench_over_tuned"] = round(
            table["workbench"]["epoch_s"] / table["tuned"]["epoch_s"], 3)
        pairs = zip(per["workbench"]["epoch_s"], per["tuned"]["epoch_s"], strict=True)
        table["ratio_paired_median"] = round(statistics.median(w / t for w, t in pairs), 3)
        table["speedup_over_dataloader"] = round(
            table["dataloader"]["epoch_s"] / table["workbench"]["epoch_s"], 2)
        results["models"][name] = {"train_samples": n_train, **table}
    if not args.json:
        for name, table in results["models"].items():
            print(f"\n{name} ({table['train_samples']} training samples, {results['device']})")
            for contender in ("dataloader", "tuned", "workbench"):
                row = table[contender]
                print(f"  {contender:<10} {row['epoch_s']:>8.3f} s/epoch "
                      f"{row['samples_per_s']:>9,} samples/s  test acc {row['test_accuracy']:.4f}")
            print(f"  workbench / tuned = {table['ratio_workbench_over_tuned']:.3f} "
                  f"(median of epoch pairs {table['ratio_paired_median']:.3f}); "
                  f"{table['speedup_over_dataloader']:.2f}x faster than the DataLoader script")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
