"""Small trained runs for the pruning and export tests: real models, seconds to train."""

from __future__ import annotations

from pathlib import Path

from workbench.core.store.runs import RunStore
from workbench.core.training.events import RunFinished
from workbench.core.training.loop import Trainer
from workbench.spec import from_dict

MLP = [{"type": "Flatten"}, {"type": "Linear", "out": 32}, {"type": "ReLU"},
       {"type": "Linear", "out": 16}, {"type": "ReLU"}, {"type": "Linear", "out": 10}]
CNN = [{"type": "Conv2d", "out": 6, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
       {"type": "Conv2d", "out": 8, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2}, {"type": "Flatten"},
       {"type": "Dropout", "p": 0.25}, {"type": "Linear", "out": 16}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "Linear", "out": 10}]
MOONS = [{"type": "Linear", "out": 32}, {"type": "ReLU"}, {"type": "Linear", "out": 32},
         {"type": "ReLU"}, {"type": "Linear", "out": 2}]


def train_run(root: Path, layers: list[dict], *, data: dict | None = None, epochs: int = 1,
              lr: float = 0.003, batch_size: int = 64, name: str = "tiny") -> str:
    """Train a spec on the CPU and return its run folder."""
    spec = from_dict({
        "name": name, "data": data or {"name": "mnist_small", "val_fraction": 0.2},
        "model": {"layers": layers}, "optim": {"name": "adam", "lr": lr},
        "train": {"epochs": epochs, "batch_size": batch_size, "device": "cpu"}})
    finished = None
    for event in Trainer(spec, runs=RunStore(root)).events():
        if isinstance(event, RunFinished):
            finished = event
    assert finished is not None, "the sample run did not finish"
    return finished.run_dir
