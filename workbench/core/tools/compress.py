"""The compression frontier of a run, and "compress to target".

A run's family is the run and every run pruned from it (summary `parent` links, followed
down). Each member has variants (float, int8, fp16; `variants.py`) measured into its
compression record; `frontier` lists them all and `pareto` keeps those that no other variant
beats on both size (or latency) and test accuracy.

`compress_to_target` finds the smallest variant that loses at most `max_drop` accuracy points
against the run's own float model: it measures the run (float and int8), sweeps the pruning
amounts over the whole network without fine-tuning (the sensitivity sweep's whole-network
curve) to find where the search starts, then bisects over the amounts: each probe prunes
(`search_config`) into a new run linked to the parent, fine-tunes, quantizes and measures it.
Decisions use the validation split; every variant reports the test split too. The search and
its steps go into the run's compression record.

`cancel` ends either after the step in flight: measuring stops between variants (what was
measured is kept, and measuring again skips it); the search stops after its current probe (a
fine-tuning stops after its current step, the pruned run is left stopped, resumable) and
returns, and records, what it found.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.core.cancel import Cancelled
from workbench.core.data import Splits
from workbench.core.data.cache import DataSource
from workbench.core.store.runs import Run, RunError, RunStore
from workbench.core.tools.compress_settings import (
    DEFAULT_FINETUNE_EPOCHS,
    DEFAULT_MAX_DROP,
    DEFAULT_PROBES,
    MAX_DROP_LIMIT,
    MAX_FINETUNE_EPOCHS,
    MAX_PROBES,
)
from workbench.core.tools.prune import SENSITIVITY_AMOUNTS, PruneConfig, PruneError, PruneSession
from workbench.core.tools.quantize import (
    QuantizeConfig,
    QuantizeError,
    auto_mode,
    kind_of,
    quantize_run,
)
from workbench.core.tools.variants import Measured, read_extra, read_record, write_extra

AXES = {"bytes": "file size", "latency_ms": "latency, batch 1",
        "latency_ms_256": "latency, batch 256"}
FOLDER = "compress"  # where a run's measured variant files are kept, inside the run folder
TARGET_KEY = "target"

Report = Callable[[Any], None]


class CompressError(ValueError):
    """A request the compressor cannot meet; the message says why."""


@dataclass(frozen=True)
class Variant:
    """One measured file of one run of the family."""

    run_dir: str
    run_name: str
    kind: str  # fp32, int8-dynamic, int8-static, fp16
    pruning: str | None  # "50% structured" ...; None for the run itself
    sparsity: float
    file: str  # "" when the file was not kept (or the quantization was refused)
    measured: Measured
    refused: str | None = None  # why the quantized file was refused (it breaks the network)

    @property
    def label(self) -> str:
        base = f"pruned {self.pruning}" if self.pruning else "original"
        return f"{base}, {self.kind}"

    @property
    def quality(self) -> float:
        """Higher is better: test accuracy, or minus the test loss for regression."""
        m = self.measured
        return m.test_accuracy if m.test_accuracy is not None else -m.test_loss

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["label"] = self.label
        return d


def _pruning(summary: dict[str, Any]) -> tuple[str | None, float]:
    prune = summary.get("prune")
    if not isinstance(prune, dict):
        return None, 0.0
    amount = prune.get("amount")
    kind = "structured" if prune.get("structured") else "unstructured"
    text = f"{amount:.0%} {kind}" if isinstance(amount, int | float) else kind
    sparsity = summary.get("sparsity")
    return text, float(sparsity) if isinstance(sparsity, int | float) else 0.0


def variants_of(run_dir: str | Path) -> list[Variant]:
    """The run's measured variants (none when it was never measured)."""
    path = Path(run_dir)
    try:
        summary = Run(path).summary()
    except RunError:
        return []
    pruning, sparsity = _pruning(summary)
    out = []
    for kind, entry in read_record(path).items():
        try:
            measured = Measured(**entry["measured"])
        except TypeError:  # a record from another version: measured again when asked
            continue
        out.append(Variant(str(path), path.name, kind, pruning, sparsity,
                           str(entry.get("file") or ""), measured, entry.get("refused")))
    return out


def family(run_dir: str | Path, runs: RunStore | None = None) -> list[Path]:
    """The run and every run pruned from it, parents before children."""
    root = Path(run_dir).resolve()
    store = runs or RunStore(root.parent)
    children: dict[Path, list[Path]] = {}
    for info in store.list():
        parent = info.summary.get("parent") if not info.error else None
        if isinstance(parent, str) and parent:
            children.setdefault(Path(parent).resolve(), []).append(info.path.resolve())
    order, queue, seen = [], [root], {root}
    while queue:
        current = queue.pop(0)
        order.append(current)
        for child in sorted(children.get(current, [])):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return order


