"""The optimizer playground: real torch.optim optimizers racing on classic 2-D surfaces.

A contour map of the surface (log-scaled colours where the surface allows), a click sets the
start point, and each ticked optimizer's trajectory animates in its own colour, with the loss
against step beside it. Trajectories come from `core.surfaces.trajectory` (the real
optimizers); they are cheap (a few hundred 2-D steps) so they are computed on the GUI thread
and only their drawing is animated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.tools.surfaces import (
    PLAYGROUND_OPTIMIZERS,
    SURFACES,
    Surface,
    Trajectory,
    trajectory,
)
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.views.axes import ColourScale, attach_scale, plot_widget
from workbench.gui.widgets.layouts import fit_table_width, scroll_above
from workbench.gui.widgets.style import BLACK, CLASS_COLORS, WHITE, legend_html
from workbench.spec import OPTIMIZER_TITLES

# One colour per optimizer, the same on the map (drawn over a dark outline) and the loss plot.
COLORS = tuple(CLASS_COLORS[i] for i in (1, 0, 4, 2, 6, 5, 3))  # an optimizer's, in order
FRAME_MS = 30
SPIN_WIDTH = 78
CONTOUR_LEVELS = 14
SIDE_BY_SIDE_WIDTH = 1100  # from this width the loss plot stands beside the map


class PlaygroundPanel(Tool, QWidget):
    """Pick a surface, optimizers and their settings; click to set the start; watch."""

    animationFinished = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.surface: Surface = SURFACES["rosenbrock"]
        self.start: tuple[float, float] = self.surface.start
        self.trajectories: dict[str, Trajectory] = {}
        self.shown = 0
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self._frame)
        self.set_surface("rosenbrock")

    def _build(self) -> None:
        controls = QWidget()
        left = QVBoxLayout(controls)
        form = QFormLayout()
        self.surface_combo = QComboBox()
        for s in SURFACES.values():
            self.surface_combo.addItem(s.title, s.name)
        self.surface_combo.currentIndexChanged.connect(
            lambda _i: self.set_surface(self.surface_combo.currentData()))
        form.addRow("surface", self.surface_combo)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 5000)
        self.steps_spin.setValue(600)
        self.steps_spin.valueChanged.connect(lambda _v: self.replay())
        form.addRow("steps", self.steps_spin)
        self.speed_spin = QSpinBox()
        self.speed_spin.setRange(1, 100)
        self.speed_spin.setValue(5)
        form.addRow("steps per frame", self.speed_spin)
        left.addLayout(form)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setMinimumHeight(64)
        self.description.setAlignment(Qt.AlignmentFlag.AlignTop)
        left.addWidget(self.description)

        box = QGroupBox("Optimizers")
        self.table = QTableWidget(len(PLAYGROUND_OPTIMIZERS), 3)
        self.table.setHorizontalHeaderLabels(["optimizer", "lr", "β₁ / mom."])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.checks: dict[str, QCheckBox] = {}
        self.lrs: dict[str, QDoubleSpinBox] = {}
        self.betas: dict[str, QDoubleSpinBox] = {}
        for row, (name, (_cls, defaults)) in enumerate(PLAYGROUND_OPTIMIZERS.items()):
            check = QCheckBox(OPTIMIZER_TITLES[name])
            check.setChecked(name in ("sgd", "momentum", "adam", "rmsprop"))
            check.setStyleSheet(f"QCheckBox {{ color: {COLORS[row % len(COLORS)]}; "
                                "font-weight: bold }")
            check.setToolTip(OPTIMIZER_TITLES[name])
            check.toggled.connect(lambda _on: self.replay())
            lr = QDoubleSpinBox()
            lr.setDecimals(5)
            lr.setRange(1e-5, 10.0)
            lr.setSingleStep(1e-3)
            lr.setValue(defaults["lr"])
            lr.setFixedWidth(SPIN_WIDTH)
            lr.valueChanged.connect(lambda _v: self.replay())
            self.table.setCellWidget(row, 0, check)
            self.table.setCellWidget(row, 1, lr)
            self.checks[name] = check
            self.lrs[name] = lr
            if name in ("momentum", "nesterov", "adam", "adamw"):
                beta = QDoubleSpinBox()
                beta.setDecimals(3)
                beta.setRange(0.0, 0.999)
                beta.setSingleStep(0.05)
                beta.setValue(0.9)
                beta.setFixedWidth(SPIN_WIDTH)
                beta.valueChanged.connect(lambda _v: self.replay())
                self.table.setCellWidget(row, 2, beta)
                self.betas[name] = beta
        self.table.setMinimumHeight(32 * len(PLAYGROUND_OPTIMIZERS) + 30)
        fit_table_width(self.table)  # every optimizer's name whole
        QVBoxLayout(box).addWidget(self.table)
        left.addWidget(box)
        left.addStretch(1)
        row = QHBoxLayout()  # below the settings, always in view
        replay = QPushButton("Replay")
        replay.clicked.connect(self.replay)
        reset = QPushButton("Reset start")
        reset.clicked.connect(lambda: self.set_start(self.surface.start))
        row.addWidget(replay)
        row.addWidget(reset)
        self.status = QLabel("Click on the map to start from there.")
        self.status.setWordWrap(True)

        self.map = plot_widget()
        self.map.setLabel("bottom", "x")  # the surface's two coordinates
        self.map.setLabel("left", "y")
        self.map.setAspectLocked(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.map.addItem(self.image)
        self.scale = attach_scale(self.map.getPlotItem(),
                                  ColourScale("CET-L17", "surface value"), self.image)
        self.isocurves: list[pg.IsocurveItem] = []
        self.minima = pg.ScatterPlotItem(symbol="star", size=16, brush=WHITE,
                                         pen=pg.mkPen(BLACK, width=1))
        self.start_marker = pg.ScatterPlotItem(symbol="o", size=12, brush=BLACK,
                                               pen=pg.mkPen(WHITE, width=2))
        self.map.addItem(self.minima)
        self.map.addItem(self.start_marker)
        self.paths: dict[str, pg.PlotDataItem] = {}
        self.heads: dict[str, pg.ScatterPlotItem] = {}
        self.shadows: dict[str, pg.PlotDataItem] = {}
        self.map.scene().sigMouseClicked.connect(self._clicked)

        self.loss_plot = plot_widget()
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLabel("left", "loss (surface value)")
        self.loss_legend = QLabel()  # above the curves, never over them
        self.loss_legend.setWordWrap(True)
        loss_box = QWidget()
        loss_layout = QVBoxLayout(loss_box)
        loss_layout.setContentsMargins(0, 0, 0, 0)
        loss_layout.addWidget(self.loss_legend)
        loss_layout.addWidget(self.loss_plot, 1)
        self.loss_curves: dict[str, pg.PlotDataItem] = {}

        # the map and the loss side by side on a wide screen, the loss under the map otherwise
        self.views = QSplitter()
        self.views.setChildrenCollapsible(False)
        self.views.addWidget(self.map)
        self.views.addWidget(loss_box)
        self.views.setStretchFactor(0, 3)
        self.views.setStretchFactor(1, 2)
        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(scroll_above(controls, row, self.status))  # scrolls when short
        splitter.addWidget(self.views)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 1040])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def resizeEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)  # type: ignore[arg-type]
        wide = self.width() >= SIDE_BY_SIDE_WIDTH
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if self.views.orientation() != orientation:
            self.views.setOrientation(orientation)
            self.views.setSizes([3, 2])

    def _color(self, name: str) -> str:
        return COLORS[list(PLAYGROUND_OPTIMIZERS).index(name) % len(COLORS)]

    # -- state ----------------------------------------------------------------------------
    def set_surface(self, name: str) -> None:
        if name not in SURFACES:
            raise ValueError(f"unknown surface {name!r} (known: {', '.join(SURFACES)})")
        self.surface = s = SURFACES[name]
        index = self.surface_combo.findData(name)
        if index != self.surface_combo.currentIndex():
            self.surface_combo.blockSignals(True)
            self.surface_combo.setCurrentIndex(index)
            self.surface_combo.blockSignals(False)
        self.description.setText(s.description)
        xs, ys, values = s.grid(300)
        # a log surface's colour is log10 of its height above the floor (from 0.001: the
        # minimum's own neighbourhood would take the whole scale), and the bar says the values
        shown = np.log10(np.maximum(values - s.floor, 1e-3)) if s.log_scale else values
        self.scale.axis.setLogMode(s.log_scale)
        self.scale.getAxis("left").setLabel("surface value" if s.floor == 0 or not s.log_scale
                                            else "height above the minimum")
        self.image.setImage(shown)
        self.scale.set_values(float(shown.min()), float(shown.max()))
        x0, x1, y0, y1 = s.box
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        for iso in self.isocurves:  # children of the image, not of the plot
            iso.setParentItem(None)
            self.map.scene().removeItem(iso)
        self.isocurves = []
        for level in np.linspace(shown.min(), shown.max(), CONTOUR_LEVELS + 2)[1:-1]:
            iso = pg.IsocurveItem(data=shown, level=float(level), axisOrder="row-major",
                                  pen=pg.mkPen((255, 255, 255, 90), width=1))
            iso.setParentItem(self.image)
            self.isocurves.append(iso)
        self.minima.setData([m[0] for m in s.minima], [m[1] for m in s.minima])
        self.map.setLimits(xMin=x0, xMax=x1, yMin=y0, yMax=y1)  # before the range: the old
        self.map.setXRange(x0, x1, padding=0)  # surface's limits would clip the new range
        self.map.setYRange(y0, y1, padding=0)
        self.loss_plot.setLogMode(y=s.log_scale)
        self.set_start(s.start)

    def set_start(self, start: tuple[float, float]) -> None:
        self.start = (float(start[0]), float(start[1]))
        self.start_marker.setData([self.start[0]], [self.start[1]])
        self.replay()

    def hyperparams(self, name: str) -> dict[str, float | tuple[float, float]]:
        hp: dict[str, float | tuple[float, float]] = {"lr": self.lrs[name].value()}
        if name in ("momentum", "nesterov"):
            hp["momentum"] = self.betas[name].value()
        elif name in self.betas:
            hp["betas"] = (self.betas[name].value(), 0.999)
        return hp

    def chosen(self) -> list[str]:
        return [n for n in PLAYGROUND_OPTIMIZERS if self.checks[n].isChecked()]

    def replay(self) -> None:
        """Recompute every ticked optimizer's trajectory and animate it from the start."""
        steps = self.steps_spin.value()
        self.trajectories = {}
        problems = []
        for name in self.chosen():
            try:
                self.trajectories[name] = trajectory(self.surface.fn, self.start, name,
                                                     self.hyperparams(name), steps)
            except ValueError as exc:
                problems.append(str(exc))
        self._reset_items()
        diverged = [n for n, t in self.trajectories.items() if t.diverged]
        notes = [f"start ({self.start[0]:.2f}, {self.start[1]:.2f})"]
        if diverged:
            notes.append("diverged: " + ", ".join(diverged))
        notes += problems
        self.status.setText("; ".join(notes) + ". Click on the map to start from there.")
        self._fix_loss_range()
        self.shown = 0
        self._timer.start()

    def _reset_items(self) -> None:
        for name in list(self.paths):
            self.map.removeItem(self.paths.pop(name))
            self.map.removeItem(self.shadows.pop(name))
            self.map.removeItem(self.heads.pop(name))
            self.loss_plot.removeItem(self.loss_curves.pop(name))
        self.loss_legend.setText(legend_html([(self._color(n), OPTIMIZER_TITLES[n], False)
                                              for n in self.trajectories]))
        for name in self.trajectories:
            c = self._color(name)
            self.shadows[name] = self.map.plot(pen=pg.mkPen((0, 0, 0, 170), width=5))
            self.paths[name] = self.map.plot(pen=pg.mkPen(c, width=2.5))
            self.heads[name] = pg.ScatterPlotItem(size=12, brush=c, pen=pg.mkPen(BLACK))
            self.map.addItem(self.heads[name])
            self.loss_curves[name] = self.loss_plot.plot(pen=pg.mkPen(c, width=2))

    def _fix_loss_range(self) -> None:
        """Fix the loss plot's range to the whole race up front: steady axes while it plays
        (and no axis re-layout per frame)."""
        if not self.trajectories:
            return
        losses = np.concatenate([self._shown_losses(t.losses) for t in self.trajectories.values()])
        losses = losses[np.isfinite(losses)]
        longest = max(len(t.points) for t in self.trajectories.values())
        self.loss_plot.setXRange(0, max(1, longest - 1), padding=0.02)
        if len(losses):
            lo, hi = float(losses.min()), float(losses.max())
            if self.surface.log_scale:
                lo, hi = np.log10(lo), np.log10(hi)
            self.loss_plot.setYRange(lo, hi if hi > lo else lo + 1, padding=0.05)

    def _shown_losses(self, losses: np.ndarray) -> np.ndarray:
        if self.surface.log_scale:
            return np.maximum(losses - self.surface.floor, 1e-12)
        return losses

    def _frame(self) -> None:
        longest = max((len(t.points) for t in self.trajectories.values()), default=0)
        self.shown = min(longest, self.shown + self.speed_spin.value())
        self.draw(self.shown)
        if self.shown >= longest:
            self._timer.stop()
            self.animationFinished.emit()

    def draw(self, upto: int) -> None:
        """Draw every trajectory up to point `upto` (the animation calls this per frame)."""
        for name, t in self.trajectories.items():
            pts = t.points[:max(1, upto)]
            self.paths[name].setData(pts[:, 0], pts[:, 1])
            self.shadows[name].setData(pts[:, 0], pts[:, 1])
            self.heads[name].setData([pts[-1, 0]], [pts[-1, 1]])
            losses = self._shown_losses(t.losses[:len(pts)])
            self.loss_curves[name].setData(np.arange(len(losses)), losses)

    def finish(self) -> None:
        """Jump to the end of the animation."""
        self.shown = max((len(t.points) for t in self.trajectories.values()), default=0)
        self.draw(self.shown)
        self._timer.stop()
        self.animationFinished.emit()

    def _clicked(self, event: object) -> None:
        pos = event.scenePos()  # type: ignore[attr-defined]
        vb = self.map.plotItem.vb
        if not vb.sceneBoundingRect().contains(pos):
            return
        point: QPointF = vb.mapSceneToView(pos)
        x0, x1, y0, y1 = self.surface.box
        if x0 <= point.x() <= x1 and y0 <= point.y() <= y1:
            self.set_start((point.x(), point.y()))
        event.accept()  # type: ignore[attr-defined]

    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **_: Any) -> PlaygroundPanel:
        return cls(host.parent_widget())

    def shutdown(self) -> None:
        """Stop the animation (its tab closes)."""
        self._timer.stop()

    def closeEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)  # type: ignore[arg-type]


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    panel = PlaygroundPanel()
    panel.resize(1400, 700)
    panel.show()
    sys.exit(app.exec())
