"""cuDNN's autotuner and TF32 for convolutional networks on CUDA only, undone when a run ends.

The switches are plain flags, so this runs without a GPU; tests/test_cuda.py checks a real run."""

from __future__ import annotations

import torch
from torch import nn

from workbench import spec as specmod
from workbench.core.training.backends import backend_settings, current_settings
from workbench.core.training.callbacks import Callback
from workbench.core.training.events import RunFinished
from workbench.core.training.loop import Trainer
from workbench.core.training.process import backends_for

CONV = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
MLP = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
CUDA = torch.device("cuda")


def test_only_convolutions_on_cuda_get_the_autotuner_and_tf32():
    assert backend_settings(CONV, CUDA) == {"cudnn.benchmark": True,
                                           "cudnn.conv.fp32_precision": "tf32",
                                           "cuda.matmul.fp32_precision": "tf32"}
    assert backend_settings(CONV, torch.device("cuda:1"))["cudnn.benchmark"] is True
    assert backend_settings(MLP, CUDA) == {}
    assert backend_settings(CONV, torch.device("cpu")) == {}


def test_the_switches_hold_while_the_block_runs_and_are_put_back():
    before = current_settings()
    with backends_for(CONV, CUDA) as wanted:
        now = current_settings()
        assert all(now[name] == value for name, value in wanted.items())
        assert torch.backends.cudnn.benchmark is True
    assert current_settings() == before
    try:
        with backends_for(CONV, CUDA):
            raise RuntimeError("a failed run")
    except RuntimeError:
        pass
    assert current_settings() == before


class _Record(Callback):
    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    def on_run_start(self, trainer) -> None:
        self.seen = current_settings()


def test_a_cpu_run_changes_no_switch():
    before = current_settings()
    record = _Record()
    spec = specmod.from_dict({
        "data": {"name": "mnist_small", "val_fraction": 0.1},
        "model": {"layers": [{"type": "Conv2d", "out": 2, "kernel": 3}, {"type": "ReLU"},
                             {"type": "MaxPool2d", "kernel": 4}, {"type": "Flatten"},
                             {"type": "Linear", "out": 10}]},
        "train": {"epochs": 1, "batch_size": 256, "device": "cpu"}})
    events = list(Trainer(spec, store=False, callbacks=[record]).events())
    assert isinstance(events[-1], RunFinished)
    assert record.seen == before == current_settings()
