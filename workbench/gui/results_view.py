"""What a finished run got right and wrong: test accuracy, a confusion matrix, the mistakes.

The confusion matrix is a heat map with the count in each cell (rows: true class, columns:
predicted; shaded by the row's share so rare classes read as well as common ones). Mistakes
show as thumbnails with true and predicted class for image sets, and as marked points for
2-D sets. Everything comes from `RunFinished` and the run's test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import Splits
from workbench.core.store.runs import RunStatus
from workbench.core.training.events import RunFinished
from workbench.gui.boundary_view import class_brushes
from workbench.gui.images import to_qimage

THUMB = 56
MAX_THUMBS = 100


def matrix_lut() -> np.ndarray:
    t = np.linspace(0, 1, 256)[:, None]
    white = np.array((255.0, 255.0, 255.0))
    blue = np.array((8.0, 69.0, 148.0))
    return (white + (blue - white) * t).astype(np.ubyte)


def image_to_pixmap(image: np.ndarray, size: int = THUMB) -> QPixmap:
    """A (C,H,W) image as a pixmap `size` pixels high."""
    return QPixmap.fromImage(to_qimage(image)).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


class ConfusionMatrix(pg.PlotWidget):
    """A heat map of counts with class names on both axes, row 0 at the top."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.plot = self.getPlotItem()
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "predicted")
        self.plot.setLabel("left", "true")
        self.plot.setTitle("Confusion matrix")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(matrix_lut())
        self.plot.addItem(self.image)
        self.texts: list[pg.TextItem] = []
        self.counts = np.zeros((0, 0), dtype=np.int64)

    def set_matrix(self, counts: np.ndarray, class_names: Sequence[str]) -> None:
        for text in self.texts:
            self.plot.removeItem(text)
        self.texts = []
        self.counts = np.asarray(counts, dtype=np.int64)
        k = self.counts.shape[0]
        if k == 0:
            self.image.clear()
            return
        share = self.counts / np.maximum(1, self.counts.sum(axis=1, keepdims=True))
        self.image.setImage(share.astype(np.float32), levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(0, 0, k, k)
        font = QFont()
        font.setPointSize(max(6, 11 - k // 4))
        for row in range(k):
            for col in range(k):
                color = "w" if share[row, col] > 0.55 else "k"
                text = pg.TextItem(str(self.counts[row, col]), color=color, anchor=(0.5, 0.5))
                text.setFont(font)
                text.setPos(col + 0.5, row + 0.5)
                self.plot.addItem(text)
                self.texts.append(text)
        names = [(i + 0.5, _short(n)) for i, n in enumerate(class_names[:k])]
        self.plot.getAxis("bottom").setTicks([names])
        self.plot.getAxis("left").setTicks([names])
        self.plot.setRange(xRange=(0, k), yRange=(0, k), padding=0.02)


def _short(name: str, n: int = 10) -> str:
    return name if len(name) <= n else name[:n - 1] + "\u2026"


class ResultsView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.headline = QLabel("Results show here when a run ends.")
        font = self.headline.font()
        font.setPointSize(font.pointSize() + 3)
        font.setBold(True)
        self.headline.setFont(font)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.matrix = ConfusionMatrix()
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setGridSize(QSize(THUMB + 40, THUMB + 36))
        self.thumbs.setResizeMode(QListView.ResizeMode.Adjust)
        self.thumbs.setMovement(QListView.Movement.Static)
        self.thumbs.setWordWrap(True)
        self.points_widget = pg.PlotWidget(background="w")
        self.points_plot = self.points_widget.getPlotItem()
        self.points_plot.setAspectLocked(True)
        self.points_plot.setTitle("Test points (mistakes marked \u2716)")
        self.test_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("w", width=0.5))
        self.wrong_points = pg.ScatterPlotItem(size=13, symbol="x", pen=None,
                                               brush=pg.mkBrush("#d62728"))
        self.points_plot.addItem(self.test_points)
        self.points_plot.addItem(self.wrong_points)
        self.mistakes_title = QLabel()
        self.none_label = QLabel("No misclassified samples to show.")
        self.none_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mistakes = QStackedWidget()
        for w in (self.none_label, self.thumbs, self.points_widget):
            self.mistakes.addWidget(w)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.mistakes_title)
        right_layout.addWidget(self.mistakes, 1)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.matrix)
        self.splitter.addWidget(right)
        self.splitter.setSizes([500, 400])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.headline)
        layout.addWidget(self.detail)
        layout.addWidget(self.splitter, 1)
        self.clear()

    def clear(self) -> None:
        self.headline.setText("Results show here when a run ends.")
        self.detail.setText("")
        self.matrix.set_matrix(np.zeros((0, 0)), ())
        self.matrix.hide()
        self.thumbs.clear()
        self.test_points.clear()
        self.wrong_points.clear()
        self.mistakes_title.setText("")
        self.mistakes.setCurrentWidget(self.none_label)
        self.mistakes.hide()

    @property
    def confusion(self) -> np.ndarray:
        """The counts the matrix shows (empty before a classification run ends)."""
        return self.matrix.counts

    def show_result(self, finished: RunFinished, splits: Splits | None,
                    class_names: Sequence[str]) -> None:
        """A run that just ended; `splits` (its data) gives the test samples, when known."""
        self.clear()
        self._headline(finished.test_accuracy, finished.test_loss, finished.stopped,
                       finished.early_stopped, finished.epochs, finished.seconds)
        if finished.confusion is None:
            return
        counts = np.array(finished.confusion, dtype=np.int64)
        names = list(class_names) or [str(i) for i in range(len(counts))]
        self.matrix.set_matrix(counts, names)
        self.matrix.show()
        wrong = int(counts.sum() - np.trace(counts))
        kept = len(finished.misclassified)
        self.mistakes_title.setText(
            f"Misclassified: {wrong} of {int(counts.sum())} test samples"
            + (f" (first {kept} shown)" if kept < wrong else ""))
        self.mistakes.show()
        if splits is None or not finished.misclassified:
            return
        if splits.info.is_image:
            self._show_thumbs(finished.misclassified, splits, names)
        elif tuple(splits.info.input_shape) == (2,):
            self._show_points(finished.misclassified, splits)

    def show_summary(self, summary: dict[str, Any]) -> None:
        """A stored run: its headline figures and, when it stored one, its confusion matrix."""
        self.clear()
        self._headline(summary.get("test_accuracy"), summary.get("test_loss"),
                       summary.get("status") == RunStatus.STOPPED,
                       bool(summary.get("early_stopped")),
                       summary.get("epochs_done"), summary.get("seconds"))
        confusion = summary.get("confusion")
        if confusion:
            counts = np.array(confusion, dtype=np.int64)
            names = summary.get("class_names") or [str(i) for i in range(len(counts))]
            self.matrix.set_matrix(counts, names)
            self.matrix.show()
        if summary.get("status") == RunStatus.FAILED:
            self.headline.setText("Run failed")
            self.detail.setText(f"{summary.get('error', '')} \u2014 {summary.get('hint', '')}")

    def _headline(self, accuracy: float | None, loss: float | None, stopped: bool,
                  early: bool, epochs: int | None, seconds: float | None) -> None:
        if accuracy is not None:
            self.headline.setText(f"Test accuracy {100 * accuracy:.2f}%")
        elif loss is not None:
            self.headline.setText(f"Test MSE {loss:.4g}")
        else:
            self.headline.setText("No test result")
        how = "stopped early (no improvement)" if early else "stopped" if stopped else "finished"
        parts = [how]
        if epochs is not None:
            parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
        if seconds is not None:
            parts.append(f"{seconds:.1f} s")
        if loss is not None and accuracy is not None:
            parts.append(f"test loss {loss:.4g}")
        self.detail.setText(" \u00b7 ".join(parts))

    def _show_thumbs(self, wrong: Sequence[tuple[int, int, int]], splits: Splits,
                     names: Sequence[str]) -> None:
        images = splits.test_x
        for index, true, pred in wrong[:MAX_THUMBS]:
            pixmap = image_to_pixmap(images[index].numpy())
            item = QListWidgetItem(QIcon(pixmap), f"{_short(names[true], 8)} \u2192 "
                                                  f"{_short(names[pred], 8)}")
            item.setToolTip(f"test sample {index}: true {names[true]}, predicted {names[pred]}")
            self.thumbs.addItem(item)
        self.mistakes.setCurrentWidget(self.thumbs)

    def _show_points(self, wrong: Sequence[tuple[int, int, int]], splits: Splits) -> None:
        x = splits.test_x.float().numpy()
        y = splits.test_y.numpy()
        self.test_points.setData(x=x[:, 0], y=x[:, 1], brush=class_brushes(y))
        idx = np.array([i for i, _, _ in wrong], dtype=np.int64)
        self.wrong_points.setData(x=x[idx, 0], y=x[idx, 1])
        self.points_plot.autoRange()
        self.mistakes.setCurrentWidget(self.points_widget)


if __name__ == "__main__":
    from workbench.gui.demo import example_spec, run_demo

    def _make(runner: Any) -> tuple[QWidget, Any]:
        view = ResultsView()

        def feed(event: object) -> None:
            if isinstance(event, RunFinished):
                data = runner.trainer.data
                view.show_result(event, data, data.info.class_names)
        return view, feed

    spec = example_spec("mnist_small_cnn").with_value("train.epochs", 1)
    raise SystemExit(run_demo("Results", _make, spec=spec))
