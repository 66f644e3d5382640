"""Comparisons: several variants of one experiment raced fairly, their curves and a results table.

A fair race: every variant is trained from the same initial weights, on the same loaded data,
in the same batch order (the trainer seeds its shuffle from `train.seed`). Data and weights
are built once per distinct (data, seed) and (model, data, seed) and handed to each Trainer.
A variant that diverges ends with `RunFailed`; it is marked diverged and the others go on.

`run_comparison` is a generator of `(variant index, event)` so the GUI and the CLI drive it
the same way. A comparison is saved as JSON under `<runs root>/comparisons/` and reopens from
the stored runs' metrics.
"""

from __future__ import annotations

import itertools
import json
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench import spec as specmod
from workbench.core.data.cache import DataSource, load_from, spec_key
from workbench.core.store.atomic import write_text_atomic
from workbench.core.store.runs import Run, RunError, RunStore
from workbench.core.training.callbacks import NAN_HINT, Callback
from workbench.core.training.events import (
    EpochEnded,
    Event,
    Progress,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.spec import ExperimentSpec, SpecError
from workbench.spec.jsonfile import JSONFileError, parse_json, read_json

COMPARISON_VERSION = 1
MAX_COMPARISON_BYTES = 16 << 20  # each variant holds its spec: thousands of variants fit
TRAIL_MAX_BYTES = 256 * 2**20  # weight snapshots kept per run for the loss landscape
# A run whose final training loss is this many times its starting loss counts as diverged,
# even when it stayed finite (the NaN guard marks the non-finite ones).
DIVERGED_FACTOR = 10.0

# Fields a person most often varies, with values to start from (the GUI offers these).
COMMON_FIELDS: dict[str, str] = {
    "optim.name": "sgd, momentum, adam, rmsprop",
    "optim.lr": "0.1, 0.01, 0.001",
    "train.batch_size": "16, 64, 256",
    "schedule.name": "constant, step, cosine",
    "regularization.l2": "0, 0.0001, 0.001",
    "model.dropout": "0, 0.2, 0.5",
    "optim.momentum": "0.5, 0.9, 0.99",
    "optim.weight_decay": "0, 0.0001, 0.01",
    "train.epochs": "5, 10, 20",
    "train.seed": "0, 1, 2",
}

# A sensible learning rate per optimizer, for variants that name no rate of their own.
DEFAULT_LR: dict[str, float] = {
    "gd": 0.1, "sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adam": 1e-3, "adamw": 1e-3,
    "rmsprop": 1e-3, "adagrad": 0.01,
}


# -- variants --------------------------------------------------------------------------------


@dataclass
class Variant:
    """One contestant: a label, the spec it runs, and its run folder once it has run."""

    label: str
    spec: ExperimentSpec
    run_dir: str | None = None


@dataclass
class Comparison:
    name: str
    variants: list[Variant] = field(default_factory=list)
    target_accuracy: float = 0.9

    def add_run(self, run_dir: str | Path, label: str | None = None) -> Variant:
        """Add a stored run (already trained) to the comparison; RunError if unreadable."""
        run = Run(Path(run_dir))
        spec = run.spec()
        if label is None:
            label = f"{spec.optim.name} lr={spec.optim.lr:g} ({run.path.name[:15]})"
        variant = Variant(unique_label(label, [v.label for v in self.variants]), spec,
                          str(run.path))
        self.variants.append(variant)
        return variant

    def pending(self) -> list[int]:
        """Indices of the variants not yet run."""
        return [i for i, v in enumerate(self.variants) if v.run_dir is None]

    def to_dict(self) -> dict[str, Any]:
        return {"version": COMPARISON_VERSION, "name": self.name,
                "target_accuracy": self.target_accuracy,
                "variants": [{"label": v.label, "spec": v.spec.to_dict(), "run_dir": v.run_dir}
                             for v in self.variants]}

    @classmethod
    def from_dict(cls, raw: Any) -> Comparison:
        """Parse a saved comparison; SpecError names the bad field."""
        if not isinstance(raw, dict) or not isinstance(raw.get("variants"), list):
            raise SpecError("variants", "a comparison must be an object with a variants list")
        version = raw.get("version", COMPARISON_VERSION)
        if not isinstance(version, int) or version > COMPARISON_VERSION:
            raise SpecError("version", f"unsupported comparison version {version!r}")
        variants = []
        for i, item in enumerate(raw["variants"]):
            if not isinstance(item, dict) or not isinstance(item.get("label"), str):
                raise SpecError(f"variants[{i}]", "needs a label and a spec")
            try:
                spec = specmod.from_dict(item.get("spec"))
            except SpecError as exc:
                where = f"variants[{i}].spec" + (f".{exc.path}" if exc.path else "")
                raise SpecError(where, exc.reason) from None
            run_dir = item.get("run_dir")
            specmod.check_text(f"variants[{i}].run_dir", run_dir, max_length=specmod.MAX_PATH,
                               optional=True)
            specmod.check_text(f"variants[{i}].label", item["label"],
                               max_length=specmod.MAX_NAME)
            variants.append(Variant(item["label"], spec, run_dir if run_dir else None))
        target = raw.get("target_accuracy", 0.9)
        specmod.check_number("target_accuracy", target, lo=0, hi=1)
        name = raw.get("name", "comparison")
        specmod.check_text("name", name, max_length=specmod.MAX_NAME)
        return cls(name, variants, float(target))


def unique_label(label: str, taken: Sequence[str]) -> str:
    if label not in taken:
        return label
    n = 2
    while f"{label} #{n}" in taken:
        n += 1
    return f"{label} #{n}"


_INDEXED = re.compile(r"^(\w+)\[(\d+)\]$")


def set_field(spec: ExperimentSpec, path: str, value: Any) -> ExperimentSpec:
    """A validated copy with one field set. Beyond `with_value`'s dotted paths this takes
    `model.layers[3].p` (a layer parameter) and `model.dropout` (every Dropout layer's p)."""
    if path == "model.dropout":
        d = spec.to_dict()
        drops = [layer for layer in d["model"]["layers"] if layer["type"] == "Dropout"]
        if not drops:
            raise SpecError(path, "the network has no Dropout layer to vary")
        for layer in drops:
            layer["p"] = value
        return _parse_at(d, path)
    if "[" not in path:
        return spec.with_value(path, value)
    d = spec.to_dict()
    node: Any = d
    keys = path.split(".")
    for key in keys[:-1]:
        m = _INDEXED.match(key)
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
        raise SpecError(exc.path or path, exc.reason) from None


def _short(path: str, value: Any) -> str:
    if path == "optim.name":
        return str(value)
    last = path.rsplit(".", 1)[-1]
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{last}={shown}"


def grid(spec: ExperimentSpec, axes: Mapping[str, Sequence[Any]],
         overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[Variant]:
    """Every combination of the axes' values, as variants of `spec`.

    `overrides` maps a value (as text, e.g. "adam") to fields set whenever that value is
    chosen, so each optimizer keeps its own hyperparameters: {"adam": {"optim.lr": 1e-3}}.
    An optimizer without an override of its rate gets `DEFAULT_LR`, unless the rate is itself
    an axis. The axes' own values win over overrides. Raises SpecError naming the field.
    """
    if not axes:
        raise SpecError("vary", "name at least one field to vary")
    for path, values in axes.items():
        if not values:
            raise SpecError(path, "give at least one value to try")
    overrides = overrides or {}
    paths = list(axes)
    variants: list[Variant] = []
    for combo in itertools.product(*(axes[p] for p in paths)):
        current = spec
        for path, value in zip(paths, combo, strict=True):
            extra = dict(overrides.get(str(value), {}))
            own_lr = "optim.lr" in axes or "optim.lr" in extra or value == spec.optim.name
            if path == "optim.name" and not own_lr and value in DEFAULT_LR:
                extra["optim.lr"] = DEFAULT_LR[value]
            for opath, ovalue in extra.items():
                if opath not in axes:
                    current = set_field(current, opath, ovalue)
        for path, value in zip(paths, combo, strict=True):
            current = set_field(current, path, value)
        label = " ".join(_short(p, v) for p, v in zip(paths, combo, strict=True))
        label = unique_label(label, [v.label for v in variants])
        current = current.with_value("name", f"{spec.name} [{label}]")
        variants.append(Variant(label, current))
    return variants


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (0.1, 64, true, null), else plain text."""
    text = text.strip()
    try:
        return parse_json(text)
    except JSONFileError:  # plain text; the spec's validation says what is wrong with it
        return text


def parse_vary(text: str) -> tuple[str, list[Any], dict[str, dict[str, Any]]]:
    """`optim.name=sgd,adam:lr=0.001:betas=[0.9,0.99]` -> (path, values, per-value overrides).

    An override key without a dot is a sibling of the varied field (`lr` -> `optim.lr`).
    """
    if "=" not in text:
        raise SpecError("vary", f"expected FIELD=V1,V2,..., got {text!r}")
    path, _, rest = text.partition("=")
    path = path.strip()
    section = path.rsplit(".", 1)[0] if "." in path else ""
    values: list[Any] = []
    overrides: dict[str, dict[str, Any]] = {}
    for token in _split_top(rest, ","):
        parts = _split_top(token, ":")
        value = parse_value(parts[0])
        if parts[0].strip() == "":
            raise SpecError(path, f"an empty value in {text!r}")
        values.append(value)
        for part in parts[1:]:
            key, eq, raw = part.partition("=")
            if not eq:
                raise SpecError(path, f"override {part!r} must be FIELD=VALUE")
            key = key.strip()
            full = key if "." in key or not section else f"{section}.{key}"
            overrides.setdefault(str(value), {})[full] = parse_value(raw)
    return path, values, overrides


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside brackets, so `[0.9,0.99]` stays one value."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


# -- callbacks the runner adds -------------------------------------------------------------


@dataclass(frozen=True)
class FairStart:
    """Emitted after RunStarted: the loss of the initial weights on the first training batch."""

    first_batch_loss: float


class FirstBatchLoss(Callback):
    """The loss of the initial weights on the first training batch (eval mode, no RNG used).

    Equal across variants exactly when they share weights and batch order: the fairness check.
    It is emitted as `FairStart` and kept in the run's summary.
    """

    def __init__(self) -> None:
        self.value: float | None = None

    @torch.no_grad()
    def on_run_start(self, trainer: Any) -> None:
        gen = trainer.gen
        saved = gen.get_state()
        batches = trainer.train_batches
        perm = torch.randperm(batches.x.shape[0], generator=gen, device=batches.device)
        xb, yb = batches.batch(perm[:trainer.batch_size])
        gen.set_state(saved)
        model = trainer.model
        was_training = model.training
        model.eval()
        try:
            self.value = float(trainer.loss_fn(model(xb).float(), yb))
        finally:
            model.train(was_training)
        trainer.emit(FairStart(self.value))
        if trainer.run is not None:
            trainer.run.update_summary(first_batch_loss=self.value)


class WeightTrail(Callback):
    """Flattened weights at the start and after every epoch, for the loss landscape.

    Kept in memory and written to `trail.pt` in the run folder, so a reopened comparison can
    draw its paths too. Skipped for models too large to keep cheaply.
    """

    def __init__(self) -> None:
        self.points: list[torch.Tensor] = []
        self.epochs: list[int] = []
        self.enabled = True

    def _snap(self, trainer: Any, epoch: int) -> None:
        if not self.enabled:
            return
        params = [p.detach() for p in trainer.model.parameters()]
        n = sum(p.numel() for p in params)
        if 4 * n * (trainer.spec.train.epochs + 1) > TRAIL_MAX_BYTES:
            self.enabled = False
            self.points.clear()
            return
        self.points.append(torch.cat([p.reshape(-1).float().cpu() for p in params]))
        self.epochs.append(epoch)

    def on_run_start(self, trainer: Any) -> None:
        self._snap(trainer, 0)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self._snap(trainer, int(record["epoch"]))

    def on_run_end(self, trainer: Any) -> None:
        if self.points and trainer.run is not None:
            trainer.run.save_state("trail.pt", {"epochs": list(self.epochs),
                                                "weights": torch.stack(self.points)})


def load_trail(run_dir: str | Path) -> tuple[list[int], torch.Tensor] | None:
    """(epochs, (T, P) weights) saved by WeightTrail, or None when the run kept none."""
    path = Path(run_dir) / "trail.pt"
    if not path.exists():
        return None
    state = Run(Path(run_dir)).load_state("trail.pt")
    return list(state["epochs"]), state["weights"]


# -- running ---------------------------------------------------------------------------------


def is_divergence(event: RunFailed) -> bool:
    return event.hint == NAN_HINT or "non-finite" in event.reason


class ComparisonRunner:
    """Runs a comparison's pending variants fairly; `events()` yields (index, event).

    `side_by_side` > 1 trains that many variants at once on threads (meant for a GPU with
    room for several; on the CPU they would only share the cores). `stop()` from any thread
    stops the variants in flight and starts no more. The data comes from `source` (the
    workspace) when given; the runner holds what its variants use until it is done.
    """

    def __init__(self, comparison: Comparison, runs: RunStore | None = None, *,
                 only: Sequence[int] | None = None, threads: int | None = None,
                 side_by_side: int | str = 1, keep_trails: bool = True,
                 callbacks: Callable[[int, Variant], Sequence[Callback]] | None = None,
                 data_progress: Callable[[str], None] | None = None,
                 source: DataSource | None = None) -> None:
        self.comparison = comparison
        self.runs = runs or RunStore()
        self.source = source
        self.indices = list(only) if only is not None else comparison.pending()
        self.threads = threads
        self.side_by_side = side_by_side
        self.keep_trails = keep_trails
        self.extra_callbacks = callbacks
        self.data_progress = data_progress
        self.trails: dict[int, WeightTrail] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._trainers: dict[int, Any] = {}
        self._data: dict[str, Any] = {}
        self._weights: dict[str, dict[str, torch.Tensor]] = {}

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for trainer in self._trainers.values():
                trainer.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- shared data and weights -----------------------------------------------------------
    def _shared(self, spec: ExperimentSpec) -> tuple[Any, dict[str, torch.Tensor]]:
        """The loaded data and initial weights for this spec, built once and reused."""
        from workbench.core.model import build_model, check

        seed = spec.train.seed
        data_key = json.dumps([spec_key(spec.data), seed])
        if data_key not in self._data:
            if self.data_progress:
                self.data_progress(f"loading {spec.data.name}")
            self._data[data_key] = load_from(self.source, spec.data, seed, cancel=self._stop)
        data = self._data[data_key]
        info = data.info
        weights_key = json.dumps([[layer.to_dict() for layer in spec.model.layers],
                                  list(info.input_shape), seed])
        if weights_key not in self._weights:
            check(spec.model.layers, info.input_shape, info.num_classes)
            torch.manual_seed(seed)
            model = build_model(spec.model.layers, info.input_shape)
            self._weights[weights_key] = {k: v.detach().clone()
                                          for k, v in model.state_dict().items()}
        return data, self._weights[weights_key]

    def _trainer(self, index: int) -> Any:
        from workbench.core.training.loop import Trainer

        variant = self.comparison.variants[index]
        data, weights = self._shared(variant.spec)
        callbacks: list[Callback] = [FirstBatchLoss()]
        if self.keep_trails:
            self.trails[index] = WeightTrail()
            callbacks.append(self.trails[index])
        if self.extra_callbacks is not None:
            callbacks += list(self.extra_callbacks(index, variant))
        return Trainer(variant.spec, runs=self.runs, data=data, initial_state=weights,
                       callbacks=callbacks, threads=self.threads)

    def _events_of(self, index: int) -> Iterator[Event]:
        """One variant's events; a failure to set it up becomes its RunFailed."""
        from workbench.core.data import DataError
        from workbench.core.training.failures import explain

        try:
            trainer = self._trainer(index)
        except (SpecError, DataError, RunError) as exc:
            failure = explain(exc)
            yield RunFailed(None, failure.reason, failure.hint)
            return
        with self._lock:
            self._trainers[index] = trainer
            if self._stop.is_set():
                trainer.stop()
        try:
            for event in trainer.events():
                if isinstance(event, RunStarted):
                    self.comparison.variants[index].run_dir = event.run_dir or None
                elif isinstance(event, RunFailed) and event.run_dir:
                    self.comparison.variants[index].run_dir = event.run_dir
                yield event
        finally:
            with self._lock:
                self._trainers.pop(index, None)

    def events(self) -> Iterator[tuple[int, Event]]:
        width = self._width()
        if width <= 1:
            for index in self.indices:
                if self._stop.is_set():
                    break
                for event in self._events_of(index):
                    yield index, event
            return
        yield from self._parallel(width)

    def _width(self) -> int:
        if self.side_by_side == "auto":
            return auto_side_by_side(self.comparison, self.indices)
        return max(1, int(self.side_by_side))

    def _parallel(self, width: int) -> Iterator[tuple[int, Event]]:
        """Up to `width` variants at once, each on its own thread, events merged in order.

        Data and weights are built first on this thread so the workers only train.
        """
        from workbench.core.data import DataError

        for index in self.indices:
            try:
                self._shared(self.comparison.variants[index].spec)
            except (SpecError, DataError):
                continue  # the variant reports it as its RunFailed when it starts
        done = object()
        out: queue.Queue[tuple[int, Any]] = queue.Queue()

        def work(index: int) -> None:
            try:
                for event in self._events_of(index):
                    out.put((index, event))
            finally:
                out.put((index, done))

        waiting = list(self.indices)
        threads: dict[int, threading.Thread] = {}
        try:
            while waiting or threads:
                while waiting and len(threads) < width and not self._stop.is_set():
                    index = waiting.pop(0)
                    threads[index] = threading.Thread(target=work, args=(index,), daemon=True,
                                                      name=f"compare-{index}")
                    threads[index].start()
                if not threads:
                    break
                index, event = out.get()
                if event is done:
                    threads.pop(index).join()
                else:
                    yield index, event
        finally:
            self.stop()
            for thread in threads.values():
                thread.join()


def run_comparison(comparison: Comparison, runs: RunStore | None = None,
                   **options: Any) -> Iterator[tuple[int, Event]]:
    """Run the pending variants; yields (variant index, event). See ComparisonRunner."""
    return ComparisonRunner(comparison, runs, **options).events()


def auto_side_by_side(comparison: Comparison, indices: Sequence[int], limit: int = 4) -> int:
    """How many variants to train at once: 1 on the CPU; on a GPU as many as fit in half its
    free memory, by a rough estimate (weights, gradients, two optimizer states, activations)."""
    from workbench.core.training.loop import resolve_device

    if not indices:
        return 1
    spec = comparison.variants[indices[0]].spec
    try:
        device = resolve_device(spec.train.device)
    except SpecError:
        return 1
    if device.type != "cuda":
        return 1
    from workbench.core.data import dataset_info
    from workbench.core.model import analyze

    info = dataset_info(spec.data)
    report = analyze(spec.model.layers, info.input_shape, None)
    per_variant = 16 * report.total_params + 64 * spec.train.batch_size * max(
        1, report.total_macs // max(1, report.total_params)) + 256 * 2**20
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(limit, len(indices), int(0.5 * free // per_variant)))


# -- curves and results ----------------------------------------------------------------------

STEP_KEYS = ("global_step", "epoch", "elapsed", "train_loss", "train_accuracy", "lr")
EPOCH_KEYS = ("epoch", "global_step", "elapsed", "train_loss", "train_accuracy", "val_loss",
              "val_accuracy", "lr", "epoch_seconds")


@dataclass
class Curves:
    """What one variant has done so far: step-level and epoch-level series, and its state.

    `steps["epoch"]` is the fractional epoch of each Progress point, so the step curves can
    be drawn against epoch, step or wall-clock time alike.
    """

    steps: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STEP_KEYS})
    epochs: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in EPOCH_KEYS})
    status: str = "pending"  # pending, running, finished, stopped, diverged, failed
    run_dir: str | None = None
    seconds: float | None = None
    reason: str | None = None
    first_batch_loss: float | None = None

    def add(self, event: Any) -> None:
        if isinstance(event, FairStart):
            self.first_batch_loss = event.first_batch_loss
        elif isinstance(event, RunStarted):
            self.status = "running"
            self.run_dir = event.run_dir or None
        elif isinstance(event, Progress):
            values = {"global_step": event.global_step,
                      "epoch": event.epoch + event.step / max(1, event.steps_per_epoch),
                      "elapsed": event.elapsed, "train_loss": event.train_loss,
                      "train_accuracy": _num(event.train_accuracy), "lr": event.lr}
            for key in STEP_KEYS:
                self.steps[key].append(values[key])
        elif isinstance(event, EpochEnded):
            for key in EPOCH_KEYS:
                self.epochs[key].append(_num(getattr(event, key)))
        elif isinstance(event, RunFinished):
            self.status = "stopped" if event.stopped else "finished"
            self.seconds = event.seconds
            self.run_dir = event.run_dir or self.run_dir
        elif isinstance(event, RunFailed):
            self.status = "diverged" if is_divergence(event) else "failed"
            self.reason = event.reason
            self.run_dir = event.run_dir or self.run_dir
            if self.seconds is None:
                elapsed = self.steps["elapsed"] or self.epochs["elapsed"]
                self.seconds = elapsed[-1] if elapsed else 0.0

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Curves:
        """Rebuild the curves of a stored run from its metrics and summary."""
        run = Run(Path(run_dir))
        curves = cls(run_dir=str(run.path))
        for record in run.metrics("step"):
            steps_per_epoch = max(1, int(record.get("steps_per_epoch", 1)))
            record = {**record, "epoch": record.get("epoch", 0)
                      + record.get("step", 0) / steps_per_epoch}
            for key in STEP_KEYS:
                curves.steps[key].append(_num(record.get(key)))
        for record in run.metrics("epoch"):
            for key in EPOCH_KEYS:
                curves.epochs[key].append(_num(record.get(key)))
        try:
            summary = run.summary()
        except RunError:
            summary = {}
        status = summary.get("status", "finished")
        if status == "failed":
            diverged = summary.get("hint") == NAN_HINT or "non-finite" in str(
                summary.get("error", ""))
            curves.status = "diverged" if diverged else "failed"
            curves.reason = summary.get("error")
        else:
            curves.status = status if status in ("finished", "stopped") else "stopped"
        seconds = summary.get("seconds")
        if seconds is None and curves.epochs["elapsed"]:
            seconds = curves.epochs["elapsed"][-1]
        curves.seconds = seconds
        curves.first_batch_loss = summary.get("first_batch_loss")
        return curves


def _num(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)


@dataclass(frozen=True)
class ResultRow:
    label: str
    status: str
    best_val_accuracy: float | None
    final_val_accuracy: float | None
    final_train_loss: float | None
    final_val_loss: float | None
    epochs_to_target: int | None
    seconds_to_target: float | None
    seconds_per_epoch: float | None
    seconds: float | None
    diverged: bool
    first_batch_loss: float | None
    run_dir: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def result_row(label: str, curves: Curves, target: float) -> ResultRow:
    """One line of the results table, computed from the curves alone."""
    e = curves.epochs
    val_acc = e["val_accuracy"]
    finite_acc = _finite(val_acc)
    epochs_to = seconds_to = None
    for i, acc in enumerate(val_acc):
        if not math.isnan(acc) and acc >= target:
            epochs_to, seconds_to = int(e["epoch"][i]), e["elapsed"][i]
            break
    train_loss = e["train_loss"][-1] if e["train_loss"] else (
        curves.steps["train_loss"][-1] if curves.steps["train_loss"] else None)
    per_epoch = e["epoch_seconds"]
    start = curves.first_batch_loss
    blew_up = (train_loss is not None and start is not None and start > 0
               and (math.isnan(train_loss) or train_loss > DIVERGED_FACTOR * start))
    return ResultRow(
        label=label, status=curves.status,
        best_val_accuracy=max(finite_acc) if finite_acc else None,
        final_val_accuracy=finite_acc[-1] if finite_acc else None,
        final_train_loss=train_loss, final_val_loss=e["val_loss"][-1] if e["val_loss"] else None,
        epochs_to_target=epochs_to, seconds_to_target=seconds_to,
        seconds_per_epoch=sum(per_epoch) / len(per_epoch) if per_epoch else None,
        seconds=curves.seconds, diverged=curves.status == "diverged" or blew_up,
        first_batch_loss=curves.first_batch_loss, run_dir=curves.run_dir)


def results(comparison: Comparison, curves: Sequence[Curves]) -> list[ResultRow]:
    return [result_row(v.label, c, comparison.target_accuracy)
            for v, c in zip(comparison.variants, curves, strict=True)]


def curves_for(comparison: Comparison) -> list[Curves]:
    """Curves of every variant: from its stored run when it has one, else empty (pending)."""
    out = []
    for variant in comparison.variants:
        if variant.run_dir and Path(variant.run_dir).is_dir():
            out.append(Curves.from_run(variant.run_dir))
        else:
            out.append(Curves())
    return out


# -- saving ----------------------------------------------------------------------------------


def comparisons_dir(runs: RunStore) -> Path:
    return runs.root / "comparisons"


def save_comparison(comparison: Comparison, runs: RunStore, path: Path | None = None) -> Path:
    """Write the comparison as JSON (atomically); by default `<runs>/comparisons/<name>.json`."""
    if path is None:
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in comparison.name)[:60]
        path = comparisons_dir(runs) / f"{slug or 'comparison'}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(comparison.to_dict(), indent=2) + "\n")
    return path


def load_comparison(path: str | Path) -> Comparison:
    """Read a saved comparison; SpecError with the file and field on bad input."""
    path = Path(path)
    try:
        raw = read_json(path, max_bytes=MAX_COMPARISON_BYTES)
    except JSONFileError as exc:
        raise SpecError("", f"{path}: {exc}") from None
    try:
        return Comparison.from_dict(raw)
    except SpecError as exc:
        raise SpecError("", f"{path}: {exc}") from None


def list_comparisons(runs: RunStore) -> list[Path]:
    folder = comparisons_dir(runs)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)


def default_name(spec: ExperimentSpec) -> str:
    return f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"


__all__ = [
    "COMMON_FIELDS",
    "DEFAULT_LR",
    "Comparison",
    "ComparisonRunner",
    "Curves",
    "FairStart",
    "FirstBatchLoss",
    "ResultRow",
    "Variant",
    "WeightTrail",
    "curves_for",
    "grid",
    "is_divergence",
    "list_comparisons",
    "load_comparison",
    "load_trail",
    "parse_vary",
    "result_row",
    "results",
    "run_comparison",
    "save_comparison",
    "set_field",
]
