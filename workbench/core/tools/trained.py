"""A trained run, loaded: its spec, its data and its model with the stored weights.

The one way every post-training tool (prune, export, compress, the landscape) gets a trained
network from a run folder, so that each refuses the same broken folders with the same words.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from workbench.core.data import DataError, Splits
from workbench.core.data.cache import DataSource, load_from
from workbench.core.model import build_to_load, check
from workbench.core.store.runs import Run, RunError
from workbench.spec import ExperimentSpec, SpecError


@dataclass
class TrainedRun:
    """A run's spec, its data, and its model in eval mode (pruning masks folded in)."""

    run: Run
    spec: ExperimentSpec
    model: nn.Sequential
    splits: Splits


def fold_masks(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A plain state_dict from one saved with torch.nn.utils.prune (weight_orig * weight_mask)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("_mask") and key[:-5] + "_orig" in state:
            continue
        if key.endswith("_orig") and key[:-5] + "_mask" in state:
            out[key[:-5]] = value * state[key[:-5] + "_mask"]
        else:
            out[key] = value
    return out


def load_trained(run_dir: str | Path, *, splits: Splits | None = None,
                 source: DataSource | None = None,
                 cancel: threading.Event | None = None) -> TrainedRun:
    """The run's trained network and data (`splits`, else from `source`, the workspace);
    RunError saying what is missing or broken."""
    path = Path(run_dir)
    if not (path / "spec.json").is_file():
        raise RunError(f"{path} is not a run folder (no spec.json)")
    run = Run(path)
    if not (path / "model.pt").is_file():
        raise RunError(f"{path} has no trained weights (model.pt); the run is {_status(run)}: "
                       "only a run that finished or was stopped after saving has a model")
    spec = run.spec()
    loaded = run.load_model_state()
    if not isinstance(loaded, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()):
        raise RunError(f"{path / 'model.pt'}: damaged (not a table of named weights)")
    state = fold_masks(loaded)
    try:
        splits = splits or load_from(source, spec.data, spec.train.seed, cancel=cancel)
        kept = _reading_trained(run, splits)
        if kept is not None:  # an "auto" target the run read otherwise (an older rule)
            spec = spec.with_value("data.target", kept)
            splits = load_from(source, spec.data, spec.train.seed, cancel=cancel)
    except DataError as exc:
        raise RunError(f"cannot load the run's data: {exc}") from exc
    info = splits.info
    try:
        check(spec.model.layers, info.input_shape, info.num_classes, target=info.target)
    except SpecError as exc:
        raise RunError(f"the run's network does not fit its data: {exc}") from exc
    model = build_to_load(spec.model.layers, info.input_shape)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunError(f"{path / 'model.pt'} does not match the run's spec: "
                       f"{str(exc).splitlines()[0]}") from exc
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise RunError(f"the weights of {bad[0]} are not finite (NaN or infinity); "
                       "the run diverged")
    return TrainedRun(run, spec, model.eval(), splits)


def _reading_trained(run: Run, splits: Splits) -> str | None:
    """How the run read its CSV's "auto" target when that is not how it reads now ("category"
    or "quantity", from what its summary holds), else None. Before `data.target`, a column of
    more than 20 distinct whole numbers was read as classes; such runs keep that reading."""
    target = splits.info.target
    if target is None or target.declared != "auto":
        return None
    try:
        summary = run.summary()
    except RunError:
        return None
    trained = ("category" if summary.get("class_names") else
               "quantity" if summary.get("test_mse") is not None else None)
    return trained if trained not in (None, target.kind) else None


def _status(run: Run) -> str:
    try:
        summary = run.summary()
    except RunError:
        return "damaged"
    status = str(summary.get("status", "unknown"))
    if summary.get("error"):
        status += f" ({summary['error']})"
    return status


__all__ = ["TrainedRun", "fold_masks", "load_trained"]
