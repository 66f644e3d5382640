"""ONNX export of a stored run, verified against PyTorch before it is put in place.

The model is exported in eval mode with a dynamic batch dimension, pruning masks folded in.
The file is written under a temporary name, checked with `onnx.checker`, then run with
onnxruntime against PyTorch on real test samples at batch sizes 1 and 37; only a file that
passes (rtol 1e-3, atol 1e-5) is renamed into place. A failed check raises `ExportError`.
With `sparse` (the default) weights that are mostly zero (unstructured pruning) are stored
sparse, which makes the file smaller above two thirds zero (`sparse_onnx`).

Exporter: torch.onnx's dynamo exporter (the default, maintained one) with `dynamic_shapes`;
the TorchScript exporter (`dynamo=False`) when the first one fails, and first below opset 18,
which the dynamo exporter does not write (it silently writes 18 instead). The opset reported is
the one the file has, read back from it; a file that could not be given the asked one says so.
Export touches no process-wide state (no redirected output, warning filters or logger levels:
other threads are running); the CLI quiets the exporter on its own main thread.

Files: only the ones asked for are written (the .onnx named, and beside it the .safetensors
and .py unless left out); one that exists already and was not named is never overwritten
unless `overwrite` says so. Every file is written under a temporary name beside it, renamed
into place when whole; the temps a killed export left of these same files are removed, and
nothing else in the folder is touched. A name too long for the folder (the siblings' longer
suffixes included) and a folder that cannot be written are refused before any work. `cancel`
stops the export between its steps (Cancelled): the temporary file goes, nothing is written.

Input: float32 `(batch, *input_shape)`, normalized as in training, `(x/255 - mean)/std` for
images. With `normalize_in_graph` the graph takes raw values instead: pixels as float32 in
0..255 (not uint8, so a consumer need not cast), or raw features for tables and 2-D sets.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench import __version__
from workbench.core.cancel import check_cancel
from workbench.core.data import DeviceBatches, Splits
from workbench.core.data.cache import DataSource
from workbench.core.store.atomic import name_max, remove_stale_temps, temp_beside, unwritable
from workbench.core.store.runs import RunError
from workbench.core.tools.sparse_onnx import store_sparse
from workbench.core.tools.trained import TrainedRun, load_trained
from workbench.core.tools.variants import latency_ms

DEFAULT_OPSET = 18
DYNAMO_MIN_OPSET = 18  # below it the dynamo exporter writes 18 and says so only in a log line
MIN_OPSET = 13
MAX_OPSET = 21
VERIFY_BATCHES = (1, 37)
RTOL = 1e-3
ATOL = 1e-5
INPUT_NAME = "input"
OUTPUT_NAME = "output"


class ExportError(RuntimeError):
    """A run that cannot be exported, or an export that failed its check; says why."""


@dataclass(frozen=True)
class BatchCheck:
    batch: int
    samples: int
    max_abs_diff: float
    agreement: float | None  # share of samples with the same class; None for regression
    ok: bool


@dataclass(frozen=True)
class ExportResult:
    path: str
    opset: int  # the opset the file has (read back from it)
    exporter: str  # "dynamo" or "torchscript"
    bytes: int
    normalize_in_graph: bool
    checker_ok: bool
    checks: tuple[BatchCheck, ...]
    max_abs_diff: float
    agreement: float | None
    latency_ms: float  # onnxruntime, CPU, batch 1, median
    latency_ms_256: float  # the same at batch 256
    files: tuple[str, ...]  # the other files written: weights, script
    opset_asked: int = DEFAULT_OPSET
    note: str | None = None  # e.g. why the file's opset differs from the one asked
    sparse: tuple[str, ...] = ()  # the weights stored sparse (mostly zero after pruning)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checks"] = [asdict(c) for c in self.checks]
        d["files"] = list(self.files)
        return d


class RawInput(nn.Module):
    """Normalization inside the graph: raw values in, the trained model's input out."""

    scale: torch.Tensor  # buffers, registered in __init__
    shift: torch.Tensor

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...],
                 image: bool) -> None:
        super().__init__()
        shape = (1, -1, 1, 1) if image else (1, -1)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(shape)
        std_t = torch.tensor(std, dtype=torch.float32).view(shape)
        unit = 255.0 if image else 1.0
        self.register_buffer("scale", 1.0 / (unit * std_t))
        self.register_buffer("shift", -mean_t / std_t)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * self.scale + self.shift)


