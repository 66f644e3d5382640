"""The Export dialog: a run to ONNX (with safetensors and a PyTorch script), verified.

The export and its verification run off the GUI thread, on the run's data from the workspace's
cache. The dialog shows what onnxruntime
gave against PyTorch at batch sizes 1 and 37; a failed check is shown as an error and no
file is left behind. Files beside the named one that exist already (the weights, the script)
are overwritten only when the person says so. With a quantization chosen it writes the int8 (or
fp16) network instead, and shows it against the float one, both measured with onnxruntime:
size, latency at batch 1 and 256, test accuracy and agreement; a quantization that breaks the
network is refused.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.tools.compress_settings import (
    DEFAULT_CALIBRATION,
    DEFAULT_MAX_DROP,
    MAX_CALIBRATION,
    MAX_DROP_LIMIT,
)
from workbench.core.tools.export import (
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    RTOL,
    ExportError,
    ExportResult,
    check_destination,
    export_run,
)
from workbench.core.workspace import Workspace
from workbench.gui.threads.run_feed import RunCombo, RunFeed
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.widgets import dialogs
from workbench.gui.widgets.style import ALERT, GOOD

EXTRAS_TEXT = ("Also write the weights (.safetensors) and a PyTorch script (.py) that "
               "rebuilds and retrains the model")
QUANTIZE_CHOICES = (  # (menu text, mode)
    ("None: float32", None),
    ("int8, dynamic (weights; for Linear-heavy networks)", "dynamic"),
    ("int8, static (calibrated on training samples; for conv networks)", "static"),
    ("float16", "fp16"),
)


class ExportDialog(Tool, QDialog):
    """Export `run_dir` (the run picker switches it; it follows `feed`, the Runs list's, when
    given); `exported(ExportResult)` or `exportFailed(message)` when done."""

    exported = Signal(object)
    exportFailed = Signal(str)

    def __init__(self, run_dir: str, workspace: Workspace, parent: QWidget | None = None, *,
                 quantize: str | None = None, feed: RunFeed | None = None) -> None:
        super().__init__(parent)
        self.run_dir = str(run_dir)
        self.workspace = workspace
        self.result: ExportResult | None = None
        self.tasks = Tasks(self, workspace.jobs)
        self.setWindowTitle(f"Export {Path(run_dir).name}")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.picker = RunCombo(workspace.runs, jobs=workspace.jobs)
        self.picker.set_run(self.run_dir)
        self.picker.runChosen.connect(self.set_run)
        form.addRow("Run", self.picker)
        self.path_edit = QLineEdit(str(Path(run_dir) / "model.onnx"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form.addRow("ONNX file", row)
        self.opset = QSpinBox()
        self.opset.setRange(MIN_OPSET, MAX_OPSET)
        self.opset.setValue(DEFAULT_OPSET)
        form.addRow("Opset", self.opset)
        self.raw_input = QCheckBox("Normalization inside the graph (feed raw pixels 0..255 as "
                                   "float32)")
        form.addRow("", self.raw_input)
        self.extras = QCheckBox(EXTRAS_TEXT)
        self.extras.setChecked(True)
        self._extras_wanted = True  # the person's choice, kept while a quantization hides it
        self.extras.toggled.connect(self._extras_toggled)
        form.addRow("", self.extras)
        self.quantize = QComboBox()
        for text, mode in QUANTIZE_CHOICES:
            self.quantize.addItem(text, mode)
        self.quantize.setCurrentIndex(max(0, self.quantize.findData(quantize)))
        form.addRow("Quantize", self.quantize)
        self.calibration = QSpinBox()
        self.calibration.setRange(1, MAX_CALIBRATION)
        self.calibration.setValue(DEFAULT_CALIBRATION)
        self.calibration.setSuffix(" training samples")
        form.addRow("Calibration", self.calibration)
        self.max_drop = QDoubleSpinBox()
        self.max_drop.setRange(0.0, MAX_DROP_LIMIT)
        self.max_drop.setDecimals(2)
        self.max_drop.setSingleStep(0.1)
        self.max_drop.setValue(DEFAULT_MAX_DROP)
        self.max_drop.setSuffix(" accuracy points")
        self.max_drop.setToolTip("a quantized file that loses more test accuracy than this is "
                                 "refused and not written")
        form.addRow("Refuse past", self.max_drop)
        self.quantize.currentIndexChanged.connect(self._on_quantize)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.export_button = QPushButton("Export and verify")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.status = QLabel("The model is checked with onnx.checker and run in onnxruntime "
                             "against PyTorch on test samples at batch sizes 1 and 37.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setMinimumWidth(560)
        layout.addWidget(self.status)
        self._on_quantize()
        if feed is not None:
            self.picker.follow(feed)
        else:
            self.picker.refresh()

    # -- the tool protocol -----------------------------------------------------------------
    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **options: Any
                  ) -> ExportDialog | None:
        """Export `run_dir`; option `quantize` picks the quantization (None: float32)."""
        if run_dir is None:
            return None  # the registry's `needs_run`: the window said why
        return cls(run_dir, host.workspace, host.parent_widget(),
                   quantize=options.get("quantize"), feed=host.run_feed())

    def show_run(self, run_dir: str, **options: Any) -> None:
        """Export `run_dir` (quantized as option `quantize` says, when given)."""
        if run_dir != self.run_dir:
            self.set_run(run_dir)
        if "quantize" in options:
            self.quantize.setCurrentIndex(max(0, self.quantize.findData(options["quantize"])))

    def working_on(self) -> str | None:
        return self.run_dir

    def set_run(self, run_dir: str) -> None:
        """Export another run; a file name left inside the old run's folder moves to the new
        one's (a name the person chose elsewhere stays)."""
        if self.tasks.is_running("export"):
            self.picker.set_run(self.run_dir)
            return
        old, self.run_dir = Path(self.run_dir), str(run_dir)
        self.picker.set_run(self.run_dir)
        self.setWindowTitle(f"Export {Path(run_dir).name}")
        path = Path(self.path_edit.text().strip())
        if path.parent == old:
            self.path_edit.setText(str(Path(run_dir) / path.name))
        self.result = None

    def _extras_toggled(self, on: bool) -> None:
        if self.extras.isEnabled():
            self._extras_wanted = on

    def _on_quantize(self, _: int = 0) -> None:
        mode = self.quantize.currentData()
        self.calibration.setEnabled(mode == "static")
        self.max_drop.setEnabled(mode is not None)
        # the box shows what the export writes: a quantized export writes the ONNX file alone
        self.extras.setEnabled(mode is None)
        self.extras.blockSignals(True)
        self.extras.setChecked(self._extras_wanted if mode is None else False)
        self.extras.blockSignals(False)
        self.extras.setToolTip("" if mode is None else
                               "A quantized export writes only its ONNX file; the weights and "
                               "the script come with a float32 export")
        path = self.path_edit.text().strip()
        stem = Path(path).stem
        for suffix in (".int8-dynamic", ".int8-static", ".fp16"):
            stem = stem.removesuffix(suffix)
        if path.endswith(".onnx"):
            tag = {None: "", "dynamic": ".int8-dynamic", "static": ".int8-static",
                   "fp16": ".fp16"}[mode]
            self.path_edit.setText(str(Path(path).with_name(f"{stem}{tag}.onnx")))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export to ONNX", self.path_edit.text(),
                                              "ONNX models (*.onnx)")
        if path:
            self.path_edit.setText(path if path.endswith(".onnx") else path + ".onnx")

    def start_export(self) -> None:
        if self.tasks.is_running("export"):
            return
        run_dir, out = self.run_dir, self.path_edit.text().strip()
        opset, raw, extras = self.opset.value(), self.raw_input.isChecked(), \
            self.extras.isChecked()
        workspace = self.workspace
        mode = self.quantize.currentData()
        calibration, max_drop = self.calibration.value(), self.max_drop.value()
        overwrite = self._may_overwrite(out, extras and mode is None)
        if overwrite is None:
            return

        def task(report: Any, cancel: Any) -> Any:
            if mode is not None:
                from workbench.core.tools.quantize import QuantizeConfig, quantize_run

                return quantize_run(run_dir, out, QuantizeConfig(
                    mode=mode, calibration=calibration, max_drop=max_drop),
                    opset=opset, normalize_in_graph=raw, source=workspace)
            return export_run(run_dir, out, opset=opset, normalize_in_graph=raw,
                              weights=extras, script=extras, overwrite=overwrite,
                              source=workspace)

        self.export_button.setEnabled(False)
        self.picker.setEnabled(False)
        self.status.setText("Exporting and verifying…" if mode is None else
                            "Exporting, quantizing and measuring on the test split…")
        self.tasks.start("export", task, done=self._on_done, failed=self._on_failed,
                         finished=self._after_export, expected=(ExportError,),
                         title=f"Exporting {Path(run_dir).name} to {Path(out).name}")

    def _after_export(self) -> None:
        self.export_button.setEnabled(True)
        self.picker.setEnabled(True)

    def _may_overwrite(self, out: str, extras: bool) -> bool | None:
        """False: nothing would be overwritten (or the export will say what else is wrong);
        True: the person allowed it; None: they did not."""
        try:
            check_destination(out, weights=extras, script=extras)
            return False
        except ExportError as exc:
            if "would be overwritten" not in str(exc):
                return False
        taken = [p for p in check_destination(out, weights=extras, script=extras,
                                              overwrite=True)[1:] if p.exists()]
        answer = dialogs.ask(self, "Overwrite files?",
                             "Exporting also writes, beside the ONNX file:\n\n"
                             + "\n".join(str(p) for p in taken)
                             + "\n\nwhich already exist. Overwrite them?")
        if answer == dialogs.Button.Yes:
            return True
        self.status.setText("Not exported: choose another file name, or untick the weights "
                            "and script.")
        return None

    def _on_done(self, result: Any) -> None:
        self.result = result
        if not isinstance(result, ExportResult):
            self._show_quantized(result)
            self.exported.emit(result)
            return
        rows = []
        for c in result.checks:
            agree = _agree(c.agreement)
            rows.append(f"<tr><td>batch {c.batch}</td><td>{c.samples} test samples</td>"
                        f"<td>max |Δ| {c.max_abs_diff:.2e}</td><td>classes agree {agree}</td>"
                        "</tr>")
        files = "".join(f"<br>also wrote {html.escape(f)}" for f in result.files)
        self.status.setText(
            f"<b style='color:{GOOD}'>✓ Verified</b>: onnx.checker passed; onnxruntime matches "
            f"PyTorch within rtol {RTOL:g}.<table cellpadding='3'>{''.join(rows)}</table>"
            f"{html.escape(result.path)}: {result.bytes / 1024:,.1f} KB, opset {result.opset} "
            f"({result.exporter} exporter"
            f"{'; ' + html.escape(result.note) if result.note else ''}), "
            f"{'raw pixel' if result.normalize_in_graph else 'normalized'} input; "
            f"onnxruntime CPU latency {result.latency_ms:.3f} ms at batch 1, "
            f"{result.latency_ms_256:.2f} ms at batch 256.{files}")
        self.exported.emit(result)

    def _show_quantized(self, result: Any) -> None:
        head = ("<tr><th align='left'>variant</th><th>size</th><th>latency, batch 1</th>"
                "<th>batch 256</th><th>test accuracy</th><th>agrees with float</th></tr>")
        rows = [head]
        for name, m in (("float32", result.fp32), (result.kind, result.quantized)):
            acc = (f"{m.test_accuracy:.2%}" if m.test_accuracy is not None
                   else f"MSE {m.test_loss:.4g}")
            rows.append(f"<tr><td>{name}</td><td align='right'>{m.bytes / 1024:,.1f} KB</td>"
                        f"<td align='right'>{m.latency_ms:.3f} ms</td>"
                        f"<td align='right'>{m.latency_ms_256:.2f} ms</td>"
                        f"<td align='right'>{acc}</td><td align='right'>"
                        f"{_agree(m.agreement)}</td></tr>")
        before, after = result.fp32, result.quantized
        drop = (f"test accuracy {before.test_accuracy:.2%} → {after.test_accuracy:.2%}"
                if result.drop is not None else
                f"test MSE {before.test_loss:.4g} → {after.test_loss:.4g}")
        channel = ("" if result.per_channel is None else
                   ", per-channel weights" if result.per_channel else ", per-tensor weights")
        calibrated = (f", calibrated on {result.calibration} training samples"
                      if result.calibration else "")
        self.status.setText(
            f"<b style='color:{GOOD}'>✓ Verified</b>: onnx.checker passed; {result.kind} "
            f"{result.ratio:.2f}x smaller than float32, {drop}"
            f"{channel}{calibrated}.<table cellpadding='3'>{''.join(rows)}</table>"
            f"{html.escape(result.path)} (measured with onnxruntime on this machine; "
            "stored with the run)")
        self.adjustSize()

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"<b style='color:{ALERT}'>✗ Export failed</b>: "
                            f"{html.escape(message)}")
        self.exportFailed.emit(message)

    def shutdown(self) -> None:
        """Block until a running export has ended (closing, tests); its result is dropped."""
        self.tasks.shutdown()
        self.picker.shutdown()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)


def _agree(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


if __name__ == "__main__":
    import tempfile

    from PySide6.QtWidgets import QApplication

    from workbench.gui.demo import sample_run
    from workbench.gui.widgets.style import apply_style

    app = QApplication(sys.argv)
    apply_style(app)
    workspace = Workspace(tempfile.mkdtemp(prefix="workbench-export-"))
    chosen = sys.argv[1] if len(sys.argv) > 1 else sample_run(workspace.runs)
    dialog = ExportDialog(chosen, workspace)
    dialog.show()
    sys.exit(app.exec())
