"""How fast the Prune panel's slider answers, for the MNIST MLP (784-256-128-10).

    QT_QPA_PLATFORM=offscreen python benchmarks/prune_slider.py \
        [--root /work/shared/datasets/mnist] [--positions 20] [--json]

Trains the MLP for one epoch on the real MNIST (6,000 validation images), then measures:
- `evaluate`: `PruneSession.evaluate` at slider positions across 0-99% (global, unstructured;
  structured too), called directly: the mask, the masked weights, the forward pass over the
  validation set and the per-layer counts;
- `slider`: in the Prune panel, the time from a slider position being set to the readout
  showing its result (the `evaluated` signal): the wait before evaluating, the worker thread
  and the evaluation together, for one move at a time; and for drags of twenty positions in a
  row, the time to the answer for the last position from the first move and from the last.
Torch runs with the threads a training run in the app would leave it (the physical cores
but one), as the panel does. Medians and the worst of each.
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

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.core.store.runs import RunStore  # noqa: E402
from workbench.core.tools.prune import PruneConfig, PruneSession  # noqa: E402
from workbench.core.training.events import RunFailed, RunFinished  # noqa: E402
from workbench.core.training.loop import Trainer  # noqa: E402
from workbench.core.training.threads import automatic_threads  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402


def train_mlp(root: str, runs: RunStore) -> str:
    spec = specmod.from_dict({
        "name": "prune-bench-mnist-mlp",
        "data": {"name": "mnist", "root": root, "val_fraction": 0.1},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 256},
                             {"type": "ReLU"}, {"type": "Linear", "out": 128},
                             {"type": "ReLU"}, {"type": "Linear", "out": 10}]},
        "optim": {"name": "adam", "lr": 0.001},
        "train": {"epochs": 1, "batch_size": 128, "seed": 0, "device": "cpu"}})
    for event in Trainer(spec, runs=runs).events():
        if isinstance(event, RunFailed):
            raise SystemExit(f"training failed: {event.reason}")
        if isinstance(event, RunFinished):
            return event.run_dir
    raise SystemExit("training ended without a result")


def summary(ms: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(ms), 1), "max_ms": round(max(ms), 1),
            "min_ms": round(min(ms), 1)}


def time_evaluate(session: PruneSession, positions: list[int],
                  structured: bool) -> dict[str, Any]:
    wall, cpu = [], []
    for p in positions:
        config = PruneConfig(amount=p / 100, structured=structured)
        c0, t0 = time.process_time(), time.perf_counter()
        session.evaluate(config)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return {"wall": summary(wall), "cpu": summary(cpu)}


def time_slider(run_dir: str, runs: RunStore, positions: list[int]) -> dict[str, Any]:
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from workbench.gui.tools.prune.panel import PrunePanel

    app = QApplication.instance() or QApplication([])
    panel = PrunePanel(Workspace(runs))
    panel.resize(900, 900)
    panel.show()

    def wait_until(done: Callable[[], bool], timeout_s: float = 60.0) -> None:
        """Run the event loop until `done()`; it wakes as soon as the worker's signal lands."""
        deadline = time.perf_counter() + timeout_s
        while not done():
            if time.perf_counter() > deadline:
                raise SystemExit("the Prune panel did not answer within a minute")
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)

    def shows(percent: int) -> Callable[[], bool]:
        return lambda: panel.result is not None and panel.result.config.amount == percent / 100

    panel.set_run(run_dir)
    wait_until(lambda: panel.result is not None and not panel.busy())
    single = []
    for p in positions:
        t0 = time.perf_counter()
        panel.slider.setValue(p)
        wait_until(shows(p))
        single.append((time.perf_counter() - t0) * 1e3)
    drags, after_last = [], []
    for start in (0, 30, 60):
        panel.slider.setValue(start)
        wait_until(lambda: shows(start)() and not panel.busy())  # noqa: B023 (called at once)
        t0 = time.perf_counter()
        for p in range(start + 1, start + 21):  # a drag: one move per event-loop turn
            panel.slider.setValue(p)
            app.processEvents()
        t_last = time.perf_counter()
        wait_until(shows(start + 20))
        drags.append((time.perf_counter() - t0) * 1e3)
        after_last.append((time.perf_counter() - t_last) * 1e3)
    panel.shutdown()
    panel.close()
    return {"one_move": summary(single), "drag_of_20_from_first_move": summary(drags),
            "drag_of_20_from_letting_go": summary(after_last)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("MNIST_ROOT",
                                                         "/work/shared/datasets/mnist"))
    parser.add_argument("--positions", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(automatic_threads())
    positions = [round(i * 99 / max(1, args.positions - 1)) for i in range(args.positions)]
    positions = positions[1::2] + positions[::2]  # not in order: no two neighbours in a row
    with tempfile.TemporaryDirectory(prefix="workbench-prune-bench-") as tmp:
        runs = RunStore(Path(tmp) / "runs")
        run_dir = train_mlp(args.root, runs)
        session = PruneSession(run_dir)
        result: dict[str, Any] = {
            "threads": torch.get_num_threads(), "validation_samples": len(session.val_x),
            "evaluate_unstructured": time_evaluate(session, positions, structured=False),
            "evaluate_structured": time_evaluate(session, positions, structured=True),
            "slider": time_slider(run_dir, runs, positions),
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
    for key, value in result.items():
        print(f"{key:24s} {value}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
