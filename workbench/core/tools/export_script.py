"""A standalone PyTorch script for a run: rebuild the model, load its weights, train it again.

Nothing from the spec, a data file or a path is pasted into code: the run travels as one JSON
document inside one string literal (`repr` of `json.dumps`), which the script reads back with
`json.loads`. A spec's name holding quotes and code is text in that document, never code.

Nor is the recipe a second copy of the trainer's: the script carries the source of Workbench's
own self-contained functions and classes (`RUNTIME`: the dataset readers, the splits, the device
batches and their augmentation, the layer builder and the run's random streams, the optimizer,
the schedule, the training step, the evaluation, early stopping), taken with
`inspect.getsource` when the script is written. Only the loop that calls them is the
script's, and tests/test_export_script.py proves it follows the trainer: on the CPU the
script retrains the run's weights bit for bit.

The script needs torch and numpy (and safetensors to load the exported weights). It reads the
generated sets, CSV files, the MNIST family's IDX files and CIFAR-10 (binary or python
version, the latter with the restricted unpickler) by itself; image folders through
Workbench, when it is installed.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import __version__
from workbench.core.data.loading import default_root
from workbench.core.store.atomic import write_text_atomic
from workbench.spec.layers import CATALOGUE, layer_cost

if TYPE_CHECKING:
    from workbench.core.tools.trained import TrainedRun

SCRIPT_FORMAT = 1

# (module, names) emitted into the script in this order: functions and classes as their
# source, constants as their value. Each needs nothing but these and the imports of _HEADER
# (tests/test_export_script.py checks it).
RUNTIME: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("workbench.core.data.errors", ("DataError",)),
    ("workbench.spec", ("AugmentSpec", "DataSpec", "OptimSpec", "ScheduleSpec",
                        "RegularizationSpec", "TrainSpec")),
    ("workbench.core.data.idx", ("UBYTE", "FILES", "_read_bytes", "parse_idx", "read_idx",
                                 "find_file", "read_idx_dataset")),
    ("workbench.core.data.cifar", ("CLASSES", "RECORD", "BIN_FOLDER", "PY_FOLDER", "TRAIN",
                                   "TEST", "_check_labels", "_read_batch_file",
                                   "read_bin_batch", "_ArrayOnlyUnpickler", "read_py_batch",
                                   "find_folder", "read_cifar10")),
    ("workbench.core.data.tables", ("MAX_CLASS_VALUES", "MAX_CLASSES", "MAX_FEATURE",
                                    "MAX_TARGET", "MAX_BYTES", "TargetReading", "Table",
                                    "_number", "_too_large", "_class_name", "_span",
                                    "guess_target", "read_csv", "_labels")),
    ("workbench.core.data.synthetic", ("_class_counts", "_labels_for", "spirals", "moons",
                                       "circles", "xor", "blobs", "line", "sine", "GENERATORS",
                                       "REGRESSION", "generate")),
    ("workbench.spec.datasets", ("split_count", "split_sizes")),
    ("workbench.core.data.splits", ("STD_FLOOR", "_SPLIT_SALT", "DatasetInfo", "Splits",
                                    "split_rng", "shuffle_split", "holdout_split",
                                    "image_stats", "feature_stats", "make_splits",
                                    "split_arrays", "split_with_test")),
    ("workbench.core.data.loading", ("IDX_SETS", "_table_info", "read_splits")),
    ("workbench.core.memory", ("EVAL_BATCH",)),
    ("workbench.core.data.batches", ("DeviceBatches", "random_crop", "random_hflip")),
    ("workbench.core.model", ("module_for",)),
    ("workbench.core.network", ("RunDropout", "init_parameters", "assemble")),
    ("workbench.core.training.streams", ("RunStreams",)),
    ("workbench.core.training.optim", ("_FUSED", "CAPTURABLE", "uses_coupled_l2",
                                       "build_optimizer", "set_lr", "LRSchedule",
                                       "loss_function")),
    ("workbench.core.training.step", ("EagerStep", "evaluate")),
    ("workbench.core.training.callbacks", ("Callback", "EarlyStopping")),
)


class ScriptError(RuntimeError):
    """The script cannot be written (this Workbench lacks its own source, e.g. a frozen build
    made without it)."""


def _constant(name: str, value: Any) -> str:
    """A constant of the core as code: sets sorted so that the script is reproducible."""
    if isinstance(value, frozenset | set):
        return f"{name} = {type(value).__name__}({sorted(value)!r})\n"
    if isinstance(value, dict) and value and all(callable(v) for v in value.values()):
        items = ", ".join(f"{k!r}: {v.__name__}" for k, v in value.items())
        return f"{name} = {{{items}}}\n"
    return f"{name} = {value!r}\n"


def runtime_source() -> str:
    """The source of every RUNTIME name, module by module; ScriptError when it is not there."""
    parts: list[str] = []
    seen: set[str] = set()
    for module_name, names in RUNTIME:
        module = importlib.import_module(module_name)
        parts.append(f"\n# {'-' * 20} from {module_name} {'-' * (68 - len(module_name))}\n")
        for name in names:
            if name in seen:
                raise ScriptError(f"{name} is defined twice in the exported runtime")
            seen.add(name)
            value = getattr(module, name)
            if inspect.isfunction(value) or inspect.isclass(value):
                try:
                    parts.append("\n\n" + inspect.getsource(value))
                except (OSError, TypeError) as exc:
                    raise ScriptError(f"the source of {module_name}.{name} is not available "
                                      f"in this build of Workbench ({exc})") from exc
            else:
                parts.append(_constant(name, value))
    return "".join(parts)


def recipe(loaded: TrainedRun, weights_name: str) -> dict[str, Any]:
    """Everything the script knows of the run, as plain JSON data."""
    spec = loaded.spec
    info = loaded.splits.info
    shape = tuple(info.input_shape)
    layers = []
    for layer in spec.model.layers:
        layers.append({"type": layer.type, "params": CATALOGUE[layer.type].resolve(layer.params),
                       "in_shape": list(shape)})
        shape = layer_cost(layer, shape).out_shape
    root = default_root(spec.data) if info.name not in ("csv", "image_folder") else None
    return {
        "format": SCRIPT_FORMAT, "workbench": __version__, "name": spec.name,
        "run": loaded.run.path.name, "weights": weights_name, "spec": spec.to_dict(),
        "info": dataclasses.asdict(info),
        "layers": layers, "mean": list(loaded.splits.mean), "std": list(loaded.splits.std),
        "data_root": str(root) if root is not None else None,
    }


def script_text(loaded: TrainedRun, weights_name: str) -> str:
    """The whole script: a fixed header, RECIPE as one string literal, the runtime, the loop."""
    document = json.dumps(recipe(loaded, weights_name), allow_nan=False, sort_keys=True)
    return _HEADER + f"RECIPE = json.loads({document!r})\n" + runtime_source() + _SCRIPT


def write_script(loaded: TrainedRun, path: Path, weights_name: str) -> Path:
    write_text_atomic(path, script_text(loaded, weights_name))
    return path


_HEADER = '''"""A Workbench run as a standalone PyTorch script: its network, weights and recipe.

    python THIS.py                        rebuild the model, load the weights beside it, print it
    python THIS.py --train [DATA]         train it again from scratch with the same recipe
    python THIS.py --train DATA --epochs 1 --threads 1 --out retrained.pt

