"""The history of past runs from the run store, newest first; a damaged run is listed as
damaged, never fatal. Selecting a run plots its stored curves; opening it (double-click or
Open) asks the window to load its spec into the editor."""

from __future__ import annotations

import math
import time
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.store.metrics import read_series
from workbench.core.store.runs import Run, RunInfo, RunStore
from workbench.core.training.outcome import stored_warnings
from workbench.gui.style import ACCENT, legend_html

_COLUMNS = ("Run", "Status", "Data", "Optimizer", "Result", "When")
VAL_COLOR = "#e4572e"
SUSPECT_COLOR = "#9a6700"


def result_text(summary: dict[str, Any]) -> str:
    if summary.get("test_accuracy") is not None:
        return f"{100 * summary['test_accuracy']:.1f}% test"
    if summary.get("test_mse") is not None:
        return f"MSE {summary['test_mse']:.4g}"
    return ""


class RunHistory(QWidget):
    openRequested = Signal(str)  # a run folder

    def __init__(self, runs: RunStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.infos: list[RunInfo] = []
        self.tree = QTreeWidget()
        self.tree.setObjectName("runs")
        self.tree.setHeaderLabels(list(_COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_selected())
        self.tree.currentItemChanged.connect(lambda *_: self._show_selected())
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.open_button = QPushButton("Open in editor")
        self.open_button.clicked.connect(self.open_selected)
        self.open_button.setEnabled(False)
        self.note = QLabel("")
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumWidth(240)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "loss")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot_legend = QLabel(legend_html([(ACCENT, "training loss", True),
                                               (VAL_COLOR, "validation loss", True)]))
        self.plot_legend.setObjectName("hint")
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_layout.setSpacing(0)
        plot_layout.addWidget(self.plot_legend)  # above the curves, never over them
        plot_layout.addWidget(self.plot, 1)
        self.plot_box = plot_box
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(refresh)
        buttons.addStretch(1)
        buttons.addWidget(self.note, 4)
        left = QVBoxLayout()
        left.addWidget(self.tree, 1)
        left.addLayout(buttons)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(left, 3)
        layout.addWidget(plot_box, 2)
        self.refresh()

    def refresh(self) -> None:
        selected = self.selected_path()
        self.infos = self.runs.list()
        self.tree.clear()
        for info in self.infos:
            s = info.summary
            when = time.strftime("%d %b %H:%M", time.localtime(s["created"])) \
                if isinstance(s.get("created"), int | float) else ""
            status = "damaged" if info.error else str(s.get("status", ""))
            item = QTreeWidgetItem([s.get("name", info.name) if not info.error else info.name,
                                    status, str(s.get("dataset", "")),
                                    str(s.get("optimizer", "")), result_text(s), when])
            item.setData(0, Qt.ItemDataRole.UserRole, str(info.path))
            warnings = stored_warnings(s) if not info.error else []
            if warnings:  # it ended, but did not learn: say so where the result is
                item.setText(4, f"\u26a0 {item.text(4)} (suspect)")
                item.setForeground(4, QBrush(QColor(SUSPECT_COLOR)))
                item.setToolTip(4, "\n".join(f"{w.message}; try: {w.hint}" for w in warnings))
            if info.error:
                for col in range(len(_COLUMNS)):
                    item.setForeground(col, QBrush(QColor("#b42318")))
                    item.setToolTip(col, info.error)
            elif info.status == "interrupted":
                item.setToolTip(1, "Its process ended without saying how (killed, or the "
                                   "machine stopped). " + (
                                       "Tools > Resume continues it from its last checkpoint."
                                       if info.resumable else
                                       "It had no checkpoint yet, so it cannot be resumed."))
            self.tree.addTopLevelItem(item)
            if str(info.path) == selected:
                self.tree.setCurrentItem(item)
        for col in range(len(_COLUMNS)):
            self.tree.resizeColumnToContents(col)
        self._show_selected()

    def selected_path(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def selected_info(self) -> RunInfo | None:
        path = self.selected_path()
        return next((i for i in self.infos if str(i.path) == path), None)

    def select(self, run_dir: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == str(run_dir):
                self.tree.setCurrentItem(item)

    def open_selected(self) -> None:
        info = self.selected_info()
        if info is not None and info.error is None:
            self.openRequested.emit(str(info.path))

    def _show_selected(self) -> None:
        info = self.selected_info()
        self.plot.clear()
        self.plot_box.setVisible(info is not None and info.error is None)
        self.open_button.setEnabled(info is not None and info.error is None)
        if info is None:
            self.note.setText(f"{len(self.infos)} runs in {self.runs.root}")
            return
        if info.error:
            self.note.setText(f"Damaged: {info.error}")
            return
        self.note.setText(info.summary.get("error") or "")
        series = read_series(Run(info.path))
        epochs: list[float] = []
        values: list[float] = []
        for key, color in (("train_loss", ACCENT), ("val_loss", VAL_COLOR)):
            xs, ys = series.points("epochs", "epoch", key)
            if len(xs):  # a dot per epoch, so a run of one epoch shows too
                self.plot.plot(xs, ys, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5,
                               symbolBrush=color, symbolPen=None)
                epochs.extend(float(x) for x in xs)
                values.extend(float(y) for y in ys if math.isfinite(y))
        self._fit_range(epochs, values)

    def _fit_range(self, epochs: list[float], values: list[float]) -> None:
        """Epochs from 0 to the last, the loss from 0 to its largest: a short run keeps
        sensible axes instead of pyqtgraph's band around a single point."""
        if not epochs or not values:
            self.plot.setXRange(0, 1)
            self.plot.setYRange(0, 1)
            return
        last = max(1.0, max(epochs))
        self.plot.setXRange(-0.04 * last, 1.04 * last, padding=0)  # room for the dots
        top = max(values)
        self.plot.setYRange(0, top * 1.1 if top > 0 else 1.0, padding=0)


def _sample() -> None:
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.gui.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    history = RunHistory(RunStore())
    history.resize(900, 300)
    history.show()
    sys.exit(app.exec())


if __name__ == "__main__":
    _sample()