def frontier(run_dir: str | Path, runs: RunStore | None = None) -> list[Variant]:
    """Every measured variant of the run's family."""
    return [v for member in family(run_dir, runs) for v in variants_of(member)]


def pareto(variants: Sequence[Variant], axis: str = "bytes") -> list[Variant]:
    """The variants no other beats on both `axis` (smaller) and quality (higher), by `axis`."""
    if axis not in AXES:
        raise CompressError(f"axis must be one of {', '.join(AXES)}, got {axis!r}")
    usable = [v for v in variants if v.refused is None and math.isfinite(v.quality)]
    usable.sort(key=lambda v: (getattr(v.measured, axis), -v.quality))
    front: list[Variant] = []
    for v in usable:
        if not front or v.quality > front[-1].quality:
            front.append(v)
    return front


def variant_path(run_dir: str | Path, kind: str) -> Path:
    """Where the run keeps its measured `kind` file; CompressError when the run's folder
    cannot hold it (a read-only store)."""
    folder = Path(run_dir) / FOLDER
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise CompressError(f"cannot write {exc.filename or folder}: "
                            f"{(exc.strerror or str(exc)).lower()}; compress keeps each "
                            "measured file in the run's folder") from exc
    return folder / f"{kind}.onnx"


def measure_run(run_dir: str | Path, config: QuantizeConfig | None = None, *,
                splits: Splits | None = None, source: DataSource | None = None,
                cancel: threading.Event | None = None) -> list[Variant]:
    """Measure the run's float model and its quantization (kept in the run's folder).

    A quantization that breaks the network is recorded as refused, not raised; Cancelled
    when `cancel` stops it.
    """
    config = config or QuantizeConfig()
    mode = config.mode
    if mode == "auto":
        try:
            mode = auto_mode([layer.type for layer in Run(Path(run_dir)).spec().model.layers])
        except RunError as exc:
            raise CompressError(f"{exc}; it cannot be measured") from exc
    try:
        quantize_run(run_dir, variant_path(run_dir, kind_of(mode)),
                     QuantizeConfig(mode, config.calibration, config.per_channel,
                                    config.max_drop, config.seed), splits=splits,
                     source=source, cancel=cancel)
    except QuantizeError as exc:
        if not any(v.kind == kind_of(mode) for v in variants_of(run_dir)):
            raise CompressError(str(exc)) from exc
    return variants_of(run_dir)


def measure_family(run_dir: str | Path, runs: RunStore | None = None,
                   config: QuantizeConfig | None = None, *, report: Report | None = None,
                   cancel: threading.Event | None = None, again: bool = False,
                   source: DataSource | None = None) -> list[Variant]:
    """Measure every member of the family that lacks a float or a quantized measurement;
    `cancel` ends it after the step in flight, with what was measured (kept in each run's
    record, so measuring again continues)."""
    config = config or QuantizeConfig()
    for member in family(run_dir, runs):
        if cancel is not None and cancel.is_set():
            break
        kinds = {v.kind for v in variants_of(member)}
        if not again and "fp32" in kinds and len(kinds) > 1:
            continue
        try:
            measured = measure_run(member, config, source=source, cancel=cancel)
        except Cancelled:  # the member in flight keeps what it measured before the stop
            break
        except (CompressError, QuantizeError) as exc:
            if Path(member) == Path(run_dir).resolve():
                raise CompressError(str(exc)) from exc
            measured = []
            if report is not None:
                report(f"{member.name}: {exc}")
        if report is not None:
            report(measured)
    return frontier(run_dir, runs)


# -- compress to target ---------------------------------------------------------------------
@dataclass(frozen=True)
class TargetStep:
    """One step of the search, as it was decided."""

    action: str  # "measure", "sweep", "probe"
    amount: float | None  # the pruning amount (share of units, or of weights)
    run_dir: str | None
    val_accuracy: float | None  # the best variant of this step, on the validation split
    drop: float | None  # points lost against the original float model (validation)
    bytes: int | None
    holds: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TargetResult:
    max_drop: float
    reference_val_accuracy: float
    reference_test_accuracy: float
    reference_bytes: int  # the original float file
    best: Variant | None  # the smallest variant that holds (the float run itself at worst)
    steps: tuple[TargetStep, ...]
    stopped: bool

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"max_drop": self.max_drop, "reference_val_accuracy": self.reference_val_accuracy,
                "reference_test_accuracy": self.reference_test_accuracy,
                "reference_bytes": self.reference_bytes,
                "best": best.to_dict() if best is not None else None,
                "ratio": self.reference_bytes / best.measured.bytes if best is not None
                else None,
                "steps": [s.to_dict() for s in self.steps], "stopped": self.stopped}