def _overall_agreement(checks: Sequence[BatchCheck]) -> float | None:
    """The share of test samples whose class agrees, over every check; None for regression."""
    scored = [(c.agreement, c.samples) for c in checks if c.agreement is not None]
    if not scored:
        return None
    return sum(a * n for a, n in scored) / sum(n for _, n in scored)


def load_run(run_dir: str | Path, *, splits: Splits | None = None,
             source: DataSource | None = None,
             cancel: threading.Event | None = None) -> TrainedRun:
    """Everything export needs from a run folder, or an ExportError saying what is missing."""
    try:
        return load_trained(run_dir, splits=splits, source=source, cancel=cancel)
    except RunError as exc:
        raise ExportError(f"{exc}; it cannot be exported") from exc


def planned_files(out_path: str | Path, *, weights: bool = True,
                  script: bool = True) -> list[Path]:
    """The files an export to `out_path` writes, the named one first."""
    out = Path(out_path)
    files = [out]
    if weights:
        files.append(out.with_suffix(".safetensors"))
    if script:
        files.append(out.with_suffix(".py"))
    return files


def check_destination(out_path: str | Path, *, weights: bool = True, script: bool = True,
                      overwrite: bool = False) -> list[Path]:
    """The files the export will write, or ExportError: a name that is not .onnx, a folder
    that is not there, a file name that is a folder, or (without `overwrite`) files beside
    it that exist and were not named."""
    out = Path(out_path)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"{out}: the file name must end in .onnx")
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such folder")
    files = planned_files(out, weights=weights, script=script)
    limit = name_max(out.parent)
    for path in files:
        length = len(os.fsencode(path.name))
        if length > limit:
            shown = path.name if len(path.name) <= 60 else f"{path.name[:40]}…{path.suffix}"
            also = "" if path == out else f" (the {path.suffix} written beside the .onnx)"
            raise ExportError(f"{shown}{also}: a file name of {length} bytes, more than the "
                              f"{limit} this folder allows; choose a shorter name"
                              + ("" if path == out else " or leave that file out"))
        if path.is_dir():
            raise ExportError(f"{path} is a folder; choose a file name")
    taken = [str(path) for path in files[1:] if path.exists()]
    if taken and not overwrite:
        raise ExportError(f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}"
                          " and would be overwritten: choose another name, leave them out, "
                          "or allow overwriting (--force)")
    check_writable(out)
    return files


def check_writable(out: Path) -> None:
    """ExportError, before any work, when no file can be written beside `out` (a read-only
    file system, a folder without write permission); nothing appears in the folder."""
    problem = unwritable(out.parent)
    if problem is not None:
        raise ExportError(f"cannot write {out}: {problem.strerror or problem}")


