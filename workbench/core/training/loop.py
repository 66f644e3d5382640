"""The training loop: a generator of events with stop and pause flags, and exact resume.

`Trainer(spec).events()` yields `RunStarted`, `Progress` (a few times a second), `EpochEnded`,
extra events from callbacks, and last `RunFinished` or `RunFailed`. It never raises for a
failed run: every failure becomes a `RunFailed` with a reason and a hint, and the run folder
keeps what was saved before it.

The trainer is three parts: the run's set-up (`setup.py`: data, memory check, model,
optimizer, batches, the step), this loop, which only steps, reads the metric sums a few times
a second, validates once an epoch and yields events, and the recorder (`recorder.py`: the run
folder, its lock, summary, metrics log, a failure's traceback, the final evaluation). What
happens around the steps (the NaN guard, early stopping, checkpoints, monitors) are
callbacks. `Trainer.state` is where the run stands.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from workbench.core.data import DataError, DeviceBatches, Splits
from workbench.core.data.cache import DataSource
from workbench.core.store.runs import Run, RunError, RunStore
from workbench.core.training.callbacks import (
    Callback,
    Checkpointing,
    EarlyStopping,
    NanGuard,
    RunAbort,
)
from workbench.core.training.distributed import DistContext
from workbench.core.training.events import (
    EpochEnded,
    Event,
    Progress,
    RunFailed,
    RunStarted,
)
from workbench.core.training.failures import setup_hint
from workbench.core.training.recorder import RunRecorder, evaluate_split, starting_loss
from workbench.core.training.setup import RunSetup, make_step, prepare_run, resolve_device
from workbench.core.training.state import (
    LoopState,
    callback_states,
    capture,
    load_optimizer_state,
    loop_state,
)
from workbench.core.training.step import EagerStep
from workbench.spec import ExperimentSpec, SpecError

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between Progress events (and host reads of the metrics)


def device_name(device: torch.device, threads: int | None = None) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if threads:
        return f"CPU ({threads} thread{'s' if threads > 1 else ''})"
    return "CPU"


class _Stopped(Exception):
    """Raised inside the loop when the stop flag is seen; unwinds to the saving code."""


class Trainer:
    """Runs one experiment. Drive it with `for event in trainer.events(): ...`.

    `stop()` and `pause()`/`resume()` may be called from any thread. `data` lets several runs
    share one loaded dataset, and `source` (the workspace's cache) is where it comes from
    otherwise; `initial_state` starts from given weights (fair comparisons); `masks`
    (state_dict key -> 0/1 tensor) keeps pruned weights at zero through every step and
    every resume; `resume` continues a stored run from its checkpoint exactly; `start_from`
    returns a checkpoint (of another run) that this new run continues from, with this spec's
    settings: a fork. It is called on the training thread, where files are read.
    `threads` (the CLI's --threads) overrides the spec's `train.threads` and the
    automatic count (`threads.choose_threads`).
    """

    model: torch.nn.Module  # built by `_setup`, before any callback sees the trainer

    def __init__(
        self,
        spec: ExperimentSpec | None = None,
        *,
        runs: RunStore | None = None,
        resume: str | Path | None = None,
        data: Splits | None = None,
        source: DataSource | None = None,
        initial_state: dict[str, torch.Tensor] | None = None,
        masks: dict[str, torch.Tensor] | None = None,
        callbacks: Sequence[Callback] = (),
        threads: int | None = None,
        parent: Path | None = None,
        store: bool = True,
        dist: DistContext | None = None,
        start_from: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.resume_run = Run(Path(resume)) if resume is not None else None
        if spec is None:
            if self.resume_run is None:
                raise ValueError("give a spec, or a run folder to resume")
            spec = self.resume_run.spec()
        self.spec = spec
        self.runs = runs or RunStore()
        self.data = data
        self.source = source
        self.initial_state = initial_state
        self.masks: dict[str, torch.Tensor] = dict(masks or {})
        self.extra_callbacks = list(callbacks)
        self.threads = threads
        self.parent = parent
        self.dist = dist
        self.start_from = start_from
        self.store = store and (dist is None or dist.is_main)
        self.state = LoopState()
        self._cleanup = contextlib.ExitStack()  # what the run sets, undone at its end
        self._stop = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._early = False
        self._agreed_stop = False  # several ranks: a stop any rank asked, as of the last sum
        self._pending: list[Event] = []
        self.recorder = RunRecorder(self.runs, store=self.store, parent=parent)

    # -- control, from any thread ---------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._unpaused.set()

    def pause(self) -> None:
        self._unpaused.clear()

    def resume(self) -> None:
        self._unpaused.set()

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    # -- for callbacks ----------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Queue an event; the loop yields it at its next chance."""
        self._pending.append(event)

    def request_stop(self, *, early: bool = False) -> None:
        self._early = self._early or early
        self._stop.set()

    def elapsed(self) -> float:
        """Seconds of training in this run so far, pauses left out, earlier processes included."""
        return self.state.elapsed + time.perf_counter() - self._clock

    def epoch_seconds(self) -> float:
        """Seconds spent on the epoch in flight, pauses left out."""
        return self.state.epoch_elapsed + time.perf_counter() - self._epoch_start

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resume needs, as of now."""
        states = {cb.state_key: s for cb in self.callbacks if (s := cb.state_dict()) is not None}
        return capture(self.state, model=self.model, optimizer=self.optimizer,
                       schedule=self.schedule, streams=self.streams,
                       elapsed=self.elapsed(), epoch_elapsed=self.epoch_seconds(),
                       callbacks=states, masks=self.masks)

    # -- the run ------------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        """The run's events; the run folder is locked from its creation (or the resume)
        until just before the last event."""
        with self._cleanup:
            try:
                yield from self._events()
            except GeneratorExit:
                raise
            except BaseException as exc:  # every failure becomes an event, never a crash
                yield self.recorder.failed(exc, self.state.epoch)
            finally:
                self.recorder.release()

    def _events(self) -> Iterator[Event]:
        try:
            self._setup()
        except (SpecError, DataError, RunError) as exc:
            yield RunFailed(None, str(exc), setup_hint(exc))
            return
        self._start_run()
        self.step, self.step_note = self._build_step()
        if self.state.start_loss is None:  # where this run starts (masks applied): its verdict
            self.state.start_loss, self.state.start_split = starting_loss(
                self.model, self.val_batches, self.data, self.loss_fn, self.num_classes)
        self.recorder.note_start(threads=self.num_threads, step_note=self.step_note,
                                 shared=self.setup.shared)
        yield self._started()
        for cb in self.callbacks:
            cb.on_run_start(self)
        yield from self._flush()

        self._clock = self._epoch_start = time.perf_counter()
        epochs = self.spec.train.epochs
        stopped = False
        try:
            while self.state.epoch < epochs:
                yield from self._train_epoch()
                yield from self._end_epoch()
                if self._stopping():
                    raise _Stopped
        except _Stopped:
            stopped = self.state.epoch < epochs
            if stopped:
                if self.state.step > 0:
                    self._fold_window()
                for cb in self.callbacks:
                    cb.on_stop(self)
        yield from self._finish(stopped)

    # -- before the first step ------------------------------------------------------------
    def prepare(self) -> Trainer:
        """Load the data and build the model, optimizer and batches without training or
        storing anything (tools that step the model themselves: the learning-rate finder).
        `close()` gives back what it took of the process (its share of the thread count and
        the CUDA switches) when the tool is done."""
        self._setup()
        return self

    def close(self) -> None:
        """Undo what `prepare` set; `events()` does it by itself at the run's end."""
        self._cleanup.close()

    def _setup(self) -> None:
        self.setup = setup = prepare_run(
            self.spec, cleanup=self._cleanup, data=self.data, source=self.source,
            threads=self.threads, dist=self.dist, initial_state=self.initial_state,
            cancel=self._stop)
        self._adopt(setup)
        reg = self.spec.regularization
        self.early_stopping = (EarlyStopping(reg.early_stop_patience, reg.early_stop_min_delta)
                               if reg.early_stop_patience else None)
        self.callbacks: list[Callback] = [NanGuard()]
        if self.early_stopping:
            self.callbacks.append(self.early_stopping)
        self.callbacks += [*self.extra_callbacks, self.recorder, Checkpointing()]
        for cb in self.callbacks:
            cb.setup(self)

    def _adopt(self, setup: RunSetup) -> None:
        """What callbacks and tools read of the run (`callbacks.TrainerView`)."""
        self.device = setup.device
        self.num_threads = setup.num_threads
        self.memory = setup.memory
        self.data = setup.data
        self.num_classes = setup.num_classes
        self.model = setup.model
        self.train_model = setup.train_model
        self.streams = setup.streams
        self.gen = setup.streams.batches  # shuffling and augmentation
        self.batch_size = setup.batch_size
        self.train_batches = setup.train_batches
        self.val_batches = setup.val_batches
        self.test_batches = setup.test_batches
        self.steps_per_epoch = setup.steps_per_epoch
        self.graph_wanted = setup.graph_wanted
        self.optimizer = setup.optimizer
        self.schedule = setup.schedule
        self.loss_fn = setup.loss_fn

    @property
    def run(self) -> Run | None:
        """The run's folder; None until it is created, or when the run is not stored."""
        return self.recorder.run

    def _start_run(self) -> None:
        """Create the run folder, or restore the checkpoint of the run being resumed."""
        if self.resume_run is None:
            self.recorder.open_new(self.spec)
            if self.start_from is not None:
                self._restore(self.start_from(), fork=True)
            return
        self._restore(self.recorder.open_resumed(self.resume_run), fork=False)
        self.recorder.resumed_at(self.state.global_step)

    def _restore(self, ckpt: dict[str, Any], *, fork: bool) -> None:
        """Continue from a checkpoint; a fork keeps its own optimizer settings, and starts
        its optimizer afresh when the checkpoint carries no optimizer state (None)."""
        self.model.load_state_dict(ckpt["model"])
        if ckpt["optimizer"] is not None:
            load_optimizer_state(self.optimizer, ckpt["optimizer"], keep_settings=fork)
        self.schedule.load_state_dict(ckpt["schedule"])
        states = callback_states(ckpt)
        for cb in self.callbacks:
            if cb.state_key in states:
                cb.load_state_dict(states[cb.state_key])
        self.masks.update(ckpt.get("masks", {}))
        self.streams.load_state_dict(ckpt)
        self.state = loop_state(ckpt)
        if fork:  # its own start is its parent's weights at the fork, measured anew
            self.state.start_loss = self.state.start_split = None

    def _build_step(self) -> tuple[EagerStep, str | None]:
        """The training step, with the pruning masks (applied once now, then after every
        update, inside a captured graph too)."""
        assert self.data is not None
        params = dict(self.model.named_parameters())
        unknown = sorted(set(self.masks) - set(params))
        if unknown:
            raise RunAbort(f"a pruning mask names {unknown[0]}, which the network does not have",
                           "the run folder may be damaged; start a new run")
        self.masks = {k: m.to(params[k].device, params[k].dtype) for k, m in self.masks.items()}
        masked: tuple[list[torch.Tensor], list[torch.Tensor]] = (
            [params[k] for k in self.masks], list(self.masks.values()))
        if self.masks:
            with torch.no_grad():
                torch._foreach_mul_(*masked)
        return make_step(self.train_model, self.optimizer, self.loss_fn, self.spec,
                         self.num_classes, self.device, batch_size=self.batch_size,
                         input_shape=self.data.info.input_shape,
                         graph=self.graph_wanted, masked=masked)

    def _started(self) -> RunStarted:
        assert self.data is not None
        info = self.data.info
        return RunStarted(
            run_dir=str(self.run.path) if self.run else "", device=str(self.device),
            device_name=device_name(self.device, self.num_threads),
            task="classification" if self.num_classes > 0 else "regression",
            class_names=info.class_names, input_shape=info.input_shape,
            train_size=self.train_batches.num_samples, val_size=self.val_batches.num_samples,
            test_size=self.test_batches.num_samples, steps_per_epoch=self.steps_per_epoch,
            epochs=self.spec.train.epochs, start_epoch=self.state.epoch,
            num_params=sum(p.numel() for p in self.model.parameters()),
            step_kind=self.step.kind, resumed=self.resume_run is not None,
            step_note=self.step_note, shared=self.setup.shared)

    # -- an epoch ---------------------------------------------------------------------------
    def _train_epoch(self) -> Iterator[Event]:
        s = self.state
        n = self.train_batches.num_samples
        if s.step == 0:
            s.epoch_gen_state = self.gen.get_state()
            perm = torch.randperm(n, generator=self.gen, device=self.device)
            s.epoch_sums = [0.0, 0, 0]
            s.epoch_elapsed = 0.0
        else:  # resumed mid-epoch: the epoch's permutation, then the generator where it was
            assert s.epoch_gen_state is not None  # a checkpoint taken mid-epoch records it
            now_state = self.gen.get_state()
            self.gen.set_state(s.epoch_gen_state)
            perm = torch.randperm(n, generator=self.gen, device=self.device)
            self.gen.set_state(now_state)
        self._epoch_start = time.perf_counter()
        self._window = [0.0, 0, 0]
        self._window_start = time.perf_counter()
        last_report = self._window_start - PROGRESS_INTERVAL * 0.9  # the first report is soon
        spe, bs = self.steps_per_epoch, self.batch_size
        while s.step < spe:
            if self._stopping():
                raise _Stopped
            if not self._unpaused.is_set():
                self._wait_while_paused()
            idx = perm[s.step * bs:(s.step + 1) * bs]
            if self.dist:
                idx = self._rank_slice(idx)
            xb, yb = self.train_batches.batch(idx)
            lr = self.schedule.lr(s.epoch, s.step)
            self.step(xb, yb, lr)
            s.step += 1
            s.global_step += 1
            now = time.perf_counter()
            if self._report_due(now - last_report, s.step, spe):
                yield from self._report(lr, now)
                last_report = self._window_start = time.perf_counter()

    def _wait_while_paused(self) -> None:
        """Block until resumed (or stopped); the pause counts in no clock."""
        paused_at = time.perf_counter()
        self._unpaused.wait()
        gap = time.perf_counter() - paused_at
        self._clock += gap
        self._epoch_start += gap
        self._window_start += gap
        if self._stopping():
            raise _Stopped

    def _stopping(self) -> bool:
        """Whether to stop now. On several ranks, only a stop every rank knows of (the last
        collective carried it, or early stopping decided on the averaged validation loss)
        counts, so that all stop at the same step."""
        if self.dist is None:
            return self._stop.is_set()
        return self._agreed_stop or self._early

    def _report_due(self, since_report: float, step: int, steps_per_epoch: int) -> bool:
        """Time-based on one process; step-based across ranks, whose reads are collectives."""
        if step == steps_per_epoch:
            return True
        if self.dist:
            return step % max(1, steps_per_epoch // 10) == 0
        return since_report >= PROGRESS_INTERVAL

    def _fold_window(self) -> tuple[float, int, int]:
        """Read the device's sums into the window and the epoch's sums; what was read."""
        sums: list[float] = list(self.step.take())
        if self.dist:
            sums = self.dist.all_reduce_sum([*sums, float(self._stop.is_set())])
            self._agreed_stop = self._agreed_stop or sums[3] > 0
        read = (sums[0], int(sums[1]), int(sums[2]))
        for acc in (self._window, self.state.epoch_sums):
            acc[0] += read[0]
            acc[1] += read[1]
            acc[2] += read[2]
        return read

    def _report(self, lr: float, now: float) -> Iterator[Event]:
        self._fold_window()
        s, window = self.state, self._window
        rate = window[2] / max(1e-9, now - self._window_start)
        total = self.spec.train.epochs * self.steps_per_epoch
        progress = Progress(
            epoch=s.epoch, step=s.step, steps_per_epoch=self.steps_per_epoch,
            global_step=s.global_step, total_steps=total,
            train_loss=window[0] / max(1, window[2]),
            train_accuracy=window[1] / max(1, window[2]) if self.num_classes else None,
            lr=lr, samples_per_sec=rate, elapsed=self.state.elapsed + now - self._clock,
            eta=(total - s.global_step) * self.batch_size / max(rate, 1e-9))
        s.last_loss = progress.train_loss
        for cb in self.callbacks:
            cb.on_progress(self, progress)
        yield progress
        yield from self._flush()
        self._window = [0.0, 0, 0]

    def _end_epoch(self) -> Iterator[Event]:
        s = self.state
        grad_norm = self.step.grad_norm()
        epoch_seconds = self.epoch_seconds()
        val = self._evaluate(self.val_batches)
        if self.dist:
            val = self._agree_on(val)
        sums = s.epoch_sums
        ended = EpochEnded(
            epoch=s.epoch + 1, global_step=s.global_step,
            train_loss=sums[0] / max(1, sums[2]),
            train_accuracy=sums[1] / max(1, sums[2]) if self.num_classes else None,
            val_loss=val["loss"] if val else None,
            val_accuracy=val["accuracy"] if val else None,
            lr=self.schedule.lr(s.epoch, self.steps_per_epoch - 1), grad_norm=grad_norm,
            samples_per_sec=sums[2] / max(1e-9, epoch_seconds),
            epoch_seconds=epoch_seconds, elapsed=self.elapsed())
        record = {"kind": "epoch", **_asdict(ended)}
        s.last_loss = ended.train_loss  # the whole last epoch, steadier than its last steps
        if ended.val_accuracy is not None:
            s.best_val_accuracy = max(s.best_val_accuracy or 0.0, ended.val_accuracy)
        if ended.val_loss is not None:
            self.schedule.on_epoch_end(ended.val_loss)
        s.epoch += 1
        s.step = 0
        s.epoch_sums = [0.0, 0, 0]
        s.epoch_elapsed = 0.0
        self._epoch_start = time.perf_counter()
        for cb in self.callbacks:
            cb.on_epoch_end(self, record)
        yield ended
        yield from self._flush()

    # -- the end ------------------------------------------------------------------------
    def _finish(self, stopped: bool) -> Iterator[Event]:
        for cb in self.callbacks:
            cb.on_run_end(self)
        yield from self._flush()
        early = self._early and self.early_stopping is not None and self.early_stopping.stopped
        yield self.recorder.finish(self, stopped=stopped and not early, early=early)

    # -- helpers ----------------------------------------------------------------------
    def _rank_slice(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch; the loss is scaled so that DDP's average of
        per-rank means is the global batch's mean even when the parts differ in size."""
        assert self.dist is not None
        part = idx.tensor_split(self.dist.world_size)[self.dist.rank]
        self.step.loss_scale = part.shape[0] * self.dist.world_size / idx.shape[0]
        return part

    def _evaluate(self, batches: DeviceBatches) -> dict[str, Any] | None:
        """Loss and accuracy over a split; None when the split is empty."""
        return evaluate_split(self.model, batches, self.loss_fn, self.num_classes)

    def _agree_on(self, val: dict[str, Any] | None) -> dict[str, Any] | None:
        """The validation metrics averaged over the ranks (whose BatchNorm statistics may
        differ), so that early stopping and the plateau schedule decide alike on every rank;
        a stop asked of any rank travels with them."""
        assert self.dist is not None
        world = self.dist.world_size
        loss = val["loss"] if val else 0.0
        accuracy = val["accuracy"] if val and val["accuracy"] is not None else 0.0
        loss, accuracy, stops = self.dist.all_reduce_sum(
            [loss, accuracy, float(self._stop.is_set())])
        self._agreed_stop = self._agreed_stop or stops > 0
        if val is None:
            return None
        return {**val, "loss": loss / world,
                "accuracy": accuracy / world if val["accuracy"] is not None else None}

    def _flush(self) -> Iterator[Event]:
        while self._pending:
            yield self._pending.pop(0)


def _asdict(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


__all__ = ["Trainer", "device_name", "resolve_device"]
