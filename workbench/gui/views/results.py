"""What a finished run got right and wrong: test accuracy, a confusion matrix, the mistakes;
for a regression its test errors and the plots of predicted against true and of the residuals
(`regression.py`); for a network with no hidden layer its equation in the data's own units.

The confusion matrix is a heat map with the count in each cell (rows: true class, columns:
predicted; shaded by the row's share so rare classes read as well as common ones). Mistakes
show as thumbnails with true and predicted class for image sets, and as marked points for
2-D sets. Everything comes from `RunFinished` (or a stored run's summary) and the run's test
split. A link asks for Inspect on the run, and double-clicking a mistake (a thumbnail, a
marked point) for Inspect on that test sample: `inspectRequested(sample)`, -1 for none.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import Splits
from workbench.core.store.runs import RunStatus
from workbench.core.training.events import RunFinished, describe_progress
from workbench.core.training.outcome import OutcomeWarning, stored_warnings
from workbench.gui.views.axes import plot_widget
from workbench.gui.views.boundary import class_brushes
from workbench.gui.views.regression import RegressionView, figures_text
from workbench.gui.widgets.images import to_qimage
from workbench.gui.widgets.style import (
    CAPTION,
    CLASS_COLORS,
    GRID_LINE,
    TEXT,
    WHITE,
    legend_html,
    notice_label_style,
)

VERDICT_STYLE = notice_label_style(4)
THUMB = 56
MAX_THUMBS = 100
MISTAKES_WIDTH = 2 * (THUMB + 40) + 30  # two columns of mistakes beside the matrix


def matrix_lut() -> np.ndarray:
    t = np.linspace(0, 1, 256)[:, None]
    white = np.array((255.0, 255.0, 255.0))
    blue = np.array((8.0, 69.0, 148.0))
    return (white + (blue - white) * t).astype(np.ubyte)


def image_to_pixmap(image: np.ndarray, size: int = THUMB) -> QPixmap:
    """A (C,H,W) image as a pixmap `size` pixels high."""
    return QPixmap.fromImage(to_qimage(image)).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


class MatrixCanvas(QWidget):
    """The confusion matrix drawn cell by cell (rows: true class, columns: predicted), each
    cell at least big enough for its count, growing to fill the room it is given."""

    LABEL_MAX = 90  # pixels for a class name beside or above the cells

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.names: list[str] = []
        self.lut = matrix_lut()
        self.setMouseTracking(True)

    def set_matrix(self, counts: np.ndarray, names: Sequence[str]) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        k = self.counts.shape[0]
        self.names = [str(n) for n in names[:k]] + [str(i) for i in range(len(names), k)]
        self.updateGeometry()
        self.update()

    # -- geometry -------------------------------------------------------------------------
    def min_cell(self) -> int:
        """The smallest cell that shows its count whole: the widest count plus padding."""
        fm = self.fontMetrics()
        widest = str(int(self.counts.max())) if self.counts.size else "0"
        return max(28, fm.horizontalAdvance(widest) + 12, fm.height() + 10)

    def _label_width(self) -> int:
        fm = self.fontMetrics()
        widest = max((fm.horizontalAdvance(n) for n in self.names), default=0)
        return min(self.LABEL_MAX, widest) + 8

    def _margins(self) -> tuple[int, int]:
        """(left, top): room for the axis titles and the class names."""
        title = self.fontMetrics().height() + 4
        return title + self._label_width(), title + self._label_width()

    def _cell(self) -> float:
        k = max(1, self.counts.shape[0])
        left, top = self._margins()
        fit = min((self.width() - left - 4) / k, (self.height() - top - 4) / k)
        return max(float(self.min_cell()), fit)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        k = self.counts.shape[0]
        left, top = self._margins()
        return QSize(left + k * self.min_cell() + 4, top + k * self.min_cell() + 4)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return self.minimumSizeHint()

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        left, top = self._margins()
        cell = self._cell()
        k = self.counts.shape[0]
        row, col = int((y - top) // cell), int((x - left) // cell)
        return (row, col) if 0 <= row < k and 0 <= col < k and x >= left and y >= top else None

    # -- drawing ----------------------------------------------------------------------------
    def paintEvent(self, _event: Any) -> None:  # noqa: N802 - Qt override
        k = self.counts.shape[0]
        if k == 0:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        fm = self.fontMetrics()
        left, top = self._margins()
        cell = self._cell()
        share = self.counts / np.maximum(1, self.counts.sum(axis=1, keepdims=True))
        title_h = fm.height() + 4
        dim = QColor(CAPTION)
        painter.setPen(dim)
        painter.drawText(QRectF(left, 0, k * cell, title_h), Qt.AlignmentFlag.AlignCenter,
                         "predicted \u2192")
        painter.save()
        painter.translate(0, top + k * cell / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-k * cell / 2, 0, k * cell, title_h),
                         Qt.AlignmentFlag.AlignCenter, "\u2190 true")
        painter.restore()
        label_w = self._label_width() - 8
        for i, name in enumerate(self.names):
            text = fm.elidedText(name, Qt.TextElideMode.ElideRight, label_w)
            painter.drawText(QRectF(title_h, top + i * cell, label_w + 4, cell),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
            fits = fm.horizontalAdvance(text) <= cell - 4
            if fits:  # column names across, when they fit; else up the column
                painter.drawText(QRectF(left + i * cell, title_h, cell, top - title_h - 2),
                                 Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                                 text)
            else:
                painter.save()
                painter.translate(left + i * cell + cell / 2, top - 4)
                painter.rotate(-90)
                painter.drawText(QRectF(0, -fm.height() / 2, label_w + 4, fm.height()),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
                painter.restore()
        for row in range(k):
            for col in range(k):
                r, g, b = (int(v) for v in self.lut[int(round(share[row, col] * 255))])
                rect = QRectF(left + col * cell, top + row * cell, cell, cell)
                painter.fillRect(rect, QColor(r, g, b))
                painter.setPen(QColor(WHITE) if share[row, col] > 0.55
                               else QColor(TEXT))
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(self.counts[row, col]))
        painter.setPen(QColor(GRID_LINE))
        painter.drawRect(QRectF(left, top, k * cell, k * cell))
        painter.end()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            pos = event.pos()  # type: ignore[attr-defined]
            hit = self.cell_at(pos.x(), pos.y())
            if hit is None:
                QToolTip.hideText()
            else:
                row, col = hit
                n, total = int(self.counts[row, col]), int(self.counts[row].sum())
                QToolTip.showText(event.globalPos(),  # type: ignore[attr-defined]
                                  f"true {self.names[row]}, predicted {self.names[col]}: "
                                  f"{n:,} of {total:,} test samples ({n / max(1, total):.1%})",
                                  self)
            return True
        return super().event(event)


class ConfusionMatrix(QScrollArea):
    """The matrix with a title, scrolling when the room is smaller than its readable size."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = MatrixCanvas()
        self.setWidget(self.canvas)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setMinimumSize(160, 140)

    @property
    def counts(self) -> np.ndarray:
        return self.canvas.counts

    def set_matrix(self, counts: np.ndarray, class_names: Sequence[str]) -> None:
        self.canvas.set_matrix(counts, class_names)

    def readable_width(self) -> int:
        """The width that shows every cell without scrolling."""
        return self.canvas.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()


