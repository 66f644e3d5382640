"""Workbench's trainer against hand-written PyTorch loops, on the same data, in one process.

    python benchmarks/train_speed.py [--root /work/shared/datasets/mnist] [--models mlp,cnn]
        [--epochs 3] [--repeats 3] [--device auto] [--threads 1] [--train-subset N]
        [--contenders dataloader,expert,workbench] [--keras] [--out results.json]

Contenders (benchmarks/hand_loops.py holds the yardsticks, plain torch only):
- `dataloader`: the typical script: TensorDataset + DataLoader(shuffle) + `.to(device)`.
- `expert`: resident normalized data, `randperm` batches, fused Adam, metrics summed on the
  device; on CUDA the whole step captured in one CUDA graph.
- `workbench`: `Trainer(spec).events()`, as `workbench train` runs it.
- `workbench-app`: the app's worker core path: a stored run with the app's monitors
  (`app_monitors`), its events drained as the worker drains them.
- `keras` (with --keras, when Keras 3 is installed): Keras on the torch backend.

They run interleaved, one epoch of each in turn (the order rotates with each repeat), so the
drift of a shared machine hits them alike; an epoch is the training pass plus the validation
pass every script makes. The first epoch of each repeat pays for warm-up and is left out.
On CUDA every contender trains a conv net with the backend switches Workbench sets for one
(cuDNN's autotuner, TF32), so the loops differ only in how they are written.
Each epoch is timed from outside on the wall clock and on the process's CPU clock; with one
thread on a CPU the CPU clock leaves out the time other processes had the core (a busy
machine's shared caches still slow the work down), so it is the clock the ratios use there
(`--clock` overrides). Ratios are medians of epochs
trained side by side in time.

The physical limit: the matrix products (and convolutions) of an epoch, counted by
`torch.utils.flop_counter`, divided by the machine's float32 GEMM rate measured in the same
run, single-threaded when the run is, both for a 1024x1024 product (`gemm_peak`) and for the
MLP's own products alone at its batch shapes (`shape_rate`). `bound_s` is the time no loop
can beat: the training products at `shape_rate`, the validation pass at the peak. Each
contender's `of_peak` is the GEMM rate it achieved over `gemm_peak`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hand_loops import (  # noqa: E402
    MODELS,
    Data,
    Loop,
    dataloader_loop,
    expert_loop,
    normalize,
)

from workbench import spec as specmod  # noqa: E402
from workbench.core.data import Splits, load_splits  # noqa: E402
from workbench.core.store.runs import RunStore  # noqa: E402
from workbench.core.training.events import (  # noqa: E402
    EpochEnded,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.training.loop import Trainer, resolve_device  # noqa: E402
from workbench.core.training.monitors import app_monitors  # noqa: E402
from workbench.core.training.process import backends_for  # noqa: E402

DEFAULT_ROOT = os.environ.get("MNIST_ROOT", "/work/shared/datasets/mnist")
SPEC_LAYERS = {
    "mlp": [{"type": "Flatten"}, {"type": "Linear", "out": 256}, {"type": "ReLU"},
            {"type": "Linear", "out": 128}, {"type": "ReLU"}, {"type": "Linear", "out": 10}],
    "cnn": [{"type": "Conv2d", "out": 16, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
            {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
            {"type": "Conv2d", "out": 32, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
            {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
            {"type": "Flatten"}, {"type": "Linear", "out": 10}],
}
DEFAULT_BATCH = {"mlp": 32, "cnn": 128}
LR = 0.001
SEED = 0


def make_spec(model: str, root: str, epochs: int, batch: int,
              device: str) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": f"bench-{model}-b{batch}",
        "data": {"name": "mnist", "root": root, "val_fraction": 0.1},
        "model": {"layers": SPEC_LAYERS[model]},
        "optim": {"name": "adam", "lr": LR},
        "train": {"epochs": epochs, "batch_size": batch, "seed": SEED, "device": device},
    })


def subset(splits: Splits, n: int | None) -> Splits:
    if not n:
        return splits
    return Splits(splits.info, splits.train_x[:n], splits.train_y[:n], splits.val_x[:n // 9],
                  splits.val_y[:n // 9], splits.test_x, splits.test_y, splits.mean, splits.std)


def hand_data(splits: Splits) -> Data:
    mean, std = float(splits.mean[0]), float(splits.std[0])
    return Data(normalize(splits.train_x, mean, std), splits.train_y,
                normalize(splits.val_x, mean, std), splits.val_y,
                normalize(splits.test_x, mean, std), splits.test_y)


# -- contenders ----------------------------------------------------------------------------
def workbench_loop(spec: specmod.ExperimentSpec, splits: Splits, *, threads: int | None,
                   app: bool, kinds: dict[str, str]) -> Loop:
    """The trainer headless (`app=False`), or as the app's worker runs it: a stored run, the
    app's monitors, every event drained in turn."""
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        trainer = Trainer(spec, data=splits, runs=RunStore(Path(tmp)), store=app,
                          callbacks=app_monitors() if app else (), threads=threads)
        for event in trainer.events():
            if isinstance(event, RunStarted):
                kinds["workbench-app" if app else "workbench"] = event.step_kind
            elif isinstance(event, EpochEnded):
                yield
            elif isinstance(event, RunFinished):
                return event.test_accuracy or 0.0
            elif isinstance(event, RunFailed):
                raise RuntimeError(f"workbench run failed: {event.reason}")
    raise RuntimeError("the trainer ended without a result")


