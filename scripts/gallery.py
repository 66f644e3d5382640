"""Render every view, tool and dialog of the app with real data at 1280x800, a PNG each, to look
at before calling a change to what the app shows done.

    QT_QPA_PLATFORM=offscreen python scripts/gallery.py [OUT_DIR] [--only NAME,NAME] [--check]

It opens the window as a person would, trains the spirals example it opens with, opens the
MNIST example (its learning-rate preview) and trains the bundled mnist-small CNN, stops it
partway into an epoch and resumes it, then opens every tool of the Tools menu on the runs and
sets each to work (a sensitivity sweep, measured variants and value ranges, a comparison and
its landscape, a search of four trials, the rate finder, the playground's race, Inspect's
pages), and Help's windows. Each
picture is named by what it shows (`07-train-health-mnist.png`). Every chart on show is also
measured (`workbench.gui.views.axes.chart_problems`: a hidden scale factor, overlapping tick
labels, a tick that is not a number, colour without a scale) and what is found is printed and
written to `problems.txt`; `--check` exits 1 when there is any. `--only` takes the step names
listed by `--list`. Runs and settings go to a temporary folder, never the person's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZE = (1280, 800)
ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 900.0


class Gallery:
    """The window at 1280x800 and the pictures taken of it; `problems` gathers what the chart
    checks found in each."""

    def __init__(self, out: Path | None, *, size: tuple[int, int] = SIZE,
                 quick: bool = False) -> None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="workbench-gallery-"))
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QApplication

        from workbench.gui.shell.main_window import MainWindow
        from workbench.gui.widgets import dialogs
        from workbench.gui.widgets.style import apply_style

        self.app = QApplication.instance() or QApplication(sys.argv)
        apply_style(self.app)
        self.said: list[str] = []  # what the app would have said in a message box
        self._dialogs = {name: getattr(dialogs, name)
                         for name in ("warn", "inform", "about", "ask")}  # put back at the end
        for name in ("warn", "inform", "about"):
            setattr(dialogs, name, lambda _p, _t, text: self.said.append(text))
        dialogs.ask = lambda *a, **k: dialogs.Button.No
        self.out = out
        self.size = size
        self.quick = quick  # fewer epochs and trials: the same views, drawn sooner (tests)
        self.count = 0
        self.problems: list[str] = []
        self.shots: list[Path] = []
        self.window = MainWindow()
        self.window.resize(*size)
        self.window.show()
        self.window.resizeDocks([self.window.editors_dock], [int(size[0] * 0.44)],
                                Qt.Orientation.Horizontal)
        self.wait(lambda: self.window.train_panel is not None)
        self.panel = self.window.train_panel

    # -- helpers ----------------------------------------------------------------------------
    def settle(self, turns: int = 10) -> None:
        for _ in range(turns):
            self.app.processEvents()
            time.sleep(0.01)

    def wait(self, done: Callable[[], object], seconds: float = WAIT_S) -> None:
        end = time.monotonic() + seconds
        while not done():
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there in time")
            self.app.processEvents()
            time.sleep(0.01)
        self.settle()

    def wait_signal(self, signal: Any, start: Callable[[], object],
                    seconds: float = WAIT_S) -> list[Any]:
        """Call `start` and wait until `signal` fires; its arguments."""
        got: list[Any] = []

        def take(*args: Any) -> None:
            got.append(args)

        signal.connect(take)
        try:
            start()
            self.wait(lambda: got, seconds)
        finally:
            signal.disconnect(take)
        return list(got[0])

    def shot(self, name: str, widget: Any = None) -> Path | None:
        """A picture of the window (or of `widget`, a dialog), and the checks of its charts."""
        from workbench.gui.views.axes import chart_problems

        widget = widget if widget is not None else self.window
        self.settle()
        widget.grab()  # a first paint lays the axes out for their labels
        self.settle()
        self.count += 1
        found = chart_problems(widget, f"{name}: ")
        self.problems += found
        for problem in found:
            print("  problem:", problem, flush=True)
        if self.out is None:
            return None
        path = self.out / f"{self.count:02d}-{name}.png"
        widget.grab().save(str(path))
        self.shots.append(path)
        print(path.name, flush=True)
        return path

    def train(self, *, stop_early: bool = False) -> Any:
        """Press Train and wait for the run's end (`stop_early`: press Stop at its first
        progress report, partway into epoch 1); the run's last event."""
        from workbench.core.training.events import Progress

        panel = self.panel
        ended: list[Any] = []
        panel.runEnded.connect(ended.append)

        def stop(event: object) -> None:
            if isinstance(event, Progress) and panel.is_running() and not panel._stopping:
                panel.stop_button.click()

        panel.train_button.click()
        if stop_early and panel.runner is not None:
            panel.runner.trainEvent.connect(stop)
        self.wait(lambda: ended)
        panel.runEnded.disconnect(ended.append)
        self.wait_history(getattr(ended[0], "run_dir", None))
        return ended[0]

    def wait_history(self, run_dir: str | None) -> None:
        """Until the Runs list shows the run as it ended."""
        history = self.window.history
        if run_dir:
            self.wait(lambda: history.selected_path() == run_dir)
        self.wait(lambda: (info := history.selected_info()) is not None
                  and info.summary.get("status") not in (None, "running")
                  and not history.tasks.is_running())

    def set_spec(self, changes: Callable[[Any], None], title: str) -> None:
        """Change the experiment in the editor through the undo stack, as an edit does."""
        from workbench.gui.document import undo

        spec = self.window.model.spec()
        changes(spec)
        undo.push_spec(self.window.undo, self.window.model, spec, title)
        self.settle()

    def open_example(self, stem: str) -> None:
        from workbench.gui.shell.examples import examples

        example = next(e for e in examples() if e.path.stem == stem)
        self.window.undo.setClean()
        self.window.open_example(example)
        self.settle()

    def train_tab(self, widget: Any) -> None:
        self.window.center.setCurrentWidget(self.panel)
        self.panel.tabs.setCurrentWidget(widget)

    def tool(self, key: str) -> Any:
        self.window.actions[key].trigger()
        self.settle()
        return self.window.tools.get(key)

    def close_tool(self, key: str) -> None:
        tool = self.window.tools.get(key)
        if tool is None:
            return
        index = self.window.center.indexOf(tool)
        if index >= 0:
            self.window._close_tool_tab(index)
        else:
            tool.close()
        self.settle()

    def finish(self) -> None:
        for key in ("lr_find", "fork", "export"):
            self.close_tool(key)
        self.window.undo.setClean()
        self.window.close()
        self.settle()
        from workbench.gui.widgets import dialogs

        for name, original in self._dialogs.items():
            setattr(dialogs, name, original)
        if self.out is not None:
            (self.out / "problems.txt").write_text("".join(f"{p}\n" for p in self.problems))


