"""Compressed variants of the MNIST MLP and the small CNN, measured with onnxruntime.

    python benchmarks/compress.py [--root ../shared/datasets/mnist] [--models mlp,cnn]
                                  [--epochs 3] [--prune 0.5] [--sparse 0.9] [--finetune 1]
                                  [--rounds 7] [--json]

Each network is trained on the real MNIST (Workbench's trainer, CPU), then:
- fp32: the exported float network (`export_run`),
- pruned: structured (whole units, ranked globally) by `--prune`, fine-tuned `--finetune`
  epochs; for the MLP also unstructured by `--sparse` (weights stored sparse in the file),
- int8: dynamic for the MLP, static (QDQ, calibrated on 512 training images) for the CNN,
  and the other kind for comparison (`quantize_run`, verified on the test split),
- pruned+int8: the pruned runs quantized the same way.
Reported for each: file size, latency at batch 1 and 256 (onnxruntime, CPU), test accuracy
and agreement with the fp32 network. The reference is the hand-written thing: the fp32
PyTorch model called eagerly (`model(x)` in inference mode), timed in the same rounds.

Latencies are taken in rounds, every contender once per round in turn (each a median of many
calls), and the median over rounds is reported, so that the drift of a shared machine hits
them alike. Read the ratios, not the milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench import spec as specmod
from workbench.core.tools.export import export_run, load_run
from workbench.core.tools.prune import PruneConfig, PruneSession
from workbench.core.tools.prune_apply import create_pruned_run
from workbench.core.tools.quantize import QuantizeConfig, quantize_run
from workbench.core.tools.variants import SplitData, measure, session_for
from workbench.core.training.events import RunFailed, RunFinished
from workbench.core.training.loop import Trainer
from workbench.core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
MLP = [{"type": "Flatten"}, {"type": "Linear", "out": 256}, {"type": "ReLU"},
       {"type": "Linear", "out": 128}, {"type": "ReLU"}, {"type": "Linear", "out": 10}]
CNN = [{"type": "Conv2d", "out": 16, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
       {"type": "Conv2d", "out": 32, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
       {"type": "Flatten"}, {"type": "Linear", "out": 10}]
MODELS = {"mlp": (MLP, 32, "dynamic"), "cnn": (CNN, 128, "static")}
TARGETS = {"mlp": "int8 >= 3.5x smaller than fp32, within 0.3 points, batch-1 latency no worse",
           "cnn": "static int8 within 0.5 points"}


def train(name: str, root: str, epochs: int, workspace: Workspace) -> str:
    layers, batch, _ = MODELS[name]
    spec = specmod.from_dict({
        "name": f"bench-{name}", "data": {"name": "mnist", "root": root, "val_fraction": 0.1},
        "model": {"layers": layers}, "optim": {"name": "adam", "lr": 0.001},
        "train": {"epochs": epochs, "batch_size": batch, "seed": 0, "device": "cpu"}})
    for event in Trainer(spec, runs=workspace.runs, source=workspace).events():
        if isinstance(event, RunFailed):
            raise RuntimeError(f"training failed: {event.reason}")
        if isinstance(event, RunFinished):
            return event.run_dir
    raise RuntimeError("the trainer ended without a result")


def latency_rounds(contenders: dict[str, Any], one: np.ndarray, many: np.ndarray,
                   rounds: int) -> dict[str, tuple[float, float]]:
    """Median over rounds of each contender's median call time (ms) at batch 1 and 256."""
    def timed(call: Any, x: Any, calls: int) -> float:
        times = []
        for i in range(calls + 3):
            start = time.perf_counter()
            call(x)
            if i >= 3:
                times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000.0

    got: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for r in range(rounds):
        order = list(contenders)
        order = order[r % len(order):] + order[:r % len(order)]
        for name in order:
            call, convert = contenders[name]
            got[name].append((timed(call, convert(one), 100), timed(call, convert(many), 10)))
    return {name: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
            for name, v in got.items()}


def _runner(session: Any) -> Any:
    return lambda x: session.run(None, {"input": x})


