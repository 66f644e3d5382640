"""The experiment spec: the one document the GUI edits, the trainer runs and every run stores.

Plain dataclasses with a lossless JSON round trip. `validate` checks values that need no
dataset (types, ranges, names); shape checks against the dataset live in `core.model`.
Every error names the field (`model.layers[3].out`) and says why, so a person can fix it.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.spec.checks import (
    Bound,
    SpecError,
    check_choice,
    check_int,
    check_number,
    check_text,
    key_name,
    show,
)
from workbench.spec.datasets import DATASETS, TARGETS
from workbench.spec.jsonfile import JSONFileError, check_depth, parse_json, read_json
from workbench.spec.layers import MAX_LAYERS, layer_name, validate_layer

SPEC_VERSION = 1

# The optimizers and schedules a spec can name, with the titles the app shows for them.
OPTIMIZER_TITLES = {
    "gd": "Gradient descent (full batch)",
    "sgd": "SGD",
    "momentum": "SGD with momentum",
    "nesterov": "Nesterov momentum",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
}
SCHEDULE_TITLES = {
    "constant": "Constant",
    "step": "Step",
    "exponential": "Exponential",
    "inv_sqrt": "1 / √(1 + d·epoch)",
    "cosine": "Cosine",
    "plateau": "Reduce on plateau",
}
OPTIMIZERS = tuple(OPTIMIZER_TITLES)
SCHEDULES = tuple(SCHEDULE_TITLES)
PRECISIONS = ("fp32", "bf16")

# The bound of every number in a spec, by its dotted path (`optim.betas` bounds each beta).
# The validator checks them and the app's editors take their ranges from them. Every bound is
# closed, with ends an editor can show (no "above 0"), so that what the app can show is
# exactly what the validator accepts.
BOUNDS: dict[str, Bound] = {
    "data.samples": Bound(10, 1_000_000, integer=True),
    "data.noise": Bound(0, 10),
    "data.val_fraction": Bound(0, 0.9),
    "data.test_fraction": Bound(0, 0.9),
    "data.augment.crop_pad": Bound(0, 16, integer=True),
    "data.augment.noise_std": Bound(0, 10),
    # Rates up to a million: a diverging run is a lesson the app teaches, not a crash.
    "optim.lr": Bound(1e-12, 1e6),
    "optim.momentum": Bound(0, 0.999),
    "optim.betas": Bound(0, 0.9999),
    "optim.eps": Bound(1e-12, 1),
    "optim.alpha": Bound(0, 1),
    "optim.weight_decay": Bound(0, 10),
    "schedule.step_size": Bound(1, 100_000, integer=True),
    "schedule.gamma": Bound(0.001, 1),
    "schedule.decay": Bound(0, 1_000),
    "schedule.min_lr": Bound(0, 1e6),
    "schedule.patience": Bound(0, 10_000, integer=True),
    "schedule.factor": Bound(0.01, 0.99),
    "schedule.warmup_epochs": Bound(0, 10_000),
    "regularization.l1": Bound(0, 10),
    "regularization.l2": Bound(0, 10),
    "regularization.grad_clip": Bound(0.001, 1e6),
    "regularization.early_stop_patience": Bound(1, 10_000, integer=True),
    "regularization.early_stop_min_delta": Bound(0, 1_000),
    "train.epochs": Bound(1, 100_000, integer=True),
    "train.batch_size": Bound(1, 1_000_000, integer=True),
    "train.seed": Bound(0, 2**31 - 1, integer=True),  # what a spin box holds; numpy and torch too
    "train.threads": Bound(1, 1_024, integer=True),  # null: automatic (core/training/threads.py)
    "train.checkpoint_every": Bound(0, 100_000, integer=True),  # 0: no epoch checkpoints
    "train.keep_checkpoints": Bound(1, 100_000, integer=True),  # or null: all of them
}
MAX_NAME = 200  # characters of the experiment's name
MAX_PATH = 4_096  # characters of a file or folder name
MAX_SPEC_BYTES = 1 << 20  # a spec of a thousand layers is under 100 KB
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda|cuda:(0|[1-9][0-9]{0,3})")


def check_name(value: Any, path: str = "name") -> None:
    """An experiment's name, as the Runs list shows it: text of at most MAX_NAME characters,
    not blank, on one line. Path separators are fine: a run folder takes a file-safe form."""
    check_text(path, value, max_length=MAX_NAME)
    if not value.strip():
        raise SpecError(path, "must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise SpecError(path, "must be one line, without control characters (a tab, a line "
                              "break)")


def derived_name(base: str, suffix: str) -> str:
    """The name of a run made from another (`spirals-pruned`, `spirals fork@3`): the base cut
    short so that the whole stays within MAX_NAME, as the reader will demand."""
    return (base[:max(1, MAX_NAME - len(suffix))].rstrip() + suffix)[:MAX_NAME]


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
    """Which data; generated sets use `samples`, `noise`; files use `root` or `path`.

    `target` says how a CSV's label column is meant: "quantity" (regression), "category"
    (classes) or "auto" (guessed from its values); specs from before it have "auto"."""

    name: str = "moons"
    root: str | None = None
    path: str | None = None
    label_column: str | None = None
    target: str = "auto"
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
    def from_dict(cls, d: dict[str, Any], index: int) -> LayerSpec:
        """Layer `index` of a spec document."""
        path = f"model.layers[{index}]"
        if not isinstance(d, dict):
            raise SpecError(path, f"must be an object like {{\"type\": \"Linear\"}}, "
                                  f"got {show(d)}", layer_name(index, None))
        if "type" not in d:
            raise SpecError(f"{path}.type", "missing", layer_name(index, None))
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
    threads: int | None = None  # CPU threads for PyTorch; None: the physical cores but one
    # Epoch checkpoints a run can be forked from: every this many epochs (0: none), of which
    # the newest `keep_checkpoints` are kept (null: all). Specs without them get these defaults.
    checkpoint_every: int = 1
    keep_checkpoints: int | None = None


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
        raise SpecError(f"{path}.{key_name(unknown[0])}",
                        f"unknown field (known: {', '.join(known)})")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if cls is DataSpec and name == "augment":
            value = _section(AugmentSpec, value, f"{path}.augment")
        elif cls is OptimSpec and name == "betas":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise SpecError(f"{path}.betas", f"must be two numbers, got {show(value)}")
            value = (value[0], value[1])
        values[name] = value
    return cls(**values)


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older spec document up to SPEC_VERSION (version 0: no `version`, `lr` at top)."""
    raw = copy.deepcopy(raw)
    version = raw.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SpecError("version", f"must be a whole number from 0 to {SPEC_VERSION}, "
                                   f"got {show(version)}")
    if version > SPEC_VERSION:
        raise SpecError(
            "version", f"{show(version)} is newer than this Workbench understands ({SPEC_VERSION})"
        )
    if version == 0:
        optim = raw.setdefault("optim", {})
        if not isinstance(optim, dict):
            raise SpecError("optim", f"must be an object, got {type(optim).__name__}")
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
    try:
        check_depth(raw)
    except JSONFileError as exc:
        raise SpecError("", str(exc)) from None
    raw = migrate(raw)
    known = {"version", "name", "model", *_SECTIONS}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(key_name(unknown[0]),
                        f"unknown section (known: {', '.join(sorted(known))})")
    model_raw = raw.get("model", {"layers": []})
    if not isinstance(model_raw, dict) or not isinstance(model_raw.get("layers", []), list):
        raise SpecError("model.layers", "must be a list of layers")
    extra = sorted(set(model_raw) - {"layers"})
    if extra:
        raise SpecError(f"model.{key_name(extra[0])}", "unknown field (known: layers)")
    if len(model_raw.get("layers", [])) > MAX_LAYERS:
        raise SpecError("model.layers", f"must hold at most {MAX_LAYERS:,} layers, "
                                        f"got {len(model_raw['layers']):,}")
    layers = [
        LayerSpec.from_dict(layer, i)
        for i, layer in enumerate(model_raw.get("layers", []))
    ]
    name = raw.get("name", "experiment")
    check_name(name)
    spec = ExperimentSpec(
        version=raw["version"],
        name=name,
        model=ModelSpec(layers=layers),
        **{key: _section(cls, raw.get(key), key) for key, cls in _SECTIONS.items()},
    )
    validate(spec)
    return spec



