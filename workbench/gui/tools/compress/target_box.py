"""The Compress panel's compress-to-target controls: the accuracy a person accepts losing,
fine-tuning epochs, whole units or single weights, Find the smallest / Stop, and the search's
log."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.tools.compress_settings import (
    DEFAULT_FINETUNE_EPOCHS,
    MAX_DROP_LIMIT,
    MAX_FINETUNE_EPOCHS,
)
from workbench.gui.widgets.layouts import FlowLayout


class TargetBox(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Compress to target: the smallest variant that keeps the accuracy",
                         parent)
        target_layout = QVBoxLayout(self)
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