# -- the steps ------------------------------------------------------------------------------
def start(g: Gallery) -> None:
    """The window as it opens, and the three editors on the spirals example."""
    g.shot("start")
    for i, name in enumerate(("model", "data", "optimizer")):
        g.window.editors.setCurrentIndex(i)
        if name == "data":
            g.window.data_panel.load()
            g.wait(lambda: not g.window.data_panel.is_loading())
        g.shot(f"editor-{name}-spirals")
    g.window.editors.setCurrentIndex(0)


def spirals(g: Gallery) -> None:
    """The spirals example trained: every view of the training panel."""
    g.train()
    panel = g.panel
    for widget, name in ((panel.curves, "curves"), (panel.health, "health"),
                         (panel.boundary, "boundary"), (panel.results, "results")):
        g.train_tab(widget)
        g.shot(f"train-{name}-spirals")


def classes(g: Gallery) -> None:
    """Four Gaussian blobs: the decision boundary of more than two classes, a colour each."""
    def blobs(spec: Any) -> None:
        spec.name = "blobs"
        spec.data = type(spec.data)(name="blobs", samples=600, noise=0.1)
        spec.model.layers[-1].params["out"] = 4
        spec.train.epochs = 5

    g.set_spec(blobs, "four blobs")
    g.train()
    g.train_tab(g.panel.boundary)
    g.shot("train-boundary-blobs")


