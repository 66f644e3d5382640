"""The layer stack editor's parts: the palette of the catalogue (drag a layer, or double-click
it), a layer's row (its parameters edited in place, its output shape, parameters and
multiply-accumulates beside them) and the stack list (drops, moves and keys)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QDropEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.model import LayerReport
from workbench.gui.editors.model_presenter import human, shape_text
from workbench.gui.widgets.layouts import ElidedLabel, FlowLayout
from workbench.gui.widgets.style import ERROR_BG
from workbench.spec import LayerSpec
from workbench.spec.layers import CATALOGUE, ParamDef

LAYER_MIME = "application/x-workbench-layer"
# the widths of a row's figures (right-aligned; the font's digits are all one width): the
# layer's name keeps the rest, "BatchNorm" whole in a laptop's editor
COL_INDEX, COL_SHAPE, COL_PARAMS, COL_MACS = 18, 80, 52, 52
_EDITOR_WIDTH = 56  # a number editor; an integer's grows with its bound's digits


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
        self.setIndentation(12)  # the names take the room, not the tree's steps
        self.setRootIsDecorated(False)  # the categories stay open: no arrows to fold them
        self.setItemsExpandable(False)
        # never "Convolu…": the column is as wide as its names; when a vertical scroll bar
        # takes its room (a short window), it scrolls sideways instead of cutting them
        self.header().setStretchLastSection(False)
        self.resizeColumnToContents(0)
        self.itemDoubleClicked.connect(self._double_clicked)

    def needed_width(self) -> int:
        """The width that shows every category and layer name whole."""
        return self.sizeHintForColumn(0) + 2 * self.frameWidth() + 4

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
        outer.setContentsMargins(4, 3, 4, 3)
        outer.setSpacing(2)
        top = QHBoxLayout()
        top.setSpacing(3)
        self.number = QLabel(f"{index + 1}")
        self.number.setFixedWidth(COL_INDEX)
        self.number.setObjectName("layerIndex")
        self.title = ElidedLabel(layer.type)  # cut with "…" only past its room, never silently
        self.title.setObjectName("layerType")
        top.addWidget(self.number)
        top.addWidget(self.title, 1)
        self.shape = self._stat(COL_SHAPE, "output shape per sample")
        self.params = self._stat(COL_PARAMS, "learned parameters")
        self.macs = self._stat(COL_MACS, "multiply-accumulates per sample")
        for w in (self.shape, self.params, self.macs):
            top.addWidget(w)
        outer.addLayout(top)
        values = self.ltype.resolve(layer.params) if self.ltype else {}
        if self.ltype and self.ltype.params:
            # the parameters wrap onto more lines in a narrow editor instead of widening it
            params = QWidget()
            line = FlowLayout(params, spacing=10)
            line.setContentsMargins(COL_INDEX + 3, 0, 0, 0)  # under the name
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
