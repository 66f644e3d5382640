"""The Export dialog: a run to ONNX (with safetensors and a PyTorch script), verified.

The export and its verification run off the GUI thread, on the run's data from the workspace's
cache. The dialog shows what onnxruntime
gave against PyTorch at batch sizes 1 and 37; a failed check is shown as an error and no
file is left behind. Files beside the named one that exist already (the weights, the script)
are overwritten only when the person says so.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
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
from workbench.gui import dialogs
from workbench.gui.tasks import Tasks


class ExportDialog(QDialog):
    """Export `run_dir`; `exported(ExportResult)` or `exportFailed(message)` when done."""

    exported = Signal(object)
    exportFailed = Signal(str)

    def __init__(self, run_dir: str, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir = str(run_dir)
        self.workspace = workspace
        self.result: ExportResult | None = None
        self.tasks = Tasks(self, workspace.jobs)
        self.setWindowTitle(f"Export {Path(run_dir).name}")
        layout = QVBoxLayout(self)
        form = QFormLayout()
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
        self.extras = QCheckBox("Also write the weights (.safetensors) and a PyTorch script "
                                "(.py) that rebuilds and retrains the model")
        self.extras.setChecked(True)
        form.addRow("", self.extras)
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
        overwrite = self._may_overwrite(out, extras)
        if overwrite is None:
            return

        def task(report: Any, cancel: Any) -> ExportResult:
            return export_run(run_dir, out, opset=opset, normalize_in_graph=raw,
                              weights=extras, script=extras, overwrite=overwrite,
                              source=workspace)

        self.export_button.setEnabled(False)
        self.status.setText("Exporting and verifying…")
        self.tasks.start("export", task, done=self._on_done, failed=self._on_failed,
                         finished=lambda: self.export_button.setEnabled(True),
                         expected=(ExportError,))

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

    def _on_done(self, result: ExportResult) -> None:
        self.result = result
        rows = []
        for c in result.checks:
            agree = _agree(c.agreement)
            rows.append(f"<tr><td>batch {c.batch}</td><td>{c.samples} test samples</td>"
                        f"<td>max |Δ| {c.max_abs_diff:.2e}</td><td>classes agree {agree}</td>"
                        "</tr>")
        files = "".join(f"<br>also wrote {html.escape(f)}" for f in result.files)
        self.status.setText(
            f"<b style='color:#1e8449'>✓ Verified</b>: onnx.checker passed; onnxruntime matches "
            f"PyTorch within rtol {RTOL:g}.<table cellpadding='3'>{''.join(rows)}</table>"
            f"{html.escape(result.path)}: {result.bytes / 1024:,.1f} KB, opset {result.opset} "
            f"({result.exporter} exporter"
            f"{'; ' + html.escape(result.note) if result.note else ''}), "
            f"{'raw pixel' if result.normalize_in_graph else 'normalized'} input; "
            f"onnxruntime CPU latency {result.latency_ms:.3f} ms at batch 1, "
            f"{result.latency_ms_256:.2f} ms at batch 256.{files}")
        self.exported.emit(result)

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"<b style='color:#c0392b'>✗ Export failed</b>: "
                            f"{html.escape(message)}")
        self.exportFailed.emit(message)

    def shutdown(self) -> None:
        """Block until a running export has ended (closing, tests); its result is dropped."""
        self.tasks.shutdown()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)


def _agree(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


if __name__ == "__main__":
    import tempfile

    from PySide6.QtWidgets import QApplication

    from workbench.gui.prune_panel import sample_run
    from workbench.gui.style import apply_style

    app = QApplication(sys.argv)
    apply_style(app)
    workspace = Workspace(tempfile.mkdtemp(prefix="workbench-export-"))
    chosen = sys.argv[1] if len(sys.argv) > 1 else sample_run(workspace.runs)
    dialog = ExportDialog(chosen, workspace)
    dialog.show()
    sys.exit(app.exec())