def keras_loop(model: str, data: Data, *, epochs: int, batch: int, lr: float, seed: int,
               device: torch.device) -> Loop:
    """Keras 3 on its torch backend, one `fit` epoch (with validation) per step."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"Keras runs on {keras.backend.backend()}, not torch")
    keras.utils.set_random_seed(seed)
    fmt = {"data_format": "channels_first"}
    if model == "mlp":
        layers = [keras.layers.Flatten(**fmt), keras.layers.Dense(256, activation="relu"),
                  keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)]
    else:
        layers = [keras.layers.Conv2D(16, 3, padding="same", **fmt),
                  keras.layers.BatchNormalization(axis=1), keras.layers.ReLU(),
                  keras.layers.MaxPooling2D(2, **fmt),
                  keras.layers.Conv2D(32, 3, padding="same", **fmt),
                  keras.layers.BatchNormalization(axis=1), keras.layers.ReLU(),
                  keras.layers.MaxPooling2D(2, **fmt), keras.layers.Flatten(**fmt),
                  keras.layers.Dense(10)]
    net = keras.Sequential([keras.Input(tuple(data.train_x.shape[1:])), *layers])
    net.compile(optimizer=keras.optimizers.Adam(lr),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    x, y = data.train_x.numpy(), data.train_y.numpy()
    val = (data.val_x.numpy(), data.val_y.numpy())
    for _ in range(epochs):
        net.fit(x, y, batch_size=batch, epochs=1, shuffle=True, verbose=0, validation_data=val)
        yield
    return float(net.evaluate(data.test_x.numpy(), data.test_y.numpy(), verbose=0)[1])


# -- the physical limit --------------------------------------------------------------------
def epoch_flops(model_name: str, data: Data, batch: int) -> tuple[float, float]:
    """Matrix-product and convolution FLOPs of one epoch: (every training step's forward and
    backward, the validation forward pass). Autograd skips the input's gradient, and so does
    the count; counted on the CPU at one batch and scaled."""
    torch.manual_seed(0)
    model = MODELS[model_name]()
    x, y = data.train_x[:batch], data.train_y[:batch]
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    step = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(x)
    forward = counter.get_total_flops()
    return step * len(data.train_x) / batch, forward * len(data.val_x) / batch


def _best_rate(run: Callable[[], None], flops: float, sync: Callable[[], None],
               clock: Callable[[], float], reps: int) -> float:
    """GFLOP/s of the best of several timed blocks of `reps` calls."""
    for _ in range(3):
        run()
    sync()
    best = float("inf")
    for _ in range(7):
        start = clock()
        for _ in range(reps):
            run()
        sync()
        best = min(best, (clock() - start) / reps)
    return flops / best / 1e9


def gemm_peak(device: torch.device, clock: Callable[[], float]) -> float:
    """GFLOP/s of a large float32 matrix product (1024 on a CPU, 8192 on a GPU)."""
    n = 8192 if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, device=device) for _ in range(2))
    c = torch.empty(n, n, device=device)
    return _best_rate(lambda: torch.mm(a, b, out=c), 2 * n**3, lambda: _sync(device), clock,
                      reps=3 if device.type == "cpu" else 20)


def shape_rate(model: nn.Module, batch: int, device: torch.device,
               clock: Callable[[], float]) -> float | None:
    """GFLOP/s of a Linear stack's own training products at `batch`, replayed alone: the
    forward addmm of each layer, its weight gradient and (but the first) its input gradient."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return None
    ops: list[Callable[[], Any]] = []
    flops = 0
    for i, layer in enumerate(linears):
        w = layer.weight.detach().to(device)
        b = layer.bias.detach().to(device)
        a = torch.randn(batch, w.shape[1], device=device)
        g = torch.randn(batch, w.shape[0], device=device)
        out, dw = torch.empty(batch, w.shape[0], device=device), torch.empty_like(w)
        ops += [lambda b=b, a=a, w=w, out=out: torch.addmm(b, a, w.t(), out=out),
                lambda g=g, a=a, dw=dw: torch.mm(g.t(), a, out=dw)]
        flops += 4 * w.numel() * batch
        if i > 0:
            da = torch.empty_like(a)
            ops.append(lambda g=g, w=w, da=da: torch.mm(g, w, out=da))
            flops += 2 * w.numel() * batch

    def run() -> None:
        for op in ops:
            op()
    return _best_rate(run, flops, lambda: _sync(device), clock,
                      reps=200 if device.type == "cpu" else 2000)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- driving -------------------------------------------------------------------------------