DATA is the dataset's folder (a CSV file for a CSV set); without it, the folder the run used.
Each epoch prints one JSON line. The run itself (its name, data, layers, recipe) is the JSON
document RECIPE below. The code after it is Workbench's own, copied from its source when the
script was written; only the short loop at the end is the script's. On the CPU, with the
same data, seed and thread count, it retrains the run bit for bit.

Needs torch and numpy, and safetensors to load the weights.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import copy
import csv
import dataclasses
import gzip
import importlib
import io
import json
import math
import pickle
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

'''

_SCRIPT = '''

# -------------------- this script ----------------------------------------------------------


def spec_of(recipe):
    """The experiment as Workbench's functions above read it, made of the spec's classes."""
    d = recipe["spec"]
    data = dict(d["data"], augment=AugmentSpec(**d["data"]["augment"]))
    optim = dict(d["optim"], betas=tuple(d["optim"]["betas"]))
    return SimpleNamespace(name=d["name"], data=DataSpec(**data), optim=OptimSpec(**optim),
                           schedule=ScheduleSpec(**d["schedule"]),
                           regularization=RegularizationSpec(**d["regularization"]),
                           train=TrainSpec(**d["train"]))


SPEC = spec_of(RECIPE)
INFO = DatasetInfo(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in RECIPE["info"].items()})
CPU = torch.device("cpu")


def build_model(streams=None):
    """The network, built layer by layer as Workbench builds it: for training, its weights
    and Dropout's masks drawn from the run's own random streams."""
    layers = [(layer["type"], layer["params"], tuple(layer["in_shape"]))
              for layer in RECIPE["layers"]]
    if streams is None:
        return assemble(layers)
    return assemble(layers, generator=streams.model, dropout=streams.dropout)


def load_model(path=None):
    """The trained network in eval mode, from the weights exported beside this script."""
    from safetensors.torch import load_file

    model = build_model()
    model.load_state_dict(load_file(str(path or Path(__file__).with_name(RECIPE["weights"]))))
    return model.eval()


def normalize(x_raw):
    """Raw inputs (uint8 images (N, C, H, W), or features (N, F)) as the model takes them."""
    x = torch.as_tensor(x_raw)
    batches = DeviceBatches(x, torch.zeros(len(x)), mean=RECIPE["mean"], std=RECIPE["std"],
                            batch_size=max(1, len(x)), device=CPU, shuffle=False,
                            generator=None, image=INFO.is_image)
    return batches.batch(torch.arange(len(x)))[0]


