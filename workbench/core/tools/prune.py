"""Magnitude pruning of a trained run: masks, fast evaluation at any sparsity, sensitivity sweeps.

A `PruneSession` holds one trained run with its validation set already normalized in memory
and every layer's weight magnitudes sorted once, so that evaluating a new slider position is
one mask comparison and one forward pass over the validation set (a few tens of milliseconds
for the MNIST MLP on a CPU). The parent's weights are never modified: masks multiply a copy.

Unstructured pruning zeroes single weights (smallest |w| first). Structured pruning zeroes
whole output units of a Linear or channels of a Conv2d (smallest L1 or L2 norm first), and with
them their bias, their BatchNorm entries and the matching inputs of the next layer, so the
masked network computes exactly what the physically smaller one (`prune_apply.shrink`) does.
The output layer never loses units: they are the classes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.core.data import DeviceBatches, Splits
from workbench.core.data.cache import DataSource
from workbench.core.memory import EVAL_BATCH
from workbench.core.model import analyze
from workbench.core.store.runs import RunError
from workbench.core.tools.trained import load_trained
from workbench.core.training.optim import loss_function
from workbench.core.training.step import evaluate
from workbench.spec import ExperimentSpec, LayerSpec
from workbench.spec.layers import layer_name

PRUNABLE = ("Linear", "Conv2d")
NORMS = ("l1", "l2")
MAX_AMOUNT = 0.99
SENSITIVITY_AMOUNTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


class PruneError(ValueError):
    """A run that cannot be pruned, or a bad pruning request; the message says why."""


@dataclass(frozen=True)
class PruneConfig:
    """What to prune. `amount` is the share of weights (unstructured) or of units (structured).

    `per_layer` maps a layer's index in the stack to its own amount; None prunes globally,
    ranking every prunable weight (or unit) of the network together.
    """

    amount: float = 0.5
    per_layer: Mapping[int, float] | None = None
    structured: bool = False
    norm: str = "l1"

    def validate(self) -> None:
        amounts = [self.amount, *(self.per_layer or {}).values()]
        for a in amounts:
            if not isinstance(a, int | float) or not 0.0 <= a <= MAX_AMOUNT:
                raise PruneError(f"amount must be between 0 and {MAX_AMOUNT}, got {a!r}")
        if self.norm not in NORMS:
            raise PruneError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")

    def describe(self) -> dict[str, Any]:
        return {"amount": self.amount, "structured": self.structured, "norm": self.norm,
                "per_layer": ({str(k): v for k, v in self.per_layer.items()}
                              if self.per_layer is not None else None)}


@dataclass(frozen=True)
class PrunableLayer:
    index: int  # position in the spec's stack and in the nn.Sequential
    type: str  # Linear or Conv2d
    weight_shape: tuple[int, ...]
    params: int  # weight and bias
    is_output: bool  # the last prunable layer: its units are the outputs, never removed

    @property
    def units(self) -> int:
        return self.weight_shape[0]

    @property
    def fan_in(self) -> int:
        return math.prod(self.weight_shape[1:])

    @property
    def label(self) -> str:
        """`layer 2 (Linear) 784→64`: numbered from 1 as in the editor, inputs→units."""
        return f"{layer_name(self.index, self.type)} {self.weight_shape[1]}→{self.weight_shape[0]}"


@dataclass(frozen=True)
class Link:
    """How a structured layer's units reach the next prunable layer's inputs."""

    producer: int
    batchnorms: tuple[int, ...]  # BatchNorm layers in between: their entries go with the units
    consumer: int
    block: int  # consumer inputs per unit: H*W when a Flatten lies between a Conv2d and a Linear
    flatten: int | None = None  # the index of that Flatten

    def consumer_inputs(self, units: torch.Tensor) -> torch.Tensor:
        """The consumer's input indices (weight dim 1) fed by the given units."""
        if self.block == 1:
            return units
        return (units[:, None] * self.block + torch.arange(self.block)).reshape(-1)

    def batchnorm_entries(self, index: int, units: torch.Tensor) -> torch.Tensor:
        """The entries of BatchNorm `index` that the given units feed: one per channel before
        the Flatten, a block of H*W per channel after it (a BatchNorm1d of C*H*W features)."""
        if self.flatten is not None and index > self.flatten:
            return self.consumer_inputs(units)
        return units


