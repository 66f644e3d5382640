"""The learning-rate finder: the range test on a copy of the experiment's model, off the GUI
thread, its smoothed loss drawn live against the rate (log axis), the suggestions marked, and
one click to set a suggestion as the optimizer's rate (through the undo stack).

Opened from the optimizer panel's "Find…" button and from Tools > Find learning rate….
"""

from __future__ import annotations

import html
import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QUndoStack
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import DataError
from workbench.gui.document.experiment_model import ExperimentModel
from workbench.gui.document.undo import push_value
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.views.axes import plot_widget
from workbench.gui.widgets.fields import SciSpinBox, int_spin
from workbench.gui.widgets.style import ACCENT, ERROR, MUTED, legend_html, series_color
from workbench.spec import SpecError

if TYPE_CHECKING:
    from workbench.core.tools.lr_find import LRFindProgress, LRFindResult
    from workbench.core.workspace import Workspace

STEEP_COLOR = series_color(2)
RAW_COLOR = MUTED
MIN10_COLOR = series_color(1)


class LRFindDialog(Tool, QDialog):
    """`testFinished(LRFindResult)` when a test ends with a curve; `rateSet(float)` when a
    suggestion was applied."""

    testFinished = Signal(object)
    rateSet = Signal(float)

    def __init__(self, model: ExperimentModel, stack: QUndoStack,
                 workspace: Workspace | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model, self.undo, self.workspace = model, stack, workspace
        self.tasks = Tasks(self, workspace.jobs if workspace is not None else None)
        self.result: LRFindResult | None = None
        self._lrs: list[float] = []
        self._smoothed: list[float] = []
        self.setWindowTitle("Find a learning rate")
        self.setModal(False)

        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.start_lr = SciSpinBox(1e-12, 1.0)
        self.start_lr.setValue(1e-7)
        self.end_lr = SciSpinBox(1e-6, 1000.0)
        self.end_lr.setValue(10.0)
        self.steps = int_spin(10, 100_000, 50)
        self.steps.setValue(300)
        self.run_button = QPushButton("Run again")
        self.run_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        controls = QHBoxLayout()
        for text, widget in (("from", self.start_lr), ("to", self.end_lr),
                             ("steps", self.steps)):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.run_button)
        controls.addWidget(self.stop_button)

        self.plot = plot_widget()
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "learning rate")
        self.plot.setLabel("left", "smoothed training loss")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.raw_curve = self.plot.plot(pen=pg.mkPen(RAW_COLOR, width=1))
        self.curve = self.plot.plot(pen=pg.mkPen(ACCENT, width=2.5))
        legend = QLabel(legend_html([(RAW_COLOR, "each step", False),
                                     (ACCENT, "smoothed", False)]))
        legend.setObjectName("hint")  # above the chart, never over its curves
        self.steep_line = self._marker(STEEP_COLOR, "steepest", 0.95)
        self.min_line = self._marker(MIN10_COLOR, "minimum / 10", 0.85)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_steep = QPushButton("Use steepest")
        self.use_steep.clicked.connect(lambda: self._use(self._steep_lr()))
        self.use_min = QPushButton("Use minimum / 10")
        self.use_min.clicked.connect(lambda: self._use(self._min_lr()))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_steep)
        buttons.addWidget(self.use_min)
        buttons.addStretch(1)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(controls)
        layout.addWidget(legend)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.resize(760, 560)
        self._update_buttons()

    # -- the tool protocol -----------------------------------------------------------------
    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **_: Any) -> LRFindDialog:
        """The finder on the experiment in the editor, its test started."""
        model, undo = host.edited()
        dialog = cls(model, undo, host.workspace, host.parent_widget())
        dialog.reopen()
        return dialog

    def reopen(self) -> None:
        """Show it and test the experiment as it is now (unless a test runs)."""
        self.show()
        self.raise_()
        self.start()

    def _marker(self, color: str, name: str, height: float) -> pg.InfiniteLine:
        line = pg.InfiniteLine(angle=90, movable=False,
                               pen=pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine),
                               label=name, labelOpts={"position": height, "color": color,
                                                      "fill": (255, 255, 255, 200)})
        line.hide()
        self.plot.addItem(line)
        return line

    # -- the test -----------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.tasks.is_running("lr-find")

    def start(self) -> bool:
        """Run the test on the experiment as it is now; False when one is running."""
        if self.is_running():
            return False
        from workbench.core.tools.lr_find import LRFindError, lr_find

        spec = self.model.spec()
        start, end, steps = self.start_lr.value(), self.end_lr.value(), self.steps.value()
        self.intro.setText(
            f"Range test of <b>{html.escape(spec.name)}</b>: {spec.optim.name}, batch "
            f"{spec.train.batch_size}, the rate rising from {start:g} to {end:g} over {steps} "
            "steps on a copy of the model. Nothing is stored and the experiment is unchanged.")
        self.result = None
        self._lrs, self._smoothed = [], []
        self.curve.setData([], [])
        self.raw_curve.setData([], [])
        self.steep_line.hide()
        self.min_line.hide()
        self.plot.setXRange(math.log10(start), math.log10(end), padding=0.02)  # the rates ahead
        source = self.workspace

        def task(emit: Any, cancel: threading.Event) -> LRFindResult:
            return lr_find(spec, source=source, start_lr=start, end_lr=end, steps=steps,
                           cancel=cancel, progress=emit)

        self.tasks.start("lr-find", task, partial=self._on_progress, done=self._on_result,
                         failed=self._on_failed, finished=self._update_buttons,
                         expected=(SpecError, DataError, LRFindError),
                         title=f"Finding the learning rate of {spec.name}")
        self.status.setText("Loading the data and stepping through the rates…")
        self._update_buttons()
        return True

    def stop(self) -> None:
        """End the test early; the curve so far and its suggestions still arrive."""
        self.tasks.stop("lr-find")

    def shutdown(self) -> None:
        """Cancel the test and wait for its thread (closing the window, tests)."""
        self.tasks.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    def _on_progress(self, p: LRFindProgress) -> None:
        self._lrs += p.lrs
        self._smoothed += p.smoothed
        self._draw(self._lrs, self._smoothed)
        self.status.setText(f"Step {p.step} of {p.total}, rate {p.lrs[-1]:.3g}" if p.lrs
                            else "")

    def _on_result(self, result: LRFindResult) -> None:
        self.result = result
        self._draw(result.lrs, result.smoothed, result.losses)
        steep, low = self._steep_lr(), self._min_lr()
        if steep is not None:
            self.steep_line.show()  # first: a hidden line's label keeps its old text
            self.steep_line.setValue(math.log10(steep))
            self.steep_line.label.setFormat(f"steepest {steep:.2g}")
        self.min_line.show()
        self.min_line.setValue(math.log10(low))
        self.min_line.label.setFormat(f"min / 10 = {low:.2g}")
        how = {"diverged": "the loss exploded", "end": "the end rate was reached",
               "cancelled": "stopped"}[result.stop]
        text = (f"Stopped after {len(result.lrs)} steps ({how}) in {result.seconds:.1f} s. "
                f"Suggested rate: <b>{result.suggested_lr:.3g}</b>. ")
        text += " ".join(html.escape(n) for n in result.notes)
        self.status.setText(text)
        self._update_buttons()
        self.testFinished.emit(result)

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"<span style='color:{ERROR}'>The range test could not run: "
                            f"{html.escape(message)}</span>")
        self._update_buttons()

    def _draw(self, lrs: list[float], smoothed: list[float],
              raw: list[float] | None = None) -> None:
        x = np.asarray(lrs, dtype=float)
        y = np.asarray(smoothed, dtype=float)
        ok = np.isfinite(y)
        self.curve.setData(x[ok], y[ok])
        if raw is not None:
            r = np.asarray(raw, dtype=float)
            keep = np.isfinite(r)
            self.raw_curve.setData(x[keep], r[keep])
        if ok.any():  # the interesting part: from below the best to a little above the start
            lo, first = float(y[ok].min()), float(y[ok][0])
            hi = max(first, lo) * 1.25 + 1e-12
            self.plot.setYRange(max(0.0, lo - 0.1 * (hi - lo)), hi, padding=0)
            self.plot.setXRange(math.log10(self.start_lr.value()),
                                math.log10(max(x[-1], self.start_lr.value() * 10)), padding=0.02)

    # -- applying a suggestion ----------------------------------------------------------------
    def _steep_lr(self) -> float | None:
        return None if self.result is None else self.result.steepest_lr

    def _min_lr(self) -> float:
        return math.nan if self.result is None else self.result.min_over_10

    def _use(self, lr: float | None) -> None:
        if lr is None or not math.isfinite(lr):
            return
        lr = float(f"{lr:.3g}")  # a rate a person would type
        push_value(self.undo, self.model, "optim.lr", lr)
        self.status.setText(f"The learning rate is now {lr:g} (Edit > Undo takes it back).")
        self.rateSet.emit(lr)

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        steep = self._steep_lr()
        self.use_steep.setEnabled(not running and steep is not None)
        self.use_min.setEnabled(not running and self.result is not None)
        self.use_steep.setText(f"Use steepest ({steep:.2g})" if steep else "Use steepest")
        self.use_min.setText(f"Use minimum / 10 ({self._min_lr():.2g})"
                             if self.result is not None else "Use minimum / 10")
        self.layout().activate()  # the buttons' new texts get their room now


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.core.workspace import Workspace
    from workbench.gui.demo import demo_workspace, example_spec, show_alone
    from workbench.gui.widgets.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    dialog = LRFindDialog(ExperimentModel(example_spec()), QUndoStack(), demo_workspace())
    sys.exit(show_alone(dialog, start=dialog.start))