def export_run(run_dir: str | Path, out_path: str | Path, *, opset: int = DEFAULT_OPSET,
               normalize_in_graph: bool = False, weights: bool = True, script: bool = True,
               overwrite: bool = False, splits: Splits | None = None,
               source: DataSource | None = None, sparse: bool = True,
               cancel: threading.Event | None = None) -> ExportResult:
    """Export, verify and put in place; raises ExportError with the reason on any failure,
    Cancelled (nothing written) when `cancel` is set before the files are put in place.

    The run's data comes from `splits`, else from `source` (the workspace), else the disk.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or not \
            MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset must be between {MIN_OPSET} and {MAX_OPSET}, got {opset!r}")
    if not (Path(run_dir) / "spec.json").is_file():
        raise ExportError(f"{run_dir} is not a run folder (no spec.json)")
    out = Path(out_path)
    files_planned = check_destination(out, weights=weights, script=script, overwrite=overwrite)
    remove_stale_temps(out.parent, of=[path.name for path in files_planned])
    loaded = load_run(run_dir, splits=splits, source=source, cancel=cancel)
    check_cancel(cancel, "before the export began; nothing was written")
    info = loaded.splits.info
    s = loaded.splits
    module: nn.Module = (RawInput(loaded.model, s.mean, s.std, info.is_image).eval()
                         if normalize_in_graph else loaded.model)
    stopped = "before the file was checked and put in place; nothing was written"
    try:
        with temp_beside(out) as tmp:
            exporter, written = _export(module, info.input_shape, tmp, opset)
            check_cancel(cancel, stopped)
            _add_metadata(tmp, loaded, normalize_in_graph)
            stored_sparse = store_sparse(tmp) if sparse else []
            checks, latency, latency_256 = _verify(tmp, module, loaded, normalize_in_graph)
            check_cancel(cancel, stopped)
        files = []  # the step in flight: the rest is written, and quickly
        if weights:
            files.append(str(save_safetensors(loaded, out.with_suffix(".safetensors"))))
        if script:
            from workbench.core.tools.export_script import ScriptError, write_script

            try:
                files.append(str(write_script(loaded, out.with_suffix(".py"),
                                              out.with_suffix(".safetensors").name)))
            except ScriptError as exc:
                raise ExportError(f"{exc}; export without the script") from exc
    except OSError as exc:
        raise ExportError(f"cannot write {exc.filename or out}: "
                          f"{exc.strerror or exc}") from exc
    note = None
    if written != opset:
        note = (f"opset {opset} was asked, but neither exporter could write it: the file has "
                f"opset {written}")
    return ExportResult(
        path=str(out), opset=written, exporter=exporter, bytes=out.stat().st_size,
        normalize_in_graph=normalize_in_graph, checker_ok=True, checks=checks,
        max_abs_diff=max(c.max_abs_diff for c in checks),
        agreement=_overall_agreement(checks),
        latency_ms=latency, latency_ms_256=latency_256, files=tuple(files), opset_asked=opset,
        note=note, sparse=tuple(stored_sparse))


def file_opset(path: Path) -> int:
    """The default-domain opset an ONNX file declares."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _export(module: nn.Module, input_shape: tuple[int, ...], path: Path,
            opset: int) -> tuple[str, int]:
    """Write the ONNX file at `opset` if an exporter can; (which exporter, the file's opset).

    Below DYNAMO_MIN_OPSET the TorchScript exporter goes first: the dynamo one would write
    its own minimum instead. A file at another opset is kept only when no exporter wrote the
    asked one.
    """
    # its own generator: drawing from the process's would move another job's random numbers
    example = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    errors = []
    fallback: tuple[str, int, bytes] | None = None
    order = (True, False) if opset >= DYNAMO_MIN_OPSET else (False, True)
    for dynamo in order:
        name = "dynamo" if dynamo else "torchscript"
        kw: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME],
                              "opset_version": opset, "dynamo": dynamo, "verbose": False}
        if dynamo:
            kw["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
            kw["external_data"] = False
        else:
            kw["dynamic_axes"] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
        try:
            torch.onnx.export(module, (example,), str(path), **kw)
        except Exception as exc:  # the next exporter may succeed; both errors are reported
            errors.append(f"{name}: {type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}")
            continue
        written = file_opset(path)
        if written == opset:
            return name, written
        fallback = fallback or (name, written, path.read_bytes())
    if fallback is not None:
        path.write_bytes(fallback[2])
        return fallback[0], fallback[1]
    raise ExportError(f"torch.onnx could not export the model at opset {opset}: "
                      + "; ".join(errors))


def _add_metadata(path: Path, loaded: TrainedRun, normalize_in_graph: bool) -> None:
    import onnx

    info = loaded.splits.info
    s = loaded.splits
    if normalize_in_graph:
        expects = ("raw float32 pixels in 0..255" if info.is_image else "raw float32 features")
    else:
        expects = ("float32 (x/255 - mean)/std, x the pixels in 0..255" if info.is_image
                   else "float32 (x - mean)/std")
    props = {
        "class_names": json.dumps(list(info.class_names)),
        "input_shape": json.dumps(list(info.input_shape)),
        "mean": json.dumps(list(s.mean)),
        "std": json.dumps(list(s.std)),
        "normalization_in_graph": json.dumps(normalize_in_graph),
        "input": f"{INPUT_NAME}: (batch, {', '.join(map(str, info.input_shape))}) {expects}",
        "output": (f"{OUTPUT_NAME}: (batch, {info.num_classes}) logits" if info.num_classes
                   else f"{OUTPUT_NAME}: (batch, 1) prediction"),
        "spec": loaded.spec.to_json(),
        "run": loaded.run.path.name,
    }
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "workbench"
    model.producer_version = __version__
    model.doc_string = f"{loaded.spec.name}: exported by Workbench from run {loaded.run.path.name}"
    onnx.save(model, str(path))


def _samples(loaded: TrainedRun, n: int, raw: bool) -> torch.Tensor:
    """The first n test samples (repeated when the split is smaller), raw or normalized."""
    s = loaded.splits
    x = s.test_x if len(s.test_x) else s.val_x
    if len(x) == 0:
        raise ExportError("the run's data has no test or validation samples to verify with")
    idx = torch.arange(n) % len(x)
    if raw:
        return x[idx].to(torch.float32)
    y = torch.zeros(len(x), dtype=torch.long)
    batches = DeviceBatches(x, y, mean=s.mean, std=s.std, batch_size=n,
                            device=torch.device("cpu"), shuffle=False, generator=None,
                            image=s.info.is_image)
    return batches.batch(idx)[0]


def _verify(path: Path, module: nn.Module, loaded: TrainedRun,
            raw: bool) -> tuple[tuple[BatchCheck, ...], float, float]:
    """onnx.checker, then onnxruntime against PyTorch at each batch size of VERIFY_BATCHES."""
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise ExportError(f"onnx.checker rejected the exported model: {exc}") from exc
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load the exported model: {exc}") from exc
    classify = loaded.splits.info.num_classes > 0
    checks = []
    for batch in VERIFY_BATCHES:
        count = batch * 2 if batch > 1 else 8
        x = _samples(loaded, count, raw)
        diffs, agree, ok = [], 0, True
        for start in range(0, count, batch):
            xb = x[start:start + batch]
            with torch.inference_mode():
                want = module(xb).numpy()
            got = session.run(None, {INPUT_NAME: xb.numpy()})[0]
            if got.shape != want.shape:
                raise ExportError(f"onnxruntime returned shape {got.shape} at batch {batch}, "
                                  f"PyTorch {want.shape}")
            diffs.append(float(np.abs(got - want).max()))
            ok = ok and bool(np.allclose(got, want, rtol=RTOL, atol=ATOL))
            if classify:
                agree += int((got.argmax(1) == want.argmax(1)).sum())
        checks.append(BatchCheck(batch, count, max(diffs), agree / count if classify else None,
                                 ok))
    failed = [c for c in checks if not c.ok]
    if failed:
        c = failed[0]
        raise ExportError(f"onnxruntime disagrees with PyTorch at batch {c.batch}: largest "
                          f"absolute difference {c.max_abs_diff:.3g} (allowed: rtol {RTOL}, "
                          f"atol {ATOL}); the file was not written")
    return (tuple(checks), latency_ms(session, _samples(loaded, 1, raw).numpy(), 200),
            latency_ms(session, _samples(loaded, 256, raw).numpy(), 30))


def save_safetensors(loaded: TrainedRun, path: Path) -> Path:
    """The weights as safetensors (masks folded), with the spec in the file's metadata."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in loaded.model.state_dict().items()}
    with temp_beside(path) as tmp:
        save_file(state, str(tmp), metadata={"spec": loaded.spec.to_json(), "format": "pt"})
    return path


__all__ = [
    "DEFAULT_OPSET",
    "MAX_OPSET",
    "MIN_OPSET",
    "BatchCheck",
    "ExportError",
    "ExportResult",
    "RawInput",
    "check_destination",
    "check_writable",
    "export_run",
    "file_opset",
    "load_run",
    "planned_files",
    "save_safetensors",
]