@dataclass(frozen=True)
class LayerStats:
    index: int
    label: str
    amount: float  # what was asked of this layer (0 when it was not pruned)
    sparsity: float  # share of its weights that are zero (or removed)
    params_before: int
    params_after: int
    units_before: int
    units_after: int


@dataclass(frozen=True)
class PruneResult:
    config: PruneConfig
    sparsity: float  # share of all prunable weights that are zero (or removed)
    params_before: int  # the whole network's parameters
    params_after: int  # nonzero (unstructured) or kept (structured) parameters
    val_loss: float
    val_accuracy: float | None  # None for regression
    layers: tuple[LayerStats, ...]
    notes: tuple[str, ...]  # when pruning changed nothing, and why
    masks: dict[str, torch.Tensor] = field(repr=False, compare=False)
    kept_units: dict[int, torch.Tensor] = field(repr=False, compare=False)  # structured only

    def summary(self) -> dict[str, Any]:
        return {"sparsity": self.sparsity, "parameters": self.params_after,
                "parameters_before": self.params_before, "val_loss": self.val_loss,
                "val_accuracy": self.val_accuracy}


@dataclass(frozen=True)
class SensitivityPoint:
    layer: int | None  # the pruned layer's index; None: the whole network (global pruning)
    amount: float
    sparsity: float
    val_loss: float
    val_accuracy: float | None


def prunable_layers(layers: list[LayerSpec], model: nn.Sequential) -> list[PrunableLayer]:
    found = [i for i, layer in enumerate(layers) if layer.type in PRUNABLE]
    out = []
    for i in found:
        module = model[i]
        assert isinstance(module, nn.Linear | nn.Conv2d)  # what PRUNABLE names build
        params = sum(p.numel() for p in module.parameters())
        out.append(PrunableLayer(i, layers[i].type, tuple(module.weight.shape), params,
                                 i == found[-1]))
    return out


def structure_links(layers: list[LayerSpec], input_shape: tuple[int, ...],
                    prunable: list[PrunableLayer]) -> dict[int, Link]:
    """For every prunable layer but the output one: its BatchNorms and its consumer."""
    report = analyze(layers, input_shape, None)
    links: dict[int, Link] = {}
    for a, b in zip(prunable, prunable[1:], strict=False):
        bns = tuple(i for i in range(a.index + 1, b.index) if layers[i].type == "BatchNorm")
        block, flatten = 1, None
        for i in range(a.index + 1, b.index):
            if layers[i].type == "Flatten":
                shape = report.layers[i].in_shape
                if len(shape) == 3:
                    block, flatten = math.prod(shape[1:]), i
        links[a.index] = Link(a.index, bns, b.index, block, flatten)
    return links


