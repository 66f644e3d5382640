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
import math
import sys
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.tools.compress_settings import (
    DEFAULT_CALIBRATION,
    DEFAULT_FINETUNE_EPOCHS,
    MAX_CALIBRATION,
    MAX_DROP_LIMIT,
    MAX_FINETUNE_EPOCHS,
)
from workbench.core.workspace import Workspace
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.host import StandaloneHost
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.widgets.layouts import FlowLayout, Placeholder, vertical_scroll

KIND_COLORS = {"fp32": "#4c72b0", "int8-dynamic": "#dd8452", "int8-static": "#55a868",
               "fp16": "#8172b3"}
AXIS_CHOICES = (("File size", "bytes", "file size (KB)"),
                ("Latency, batch 1", "latency_ms", "latency at batch 1 (ms)"),
                ("Latency, batch 256", "latency_ms_256", "latency at batch 256 (ms)"))
NO_FRONTIER = ("No variants measured yet: Measure variants exports this run and those pruned "
               "from it, quantizes each and plots test accuracy against size here.")
NO_RANGES = ("No value ranges yet: Measure value ranges runs a sample of the training data "
             "through the run and shows each layer's histogram here.")
RANGE_COLUMNS = ("Layer", "Tensor", "Min", "Max", "int8 step", "Round to zero")
EXPECTED: tuple[type[BaseException], ...] = ()  # filled on first use (imports torch)


def _expected() -> tuple[type[BaseException], ...]:
    """The errors that are the person's input, not bugs (their message is enough)."""
    global EXPECTED
    if not EXPECTED:
        from workbench.core.tools.calibration import CalibrationError
        from workbench.core.tools.compress import CompressError
        from workbench.core.tools.export import ExportError
        from workbench.core.tools.prune import PruneError

        EXPECTED = (CompressError, ExportError, PruneError, CalibrationError)
    return EXPECTED


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _axis_value(variant: Any, axis: str) -> float:
    value = getattr(variant.measured, axis)
    return value / 1024.0 if axis == "bytes" else value


def _describe(v: Any) -> str:
    m = v.measured
    lines = [f"{v.label}", f"run {v.run_name}",
             f"size {m.bytes / 1024:,.1f} KB",
             f"latency {m.latency_ms:.3f} ms (batch 1), {m.latency_ms_256:.2f} ms (batch 256)",
             f"test accuracy {_pct(m.test_accuracy)}, val {_pct(m.val_accuracy)}"
             if m.test_accuracy is not None else f"test MSE {m.test_loss:.4g}",
             f"agrees with its float model on {_pct(m.agreement)} of the test split"]
    if v.refused:
        lines.append(f"refused: {v.refused}")
    return "\n".join(lines)


