"""Post-training quantization of a run's network with onnxruntime, verified like every export.

Modes (`onnxruntime.quantization`, and its float16 converter for fp16):
- dynamic: weights stored int8, activations quantized on the fly at run time (MatMulInteger);
  needs no data; for Linear-heavy networks. On a Conv it becomes ConvInteger, which
  onnxruntime runs slowly on CPUs (measured 6x slower than float on the small MNIST CNN).
- static: QDQ with int8 weights and activations (S8S8, onnxruntime's first choice on x86),
  activation ranges calibrated (min/max) on a sample of the run's own training split; for
  convolutional networks. BatchNorm is folded into the Conv before (`quant_pre_process`).
- fp16: weights and arithmetic in float16, float32 at the input and the output.
`auto` picks static when the stack has a Conv2d, else dynamic.

Per-channel weights: `per_channel=None` quantizes both ways and keeps the one with the better
validation accuracy (the smaller file on a tie), because neither wins everywhere: per-tensor
was better on both MNIST benchmark networks. The float model is exported and verified against
PyTorch first (`export_run`); the quantized file is checked with onnx.checker, then run with
onnxruntime on the whole test split: a file that loses more than `max_drop` accuracy points
(regression: more than REGRESSION_MAX_INCREASE of the test MSE) is refused with the numbers
and not written. Both measurements are stored in the run's compression record (a run folder
that cannot be written keeps none: a note says so, the file is still written). Like export, it
touches no process-wide state (output, warning filters, logger levels): the app quantizes on a
thread beside others; the CLI quiets the tools on its main thread.

Intermediate files live in a private work folder (`workbench-quantize-*` in the system's
temporary folder), removed however the work ends; one a killed process left is removed by the
next quantization. `cancel` stops between steps (Cancelled): nothing is written.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.core.cancel import check_cancel
from workbench.core.data import Splits
from workbench.core.data.cache import DataSource
from workbench.core.store.atomic import (
    remove_stale_temps,
    remove_stale_work_dirs,
    work_dir,
    write_bytes_atomic,
)
from workbench.core.tools.calibration import (
    CalibrationError,
    calibration_reader,
    calibration_sample,
)
from workbench.core.tools.compress_settings import (
    DEFAULT_CALIBRATION,
    DEFAULT_MAX_DROP,
    MAX_CALIBRATION,
    MAX_DROP_LIMIT,
    MODES,
    REGRESSION_MAX_INCREASE,
)
from workbench.core.tools.export import (
    DEFAULT_OPSET,
    INPUT_NAME,
    ExportError,
    check_destination,
    export_run,
    load_run,
)
from workbench.core.tools.sparse_onnx import store_sparse
from workbench.core.tools.variants import (
    Measured,
    SplitData,
    measure,
    outputs,
    scores,
    session_for,
    write_variant,
)


class QuantizeError(ExportError):
    """A run that cannot be quantized, or a quantized file that broke the network; says why."""


@dataclass(frozen=True)
class QuantizeConfig:
    """How to quantize. `calibration` (static only): training samples the ranges come from."""

    mode: str = "auto"
    calibration: int = DEFAULT_CALIBRATION
    per_channel: bool | None = None  # None: try both, keep the better on the validation split
    max_drop: float = DEFAULT_MAX_DROP
    seed: int = 0

    def validate(self) -> None:
        if self.mode not in MODES:
            raise QuantizeError(f"quantization must be one of {', '.join(MODES)}, "
                                f"got {self.mode!r}")
        if (not isinstance(self.max_drop, int | float) or isinstance(self.max_drop, bool)
                or not 0.0 <= self.max_drop <= MAX_DROP_LIMIT):
            raise QuantizeError(f"the accepted accuracy drop must be between 0 and "
                                f"{MAX_DROP_LIMIT:g} points, got {self.max_drop!r}")
        if self.mode in ("auto", "static") and (
                not isinstance(self.calibration, int) or isinstance(self.calibration, bool)
                or not 1 <= self.calibration <= MAX_CALIBRATION):
            raise QuantizeError(f"calibration samples must be between 1 and "
                                f"{MAX_CALIBRATION:,}, got {self.calibration!r}")


@dataclass(frozen=True)
class QuantizeResult:
    path: str
    kind: str  # "int8-dynamic", "int8-static" or "fp16"
    per_channel: bool | None  # None for fp16
    calibration: int | None  # samples; None unless static
    opset: int
    normalize_in_graph: bool
    fp32: Measured  # the float model, as the plain export writes it (sparse where smaller)
    quantized: Measured
    drop: float | None  # test accuracy points lost (None for regression)
    loss_increase: float  # relative change of the test loss
    tried: tuple[dict[str, Any], ...] = field(default=())  # per-channel or not: val accuracy
    notes: tuple[str, ...] = ()  # e.g. why the run's compression record was not written

    @property
    def ratio(self) -> float:
        """How many times smaller than the float file."""
        return self.fp32.bytes / max(1, self.quantized.bytes)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "per_channel": self.per_channel,
                "calibration": self.calibration, "opset": self.opset,
                "normalize_in_graph": self.normalize_in_graph, "ratio": self.ratio,
                "drop": self.drop, "loss_increase": self.loss_increase,
                "fp32": self.fp32.to_dict(), "quantized": self.quantized.to_dict(),
                "tried": list(self.tried), "notes": list(self.notes)}


def auto_mode(layer_types: list[str]) -> str:
    """static for a network with convolutions, dynamic for the rest."""
    return "static" if "Conv2d" in layer_types else "dynamic"


def kind_of(mode: str) -> str:
    return "fp16" if mode == "fp16" else f"int8-{mode}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def quantize_file(float_path: Path, out_path: Path, mode: str, *, per_channel: bool,
                  sample: Any = None) -> None:
    """Quantize the (pre-processed) float model at `float_path` into `out_path`."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if mode == "dynamic":
        quantize_dynamic(str(float_path), str(out_path), weight_type=QuantType.QInt8,
                         per_channel=per_channel)
    elif mode == "static":
        quantize_static(str(float_path), str(out_path), calibration_reader(sample, INPUT_NAME),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    else:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(float_path)), keep_io_types=True)
        _sort_nodes(model.graph)
        onnx.save(model, str(out_path))


