"""A trained run opened for Inspect, and the whole inspection as the command line writes it.

`Inspection.open(run)` loads the run with the one loader (`load_trained`, the workspace's
dataset cache as its `source`). Each view is then one call, which a panel runs on its worker
thread: `first_layer`, `neurons`, `predictions`, `sample`, `class_attribution`, `equation`.
Every call takes a `cancel` event (checked between batches, samples and layers: it raises
`InspectCancelled`) and the long ones a `progress(done, total)`; calls on one inspection run
one at a time (a lock), since attribution hooks into the shared model.

`inspect_run` gathers every view for the command line and the report; `write_inspection`
writes them as PNG pictures plus `inspect.json`, the numbers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.core.data.cache import DataSource
from workbench.core.store.atomic import write_bytes_atomic, write_text_atomic
from workbench.core.tools.inspect.attribution import (
    Attribution,
    ClassAttribution,
    attribute,
    class_attribution,
    methods_for,
)
from workbench.core.tools.inspect.equation import Equation, linear_equation
from workbench.core.tools.inspect.network import (
    InspectError,
    Predictions,
    check_cancel,
    feature_names,
    is_image,
    layer_label,
    layer_outputs,
    predict,
    raw_input,
    test_batches,
)
from workbench.core.tools.inspect.weights import (
    NeuronMaps,
    WeightImages,
    WeightTable,
    first_layer,
    neuron_maps,
)
from workbench.core.tools.trained import TrainedRun, load_trained

Progress = Callable[[int, int], None]
PER_CLASS = 50  # correctly classified samples averaged per class, by default
RECORD = "inspect.json"


@dataclass(frozen=True)
class LayerActivation:
    """One layer's output for one sample: `values` has the layer's output shape; `zero_share`
    is the share of exact zeros (ReLU units that are off)."""

    layer: str
    shape: tuple[int, ...]
    values: np.ndarray
    mean: float
    low: float
    high: float
    zero_share: float


@dataclass(frozen=True)
class SampleInsight:
    """What test sample `index` does in the network: its input in its own units (an image in
    [0, 1], or its features), every layer's output, the answer and the attribution maps."""

    index: int
    input: np.ndarray
    truth: int | float
    predicted: int | float
    probabilities: np.ndarray | None  # (K,) for classes
    class_names: tuple[str, ...]
    activations: tuple[LayerActivation, ...]
    attributions: tuple[Attribution, ...]
    how_to_read: str

    @property
    def correct(self) -> bool | None:
        return None if self.probabilities is None else self.truth == self.predicted