def predict(model, x_raw):
    """Class indices (or regression values) for raw inputs."""
    with torch.no_grad():
        out = model(normalize(x_raw))
    return out.argmax(1) if INFO.num_classes else out.squeeze(1)


def load_data(source=None):
    """The train/val/test splits, read and split as the run's were."""
    data = copy.deepcopy(SPEC.data)
    if INFO.name == "image_folder":
        return _through_workbench(source)
    if INFO.name == "csv" and source:
        data.path = str(source)
    root = source or RECIPE["data_root"]
    return read_splits(data, INFO, Path(root) if root else None, SPEC.train.seed)


def _through_workbench(source):
    try:
        from workbench import spec as specmod
        from workbench.core.data import load_splits
    except ImportError:
        raise SystemExit("image folders are read by Workbench: install it to retrain this "
                         "model") from None
    spec = specmod.from_dict(RECIPE["spec"])
    if source:
        spec.data.path = str(source)
    return load_splits(spec.data, spec.train.seed)


class _Stopper:
    """What early stopping asks of a trainer: the model, and a way to ask for a stop."""

    def __init__(self, model):
        self.model = model
        self.stop_requested = False

    def request_stop(self, *, early=False):
        self.stop_requested = True


def train(source=None, epochs=None, log=print):
    """Train from scratch with the run's recipe, on the CPU; returns the trained network."""
    spec, device = SPEC, CPU
    splits = load_data(source)
    classes = splits.info.num_classes
    streams = RunStreams.seeded(spec.train.seed, device)
    memory = torch.channels_last if spec.train.channels_last else torch.contiguous_format
    model = build_model(streams).to(device, memory_format=memory)
    gen = streams.batches
    n = splits.train_x.shape[0]
    bs = n if spec.optim.name == "gd" else min(spec.train.batch_size, n)
    common = {"mean": splits.mean, "std": splits.std, "device": device,
              "image": splits.info.kind == "image", "channels_last": spec.train.channels_last}
    augment = spec.data.augment if spec.data.augment.active else None
    train_batches = DeviceBatches(splits.train_x, splits.train_y, batch_size=bs, shuffle=True,
                                  generator=gen, augment=augment, drop_last=0 < n % bs < 2,
                                  **common)
    val_batches = DeviceBatches(splits.val_x, splits.val_y, batch_size=EVAL_BATCH,
                                shuffle=False, generator=None, **common)
    steps = len(train_batches)
    optimizer = build_optimizer(spec, model.parameters(), device)
    schedule = LRSchedule(spec, steps)
    loss_fn = loss_function(classes)
    step = EagerStep(model, optimizer, loss_fn, spec, classes, device)
    reg = spec.regularization
    early = (EarlyStopping(reg.early_stop_patience, reg.early_stop_min_delta)
             if reg.early_stop_patience else None)
    stopper = _Stopper(model)
    for epoch in range(epochs or spec.train.epochs):
        perm = torch.randperm(n, generator=gen, device=device)
        for i in range(steps):
            xb, yb = train_batches.batch(perm[i * bs:(i + 1) * bs])
            step(xb, yb, schedule.lr(epoch, i))
        loss_sum, correct, count = step.take()
        val = (evaluate(model, val_batches.x, val_batches.y, val_batches.batch, loss_fn,
                        classes) if val_batches.num_samples else None)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, count),
                  "train_accuracy": correct / max(1, count) if classes else None,
                  "val_loss": val["loss"] if val else None,
                  "val_accuracy": val["accuracy"] if val else None,
                  "lr": schedule.lr(epoch, steps - 1)}
        if record["val_loss"] is not None:
            schedule.on_epoch_end(record["val_loss"])
        log(json.dumps(record))
        if early is not None:
            early.on_epoch_end(stopper, record)
            if stopper.stop_requested:
                break
    if early is not None:
        early.on_run_end(stopper)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="?", const="", metavar="DATA",
                        help="train from scratch (DATA: the dataset's folder or CSV file)")
    parser.add_argument("--epochs", type=int, help="train this many epochs, not the run's")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    parser.add_argument("--out", help="where the retrained weights go (default: beside this "
                                      "script, .retrained.pt)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.train is None:
        model = load_model()
        print(model)
        print(sum(p.numel() for p in model.parameters()), "parameters")
        return 0
    try:
        model = train(args.train or None, args.epochs)
    except DataError as exc:
        sys.stderr.write(f"error: {exc}\\n")
        return 2
    out = Path(args.out) if args.out else Path(__file__).with_suffix(".retrained.pt")
    torch.save(model.state_dict(), out)
    sys.stderr.write(f"wrote {out}\\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

__all__ = ["RUNTIME", "ScriptError", "recipe", "runtime_source", "script_text",
           "write_script"]
