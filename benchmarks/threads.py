"""One torch thread against one per core, for the MNIST MLP (batch 32) and CNN (batch 128).

    python benchmarks/threads.py [--rounds 6] [--json]

The evidence for the thread policy (`workbench/core/training/threads.py`): training steps of
the expert loop's autograd step (benchmarks/hand_loops.py) on random MNIST-shaped data, timed
on the wall clock in rounds that alternate the thread counts (the order flips every round),
so that whatever else the machine runs hits both alike. Prints milliseconds a step for each
round.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hand_loops import MODELS  # noqa: E402

SETUPS = {"mlp": (32, 300), "cnn": (128, 20)}  # batch, steps a round


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--many", type=int, default=os.cpu_count() or 2,
                        help="the thread count set against one (default: every CPU)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    before = torch.get_num_threads()
    x = torch.randn(4096, 1, 28, 28)
    y = torch.randint(0, 10, (4096,))
    results: dict[str, dict[str, list[float]]] = {}
    for name, (batch, steps) in SETUPS.items():
        torch.manual_seed(0)
        model = MODELS[name]()
        opt = torch.optim.Adam(model.parameters(), fused=True)
        per: dict[int, list[float]] = {1: [], args.many: []}
        for r in range(args.rounds):
            for threads in (1, args.many) if r % 2 else (args.many, 1):
                torch.set_num_threads(threads)
                start = time.perf_counter()
                for i in range(steps):
                    j = (i * batch) % (len(x) - batch)
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x[j:j + batch]), y[j:j + batch]).backward()
                    opt.step()
                per[threads].append(round((time.perf_counter() - start) / steps * 1e3, 2))
        results[name] = {f"{t}_threads_ms_per_step": v for t, v in per.items()}
        print(f"{name} batch {batch}: " + "; ".join(
            f"{t} thread(s) {v} ms a step" for t, v in per.items()), flush=True)
    torch.set_num_threads(before)
    if args.json:
        print(json.dumps({"load_average_1min": round(os.getloadavg()[0], 2), **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
