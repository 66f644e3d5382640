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
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.core.training.events import Boundary
from workbench.gui.views.axes import ColourScale, attach_scale, plot_widget
from workbench.gui.widgets.layouts import Placeholder
from workbench.gui.widgets.style import CLASS_COLORS, legend_html

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


def probability_map() -> pg.ColorMap:
    """`probability_lut` as a colour map over 0..1 (the colour bar's and the image's)."""
    lut = probability_lut()
    return pg.ColorMap(np.linspace(0.0, 1.0, len(lut)), lut)


def class_map(k: int) -> pg.ColorMap:
    """One flat colour per class over -0.5..k-0.5: class i's cell and its band on the bar."""
    lut = class_lut(k)
    edges = np.linspace(0.0, 1.0, k + 1)
    positions = np.repeat(edges, 2)[1:-1]  # each band's two ends
    return pg.ColorMap(positions, np.repeat(lut, 2, axis=0))


class BoundaryView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.label.setObjectName("hint")
        self.legend = QLabel("")  # the points' classes, beside the map, not over it
        self.legend.setWordWrap(True)
        self.plot_widget = plot_widget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=False, y=False)
        self.plot.setLabel("bottom", "x\u2081")  # the two input features, as the Data tab
        self.plot.setLabel("left", "x\u2082")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        # what a cell's colour says: the probability of the second class, or the class
        self.scale = attach_scale(self.plot, ColourScale(probability_map(), "probability"),
                                  self.image)
        self.points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("w", width=0.8))
        self.plot.addItem(self.points)
        self.placeholder = Placeholder(self.plot_widget, NO_DATA)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.label)
        top.addWidget(self.legend, 1)
        layout.addLayout(top)
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
        self.legend.setText("")
        self.placeholder.show_content(False)

    def set_points(self, x: np.ndarray, y: np.ndarray, class_names: Sequence[str]) -> None:
        """The training points, in raw units, coloured by class."""
        names = [str(n) for n in class_names] or ["0", "1"]
        self.num_classes = k = max(2, len(names))
        bar = self.scale.getAxis("left")
        if k == 2:
            self.scale.setColorMap(probability_map())
            self.scale.set_values(0.0, 1.0)
            self.scale.axis.setTicks(None)
            bar.setLabel(f"probability of class {names[1]}")
        else:
            self.scale.setColorMap(class_map(k))
            self.scale.set_values(-0.5, k - 0.5)
            self.scale.axis.setTicks([[(i, names[i]) for i in range(k)]])
            bar.setLabel("predicted class")
        self.legend.setText("Points: " + legend_html(
            [(CLASS_COLORS[i % len(CLASS_COLORS)], f"class {names[i]}", True)
             for i in range(min(k, len(names)))]))
        self.points.setData(x=x[:, 0], y=x[:, 1], brush=class_brushes(y))
        self.plot.autoRange()

    def set_boundary(self, boundary: Boundary) -> None:
        probs = np.asarray(boundary.probs, dtype=np.float32)
        self.image.setImage(probs, levels=self.scale.levels(), autoLevels=False)
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
