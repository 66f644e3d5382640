"""Inspect's other pages: what the layers learned (the first layer's weights as images or as a
table by feature, and for a 2-D set every unit's output over the plane), what each class is
recognised by (its correctly classified samples' average attribution), and a linear model's
equation in the data's own units.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.gui.tools.inspect.maps import MapGrid, ValueTable, fit_table_height
from workbench.gui.tools.inspect.presenter import (
    Overview,
    class_grid,
    class_maps,
    coefficient_columns,
    coefficient_rows,
    neuron_views,
    plane_text,
    weight_grid,
    weight_map,
)

WEIGHTS_SIDE = 400
NEURON_SIDE = 62
NEURON_COLUMNS = 8
CLASS_SIDE = 104
CLASS_COLUMNS = 5


def label(text: str = "", *, hint: bool = False, title: bool = False,
          bold: bool = False) -> QLabel:
    """A wrapped line of the pages: a hint's grey, a section's title, or bold."""
    widget = QLabel(text)
    widget.setWordWrap(True)
    if hint:
        widget.setObjectName("hint")
    if title:
        widget.setObjectName("sectionTitle")
    if bold:
        font = widget.font()
        font.setBold(True)
        widget.setFont(font)
    return widget


class LayersPage(QWidget):
    """What the layers learned."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view: Any = None
        self.title = label(title=True)
        self.how = label(hint=True)
        self.weights = MapGrid()
        self.value = label(hint=True)
        self.weights.hovered.connect(self.value.setText)
        self.units = QComboBox()
        self.units.addItem("per standard deviation of each feature (what the network "
                           "multiplies)", False)
        self.units.addItem("per unit of each feature, in the data's own units", True)
        self.units.currentIndexChanged.connect(lambda _i: self._show_table())
        self.units_row = QWidget()
        row = QHBoxLayout(self.units_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Numbers"))
        row.addWidget(self.units, 1)
        self.table = ValueTable()
        self.neurons_title = label("Every unit over the plane", title=True)
        self.neurons_how = label(hint=True)
        self.neurons = QVBoxLayout()
        self.neurons.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        for w in (self.title, self.how, self.weights, self.value, self.units_row, self.table,
                  self.neurons_title, self.neurons_how):
            layout.addWidget(w)
        layout.addLayout(self.neurons)
        layout.addStretch(1)
        self.clear()

    def clear(self) -> None:
        self.view = None
        self.title.setText("What the layers learned shows once the run is open.")
        for w in (self.how, self.value, self.neurons_how):
            w.setText("")
        for w in (self.weights, self.units_row, self.table, self.neurons_title,
                  self.neurons_how):
            w.hide()
        while self.neurons.count():
            item = self.neurons.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    def set_overview(self, ov: Overview, reason: str | None) -> None:
        from workbench.core.tools.inspect.weights import WeightImages

        self.clear()
        view = ov.first_layer
        self.view = view
        if view is None:
            self.title.setText(f"The first layer's weights are not shown: "
                               f"{reason or 'it does not look at the input directly'}."
                               if ov.neurons is None else "")
            self.title.setVisible(ov.neurons is None)
        else:
            self.title.setText(f"What layer {view.layer} learned")
            self.how.setText(view.how_to_read.replace("`raw` gives", "The Numbers box shows"))
            if isinstance(view, WeightImages):
                self.weights.set_maps([weight_map(view)], columns=1, side=WEIGHTS_SIDE,
                                      shared=True)
                self.weights.show()
                self.value.setText("Hover the weights for the weight at a pixel.")
            else:
                self.units_row.show()
                self.table.show()
                self._show_table()
        if ov.neurons is not None:
            self.neurons_title.show()
            self.neurons_how.show()
            self.neurons_how.setText(f"{ov.neurons.how_to_read} {plane_text(ov.neurons)}")
            for title, maps in neuron_views(ov.neurons):
                self.neurons.addWidget(label(title))
                grid = MapGrid()
                grid.hovered.connect(self.value.setText)
                grid.set_maps(maps, columns=NEURON_COLUMNS, side=NEURON_SIDE, shared=True)
                self.neurons.addWidget(grid)

    def _show_table(self) -> None:
        from workbench.core.tools.inspect.weights import WeightTable

        if isinstance(self.view, WeightTable):
            self.table.set_grid(weight_grid(self.view, bool(self.units.currentData())))


class ClassesPage(QWidget):
    """What each class is recognised by: computed when first shown (it takes a while)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any = None
        self.status = label(hint=True)
        self.progress = QProgressBar()
        self.how = label(hint=True)
        self.maps = MapGrid()
        self.value = label(hint=True)
        self.maps.hovered.connect(self.value.setText)
        self.table = ValueTable()
        layout = QVBoxLayout(self)
        for w in (self.status, self.progress, self.how, self.maps, self.value, self.table):
            layout.addWidget(w)
        layout.addStretch(1)
        self.clear()

    def clear(self) -> None:
        self.result = None
        self.status.setText("Each class's average attribution is computed when you open "
                            "this page.")
        self.progress.hide()
        self.how.setText("")
        self.value.setText("")
        self.maps.hide()
        self.table.hide()

    def working(self, done: int = 0, total: int = 0) -> None:
        self.progress.show()
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.status.setText(f"Averaging the attribution of each class's correctly classified "
                            f"test samples: {done:,} of {total:,}" if total else
                            "Averaging the attribution of each class's correctly classified "
                            "test samples…")

    def show_result(self, view: Any, ov: Overview) -> None:
        self.result = view
        self.progress.hide()
        if view is None:
            self.status.setText("A regression has no classes to average.")
            return
        missing = [n for n, c in zip(view.class_names, view.counts, strict=True) if c == 0]
        self.status.setText(f"{view.title}, averaged over up to "
                            f"{max(view.counts, default=0)} correctly classified test samples "
                            "of each class"
                            + (f"; no sample of {', '.join(missing[:5])} was right"
                               if missing else "") + ".")
        self.how.setText(view.how_to_read)
        if ov.image_input:
            maps, left = class_maps(view)
            self.maps.set_maps(maps, columns=CLASS_COLUMNS, side=CLASS_SIDE, shared=True)
            self.maps.show()
            self.value.setText(left or "Hover a map for its value.")
        else:
            self.table.set_grid(class_grid(view, ov.feature_names))
            self.table.show()

    def failed(self, message: str) -> None:
        self.progress.hide()
        self.status.setText(f"Could not average the classes: {html.escape(message)}")


class EquationPage(QWidget):
    """A network with no hidden layer as its equation in the data's own units."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = label(hint=True)
        self.lines = QLabel()
        self.lines.setWordWrap(True)
        self.lines.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.lines)
        layout.addWidget(self.table)
        layout.addStretch(1)
        self.clear()

    def clear(self) -> None:
        self.note.setText("")
        self.lines.setText("")
        self.table.hide()

    def set_overview(self, ov: Overview) -> None:
        self.clear()
        eq = ov.equation
        if eq is None:
            return
        self.note.setText(eq.note)
        self.lines.setText("<br>".join(f"<tt>{html.escape(line)}</tt>" for line in eq.lines))
        rows = coefficient_rows(eq) if not ov.image_input else []
        if rows:
            columns = coefficient_columns(eq)
            self.table.setRowCount(len(rows))
            self.table.setColumnCount(len(columns))
            self.table.setHorizontalHeaderLabels(columns)
            self.table.setVerticalHeaderLabels([name for name, _ in rows])
            for r, (_name, values) in enumerate(rows):
                for c, value in enumerate(values):
                    item = QTableWidgetItem(f"{value:.5g}")
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                    self.table.setItem(r, c, item)
            self.table.resizeColumnsToContents()
            fit_table_height(self.table, len(rows))
            self.table.show()


__all__ = ["ClassesPage", "EquationPage", "LayersPage"]