def _sort_nodes(graph: Any) -> None:
    """Put the nodes in topological order (the float16 converter appends its input casts)."""
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(name in known for name in n.input)]
        if not ready:  # a cycle or a dangling input: leave it for onnx.checker to name
            ordered.extend(pending)
            break
        for node in ready:
            known.update(node.output)
        ordered.extend(ready)
        done = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in done]
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _preprocess(src: Path, dst: Path) -> None:
    """Shape inference and onnxruntime's basic graph optimizations (BatchNorm into Conv)."""
    from onnxruntime.quantization import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst))
    except Exception as exc:  # a graph the optimizer cannot take: quantize it as exported
        logging.getLogger(__name__).info("quant_pre_process failed (%s); quantizing the "
                                         "exported graph as it is", _first_line(exc))
        shutil.copyfile(src, dst)


def _copy_metadata(src: Path, dst: Path, note: str) -> None:
    import onnx

    source = onnx.load(str(src))
    model = onnx.load(str(dst))
    del model.metadata_props[:]
    for prop in source.metadata_props:
        model.metadata_props.add().CopyFrom(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = "quantization", note
    model.producer_name = source.producer_name
    model.producer_version = source.producer_version
    model.doc_string = f"{source.doc_string} ({note})"
    onnx.save(model, str(dst))


def _check(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise QuantizeError(f"onnx.checker rejected the quantized model: "
                            f"{_first_line(exc)}") from exc
    try:
        session_for(path)
    except Exception as exc:
        raise QuantizeError(f"onnxruntime on this machine cannot run the quantized model: "
                            f"{_first_line(exc)}") from exc


WORK_PREFIX = "workbench-quantize-"


def quantize_run(run_dir: str | Path, out_path: str | Path,
                 config: QuantizeConfig | None = None, *, opset: int = DEFAULT_OPSET,
                 normalize_in_graph: bool = False, splits: Splits | None = None,
                 source: DataSource | None = None, record: bool = True,
                 cancel: threading.Event | None = None) -> QuantizeResult:
    """Export the run, quantize, verify on the test split and put the file in place.

    Raises QuantizeError (an ExportError) with the reason, leaving no file, when the run
    cannot be exported, the quantized graph fails its checks, or it loses more accuracy than
    `config.max_drop`; Cancelled, leaving no file, when `cancel` is set between two steps.
    With `record`, the float and the quantized measurements (or the refusal) go into the run's
    compression record. The run's data comes from `splits`, else from `source` (the
    workspace), else the disk.
    """
    config = config or QuantizeConfig()
    config.validate()
    out = Path(out_path)
    check_destination(out, weights=False, script=False)
    remove_stale_temps(out.parent, of=[out.name])
    remove_stale_work_dirs(WORK_PREFIX)
    loaded = load_run(run_dir, splits=splits, source=source, cancel=cancel)
    mode = config.mode
    if mode == "auto":
        mode = auto_mode([layer.type for layer in loaded.spec.model.layers])
    kind = kind_of(mode)
    data = SplitData.of(loaded.splits, raw=normalize_in_graph)
    if len(data.test_x) == 0 or len(data.val_x) == 0:
        raise QuantizeError("quantization is verified on the validation and test splits, and "
                            "this run's data has no samples in one of them")
    sample = None
    if mode == "static":
        try:
            sample = calibration_sample(loaded.splits, config.calibration, seed=config.seed,
                                        raw=normalize_in_graph)
        except CalibrationError as exc:
            raise QuantizeError(str(exc)) from exc
    details: dict[str, Any] = {"opset": opset, "normalize_in_graph": normalize_in_graph}
    notes: list[str] = []

    def keep(kind_: str, file: str | Path, measured: Measured, **more: Any) -> None:
        if record:
            _record(run_dir, kind_, file, measured, notes, **details, **more)

    stopped = f"while quantizing ({kind}); nothing was written"
    with work_dir(WORK_PREFIX) as work:
        float_path = work / "float.onnx"
        export_run(run_dir, float_path, opset=opset, normalize_in_graph=normalize_in_graph,
                   weights=False, script=False, splits=loaded.splits, sparse=False,
                   cancel=cancel)
        float_measured, reference = measure(float_path, data)
        float_measured = replace(float_measured, bytes=_shipped_bytes(float_path, work))
        keep("fp32", "", float_measured)
        check_cancel(cancel, stopped)
        chosen, per_channel, tried = _best(float_path, work, mode, config.per_channel, sample,
                                           data, cancel, stopped)
        note = (f"{kind}, {'per-channel' if per_channel else 'per-tensor'} weights"
                if mode != "fp16" else "float16 weights and arithmetic, float32 input/output")
        if sample is not None:
            note += f", activation ranges from {len(sample)} training samples"
        _copy_metadata(float_path, chosen, note)
        measured, _ = measure(chosen, data, reference=reference)
        drop = (None if measured.test_accuracy is None or float_measured.test_accuracy is None
                else (float_measured.test_accuracy - measured.test_accuracy) * 100.0)
        increase = ((measured.test_loss - float_measured.test_loss)
                    / max(abs(float_measured.test_loss), 1e-12))
        calibration = len(sample) if sample is not None else None
        details.update(per_channel=per_channel, calibration=calibration, drop=drop)
        refusal = _refusal(kind, float_measured, measured, drop, increase, config.max_drop)
        if refusal is not None:
            keep(kind, "", measured, refused=refusal)
            raise QuantizeError(refusal)
        check_cancel(cancel, stopped)
        try:
            write_bytes_atomic(out, chosen.read_bytes())
        except OSError as exc:
            raise QuantizeError(f"cannot write {exc.filename or out}: "
                                f"{exc.strerror or exc}") from exc
    keep(kind, out, measured)
    return QuantizeResult(str(out), kind, per_channel, calibration, opset, normalize_in_graph,
                          float_measured, measured, drop, increase, tuple(tried), tuple(notes))


def _record(run_dir: str | Path, kind: str, file: str | Path, measured: Measured,
            notes: list[str], **details: Any) -> None:
    """Store a measurement in the run's record; a run folder that cannot be written (a
    read-only store) keeps none, and `notes` says so once."""
    try:
        write_variant(run_dir, kind, file, measured, **details)
    except OSError as exc:
        note = (f"the measurements were not kept in {Path(run_dir).name}'s compression record: "
                f"cannot write {exc.filename or run_dir}: {exc.strerror or exc}")
        if note not in notes:
            logging.getLogger(__name__).warning("%s", note)
            notes.append(note)


def _shipped_bytes(float_path: Path, work: Path) -> int:
    """The float file's size as the plain export writes it (pruned weights sparse)."""
    shipped = work / "shipped.onnx"
    shutil.copyfile(float_path, shipped)
    store_sparse(shipped)
    return shipped.stat().st_size


def _best(float_path: Path, work: Path, mode: str, per_channel: bool | None, sample: Any,
          data: SplitData, cancel: threading.Event | None = None,
          stopped: str = "while quantizing") -> tuple[Path, bool | None, list[dict[str, Any]]]:
    """Quantize per tensor and per channel (or as asked); the better on the validation split."""
    pre = work / "pre.onnx"
    _preprocess(float_path, pre)
    check_cancel(cancel, stopped)
    choices: list[bool | None] = [None] if mode == "fp16" else (
        [per_channel] if per_channel is not None else [False, True])
    tried: list[dict[str, Any]] = []
    best: tuple[float, int, Path, bool | None] | None = None
    for choice in choices:
        candidate = work / f"q-{choice}.onnx"
        try:
            quantize_file(pre, candidate, mode, per_channel=bool(choice), sample=sample)
        except Exception as exc:
            raise QuantizeError(f"onnxruntime could not quantize the model ({mode}): "
                                f"{_first_line(exc)}") from exc
        _check(candidate)
        acc, loss = scores(outputs(session_for(candidate), data.val_x), data.val_y,
                           data.num_classes)
        size = candidate.stat().st_size
        tried.append({"per_channel": choice, "val_accuracy": acc, "val_loss": loss,
                      "bytes": size})
        score = acc if acc is not None else -loss
        if best is None or (score, -size) > (best[0], -best[1]):
            best = (score, size, candidate, choice)
        check_cancel(cancel, stopped)
    assert best is not None
    return best[2], best[3], tried


def _refusal(kind: str, before: Measured, after: Measured, drop: float | None,
             increase: float, max_drop: float) -> str | None:
    """Why the quantized file breaks the network, or None when it holds."""
    if drop is not None:
        if drop <= max_drop:
            return None
        return (f"{kind} breaks the network: test accuracy {before.test_accuracy:.2%} -> "
                f"{after.test_accuracy:.2%} ({drop:.2f} points lost, {max_drop:g} accepted), "
                f"classes agree with the float model on {after.agreement:.1%} of the test "
                "split; the file was not written")
    if increase <= REGRESSION_MAX_INCREASE:
        return None
    return (f"{kind} breaks the network: test MSE {before.test_loss:.4g} -> "
            f"{after.test_loss:.4g} ({increase:+.0%}, {REGRESSION_MAX_INCREASE:.0%} accepted); "
            "the file was not written")


__all__ = [
    "QuantizeConfig",
    "QuantizeError",
    "QuantizeResult",
    "WORK_PREFIX",
    "auto_mode",
    "kind_of",
    "quantize_file",
    "quantize_run",
]