def _picker_items(infos: list[Any]) -> list[tuple[str, str]]:
    """(run folder, text) of the runs with a trained model, as the picker lists them."""
    out = []
    for info in infos:
        if info.error or info.summary.get("status") not in ("finished", "stopped"):
            continue
        acc = info.summary.get("test_accuracy")
        name = info.summary.get("name", info.name)
        text = f"{name} ({info.name[-6:]})" + (
            f" · test {acc:.1%}" if isinstance(acc, int | float) else "")
        out.append((str(info.path), text))
    return out


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
        self.ranges: list[Any] = []
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
        self.tabs.addTab(vertical_scroll(self._ranges_tab()), "Value ranges")
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
                           for k, c in KIND_COLORS.items())
        row.addWidget(QLabel(f"{legend}  ○ pruned  <span style='color:#c0392b'>✕</span> "
                             "refused"))
        layout.addWidget(row_box)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("left", "test accuracy (%)")
        self.plot.getAxis("bottom").setLogMode(True)
        self.plot.setMinimumHeight(150)
        self.front_curve = self.plot.plot([], [], pen=pg.mkPen("#1d232b", width=2,
                                                               style=Qt.PenStyle.DashLine),
                                          name="Pareto front")
        self.scatter = pg.ScatterPlotItem(hoverable=True, tip=self._tip, hoverSize=14,
                                          hoverPen=pg.mkPen("#1d232b", width=2))
        self.scatter.sigClicked.connect(self._on_clicked)
        self.plot.addItem(self.scatter)
        self.highlight = pg.ScatterPlotItem(size=20, symbol="o", brush=None,
                                            pen=pg.mkPen("#c0392b", width=3))
        self.plot.addItem(self.highlight)
        self.frontier_placeholder = Placeholder(self.plot, NO_FRONTIER)
        split.addWidget(self.frontier_placeholder)

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

        target = QGroupBox("Compress to target: the smallest variant that keeps the accuracy")
        target_layout = QVBoxLayout(target)
        row_box = QWidget()  # wraps onto more lines when the panel is narrow
        row = FlowLayout(row_box, spacing=10, line_spacing=4)
        self.max_drop = QDoubleSpinBox()
        self.max_drop.setRange(0.0, MAX_DROP_LIMIT)
        self.max_drop.setDecimals(2)
        self.max_drop.setSingleStep(0.1)
        self.max_drop.setValue(0.5)
        self.max_drop.setSuffix(" points")
        row.add_group(QLabel("Accept losing up to"), self.max_drop)
        self.epochs = QSpinBox()
        self.epochs.setRange(0, MAX_FINETUNE_EPOCHS)
        self.epochs.setValue(DEFAULT_FINETUNE_EPOCHS)
        self.epochs.setSuffix(" epochs")
        row.add_group(QLabel("fine-tune"), self.epochs)
        self.structured = QCheckBox("whole units (structured)")
        self.structured.setChecked(True)
        self.structured.setToolTip("remove whole neurons/channels (smaller and faster); "
                                   "off: single weights, stored sparse")
        row.addWidget(self.structured)
        self.target_button = QPushButton("Find the smallest")
        self.stop_button = QPushButton("Stop")
        row.add_group(self.target_button, self.stop_button)
        target_layout.addWidget(row_box)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(72)  # four lines: the chart keeps the room
        self.log.setPlaceholderText("Each step of the search: the sensitivity sweep, then each "
                                    "pruned, fine-tuned and quantized run.")
        target_layout.addWidget(self.log)
        layout.addWidget(target)

        self.axis.currentIndexChanged.connect(lambda _: self._draw())
        self.export_button.clicked.connect(self.export_selected)
        self.target_button.clicked.connect(self.start_target)
        self.stop_button.clicked.connect(self.stop_target)
        return tab

    def _ranges_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        row_box = QWidget()  # wraps onto more lines when the panel is narrow
        row = FlowLayout(row_box, spacing=10, line_spacing=4)
        self.ranges_button = QPushButton("Measure value ranges")
        self.samples = QSpinBox()
        self.samples.setRange(1, MAX_CALIBRATION)
        self.samples.setValue(DEFAULT_CALIBRATION)
        self.samples.setSuffix(" calibration samples")
        self.layer = QComboBox()
        self.layer.setMinimumContentsLength(24)
        row.addWidget(self.ranges_button)
        row.addWidget(self.samples)
        row.add_group(QLabel("Show"), self.layer)
        layout.addWidget(row_box)
        explain = QLabel("Shaded: the span 8 bits cover at each tensor's scale (weights "
                         "symmetric per tensor, activations over min..max); values left of it "
                         "round to zero.")
        explain.setObjectName("hint")
        explain.setWordWrap(True)
        layout.addWidget(explain)
        self.hist_legend = QLabel("")  # beside the bars, never over them
        self.hist_legend.setWordWrap(True)
        layout.addWidget(self.hist_legend)
        self.hist = pg.PlotWidget(background="w")
        self.hist.setLabel("bottom", "log2 |value|")
        self.hist.setLabel("left", "share of values (%)")
        self.hist.showGrid(x=True, y=True, alpha=0.3)
        self.hist.setMinimumHeight(130)
        self.ranges_placeholder = Placeholder(self.hist, NO_RANGES)
        layout.addWidget(self.ranges_placeholder, 1)
        self.range_note = QLabel("Measure the ranges on a sample of the run's training data.")
        self.range_note.setWordWrap(True)
        layout.addWidget(self.range_note)
        self.range_table = QTableWidget(0, len(RANGE_COLUMNS))
        self.range_table.setHorizontalHeaderLabels(RANGE_COLUMNS)
        self.range_table.verticalHeader().setVisible(False)
        self.range_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.range_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        header = self.range_table.horizontalHeader()  # each column as wide as its header
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.range_table.setMaximumHeight(200)
        layout.addWidget(self.range_table)
        self.ranges_button.clicked.connect(self.measure_ranges)
        self.layer.currentIndexChanged.connect(lambda _: self._draw_ranges())
        self.range_table.currentCellChanged.connect(
            lambda row, *_: self._select_range_row(row))
        return tab

    # -- tasks ----------------------------------------------------------------------------
    def _start(self, name: str, task: Any, done: Any, *, progress: Any = None) -> None:
        """Run `task` off the GUI thread as this panel's task `name` (replacing the last)."""
        self.tasks.start(name, task, done=done, partial=progress,
                         failed=lambda message: self._on_failed(name, message),
                         finished=self._set_busy, expected=_expected())
        self._set_busy()

    def _running(self, name: str) -> bool:
        return self.tasks.is_running(name)

    def _set_busy(self) -> None:
        has_run = self.run_dir is not None
        working = self._running("measure") or self._running("target")
        self.measure_button.setEnabled(has_run and not working)
        self.target_button.setEnabled(has_run and not working)
        self.stop_button.setEnabled(self._running("target"))
        self.ranges_button.setEnabled(has_run and not self._running("ranges"))
        self.picker.setEnabled(not working)

    def _on_failed(self, name: str, message: str) -> None:
        text = f"<span style='color:#c0392b'>{html.escape(message)}</span>"
        if name == "ranges":
            self.range_note.setText(text)
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
        self._start("list", lambda report, cancel: _picker_items(runs.list()), self._on_runs)

    def follow(self, feed: Any) -> None:
        """Keep the picker in step with a `RunFeed` (the Runs list's): runs made anywhere
        appear without Refresh list."""
        feed.listed.connect(self._on_infos)

    def _on_infos(self, infos: list[Any]) -> None:
        if not self._running("list"):
            self._on_runs(_picker_items(infos))

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
        self.ranges = []
        self.layer.clear()
        self.range_table.setRowCount(0)
        self.hist.clear()
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
            best = target.get("best") or {}
            ratio = target.get("ratio")
            self.log.appendPlainText(
                f"Last search: within {target.get('max_drop')} points, the smallest was "
                f"{best.get('label', 'none')}"
                + (f" ({best.get('run_name')}), {ratio:.1f}x smaller than the float original"
                   if isinstance(ratio, int | float) else "")
                + f"; {len(target.get('steps', []))} steps.")
        self._show_frontier(variants)

    def _show_frontier(self, variants: list[Any]) -> None:
        self.variants = variants
        self.frontier_placeholder.show_content(bool(variants))
        self._draw()
        runs = {v.run_dir for v in variants}
        if variants:
            self.status.setText(f"{len(variants)} variants of {len(runs)} run"
                                f"{'s' if len(runs) != 1 else ''} (this one and those pruned "
                                "from it), measured with onnxruntime on this machine.")
        else:
            self.status.setText("Not measured yet: press Measure variants (a minute or so), "
                                "or Find the smallest.")
        self.frontierShown.emit(variants)

    # -- the plot -------------------------------------------------------------------------
    def _axis(self) -> tuple[str, str]:
        _, key, label = AXIS_CHOICES[self.axis.currentIndex()]
        return key, label

    def _draw(self) -> None:
        from workbench.core.tools.compress import pareto

        key, label = self._axis()
        self.plot.setLabel("bottom", label)
        regression = any(v.measured.test_accuracy is None for v in self.variants)
        self.plot.setLabel("left", "minus test MSE" if regression else "test accuracy (%)")
        spots = []
        for i, v in enumerate(self.variants):
            x = _axis_value(v, key)
            if x <= 0 or not math.isfinite(v.quality):
                continue
            color = KIND_COLORS.get(v.kind, "#333333")
            y = v.quality * (1 if regression else 100)
            if v.refused:
                spots.append({"pos": (math.log10(x), y), "data": i, "symbol": "x",
                              "size": 12, "brush": pg.mkBrush("#c0392b"),
                              "pen": pg.mkPen("#c0392b")})
            else:
                pruned = v.pruning is not None
                spots.append({"pos": (math.log10(x), y), "data": i,
                              "symbol": "o", "size": 11,
                              "brush": pg.mkBrush("#ffffff" if pruned else color),
                              "pen": pg.mkPen(color, width=2.5)})
        self.scatter.setData(spots)
        self.front = pareto(self.variants, key) if self.variants else []
        xs = [math.log10(_axis_value(v, key)) for v in self.front]
        ys = [v.quality * (1 if regression else 100) for v in self.front]
        self.front_curve.setData(xs, ys, stepMode=None)
        self._draw_highlight()
        if spots:  # at once, not at the next paint: a click may come before it
            self.plot.getPlotItem().vb.autoRange(padding=0.08)

    def _draw_highlight(self) -> None:
        if self.selected is None or self.selected not in self.variants:
            self.highlight.setData([])
            return
        key, _ = self._axis()
        v = self.selected
        regression = v.measured.test_accuracy is None
        self.highlight.setData([{"pos": (math.log10(max(_axis_value(v, key), 1e-12)),
                                         v.quality * (1 if regression else 100))}])

    def _tip(self, x: float, y: float, data: Any) -> str:
        if isinstance(data, int) and 0 <= data < len(self.variants):
            return _describe(self.variants[data])
        return ""

    def _on_clicked(self, _item: Any, points: Any, *_: Any) -> None:
        if len(points):
            self.select_variant(points[0].data())

    def select_variant(self, index: int) -> None:
        """Select the variant at `index` of `variants` (what a click on its point does)."""
        v = self.variants[index]
        self.selected = v
        on_front = any(f is v for f in self.front)
        self.details.setText(
            "<b>" + html.escape(v.label) + "</b>" + (" · on the Pareto front" if on_front
                                                    else "")
            + "<br>" + html.escape(_describe(v)).replace("\n", "<br>"))
        self.export_button.setEnabled(v.refused is None)
        self._draw_highlight()
        self.variantSelected.emit(v)

    def export_selected(self) -> Any:
        """Open the Export tool on the selected variant's run, its quantization chosen."""
        if self.selected is None:
            return None
        mode = {"int8-dynamic": "dynamic", "int8-static": "static",
                "fp16": "fp16"}.get(self.selected.kind)
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
                    progress=lambda item: self.status.setText(
                        f"Measuring… {item}" if isinstance(item, str) else
                        "Measuring… " + ", ".join(sorted({v.run_name[-6:] for v in item}))
                        + " done"))

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
        self._start("target", task, self._on_target, progress=self._on_target_step)

    def stop_target(self) -> None:
        """End the search after the step in flight; what it found still arrives."""
        if self._running("target"):
            self.tasks.stop("target")
            self.log.appendPlainText("Stopping after the step in flight…")

    def _on_target_step(self, item: Any) -> None:
        from workbench.core.tools.compress import TargetStep, in_points
        from workbench.core.training.events import EpochEnded

        if isinstance(item, TargetStep):
            verdict = "holds" if item.holds else "too far"
            self.log.appendPlainText(f"{item.action}: {verdict}, {in_points(item.drop)}: "
                                     f"{item.note}")
            if item.action == "probe":
                self.load_frontier()
        elif isinstance(item, EpochEnded):
            self.log.appendPlainText(f"   fine-tuning epoch {item.epoch}: val accuracy "
                                     f"{_pct(item.val_accuracy)}")

    def _on_target(self, result: Any) -> None:
        self.target = result
        best = result.best
        if best is None:
            self.log.appendPlainText("No variant holds.")
        else:
            m = best.measured
            self.log.appendPlainText(
                f"Smallest within {result.max_drop:g} points: {best.label} ({best.run_name}), "
                f"{m.bytes / 1024:,.1f} KB, {result.reference_bytes / m.bytes:.1f}x smaller "
                f"than the float original; val {_pct(m.val_accuracy)} (original "
                f"{_pct(result.reference_val_accuracy)}), test {_pct(m.test_accuracy)} "
                f"(original {_pct(result.reference_test_accuracy)})."
                + (" Stopped early." if result.stopped else ""))
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

        run_dir, count, workspace = self.run_dir, self.samples.value(), self.workspace
        self.range_note.setText("Measuring value ranges…")
        self._start("ranges", lambda report, cancel: run_value_ranges(
            run_dir, count, source=workspace, cancel=cancel), self._show_ranges)

    def _show_ranges(self, ranges: list[Any]) -> None:
        self.ranges = ranges
        self.layer.blockSignals(True)
        self.layer.clear()
        for label in dict.fromkeys(r.label for r in ranges):
            self.layer.addItem(label)
        self.layer.blockSignals(False)
        self.range_table.setRowCount(len(ranges))
        for row, r in enumerate(ranges):
            values = (r.label, r.tensor, f"{r.minimum:.4g}", f"{r.maximum:.4g}",
                      f"{r.step:.3g}", f"{r.underflow:.2%}")
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                if col >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if col == 5 and r.underflow > 0.05:
                    item.setForeground(pg.mkColor("#c0392b"))
                self.range_table.setItem(row, col, item)
        worst = max(ranges, key=lambda r: r.underflow, default=None)
        self.range_note.setText(
            f"{len(ranges)} tensors on {self.samples.value()} calibration samples."
            + (f" Most affected: {worst.label} {worst.tensor}, {worst.underflow:.1%} of its "
               "nonzero values round to zero." if worst else ""))
        self._draw_ranges()
        self.rangesShown.emit(ranges)

    def _select_range_row(self, row: int) -> None:
        if 0 <= row < len(self.ranges):
            index = self.layer.findText(self.ranges[row].label)
            if index >= 0:
                self.layer.setCurrentIndex(index)

    def _draw_ranges(self) -> None:
        self.hist.clear()
        label = self.layer.currentText()
        chosen = [r for r in self.ranges if r.label == label]
        legend = []
        width = 0.4
        for offset, r in zip((-width / 2, width / 2), chosen, strict=False):
            if not r.counts:
                continue
            total = max(1, sum(r.counts))
            color = pg.mkColor("#4c72b0" if r.tensor == "weights" else "#dd8452")
            bars = pg.BarGraphItem(x=[e + 0.5 + offset for e in r.exponents],
                                   height=[100.0 * c / total for c in r.counts], width=width,
                                   brush=color, pen=pg.mkPen(color))
            self.hist.addItem(bars)
            legend.append(f"<span style='color:{color.name()}'>■</span>&nbsp;"
                          f"{html.escape(r.tensor)}: {r.underflow:.1%} round to zero")
            low, high = r.covered
            shade = pg.mkColor(color)
            shade.setAlpha(35)
            edge = pg.mkColor(color)
            edge.setAlpha(160)
            self.hist.addItem(pg.LinearRegionItem(values=(low - 1, high), movable=False,
                                                  brush=pg.mkBrush(shade), pen=pg.mkPen(edge)))
        self.hist_legend.setText("&nbsp;&nbsp; ".join(legend))
        self.ranges_placeholder.show_content(bool(legend))
        if chosen:
            self.hist.enableAutoRange()


if __name__ == "__main__":
    import tempfile

    from PySide6.QtWidgets import QApplication

    from workbench.gui.tools.prune.panel import sample_run
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
