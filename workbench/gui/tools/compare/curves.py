"""The Compare panel's Curves tab: every variant's curves overlaid (one colour each) against
epoch, step or time, created once per variant and fed only the points each gained since."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.core.tools.compare import Curves, Variant
from workbench.gui.tools.compare.presenter import (
    PLOT_UNITS,
    PLOTS,
    X_AXES,
    drawable,
    drawable_log,
    new_points,
)
from workbench.gui.views.curves import MAX_SYMBOLS, LiveCurve, new_plot
from workbench.gui.widgets.layouts import Placeholder
from workbench.gui.widgets.style import legend_html, series_color

NO_VARIANTS = ("No comparison yet: tick optimizers (or choose a field to vary) and press Run "
               "comparison, or add past runs.")


class CurvesPage(QWidget):
    """The curves of a comparison's variants; `axisChanged` when the x axis changes (every
    line is fed again from its first point)."""

    axisChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lines: list[dict[str, LiveCurve]] = []
        self.fed: list[dict[str, int]] = []  # points of each Curves series its line was given
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("against"))
        self.x_combo = QComboBox()
        self.x_combo.addItems(list(X_AXES))
        self.x_combo.currentTextChanged.connect(self._x_changed)
        bar.addWidget(self.x_combo)
        self.legend_label = QLabel()
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setWordWrap(True)
        bar.addWidget(self.legend_label, 1)
        layout.addLayout(bar)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.plots: dict[str, pg.PlotItem] = {}
        for i, (key, _title) in enumerate(PLOTS):
            if i in (2, 4):
                self.graphics.ci.nextRow()
            self.plots[key] = new_plot(self.graphics.ci, None, left=PLOT_UNITS[key],
                                       log_y=key.endswith("loss"))
        self.placeholder = Placeholder(self.graphics, NO_VARIANTS)
        layout.addWidget(self.placeholder, 1)

    def clear(self) -> None:
        for lines in self.lines:
            for line in lines.values():
                line.remove()
        self.lines = []
        self.fed = []

    def sync(self, variants: Sequence[Variant]) -> str:
        """Create the curves of variants added since the last call (created once, then fed);
        the legend's HTML."""
        for index in range(len(self.lines), len(variants)):
            color = series_color(index)
            pen = pg.mkPen(color, width=2)
            lines: dict[str, LiveCurve] = {}
            for key, _title in PLOTS:
                keep = drawable_log if key.endswith("loss") else drawable
                marks = {"symbol": "o", "symbolSize": 5, "symbolBrush": color,
                         "symbolPen": None} if key.startswith("val") else {}
                lines[key] = LiveCurve(self.plots[key], keep=keep, pen=pen, z=index, **marks)
            self.lines.append(lines)
            self.fed.append(dict.fromkeys(lines, 0))
        self.placeholder.show_content(bool(variants))
        legend = legend_html([(series_color(i), v.label, False) for i, v in enumerate(variants)])
        self.legend_label.setText(legend)
        return legend

    def _x_changed(self, _text: str) -> None:
        for lines, fed in zip(self.lines, self.fed, strict=True):  # fed again against x
            for key, line in lines.items():
                line.clear()
                fed[key] = 0
        for plot in self.plots.values():
            plot.setLabel("bottom", X_AXES[self.x_combo.currentText()][1])
            plot.enableAutoRange()
        self.axisChanged.emit()

    def feed(self, curves: Sequence[Curves], starts: dict[int, int]) -> None:
        """Give each line the points its variant gained since it was last fed; a fork
        (`starts`: variant index -> global step) from where it branches off."""
        xkey = X_AXES[self.x_combo.currentText()][0]
        for index, (variant_curves, lines, fed) in enumerate(
                zip(curves, self.lines, self.fed, strict=False)):
            for key, line in lines.items():
                series = variant_curves.epochs if key.startswith("val") else variant_curves.steps
                if len(series[key]) > fed[key]:
                    line.extend(*new_points(series, key, xkey, fed[key], starts.get(index)))
                    fed[key] = len(series[key])

    def draw(self) -> None:
        for lines in self.lines:
            for key, line in lines.items():
                if key.startswith("val") and line.dirty:
                    line.set_symbol("o" if line.n <= MAX_SYMBOLS else None)
                line.draw()
