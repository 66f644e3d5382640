"""What the trainer tells its driver: small frozen value objects, cheap to send across threads.

A test reads them in a `for` loop, the CLI prints them, the GUI's worker re-emits them as
signals. Progress comes a few times a second, not once per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    device: str
    device_name: str
    task: str  # "classification" | "regression"
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    train_size: int
    val_size: int
    test_size: int
    steps_per_epoch: int
    epochs: int
    start_epoch: int
    num_params: int
    step_kind: str  # "eager", "linear-stack" or "cuda-graph": which training step runs
    resumed: bool = False
    step_note: str | None = None  # why the fast step was not used, when it was wanted
    # what the run trains with that another job in the process set (threads, CUDA switches)
    shared: tuple[str, ...] = ()


@dataclass(frozen=True)
class Progress:
    epoch: int  # 0-based epoch in flight
    step: int  # steps done in this epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    train_loss: float  # mean over the steps since the previous Progress
    train_accuracy: float | None
    lr: float
    samples_per_sec: float
    elapsed: float
    eta: float


@dataclass(frozen=True)
class EpochEnded:
    epoch: int  # epochs done (1-based)
    global_step: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None  # None: no validation split
    val_accuracy: float | None
    lr: float
    grad_norm: float
    samples_per_sec: float
    epoch_seconds: float
    elapsed: float


@dataclass(frozen=True)
class LayerHealth:
    name: str
    grad_norm: float
    weight_hist: tuple[float, ...]  # counts over `edges`
    edges: tuple[float, ...]
    dead_fraction: float | None  # share of units never positive on a probe batch (ReLU only)


@dataclass(frozen=True)
class Health:
    """Per-layer gradient and weight statistics, sent at a few points per epoch."""

    global_step: int
    epoch: float
    layers: tuple[LayerHealth, ...]
    warning: str | None = None


@dataclass(frozen=True)
class Boundary:
    """The model's prediction on a grid over a 2-D dataset: what the decision boundary is."""

    global_step: int
    extent: tuple[float, float, float, float]  # x0, x1, y0, y1 in raw input units
    probs: Any  # numpy (res, res) probability of class 1, or (res, res) predicted class


@dataclass(frozen=True)
class RunFinished:
    run_dir: str
    stopped: bool
    early_stopped: bool
    epochs: int  # whole epochs done
    seconds: float
    test_loss: float | None  # None: no test split
    test_accuracy: float | None
    best_val_accuracy: float | None
    summary: dict[str, Any] = field(default_factory=dict)
    confusion: tuple[tuple[int, ...], ...] | None = None
    misclassified: tuple[tuple[int, int, int], ...] = ()  # (test index, true, predicted)
    global_step: int = 0  # steps done in all, earlier processes of a resumed run included
    steps_per_epoch: int = 0

    @property
    def epochs_run(self) -> float:
        """Epochs done, with the share of the one a stop cut short (2.4: 40% into epoch 3)."""
        return self.global_step / self.steps_per_epoch if self.steps_per_epoch else self.epochs

    @property
    def done(self) -> str:
        """What the run did, in words: "3 epochs", "40% into epoch 1"."""
        return describe_progress(self.global_step, self.steps_per_epoch)


def describe_progress(global_step: int, steps_per_epoch: int) -> str:
    """Steps done as a person reads them: "no step", "3 epochs", "40% into epoch 1",
    "2 epochs and 40% into epoch 3" (a share below 1% says "<1%", one above 99% "99%")."""
    if global_step <= 0 or steps_per_epoch <= 0:
        return "no step"
    whole, part = divmod(global_step, steps_per_epoch)
    epochs = f"{whole} epoch{'s' if whole != 1 else ''}"
    if part == 0:
        return epochs
    share = part / steps_per_epoch
    percent = "<1%" if share < 0.01 else f"{min(share, 0.99):.0%}"
    into = f"{percent} into epoch {whole + 1}"
    return into if whole == 0 else f"{epochs} and {into}"


@dataclass(frozen=True)
class RunFailed:
    run_dir: str | None
    reason: str
    hint: str
    epoch: int = 0
    details: str | None = None  # a bug's traceback: the run's traceback.txt, or the log file


Event = RunStarted | Progress | EpochEnded | Health | Boundary | RunFinished | RunFailed
