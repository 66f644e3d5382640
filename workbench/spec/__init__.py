"""The experiment spec: the one document the GUI edits, the trainer runs and every run stores.

Plain dataclasses with a lossless JSON round trip. `validate` checks values that need no
dataset (types, ranges, names); shape checks against the dataset live in `core.model`.
Every error names the field (`model.layers[3].out`) and says why, so a person can fix it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.spec.checks import SpecError, check_choice, check_int, check_number
from workbench.spec.datasets import DATASETS
from workbench.spec.layers import validate_layer

SPEC_VERSION = 1

OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "exponential", "inv_sqrt", "cosine", "plateau")
PRECISIONS = ("fp32", "bf16")


@dataclass
class AugmentSpec:
    hflip: bool = False
    crop_pad: int = 0
    noise_std: float = 0.0

    @property
    def active(self) -> bool:
        return self.hflip or self.crop_pad > 0 or self.noise_std > 0


@dataclass
class DataSpec:
    """Which data; generated sets use `samples`, `noise`; files use `root` or `path`."""

    name: str = "moons"
    root: str | None = None
    path: str | None = None
    label_column: str | None = None
    samples: int = 1000
    noise: float = 0.2
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    augment: AugmentSpec = field(default_factory=AugmentSpec)


@dataclass
class LayerSpec:
    """One layer: its catalogue type and its parameters (missing ones take the defaults)."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str) -> LayerSpec:
        if not isinstance(d, dict):
            raise SpecError(path, f"must be an object like {{\"type\": \"Linear\"}}, got {d!r}")
        if "type" not in d:
            raise SpecError(f"{path}.type", "missing")
        params = {k: v for k, v in d.items() if k != "type"}
        return cls(type=d["type"], params=params)


@dataclass
class ModelSpec:
    layers: list[LayerSpec] = field(default_factory=list)


@dataclass
class OptimSpec:
    name: str = "adam"
    lr: float = 0.001
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    alpha: float = 0.99
    weight_decay: float = 0.0


@dataclass
class ScheduleSpec:
    """Learning rate per epoch; `warmup_epochs` ramps linearly per step before it."""

    name: str = "constant"
    step_size: int = 10
    gamma: float = 0.5
    decay: float = 1.0
    min_lr: float = 0.0
    patience: int = 3
    factor: float = 0.5
    warmup_epochs: float = 0.0


@dataclass
class RegularizationSpec:
    l1: float = 0.0
    l2: float = 0.0
    grad_clip: float | None = None
    early_stop_patience: int | None = None
    early_stop_min_delta: float = 0.0


@dataclass
class TrainSpec:
    epochs: int = 5
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    cuda_graph: bool = True


@dataclass
class ExperimentSpec:
    version: int = SPEC_VERSION
    name: str = "experiment"
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    regularization: RegularizationSpec = field(default_factory=RegularizationSpec)
    train: TrainSpec = field(default_factory=TrainSpec)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = {"layers": [layer.to_dict() for layer in self.model.layers]}
        d["optim"]["betas"] = list(self.optim.betas)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def copy(self) -> ExperimentSpec:
        return copy.deepcopy(self)

    def with_value(self, dotted: str, value: Any) -> ExperimentSpec:
        """A copy with one field set by its dotted path (`optim.lr`), validated."""
        d = self.to_dict()
        keys = dotted.split(".")
        node = d
        for key in keys[:-1]:
            if not isinstance(node, dict) or key not in node:
                raise SpecError(dotted, "no such field")
            node = node[key]
        if not isinstance(node, dict) or keys[-1] not in node:
            raise SpecError(dotted, "no such field")
        node[keys[-1]] = value
        return from_dict(d)


_SECTIONS: dict[str, type] = {
    "data": DataSpec,
    "optim": OptimSpec,
    "schedule": ScheduleSpec,
    "regularization": RegularizationSpec,
    "train": TrainSpec,
}