def from_json(text: str | bytes) -> ExperimentSpec:
    try:
        raw = parse_json(text)
    except JSONFileError as exc:
        raise SpecError("", str(exc)) from None
    return from_dict(raw)


def load(path: str | Path) -> ExperimentSpec:
    """Read and validate a spec file; every problem with the file is one SpecError."""
    try:
        raw = read_json(path, max_bytes=MAX_SPEC_BYTES)
    except JSONFileError as exc:
        raise SpecError("", str(exc)) from None
    return from_dict(raw)


# --- validation -------------------------------------------------------------------------

def _check(path: str, value: Any) -> None:
    BOUNDS[path].check(path, value)


def check_device(path: str, value: Any) -> None:
    """auto, cpu, cuda or cuda:N; whether the machine has that GPU is known only at run time."""
    if not isinstance(value, str) or not DEVICE_PATTERN.fullmatch(value):
        raise SpecError(path, f"must be auto, cpu, cuda or cuda:N (N a GPU number), "
                              f"got {show(value)}")


def _check_bool(path: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise SpecError(path, f"must be true or false, got {show(value)}")


def validate(spec: ExperimentSpec) -> None:
    """Check every value that needs no dataset; raise SpecError on the first bad one."""
    check_name(spec.name)
    d = spec.data
    check_choice("data.name", d.name, tuple(DATASETS))
    for key in ("root", "path", "label_column"):
        check_text(f"data.{key}", getattr(d, key), max_length=MAX_PATH, optional=True)
    check_choice("data.target", d.target, TARGETS)
    if d.target != "auto" and d.name != "csv":
        raise SpecError("data.target", f"only a CSV file's target can be declared; "
                                       f"{d.name}'s is fixed: set it to auto")
    for key in ("samples", "noise", "val_fraction", "test_fraction"):
        _check(f"data.{key}", getattr(d, key))
    if d.val_fraction + d.test_fraction >= 0.95:
        raise SpecError("data.val_fraction",
                        "validation and test together must leave data to train on")
    a = d.augment
    _check_bool("data.augment.hflip", a.hflip)
    _check("data.augment.crop_pad", a.crop_pad)
    _check("data.augment.noise_std", a.noise_std)
    if DATASETS[d.name].needs_path and not d.path:
        raise SpecError("data.path", f"the {d.name} dataset needs a file or folder")

    if len(spec.model.layers) > MAX_LAYERS:
        raise SpecError("model.layers", f"must hold at most {MAX_LAYERS:,} layers, "
                                        f"got {len(spec.model.layers):,}")
    for i, layer in enumerate(spec.model.layers):
        validate_layer(layer, i)

    o = spec.optim
    check_choice("optim.name", o.name, OPTIMIZERS)
    for key in ("lr", "momentum", "eps", "alpha", "weight_decay"):
        _check(f"optim.{key}", getattr(o, key))
    for i, beta in enumerate(o.betas):
        BOUNDS["optim.betas"].check(f"optim.betas[{i}]", beta)
    if o.name == "nesterov" and o.momentum == 0:
        raise SpecError("optim.momentum", "Nesterov momentum needs a momentum above 0 "
                                          "(with 0 it is plain SGD: pick sgd)")
    if o.name == "momentum" and o.momentum == 0:
        raise SpecError("optim.momentum", "SGD with momentum 0 is plain SGD: pick sgd, "
                                          "or set a momentum above 0")

    s = spec.schedule
    check_choice("schedule.name", s.name, SCHEDULES)
    for key in ("step_size", "gamma", "decay", "min_lr", "patience", "factor", "warmup_epochs"):
        _check(f"schedule.{key}", getattr(s, key))

    r = spec.regularization
    for key in ("l1", "l2", "early_stop_min_delta"):
        _check(f"regularization.{key}", getattr(r, key))
    for key in ("grad_clip", "early_stop_patience"):
        if getattr(r, key) is not None:
            _check(f"regularization.{key}", getattr(r, key))
    if d.val_fraction == 0:
        watcher = ("regularization.early_stop_patience" if r.early_stop_patience is not None
                   else "schedule.name" if s.name == "plateau" else None)
        if watcher is not None:
            what = "early stopping" if watcher.startswith("reg") else "reduce-on-plateau"
            raise SpecError(watcher, f"{what} watches the validation loss, but "
                                     "data.val_fraction is 0 (no validation data): set a "
                                     f"validation fraction or turn {what} off")

    t = spec.train
    for key in ("epochs", "batch_size", "seed"):
        _check(f"train.{key}", getattr(t, key))
    check_device("train.device", t.device)
    check_choice("train.precision", t.precision, PRECISIONS)
    for key in ("channels_last", "cuda_graph"):
        _check_bool(f"train.{key}", getattr(t, key))
    if t.threads is not None:
        _check("train.threads", t.threads)
    _check("train.checkpoint_every", t.checkpoint_every)
    if t.keep_checkpoints is not None:
        _check("train.keep_checkpoints", t.keep_checkpoints)


__all__ = [
    "BOUNDS",
    "MAX_NAME",
    "MAX_PATH",
    "SPEC_VERSION",
    "AugmentSpec",
    "Bound",
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
    "check_device",
    "check_int",
    "check_name",
    "check_number",
    "check_text",
    "derived_name",
    "from_dict",
    "from_json",
    "load",
    "validate",
]