def bench(name: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    workspace = Workspace(folder / name)
    started = time.perf_counter()
    run_dir = train(name, args.root, args.epochs, workspace)
    trained_s = time.perf_counter() - started
    _, _, mode = MODELS[name]
    other = "static" if mode == "dynamic" else "dynamic"
    session = PruneSession(run_dir, source=workspace)
    pruned = {f"pruned {args.prune:.0%} structured": create_pruned_run(
        session, PruneConfig(args.prune, structured=True), runs=workspace.runs,
        finetune_epochs=args.finetune).run_dir}
    if name == "mlp":
        pruned[f"pruned {args.sparse:.0%} unstructured"] = create_pruned_run(
            session, PruneConfig(args.sparse), runs=workspace.runs,
            finetune_epochs=args.finetune).run_dir
    files = folder / name / "files"
    files.mkdir()
    loaded = load_run(run_dir, source=workspace)
    data = SplitData.of(loaded.splits)
    fp32 = files / "fp32.onnx"
    export_run(run_dir, fp32, weights=False, script=False, source=workspace)
    _, reference = measure(fp32, data)
    rows: dict[str, dict[str, Any]] = {"fp32": {}}
    paths: dict[str, Path] = {"fp32": fp32}
    for label, source_run in {"original": run_dir, **pruned}.items():
        prefix = "" if label == "original" else f"{label} + "
        if label != "original":
            out = files / f"{label.replace(' ', '-').replace('%', '')}.onnx"
            export_run(source_run, out, weights=False, script=False, source=workspace)
            paths[label] = out
            rows[label] = {}
        for kind in (mode, other):
            out = files / f"{label.replace(' ', '-').replace('%', '')}-{kind}.onnx"
            try:
                result = quantize_run(source_run, out, QuantizeConfig(mode=kind),
                                      source=workspace, record=False)
            except Exception as exc:  # a refusal is a result too
                rows[f"{prefix}int8 {kind}"] = {"refused": str(exc)}
                continue
            paths[f"{prefix}int8 {kind}"] = out
            rows[f"{prefix}int8 {kind}"] = {"per_channel": result.per_channel}
    for label, path in paths.items():
        measured, _ = measure(path, data, reference=reference)
        rows.setdefault(label, {}).update(
            bytes=measured.bytes, test_accuracy=measured.test_accuracy,
            agreement=measured.agreement)
    contenders: dict[str, Any] = {label: (_runner(session_for(path)), lambda x: x)
                                  for label, path in paths.items()}
    model = loaded.model.eval()

    def eager(x: torch.Tensor) -> Any:
        with torch.inference_mode():
            return model(x)

    contenders["PyTorch eager fp32"] = (eager, torch.from_numpy)
    one, many = data.latency_inputs
    times = latency_rounds(contenders, one, many, args.rounds)
    for label, (b1, b256) in times.items():
        rows.setdefault(label, {}).update(latency_ms=b1, latency_ms_256=b256)
    base = rows["fp32"]
    for row in rows.values():
        if "bytes" in row:
            row["ratio"] = base["bytes"] / row["bytes"]
            row["drop_points"] = (base["test_accuracy"] - row["test_accuracy"]) * 100
        if "latency_ms" in row:
            row["latency_vs_fp32"] = row["latency_ms"] / base["latency_ms"]
            row["latency_256_vs_fp32"] = row["latency_ms_256"] / base["latency_ms_256"]
    int8 = rows.get(f"int8 {mode}", {})
    if name == "mlp":
        met = ("ratio" in int8 and int8["ratio"] >= 3.5 and int8["drop_points"] <= 0.3
               and int8["latency_vs_fp32"] <= 1.0)
    else:
        met = "drop_points" in int8 and int8["drop_points"] <= 0.5
    return {"train_samples": len(loaded.splits.train_x), "epochs": args.epochs,
            "train_seconds": trained_s, "variants": rows, "target": TARGETS[name],
            "target_met": met}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--prune", type=float, default=0.5,
                        help="structured pruning amount (share of units)")
    parser.add_argument("--sparse", type=float, default=0.9,
                        help="unstructured pruning amount of the MLP (share of weights)")
    parser.add_argument("--finetune", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "models": {}}
    with tempfile.TemporaryDirectory(prefix="workbench-bench-compress-") as tmp:
        for name in args.models.split(","):
            results["models"][name] = bench(name, args, Path(tmp))
    if not args.json:
        for name, table in results["models"].items():
            print(f"\n{name}: {table['train_samples']:,} training images, {table['epochs']} "
                  f"epochs; target: {table['target']}: "
                  f"{'met' if table['target_met'] else 'NOT met'}")
            print(f"  {'variant':44s} {'bytes':>9s} {'x':>5s} {'b1 ms':>7s} {'b256 ms':>8s} "
                  f"{'test acc':>8s} {'drop':>6s} {'agree':>6s}")
            for label, row in table["variants"].items():
                if "refused" in row:
                    print(f"  {label:44s} refused: {row['refused']}")
                    continue
                size = f"{row['bytes']:>9,} {row['ratio']:>5.2f}" if "bytes" in row \
                    else f"{'':>9s} {'':>5s}"
                acc = (f"{row['test_accuracy']:>8.2%} {row['drop_points']:>+6.2f} "
                       f"{row['agreement']:>6.1%}" if "bytes" in row else "")
                print(f"  {label:44s} {size} {row['latency_ms']:>7.3f} "
                      f"{row['latency_ms_256']:>8.2f} {acc}")
    print(json.dumps(results), file=sys.stdout if args.json else sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