def interleave(contenders: dict[str, Loop]) -> dict[str, dict[str, Any]]:
    """One epoch of each contender in turn until all are done; each epoch timed from outside
    on the wall clock and on the process's CPU clock."""
    out: dict[str, dict[str, Any]] = {n: {"wall": [], "cpu": []} for n in contenders}
    live = dict(contenders)
    while live:
        for name, loop in list(live.items()):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                next(loop)
            except StopIteration as done:
                out[name]["accuracy"] = done.value
                del live[name]
                continue
            out[name]["wall"].append(time.perf_counter() - wall)
            out[name]["cpu"].append(time.process_time() - cpu)
    return out


def paired(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def bench_model(name: str, batch: int, args: argparse.Namespace, device: torch.device,
                clock_name: str) -> dict[str, Any]:
    spec = make_spec(name, args.root, args.epochs, batch, args.device)
    splits = subset(load_splits(spec.data, SEED), args.train_subset)
    data = hand_data(splits)
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    train_flops, val_flops = epoch_flops(name, data, batch)
    flops = train_flops + val_flops
    kinds: dict[str, str] = {}
    loops: dict[str, Callable[[], Loop]] = {
        "dataloader": lambda: dataloader_loop(MODELS[name], data, epochs=args.epochs,
                                              batch=batch, lr=LR, seed=SEED, device=device),
        "expert": lambda: expert_loop(MODELS[name], data, epochs=args.epochs, batch=batch,
                                      lr=LR, seed=SEED, device=device),
        "workbench": lambda: workbench_loop(spec, splits, threads=args.threads, app=False,
                                            kinds=kinds),
        "workbench-app": lambda: workbench_loop(spec, splits, threads=args.threads, app=True,
                                                kinds=kinds),
        "keras": lambda: keras_loop(name, data, epochs=args.epochs, batch=batch, lr=LR,
                                    seed=SEED, device=device),
    }
    chosen = [c for c in args.contenders.split(",") if c]
    if args.keras:
        chosen.append("keras")
    unknown = sorted(set(chosen) - set(loops))
    if unknown:
        raise SystemExit(f"--contenders: unknown {unknown[0]!r} (known: {', '.join(loops)})")
    peaks = [gemm_peak(device, clock)]
    rate = shape_rate(MODELS[name](), batch, device, clock)
    per: dict[str, dict[str, list[float]]] = {c: {"wall": [], "cpu": [], "acc": []}
                                               for c in chosen}
    for repeat in range(args.repeats):
        order = chosen[repeat % len(chosen):] + chosen[:repeat % len(chosen)]
        with backends_for(MODELS[name](), device):  # every contender: Workbench's switches
            done = interleave({c: loops[c]() for c in order})
        for c, result in done.items():
            for clock_key in ("wall", "cpu"):
                times = result[clock_key]
                per[c][clock_key] += times[1:] if len(times) > 1 else times
            per[c]["acc"].append(result["accuracy"])
            print(f"{name} b{batch} {c:<13} wall {[round(t, 3) for t in result['wall']]} "
                  f"cpu {[round(t, 3) for t in result['cpu']]} acc {result['accuracy']:.4f}",
                  file=sys.stderr, flush=True)
    peaks.append(gemm_peak(device, clock))
    peak = max(peaks + ([rate] if rate else []))
    bound = train_flops / rate / 1e9 + val_flops / peak / 1e9 if rate else None
    n_train = len(data.train_x)
    table: dict[str, Any] = {
        "batch": batch, "train_samples": n_train, "val_samples": len(data.val_x),
        "gflop_per_epoch": round(flops / 1e9, 2), "clock": clock_name,
        "gemm_peak_gflops": round(peak, 1), "gemm_square_gflops": [round(p, 1) for p in peaks],
        "shape_rate_gflops": round(rate, 1) if rate else None,
        "bound_s": round(bound, 4) if bound else None,
        "step_kinds": kinds, "contenders": {},
    }
    for c, entry in per.items():
        sec = statistics.median(entry[clock_name])
        row = {"epoch_s": round(sec, 4),
               "epoch_wall_s": round(statistics.median(entry["wall"]), 4),
               "epoch_cpu_s": round(statistics.median(entry["cpu"]), 4),
               "samples_per_s": round(n_train / sec), "test_accuracy":
               round(statistics.mean(entry["acc"]), 4),
               "of_peak": round(flops / sec / 1e9 / peak, 3)}
        if bound:
            row["x_bound"] = round(sec / bound, 3)
        table["contenders"][c] = row
    ratios = {}
    for c in chosen:
        if c != "expert" and "expert" in per:
            ratios[f"{c}/expert"] = round(paired(per[c][clock_name], per["expert"][clock_name]), 3)
    if "dataloader" in per and "workbench" in per:
        ratios["dataloader/workbench"] = round(
            paired(per["dataloader"][clock_name], per["workbench"][clock_name]), 3)
    if "workbench-app" in per and "workbench" in per:
        ratios["workbench-app/workbench"] = round(
            paired(per["workbench-app"][clock_name], per["workbench"][clock_name]), 3)
    table["paired_ratios"] = ratios
    return table


def print_table(name: str, table: dict[str, Any], device: str) -> None:
    print(f"\n{name} batch {table['batch']} on {device}: {table['train_samples']:,} training + "
          f"{table['val_samples']:,} validation images, {table['gflop_per_epoch']} GFLOP an "
          f"epoch; clock: {table['clock']}; GEMM peak {table['gemm_peak_gflops']} GFLOP/s"
          + (f"; the MLP's own products alone {table['shape_rate_gflops']} GFLOP/s, "
             f"{table['bound_s']} s an epoch" if table["bound_s"] else ""))
    for c, row in table["contenders"].items():
        bound = f"  {row['x_bound']:.2f}x the bound" if "x_bound" in row else ""
        print(f"  {c:<14} {row['epoch_s']:>8.3f} s/epoch (wall {row['epoch_wall_s']:.3f}, "
              f"cpu {row['epoch_cpu_s']:.3f})  {row['samples_per_s']:>9,} samples/s  "
              f"test acc {row['test_accuracy']:.4f}  {100 * row['of_peak']:.0f}% of peak{bound}")
    for key, value in table["paired_ratios"].items():
        print(f"  {key} = {value:.3f} (median of epochs side by side)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="folder of the MNIST files (default: $MNIST_ROOT or %(default)s)")
    parser.add_argument("--models", default="mlp,cnn",
                        help="mlp, cnn, or NAME:BATCH (e.g. mlp:512), comma-separated")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for every contender (default 1)")
    parser.add_argument("--contenders", default="dataloader,expert,workbench")
    parser.add_argument("--keras", action="store_true", help="add Keras 3 on torch")
    parser.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto")
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on the first N training images (quick runs)")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    parser.add_argument("--json", action="store_true", help="print the results as JSON last")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs: at least 2 (the first is warm-up)")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    clock = args.clock
    if clock == "auto":
        clock = "cpu" if device.type == "cpu" and args.threads == 1 else "wall"
    results: dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                               "threads": args.threads, "cpu_count": os.cpu_count(),
                               "load_average_1min": round(os.getloadavg()[0], 2),
                               "models": {}}
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name(device)
    for item in args.models.split(","):
        name, _, batch = item.partition(":")
        if name not in MODELS:
            parser.error(f"--models: unknown {name!r} (known: {', '.join(MODELS)})")
        size = int(batch) if batch else DEFAULT_BATCH[name]
        table = bench_model(name, size, args, device, clock)
        results["models"][f"{name}:{size}"] = table
        print_table(name, table, results.get("gpu", str(device)))
    results["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
