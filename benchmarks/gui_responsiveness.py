"""Does the window stay responsive while the CPU trains, and what do live plots cost?

Trains the MNIST MLP (784-256-128-10, Adam, batch 32) on the real MNIST for a fixed number of
steps, alternately in one process: headless (`Trainer.events()` in a loop) and through the
`TrainPanel` (worker thread, live curves, health and boundary monitors, shown offscreen).
Each repeat is two panel runs between two headless ones (this machine's speed drifts within
a minute): one timed, and one in which a 10 ms timer on the GUI thread records how late it
fires (the timer's own Python calls take the GIL 100 times a second, so that run is not the
one timed). On Linux the training thread's scheduler clock also says what share of the time
it was blocked (waiting for the GIL) rather than on a CPU: a figure the drift does not touch.
With `--history N` the panel runs beside the Runs list (`RunHistory`, as in the window's dock)
following a store that holds N earlier runs (copies of the first run's summary, spec and
metrics), as a person's store does after a while, and a look at that store is timed (CPU ms,
the GIL held): a whole listing (`RunStore.list`, what the Runs list did every 5 s and on every
change) against an update of the incremental one (`RunListing.update`, what it does now).
Then redraws of the curves with `--points` points per curve are timed as training adds a
point to each: the redraw (setData of the growing chunks) and a paint forced over the whole
view by `grab` (the worst case), and the redraw with the event loop's own repaint of what
changed.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py --json

Throughput is the trainer's own figure (samples over its run clock at the last progress
report), so data loading and thread start-up count in neither run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEvent, Qt, QTimer  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.core.store.listing import RunListing  # noqa: E402
from workbench.core.training.events import Progress, RunFailed, RunStarted  # noqa: E402
from workbench.core.training.loop import Trainer  # noqa: E402
from workbench.core.training.threads import automatic_threads  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.shell.run_history import RunHistory  # noqa: E402
from workbench.gui.shell.warmup import load_heavy, settle_heap  # noqa: E402
from workbench.gui.train.train_panel import TrainPanel  # noqa: E402
from workbench.gui.views.curves import CurvesView  # noqa: E402

TICK_MS = 10
STEPS_PER_EPOCH = 1000  # of the synthetic curves whose redraw is timed


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


def thread_clock(tid: int | None) -> tuple[float, float, float] | None:
    """(wall, on a CPU, queued for a CPU) seconds of thread `tid` so far (Linux), else None.

    Wall time neither on a CPU nor queued for one is time the thread was blocked: for the
    training thread, waiting for the GIL while the GUI thread runs Python.
    """
    try:
        fields = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
    except (OSError, TypeError):
        return None
    return time.perf_counter(), int(fields[0]) / 1e9, int(fields[1]) / 1e9


def blocked_share(start: tuple[float, float, float] | None,
                  end: tuple[float, float, float] | None) -> float | None:
    if start is None or end is None:
        return None
    wall, cpu, queued = (b - a for a, b in zip(start, end, strict=True))
    return max(0.0, 1.0 - (cpu + queued) / max(1e-9, wall))


def headless(spec: specmod.ExperimentSpec, steps: int, workspace: Workspace) -> dict[str, Any]:
    trainer = Trainer(spec, runs=workspace.runs, source=workspace, threads=automatic_threads())
    last = None
    tid = threading.get_native_id()
    clocks: list[tuple[float, float, float] | None] = []
    for event in trainer.events():
        if isinstance(event, RunFailed):
            raise SystemExit(f"headless run failed: {event.reason} ({event.hint})")
        if isinstance(event, Progress):
            last = event
            if not clocks:
                clocks.append(thread_clock(tid))
            if event.global_step >= steps:
                clocks.append(thread_clock(tid))
                trainer.stop()
    assert last is not None
    return {"samples_per_sec": rate(last, spec.train.batch_size),
            "blocked_share": blocked_share(*clocks[:2]) if len(clocks) > 1 else None}


def tick_recorder(ticks: list[float]) -> QTimer:
    """A precise TICK_MS timer (not started) that appends each firing's time in ms to `ticks`."""
    clock = QElapsedTimer()
    clock.start()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
    return timer


def fill_history(workspace: Workspace, count: int) -> None:
    """`count` earlier runs in the store: copies of its newest run's small files, named
    older than any run of this benchmark."""
    source = workspace.runs.folders()[0]
    for i in range(count):
        folder = workspace.runs.root / f"19990101-000000-history-{i:05d}"
        folder.mkdir()
        for name in ("summary.json", "spec.json", "metrics.jsonl"):
            if (source / name).is_file():
                shutil.copyfile(source / name, folder / name)


