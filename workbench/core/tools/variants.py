"""The compression record of a run: each variant of its network, measured with onnxruntime.

A variant is one ONNX file a person could ship: the float network ("fp32", pruned weights
stored sparse where that is smaller), or a quantization of it ("int8-dynamic", "int8-static",
"fp16"). Each is measured on this machine, on the run's own data: file size, median latency at
batch 1 and batch 256, accuracy (or loss) on the validation and the test split, and agreement
with the float model's classes on the test split. `compression.json` in the run folder keeps
the latest measurement of each kind; the Compress view and `workbench compress` read it.

Writes are atomic; two processes measuring the same run at once may each drop the other's
newest entry (the record is a cache of measurements: a missing one is measured again).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.data import Splits
from workbench.core.memory import EVAL_BATCH
from workbench.core.store.atomic import write_text_atomic
from workbench.core.store.runs import RunError
from workbench.core.tools.calibration import model_inputs

RECORD = "compression.json"
KINDS = ("fp32", "int8-dynamic", "int8-static", "fp16")
LATENCY_REPEATS = 200
LATENCY_REPEATS_256 = 30
_lock = threading.Lock()


@dataclass(frozen=True)
class Measured:
    """One ONNX file, measured with onnxruntime (CPU) on the run's data."""

    bytes: int
    latency_ms: float  # median of LATENCY_REPEATS runs at batch 1
    latency_ms_256: float  # median at batch 256
    val_accuracy: float | None  # None for regression
    val_loss: float  # cross-entropy, or mean squared error for regression
    test_accuracy: float | None
    test_loss: float
    agreement: float | None  # share of test samples given the float model's class
    max_abs_diff: float  # largest output difference from the float model on the test split

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latency_ms(session: Any, x: np.ndarray, repeats: int, input_name: str = "input") -> float:
    """Median onnxruntime time of one run on `x` in milliseconds, after five warm-up runs."""
    times = []
    for i in range(repeats + 5):
        start = time.perf_counter()
        session.run(None, {input_name: x})
        if i >= 5:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def session_for(path: str | Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def outputs(session: Any, x: np.ndarray, input_name: str = "input") -> np.ndarray:
    """The model's outputs on every row of `x`, EVAL_BATCH rows a call."""
    parts = [session.run(None, {input_name: x[i:i + EVAL_BATCH]})[0]
             for i in range(0, len(x), EVAL_BATCH)]
    return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)


def scores(out: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[float | None, float]:
    """(accuracy, cross-entropy) for classes; (None, mean squared error) for regression."""
    if len(out) == 0:
        return None, float("nan")
    if num_classes == 0:
        return None, float(np.mean((out.reshape(len(y), -1)[:, 0] - y) ** 2))
    logits = out.astype(np.float64)
    top = logits.max(1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
    loss = float(np.mean(log_norm - logits[np.arange(len(y)), y.astype(np.int64)]))
    return float((out.argmax(1) == y).mean()), loss


@dataclass
class SplitData:
    """The validation and test inputs as the exported graph takes them, with their targets."""

    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int

    @classmethod
    def of(cls, splits: Splits, *, raw: bool = False) -> SplitData:
        classes = splits.info.num_classes

        def targets(y: Any) -> np.ndarray:
            return y.numpy().astype(np.int64 if classes else np.float64).reshape(len(y))

        return cls(model_inputs(splits, splits.val_x, raw=raw).numpy(), targets(splits.val_y),
                   model_inputs(splits, splits.test_x, raw=raw).numpy(),
                   targets(splits.test_y), classes)

    @property
    def latency_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """A batch of 1 and one of 256 real samples (repeated when the split is smaller)."""
        x = self.test_x if len(self.test_x) else self.val_x
        return x[:1], x[np.arange(256) % len(x)]


def measure(path: str | Path, data: SplitData, *,
            reference: np.ndarray | None = None) -> tuple[Measured, np.ndarray]:
    """Measure the ONNX file at `path`; returns the measurement and its test outputs.

    `reference` holds the float model's test outputs (None: this is the float model).
    """
    session = session_for(path)
    val_acc, val_loss = scores(outputs(session, data.val_x), data.val_y, data.num_classes)
    test_out = outputs(session, data.test_x)
    test_acc, test_loss = scores(test_out, data.test_y, data.num_classes)
    agreement: float | None = 1.0 if data.num_classes else None
    max_diff = 0.0
    if reference is not None and len(test_out):
        max_diff = float(np.abs(test_out - reference).max())
        if data.num_classes:
            agreement = float((test_out.argmax(1) == reference.argmax(1)).mean())
    one, many = data.latency_inputs
    measured = Measured(
        bytes=Path(path).stat().st_size,
        latency_ms=latency_ms(session, one, LATENCY_REPEATS),
        latency_ms_256=latency_ms(session, many, LATENCY_REPEATS_256),
        val_accuracy=val_acc, val_loss=val_loss, test_accuracy=test_acc, test_loss=test_loss,
        agreement=agreement, max_abs_diff=max_diff)
    return measured, test_out


def machine() -> str:
    """Where a measurement was taken, in words."""
    import onnxruntime as ort

    return (f"{platform.machine()} {platform.processor() or platform.system()}, "
            f"{os.cpu_count()} cores, onnxruntime {ort.__version__}")


def read_record(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The run's variants by kind; empty when none was measured (or the record is damaged)."""
    path = Path(run_dir) / RECORD
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    variants = value.get("variants") if isinstance(value, dict) else None
    if not isinstance(variants, dict):
        return {}
    return {k: v for k, v in variants.items()
            if k in KINDS and isinstance(v, dict) and isinstance(v.get("measured"), dict)}


def read_extra(run_dir: str | Path, key: str) -> Any:
    """Another entry of the record (e.g. the last compress-to-target search), or None."""
    try:
        value = json.loads((Path(run_dir) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value.get(key) if isinstance(value, dict) else None


def _update(run_dir: str | Path, change: Any) -> None:
    path = Path(run_dir) / RECORD
    if not path.parent.is_dir():
        raise RunError(f"{path.parent}: no such run folder")
    with _lock:
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(value, dict):
                value = {}
        except (OSError, ValueError):
            value = {}
        change(value)
        write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def write_variant(run_dir: str | Path, kind: str, file: str | Path, measured: Measured,
                  **details: Any) -> dict[str, Any]:
    """Store (or replace) the run's measurement of `kind`; returns the entry."""
    if kind not in KINDS:
        raise ValueError(f"unknown variant kind {kind!r}")
    entry = {"kind": kind, "file": str(file), "measured": measured.to_dict(),
             "machine": machine(), "time": time.time(), **details}

    def change(value: dict[str, Any]) -> None:
        variants = value.get("variants")
        value["variants"] = {**(variants if isinstance(variants, dict) else {}), kind: entry}

    _update(run_dir, change)
    return entry


def write_extra(run_dir: str | Path, key: str, entry: Any) -> None:
    """Store another entry of the record beside the variants."""

    def change(value: dict[str, Any]) -> None:
        value[key] = entry

    _update(run_dir, change)


__all__ = [
    "KINDS",
    "RECORD",
    "Measured",
    "SplitData",
    "latency_ms",
    "machine",
    "measure",
    "outputs",
    "read_extra",
    "read_record",
    "scores",
    "session_for",
    "write_extra",
    "write_variant",
]
