"""A regression's results, as Results shows them instead of a confusion matrix: its test
errors (MSE, RMSE, MAE, R²) and two plots, predicted against true (the dashed diagonal is a
perfect answer) and the residuals (predicted minus true) against true, from the summary's
`regression` entry (`core.tools.inspect.results`: up to 2,000 test samples, evenly spaced).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.gui.widgets.style import ACCENT, ALERT, TEXT, rgba

FIGURES = (("mse", "MSE"), ("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²"))


def number(value: float) -> str:
    """A figure in four significant digits, with thousands separated (2,970, 0.4512)."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def figures_text(entry: dict[str, Any]) -> str:
    """The test errors in a line: `MSE 2,970 · RMSE 54.5 · MAE 43.1 · R² 0.4521`, each in
    the target's own units (R² has none: four decimals, so 0.99997 is not written 1); a
    figure the run could not compute is left out."""
    parts = [f"{label} {number(float(entry[key])) if key != 'r2' else f'{entry[key]:.4f}'}"
             for key, label in FIGURES
             if isinstance(entry.get(key), int | float) and not isinstance(entry[key], bool)]
    return " · ".join(parts)


def points(entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) of the stored test samples whose two values are finite numbers."""
    pairs = [(t, p) for t, p in zip(entry.get("true") or [], entry.get("predicted") or [],
                                    strict=False)
             if isinstance(t, int | float) and isinstance(p, int | float)
             and math.isfinite(t) and math.isfinite(p)]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(pairs, dtype=np.float64)
    return arr[:, 0], arr[:, 1]


def _plot(left: str, bottom: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)  # 151, not 0.151 with "(x1000)"
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    plot.setMinimumSize(180, 160)
    return plot


class RegressionView(QWidget):
    """Predicted against true, and the residuals against true, side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel()
        self.caption.setObjectName("hint")
        self.caption.setWordWrap(True)
        self.fit_plot = _plot("predicted", "true")
        self.residual_plot = _plot("residual (predicted − true)", "true")
        dots = dict(size=6, pen=None)
        self.fit_points = pg.ScatterPlotItem(brush=pg.mkBrush(*rgba(ACCENT, 150)), **dots)
        self.residual_points = pg.ScatterPlotItem(brush=pg.mkBrush(*rgba(ALERT, 150)), **dots)
        dashed = pg.mkPen(TEXT, width=1, style=Qt.PenStyle.DashLine)
        self.diagonal = pg.PlotCurveItem(pen=dashed)
        self.zero = pg.InfiniteLine(pos=0, angle=0, pen=dashed)
        self.fit_plot.addItem(self.diagonal)
        self.fit_plot.addItem(self.fit_points)
        self.residual_plot.addItem(self.zero)
        self.residual_plot.addItem(self.residual_points)
        plots = QHBoxLayout()
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self.fit_plot, 1)
        plots.addWidget(self.residual_plot, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addLayout(plots, 1)
        self.truth = np.zeros(0)
        self.predicted = np.zeros(0)

    def show_entry(self, entry: dict[str, Any]) -> bool:
        """Draw a summary's `regression` entry; False when it holds no points."""
        truth, predicted = points(entry)
        self.truth, self.predicted = truth, predicted
        target = str(entry.get("target") or "y")
        self.fit_plot.setLabel("left", f"predicted {target}")
        self.fit_plot.setLabel("bottom", f"true {target}")
        self.residual_plot.setLabel("bottom", f"true {target}")
        self.fit_points.setData(x=truth, y=predicted)
        self.residual_points.setData(x=truth, y=predicted - truth)
        if len(truth):
            lo = float(min(truth.min(), predicted.min()))
            hi = float(max(truth.max(), predicted.max()))
            self.diagonal.setData([lo, hi], [lo, hi])
        else:
            self.diagonal.setData([], [])
        of = entry.get("points_of")
        shown = (f"{len(truth):,} of the {of:,} test samples, evenly spaced"
                 if isinstance(of, int) and of > len(truth) else
                 f"all {len(truth):,} test samples")
        self.caption.setText(
            f"Left: each test sample's prediction against its true {target} ({shown}); on "
            "the dashed diagonal the answer is exact. Right: the residuals, predicted minus "
            "true: a pattern in them is something the model has not captured.")
        for plot in (self.fit_plot, self.residual_plot):
            plot.autoRange()
        return bool(len(truth))

    def clear(self) -> None:
        self.show_entry({})