class Inspection:
    """A trained run opened for inspection; see the module's docstring."""

    def __init__(self, trained: TrainedRun) -> None:
        self.trained = trained
        self.model = trained.model.cpu().eval()
        self.layers = list(trained.spec.model.layers)
        self.splits = trained.splits
        self.info = trained.splits.info
        self._lock = threading.Lock()
        self._predictions: Predictions | None = None

    @classmethod
    def open(cls, run_dir: str | Path, *, source: DataSource | None = None,
             cancel: threading.Event | None = None) -> Inspection:
        """Load a run for inspection (RunError when it has no usable model or data)."""
        return cls(load_trained(run_dir, source=source, cancel=cancel))

    @property
    def task(self) -> str:
        return "classification" if self.info.num_classes > 0 else "regression"

    @property
    def test_size(self) -> int:
        return int(self.splits.test_x.shape[0])

    def layer_labels(self) -> list[str]:
        """Every layer as the editor numbers it (`2 Linear`)."""
        return [layer_label(i, self.layers) for i in range(len(self.layers))]

    def methods(self) -> tuple[str, ...]:
        """The attribution methods this network allows (Grad-CAM: a convolutional one)."""
        example = torch.zeros((1, *self.info.input_shape))  # only its shape matters
        with self._lock:
            return methods_for(self.model, self.layers, example)

    def predictions(self, *, cancel: threading.Event | None = None,
                    progress: Progress | None = None) -> Predictions:
        """The answers on the whole test split (computed once)."""
        with self._lock:
            return self._predict(cancel, progress)

    def _predict(self, cancel: threading.Event | None,
                 progress: Progress | None = None) -> Predictions:
        if self._predictions is None:
            self._predictions = predict(self.model, self.splits, cancel=cancel,
                                        progress=progress)
        return self._predictions

    def first_layer(self) -> WeightImages | WeightTable | None:
        with self._lock:
            return first_layer(self.model, self.layers, self.splits)

    def neurons(self, *, cancel: threading.Event | None = None) -> NeuronMaps | None:
        with self._lock:
            return neuron_maps(self.model, self.layers, self.splits, cancel=cancel)

    def equation(self) -> Equation | None:
        with self._lock:
            return linear_equation(self.model, self.layers, self.splits)

    def _inputs(self, indices: Sequence[int]) -> torch.Tensor:
        batches = test_batches(self.splits)
        return batches.batch(torch.tensor(list(indices), dtype=torch.long))[0]

    def sample(self, index: int, *, methods: Sequence[str] | None = None,
               target: int | None = None,
               cancel: threading.Event | None = None) -> SampleInsight:
        """Test sample `index` (0-based, in test order, as the misclassified are listed):
        its activations, answer and attribution maps (`methods`: all that apply), explaining
        the predicted class unless `target` names another."""
        n = self.test_size
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise InspectError(f"sample {index!r}: the test split has {n:,} samples, "
                               f"numbered 0 to {n - 1:,}")
        with self._lock:
            check_cancel(cancel)
            x = self._inputs([index])
            outputs = layer_outputs(self.model, x)
            activations = tuple(_activation(layer_label(i, self.layers), out[0])
                                for i, out in enumerate(outputs))
            out = outputs[-1][0].float()
            truth_t = self.splits.test_y[index]
            probabilities: np.ndarray | None
            if self.task == "classification":
                probabilities = torch.softmax(out, dim=0).numpy().copy()
                answer = int(out.argmax())
                predicted: int | float = answer
                truth: int | float = int(truth_t)
                explained = answer if target is None else int(target)
                if not 0 <= explained < self.info.num_classes:
                    raise InspectError(f"class {target!r}: the network has "
                                       f"{self.info.num_classes} classes, numbered 0 to "
                                       f"{self.info.num_classes - 1}")
            else:
                probabilities, predicted = None, float(out[0])
                truth, explained = float(truth_t.reshape(-1)[0]), 0
            chosen = (methods if methods is not None
                      else methods_for(self.model, self.layers, x))
            maps = attribute(self.model, self.layers, x, explained, chosen, cancel=cancel)
        return SampleInsight(index, raw_input(self.splits, index), truth, predicted,
                             probabilities, tuple(self.info.class_names), activations, maps, (
            "Activations: every layer's output for this sample, in order, as the editor "
            "numbers the layers; a ReLU's zeros are units that are off. "
            + ("Probabilities: the softmax of the last layer's outputs, one per class; the "
               "answer is the largest." if probabilities is not None else
               "The last layer's output is the predicted value, in the target's own units.")))

    def class_attribution(self, *, method: str = "integrated_gradients",
                          per_class: int = PER_CLASS, cancel: threading.Event | None = None,
                          progress: Progress | None = None) -> ClassAttribution | None:
        """Each class's average attribution over its correctly classified test samples;
        None for a regression."""
        if self.task != "classification":
            return None
        if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
            raise InspectError(f"per_class must be a whole number of at least 1, got "
                               f"{per_class!r}")
        with self._lock:
            predictions = self._predict(cancel)
            x = self._inputs(range(self.test_size))
            return class_attribution(self.model, x, predictions.predicted, predictions.truth,
                                     self.info.class_names, method=method,
                                     per_class=per_class, cancel=cancel, progress=progress)


def _activation(label: str, out: torch.Tensor) -> LayerActivation:
    values = out.detach().float()
    return LayerActivation(label, tuple(values.shape), values.numpy().copy(),
                           float(values.mean()), float(values.min()), float(values.max()),
                           float((values == 0).float().mean()))