def stopped(g: Gallery) -> None:
    """The mnist-small CNN stopped partway into its first epoch, then resumed: what the view
    says of each, and the resumed run's whole curves."""
    g.open_example("mnist_small_cnn")
    g.set_spec(lambda s: setattr(s.train, "epochs", 2), "2 epochs")
    g.train_tab(g.panel.curves)
    g.train(stop_early=True)
    g.shot("train-stopped-partway")
    run_dir = g.panel.last_end.run_dir
    ended: list[Any] = []
    g.panel.runEnded.connect(ended.append)
    g.window.resume_path(run_dir)
    g.wait(lambda: ended)
    g.panel.runEnded.disconnect(ended.append)
    g.wait_history(run_dir)
    g.shot("train-resumed")


def mnist(g: Gallery) -> None:
    """The MNIST example's learning-rate preview (60,000 images, never loaded), then the
    bundled mnist-small CNN trained: its curves, health, results and data."""
    g.open_example("mnist_mlp")
    g.window.editors.setCurrentIndex(2)
    g.shot("editor-optimizer-mnist")
    g.open_example("mnist_small_cnn")
    g.set_spec(lambda s: setattr(s.train, "epochs", 1 if g.quick else 2), "fewer epochs")
    g.window.editors.setCurrentIndex(2)
    g.shot("editor-optimizer-mnist-small")
    g.window.editors.setCurrentIndex(0)
    g.shot("editor-model-mnist-small")
    g.train()
    panel = g.panel
    for widget, name in ((panel.curves, "curves"), (panel.health, "health"),
                         (panel.results, "results")):
        g.train_tab(widget)
        g.shot(f"train-{name}-mnist-small")
    g.window.editors.setCurrentIndex(1)
    g.window.data_panel.load()
    g.wait(lambda: not g.window.data_panel.is_loading())
    g.shot("editor-data-mnist-small")
    g.window.editors.setCurrentIndex(0)


def inspect(g: Gallery) -> None:
    """Inspect on the mnist-small CNN: its first layer's filters, a misclassified test sample
    with its attribution maps, and each class's average attribution."""
    panel = g.tool("inspect")
    g.wait(lambda: panel.overview is not None and panel.sample.insight is not None)
    for key in panel.pages:
        index = panel.page(key)
        if not panel.tabs.isTabEnabled(index):
            continue
        panel.tabs.setCurrentIndex(index)
        if key == "classes":
            if panel.classes.result is None:
                panel.compute_classes()
            g.wait(lambda: panel.classes.result is not None)
        g.shot(f"tool-inspect-{key}")
    g.close_tool("inspect")


def prune(g: Gallery) -> None:
    panel = g.tool("prune")
    g.wait(lambda: panel.session is not None)
    g.wait_signal(panel.sensitivityDone, panel.sweep_button.click)
    g.shot("tool-prune")
    g.close_tool("prune")


def export(g: Gallery) -> None:
    dialog = g.tool("export")
    g.shot("tool-export", dialog)
    g.close_tool("export")


def compress(g: Gallery) -> None:
    panel = g.tool("compress")
    g.wait_signal(panel.frontierShown, panel.measure_button.click)
    g.shot("tool-compress-frontier")
    panel.tabs.setCurrentIndex(1)
    g.wait_signal(panel.rangesShown, panel.ranges_page.ranges_button.click)
    g.shot("tool-compress-ranges")
    g.close_tool("compress")


def compare(g: Gallery) -> None:
    """A comparison of three optimizers on the spirals example (10 epochs), its results and
    its landscape."""
    g.open_example("spirals_playground")
    g.set_spec(lambda s: setattr(s.train, "epochs", 3 if g.quick else 10), "fewer epochs")
    panel = g.tool("compare")
    g.wait_signal(panel.comparisonFinished, panel.run)
    g.shot("tool-compare-curves")
    panel.tabs.setCurrentIndex(1)
    g.shot("tool-compare-results")
    panel.tabs.setCurrentIndex(2)
    panel.landscape.resolution_spin.setValue(9 if g.quick else 15)
    drawn: list[bool] = []
    panel.landscapeReady.connect(lambda: drawn.append(True))
    panel.compute_landscape()
    g.wait(lambda: not panel.tasks.is_running("landscape"))
    if not drawn:  # it said why in its status line, which the picture shows
        g.problems.append(f"tool-compare-landscape: no landscape: "
                          f"{panel.landscape.status.text()}")
    g.shot("tool-compare-landscape")
    g.close_tool("compare")


