"""The layer stack editor: a palette of the catalogue, the stack with its parameters edited in
place, and beside every layer its output shape, parameters and multiply-accumulates.

Shapes come from `core.model.analyze` (arithmetic only), recomputed on every edit; no torch
model is built here. Every edit is an undo command on the ExperimentModel. The input shape,
classes and size of a CSV or an image folder come from the workspace's cache, read off the GUI
thread once per file; until they arrive the stack shows "reading the data".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data.errors import DataError
from workbench.core.memory import (
    DeviceMemory,
    MemoryEstimate,
)
from workbench.core.model import ModelReport, analyze
from workbench.gui.document import undo
from workbench.gui.document.experiment_model import ExperimentModel
from workbench.gui.editors.layer_stack import (
    COL_INDEX,
    COL_MACS,
    COL_PARAMS,
    COL_SHAPE,
    LAYER_MIME,
    LayerRow,
    Palette,
    StackList,
)
from workbench.gui.editors.model_presenter import (
    MEMORY_FIELDS,
    MEMORY_TIP,
    READING,
    DataShape,
    FileKey,
    catalogue_shape,
    device_memory,
    file_key,
    input_text,
    memory_check,
    problem_text,
    templates,
    totals_text,
)
from workbench.gui.threads.tasks import Tasks
from workbench.gui.widgets.layouts import FlowLayout
from workbench.spec import DataSpec, LayerSpec

__all__ = ["LAYER_MIME", "ModelEditor", "templates"]

if TYPE_CHECKING:
    from workbench.core.data import DatasetInfo
    from workbench.core.workspace import Workspace

# -- the editor ---------------------------------------------------------------------------------

class ModelEditor(QWidget):
    """Palette, stack and totals; emits `reportChanged(ModelReport | None)` after every edit."""

    reportChanged = Signal(object)

    def __init__(self, model: ExperimentModel, stack: QUndoStack, workspace: Workspace,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model, self.undo = model, stack
        self.workspace = workspace
        self.tasks = Tasks(self, workspace.jobs)
        self._file_shapes: dict[FileKey, DataShape] = {}
        self._reading: FileKey | None = None
        self.report: ModelReport | None = None
        self.problem: str | None = None  # why the stack does not fit its data, or None
        self.memory: MemoryEstimate | None = None  # what training needs, when the stack fits
        self.memory_problem: str | None = None  # why it will not fit its device, or None
        self.gpu: str | None = None  # the GPU's name, "" for none, None until probed
        self.rows: list[LayerRow] = []
        self.buttons: dict[str, QPushButton | QToolButton] = {}

        self.palette_tree = Palette()
        self.palette_tree.addRequested.connect(lambda name: self.add_layer(name))
        self.list = StackList()
        self.list.moveRequested.connect(self.move_layer)
        self.list.insertRequested.connect(self.insert_layer)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        caption = QLabel("Layers")
        caption.setObjectName("sectionTitle")
        lv.addWidget(caption)
        lv.addWidget(self.palette_tree, 1)
        lv.addWidget(self._templates_button())  # below the palette: the toolbar keeps one line

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self._toolbar())
        rv.addWidget(self._header())
        self.input_label = QLabel("")
        self.input_label.setObjectName("inputShape")
        rv.addWidget(self.input_label)
        rv.addWidget(self.list, 1)
        self.totals = QLabel("")
        self.totals.setObjectName("totals")
        self.totals.setWordWrap(True)
        self.status = QLabel("")
        self.status.setObjectName("problem")
        self.status.setWordWrap(True)
        # the memory in one line; its parts fold out below it (the stack keeps the room)
        self.memory_label = QLabel("")
        self.memory_label.setObjectName("memory")
        self.memory_label.setWordWrap(True)
        self.memory_button = QToolButton()
        self.memory_button.setText("Details")
        self.memory_button.setCheckable(True)
        self.memory_button.setAutoRaise(True)
        self.memory_button.setToolTip("Show what the memory is made of")
        self.memory_button.toggled.connect(self._show_memory_details)
        self.memory_details = QLabel("")
        self.memory_details.setObjectName("hint")
        self.memory_details.setWordWrap(True)
        self.memory_details.hide()
        memory_row = QHBoxLayout()
        memory_row.setContentsMargins(0, 0, 0, 0)
        memory_row.addWidget(self.memory_label, 1)
        memory_row.addWidget(self.memory_button, 0, Qt.AlignmentFlag.AlignTop)
        rv.addWidget(self.totals)
        rv.addLayout(memory_row)
        rv.addWidget(self.memory_details)
        rv.addWidget(self.status)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setCollapsible(0, False)
        left.setMinimumWidth(self.palette_tree.needed_width())  # every name whole
        splitter.setSizes([self.palette_tree.needed_width(), 560])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.list.keyCommand.connect(self._key_command)
        model.layersChanged.connect(self.rebuild)
        model.layerParamChanged.connect(self._param_changed)
        model.valueChanged.connect(self._value_changed)
        self.rebuild()

    # -- construction -----------------------------------------------------------------------
    def _toolbar(self) -> QWidget:
        toolbar = QWidget()
        bar = FlowLayout(toolbar, spacing=3, line_spacing=4)
        for key, text, tip, slot in (
            ("add", "Add", "Add the palette's layer after the selected one", self.add_selected),
            ("insert", "Insert", "Insert the palette's layer before the selected one",
             self.insert_selected),
            ("remove", "Remove", "Remove the selected layer (Delete)", self.remove_selected),
            ("duplicate", "Duplicate", "Duplicate the selected layer (Ctrl+D)",
             self.duplicate_selected),
            ("up", "", "Move up (Alt+Up)", lambda: self.move_selected(-1)),
            ("down", "", "Move down (Alt+Down)", lambda: self.move_selected(1)),
        ):
            button: QPushButton | QToolButton
            if text:
                button = QPushButton(text)
            else:  # an arrow: narrow, so the row of buttons keeps to one line
                button = QToolButton()
                button.setArrowType(Qt.ArrowType.UpArrow if key == "up"
                                    else Qt.ArrowType.DownArrow)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            bar.addWidget(button)
            self.buttons[key] = button
        return toolbar

    def _templates_button(self) -> QToolButton:
        menu_button = QToolButton()
        menu_button.setText("Templates")
        menu_button.setToolTip("Replace the stack with a ready-made network")
        menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        menu = QMenu(menu_button)
        for name in templates(2):
            menu.addAction(name, lambda n=name: self.apply_template(n))
        menu_button.setMenu(menu)
        self.buttons["templates"] = menu_button
        return menu_button

    def _header(self) -> QWidget:
        header = QWidget()
        h = QHBoxLayout(header)
        h.setContentsMargins(6, 0, 6, 0)
        h.setSpacing(3)
        for text, width in (("#", COL_INDEX), ("Layer", 0), ("Output", COL_SHAPE),
                            ("Params", COL_PARAMS), ("MACs", COL_MACS)):
            label = QLabel(text)
            label.setObjectName("columnHeader")
            if width:
                label.setFixedWidth(width)
                if text != "#":
                    label.setAlignment(Qt.AlignmentFlag.AlignRight)
            else:
                label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            h.addWidget(label)
        return header

    def _key_command(self, name: str) -> None:
        actions = {"remove": self.remove_selected, "duplicate": self.duplicate_selected,
                   "up": lambda: self.move_selected(-1), "down": lambda: self.move_selected(1),
                   "insert": self.insert_selected}
        actions[name]()

    # -- edits (each one undo command) ------------------------------------------------------
    def selected_index(self) -> int:
        return self.list.currentRow()

    def add_layer(self, name: str, index: int | None = None) -> None:
        """Add a catalogue layer after the selected one (or at `index`)."""
        if index is None:
            current = self.selected_index()
            index = current + 1 if current >= 0 else len(self.model.live.model.layers)
        self.insert_layer(name, index)

    def insert_layer(self, name: str, index: int) -> None:
        undo.push_insert(self.undo, self.model, index, LayerSpec(name, {}))
        self.list.setCurrentRow(min(index, self.list.count() - 1))

    def add_selected(self) -> None:
        name = self.palette_tree.selected_type()
        if name:
            self.add_layer(name)

    def insert_selected(self) -> None:
        name = self.palette_tree.selected_type()
        if name:
            self.insert_layer(name, max(0, self.selected_index()))

    def remove_selected(self) -> None:
        index = self.selected_index()
        if index >= 0:
            undo.push_remove(self.undo, self.model, index)
            self.list.setCurrentRow(min(index, self.list.count() - 1))

    def duplicate_selected(self) -> None:
        index = self.selected_index()
        if index >= 0:
            undo.push_duplicate(self.undo, self.model, index)
            self.list.setCurrentRow(index + 1)

    def move_selected(self, delta: int) -> None:
        index = self.selected_index()
        if index >= 0:
            self.move_layer(index, index + delta)

    def move_layer(self, source: int, dest: int) -> None:
        if undo.push_move(self.undo, self.model, source, dest):
            self.list.setCurrentRow(dest)

    def set_param(self, index: int, name: str, value: Any) -> None:
        undo.push_layer_param(self.undo, self.model, index, name, value)

    def apply_template(self, name: str) -> None:
        classes = self.dataset_io().num_classes
        layers = templates(classes if classes is not None else 2)[name]
        undo.push_layers(self.undo, self.model, layers, f"Template: {name}")

    # -- views ------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Rows from the model's stack (after a structural change)."""
        current = self.list.currentRow()
        self.list.clear()
        self.rows = []
        for i, layer in enumerate(self.model.live.model.layers):
            row = LayerRow(i, layer)
            row.paramEdited.connect(self.set_param)
            item = QListWidgetItem(self.list)
            item.setSizeHint(QSize(0, max(30, row.sizeHint().height())))
            self.list.setItemWidget(item, row)
            self.rows.append(row)
        self.list.fit_rows()
        if self.rows:
            self.list.setCurrentRow(min(max(current, 0), len(self.rows) - 1))
        self.refresh()

    def _param_changed(self, index: int, name: str) -> None:
        if 0 <= index < len(self.rows):
            self.rows[index].show_value(name, self.model.layer_value(index, name))
        self.refresh()

    def _value_changed(self, path: str, _value: Any) -> None:
        if path.startswith("data.") or path in MEMORY_FIELDS:
            self.refresh()

    # -- the data's input shape, classes and size ---------------------------------------------
    def dataset_io(self) -> DataShape:
        """What the editor needs of the current data, without reading a file here: a
        file-based set's description is asked of the workspace off the GUI thread, and
        "reading" stands in until it arrives."""
        data = self.model.live.data
        known = catalogue_shape(data)
        if known is not None:
            return known
        key = file_key(data)
        if key in self._file_shapes:
            return self._file_shapes[key]
        if key != self._reading:
            self._read_info(key, data)
        return DataShape(None, None, problem=READING)

    def _read_info(self, key: FileKey, data: DataSpec) -> None:
        self._reading = key
        workspace = self.workspace
        wanted = DataSpec(name=data.name, path=data.path, label_column=data.label_column,
                          target=data.target)

        def work(_report: Any, cancel: Any) -> DatasetInfo:
            return workspace.info(wanted, cancel=cancel)

        self.tasks.start("info", work, done=lambda info: self._info_read(key, info),
                         failed=lambda reason: self._info_failed(key, reason),
                         expected=(DataError,))

    def _info_read(self, key: FileKey, info: DatasetInfo) -> None:
        self._file_shapes[key] = DataShape(info.input_shape, info.num_classes,
                                           info.num_samples, info.test_samples)
        self._reading = None
        self.refresh()

    def _info_failed(self, key: FileKey, reason: str) -> None:
        self._file_shapes[key] = DataShape(None, None, problem=reason)
        self._reading = None
        self.refresh()

    def shutdown(self) -> None:
        self.tasks.shutdown()

    def set_gpu(self, name: str) -> None:
        """What the device probe found: the GPU's name, or "" when there is none. Until it
        has answered, `auto` counts as the CPU and a GPU's free memory is unknown."""
        self.gpu = name
        self.refresh()

    def device_memory(self) -> DeviceMemory:
        """Free memory of the device the experiment would train on."""
        return device_memory(self.model.live.train.device, self.gpu)

    def refresh(self) -> None:
        """Shapes, counts, totals and memory from `analyze` (arithmetic, cheap on every edit)."""
        spec = self.model.live
        data = self.dataset_io()
        self.memory = None
        self.memory_problem = None
        if data.input_shape is None:
            self.report = None
            for row in self.rows:
                row.show_report(None)
            self.input_label.setText("Input: unknown")
            self.totals.setText("")
            self._set_memory("", "")
            self._set_problem(data.problem)
            return
        shape, classes = data.input_shape, data.num_classes
        report = analyze(spec.model.layers, shape, classes)
        self.report = report
        self.input_label.setText(input_text(shape, classes))
        for row, layer_report in zip(self.rows, report.layers, strict=False):
            row.show_report(layer_report)
        self.totals.setText(totals_text(report))
        self._set_memory("", "")
        if report.ok:
            self._show_memory(report, data)
        self._set_problem(str(report.error) if report.error else None)

    def _show_memory(self, report: ModelReport, data: DataShape) -> None:
        """The memory training needs, against what its device has; a refusal when it will not
        fit."""
        self.memory, line, self.memory_problem = memory_check(
            self.model.live, report, data, self.device_memory())
        self._set_memory(line, f"{self.memory.breakdown()}. {MEMORY_TIP}." if line else "")

    def _set_memory(self, line: str, details: str) -> None:
        self.memory_label.setText(line)
        self.memory_label.setToolTip(MEMORY_TIP if line else "")
        self.memory_details.setText(details)
        self.memory_button.setVisible(bool(details))
        self.memory_details.setVisible(bool(details) and self.memory_button.isChecked())

    def _show_memory_details(self, shown: bool) -> None:
        self.memory_details.setVisible(shown and bool(self.memory_details.text()))
        self.memory_button.setText("Hide details" if shown else "Details")

    def _set_problem(self, problem: str | None) -> None:
        self.problem = problem
        shown = problem or self.memory_problem
        self.status.setText(problem_text(shown))
        self.status.setProperty("ok", shown is None)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.reportChanged.emit(self.report)


def _sample() -> None:
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.core.workspace import Workspace
    from workbench.gui.widgets.style import apply_style
    from workbench.spec import ExperimentSpec

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    spec = ExperimentSpec()
    spec.data.name = "mnist_small"
    spec.model.layers = templates(10)["Small CNN"]
    editor = ModelEditor(ExperimentModel(spec), QUndoStack(), Workspace())
    editor.resize(900, 560)
    editor.show()
    app.exec()


if __name__ == "__main__":
    _sample()
