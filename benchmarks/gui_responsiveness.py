"""Does the window stay responsive while the CPU trains, and what do live plots cost?

Trains the MNIST MLP (784-256-128-10, Adam, batch 32) on the real MNIST for a fixed number of
steps, alternately in one process: headless (`Trainer.events()` in a loop) and through the
`TrainPanel` (worker thread, live curves, health and boundary monitors, shown offscreen),
each GUI run between two headless ones, since this machine's speed drifts within a minute.
While the panel trains, a 10 ms timer on the GUI thread records how late it fires. Then
one redraw of the curves with `--points` points per curve is timed (setData, then a paint
forced by `grab`).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py --json

Throughput is the trainer's own figure (samples over its run clock at the last progress
report), so data loading and thread start-up count in neither run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QElapsedTimer, Qt, QTimer  # noqa: E402

import workbench.gui  # noqa: E402, F401  (applies the PySide6 refcount guard first)
from workbench import spec as specmod  # noqa: E402
from workbench.core.events import Progress, RunFailed, RunStarted  # noqa: E402
from workbench.core.runs import RunStore  # noqa: E402
from workbench.core.train import Trainer  # noqa: E402
from workbench.gui.curves_view import CurvesView  # noqa: E402
from workbench.gui.train_panel import TrainPanel  # noqa: E402
from workbench.gui.worker import training_threads  # noqa: E402

TICK_MS = 10


def mlp_spec(root: str) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "gui-bench-mnist-mlp",
        "data": {"name": "mnist", "root": root, "val_fraction": 0.1},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 256},
                             {"type": "ReLU"}, {"type": "Linear", "out": 128},
                             {"type": "ReLU"}, {"type": "Linear", "out": 10}]},
        "optim": {"name": "adam", "lr": 0.001},
        "train": {"epochs": 20, "batch_size": 32, "seed": 0, "device": "cpu"},  # stopped early
    })


def rate(last: Progress, batch: int) -> float:
    return last.global_step * batch / max(1e-9, last.elapsed)


def headless(spec: specmod.ExperimentSpec, steps: int, runs: RunStore) -> float:
    trainer = Trainer(spec, runs=runs, threads=training_threads())
    last = None
    for event in trainer.events():
        if isinstance(event, RunFailed):
            raise SystemExit(f"headless run failed: {event.reason} ({event.hint})")
        if isinstance(event, Progress):
            last = event
            if event.global_step >= steps:
                trainer.stop()
    assert last is not None
    return rate(last, spec.train.batch_size)


def tick_recorder(ticks: list[float]) -> QTimer:
    """A precise TICK_MS timer (not started) that appends each firing's time in ms to `ticks`."""
    clock = QElapsedTimer()
    clock.start()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
    return timer


def with_gui(app: pg.QtWidgets.QApplication, spec: specmod.ExperimentSpec, steps: int,
             runs: RunStore) -> dict[str, float]:
    panel = TrainPanel(lambda: spec, runs)
    panel.resize(1100, 760)
    panel.show()
    ticks: list[float] = []
    timer = tick_recorder(ticks)
    state: dict[str, object] = {"last": None, "measuring": False}

    def on_event(event: object) -> None:
        if isinstance(event, RunStarted):
            ticks.clear()
            state["measuring"] = True
            state["t0"] = (time.perf_counter(), time.thread_time())
        elif isinstance(event, Progress):
            state["last"] = event
            if event.global_step >= steps and state["measuring"]:
                state["measuring"] = False
                state["ticks"] = list(ticks)
                wall0, cpu0 = state["t0"]  # type: ignore[misc]
                state["gui_cpu_share"] = ((time.thread_time() - cpu0)
                                          / max(1e-9, time.perf_counter() - wall0))
                panel.stop()

    panel.runStarted.connect(lambda e: panel.runner.trainEvent.connect(on_event))
    panel.runStarted.connect(on_event)
    panel.runEnded.connect(lambda _e: app.quit())
    timer.start()
    panel.start()
    app.exec()
    timer.stop()
    end = panel.last_end
    if isinstance(end, RunFailed):
        raise SystemExit(f"GUI run failed: {end.reason} ({end.hint})")
    intervals = np.diff(np.array(state.get("ticks", ticks)))
    late = np.maximum(0.0, intervals - TICK_MS)
    redraws = panel.curves.redraws
    panel.close()
    return {
        "samples_per_sec": rate(state["last"], spec.train.batch_size),  # type: ignore[arg-type]
        "late_ms": late,
        "curve_redraws": redraws,
        "gui_thread_cpu_share": float(state["gui_cpu_share"]),  # type: ignore[arg-type]
    }


