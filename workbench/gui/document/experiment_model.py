"""The experiment being edited: one ExperimentSpec behind a QObject that says what changed.

Views never keep their own copy of a value; they read it here and subscribe to the signals.
A signal fires only when a value really changed (as napari's evented models do), so a view
that writes back what it just displayed causes no loop and no spurious undo step.
Undo commands (`undo.py`) are the only writers in the app.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QObject, Signal

from workbench.spec import ExperimentSpec, LayerSpec
from workbench.spec.layers import CATALOGUE


class ExperimentModel(QObject):
    """Holds the spec; every mutation goes through a method that emits what changed."""

    changed = Signal()  # anything at all changed
    valueChanged = Signal(str, object)  # a non-layer field: dotted path, new value
    layersChanged = Signal()  # the stack's structure (insert, remove, move, replace)
    layerParamChanged = Signal(int, str)  # one layer's parameter: index, name
    specReplaced = Signal()  # a whole new spec (open, new, template)

    def __init__(self, spec: ExperimentSpec | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._spec = spec.copy() if spec is not None else ExperimentSpec()

    # -- reading ------------------------------------------------------------------------
    def spec(self) -> ExperimentSpec:
        """A copy, safe to hand to another thread or keep."""
        return self._spec.copy()

    @property
    def live(self) -> ExperimentSpec:
        """The spec itself, for cheap reads on the GUI thread; never mutate it directly."""
        return self._spec

    def value(self, path: str) -> Any:
        owner, name = self._owner(path)
        return getattr(owner, name)

    def layers(self) -> list[LayerSpec]:
        return [LayerSpec(layer.type, dict(layer.params)) for layer in self._spec.model.layers]

    def layer_value(self, index: int, name: str) -> Any:
        layer = self._spec.model.layers[index]
        return CATALOGUE[layer.type].resolve(layer.params)[name]

    # -- writing (called by undo commands) ----------------------------------------------
    def set_value(self, path: str, value: Any) -> bool:
        """Set one field by dotted path (`optim.lr`); False when it already had that value."""
        owner, name = self._owner(path)
        if same_value(getattr(owner, name), value):
            return False
        setattr(owner, name, value)
        self.valueChanged.emit(path, value)
        self.changed.emit()
        return True

    def set_layer_param(self, index: int, name: str, value: Any) -> bool:
        layer = self._spec.model.layers[index]
        if name not in {p.name for p in CATALOGUE[layer.type].params}:
            raise KeyError(f"{layer.type} has no parameter {name!r}")
        if name in layer.params and same_value(layer.params[name], value):
            return False
        if name not in layer.params and same_value(self.layer_value(index, name), value):
            return False
        layer.params[name] = value
        self.layerParamChanged.emit(index, name)
        self.changed.emit()
        return True

    def insert_layer(self, index: int, layer: LayerSpec) -> None:
        self._spec.model.layers.insert(index, LayerSpec(layer.type, dict(layer.params)))
        self._emit_layers()

    def remove_layer(self, index: int) -> LayerSpec:
        layer = self._spec.model.layers.pop(index)
        self._emit_layers()
        return layer

    def move_layer(self, source: int, dest: int) -> bool:
        """Move the layer at `source` so that it ends up at index `dest`."""
        layers = self._spec.model.layers
        if source == dest or not (0 <= source < len(layers) and 0 <= dest < len(layers)):
            return False
        layers.insert(dest, layers.pop(source))
        self._emit_layers()
        return True

    def set_layers(self, layers: list[LayerSpec]) -> bool:
        new = [LayerSpec(layer.type, dict(layer.params)) for layer in layers]
        if new == self._spec.model.layers:
            return False
        self._spec.model.layers = new
        self._emit_layers()
        return True

    def replace(self, spec: ExperimentSpec) -> bool:
        if spec.to_dict() == self._spec.to_dict():
            return False
        self._spec = spec.copy()
        self.specReplaced.emit()
        self.layersChanged.emit()
        self.changed.emit()
        return True

    # -- helpers ------------------------------------------------------------------------
    def _emit_layers(self) -> None:
        self.layersChanged.emit()
        self.changed.emit()

    def _owner(self, path: str) -> tuple[Any, str]:
        keys = path.split(".")
        node: Any = self._spec
        for key in keys[:-1]:
            if not dataclasses.is_dataclass(node) or not hasattr(node, key):
                raise KeyError(f"{path}: no such field")
            node = getattr(node, key)
        if keys[0] == "model" or not dataclasses.is_dataclass(node) or \
                keys[-1] not in {f.name for f in dataclasses.fields(node)}:
            raise KeyError(f"{path}: no such field")
        return node, keys[-1]


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same kind (True is not 1, 0.0 is 0, None is not 0)."""
    if isinstance(a, bool) != isinstance(b, bool) or (a is None) != (b is None):
        return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return a == b