@dataclass
class InspectResult:
    """Every view of one run, as `workbench inspect` and the report show them."""

    run_dir: str
    name: str
    task: str
    layers: list[str]
    class_names: tuple[str, ...]
    predictions: Predictions
    first_layer: WeightImages | WeightTable | None = None
    neurons: NeuronMaps | None = None
    equation: Equation | None = None
    samples: list[SampleInsight] = field(default_factory=list)
    classes: ClassAttribution | None = None
    image_input: bool = False
    feature_names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The numbers behind the pictures, as plain JSON."""
        p = self.predictions
        doc: dict[str, Any] = {"run_dir": self.run_dir, "name": self.name, "task": self.task,
                               "layers": self.layers, "test_samples": len(p.truth)}
        if self.task == "classification":
            doc["class_names"] = list(self.class_names)
            doc["test_accuracy"] = p.accuracy
            doc["misclassified"] = [{"index": i, "true": t, "predicted": q}
                                    for i, t, q in p.misclassified()]
        if self.first_layer is not None:
            doc["first_layer"] = _first_layer_json(self.first_layer)
        if self.neurons is not None:
            doc["neurons"] = {"extent": list(self.neurons.extent),
                              "layers": [{"layer": m.layer, "units": m.units,
                                          "shown": int(m.maps.shape[0]),
                                          "low": float(m.maps.min()),
                                          "high": float(m.maps.max())}
                                         for m in self.neurons.layers],
                              "how_to_read": self.neurons.how_to_read}
        if self.equation is not None:
            doc["equation"] = self.equation.to_summary()
        doc["samples"] = [_sample_json(s) for s in self.samples]
        if self.classes is not None:
            c = self.classes
            doc["classes"] = {"method": c.method, "counts": dict(zip(
                c.class_names, c.counts, strict=True)), "how_to_read": c.how_to_read,
                "total_abs": {n: float(np.abs(m).sum()) for n, m in
                              zip(c.class_names, c.maps, strict=True)}}
        return doc


def _first_layer_json(view: WeightImages | WeightTable) -> dict[str, Any]:
    doc: dict[str, Any] = {"layer": view.layer, "how_to_read": view.how_to_read,
                           "low": float(view.weights.min()), "high": float(view.weights.max())}
    if isinstance(view, WeightTable):
        doc["features"] = list(view.feature_names)
        doc["weights"] = view.weights.round(6).tolist()
        doc["weights_raw"] = view.raw.round(6).tolist()
    else:
        doc["shape"] = list(view.weights.shape)
        doc["what"] = view.what
    return doc


def _sample_json(s: SampleInsight) -> dict[str, Any]:
    doc: dict[str, Any] = {"index": s.index, "true": s.truth, "predicted": s.predicted,
                           "how_to_read": s.how_to_read}
    if s.probabilities is not None:
        doc["true_class"] = s.class_names[int(s.truth)]
        doc["predicted_class"] = s.class_names[int(s.predicted)]
        doc["probabilities"] = {n: round(float(p), 6) for n, p in
                                zip(s.class_names, s.probabilities, strict=True)}
    doc["activations"] = [{"layer": a.layer, "shape": list(a.shape), "mean": a.mean,
                           "min": a.low, "max": a.high, "zero_share": a.zero_share}
                          for a in s.activations]
    doc["attributions"] = [{"method": a.method, "target": a.target, "layer": a.layer,
                            "completeness_error": a.delta, "sum": float(a.values.sum()),
                            "abs_sum": float(np.abs(a.values).sum()),
                            "how_to_read": a.how_to_read}
                           for a in s.attributions]
    return doc


def plain(value: Any) -> Any:
    """JSON-ready: numpy numbers as Python's, a number that is not finite as None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def default_samples(predictions: Predictions) -> list[int]:
    """The samples inspected when none is named: the first test sample and, for classes, the
    first misclassified one."""
    if len(predictions.truth) == 0:
        return []
    chosen = [0]
    wrong = predictions.misclassified(limit=1)
    if wrong and wrong[0][0] != 0:
        chosen.append(wrong[0][0])
    return chosen


def inspect_run(run_dir: str | Path, *, source: DataSource | None = None,
                samples: Sequence[int] | None = None, per_class: int = PER_CLASS,
                cancel: threading.Event | None = None,
                progress: Callable[[str], None] | None = None) -> InspectResult:
    """Every view of a run: the first layer, the neuron maps (2-D sets), the equation (no
    hidden layer), the `samples` (default: `default_samples`) and the class averages."""
    def step(what: str) -> None:
        check_cancel(cancel)
        if progress is not None:
            progress(what)

    step("loading the run")
    ins = Inspection.open(run_dir, source=source, cancel=cancel)
    step("predicting the test split")
    predictions = ins.predictions(cancel=cancel)
    chosen = list(samples) if samples is not None else default_samples(predictions)
    for index in chosen:  # refuse a bad index before the long work
        if not 0 <= index < ins.test_size:
            raise InspectError(f"--sample {index}: the test split has {ins.test_size:,} "
                               f"samples, numbered 0 to {ins.test_size - 1:,}")
    result = InspectResult(str(run_dir), ins.trained.spec.name, ins.task, ins.layer_labels(),
                           tuple(ins.info.class_names), predictions,
                           image_input=is_image(ins.info),
                           feature_names=feature_names(ins.info))
    step("the first layer")
    result.first_layer = ins.first_layer()
    result.neurons = ins.neurons(cancel=cancel)
    result.equation = ins.equation()
    for index in chosen:
        step(f"sample {index}")
        result.samples.append(ins.sample(index, cancel=cancel))
    if ins.task == "classification" and ins.test_size:
        step("the class averages")
        result.classes = ins.class_attribution(per_class=per_class, cancel=cancel)
    return result


def write_inspection(result: InspectResult, out_dir: str | Path) -> list[Path]:
    """The pictures as PNG files and the numbers as `inspect.json` in `out_dir` (made when
    missing); the files written, the JSON last."""
    from workbench.core.tools.inspect.render import figures

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    doc = result.to_json()
    doc["pictures"] = []
    for fig in figures(result):
        path = folder / f"{fig.name}.png"
        write_bytes_atomic(path, fig.png)
        written.append(path)
        doc["pictures"].append({"file": path.name, "title": fig.title,
                                "how_to_read": fig.how_to_read})
    record = folder / RECORD
    write_text_atomic(record, json.dumps(plain(doc), indent=2, allow_nan=False) + "\n")
    written.append(record)
    return written


__all__ = ["PER_CLASS", "InspectResult", "Inspection", "LayerActivation", "SampleInsight",
           "default_samples", "inspect_run", "write_inspection"]
