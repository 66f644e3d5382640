"""The field paths that `--set`, `--vary`, search spaces and the app name: one grammar.

- a spec field by its dotted path: `optim.lr`, `train.batch_size`, `data.augment.hflip`;
- a layer's parameter, the layer numbered from 1 as the model editor numbers it:
  `model.layer2.out` (the second layer's `out`);
- the same in the spec document's own index, from 0: `model.layers[1].out`. Read everywhere
  for compatibility (search spaces, studies and comparisons written before the editor's
  numbering was used, and the spec's own error paths); Workbench writes and shows the first
  form;
- `model.dropout`: every Dropout layer's `p` at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from workbench import spec as specmod
from workbench.spec import ExperimentSpec, SpecError
from workbench.spec.layers import CATALOGUE

_NUMBERED = re.compile(r"^model\.layer(\d{1,6})\.(\w+)$")  # from 1, as the editor shows
_INDEXED = re.compile(r"^model\.layers\[(\d{1,6})\]\.(\w+)$")  # from 0, the document's index
_ITEM = re.compile(r"^(\w+)\[(\d{1,6})\]$")
MISSING = object()


@dataclass(frozen=True)
class LayerField:
    """A layer's parameter: `index` from 0 (the document's), shown from 1."""

    index: int
    param: str

    @property
    def shown(self) -> str:
        return f"model.layer{self.index + 1}.{self.param}"

    @property
    def document(self) -> str:
        return f"model.layers[{self.index}].{self.param}"


def layer_field(path: str) -> LayerField | None:
    """The layer parameter `path` names, in either form; None for any other path."""
    m = _NUMBERED.match(path)
    if m is not None:
        number = int(m.group(1))
        if number < 1:
            raise SpecError(path, "layers are numbered from 1, as the model editor shows them")
        return LayerField(number - 1, m.group(2))
    m = _INDEXED.match(path)
    return LayerField(int(m.group(1)), m.group(2)) if m is not None else None


def shown(path: str) -> str:
    """The path as Workbench shows it: a layer by the editor's number."""
    try:
        layer = layer_field(path)
    except SpecError:
        return path
    return layer.shown if layer is not None else path


def set_field(spec: ExperimentSpec, path: str, value: Any) -> ExperimentSpec:
    """A validated copy of `spec` with the field at `path` set; SpecError naming it."""
    if path == "model.dropout":
        d = spec.to_dict()
        drops = [layer for layer in d["model"]["layers"] if layer["type"] == "Dropout"]
        if not drops:
            raise SpecError(path, "the network has no Dropout layer to vary")
        for layer in drops:
            layer["p"] = value
        return _parse_at(d, path)
    layer = layer_field(path)
    if layer is not None:
        d = spec.to_dict()
        layers = d["model"]["layers"]
        if layer.index >= len(layers):
            raise SpecError(path, f"no layer {layer.index + 1} (the network has "
                                  f"{len(layers)})")
        layers[layer.index][layer.param] = value
        return _parse_at(d, path)
    if "[" not in path:
        return spec.with_value(path, value)
    d = spec.to_dict()
    node: Any = d
    keys = path.split(".")
    for key in keys[:-1]:
        m = _ITEM.match(key)
        name, index = (m.group(1), int(m.group(2))) if m else (key, None)
        if not isinstance(node, dict) or name not in node:
            raise SpecError(path, "no such field")
        node = node[name]
        if index is not None:
            if not isinstance(node, list) or not 0 <= index < len(node):
                raise SpecError(path, f"no item {index} (there are {len(node)})")
            node = node[index]
    if not isinstance(node, dict):
        raise SpecError(path, "no such field")
    node[keys[-1]] = value
    return _parse_at(d, path)


def _parse_at(d: dict[str, Any], path: str) -> ExperimentSpec:
    try:
        return specmod.from_dict(d)
    except SpecError as exc:
        raise SpecError(exc.path or path, exc.reason, exc.where) from None


def read_field(spec: ExperimentSpec, path: str) -> Any:
    """The value at `path` in `spec` (a layer's parameter left to its default included);
    `MISSING` when there is none."""
    d = spec.to_dict()
    layers = d["model"]["layers"]
    if path == "model.dropout":
        drops = {CATALOGUE["Dropout"].resolve(x)["p"] for x in layers if x["type"] == "Dropout"}
        return drops.pop() if len(drops) == 1 else MISSING
    try:
        layer = layer_field(path)
    except SpecError:
        return MISSING
    if layer is not None:
        if layer.index >= len(layers):
            return MISSING
        raw = layers[layer.index]
        resolved = CATALOGUE[raw["type"]].resolve({k: v for k, v in raw.items()
                                                  if k != "type"})
        return resolved.get(layer.param, MISSING)
    node: Any = d
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return MISSING if isinstance(node, dict) else node


__all__ = ["MISSING", "LayerField", "layer_field", "read_field", "set_field", "shown"]
