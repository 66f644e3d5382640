"""The decision boundary of a 2-D classifier, redrawn as it learns (TensorFlow Playground style).

An `ImageItem` shows the model's prediction on a grid over the data (from `Boundary` events)
and the training points are scattered over it in their class colours. Two classes shade from
the first class's colour through white to the second's by probability; more classes colour each cell
by its predicted class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workbench.core.training.events import Boundary
from workbench.gui.widgets.layouts import Placeholder
from workbench.gui.widgets.style import CLASS_COLORS

NO_DATA = ("No decision boundary yet: train a classifier on a 2-D dataset (spirals, moons, "
           "circles…) to watch it form.")

# the app's class colours (the Data tab's, the results view's), as RGB
CLASS_RGB = tuple(tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in CLASS_COLORS)


def class_brushes(labels: np.ndarray, alpha: int = 255) -> list[Any]:
    brushes = [pg.mkBrush(*c, alpha) for c in CLASS_RGB]
    return [brushes[int(k) % len(brushes)] for k in labels]


def probability_lut() -> np.ndarray:
    """Class 0's colour at 0, white at 0.5, class 1's at 1, pale enough for the points to
    stand out."""
    a = np.array(CLASS_RGB[0], float)
    b = np.array(CLASS_RGB[1], float)
    white = np.array((255.0, 255.0, 255.0))
    t = np.linspace(0, 1, 256)[:, None]
    colors = np.where(t < 0.5, a + (white - a) * (t / 0.5), white + (b - white) * ((t - 0.5) / 0.5))
    pale = white + (colors - white) * 0.55
    return pale.astype(np.ubyte)


def class_lut(k: int) -> np.ndarray:
    white = np.array((255.0, 255.0, 255.0))
    colors = [white + (np.array(CLASS_RGB[i % len(CLASS_RGB)], float) - white) * 0.45
              for i in range(k)]
    return np.array(colors).astype(np.ubyte)


class BoundaryView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.label.setObjectName("hint")
        self.plot_widget = pg.PlotWidget(background="w")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=False, y=False)
        self.plot.setLabel("bottom", "x\u2081")  # the two input features, as the Data tab
        self.plot.setLabel("left", "x\u2082")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(probability_lut())
        self.plot.addItem(self.image)
        self.points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("w", width=0.8))
        self.plot.addItem(self.points)
        self.placeholder = Placeholder(self.plot_widget, NO_DATA)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.placeholder, 1)
        self.num_classes = 2
        self.count = 0
        self.latest: Boundary | None = None

    def clear(self) -> None:
        self.image.clear()
        self.points.clear()
        self.count = 0
        self.latest = None
        self.label.setText("")
        self.placeholder.show_content(False)

    def set_points(self, x: np.ndarray, y: np.ndarray, class_names: Sequence[str]) -> None:
        """The training points, in raw units, coloured by class."""
        self.num_classes = max(2, len(class_names))
        lut = probability_lut() if self.num_classes == 2 else class_lut(self.num_classes)
        self.image.setLookupTable(lut)
        self.points.setData(x=x[:, 0], y=x[:, 1], brush=class_brushes(y))
        self.plot.autoRange()

    def set_boundary(self, boundary: Boundary) -> None:
        probs = np.asarray(boundary.probs, dtype=np.float32)
        levels = (0.0, 1.0) if self.num_classes == 2 else (0.0, float(self.num_classes - 1))
        self.image.setImage(probs, levels=levels, autoLevels=False)
        rows, cols = probs.shape
        x0, x1, y0, y1 = boundary.extent
        dx = (x1 - x0) / max(1, cols - 1)
        dy = (y1 - y0) / max(1, rows - 1)
        # grid values sit at pixel centres: the image reaches half a cell past the extent
        self.image.setRect(QRectF(x0 - dx / 2, y0 - dy / 2, cols * dx, rows * dy))
        if self.latest is None:
            self.placeholder.show_content(True)
            self.plot.autoRange()
        self.latest = boundary
        self.count += 1
        self.label.setText(f"Decision boundary at step {boundary.global_step}")


if __name__ == "__main__":
    from workbench.core.training.monitors import BoundaryMonitor
    from workbench.gui.demo import run_demo

    def _make(runner: Any) -> tuple[QWidget, Any]:
        view = BoundaryView()

        def feed(event: object) -> None:
            if isinstance(event, Boundary):
                if view.latest is None:
                    data = runner.trainer.data  # loaded before the first event; read-only
                    view.set_points(data.train_x.numpy(), data.train_y.numpy(),
                                    data.info.class_names)
                view.set_boundary(event)
        return view, feed

    raise SystemExit(run_demo("Decision boundary", _make, callbacks=[BoundaryMonitor()]))
