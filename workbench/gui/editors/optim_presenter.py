"""What the optimizer panel's learning-rate preview shows, Qt-free (tested without a
QApplication): the rate at every step of the planned epochs for the data in the editor.

The steps per epoch come from the data the editor holds, never from data loaded before: the
training samples the split arithmetic leaves (`core.memory.train_samples`, as the trainer
splits) batched as the trainer batches (`core.memory.steps_per_epoch`), of a size the
catalogue knows or the workspace read from the file. While the size is unknown (a file still
being read, or one that cannot be) the preview says so and draws nothing. The curve is the
trainer's own schedule (`core.training.optim.lr_curve`, from `LRSchedule`).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.memory import steps_per_epoch, train_samples
from workbench.gui.editors.model_presenter import DataShape
from workbench.spec import ExperimentSpec

WAITING = "The preview appears once PyTorch has loaded…"


@dataclass(frozen=True)
class LRPreview:
    """The preview of `spec`'s learning rate: the curve against (fractional) epoch, and the
    line under it. No curve (`steps` None) while the data's size is unknown."""

    steps: int | None
    train_size: int | None
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    note: str = ""


def lr_preview(spec: ExperimentSpec, data: DataShape) -> LRPreview:
    """The preview for `spec` on the data the editor describes as `data`."""
    if data.input_shape is None or data.num_samples <= 0:
        why = data.problem or "the data's size is not known yet"
        return LRPreview(None, None, note=f"Steps per epoch unknown:\n{why}")
    n_train = train_samples(spec.data, data.num_samples, data.test_samples)
    steps = steps_per_epoch(spec, n_train)
    from workbench.core.training.optim import lr_curve

    xs, ys = lr_curve(spec, steps)
    batches = ("the whole set a step" if spec.optim.name == "gd"
               else f"batches of {min(spec.train.batch_size, n_train):,}")
    lines = [f"{steps:,} steps per epoch: {n_train:,} training samples, {batches}",
             f"the rate goes from {ys[0]:.3g} to {ys[-1]:.3g}"]
    if spec.schedule.name == "plateau":
        lines.append("reduce-on-plateau cuts it only when validation stalls")
    return LRPreview(steps, n_train, tuple(xs), tuple(ys), "\n".join(lines))


__all__ = ["LRPreview", "WAITING", "lr_preview"]
