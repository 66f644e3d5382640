"""Sample data for opening one view alone: train a bundled example and feed the view its events.

Used by each view's `python -m workbench.gui.<view>` block; the runs go to a temporary folder,
so looking at a view never clutters the person's run store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from workbench import spec as specmod
from workbench.core.store.runs import RunStore
from workbench.core.training.callbacks import Callback
from workbench.core.workspace import Workspace
from workbench.gui.threads.worker import TrainRunner
from workbench.paths import resources_dir
from workbench.spec import ExperimentSpec


def example_spec(name: str = "spirals_playground") -> ExperimentSpec:
    """A bundled example experiment from resources/examples."""
    return specmod.load(resources_dir() / "examples" / f"{name}.json")


def sample_run(runs: RunStore) -> str:
    """Train a small MLP on the bundled MNIST sample for two epochs: a run for a tool on
    trained runs (prune, export, compress) to look at."""
    from workbench.core.training.loop import Trainer

    spec = specmod.from_dict({
        "name": "sample-mlp", "data": {"name": "mnist_small", "val_fraction": 0.2},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 64},
                             {"type": "ReLU"}, {"type": "Linear", "out": 32},
                             {"type": "ReLU"}, {"type": "Linear", "out": 10}]},
        "optim": {"name": "adam", "lr": 0.003}, "train": {"epochs": 2, "batch_size": 64,
                                                          "device": "cpu"}})
    run_dir = ""
    for event in Trainer(spec, runs=runs).events():
        run_dir = getattr(event, "run_dir", run_dir) or run_dir
    return run_dir


def demo_workspace() -> Workspace:
    """A workspace whose runs go to a temporary folder."""
    return Workspace(tempfile.mkdtemp(prefix="workbench-demo-"))


Feed = Callable[[Any], None]


def run_demo(title: str, make: Callable[[TrainRunner], tuple[QWidget, Feed]], *,
             spec: ExperimentSpec | None = None, callbacks: Sequence[Callback] = ()) -> int:
    """Open the view `make(runner)` builds, train `spec` (the spirals example) and feed the
    view the run's events. Closing the window stops the run and waits for its thread.
    """
    app = pg.mkQApp(title)
    runner = TrainRunner.for_spec(spec or example_spec(), demo_workspace(), callbacks=callbacks)
    view, feed = make(runner)
    runner.trainEvent.connect(feed)
    app.aboutToQuit.connect(runner.stop_and_wait)
    view.setWindowTitle(title)
    view.resize(900, 600)
    view.show()
    runner.start()
    return app.exec()


def show_alone(widget: Any, size: tuple[int, int] | None = None,
               start: Callable[[], object] | None = None) -> int:
    """Show `widget` as a window of its own (at `size`), call `start` (the work it shows), run
    the event loop and shut the widget's jobs down once it ends; the exit status."""
    app = pg.mkQApp()
    if size is not None:
        widget.resize(*size)
    widget.show()
    if start is not None:
        start()
    code = app.exec()
    widget.shutdown()
    return code


__all__ = ["demo_workspace", "example_spec", "run_demo", "show_alone"]
