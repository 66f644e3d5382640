"""The Compress view: a run's size / speed / accuracy frontier, compress-to-target, value ranges.

The frontier plots every measured variant of the run and of the runs pruned from it (float,
int8, fp16; measured with onnxruntime on this machine) as test accuracy against file size or
latency, and draws the Pareto front; hovering a point shows its numbers, clicking it selects it
for export. "Find the smallest" searches pruning amounts, fine-tunes, quantizes and verifies,
and reports the smallest variant within the accuracy the person accepts losing. The value
ranges tab shows, layer by layer, the histogram of log2|x| on the calibration sample against
the span that 8 bits cover, as MATLAB's Deep Network Quantizer does. Every file read and every
measurement runs off the GUI thread.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.workspace import Workspace
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.compress.frontier import FrontierPlot
from workbench.gui.tools.compress.presenter import (
    AXIS_CHOICES,
    EXPORT_MODES,
    describe,
    expected_errors,
    family_text,
    last_target_text,
    measuring_text,
    picker_items,
    target_result_text,
    target_step_text,
)
from workbench.gui.tools.compress.ranges import RangesPage
from workbench.gui.tools.compress.target_box import TargetBox
from workbench.gui.tools.host import StandaloneHost
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.widgets.layouts import FlowLayout, vertical_scroll
from workbench.gui.widgets.style import ALERT, VARIANT_COLORS


class CompressPanel(Tool, QWidget):
    """Compress runs of the workspace; `set_run(run_dir)` picks one (the picker does too)."""

    frontierShown = Signal(object)  # the variants, after the plot shows them
    variantSelected = Signal(object)
    targetDone = Signal(object)  # TargetResult
    rangesShown = Signal(object)  # list of ValueRange
    runsListed = Signal()

    def __init__(self, workspace: Workspace, parent: QWidget | None = None, *,
                 run_dir: str | None = None, host: ToolHost | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self._own_host = host is None  # alone: the Export it opens is its own
        self.host: ToolHost = host if host is not None else StandaloneHost(workspace, self)
        self.runs = workspace.runs
        self.run_dir: str | None = None
        self.variants: list[Any] = []
        self.front: list[Any] = []
        self.selected: Any = None
        self.target: Any = None
        self.export_dialog: Any = None
        self._wanted = run_dir
        self.tasks = Tasks(self, workspace.jobs)
        self._build()
        self._set_busy()
        self.refresh_runs()

    # -- the tool protocol -----------------------------------------------------------------
    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **_: Any) -> CompressPanel:
        panel = cls(host.workspace, host.parent_widget(), run_dir=run_dir, host=host)
        feed = host.run_feed()
        if feed is not None:
            panel.follow(feed)
        return panel

    def show_run(self, run_dir: str, **_: Any) -> None:
        self.set_run(run_dir)

    def working_on(self) -> str | None:
        return self.run_dir

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run"))
        self.picker = QComboBox()
        self.picker.setMinimumContentsLength(16)  # grows with the panel; narrow, it elides
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        top.addWidget(self.picker, 1)
        self.refresh_button = QPushButton("Refresh list")
        self.measure_button = QPushButton("Measure variants")
        self.measure_button.setToolTip("export the run and every run pruned from it, quantize "
                                       "each, and measure size, latency and accuracy with "
                                       "onnxruntime on this machine")
        top.addWidget(self.refresh_button)
        top.addWidget(self.measure_button)
        root.addLayout(top)
        self.status = QLabel("Pick a trained run.")
        self.status.setWordWrap(True)
        root.addWidget(self.status)

        self.tabs = QTabWidget()
        # each tab scrolls down on a short screen rather than outgrow it
        self.tabs.addTab(vertical_scroll(self._frontier_tab()), "Frontier")
        self.ranges_page = RangesPage()
        self.ranges_page.measureRequested.connect(self.measure_ranges)
        self.tabs.addTab(vertical_scroll(self.ranges_page), "Value ranges")
        root.addWidget(self.tabs, 1)

        self.picker.currentIndexChanged.connect(self._on_pick)
        self.refresh_button.clicked.connect(self.refresh_runs)
        self.measure_button.clicked.connect(self.measure)

    def _frontier_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        row_box = QWidget()  # the legend wraps below the axis choice when the panel is narrow
        row = FlowLayout(row_box, spacing=16, line_spacing=4)
        self.axis = QComboBox()
        for text, _, _ in AXIS_CHOICES:
            self.axis.addItem(text)
        row.add_group(QLabel("Accuracy against"), self.axis)
        legend = "  ".join(f"<span style='color:{c}'>●</span> {k}"
                           for k, c in VARIANT_COLORS.items())
        row.addWidget(QLabel(f"{legend}  ○ pruned  <span style='color:{ALERT}'>✕</span> "
                             "refused"))
        layout.addWidget(row_box)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.frontier = FrontierPlot()
        self.frontier.clicked.connect(self.select_variant)
        self.plot, self.scatter = self.frontier.plot, self.frontier.scatter
        self.front_curve = self.frontier.front_curve
        split.addWidget(self.frontier)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        self.details = QLabel("Click a point to select it.")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.details.setMinimumWidth(180)
        side_layout.addWidget(self.details, 1)
        self.export_button = QPushButton("Export this variant…")
        self.export_button.setEnabled(False)
        side_layout.addWidget(self.export_button)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout.addWidget(split, 1)

        self.target_box = TargetBox()
        layout.addWidget(self.target_box)
        box = self.target_box  # what the panel reads and the tests press
        self.max_drop, self.epochs, self.structured = box.max_drop, box.epochs, box.structured
        self.target_button, self.stop_button, self.log = box.target_button, box.stop_button, box.log

        self.axis.currentIndexChanged.connect(lambda _: self._draw())
        self.export_button.clicked.connect(self.export_selected)
        self.target_button.clicked.connect(self.start_target)
        self.stop_button.clicked.connect(self.stop_target)
        return tab

    # -- tasks ----------------------------------------------------------------------------
    def _start(self, name: str, task: Any, done: Any, *, progress: Any = None,
               title: str | None = None) -> None:
        """Run `task` off the GUI thread as this panel's task `name` (replacing the last);
        `title` names a long one for closing to ask about."""
        self.tasks.start(name, task, done=done, partial=progress,
                         failed=lambda message: self._on_failed(name, message),
                         finished=self._set_busy, expected=expected_errors(), title=title)
        self._set_busy()

    def _running(self, name: str) -> bool:
        return self.tasks.is_running(name)

    def _set_busy(self) -> None:
        has_run = self.run_dir is not None
        working = self._running("measure") or self._running("target")
        self.measure_button.setEnabled(has_run and not working)
        self.target_button.setEnabled(has_run and not working)
        self.stop_button.setEnabled(self._running("target"))
        self.ranges_page.ranges_button.setEnabled(has_run and not self._running("ranges"))
        self.picker.setEnabled(not working)

    def _on_failed(self, name: str, message: str) -> None:
        text = f"<span style='color:{ALERT}'>{html.escape(message)}</span>"
        if name == "ranges":
            self.ranges_page.note.setText(text)
        elif name == "target":
            self.log.appendPlainText(f"failed: {message}")
            self.status.setText(text)
        else:
            self.status.setText(text)

    def busy(self) -> bool:
        return self.tasks.is_running() or self.tasks.threads() > 0

    def shutdown(self) -> None:
        """Stop every background task and wait for its thread (closing)."""
        self.tasks.shutdown()
        if self._own_host:
            self.host.shutdown()  # type: ignore[attr-defined]  # a StandaloneHost

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)

    # -- the run --------------------------------------------------------------------------
    def refresh_runs(self) -> None:
        """List the finished runs (off the GUI thread) into the picker."""
        runs = self.runs
        self._start("list", lambda report, cancel: picker_items(runs.list()), self._on_runs)

    def follow(self, feed: Any) -> None:
        """Keep the picker in step with a `RunFeed` (the Runs list's): runs made anywhere
        appear without Refresh list."""
        feed.listed.connect(self._on_infos)

    def _on_infos(self, infos: list[Any]) -> None:
        if not self._running("list"):
            self._on_runs(picker_items(infos))

    def _on_runs(self, items: list[tuple[str, str]]) -> None:
        current = self._wanted or self.run_dir
        self.picker.blockSignals(True)
        self.picker.clear()
        for path, text in items:
            self.picker.addItem(text, path)
        self.picker.blockSignals(False)
        if not items:
            self.status.setText("No finished run yet: train a model first.")
        index = self.picker.findData(current) if current else -1
        self._wanted = None
        if index < 0 and items:
            index = 0
        if index >= 0:
            self.picker.setCurrentIndex(index)
            if self.picker.itemData(index) != self.run_dir:
                self._on_pick(index)
        self.runsListed.emit()

    def set_run(self, run_dir: str) -> None:
        """Show `run_dir` (listing it first when the picker does not have it yet)."""
        index = self.picker.findData(str(run_dir))
        if index >= 0:
            self.picker.setCurrentIndex(index)
            if self.run_dir != str(run_dir):
                self._on_pick(index)
        else:
            self._wanted = str(run_dir)
            self.refresh_runs()

    def _on_pick(self, index: int) -> None:
        run_dir = self.picker.itemData(index)
        if not run_dir or run_dir == self.run_dir and self.variants:
            return
        for name in ("frontier", "ranges"):
            self.tasks.cancel(name)
        self.run_dir = str(run_dir)
        self.selected = None
        self.ranges_page.clear()
        self.export_button.setEnabled(False)
        self.details.setText("Click a point to select it.")
        self.log.clear()
        self.load_frontier()
        self._set_busy()

    def load_frontier(self) -> None:
        """Read the measured variants of the run's family (off the GUI thread) and draw."""
        if self.run_dir is None:
            return
        from workbench.core.tools.compress import frontier, last_target

        run_dir, runs = self.run_dir, self.runs
        self._start("frontier", lambda report, cancel: (frontier(run_dir, runs),
                                                         last_target(run_dir)),
                    self._on_loaded)

    def _on_loaded(self, loaded: tuple[list[Any], dict[str, Any] | None]) -> None:
        variants, target = loaded
        if target and not self._running("target") and not self.log.toPlainText():
            self.log.appendPlainText(last_target_text(target))
        self._show_frontier(variants)

    def _show_frontier(self, variants: list[Any]) -> None:
        self.variants = variants
        self.frontier.placeholder.show_content(bool(variants))
        self._draw()
        self.status.setText(family_text(variants))
        self.frontierShown.emit(variants)

    # -- the plot -------------------------------------------------------------------------
    def _axis(self) -> tuple[str, str]:
        _, key, label = AXIS_CHOICES[self.axis.currentIndex()]
        return key, label

    def _draw(self) -> None:
        key, label = self._axis()
        self.front = self.frontier.draw(self.variants, key, label)
        self._draw_highlight()

    def _draw_highlight(self) -> None:
        self.frontier.highlight_variant(self.selected, self._axis()[0])

    def select_variant(self, index: int) -> None:
        """Select the variant at `index` of `variants` (what a click on its point does)."""
        v = self.variants[index]
        self.selected = v
        on_front = any(f is v for f in self.front)
        self.details.setText(
            "<b>" + html.escape(v.label) + "</b>" + (" · on the Pareto front" if on_front
                                                    else "")
            + "<br>" + html.escape(describe(v)).replace("\n", "<br>"))
        self.export_button.setEnabled(v.refused is None)
        self._draw_highlight()
        self.variantSelected.emit(v)

    def export_selected(self) -> Any:
        """Open the Export tool on the selected variant's run, its quantization chosen."""
        if self.selected is None:
            return None
        mode = EXPORT_MODES.get(self.selected.kind)
        dialog = self.host.open_tool("export", self.selected.run_dir, quantize=mode)
        if dialog is not None and dialog is not self.export_dialog:
            dialog.exported.connect(self._exported)
            self.export_dialog = dialog
        return dialog

    def _exported(self, _result: Any) -> None:
        self.load_frontier()

    # -- measuring ------------------------------------------------------------------------
    def measure(self) -> None:
        """Measure every variant of the run's family that is not measured yet."""
        if self.run_dir is None or self._running("measure") or self._running("target"):
            return
        from workbench.core.tools.compress import measure_family

        run_dir, workspace = self.run_dir, self.workspace

        def task(report: Any, cancel: Any) -> list[Any]:
            return measure_family(run_dir, workspace.runs, report=report, cancel=cancel,
                                  source=workspace)

        self.status.setText("Measuring: exporting, quantizing and timing each variant…")
        self._start("measure", task, self._show_frontier,
                    progress=lambda item: self.status.setText(measuring_text(item)),
                    title=f"Measuring the variants of {Path(run_dir).name}")

    # -- compress to target ---------------------------------------------------------------
    def start_target(self) -> None:
        """Search for the smallest variant within the accepted accuracy drop."""
        if self.run_dir is None or self._running("target") or self._running("measure"):
            return
        from workbench.core.tools.compress import compress_to_target

        run_dir, workspace = self.run_dir, self.workspace
        drop, epochs = self.max_drop.value(), self.epochs.value()
        structured = self.structured.isChecked()

        def task(report: Any, cancel: Any) -> Any:
            return compress_to_target(run_dir, drop, runs=workspace.runs,
                                      finetune_epochs=epochs, structured=structured,
                                      report=report, cancel=cancel, source=workspace)

        self.log.clear()
        self.log.appendPlainText(f"Searching for the smallest variant within {drop:g} points "
                                 f"(pruning {'units' if structured else 'weights'}, {epochs} "
                                 "fine-tuning epochs each)…")
        self._start("target", task, self._on_target, progress=self._on_target_step,
                    title=f"Compressing {Path(run_dir).name} to a target")

    def stop_target(self) -> None:
        """End the search after the step in flight; what it found still arrives."""
        if self._running("target"):
            self.tasks.stop("target")
            self.log.appendPlainText("Stopping after the step in flight…")

    def _on_target_step(self, item: Any) -> None:
        line, probed = target_step_text(item)
        if line:
            self.log.appendPlainText(line)
        if probed:
            self.load_frontier()

    def _on_target(self, result: Any) -> None:
        self.target = result
        best = result.best
        self.log.appendPlainText(target_result_text(result))
        from workbench.core.tools.compress import frontier

        run_dir, runs = self.run_dir, self.runs

        def select_best(variants: list[Any]) -> None:
            self._show_frontier(variants)
            if best is not None:
                index = next((i for i, v in enumerate(variants) if v.run_dir == best.run_dir
                              and v.kind == best.kind), None)
                if index is not None:
                    self.select_variant(index)
            self.targetDone.emit(result)

        self._start("frontier", lambda report, cancel: frontier(run_dir, runs), select_best)
        self.refresh_runs()  # the search's pruned runs join the picker

    # -- value ranges ---------------------------------------------------------------------
    def measure_ranges(self) -> None:
        """Compute each layer's value ranges on the calibration sample."""
        if self.run_dir is None:
            return
        from workbench.core.tools.calibration import run_value_ranges

        run_dir, workspace = self.run_dir, self.workspace
        count = self.ranges_page.samples.value()
        self.ranges_page.note.setText("Measuring value ranges…")
        self._start("ranges", lambda report, cancel: run_value_ranges(
            run_dir, count, source=workspace, cancel=cancel), self._show_ranges)

    def _show_ranges(self, ranges: list[Any]) -> None:
        self.ranges_page.show_ranges(ranges)
        self.rangesShown.emit(ranges)


if __name__ == "__main__":
    import tempfile

    from PySide6.QtWidgets import QApplication

    from workbench.gui.demo import sample_run
    from workbench.gui.widgets.style import apply_style

    app = QApplication(sys.argv)
    apply_style(app)
    if len(sys.argv) > 1:
        chosen = sys.argv[1]
        workspace = Workspace(Path(chosen).parent)
    else:
        workspace = Workspace(tempfile.mkdtemp(prefix="workbench-compress-"))
        chosen = sample_run(workspace.runs)
    panel = CompressPanel(workspace, run_dir=chosen)
    panel.resize(1100, 760)
    panel.show()
    sys.exit(app.exec())
