"""The Compare panel's Landscape tab: the loss on a 2-D slice of weight space around one
variant's final weights (Li et al. 2018), with every variant's path, computed off the GUI
thread on data from the workspace's cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from workbench.core.tools.compare import Variant
from workbench.core.workspace import Workspace
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.compare.presenter import landscape_runs
from workbench.gui.views.axes import ColourScale, attach_scale, plot_widget
from workbench.gui.widgets.layouts import FlowLayout, Placeholder
from workbench.gui.widgets.style import series_color

NO_LANDSCAPE = "No landscape yet: run the comparison, then Compute."


class LandscapePage(QWidget):
    """`ready` once a landscape is drawn."""

    ready = Signal()

    def __init__(self, workspace: Workspace, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace, self.tasks = workspace, tasks
        self.variants: Sequence[Variant] = ()
        layout = QVBoxLayout(self)
        controls = QWidget()  # wraps onto two lines when the panel is narrow
        bar = FlowLayout(controls, spacing=10, line_spacing=4)
        self.center_combo = QComboBox()
        self.center_combo.setMinimumContentsLength(10)
        bar.add_group(QLabel("around"), self.center_combo)
        self.directions_combo = QComboBox()
        self.directions_combo.addItem("random (filter-normalized)", "random")
        self.directions_combo.addItem("principal directions of the paths", "pca")
        self.directions_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.directions_combo.setMinimumContentsLength(12)
        bar.add_group(QLabel("directions"), self.directions_combo)
        self.resolution_spin = QSpinBox()
        self.resolution_spin.setRange(5, 61)
        self.resolution_spin.setValue(21)
        self.resolution_spin.setSuffix(" points")
        bar.add_group(QLabel("grid"), self.resolution_spin)
        self.button = QPushButton("Compute")
        self.button.clicked.connect(self.compute)
        bar.addWidget(self.button)
        layout.addWidget(controls)
        self.status = QLabel("The loss on a 2-D slice of weight space around a variant's "
                             "final weights (Li et al. 2018), with every variant's path.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.legend = QLabel()  # the variants' colours, beside the map, not over it
        self.legend.setWordWrap(True)
        layout.addWidget(self.legend)
        self.plot = plot_widget()
        self.plot.setAspectLocked(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        # the colour is log10 of the loss; the bar's ticks say the loss itself
        self.scale = attach_scale(self.plot.getPlotItem(),
                                  ColourScale("viridis", "loss", log=True), self.image)
        self.plot.setLabel("bottom", "direction 1")
        self.plot.setLabel("left", "direction 2")
        self.paths: list[Any] = []
        self.placeholder = Placeholder(self.plot, NO_LANDSCAPE)
        layout.addWidget(self.placeholder, 1)

    def set_variants(self, variants: Sequence[Variant], legend: str) -> None:
        self.variants = variants
        self.center_combo.clear()
        self.center_combo.addItems([v.label for v in variants])
        self.legend.setText(legend)

    def compute(self) -> None:
        """Compute the slice around the chosen variant's final weights, off the GUI thread."""
        if self.tasks.is_running("landscape"):
            return
        index = self.center_combo.currentIndex()
        if index < 0 or not self.variants[index].run_dir:
            self.status.setText("Run the comparison first: the slice is centred on a "
                                "variant's final weights.")
            return
        center = self.variants[index]
        runs = landscape_runs(self.variants, center)
        directions = self.directions_combo.currentData()
        resolution = self.resolution_spin.value()
        workspace = self.workspace

        def work(emit: Callable[[object], None], cancel: Any) -> Any:
            from workbench.core.tools.landscape import landscape_for_runs

            spec = center.spec
            data = workspace.splits(spec.data, spec.train.seed, cancel=cancel)
            return landscape_for_runs(spec, data, center.run_dir, runs,
                                      center_label=center.label, directions=directions,
                                      resolution=resolution,
                                      progress=lambda done, total: emit((done, total)),
                                      cancel=cancel)

        self.button.setEnabled(False)
        self.status.setText("Computing the loss on the slice...")
        self.tasks.start("landscape", work, partial=self._progress, done=self.show_landscape,
                         failed=self._failed, finished=self._finished)

    def _progress(self, rows: tuple[int, int]) -> None:
        self.status.setText(f"Computing the loss on the slice: row {rows[0]} of {rows[1]}")

    def _failed(self, message: str) -> None:
        self.status.setText(f"Could not compute the landscape: {message}")

    def _finished(self) -> None:
        self.button.setEnabled(True)

    def show_landscape(self, land: Any) -> None:
        for path in self.paths:
            self.plot.removeItem(path)
        self.paths = []
        a, b = land.alphas, land.betas
        shown = np.log10(np.maximum(land.losses, 1e-8))
        self.image.setImage(shown)
        finite = shown[np.isfinite(shown)]
        if finite.size:  # the colours span the slice's losses, and the bar says which
            self.scale.set_values(float(finite.min()), float(finite.max()))
        da, db = a[1] - a[0], b[1] - b[0]
        self.image.setRect(QRectF(a[0] - da / 2, b[0] - db / 2, a[-1] - a[0] + da,
                                  b[-1] - b[0] + db))
        labels = [v.label for v in self.variants]
        for label, coords in land.paths.items():
            i = labels.index(label) if label in labels else len(self.paths)
            color = series_color(i)
            item = self.plot.plot(coords[:, 0], coords[:, 1], pen=pg.mkPen(color, width=2.5),
                                  symbol="o", symbolSize=6, symbolBrush=color, symbolPen="w",
                                  name=label)
            self.paths.append(item)
        self.placeholder.show_content(True)
        self.plot.autoRange()
        kind = "random filter-normalized" if land.directions == "random" else "principal"
        self.status.setText(
            f"The loss around the final weights of {land.center_label} ({kind} directions, "
            "colour on a log scale); "
            f"loss there {land.center_loss:.4f}. Dots: weights after each epoch.")
        self.ready.emit()