def _drop(reference: float, variant: Variant) -> float | None:
    acc = variant.measured.val_accuracy
    return None if acc is None else (reference - acc) * 100.0


def _holding(variants: Sequence[Variant], reference: float,
             max_drop: float) -> list[Variant]:
    out = []
    for v in variants:
        drop = _drop(reference, v)
        if v.refused is None and drop is not None and drop <= max_drop + 1e-9:
            out.append(v)
    return out


def _smallest(variants: Sequence[Variant]) -> Variant | None:
    return min(variants, key=lambda v: (v.measured.bytes, -v.quality), default=None)


def search_config(amount: float, structured: bool) -> PruneConfig:
    """The pruning a search probes at `amount`: the whole network ranked globally.

    Structured, ranked globally (each layer keeps at least half its uniform share, see
    `PruneSession`) against every hidden layer pruned by the same share, after one epoch of
    fine-tuning on 10,000 MNIST images: the small CNN kept 97.35% with 5,298 parameters
    against 97.28% with 9,146, and 95.22% with 2,988 against 95.92% with 5,450; the MLP 96.48%
    with 65,667 against 96.60% with 63,799. Global ranking gives the smaller network.
    """
    return PruneConfig(amount=amount, structured=structured)


def compress_to_target(run_dir: str | Path, max_drop: float, *, runs: RunStore | None = None,
                       finetune_epochs: int = DEFAULT_FINETUNE_EPOCHS, structured: bool = True,
                       config: QuantizeConfig | None = None, probes: int = DEFAULT_PROBES,
                       report: Report | None = None, cancel: threading.Event | None = None,
                       source: DataSource | None = None) -> TargetResult:
    """The smallest variant of the run within `max_drop` validation accuracy points.

    Every probe is a pruned, fine-tuned run linked to `run_dir` in `runs` (default: the run's
    own store), with its float and int8 variants measured. `cancel` ends the search after the
    step in flight (a fine-tuning stops after its current step); what was found is returned.
    """
    if (not isinstance(max_drop, int | float) or isinstance(max_drop, bool)
            or not 0.0 <= max_drop <= MAX_DROP_LIMIT):
        raise CompressError(f"the accepted accuracy drop must be between 0 and "
                            f"{MAX_DROP_LIMIT:g} points, got {max_drop!r}")
    if not isinstance(finetune_epochs, int) or not 0 <= finetune_epochs <= MAX_FINETUNE_EPOCHS:
        raise CompressError(f"fine-tune epochs must be between 0 and {MAX_FINETUNE_EPOCHS}, "
                            f"got {finetune_epochs!r}")
    if not isinstance(probes, int) or not 1 <= probes <= MAX_PROBES:
        raise CompressError(f"probes must be between 1 and {MAX_PROBES}, got {probes!r}")
    config = config or QuantizeConfig()
    config = QuantizeConfig(config.mode, config.calibration, config.per_channel,
                            max(config.max_drop, max_drop, DEFAULT_MAX_DROP), config.seed)
    try:
        session = PruneSession(run_dir, source=source)
    except PruneError as exc:
        raise CompressError(str(exc)) from exc
    if session.num_classes == 0:
        raise CompressError("compress to target keeps an accuracy, and this run is a "
                            "regression; measure its variants instead")
    store = runs or RunStore(session.run.path.parent)
    steps: list[TargetStep] = []

    def emit(step: TargetStep) -> None:
        steps.append(step)
        if report is not None:
            report(step)

    def stopped() -> bool:
        return cancel is not None and cancel.is_set()

    # the first step in flight: a stop after it still returns (and keeps) a result
    original = measure_run(session.run.path, config, splits=session.splits)
    fp32 = next((v for v in original if v.kind == "fp32"), None)
    if fp32 is None or fp32.measured.val_accuracy is None or fp32.measured.test_accuracy is None:
        raise CompressError("the run's float model could not be measured")
    reference = fp32.measured.val_accuracy
    found = list(_holding(original, reference, max_drop))
    best = _smallest(found)
    emit(TargetStep("measure", 0.0, str(session.run.path), reference, 0.0,
                    best.measured.bytes if best else None, True,
                    "the original: " + ", ".join(
                        f"{v.kind} {v.measured.bytes:,} bytes, val {_pct(v)}"
                        + (" (refused)" if v.refused else "") for v in original)))
    amounts = [a for a in SENSITIVITY_AMOUNTS if a > 0]
    start = -1
    for i, amount in enumerate(amounts):
        if stopped():
            return _result(session.run.path, max_drop, fp32, found, steps)
        swept = session.evaluate(search_config(amount, structured))
        drop = (reference - (swept.val_accuracy or 0.0)) * 100.0
        if drop <= max_drop:
            start = i
        emit(TargetStep("sweep", amount, None, swept.val_accuracy, drop, None,
                        drop <= max_drop, f"{'structured' if structured else 'unstructured'} "
                        f"{amount:.0%} before fine-tuning"))
    lo, hi = -1, len(amounts)
    mid = max(start, 0)
    for _ in range(probes):
        if stopped() or hi - lo <= 1:
            break
        amount = amounts[mid]
        holds, variants, note = _probe(session, store, amount, structured, finetune_epochs,
                                       config, reference, max_drop, report, cancel)
        if stopped():  # cut short: no verdict on this amount
            break
        found.extend(_holding(variants, reference, max_drop))
        smallest = _smallest(_holding(variants, reference, max_drop)) or _smallest(variants)
        emit(TargetStep("probe", amount, variants[0].run_dir if variants else None,
                        smallest.measured.val_accuracy if smallest else None,
                        _drop(reference, smallest) if smallest else None,
                        smallest.measured.bytes if smallest else None, holds, note))
        if holds:
            lo = mid
        else:
            hi = mid
        mid = (lo + hi) // 2
    return _result(session.run.path, max_drop, fp32, found, steps, stopped())


