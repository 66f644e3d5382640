"""What a run leaves behind: its folder under its lock, its metrics log and summary, a
failure's reason and traceback, and the final evaluation with the run's verdict.

`RunRecorder` is a callback of the loop (its `on_progress` and `on_epoch_end` append the
metrics log; it runs after the other callbacks, so a NaN guard's failure leaves no record of
the bad epoch, and before checkpointing, so a crash between the two repeats the epoch on
resume), plus the calls the loop makes at the run's edges: `open_new` or `open_resumed`
before the first step, `finish` or `failed` at the end. A run that is not stored (`store`
false: the rate finder, benchmarks, ranks but the first) records nothing and still gets its
final evaluation.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.core.data import DeviceBatches, Splits
from workbench.core.memory import EVAL_BATCH
from workbench.core.store.atomic import write_text_atomic
from workbench.core.store.locks import RunLock
from workbench.core.store.runs import Run, RunStatus, RunStore
from workbench.core.tools.inspect.results import summary_entries
from workbench.core.training import outcome
from workbench.core.training.callbacks import NAN_HINT, Callback, RunAbort, weights_finite
from workbench.core.training.events import (
    Progress,
    RunFailed,
    RunFinished,
    describe_progress,
)
from workbench.core.training.failures import Failure, explain
from workbench.core.training.step import evaluate
from workbench.logs import current_log
from workbench.spec import ExperimentSpec

log = logging.getLogger(__name__)

TRACEBACK_FILE = "traceback.txt"
MISCLASSIFIED_KEPT = 100
START_SAMPLES = 4 * EVAL_BATCH  # training samples a start is measured on (no augmentation)


@dataclass(frozen=True)
class FinalEvaluation:
    """The trained model on the test and validation splits (None: the split is empty)."""

    test: dict[str, Any] | None
    val: dict[str, Any] | None
    confusion: tuple[tuple[int, ...], ...] | None
    misclassified: tuple[tuple[int, int, int], ...]  # (test index, true, predicted)

    @property
    def test_loss(self) -> float | None:
        return self.test["loss"] if self.test else None

    @property
    def test_accuracy(self) -> float | None:
        return self.test["accuracy"] if self.test else None


def evaluate_split(model: nn.Module, batches: DeviceBatches, loss_fn: nn.Module,
                   num_classes: int, *, predictions: bool = False) -> dict[str, Any] | None:
    """Loss and accuracy over a split; None when the split is empty."""
    if batches.num_samples == 0:
        return None
    return evaluate(model, batches.x, batches.y, batches.batch, loss_fn, num_classes,
                    want_predictions=predictions)


def final_evaluation(model: nn.Module, test_batches: DeviceBatches,
                     val_batches: DeviceBatches, loss_fn: nn.Module,
                     num_classes: int) -> FinalEvaluation:
    """Test and validation figures, and for classes the test confusion matrix
    (`confusion[true][predicted]`) and the first misclassified samples."""
    classify = num_classes > 0
    test = evaluate_split(model, test_batches, loss_fn, num_classes, predictions=classify)
    val = evaluate_split(model, val_batches, loss_fn, num_classes)
    confusion = None
    misclassified: tuple[tuple[int, int, int], ...] = ()
    if classify and test is not None:
        truth = test_batches.y.cpu()
        pred = test["predictions"]
        k = num_classes
        counts = torch.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
        confusion = tuple(tuple(int(v) for v in row) for row in counts.tolist())
        wrong = torch.nonzero(truth != pred).flatten()[:MISCLASSIFIED_KEPT].tolist()
        misclassified = tuple((i, int(truth[i]), int(pred[i])) for i in wrong)
    return FinalEvaluation(test, val, confusion, misclassified)


def starting_loss(model: nn.Module, val_batches: DeviceBatches, data: Splits,
                  loss_fn: nn.Module, num_classes: int) -> tuple[float, str]:
    """The loss of the model's weights as they are, in eval mode over a whole split: the
    baseline a run's verdict is judged against (`outcome.py`). The validation split (held
    out, as the test split its end is measured on), or without one the first training
    samples, unaugmented (nothing random is drawn).
    """
    if val_batches.num_samples > 0:
        batches, split = val_batches, "validation"
    else:
        n = min(START_SAMPLES, data.train_x.shape[0])
        batches = DeviceBatches(data.train_x[:n], data.train_y[:n], mean=data.mean,
                                std=data.std, batch_size=EVAL_BATCH, device=val_batches.device,
                                shuffle=False, generator=None, image=val_batches.image,
                                channels_last=val_batches.channels_last)
        split = "training"
    result = evaluate_split(model, batches, loss_fn, num_classes)
    assert result is not None  # a run has training samples
    return result["loss"], split


def chance_loss(train_y: torch.Tensor, num_classes: int) -> float:
    """The loss of knowing nothing but the targets' spread: for classes, the cross-entropy of
    always answering the class frequencies (their entropy); for regression, the mean squared
    error of always answering the mean (the variance)."""
    if num_classes > 0:
        counts = torch.bincount(train_y.reshape(-1).long().cpu(), minlength=num_classes)
        p = counts[counts > 0].double() / max(1, int(counts.sum()))
        return float(-(p * p.log()).sum())
    y = train_y.double()
    return float(((y - y.mean()) ** 2).mean()) if y.numel() else 0.0


class RunRecorder(Callback):
    """The run's folder and what is written into it; see the module."""

    def __init__(self, runs: RunStore, *, store: bool, parent: Path | None = None) -> None:
        self.runs = runs
        self.store = store
        self.parent = parent
        self.run: Run | None = None
        self._lock: RunLock | None = None

    # -- the run's start ---------------------------------------------------------------------
    def open_new(self, spec: ExperimentSpec) -> None:
        """Create and lock the folder of a new run (nothing when the run is not stored)."""
        if not self.store:
            return
        run = self.runs.create(spec, parent=self.parent)
        self._lock = run.lock()
        self.run = run
        run.update_summary(status=RunStatus.RUNNING)

    def open_resumed(self, run: Run) -> dict[str, Any]:
        """Lock a stored run to continue it (ranks but the first only read it); its
        checkpoint, for the loop to restore before `resumed_at`."""
        if self.store:
            self._lock = run.lock()
        self.run = run
        return run.load_checkpoint()

    def resumed_at(self, global_step: int) -> None:
        """Forget the metrics logged after the checkpoint; the run is running again."""
        assert self.run is not None
        self.run.truncate_metrics(global_step)
        self.run.update_summary(status=RunStatus.RUNNING)

    def note_start(self, *, threads: int, step_note: str | None,
                   shared: tuple[str, ...]) -> None:
        """What the run trains with: its CPU threads, why it did not take its fastest step,
        and what it shares with other jobs of the process (`process.py`)."""
        if self.run is None:
            return
        values: dict[str, Any] = {"threads": threads}
        if step_note:
            values["step_note"] = step_note
        if shared:
            values["shared"] = list(shared)
        self.run.update_summary(**values)

    # -- as it trains -----------------------------------------------------------------------
    def on_progress(self, trainer: Any, progress: Progress) -> None:
        if self.run is not None:
            self.run.append_metrics([{"kind": "step", **_asdict(progress)}])

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.append_metrics([record])

    # -- the end ----------------------------------------------------------------------------
    def finish(self, trainer: Any, *, stopped: bool, early: bool) -> RunFinished:
        """Evaluate the trained model, judge the run, write its model and summary, release
        its folder: the run's last event. RunAbort when the weights are not finite."""
        final = final_evaluation(trainer.model, trainer.test_batches, trainer.val_batches,
                                 trainer.loss_fn, trainer.num_classes)
        if not weights_finite(trainer.model):
            raise RunAbort("the weights became non-finite", NAN_HINT)
        state = trainer.state
        seconds = trainer.elapsed()
        dist = trainer.dist
        class_names = trainer.data.info.class_names
        spe = trainer.steps_per_epoch
        summary: dict[str, Any] = {
            "status": RunStatus.STOPPED if stopped else RunStatus.FINISHED,
            "epochs_done": state.epoch, "steps_done": state.global_step,
            "steps_per_epoch": spe, "done": describe_progress(state.global_step, spe),
            "seconds": round(seconds, 3),
            "device": str(trainer.device), "test_loss": final.test_loss,
            "val_loss": final.val["loss"] if final.val else None,
            "val_accuracy": final.val["accuracy"] if final.val else None,
            "best_val_accuracy": state.best_val_accuracy, "early_stopped": early,
            "num_params": sum(p.numel() for p in trainer.model.parameters()),
            "world_size": dist.world_size if dist else 1,
        }
        if trainer.num_classes > 0:
            summary["test_accuracy"] = final.test_accuracy
            summary["confusion"] = [list(row) for row in final.confusion or ()]
            summary["class_names"] = list(class_names)
        else:
            summary["test_mse"] = final.test_loss
        summary.update(verdict_figures(state, final, trainer.data, trainer.num_classes))
        # Inspect: a regression's figures and plot points, a linear model's equation
        summary.update(summary_entries(trainer.model, trainer.spec.model.layers, trainer.data,
                                       trainer.test_batches))
        if self.run is not None:
            self.run.save_model(trainer.model.state_dict())
            self.run.append_metrics([{"kind": "test", "loss": final.test_loss,
                                      "accuracy": final.test_accuracy,
                                      "global_step": state.global_step}])
            summary = self.run.update_summary(**summary)
        log.info("run %s %s after %s", self.run.path if self.run else "(not stored)",
                 summary["status"], summary["done"])
        self.release()
        return RunFinished(
            run_dir=str(self.run.path) if self.run else "", stopped=stopped,
            early_stopped=early, epochs=state.epoch, seconds=seconds,
            test_loss=final.test_loss, test_accuracy=final.test_accuracy,
            best_val_accuracy=state.best_val_accuracy, summary=summary,
            confusion=final.confusion, misclassified=final.misclassified,
            global_step=state.global_step, steps_per_epoch=spe)

    def failed(self, exc: BaseException, epoch: int) -> RunFailed:
        """Record a failure as well as the folder allows, and say where its details are.

        A bug's traceback goes to the log and to `traceback.txt` in the run folder; a summary
        that cannot be written (a read-only folder, a full disk) is logged, never raised.
        """
        failure = explain(exc)
        where = str(self.run.path) if self.run is not None else None
        details: str | None = None
        if failure.bug:
            log.error("run %s failed: %s", where or "(not created)", failure.reason,
                      exc_info=exc)
            details = self._write_traceback(exc)
            if details is None and current_log() is not None:
                details = str(current_log())
        else:
            log.warning("run %s failed: %s", where or "(not created)", failure.reason)
        if self.run is not None:
            self._record_failure(failure, details)
        self.release()
        return RunFailed(where, failure.reason, failure.hint, epoch, details)

    def release(self) -> None:
        """Let go of the folder's lock (again: nothing)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _write_traceback(self, exc: BaseException) -> str | None:
        if self.run is None:
            return None
        path = self.run.path / TRACEBACK_FILE
        text = "".join(traceback.format_exception(exc))
        try:
            write_text_atomic(path, text)
        except OSError as error:
            log.error("could not write %s: %s", path, error)
            return None
        return str(path)

    def _record_failure(self, failure: Failure, details: str | None) -> None:
        assert self.run is not None
        values = {"status": RunStatus.FAILED, "error": failure.reason, "hint": failure.hint}
        if details is not None and details.startswith(str(self.run.path)):
            values["traceback"] = TRACEBACK_FILE
        try:
            self.run.update_summary(**values)
        except OSError as error:
            log.error("could not record the failure in %s: %s", self.run.path, error)


def verdict_figures(state: Any, final: FinalEvaluation, data: Splits,
                    num_classes: int) -> dict[str, Any]:
    """The run's verdict and warnings (`outcome.judge`) with the figures they come from, for
    the summary: where the run started and on which split, the loss of knowing nothing, and
    (in `test_loss`, `val_loss`) where it ended. The end is the test split, else the
    validation split, else the last epoch's training loss."""
    if final.test is not None:
        end, split = final.test_loss, "test"
    elif final.val is not None:
        end, split = final.val["loss"], "validation"
    else:
        end, split = state.last_loss, "training"
    chance = chance_loss(data.train_y, num_classes)
    warnings = outcome.judge(state.start_loss, end, final.confusion, data.info.class_names,
                             chance_loss=chance, end_split=split)
    return {"start_loss": state.start_loss, "start_split": state.start_split,
            "chance_loss": chance, **outcome.as_summary(warnings)}


def _asdict(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


__all__ = ["MISCLASSIFIED_KEPT", "TRACEBACK_FILE", "FinalEvaluation", "RunRecorder",
           "chance_loss", "evaluate_split", "final_evaluation", "starting_loss",
           "verdict_figures"]