def playground(g: Gallery) -> None:
    panel = g.tool("playground")
    g.wait_signal(panel.animationFinished, panel.replay)
    g.shot("tool-playground")
    g.close_tool("playground")


def lr_find(g: Gallery) -> None:
    dialog = g.tool("lr_find")
    g.wait(lambda: not dialog.is_running())
    g.shot("tool-lr-find", dialog)
    g.close_tool("lr_find")


def fork(g: Gallery) -> None:
    dialog = g.tool("fork")
    g.wait(lambda: not dialog.tasks.is_running("runs"))
    g.shot("tool-fork", dialog)
    g.close_tool("fork")


def search(g: Gallery) -> None:
    """Four trials over the rate, the optimizer and a layer's width."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("search: optuna is not installed; skipped")
        return
    panel = g.tool("search")
    panel.editor.set_raw({"params": {
        "optim.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
        "optim.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "model.layer1.out": {"type": "int", "low": 4, "high": 32, "log": True}}})
    panel.trials_spin.setValue(3 if g.quick else 4)
    g.wait_signal(panel.searchFinished, panel.run_button.click)
    g.wait(panel.run_button.isEnabled)
    for i in range(panel.tabs.count()):
        panel.tabs.setCurrentIndex(i)
        if panel.tabs.widget(i) is panel.importance_plot:
            g.wait(lambda: panel.importance_plot.listDataItems()
                   or panel.importance_plot.getPlotItem().items, 120)
        name = panel.tabs.tabText(i).lower().replace(" ", "-")
        g.shot(f"tool-search-{name}")
    g.close_tool("search")


def help_windows(g: Gallery) -> None:
    for key, shown in (("getting_started", "guide"), ("shortcuts", "shortcuts")):
        g.window.actions[key].trigger()
        g.settle()
        dialog = g.window._help[shown]
        g.shot(f"help-{shown}", dialog)
        dialog.close()


STEPS: dict[str, Callable[[Gallery], None]] = {
    "start": start, "spirals": spirals, "classes": classes, "mnist": mnist,
    "stopped": stopped, "inspect": inspect, "prune": prune,
    "export": export, "compress": compress, "fork": fork, "compare": compare,
    "lr_find": lr_find, "playground": playground, "search": search, "help": help_windows,
}


def run(out: Path | None, only: list[str] | None = None, *, quick: bool = False,
        after: Callable[[str, Gallery], None] | None = None) -> Gallery:
    """Every step (or `only` those) in order, on one window; the gallery, closed. `after`
    is called after each step with its name (a test's checks of what it shows)."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.png"):
            old.unlink()
    g = Gallery(out, quick=quick)
    try:
        for name, step in STEPS.items():
            if only is None or name in only:
                print(f"-- {name}", flush=True)
                step(g)
                if after is not None:
                    after(name, g)
    finally:
        g.finish()
    return g


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "gallery")
    parser.add_argument("--only", help="comma-separated steps (see --list)")
    parser.add_argument("--list", action="store_true", help="list the steps and exit")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a chart has a problem")
    args = parser.parse_args()
    if args.list:
        for name, step in STEPS.items():
            print(f"{name:12} {(step.__doc__ or '').strip().split(chr(10))[0]}")
        return 0
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    unknown = [s for s in only or [] if s not in STEPS]
    if unknown:
        print(f"gallery: unknown step {unknown[0]!r} (see --list)", file=sys.stderr)
        return 2
    g = run(args.out, only)
    print(f"{len(g.shots)} pictures in {args.out}; {len(g.problems)} chart problems")
    return 1 if args.check and g.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