def idle_lateness(app: pg.QtWidgets.QApplication, seconds: float) -> float:
    """p99 lateness of the same timer with nothing training: the floor of this machine."""
    ticks: list[float] = []
    timer = tick_recorder(ticks)
    QTimer.singleShot(int(seconds * 1000), app.quit)
    timer.start()
    app.exec()
    timer.stop()
    late = np.maximum(0.0, np.diff(np.array(ticks)) - TICK_MS)
    return float(np.percentile(late, 99))


def redraw_cost(points: int, repeats: int = 10) -> dict[str, float]:
    """One redraw of all six curves with `points` points each: setData, then a forced paint."""
    view = CurvesView()
    view.resize(1100, 700)
    view.show()
    rng = np.random.default_rng(0)
    steps_per_epoch = 1000
    for key, series in view.series.items():
        x = np.arange(points) / steps_per_epoch
        y = np.abs(np.cumsum(rng.normal(size=points))) * 1e-3 + (0.5 if "acc" in key else 1.0)
        series.extend(x, y)
    view.redraw()
    view.graphics.grab()
    set_data, paint, total, cpu = [], [], [], []
    for _ in range(repeats):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        view.redraw()
        t1 = time.perf_counter()
        view.graphics.grab()
        t2 = time.perf_counter()
        cpu.append((time.thread_time() - c0) * 1e3)
        set_data.append((t1 - t0) * 1e3)
        paint.append((t2 - t1) * 1e3)
        total.append((t2 - t0) * 1e3)
    view.close()
    return {"points_per_curve": points, "setdata_ms": statistics.median(set_data),
            "paint_ms": statistics.median(paint), "redraw_total_ms": statistics.median(total),
            "redraw_cpu_ms": statistics.median(cpu)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/work/shared/datasets/mnist",
                        help="folder with the MNIST IDX files")
    parser.add_argument("--steps", type=int, default=4000,
                        help="training steps per run (1,688 to an epoch)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="GUI runs, each between two headless runs (ratios: their median)")
    parser.add_argument("--points", type=int, default=100_000, help="points per curve")
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        parser.error(f"--root {args.root}: no such folder")
    app = pg.mkQApp("gui-bench")
    spec = mlp_spec(args.root)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        runs = RunStore(Path(tmp) / "runs")
        idle_p99 = idle_lateness(app, 2.0)
        plain = [headless(spec, args.steps, runs)]
        guis = []
        for _ in range(args.repeats):  # each GUI run between two headless ones: machine drift
            guis.append(with_gui(app, spec, args.steps, runs))
            plain.append(headless(spec, args.steps, runs))
    ratios = [g["samples_per_sec"] / ((a + b) / 2)
              for g, a, b in zip(guis, plain, plain[1:], strict=False)]
    late = np.concatenate([g["late_ms"] for g in guis])
    small = redraw_cost(1000)
    draw = redraw_cost(args.points)
    result = {
        "device": "cpu", "cores": os.cpu_count(), "torch_threads": training_threads(),
        "steps": args.steps, "batch_size": spec.train.batch_size,
        "headless_samples_per_sec": round(statistics.median(plain), 1),
        "gui_samples_per_sec": round(statistics.median(g["samples_per_sec"] for g in guis), 1),
        "gui_over_headless": round(statistics.median(ratios), 3),
        "gui_over_headless_each": [round(r, 3) for r in ratios],
        "timer_interval_ms": TICK_MS,
        "timer_late_p50_ms": round(float(np.percentile(late, 50)), 2),
        "timer_late_p99_ms": round(float(np.percentile(late, 99)), 2),
        "timer_late_max_ms": round(float(late.max()), 2),
        "timer_ticks": int(len(late)), "idle_timer_late_p99_ms": round(idle_p99, 2),
        "curve_redraws_per_run": [g["curve_redraws"] for g in guis],
        "gui_thread_cpu_share": round(statistics.median(g["gui_thread_cpu_share"]
                                                        for g in guis), 3),
        "redraw_points_per_curve": draw["points_per_curve"],  # six curves, four plots
        "redraw_setdata_ms": round(draw["setdata_ms"], 2),
        "redraw_paint_ms": round(draw["paint_ms"], 2),
        "redraw_total_ms": round(draw["redraw_total_ms"], 2),
        "redraw_cpu_ms": round(draw["redraw_cpu_ms"], 2),
        "redraw_total_ms_1k_points": round(small["redraw_total_ms"], 2),
        "redraw_cpu_ms_1k_points": round(small["redraw_cpu_ms"], 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "seconds": round(time.perf_counter() - started, 1),
    }
    for key, value in result.items():
        print(f"{key:28s} {value}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