def listing_cost(workspace: Workspace, repeats: int = 5) -> dict[str, float]:
    """CPU ms of one look at the store: a whole listing, and an update of the incremental
    listing with nothing changed (medians)."""
    def cpu_ms(call: Any) -> float:
        c0 = time.thread_time()
        call()
        return (time.thread_time() - c0) * 1e3

    listing = RunListing(workspace.runs)
    listing.update()
    return {"full_listing_cpu_ms": statistics.median(
                cpu_ms(workspace.runs.list) for _ in range(repeats)),
            "incremental_update_cpu_ms": statistics.median(
                cpu_ms(listing.update) for _ in range(repeats))}


def with_gui(app: pg.QtWidgets.QApplication, spec: specmod.ExperimentSpec, steps: int,
             workspace: Workspace, *, probe: bool, history: bool) -> dict[str, Any]:
    """One run through the panel (beside the Runs list with `history`); with `probe`, the
    10 ms timer (whose own Python calls take the GIL 100 times a second, so its runs are not
    the ones to time)."""
    panel = TrainPanel(lambda: spec, workspace)
    panel.resize(1100, 760)
    panel.show()
    runs_list = RunHistory(workspace.runs, jobs=workspace.jobs) if history else None
    if runs_list is not None:
        runs_list.resize(1100, 240)
        runs_list.show()
        while not runs_list.listed_once:  # the app's list is shown before a run starts: its
            app.processEvents()  # first whole listing is not a cost of training
            time.sleep(0.01)
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
            if "clock0" not in state:
                state["tid"] = panel.runner.native_id  # the training thread
                state["clock0"] = thread_clock(state["tid"])  # type: ignore[arg-type]
            if event.global_step >= steps and state["measuring"]:
                state["measuring"] = False
                state["blocked"] = blocked_share(state["clock0"],  # type: ignore[arg-type]
                                                 thread_clock(state["tid"]))  # type: ignore[arg-type]
                state["ticks"] = list(ticks)
                wall0, cpu0 = state["t0"]  # type: ignore[misc]
                state["gui_cpu_share"] = ((time.thread_time() - cpu0)
                                          / max(1e-9, time.perf_counter() - wall0))
                panel.stop()

    panel.runStarted.connect(lambda e: panel.runner.trainEvent.connect(on_event))
    panel.runStarted.connect(on_event)
    panel.runEnded.connect(lambda _e: app.quit())
    if probe:
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
    close_widget(panel)
    if runs_list is not None:
        close_widget(runs_list)
    return {
        "samples_per_sec": rate(state["last"], spec.train.batch_size),  # type: ignore[arg-type]
        "late_ms": late,
        "blocked_share": state.get("blocked"),
        "curve_redraws": redraws,
        "gui_thread_cpu_share": float(state["gui_cpu_share"]),  # type: ignore[arg-type]
    }