def _result(run_dir: Path, max_drop: float, fp32: Variant, found: list[Variant],
            steps: list[TargetStep], stopped: bool = True) -> TargetResult:
    """The search's result as far as it went, kept in the run's record."""
    result = TargetResult(float(max_drop), fp32.measured.val_accuracy or 0.0,
                          fp32.measured.test_accuracy or 0.0, fp32.measured.bytes,
                          _smallest(found), tuple(steps), stopped)
    write_extra(run_dir, TARGET_KEY, result.to_dict())
    return result


def in_points(drop: float | None) -> str:
    """An accuracy change in words: "loses 0.40 points", "gains 0.10 points", "no loss"."""
    if drop is None:
        return "accuracy unknown"
    if abs(drop) < 0.005:
        return "no loss"
    return f"{'loses' if drop > 0 else 'gains'} {abs(drop):.2f} points"


def _pct(v: Variant) -> str:
    acc = v.measured.val_accuracy
    return "—" if acc is None else f"{acc:.2%}"


def _probe(session: PruneSession, store: RunStore, amount: float, structured: bool,
           epochs: int, config: QuantizeConfig, reference: float, max_drop: float,
           report: Report | None,
           cancel: threading.Event | None) -> tuple[bool, list[Variant], str]:
    from workbench.core.tools.prune_apply import create_pruned_run

    prune = search_config(amount, structured)
    try:
        pruned = create_pruned_run(session, prune, runs=store, finetune_epochs=epochs,
                                   on_event=report, cancel=cancel)
    except PruneError as exc:
        return False, [], f"{amount:.0%}: {exc}"
    if cancel is not None and cancel.is_set():
        return False, [], (f"{amount:.0%}: stopped while fine-tuning; {pruned.run_dir} is "
                           "left stopped (resume it, or search again)")
    try:
        variants = measure_run(pruned.run_dir, config, splits=session.splits, cancel=cancel)
    except CompressError as exc:
        return False, [], f"{amount:.0%}: {exc}"
    except Cancelled:
        return False, [], f"{amount:.0%}: stopped while measuring {pruned.run_dir}"
    holding = _holding(variants, reference, max_drop)
    described = ", ".join(f"{v.kind} {v.measured.bytes:,} bytes val {_pct(v)}"
                          + (" (refused)" if v.refused else "") for v in variants)
    state = "" if pruned.summary.get("status") == "finished" else " (fine-tuning stopped)"
    return bool(holding), variants, (f"{'structured' if structured else 'unstructured'} "
                                     f"{amount:.0%}, {epochs} epochs fine-tuned{state}: "
                                     f"{described}")


def last_target(run_dir: str | Path) -> dict[str, Any] | None:
    """The last compress-to-target search stored with the run."""
    value = read_extra(run_dir, TARGET_KEY)
    return value if isinstance(value, dict) else None


__all__ = [
    "AXES",
    "CompressError",
    "TargetResult",
    "TargetStep",
    "Variant",
    "compress_to_target",
    "family",
    "frontier",
    "in_points",
    "last_target",
    "measure_family",
    "measure_run",
    "pareto",
    "variant_path",
    "variants_of",
]