def _section(cls: type, raw: Any, path: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SpecError(path, f"must be an object, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SpecError(f"{path}.{unknown[0]}", f"unknown field (known: {', '.join(known)})")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if cls is DataSpec and name == "augment":
            value = _section(AugmentSpec, value, f"{path}.augment")
        elif cls is OptimSpec and name == "betas":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise SpecError(f"{path}.betas", f"must be two numbers, got {value!r}")
            value = (value[0], value[1])
        values[name] = value
    return cls(**values)


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older spec document up to SPEC_VERSION (version 0: no `version`, `lr` at top)."""
    raw = copy.deepcopy(raw)
    version = raw.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise SpecError("version", f"must be an integer, got {version!r}")
    if version > SPEC_VERSION:
        raise SpecError(
            "version", f"{version} is newer than this Workbench understands ({SPEC_VERSION})"
        )
    if version == 0:
        optim = raw.setdefault("optim", {})
        for key in ("lr", "optimizer"):
            if key in raw:
                optim["name" if key == "optimizer" else key] = raw.pop(key)
        if isinstance(raw.get("model"), list):
            raw["model"] = {"layers": raw["model"]}
        raw["version"] = 1
    return raw


def from_dict(raw: Any) -> ExperimentSpec:
    """Parse and validate a spec document; raises SpecError naming the field."""
    if not isinstance(raw, dict):
        raise SpecError("", f"a spec must be a JSON object, got {type(raw).__name__}")
    raw = migrate(raw)
    known = {"version", "name", "model", *_SECTIONS}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(unknown[0], f"unknown section (known: {', '.join(sorted(known))})")
    model_raw = raw.get("model", {"layers": []})
    if not isinstance(model_raw, dict) or not isinstance(model_raw.get("layers", []), list):
        raise SpecError("model.layers", "must be a list of layers")
    layers = [
        LayerSpec.from_dict(layer, f"model.layers[{i}]")
        for i, layer in enumerate(model_raw.get("layers", []))
    ]
    name = raw.get("name", "experiment")
    if not isinstance(name, str):
        raise SpecError("name", f"must be text, got {name!r}")
    spec = ExperimentSpec(
        version=raw["version"],
        name=name,
        model=ModelSpec(layers=layers),
        **{key: _section(cls, raw.get(key), key) for key, cls in _SECTIONS.items()},
    )
    validate(spec)
    return spec


def from_json(text: str) -> ExperimentSpec:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise SpecError("", f"not valid JSON ({where}): {exc.msg}") from None
    return from_dict(raw)


def load(path: str | Path) -> ExperimentSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError("", f"cannot read {path}: {exc.strerror or exc}") from exc
    return from_json(text)


# --- validation -------------------------------------------------------------------------


def validate(spec: ExperimentSpec) -> None:
    """Check every value that needs no dataset; raise SpecError on the first bad one."""
    d = spec.data
    check_choice("data.name", d.name, tuple(DATASETS))
    for key in ("root", "path", "label_column"):
        value = getattr(d, key)
        if value is not None and not isinstance(value, str):
            raise SpecError(f"data.{key}", f"must be text or null, got {value!r}")
    check_int("data.samples", d.samples, lo=10, what="an integer >= 10")
    check_number("data.noise", d.noise, lo=0)
    check_number("data.val_fraction", d.val_fraction, lo=0, hi=0.9)
    check_number("data.test_fraction", d.test_fraction, lo=0, hi=0.9)
    if d.val_fraction + d.test_fraction >= 0.95:
        raise SpecError("data.val_fraction",
                        "validation and test together must leave data to train on")
    a = d.augment
    if not isinstance(a.hflip, bool):
        raise SpecError("data.augment.hflip", f"must be true or false, got {a.hflip!r}")
    check_int("data.augment.crop_pad", a.crop_pad, lo=0, what="an integer >= 0")
    check_number("data.augment.noise_std", a.noise_std, lo=0)
    if DATASETS[d.name].needs_path and not d.path:
        raise SpecError("data.path", f"the {d.name} dataset needs a file or folder")

    for i, layer in enumerate(spec.model.layers):
        validate_layer(layer, f"model.layers[{i}]")

    o = spec.optim
    check_choice("optim.name", o.name, OPTIMIZERS)
    check_number("optim.lr", o.lr, lo=0, lo_open=True)
    check_number("optim.momentum", o.momentum, lo=0, hi=1, hi_open=True)
    for i, beta in enumerate(o.betas):
        check_number(f"optim.betas[{i}]", beta, lo=0, hi=1, hi_open=True)
    check_number("optim.eps", o.eps, lo=0, lo_open=True)
    check_number("optim.alpha", o.alpha, lo=0, hi=1)
    check_number("optim.weight_decay", o.weight_decay, lo=0)

    s = spec.schedule
    check_choice("schedule.name", s.name, SCHEDULES)
    check_int("schedule.step_size", s.step_size, lo=1, what="an integer >= 1")
    check_number("schedule.gamma", s.gamma, lo=0, hi=1, lo_open=True)
    check_number("schedule.decay", s.decay, lo=0)
    check_number("schedule.min_lr", s.min_lr, lo=0)
    check_int("schedule.patience", s.patience, lo=0, what="an integer >= 0")
    check_number("schedule.factor", s.factor, lo=0, hi=1, lo_open=True, hi_open=True)
    check_number("schedule.warmup_epochs", s.warmup_epochs, lo=0)

    r = spec.regularization
    check_number("regularization.l1", r.l1, lo=0)
    check_number("regularization.l2", r.l2, lo=0)
    if r.grad_clip is not None:
        check_number("regularization.grad_clip", r.grad_clip, lo=0, lo_open=True)
    if r.early_stop_patience is not None:
        check_int("regularization.early_stop_patience", r.early_stop_patience, lo=1,
                  what="an integer >= 1 or null")
    check_number("regularization.early_stop_min_delta", r.early_stop_min_delta, lo=0)

    t = spec.train
    check_int("train.epochs", t.epochs, lo=1, what="a positive integer")
    check_int("train.batch_size", t.batch_size, lo=1, what="a positive integer")
    check_int("train.seed", t.seed, lo=0, what="an integer >= 0")
    if not isinstance(t.device, str) or not (
        t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:")
    ):
        raise SpecError("train.device", f"must be auto, cpu, cuda or cuda:N, got {t.device!r}")
    check_choice("train.precision", t.precision, PRECISIONS)
    for key in ("channels_last", "cuda_graph"):
        if not isinstance(getattr(t, key), bool):
            raise SpecError(f"train.{key}", f"must be true or false, got {getattr(t, key)!r}")


__all__ = [
    "SPEC_VERSION",
    "AugmentSpec",
    "DataSpec",
    "ExperimentSpec",
    "LayerSpec",
    "ModelSpec",
    "OptimSpec",
    "RegularizationSpec",
    "ScheduleSpec",
    "SpecError",
    "TrainSpec",
    "check_choice",
    "check_int",
    "check_number",
    "from_dict",
    "from_json",
    "load",
    "validate",
]
