"""Inspect's Sample page: pick any test sample by number, or a misclassified one, and see its
answer, the attribution maps over its input (saliency, Integrated Gradients, Grad-CAM for a
convolutional network) each with its colour scale and how to read it, the probability of each
class, and every layer's output for it, layer by layer as the editor numbers them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.gui.tools.inspect.maps import MapGrid, NamedBars, plain_axis
from workbench.gui.tools.inspect.pages import label
from workbench.gui.tools.inspect.presenter import (
    Overview,
    activation_map,
    activation_text,
    answer_text,
    attribution_map,
    explained_text,
    feature_bars,
    input_map,
    misclassified_count,
    misclassified_items,
    probability_rows,
)
from workbench.gui.widgets.layouts import FlowLayout
from workbench.gui.widgets.style import ACCENT, ALERT, TEXT

MAP_SIDE = 136
ACTIVATION_WIDTH = 440  # a convolutional layer's channels, 8 a row
STEM_HEIGHT = 100
PICK = "pick one…"


class SamplePage(QWidget):
    """`sampleRequested(index, target)` when the person picks a sample or the class its maps
    explain (target None: the answer)."""

    sampleRequested = Signal(int, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.overview: Overview | None = None
        self.insight: Any = None
        controls_box = QWidget()
        controls = FlowLayout(controls_box, spacing=10, line_spacing=4)
        self.index = QSpinBox()
        self.index.setRange(0, 0)
        self.index.setKeyboardTracking(False)  # typing 123 asks once, for 123
        self.index.setToolTip("test samples are numbered from 0, in test order")
        controls.add_group(QLabel("Test sample"), self.index)
        self.wrong = QComboBox()
        self.wrong.setMinimumContentsLength(14)
        self.wrong.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.wrong_label = QLabel("or a misclassified one")
        controls.add_group(self.wrong_label, self.wrong)
        self.target = QComboBox()
        self.target.setToolTip("the class whose score the maps explain")
        self.target_label = QLabel("Explain")
        controls.add_group(self.target_label, self.target)
        self.answer = label(bold=True)
        self.explained = label(hint=True)
        self.maps = MapGrid()
        self.maps.hovered.connect(self._hovered)
        self.bars_box = QWidget()
        self.bars_layout = QHBoxLayout(self.bars_box)
        self.bars_layout.setContentsMargins(0, 0, 0, 0)
        self.value = label(hint=True)  # the value under the pointer
        self.how = label(hint=True)
        self.probabilities = NamedBars()
        self.activations_title = label(
            "Every layer's output for this sample, in order, layers numbered as the editor "
            "numbers them (a ReLU's zeros are units that are off):", hint=True)
        self.activations = QVBoxLayout()
        self.activations.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.addWidget(controls_box)
        layout.addWidget(self.answer)
        layout.addWidget(self.explained)
        layout.addWidget(self.maps)
        layout.addWidget(self.bars_box)
        layout.addWidget(self.value)
        layout.addWidget(self.how)
        layout.addWidget(self.probabilities)
        layout.addWidget(self.activations_title)
        layout.addLayout(self.activations)
        layout.addStretch(1)
        self.index.valueChanged.connect(self._index_changed)
        self.wrong.activated.connect(self._wrong_chosen)
        self.target.activated.connect(lambda _i: self._request(self.index.value()))
        self.clear()

    # -- a run --------------------------------------------------------------------------------
    def clear(self) -> None:
        self.overview = None
        self.insight = None
        self.answer.setText("Pick a test sample.")
        for w in (self.explained, self.value, self.how):
            w.setText("")
        self.maps.hide()
        self.bars_box.hide()
        self.probabilities.hide()
        self.activations_title.hide()
        self._clear_activations()

    def set_overview(self, ov: Overview) -> None:
        self.clear()
        self.overview = ov
        for box in (self.index, self.wrong, self.target):
            box.blockSignals(True)
        self.index.setRange(0, max(0, ov.test_size - 1))
        self.index.setValue(0)
        self.wrong.clear()
        items = misclassified_items(ov)
        count = misclassified_count(ov)
        self.wrong.addItem(PICK if items else "none", None)
        for text, index in items:
            self.wrong.addItem(text, index)
        self.wrong.setEnabled(bool(items))
        self.wrong.setToolTip(f"{count:,} test samples are misclassified (each listed as its "
                              "number: its true class → the answer, with its probability)"
                              + (f"; the first {len(items):,} are listed" if count > len(items)
                                 else ""))
        classification = ov.task == "classification"
        self.wrong.setVisible(classification)
        self.wrong_label.setVisible(classification)
        self.target.clear()
        self.target.addItem("the answer", None)
        for k, name in enumerate(ov.class_names):
            self.target.addItem(f"class {name}", k)
        self.target.setVisible(classification)
        self.target_label.setVisible(classification)
        for box in (self.index, self.wrong, self.target):
            box.blockSignals(False)

    def select(self, index: int) -> None:
        """Show sample `index` as picked (its result follows from the panel)."""
        self.index.blockSignals(True)
        self.index.setValue(index)
        self.index.blockSignals(False)
        found = self.wrong.findData(index)
        self.wrong.setCurrentIndex(max(0, found))
        self.answer.setText(f"Test sample {index}: working it out…")

    def target_class(self) -> int | None:
        data = self.target.currentData()
        return None if data is None else int(data)

    def _index_changed(self, index: int) -> None:
        self._request(index)

    def _wrong_chosen(self, row: int) -> None:
        index = self.wrong.itemData(row)
        if index is not None:
            self._request(int(index))

    def _request(self, index: int) -> None:
        if self.overview is not None:
            self.select(index)
            self.sampleRequested.emit(index, self.target_class())

    def _hovered(self, text: str) -> None:
        self.value.setText(text)

    # -- a sample -------------------------------------------------------------------------------
    def show_insight(self, s: Any) -> None:
        ov = self.overview
        if ov is None:
            return
        self.insight = s
        self.answer.setText(answer_text(s))
        self.explained.setText(explained_text(s))
        self.value.setText("Hover a map for the value under the pointer." if ov.image_input
                           else "")
        if ov.image_input:
            self.bars_box.hide()
            views = [input_map(s), *(attribution_map(a) for a in s.attributions)]
            self.maps.set_maps(views, columns=len(views), side=MAP_SIDE, shared=False)
            self.maps.show()
        else:
            self.maps.hide()
            self._feature_bars(s, ov.feature_names)
        self.how.setText("<br>".join(
            f"<b>{html.escape(a.title)}</b>: {html.escape(a.how_to_read.split(': ', 1)[-1])}"
            for a in s.attributions))
        if s.probabilities is not None:
            rows, title = probability_rows(s)
            self.probabilities.set_bars([r[0] for r in rows], [r[1] for r in rows], title,
                                        highlight=[r[2] for r in rows],
                                        marks=[r[3] for r in rows], span=(0.0, 1.0))
            self.probabilities.show()
        else:
            self.probabilities.hide()
        self._show_activations(s)

    def _feature_bars(self, s: Any, names: tuple[str, ...]) -> None:
        while self.bars_layout.count():
            item = self.bars_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for k, (title, values) in enumerate(feature_bars(s, names)):
            bars = NamedBars()
            bars.set_bars(names, values, title, show_names=k == 0)
            self.bars_layout.addWidget(bars, 3 if k == 0 else 2)
        self.bars_box.show()

    def _clear_activations(self) -> None:
        while self.activations.count():
            item = self.activations.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    def _show_activations(self, s: Any) -> None:
        self._clear_activations()
        self.activations_title.show()
        last = len(s.activations) - 1
        for k, a in enumerate(s.activations):
            names = s.class_names if k == last and s.probabilities is not None else ()
            note = (" (a score per class, before the softmax)" if names else
                    " (the predicted value)" if k == last else
                    " (units numbered from 1)" if a.values.ndim == 1 else "")
            self.activations.addWidget(label(activation_text(a) + note))
            view = activation_map(a)
            if view is not None:
                grid = MapGrid()
                grid.hovered.connect(self._hovered)
                grid.set_maps([view], columns=1, side=ACTIVATION_WIDTH, shared=True)
                self.activations.addWidget(grid)
            else:
                self.activations.addWidget(_stems(np.asarray(a.values).reshape(-1), names))


def _stems(values: np.ndarray, names: Sequence[str] = ()) -> pg.PlotWidget:
    """A flat layer's output, a bar per unit (numbered from 1, or named by its class), red
    above 0, blue below."""
    plot = pg.PlotWidget(background="w")
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    for side in ("left", "bottom"):
        plain_axis(plot.getAxis(side))
    units = np.arange(1, len(values) + 1)
    brushes = [pg.mkBrush(ALERT if v >= 0 else ACCENT) for v in values]
    plot.addItem(pg.BarGraphItem(x=units, height=values, width=0.8, brushes=brushes, pen=None))
    plot.addLine(y=0, pen=pg.mkPen(TEXT, width=1))
    plot.setLabel("left", "output")
    if names and len(names) <= 30:
        plot.getAxis("bottom").setTicks([[(k + 1, str(n)) for k, n in enumerate(names)]])
    plot.setXRange(0.4, len(values) + 0.6, padding=0)
    plot.setFixedHeight(STEM_HEIGHT)
    return plot


__all__ = ["SamplePage"]