def _span(idx: torch.Tensor, x: torch.Tensor,
          y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of consecutive indices `idx` as views: no copy of the validation set."""
    start, stop = int(idx[0]), int(idx[-1]) + 1
    return x[start:stop], y[start:stop]


def _unit_scores(weight: torch.Tensor, norm: str) -> torch.Tensor:
    """Each output unit's norm, divided by the fan-in so scores compare across layers."""
    flat = weight.reshape(weight.shape[0], -1)
    if norm == "l1":
        return flat.abs().sum(1) / flat.shape[1]
    return flat.pow(2).sum(1).sqrt() / math.sqrt(flat.shape[1])


class PruneSession:
    """One trained run, ready to be pruned and evaluated quickly at any setting.

    Thread-safe: `evaluate` may be called from several threads (a slider and a sweep);
    they take turns on the one scratch model.
    """

    def __init__(self, run_dir: str | Path, *, splits: Splits | None = None,
                 source: DataSource | None = None,
                 cancel: threading.Event | None = None) -> None:
        try:
            trained = load_trained(run_dir, splits=splits, source=source, cancel=cancel)
        except RunError as exc:
            raise PruneError(f"{exc}; it cannot be pruned") from exc
        self.run = trained.run
        self.spec: ExperimentSpec = trained.spec
        self.splits = trained.splits
        info = self.splits.info
        self.info = info
        self.model = trained.model
        self.base = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.layers = prunable_layers(self.spec.model.layers, self.model)
        if not self.layers:
            raise PruneError("the network has no Linear or Conv2d layer to prune")
        self.links = structure_links(self.spec.model.layers, info.input_shape, self.layers)
        self.params_before = sum(p.numel() for p in self.model.parameters())
        self.num_classes = info.num_classes
        self.loss_fn = loss_function(info.num_classes)
        batches = DeviceBatches(self.splits.val_x, self.splits.val_y, mean=self.splits.mean,
                                std=self.splits.std, batch_size=EVAL_BATCH,
                                device=torch.device("cpu"), shuffle=False, generator=None,
                                image=info.is_image)
        self.val_x, self.val_y = batches.batch(torch.arange(len(self.splits.val_x)))
        if len(self.val_x) == 0:
            raise PruneError("the run's validation split is empty; pruning needs it to "
                             "measure accuracy (set data.val_fraction above 0)")
        self._sorted = {lay.index: self.base[f"{lay.index}.weight"].abs().flatten().sort().values
                        for lay in self.layers}
        self._all_sorted = torch.cat(list(self._sorted.values())).sort().values
        self._scores: dict[str, dict[int, torch.Tensor]] = {
            norm: {lay.index: _unit_scores(self.base[f"{lay.index}.weight"], norm)
                   for lay in self.layers if not lay.is_output} for norm in NORMS}
        self._lock = threading.Lock()
        self.baseline = self.evaluate(PruneConfig(amount=0.0))

    @property
    def structured_layers(self) -> list[PrunableLayer]:
        return [lay for lay in self.layers if not lay.is_output]

    # -- masks ----------------------------------------------------------------------------
    def masks(self, config: PruneConfig) -> tuple[dict[str, torch.Tensor],
                                                  dict[int, torch.Tensor], list[str]]:
        """(masks by state_dict key, kept units by layer (structured), notes)."""
        config.validate()
        if config.per_layer is not None:
            known = {lay.index for lay in
                     (self.structured_layers if config.structured else self.layers)}
            unknown = sorted(set(config.per_layer) - known)
            if unknown:
                raise PruneError(f"layer {unknown[0]} cannot be pruned this way "
                                 f"(prunable layers: {', '.join(map(str, sorted(known)))})")
        if config.structured:
            return self._structured_masks(config)
        masks, notes = self._unstructured_masks(config)
        return masks, {}, notes

    def _unstructured_masks(self, config: PruneConfig) -> tuple[dict[str, torch.Tensor],
                                                                list[str]]:
        masks: dict[str, torch.Tensor] = {}
        notes: list[str] = []
        if config.per_layer is None:
            k = round(config.amount * len(self._all_sorted))
            if config.amount > 0 and k == 0:
                notes.append(f"{config.amount:.1%} of {len(self._all_sorted):,} weights rounds "
                             "to no weight: nothing is pruned")
            threshold = self._all_sorted[k - 1] if k > 0 else None
            zeros = int((self._all_sorted == 0).sum())
            if k > 0 and zeros >= k:
                notes.append(f"{zeros / len(self._all_sorted):.1%} of the weights are already "
                             f"zero: pruning to {config.amount:.1%} changes nothing")
            for lay in self.layers:
                w = self.base[f"{lay.index}.weight"]
                masks[f"{lay.index}.weight"] = (
                    (w.abs() > threshold).to(w.dtype) if threshold is not None
                    else torch.ones_like(w))
            return masks, notes
        for lay in self.layers:
            w = self.base[f"{lay.index}.weight"]
            amount = config.per_layer.get(lay.index, 0.0)
            ranked = self._sorted[lay.index]
            k = round(amount * len(ranked))
            if amount > 0 and k == 0:
                notes.append(f"{lay.label}: {amount:.1%} of {len(ranked):,} weights rounds to no "
                             "weight")
            zeros = int((ranked == 0).sum())
            if k > 0 and zeros >= k:
                notes.append(f"{lay.label}: already {zeros / len(ranked):.1%} zero, so "
                             f"{amount:.1%} changes nothing")
            masks[f"{lay.index}.weight"] = ((w.abs() > ranked[k - 1]).to(w.dtype) if k > 0
                                            else torch.ones_like(w))
        return masks, notes

    def _structured_masks(self, config: PruneConfig) -> tuple[dict[str, torch.Tensor],
                                                              dict[int, torch.Tensor], list[str]]:
        notes: list[str] = []
        scores = self._scores[config.norm]
        removed: dict[int, torch.Tensor] = {}
        structured = self.structured_layers
        if not structured:
            notes.append("the network has a single Linear or Conv2d layer: its units are the "
                         "outputs, so structured pruning removes nothing")
        if config.per_layer is None:
            total = sum(lay.units for lay in structured)
            n = round(config.amount * total)
            if config.amount > 0 and n == 0 and structured:
                notes.append(f"{config.amount:.1%} of {total} units rounds to no unit")
            all_scores = torch.cat([scores[lay.index] for lay in structured]) if structured \
                else torch.zeros(0)
            owner = torch.cat([torch.full((lay.units,), lay.index) for lay in structured]) \
                if structured else torch.zeros(0, dtype=torch.long)
            order = torch.argsort(all_scores, stable=True)
            left = {lay.index: lay.units for lay in structured}
            # Scores do not compare perfectly across layers (a BatchNorm after a layer rescales
            # its units), so global ranking alone can cut one layer down to a unit or two, a
            # bottleneck no fine-tuning recovers from: each layer keeps at least half of what
            # pruning every layer by the amount would leave it.
            floor = {lay.index: max(1, math.ceil((1.0 - config.amount) * lay.units / 2))
                     for lay in structured}
            chosen: dict[int, list[int]] = {lay.index: [] for lay in structured}
            offsets = {}
            start = 0
            for lay in structured:
                offsets[lay.index] = start
                start += lay.units
            for pos in order.tolist():
                if n == 0:
                    break
                i = int(owner[pos])
                if left[i] > floor[i]:
                    chosen[i].append(pos - offsets[i])
                    left[i] -= 1
                    n -= 1
            removed = {i: torch.tensor(sorted(v), dtype=torch.long) for i, v in chosen.items()}
        else:
            for lay in structured:
                amount = config.per_layer.get(lay.index, 0.0)
                n = min(round(amount * lay.units), lay.units - 1)
                if amount > 0 and n == 0:
                    notes.append(f"{lay.label}: {amount:.1%} of {lay.units} units rounds to no "
                                 "unit")
                order = torch.argsort(scores[lay.index], stable=True)
                removed[lay.index] = order[:n].sort().values
        for lay in structured:
            dead = int((scores[lay.index] == 0).sum())
            if dead and len(removed[lay.index]) and len(removed[lay.index]) <= dead:
                notes.append(f"{lay.label}: {dead} units are already zero, so removing "
                             f"{len(removed[lay.index])} changes nothing")
        masks = {k: torch.ones_like(v) for k, v in self.base.items()
                 if k.endswith(".weight") or k.endswith(".bias")}
        kept: dict[int, torch.Tensor] = {}
        for lay in structured:
            gone = removed[lay.index]
            keep = torch.ones(lay.units, dtype=torch.bool)
            keep[gone] = False
            kept[lay.index] = torch.nonzero(keep).flatten()
            if len(gone) == 0:
                continue
            link = self.links[lay.index]
            for name in ("weight", "bias"):
                if f"{lay.index}.{name}" in masks:
                    masks[f"{lay.index}.{name}"][gone] = 0
            for i in link.batchnorms:
                entries = link.batchnorm_entries(i, gone)
                for name in ("weight", "bias"):
                    if f"{i}.{name}" in masks:
                        masks[f"{i}.{name}"][entries] = 0
            masks[f"{link.consumer}.weight"][:, link.consumer_inputs(gone)] = 0
        return masks, kept, notes

    # -- evaluation -----------------------------------------------------------------------
    def masked_state(self, masks: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A copy of the trained weights with the masks applied (the parent stays untouched)."""
        return {k: (v * masks[k] if k in masks else v.clone()) for k, v in self.base.items()}

    def evaluate(self, config: PruneConfig) -> PruneResult:
        masks, kept, notes = self.masks(config)
        with self._lock:
            with torch.no_grad():
                for name, tensor in self.model.state_dict().items():
                    src = self.base[name]
                    tensor.copy_(src * masks[name] if name in masks else src)
            x, y = self.val_x, self.val_y
            scores = evaluate(self.model, x, y, lambda idx: _span(idx, x, y), self.loss_fn,
                              self.num_classes)
        return self._result(config, masks, kept, notes, scores)

    def _result(self, config: PruneConfig, masks: dict[str, torch.Tensor],
                kept: dict[int, torch.Tensor], notes: list[str],
                scores: dict[str, Any]) -> PruneResult:
        per_layer = config.per_layer or {}
        stats = []
        zero_total = 0
        weight_total = 0
        if config.structured:
            layers = self.shrunk_layers(kept)
            after = analyze(layers, self.info.input_shape, None)
            params_after = after.total_params
        else:
            params_after = self.params_before
        for lay in self.layers:
            mask = masks[f"{lay.index}.weight"]
            zeros = int((mask == 0).sum())
            zero_total += zeros
            weight_total += mask.numel()
            if config.structured:
                layer_after = after.layers[lay.index].params
                units_after = len(kept[lay.index]) if lay.index in kept else lay.units
            else:
                layer_after = lay.params - zeros
                params_after -= zeros
                units_after = lay.units
            asked = per_layer.get(lay.index, 0.0) if config.per_layer is not None \
                else config.amount
            if config.structured and lay.is_output:
                asked = 0.0
            stats.append(LayerStats(lay.index, lay.label, asked, zeros / mask.numel(),
                                    lay.params, layer_after, lay.units, units_after))
        return PruneResult(config, zero_total / max(1, weight_total), self.params_before,
                           params_after, scores["loss"], scores["accuracy"], tuple(stats),
                           tuple(notes), masks, kept)

    def shrunk_layers(self, kept: Mapping[int, torch.Tensor]) -> list[LayerSpec]:
        """The spec's layers with each structured layer's `out` cut to its kept units."""
        layers = [LayerSpec(layer.type, dict(layer.params)) for layer in self.spec.model.layers]
        for index, units in kept.items():
            layers[index].params["out"] = int(len(units))
        return layers

    # -- sweeps ---------------------------------------------------------------------------
    def sensitivity(self, *, structured: bool = False, norm: str = "l1",
                    amounts: tuple[float, ...] = SENSITIVITY_AMOUNTS,
                    cancel: threading.Event | None = None) -> Iterator[SensitivityPoint]:
        """Prune one layer at a time at rising amounts, then the whole network globally.

        Yields one point per evaluation so a plot can fill in as it goes; stops early when
        `cancel` is set.
        """
        targets = self.structured_layers if structured else self.layers
        for target in [*(lay.index for lay in targets), None]:
            for amount in amounts:
                if cancel is not None and cancel.is_set():
                    return
                config = PruneConfig(amount=amount, structured=structured, norm=norm,
                                     per_layer=None if target is None else {target: amount})
                r = self.evaluate(config)
                yield SensitivityPoint(target, amount, r.sparsity, r.val_loss, r.val_accuracy)


__all__ = [
    "MAX_AMOUNT",
    "SENSITIVITY_AMOUNTS",
    "LayerStats",
    "Link",
    "PrunableLayer",
    "PruneConfig",
    "PruneError",
    "PruneResult",
    "PruneSession",
    "SensitivityPoint",
    "prunable_layers",
    "structure_links",
]
