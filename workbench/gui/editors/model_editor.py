"""The layer stack editor: a palette of the catalogue, the stack with its parameters edited in
place, and beside every layer its output shape, parameters and multiply-accumulates.

Shapes come from `core.model.analyze` (arithmetic only), recomputed on every edit; no torch
model is built here. Every edit is an undo command on the ExperimentModel. The input shape,
classes and size of a CSV or an image folder come from the workspace's cache, read off the GUI
thread once per file; until they arrive the stack shows "reading the data".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QDropEvent, QKeyEvent, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data.errors import DataError
from workbench.core.memory import (
    DeviceMemory,
    DoesNotFit,
    MemoryEstimate,
    check_fits,
    cpu_memory,
    estimate_memory,
    human_bytes,
)
from workbench.core.model import LayerReport, ModelReport, analyze
from workbench.gui.editors import undo
from workbench.gui.editors.experiment_model import ExperimentModel
from workbench.gui.threads.tasks import Tasks
from workbench.gui.widgets.layouts import FlowLayout
from workbench.spec import DataSpec, LayerSpec
from workbench.spec.datasets import DATASETS
from workbench.spec.layers import CATALOGUE, ParamDef
from workbench.spec.layers import shape_text as spec_shape_text

if TYPE_CHECKING:
    from workbench.core.data import DatasetInfo
    from workbench.core.workspace import Workspace

LAYER_MIME = "application/x-workbench-layer"
ERROR_BG = "#fde7e7"
_COL_SHAPE, _COL_PARAMS, _COL_MACS = 100, 64, 64
_EDITOR_WIDTH = 56  # a number editor; an integer's grows with its bound's digits
MEMORY_FIELDS = frozenset({"optim.name", "train.batch_size", "train.device"})


@dataclass(frozen=True)
class DataShape:
    """What the editor needs of the data, known without loading it."""

    input_shape: tuple[int, ...] | None  # None: unknown (see `problem`)
    num_classes: int | None  # 0: regression
    num_samples: int = 0
    test_samples: int | None = None  # an official test split's size
    problem: str | None = None


READING = "reading the data to learn its input shape and classes…"
FileKey = tuple[str, str | None, str | None]


def catalogue_shape(data: DataSpec) -> DataShape | None:
    """The data's shape, classes and size when the catalogue and the spec alone tell; None
    when the file must be looked at (a CSV, an image folder)."""
    entry = DATASETS.get(data.name)
    if entry is None:
        return DataShape(None, None, problem=f"data.name: unknown dataset {data.name!r}")
    if entry.input_shape is not None and entry.num_classes is not None:
        return DataShape(entry.input_shape, entry.num_classes, entry.samples or data.samples,
                         entry.test_samples)
    if not data.path:
        return DataShape(None, None, problem=f"data.path: the {entry.title} dataset needs a "
                                             "file or folder")
    return None


def file_key(data: DataSpec) -> FileKey:
    """What the description of a file-based dataset depends on."""
    return data.name, data.path, data.label_column


def templates(num_classes: int) -> dict[str, list[LayerSpec]]:
    """Starting points; the last layer is sized for the current dataset."""
    out = num_classes if num_classes > 0 else 1

    def L(t: str, **p: Any) -> LayerSpec:  # noqa: N802 - reads like the JSON
        return LayerSpec(t, p)

    return {
        "MLP": [L("Flatten"), L("Linear", out=128), L("ReLU"), L("Linear", out=64), L("ReLU"),
                L("Linear", out=out)],
        "Small CNN": [L("Conv2d", out=16, kernel=3, padding=1), L("BatchNorm"), L("ReLU"),
                      L("MaxPool2d", kernel=2), L("Conv2d", out=32, kernel=3, padding=1),
                      L("BatchNorm"), L("ReLU"), L("MaxPool2d", kernel=2), L("Flatten"),
                      L("Dropout", p=0.25), L("Linear", out=out)],
        "Logistic regression": [L("Flatten"), L("Linear", out=out)],
        "2-D playground net": [L("Linear", out=16), L("Tanh"), L("Linear", out=16), L("Tanh"),
                               L("Linear", out=out)],
    }


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:,.0f}"


def shape_text(shape: tuple[int, ...] | None) -> str:
    """A shape as the app writes it (`3`, `1×28×28`); a dash when it is unknown."""
    return "—" if shape is None else spec_shape_text(shape)


# -- the palette --------------------------------------------------------------------------------

class Palette(QTreeWidget):
    """The catalogue by category; drag a layer onto the stack, or double-click to add it."""

    addRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setObjectName("palette")
        groups: dict[str, QTreeWidgetItem] = {}
        for ltype in CATALOGUE.values():
            group = groups.get(ltype.category)
            if group is None:
                group = QTreeWidgetItem(self, [ltype.category])
                group.setFlags(Qt.ItemFlag.ItemIsEnabled)
                font = group.font(0)
                font.setBold(True)
                group.setFont(0, font)
                groups[ltype.category] = group
            item = QTreeWidgetItem(group, [ltype.name])
            item.setData(0, Qt.ItemDataRole.UserRole, ltype.name)
            item.setToolTip(0, ltype.help)
        self.expandAll()
        self.itemDoubleClicked.connect(self._double_clicked)

    def selected_type(self) -> str | None:
        item = self.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def select_type(self, name: str) -> None:
        for item in self.findItems(name, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive):
            self.setCurrentItem(item)

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:  # noqa: N802 - Qt override
        data = QMimeData()
        names = [i.data(0, Qt.ItemDataRole.UserRole) for i in items]
        names = [n for n in names if n]
        if names:
            data.setData(LAYER_MIME, names[0].encode())
        return data

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        name = item.data(0, Qt.ItemDataRole.UserRole)
        if name:
            self.addRequested.emit(name)


# -- one row of the stack ---------------------------------------------------------------------

class LayerRow(QFrame):
    """A layer: its type, its parameters as editors, its shape, parameters and MACs."""

    paramEdited = Signal(int, str, object)  # index, name, value

    def __init__(self, index: int, layer: LayerSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerRow")
        self.index = index
        self.ltype = CATALOGUE.get(layer.type)
        self.editors: dict[str, QWidget] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 3, 6, 3)
        outer.setSpacing(2)
        top = QHBoxLayout()
        top.setSpacing(4)
        self.number = QLabel(f"{index + 1}")
        self.number.setFixedWidth(22)
        self.number.setObjectName("layerIndex")
        self.title = QLabel(layer.type)
        self.title.setObjectName("layerType")
        top.addWidget(self.number)
        top.addWidget(self.title)
        top.addStretch(1)
        self.shape = self._stat(_COL_SHAPE, "output shape per sample")
        self.params = self._stat(_COL_PARAMS, "learned parameters")
        self.macs = self._stat(_COL_MACS, "multiply-accumulates per sample")
        for w in (self.shape, self.params, self.macs):
            top.addWidget(w)
        outer.addLayout(top)
        values = self.ltype.resolve(layer.params) if self.ltype else {}
        if self.ltype and self.ltype.params:
            # the parameters wrap onto more lines in a narrow editor instead of widening it
            params = QWidget()
            line = FlowLayout(params, spacing=10)
            line.setContentsMargins(26, 0, 0, 0)
            for p in self.ltype.params:
                editor = self._editor(p, values[p.name])
                label = QLabel(p.name)
                label.setObjectName("paramName")
                label.setToolTip(p.help)
                line.add_group(label, editor)
                self.editors[p.name] = editor
            outer.addWidget(params)

    def _stat(self, width: int, tip: str) -> QLabel:
        label = QLabel("")
        label.setFixedWidth(width)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        label.setToolTip(tip)
        label.setObjectName("layerStat")
        return label

    def _editor(self, p: ParamDef, value: Any) -> QWidget:
        name = p.name
        if p.kind is bool:
            box = QCheckBox()
            box.setChecked(bool(value))
            box.toggled.connect(lambda v: self.paramEdited.emit(self.index, name, bool(v)))
            return box
        if p.kind is int:  # the range is the parameter's bound (one below it: "auto")
            spin = QSpinBox()
            lo = int(p.lo)
            spin.setRange(lo - 1 if p.optional else lo, int(p.hi))
            if p.optional:
                spin.setSpecialValueText("auto")
            spin.setValue(lo - 1 if value is None else int(value))
            spin.valueChanged.connect(lambda v: self.paramEdited.emit(
                self.index, name, None if p.optional and v < lo else int(v)))
            spin.setFixedWidth(max(_EDITOR_WIDTH, 24 + 8 * len(str(int(p.hi)))))
            spin.setToolTip(p.help)
            return spin
        dspin = QDoubleSpinBox()
        dspin.setDecimals(3)
        dspin.setRange(p.lo, p.hi)  # the parameter's bound, as the validator has it
        dspin.setSingleStep(0.05)
        dspin.setValue(float(value))
        dspin.valueChanged.connect(lambda v: self.paramEdited.emit(self.index, name, float(v)))
        dspin.setFixedWidth(_EDITOR_WIDTH)
        dspin.setToolTip(p.help)
        return dspin

    def show_value(self, name: str, value: Any) -> None:
        editor = self.editors.get(name)
        if editor is None:
            return
        blocked = editor.blockSignals(True)
        try:
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QSpinBox):
                editor.setValue(editor.minimum() if value is None else int(value))
            elif isinstance(editor, QDoubleSpinBox):
                editor.setValue(float(value))
        finally:
            editor.blockSignals(blocked)

    def show_report(self, report: LayerReport | None) -> None:
        if report is None:
            self.shape.setText("—")
            self.params.setText("")
            self.macs.setText("")
            self.set_error(None)
            return
        self.shape.setText(shape_text(report.out_shape))
        fits = report.out_shape is not None
        self.params.setText(human(report.params) if fits else "")
        self.macs.setText(human(report.macs) if fits else "")
        self.set_error(report.error)

    def set_error(self, error: str | None) -> None:
        self.setProperty("error", error is not None)
        self.setToolTip(error or (self.ltype.help if self.ltype else ""))
        self.setStyleSheet(f"#layerRow {{ background: {ERROR_BG}; border-radius: 4px; }}"
                           if error else "")


# -- the stack ----------------------------------------------------------------------------------

class StackList(QListWidget):
    """Rows of the stack. Dropping rearranges nothing itself: it asks for a move or an insert,
    the model changes, and the editor redraws."""

    moveRequested = Signal(int, int)  # source, destination index
    insertRequested = Signal(str, int)  # layer type, index
    keyCommand = Signal(str)  # remove, duplicate, up, down, insert

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stack")
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDropIndicatorShown(True)
        self.setAcceptDrops(True)
        self.setSpacing(1)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)

    def fit_rows(self) -> None:
        """Each row as tall as its width needs (parameters wrap when the list is narrow)."""
        width = self.viewport().width() - 2 * self.spacing()
        for i in range(self.count()):
            item = self.item(i)
            row = self.itemWidget(item)
            if row is not None:
                height = max(30, row.heightForWidth(width) if row.hasHeightForWidth()
                             else row.sizeHint().height())
                if item.sizeHint().height() != height:
                    item.setSizeHint(QSize(0, height))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.fit_rows()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key, mods = event.key(), event.modifiers()
        alt = mods & Qt.KeyboardModifier.AltModifier
        ctrl = mods & Qt.KeyboardModifier.ControlModifier
        command = None
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            command = "remove"
        elif key == Qt.Key.Key_D and ctrl:
            command = "duplicate"
        elif key == Qt.Key.Key_Up and alt:
            command = "up"
        elif key == Qt.Key.Key_Down and alt:
            command = "down"
        elif key == Qt.Key.Key_Insert:
            command = "insert"
        if command is None:
            super().keyPressEvent(event)
            return
        event.accept()
        self.keyCommand.emit(command)

    def drop_index(self, pos: QPoint) -> int:
        """Where a drop at `pos` inserts: before the row under it, or after its lower half."""
        item = self.itemAt(pos)
        if item is None:
            return self.count()
        rect = self.visualItemRect(item)
        return self.row(item) + (1 if pos.y() > rect.center().y() else 0)

    def _acceptable(self, event: Any) -> bool:
        return event.source() is self or event.mimeData().hasFormat(LAYER_MIME)

    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if self._acceptable(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if self._acceptable(event):
            super().dragMoveEvent(event)
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        index = self.drop_index(event.position().toPoint())
        if event.source() is self:
            source = self.currentRow()
            dest = index if index <= source else index - 1
            event.setDropAction(Qt.DropAction.IgnoreAction)
            event.accept()
            if source >= 0:
                self.moveRequested.emit(source, min(dest, self.count() - 1))
            return
        if event.mimeData().hasFormat(LAYER_MIME):
            name = bytes(event.mimeData().data(LAYER_MIME).data()).decode()
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            if name in CATALOGUE:
                self.insertRequested.emit(name, index)
            return
        event.ignore()


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
        self.memory_label = QLabel("")
        self.memory_label.setObjectName("memory")
        self.memory_label.setWordWrap(True)
        rv.addWidget(self.totals)
        rv.addWidget(self.memory_label)
        rv.addWidget(self.status)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([160, 560])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

        self.list.keyCommand.connect(self._key_command)
        model.layersChanged.connect(self.rebuild)
        model.layerParamChanged.connect(self._param_changed)
        model.valueChanged.connect(self._value_changed)
        self.rebuild()

    # -- construction -----------------------------------------------------------------------
    def _toolbar(self) -> QWidget:
        toolbar = QWidget()
        bar = FlowLayout(toolbar, spacing=4, line_spacing=4)
        self.buttons: dict[str, QPushButton | QToolButton] = {}
        for key, text, tip, slot in (
            ("add", "Add", "Add the palette's layer after the selected one", self.add_selected),
            ("insert", "Insert", "Insert the palette's layer before the selected one",
             self.insert_selected),
            ("remove", "Remove", "Remove the selected layer (Delete)", self.remove_selected),
            ("duplicate", "Duplicate", "Duplicate the selected layer (Ctrl+D)",
             self.duplicate_selected),
            ("up", "▲", "Move up (Alt+Up)", lambda: self.move_selected(-1)),
            ("down", "▼", "Move down (Alt+Down)", lambda: self.move_selected(1)),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            if key in ("up", "down"):
                button.setFixedWidth(32)
            bar.addWidget(button)
            self.buttons[key] = button
        menu_button = QToolButton()
        menu_button.setText("Templates")
        menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(menu_button)
        for name in templates(2):
            menu.addAction(name, lambda n=name: self.apply_template(n))
        menu_button.setMenu(menu)
        bar.addWidget(menu_button)
        self.buttons["templates"] = menu_button
        return toolbar

    def _header(self) -> QWidget:
        header = QWidget()
        h = QHBoxLayout(header)
        h.setContentsMargins(8, 0, 8, 0)
        for text, width in (("#", 22), ("Layer", 0), ("Output", _COL_SHAPE),
                            ("Params", _COL_PARAMS), ("MACs", _COL_MACS)):
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
        wanted = DataSpec(name=data.name, path=data.path, label_column=data.label_column)

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
        device = self.model.live.train.device
        if device == "cpu" or (device == "auto" and not self.gpu):
            return cpu_memory()
        if not self.gpu:  # not probed yet, or cuda asked for on a machine without one
            return DeviceMemory("the GPU", None)
        import torch

        from workbench.core.memory import device_memory

        try:
            return device_memory(torch.device("cuda" if device == "auto" else device))
        except (RuntimeError, AssertionError, ValueError):  # cuda:N this machine lacks
            return DeviceMemory(f"the GPU {device}", None)

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
            self.memory_label.setText("")
            self._set_problem(data.problem)
            return
        shape, classes = data.input_shape, data.num_classes
        report = analyze(spec.model.layers, shape, classes)
        self.report = report
        what = (f"{shape[0]} feature{'s' if shape[0] != 1 else ''}" if len(shape) == 1
                else f"images {shape_text(shape)}")
        self.input_label.setText(f"Input: {what} · "
                                 + (f"{classes} classes" if classes else "regression"))
        for row, layer_report in zip(self.rows, report.layers, strict=False):
            row.show_report(layer_report)
        self.totals.setText(
            f"Total: {report.total_params:,} parameters ({human_bytes(report.param_bytes)}) · "
            f"{human(report.total_macs)} MACs per sample · output "
            f"{shape_text(report.output_shape)}")
        self.memory_label.setText("")
        if report.ok:
            self._show_memory(report, data)
        self._set_problem(str(report.error) if report.error else None)

    def _show_memory(self, report: ModelReport, data: DataShape) -> None:
        """The memory training needs, against what its device has; a refusal when it will not
        fit (the trainer would refuse it too, from the same estimate)."""
        spec = self.model.live
        memory = self.device_memory()
        on_gpu = memory.label.startswith("the GPU")
        estimate = estimate_memory(spec, report, num_samples=data.num_samples,
                                   test_samples=data.test_samples,
                                   num_classes=data.num_classes or 0, cpu=not on_gpu)
        self.memory = estimate
        available = ("" if memory.available is None else
                     f"; {memory.label} has {human_bytes(memory.available)} available")
        self.memory_label.setText(f"Memory to train: about {human_bytes(estimate.total)} "
                                  f"({estimate.breakdown()}){available}")
        self.memory_label.setToolTip("Estimated from the shapes: parameters, gradients, "
                                     "optimizer state, one batch's activations, the data "
                                     "and an evaluation batch")
        try:
            check_fits(estimate, memory)
        except DoesNotFit as exc:
            self.memory_problem = str(exc)
            self.memory_label.setText("")  # the problem below says it all, with the numbers

    def _set_problem(self, problem: str | None) -> None:
        self.problem = problem
        shown = problem or self.memory_problem
        self.status.setText(f"⚠ {shown}" if shown else "✓ The stack fits the data.")
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