def _short(name: str, n: int = 10) -> str:
    return name if len(name) <= n else name[:n - 1] + "\u2026"


class ResultsView(QWidget):
    inspectRequested = Signal(int)  # a test sample to inspect, -1: the run as a whole

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.headline = QLabel("Results show here when a run ends.")
        font = self.headline.font()
        font.setPointSize(font.pointSize() + 3)
        font.setBold(True)
        self.headline.setFont(font)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.verdict = QLabel()  # what did not go well, though the run ended
        self.verdict.setWordWrap(True)
        self.verdict.setStyleSheet(VERDICT_STYLE)
        self.equation = QLabel()  # a network with no hidden layer, in the data's units
        self.equation.setWordWrap(True)
        self.equation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.inspect_link = QLabel("<a href='inspect'>Inspect this run</a>: what each layer "
                                   "learned, and why it answers as it does")
        self.inspect_link.setWordWrap(True)
        self.inspect_link.linkActivated.connect(lambda _link: self.inspectRequested.emit(-1))
        self.regression = RegressionView()
        self.matrix = ConfusionMatrix()
        self.matrix_title = QLabel("Confusion matrix: how each class's test samples were "
                                   "classified")
        self.matrix_title.setObjectName("sectionTitle")
        self.matrix_title.setWordWrap(True)
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setGridSize(QSize(THUMB + 40, THUMB + 36))
        self.thumbs.setResizeMode(QListView.ResizeMode.Adjust)
        self.thumbs.setMovement(QListView.Movement.Static)
        self.thumbs.setWordWrap(True)
        self.thumbs.itemDoubleClicked.connect(self._inspect_thumb)
        self.points_widget = plot_widget()
        self.points_plot = self.points_widget.getPlotItem()
        self.points_plot.setAspectLocked(True)
        self.points_plot.setLabel("bottom", "x\u2081")
        self.points_plot.setLabel("left", "x\u2082")
        self.test_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("w", width=0.5))
        self.wrong_points = pg.ScatterPlotItem(size=12, symbol="x", pen=None,
                                               brush=pg.mkBrush(TEXT))
        self.points_plot.addItem(self.test_points)
        self.points_plot.addItem(self.wrong_points)
        self.wrong_points.sigClicked.connect(self._inspect_point)
        self.wrong_indices = np.zeros(0, dtype=np.int64)
        self.mistakes_title = QLabel()
        self.mistakes_title.setObjectName("sectionTitle")
        self.mistakes_title.setWordWrap(True)
        self.none_label = QLabel("No misclassified samples to show.")
        self.none_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.points_legend = QLabel()  # the points' classes: their colours named
        self.points_legend.setWordWrap(True)
        self.points_page = QWidget()
        points_layout = QVBoxLayout(self.points_page)
        points_layout.setContentsMargins(0, 0, 0, 0)
        points_layout.addWidget(self.points_legend)
        points_layout.addWidget(self.points_widget, 1)
        self.mistakes = QStackedWidget()
        for w in (self.none_label, self.thumbs, self.points_page):
            self.mistakes.addWidget(w)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.mistakes_title)
        right_layout.addWidget(self.mistakes, 1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.matrix_title)
        left_layout.addWidget(self.matrix, 1)
        self.matrix_box = left
        self.splitter = QSplitter()
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setSizes([500, 400])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.headline)
        layout.addWidget(self.detail)
        layout.addWidget(self.verdict)
        layout.addWidget(self.equation)
        layout.addWidget(self.inspect_link)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.regression, 1)
        self.clear()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """The mistakes beside the matrix when both fit, below it when the view is narrow."""
        super().resizeEvent(event)
        self._orient()

    def _orient(self, *, fit: bool = False) -> None:
        """Lay the matrix and the mistakes out for this width; `fit` (a new matrix) also
        gives the matrix the room it needs to be read whole, the mistakes the rest."""
        beside = self.width() >= self.matrix.readable_width() + MISTAKES_WIDTH
        orientation = Qt.Orientation.Horizontal if beside else Qt.Orientation.Vertical
        if self.splitter.orientation() == orientation and not fit:
            return
        self.splitter.setOrientation(orientation)
        total = self.splitter.width() if beside else self.splitter.height()
        first = min(self.matrix.readable_width(), total - MISTAKES_WIDTH) if beside \
            else total // 2
        self.splitter.setSizes([first, max(1, total - first)])

    def clear(self) -> None:
        self.headline.setText("Results show here when a run ends.")
        self.detail.setText("")
        self.verdict.setText("")
        self.verdict.hide()
        self.equation.setText("")
        self.equation.hide()
        self.inspect_link.hide()
        self.regression.clear()
        self.regression.hide()
        self.splitter.show()
        self.wrong_indices = np.zeros(0, dtype=np.int64)
        self.matrix.set_matrix(np.zeros((0, 0)), ())
        self.matrix_box.hide()
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
                       finished.early_stopped, finished.done, finished.seconds)
        self._show_extras(finished.summary, has_model=True)
        self._show_verdict(stored_warnings(finished.summary))
        if finished.confusion is None:
            return
        counts = np.array(finished.confusion, dtype=np.int64)
        names = list(class_names) or [str(i) for i in range(len(counts))]
        self.matrix.set_matrix(counts, names)
        self.matrix_box.show()
        self._orient(fit=True)
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
            self._show_points(finished.misclassified, splits, names)

    def show_summary(self, summary: dict[str, Any]) -> None:
        """A stored run: its headline figures and, when it stored one, its confusion matrix."""
        self.clear()
        done = summary.get("done")  # "40% into epoch 1"; older runs kept whole epochs only
        epochs = summary.get("epochs_done")
        if not isinstance(done, str):
            done = describe_progress(epochs, 1) if isinstance(epochs, int) else None
        self._headline(summary.get("test_accuracy"), summary.get("test_loss"),
                       summary.get("status") == RunStatus.STOPPED,
                       bool(summary.get("early_stopped")), done, summary.get("seconds"))
        self._show_extras(summary, has_model=summary.get("status") in (RunStatus.FINISHED,
                                                                       RunStatus.STOPPED))
        self._show_verdict(stored_warnings(summary))
        confusion = summary.get("confusion")
        if confusion:
            counts = np.array(confusion, dtype=np.int64)
            names = summary.get("class_names") or [str(i) for i in range(len(counts))]
            self.matrix.set_matrix(counts, names)
            self.matrix_box.show()
            self._orient(fit=True)
        if summary.get("status") == RunStatus.FAILED:
            self.headline.setText("Run failed")
            self.detail.setText(f"{summary.get('error', '')} \u2014 {summary.get('hint', '')}")

    def _show_extras(self, summary: dict[str, Any], *, has_model: bool) -> None:
        """A regression's errors and plots, a linear model's equation, the link to Inspect."""
        self.inspect_link.setVisible(has_model)
        equation = summary.get("equation")
        if isinstance(equation, dict) and isinstance(equation.get("lines"), list):
            lines = "<br>".join(html.escape(str(line)) for line in equation["lines"])
            self.equation.setText(f"<b>Equation, in the data's own units:</b><br>"
                                  f"<tt>{lines}</tt><br><span style='color:{CAPTION}'>"
                                  f"{html.escape(str(equation.get('note', '')))}</span>")
            self.equation.show()
        regression = summary.get("regression")
        if isinstance(regression, dict):
            figures = figures_text(regression)
            if figures:
                self.headline.setText(f"Test {figures.split(' · ')[0]}")
                self.detail.setText(f"{self.detail.text()} \u00b7 test {figures}"
                                    if self.detail.text() else f"test {figures}")
            self.splitter.hide()
            self.regression.show()
            self.regression.show_entry(regression)

    def _inspect_thumb(self, item: QListWidgetItem) -> None:
        index = item.data(Qt.ItemDataRole.UserRole)
        if index is not None:
            self.inspectRequested.emit(int(index))

    def _inspect_point(self, _item: Any, spots: Sequence[Any], *_: Any) -> None:
        if spots and len(self.wrong_indices):
            self.inspectRequested.emit(int(self.wrong_indices[spots[0].index()]))

    def _show_verdict(self, warnings: Sequence[OutcomeWarning]) -> None:
        """Say plainly when a run ended without learning (its accuracy alone would not)."""
        self.verdict.setVisible(bool(warnings))
        self.verdict.setText("<br>".join(
            f"\u26a0 {html.escape(w.message)} \u2014 <b>Try:</b> {html.escape(w.hint)}"
            for w in warnings))
        if warnings:
            self.headline.setText(self.headline.text() + " \u2014 suspect")

    def _headline(self, accuracy: float | None, loss: float | None, stopped: bool,
                  early: bool, done: str | None, seconds: float | None) -> None:
        if accuracy is not None:
            self.headline.setText(f"Test accuracy {100 * accuracy:.2f}%")
        elif loss is not None:
            self.headline.setText(f"Test MSE {loss:.4g}")
        else:
            self.headline.setText("No test result")
        how = "stopped early (no improvement)" if early else "stopped" if stopped else "finished"
        parts = [how]
        if done:
            parts.append(done)
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
            item.setToolTip(f"test sample {index}: true {names[true]}, predicted {names[pred]}"
                            " (double-click to inspect it)")
            item.setData(Qt.ItemDataRole.UserRole, index)
            self.thumbs.addItem(item)
        self.mistakes.setCurrentWidget(self.thumbs)

    def _show_points(self, wrong: Sequence[tuple[int, int, int]], splits: Splits,
                     names: Sequence[str]) -> None:
        x = splits.test_x.float().numpy()
        y = splits.test_y.numpy()
        self.test_points.setData(x=x[:, 0], y=x[:, 1], brush=class_brushes(y))
        self.points_legend.setText(legend_html(
            [(CLASS_COLORS[i % len(CLASS_COLORS)], f"class {name}", True)
             for i, name in enumerate(names)]))
        idx = np.array([i for i, _, _ in wrong], dtype=np.int64)
        self.wrong_indices = idx
        self.wrong_points.setData(x=x[idx, 0], y=x[idx, 1])
        self.points_plot.autoRange()
        self.mistakes_title.setText(self.mistakes_title.text() + ", marked \u2716 among the "
                                    "test points (click one to inspect it)")
        self.mistakes.setCurrentWidget(self.points_page)


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