def close_widget(widget: Any) -> None:
    """Tear a panel down as the app does: stop what it runs (`stop_and_wait`, the training
    panel's close path), then delete it now, parent before children. (One left to the
    interpreter's exit is torn down in whatever order PySide finds its objects, and this
    script used to end in a segmentation fault there.)"""
    stop = getattr(widget, "stop_and_wait", None) or getattr(widget, "shutdown", None)
    if stop is not None:
        stop()
    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


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
    """Redraws of all six curves holding `points` points each, as training adds one point to
    every curve: the redraw itself (the growing chunks' setData), then a paint, either forced
    over the whole view (`grab`: the worst case, as after a resize) or of what the redraw
    changed (the event loop's own repaint)."""
    view = CurvesView()
    view.resize(1100, 700)
    view.show()
    view.set_run_length(points / STEPS_PER_EPOCH * 1.2)
    rng = np.random.default_rng(0)
    for key, series in view.series.items():
        x = np.arange(points) / STEPS_PER_EPOCH
        y = np.abs(np.cumsum(rng.normal(size=points))) * 1e-3 + (0.5 if "acc" in key else 1.0)
        series.extend(x, y)
    view.redraw()
    view.graphics.grab()
    app = pg.QtWidgets.QApplication.instance()
    app.processEvents()
    n = points
    set_data, paint, total, cpu, live, live_cpu = [], [], [], [], [], []
    for _ in range(repeats):
        for series in view.series.values():
            series.append(n / STEPS_PER_EPOCH, 1.0)
        n += 1
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
        for series in view.series.values():
            series.append(n / STEPS_PER_EPOCH, 1.0)
        n += 1
        c0 = time.thread_time()
        t0 = time.perf_counter()
        view.redraw()
        app.processEvents()
        live.append((time.perf_counter() - t0) * 1e3)
        live_cpu.append((time.thread_time() - c0) * 1e3)
    close_widget(view)
    return {"points_per_curve": points, "setdata_ms": statistics.median(set_data),
            "paint_ms": statistics.median(paint), "redraw_total_ms": statistics.median(total),
            "redraw_cpu_ms": statistics.median(cpu), "live_redraw_ms": statistics.median(live),
            "live_redraw_cpu_ms": statistics.median(live_cpu)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/work/shared/datasets/mnist",
                        help="folder with the MNIST IDX files")
    parser.add_argument("--steps", type=int, default=4000,
                        help="training steps per run (1,688 to an epoch)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="pairs of GUI runs, each between two headless runs")
    parser.add_argument("--points", type=int, default=100_000, help="points per curve")
    parser.add_argument("--history", type=int, default=0,
                        help="earlier runs in the store, the Runs list beside the panel")
    parser.add_argument("--redraw-only", action="store_true",
                        help="time only the curve redraws (no training)")
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        parser.error(f"--root {args.root}: no such folder")
    app = pg.mkQApp("gui-bench")
    if args.redraw_only:
        draws = {f"{n}_points": {k: round(v, 2) for k, v in redraw_cost(n, 30).items()}
                 for n in (1000, args.points)}
        for key, value in draws.items():
            print(f"{key:14s} {value}")
        if args.json:
            print(json.dumps(draws))
        return 0
    load_heavy()  # as the app does once its window is up,
    settle_heap()  # and once its training panel is in place
    spec = mlp_spec(args.root)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        workspace = Workspace(Path(tmp) / "runs")  # one data cache for every run, as the app
        idle_p99 = idle_lateness(app, 2.0)
        plain = [headless(spec, args.steps, workspace)]
        fill_history(workspace, args.history)
        looks = listing_cost(workspace) if args.history else {}
        guis, probed = [], []
        shown = args.history > 0
        for _ in range(args.repeats):  # GUI runs between two headless ones: machine drift
            guis.append(with_gui(app, spec, args.steps, workspace, probe=False, history=shown))
            probed.append(with_gui(app, spec, args.steps, workspace, probe=True,
                                   history=shown))
            plain.append(headless(spec, args.steps, workspace))

    def ratios(runs_: list[dict[str, Any]]) -> list[float]:
        return [g["samples_per_sec"] / ((a["samples_per_sec"] + b["samples_per_sec"]) / 2)
                for g, a, b in zip(runs_, plain, plain[1:], strict=False)]

    def median_of(runs_: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in runs_ if r[key] is not None]
        return round(statistics.median(values), 4) if values else None

    late = np.concatenate([g["late_ms"] for g in probed])
    small = redraw_cost(1000)
    draw = redraw_cost(args.points)
    result = {
        "device": "cpu", "cores": os.cpu_count(), "torch_threads": automatic_threads(),
        "steps": args.steps, "batch_size": spec.train.batch_size,
        "runs_list_over": args.history or None,
        "headless_samples_per_sec": median_of(plain, "samples_per_sec"),
        "gui_samples_per_sec": median_of(guis, "samples_per_sec"),
        "gui_over_headless": round(statistics.median(ratios(guis)), 3),
        "gui_over_headless_each": [round(r, 3) for r in ratios(guis)],
        "probed_gui_over_headless": round(statistics.median(ratios(probed)), 3),
        "train_thread_blocked_headless": median_of(plain, "blocked_share"),
        "train_thread_blocked_gui": median_of(guis, "blocked_share"),
        "train_thread_blocked_probed_gui": median_of(probed, "blocked_share"),
        "timer_interval_ms": TICK_MS,
        "timer_late_p50_ms": round(float(np.percentile(late, 50)), 2),
        "timer_late_p99_ms": round(float(np.percentile(late, 99)), 2),
        "timer_late_max_ms": round(float(late.max()), 2),
        "timer_ticks": int(len(late)), "idle_timer_late_p99_ms": round(idle_p99, 2),
        "curve_redraws_per_run": [g["curve_redraws"] for g in guis],
        "gui_thread_cpu_share": median_of(guis, "gui_thread_cpu_share"),
        "redraw_points_per_curve": draw["points_per_curve"],  # six curves, four plots
        "redraw_setdata_ms": round(draw["setdata_ms"], 2),
        "redraw_paint_ms": round(draw["paint_ms"], 2),
        "redraw_total_ms": round(draw["redraw_total_ms"], 2),
        "redraw_cpu_ms": round(draw["redraw_cpu_ms"], 2),
        "live_redraw_ms": round(draw["live_redraw_ms"], 2),
        "live_redraw_cpu_ms": round(draw["live_redraw_cpu_ms"], 2),
        "redraw_total_ms_1k_points": round(small["redraw_total_ms"], 2),
        "redraw_cpu_ms_1k_points": round(small["redraw_cpu_ms"], 2),
        **{key: round(value, 2) for key, value in looks.items()},
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
