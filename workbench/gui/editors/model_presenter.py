"""What the layer stack editor decides and says, Qt-free (tested without a QApplication): what
it knows of the data without loading it, the starting templates, how shapes and sizes read,
the device whose memory counts, and whether training fits in it (from the shapes alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.core.memory import (
    DeviceMemory,
    DoesNotFit,
    MemoryEstimate,
    check_fits,
    cpu_memory,
    estimate_memory,
    human_bytes,
)
from workbench.core.model import ModelReport
from workbench.spec import DataSpec, ExperimentSpec, LayerSpec
from workbench.spec.datasets import DATASETS
from workbench.spec.layers import shape_text as spec_shape_text

MEMORY_FIELDS = frozenset({"optim.name", "train.batch_size", "train.device"})
MEMORY_TIP = ("Estimated from the shapes: parameters, gradients, optimizer state, one batch's "
              "activations, the data and an evaluation batch")


@dataclass(frozen=True)
class DataShape:
    """What the editor needs of the data, known without loading it."""

    input_shape: tuple[int, ...] | None  # None: unknown (see `problem`)
    num_classes: int | None  # 0: regression
    num_samples: int = 0
    test_samples: int | None = None  # an official test split's size
    problem: str | None = None


READING = "reading the data to learn its input shape and classes…"
FileKey = tuple[str, str | None, str | None, str]


def catalogue_shape(data: DataSpec) -> DataShape | None:
    """The data's shape, classes and size when the catalogue and the spec alone tell; None
    when the file must be looked at (a CSV, an image folder)."""
    entry = DATASETS.get(data.name)
    if entry is None:
        return DataShape(None, None, problem=f"data.name: unknown dataset {data.name!r}")
    if entry.input_shape is not None and entry.num_classes is not None:
        return DataShape(entry.input_shape, entry.num_classes, entry.samples or data.samples,
                         entry.test_samples)
    if not data.path:
        return DataShape(None, None, problem=f"data.path: the {entry.title} dataset needs a "
                                             "file or folder")
    return None


def file_key(data: DataSpec) -> FileKey:
    """What the description of a file-based dataset depends on (a CSV's declared target
    decides its classes, or one output)."""
    return data.name, data.path, data.label_column, data.target


def templates(num_classes: int) -> dict[str, list[LayerSpec]]:
    """Starting points; the last layer is sized for the current dataset."""
    out = num_classes if num_classes > 0 else 1

    def L(t: str, **p: Any) -> LayerSpec:  # noqa: N802 - reads like the JSON
        return LayerSpec(t, p)

    return {
        "MLP": [L("Flatten"), L("Linear", out=128), L("ReLU"), L("Linear", out=64), L("ReLU"),
                L("Linear", out=out)],
        "Small CNN": [L("Conv2d", out=16, kernel=3, padding=1), L("BatchNorm"), L("ReLU"),
                      L("MaxPool2d", kernel=2), L("Conv2d", out=32, kernel=3, padding=1),
                      L("BatchNorm"), L("ReLU"), L("MaxPool2d", kernel=2), L("Flatten"),
                      L("Dropout", p=0.25), L("Linear", out=out)],
        "Logistic regression": [L("Flatten"), L("Linear", out=out)],
        "2-D playground net": [L("Linear", out=16), L("Tanh"), L("Linear", out=16), L("Tanh"),
                               L("Linear", out=out)],
    }


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:,.0f}"


def shape_text(shape: tuple[int, ...] | None) -> str:
    """A shape as the app writes it (`3`, `1×28×28`); a dash when it is unknown."""
    return "—" if shape is None else spec_shape_text(shape)


def input_text(shape: tuple[int, ...], classes: int | None) -> str:
    """The stack's input, as the editor's header says it."""
    what = (f"{shape[0]} feature{'s' if shape[0] != 1 else ''}" if len(shape) == 1
            else f"images {shape_text(shape)}")
    return f"Input: {what} · " + (f"{classes} classes" if classes else "regression")


def totals_text(report: ModelReport) -> str:
    return (f"Total: {report.total_params:,} parameters ({human_bytes(report.param_bytes)}) · "
            f"{human(report.total_macs)} MACs per sample · output "
            f"{shape_text(report.output_shape)}")


def device_memory(device: str, gpu: str | None) -> DeviceMemory:
    """Free memory of the device the experiment would train on; `gpu` is what the device
    probe found (a GPU's name, "" for none, None before it answered: `auto` is the CPU)."""
    if device == "cpu" or (device == "auto" and not gpu):
        return cpu_memory()
    if not gpu:  # not probed yet, or cuda asked for on a machine without one
        return DeviceMemory("the GPU", None)
    import torch

    from workbench.core.memory import device_memory as probe

    try:
        return probe(torch.device("cuda" if device == "auto" else device))
    except (RuntimeError, AssertionError, ValueError):  # cuda:N this machine lacks
        return DeviceMemory(f"the GPU {device}", None)


def memory_check(spec: ExperimentSpec, report: ModelReport, data: DataShape,
                 memory: DeviceMemory) -> tuple[MemoryEstimate, str, str | None]:
    """The memory training needs against what its device has: the estimate, the line that
    says it in a few words (its parts are `estimate.breakdown()`; "" when it does not fit: the
    problem says it all), and the refusal (the trainer would refuse it too, from the same
    estimate) or None."""
    on_gpu = memory.label.startswith("the GPU")
    estimate = estimate_memory(spec, report, num_samples=data.num_samples,
                               test_samples=data.test_samples,
                               num_classes=data.num_classes or 0, cpu=not on_gpu)
    available = ("" if memory.available is None else
                 f"; {memory.label} has {human_bytes(memory.available)} available")
    line = f"Memory to train: about {human_bytes(estimate.total)}{available}"
    try:
        check_fits(estimate, memory)
    except DoesNotFit as exc:
        return estimate, "", str(exc)
    return estimate, line, None


def problem_text(problem: str | None) -> str:
    return f"⚠ {problem}" if problem else "✓ The stack fits the data."


