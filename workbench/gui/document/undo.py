"""Undo commands: each changes the ExperimentModel, never a widget (orange-canvas-core style).

Views react to the model's signals, so undo and redo look exactly like the original edit.
Consecutive edits of one field merge into one step (typing 0.005 is one undo, not five).
The `push_*` helpers push a command only when it would change something.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QUndoCommand, QUndoStack

from workbench.gui.document.experiment_model import ExperimentModel, same_value
from workbench.spec import ExperimentSpec, LayerSpec

_SET_VALUE_ID = 1001
_SET_PARAM_ID = 1002


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class SetValue(QUndoCommand):
    def __init__(self, model: ExperimentModel, path: str, value: Any) -> None:
        super().__init__(f"Set {path} to {_short(value)}")
        self.model, self.path = model, path
        self.old, self.new = model.value(path), value

    def redo(self) -> None:
        self.model.set_value(self.path, self.new)

    def undo(self) -> None:
        self.model.set_value(self.path, self.old)

    def id(self) -> int:
        return _SET_VALUE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetValue) or other.path != self.path:
            return False
        self.new = other.new
        self.setText(other.text())
        self.setObsolete(same_value(self.old, self.new))
        return True


class SetLayerParam(QUndoCommand):
    def __init__(self, model: ExperimentModel, index: int, name: str, value: Any) -> None:
        layer = model.live.model.layers[index]
        super().__init__(f"Set {layer.type} {name} to {_short(value)}")
        self.model, self.index, self.name = model, index, name
        self.had = name in layer.params
        self.old, self.new = model.layer_value(index, name), value

    def redo(self) -> None:
        self.model.set_layer_param(self.index, self.name, self.new)

    def undo(self) -> None:
        self.model.set_layer_param(self.index, self.name, self.old)

    def id(self) -> int:
        return _SET_PARAM_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetLayerParam) or (other.index, other.name) != (
                self.index, self.name):
            return False
        self.new = other.new
        self.setText(other.text())
        self.setObsolete(same_value(self.old, self.new))
        return True


class InsertLayer(QUndoCommand):
    def __init__(self, model: ExperimentModel, index: int, layer: LayerSpec,
                 text: str | None = None) -> None:
        super().__init__(text or f"Add {layer.type}")
        self.model, self.index, self.layer = model, index, layer

    def redo(self) -> None:
        self.model.insert_layer(self.index, self.layer)

    def undo(self) -> None:
        self.model.remove_layer(self.index)


class RemoveLayer(QUndoCommand):
    def __init__(self, model: ExperimentModel, index: int) -> None:
        self.layer = model.layers()[index]
        super().__init__(f"Remove {self.layer.type}")
        self.model, self.index = model, index

    def redo(self) -> None:
        self.model.remove_layer(self.index)

    def undo(self) -> None:
        self.model.insert_layer(self.index, self.layer)


class MoveLayer(QUndoCommand):
    def __init__(self, model: ExperimentModel, source: int, dest: int) -> None:
        super().__init__(f"Move {model.live.model.layers[source].type}")
        self.model, self.source, self.dest = model, source, dest

    def redo(self) -> None:
        self.model.move_layer(self.source, self.dest)

    def undo(self) -> None:
        self.model.move_layer(self.dest, self.source)


class SetLayers(QUndoCommand):
    """Replace the whole stack (a template)."""

    def __init__(self, model: ExperimentModel, layers: list[LayerSpec], text: str) -> None:
        super().__init__(text)
        self.model, self.old, self.new = model, model.layers(), layers

    def redo(self) -> None:
        self.model.set_layers(self.new)

    def undo(self) -> None:
        self.model.set_layers(self.old)


class ReplaceSpec(QUndoCommand):
    """Replace the whole experiment (load a run's spec into the editor)."""

    def __init__(self, model: ExperimentModel, spec: ExperimentSpec, text: str) -> None:
        super().__init__(text)
        self.model, self.old, self.new = model, model.spec(), spec.copy()

    def redo(self) -> None:
        self.model.replace(self.new)

    def undo(self) -> None:
        self.model.replace(self.old)


# -- push only what changes something ---------------------------------------------------------

def push_value(stack: QUndoStack, model: ExperimentModel, path: str, value: Any) -> bool:
    if same_value(model.value(path), value):
        return False
    stack.push(SetValue(model, path, value))
    return True


def push_layer_param(stack: QUndoStack, model: ExperimentModel, index: int, name: str,
                     value: Any) -> bool:
    if same_value(model.layer_value(index, name), value):
        return False
    stack.push(SetLayerParam(model, index, name, value))
    return True


def push_insert(stack: QUndoStack, model: ExperimentModel, index: int, layer: LayerSpec) -> None:
    index = max(0, min(index, len(model.live.model.layers)))
    stack.push(InsertLayer(model, index, layer))


def push_duplicate(stack: QUndoStack, model: ExperimentModel, index: int) -> None:
    layer = model.layers()[index]
    stack.push(InsertLayer(model, index + 1, layer, f"Duplicate {layer.type}"))


def push_remove(stack: QUndoStack, model: ExperimentModel, index: int) -> None:
    stack.push(RemoveLayer(model, index))


def push_move(stack: QUndoStack, model: ExperimentModel, source: int, dest: int) -> bool:
    n = len(model.live.model.layers)
    if source == dest or not (0 <= source < n and 0 <= dest < n):
        return False
    stack.push(MoveLayer(model, source, dest))
    return True


def push_layers(stack: QUndoStack, model: ExperimentModel, layers: list[LayerSpec],
                text: str) -> bool:
    if [(x.type, x.params) for x in layers] == [(x.type, x.params) for x in model.layers()]:
        return False
    stack.push(SetLayers(model, layers, text))
    return True


def push_spec(stack: QUndoStack, model: ExperimentModel, spec: ExperimentSpec, text: str) -> bool:
    if spec.to_dict() == model.live.to_dict():
        return False
    stack.push(ReplaceSpec(model, spec, text))
    return True
