"""The training loop: a generator of events with stop and pause flags, and exact resume.

`Trainer(spec).events()` yields `RunStarted`, `Progress` (a few times a second), `EpochEnded`,
extra events from callbacks, and last `RunFinished` or `RunFailed`. It never raises for a
failed run: every failure becomes a `RunFailed` with a reason and a hint, and the run folder
keeps what was saved before it.

The loop itself only steps, reads the metric sums a few times a second and validates once an
epoch; what happens around that (the NaN guard, early stopping, the metrics log,
checkpoints, monitors) are callbacks. `Trainer.state` is where the run stands.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from workbench.core.data import DataError, DeviceBatches, Splits
from workbench.core.data.cache import DataSource, info_from, load_from
from workbench.core.memory import EVAL_BATCH, ensure_fits
from workbench.core.model import build_model, check
from workbench.core.store.atomic import write_text_atomic
from workbench.core.store.locks import RunLock
from workbench.core.store.runs import Run, RunError, RunStatus, RunStore
from workbench.core.tools.inspect.results import summary_entries
from workbench.core.training import outcome
from workbench.core.training.backends import backends_for
from workbench.core.training.callbacks import (
    NAN_HINT,
    Callback,
    Checkpointing,
    EarlyStopping,
    NanGuard,
    RunAbort,
    weights_finite,
)
from workbench.core.training.distributed import DistContext
from workbench.core.training.events import (
    EpochEnded,
    Event,
    Progress,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.training.failures import Failure, explain, setup_hint
from workbench.core.training.optim import LRSchedule, build_optimizer, loss_function
from workbench.core.training.state import (
    LoopState,
    callback_states,
    capture,
    load_optimizer_state,
    loop_state,
)
from workbench.core.training.step import EagerStep, evaluate, make_step, wants_graph
from workbench.core.training.threads import choose_threads
from workbench.logs import current_log
from workbench.spec import ExperimentSpec, SpecError, validate

log = logging.getLogger(__name__)

TRACEBACK_FILE = "traceback.txt"
PROGRESS_INTERVAL = 0.25  # seconds between Progress events (and host reads of the metrics)
MISCLASSIFIED_KEPT = 100


def resolve_device(name: str) -> torch.device:
    """`auto` is the GPU when there is one; asking for a GPU this machine lacks is a clear
    error (a SpecError naming train.device)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError("train.device", f"{name} asked for, but this machine has no CUDA GPU; "
                                        "use auto or cpu")
    device = torch.device(name)
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.index is not None and device.index >= count:
        raise SpecError("train.device", f"{name} asked for, but this machine has {count} "
                                        f"GPU{'s' if count != 1 else ''} (cuda:0 to "
                                        f"cuda:{count - 1})")
    return device


def device_name(device: torch.device, threads: int | None = None) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if threads:
        return f"CPU ({threads} thread{'s' if threads > 1 else ''})"
    return "CPU"


class _Stopped(Exception):
    """Raised inside the loop when the stop flag is seen; unwinds to the saving code."""


class _RunLog(Callback):
    """Appends each Progress and epoch record to the run's `metrics.jsonl`.

    Runs after the other callbacks (a NaN guard's failure leaves no record of the bad epoch)
    and before checkpointing (a crash between the two repeats the epoch on resume).
    """

    def on_progress(self, trainer: Any, progress: Progress) -> None:
        if trainer.run is not None:
            trainer.run.append_metrics([{"kind": "step", **_asdict(progress)}])

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        if trainer.run is not None:
            trainer.run.append_metrics([record])


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
        self.run: Run | None = None
        self._lock: RunLock | None = None

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
                       schedule=self.schedule, gen=self.gen, device=self.device,
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
                failed = self._failed(exc)
                self._release()
                yield failed
            finally:
                self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _failed(self, exc: BaseException) -> RunFailed:
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
        return RunFailed(where, failure.reason, failure.hint, self.state.epoch, details)

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

    def _events(self) -> Iterator[Event]:
        try:
            self._setup()
        except (SpecError, DataError, RunError) as exc:
            yield RunFailed(None, str(exc), setup_hint(exc))
            return
        self._start_run()
        self.step, self.step_note = self._build_step()
        if self.step_note and self.run:
            self.run.update_summary(step_note=self.step_note)
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
        `close()` undoes what it set (the CUDA backend switches) when the tool is done."""
        self._setup()
        return self

    def close(self) -> None:
        """Undo what `prepare` set; `events()` does it by itself at the run's end."""
        self._cleanup.close()

    def _setup(self) -> None:
        spec = self.spec
        self.num_threads = choose_threads(self.threads, spec.train.threads)
        torch.set_num_threads(self.num_threads)
        validate(spec)  # a spec made in code, not read from a file, is checked all the same
        self.device = self.dist.device if self.dist else resolve_device(spec.train.device)
        # Shapes and memory from the description, before the data or the model take any.
        info = (self.data.info if self.data is not None
                else info_from(self.source, spec.data, cancel=self._stop))
        report = check(spec.model.layers, info.input_shape, info.num_classes)
        self.memory = ensure_fits(spec, report, info, self.device)
        if self.data is None:
            def load() -> Splits:
                return load_from(self.source, spec.data, spec.train.seed, cancel=self._stop)

            self.data = self.dist.local_main_first(load) if self.dist else load()
        data = self.data
        info = data.info
        self.num_classes = info.num_classes
        check(spec.model.layers, info.input_shape, info.num_classes)
        torch.manual_seed(spec.train.seed)
        model = build_model(spec.model.layers, info.input_shape)
        if self.initial_state is not None:
            model.load_state_dict(self.initial_state)
        memory = torch.channels_last if spec.train.channels_last else torch.contiguous_format
        # Module.to takes memory_format (documented), which torch's stubs leave out.
        self.model = model.to(self.device, memory_format=memory)  # type: ignore[call-overload]
        self._cleanup.enter_context(backends_for(self.model, self.device))
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(spec.train.seed + 1)
        n_train = data.train_x.shape[0]
        bs = n_train if spec.optim.name == "gd" else min(spec.train.batch_size, n_train)
        self.batch_size = bs
        world = self.dist.world_size if self.dist else 1
        common = {"mean": data.mean, "std": data.std, "device": self.device,
                  "image": info.kind == "image", "channels_last": spec.train.channels_last}
        self.train_batches = DeviceBatches(
            data.train_x, data.train_y, batch_size=bs, shuffle=True, generator=self.gen,
            augment=spec.data.augment if spec.data.augment.active else None,
            drop_last=0 < n_train % bs < 2 * world, **common)
        self.val_batches = DeviceBatches(data.val_x, data.val_y, batch_size=EVAL_BATCH,
                                         shuffle=False, generator=None, **common)
        self.test_batches = DeviceBatches(data.test_x, data.test_y, batch_size=EVAL_BATCH,
                                          shuffle=False, generator=None, **common)
        self.steps_per_epoch = len(self.train_batches)
        self.train_model = self.model
        if self.dist:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=ids)
        self.graph_wanted = wants_graph(spec, self.device) and self.dist is None
        self.optimizer = build_optimizer(spec, self.model.parameters(), self.device,
                                         capturable=self.graph_wanted)
        self.schedule = LRSchedule(spec, self.steps_per_epoch)
        self.loss_fn = loss_function(self.num_classes)
        reg = spec.regularization
        self.early_stopping = (EarlyStopping(reg.early_stop_patience, reg.early_stop_min_delta)
                               if reg.early_stop_patience else None)
        self.callbacks: list[Callback] = [NanGuard()]
        if self.early_stopping:
            self.callbacks.append(self.early_stopping)
        self.callbacks += [*self.extra_callbacks, _RunLog(), Checkpointing()]
        for cb in self.callbacks:
            cb.setup(self)

    def _start_run(self) -> None:
        """Create the run folder, or restore the checkpoint of the run being resumed."""
        if self.resume_run is None:
            if self.store:
                run = self.runs.create(self.spec, parent=self.parent)
                self._lock = run.lock()
                self.run = run
                self.run.update_summary(status=RunStatus.RUNNING)
            if self.start_from is not None:
                self._restore(self.start_from(), fork=True)
            return
        if self.store:  # ranks but the first only read the run: rank 0 holds it
            self._lock = self.resume_run.lock()
        self.run = self.resume_run
        self._restore(self.run.load_checkpoint(), fork=False)
        self.run.truncate_metrics(self.state.global_step)
        self.run.update_summary(status=RunStatus.RUNNING)

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
        torch.set_rng_state(ckpt["cpu_rng"])
        if self.device.type == "cuda" and "cuda_rng" in ckpt:
            torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
        self.gen.set_state(ckpt["gen_state"])
        self.state = loop_state(ckpt)

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
            step_note=self.step_note)

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
        if s.first_loss is None:  # where training started, for the run's verdict
            s.first_loss = progress.train_loss
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
        assert self.data is not None
        for cb in self.callbacks:
            cb.on_run_end(self)
        yield from self._flush()
        early = self._early and self.early_stopping is not None and self.early_stopping.stopped
        stopped = stopped and not early
        classify = self.num_classes > 0
        test = self._evaluate(self.test_batches, predictions=classify)
        val = self._evaluate(self.val_batches)
        confusion = None
        misclassified: tuple[tuple[int, int, int], ...] = ()
        if classify and test is not None:
            truth = self.test_batches.y.cpu()
            pred = test["predictions"]
            k = self.num_classes
            confusion_t = torch.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
            confusion = tuple(tuple(int(v) for v in row) for row in confusion_t.tolist())
            wrong = torch.nonzero(truth != pred).flatten()[:MISCLASSIFIED_KEPT].tolist()
            misclassified = tuple((i, int(truth[i]), int(pred[i])) for i in wrong)
        if not weights_finite(self.model):
            raise RunAbort("the weights became non-finite", NAN_HINT)
        seconds = self.elapsed()
        test_loss = test["loss"] if test else None
        test_accuracy = test["accuracy"] if test else None
        summary: dict[str, Any] = {
            "status": RunStatus.STOPPED if stopped else RunStatus.FINISHED,
            "epochs_done": self.state.epoch, "seconds": round(seconds, 3),
            "device": str(self.device), "test_loss": test_loss,
            "val_loss": val["loss"] if val else None,
            "val_accuracy": val["accuracy"] if val else None,
            "best_val_accuracy": self.state.best_val_accuracy, "early_stopped": early,
            "num_params": sum(p.numel() for p in self.model.parameters()),
            "world_size": self.dist.world_size if self.dist else 1,
        }
        if classify:
            summary["test_accuracy"] = test_accuracy
            summary["confusion"] = [list(row) for row in confusion or ()]
            summary["class_names"] = list(self.data.info.class_names)
        else:
            summary["test_mse"] = test_loss
        summary.update(outcome.as_summary(outcome.judge(
            self.state.first_loss, self.state.last_loss, test_loss, confusion,
            self.data.info.class_names)))
        # Inspect: a regression's figures and plot points, a linear model's equation
        summary.update(summary_entries(self.model, self.spec.model.layers, self.data,
                                       self.test_batches))
        if self.run:
            self.run.save_model(self.model.state_dict())
            self.run.append_metrics([{"kind": "test", "loss": test_loss,
                                      "accuracy": test_accuracy,
                                      "global_step": self.state.global_step}])
            summary = self.run.update_summary(**summary)
        log.info("run %s %s after %d epochs", self.run.path if self.run else "(not stored)",
                 summary["status"], self.state.epoch)
        self._release()
        yield RunFinished(
            run_dir=str(self.run.path) if self.run else "", stopped=stopped,
            early_stopped=early, epochs=self.state.epoch, seconds=seconds, test_loss=test_loss,
            test_accuracy=test_accuracy, best_val_accuracy=self.state.best_val_accuracy,
            summary=summary, confusion=confusion, misclassified=misclassified)

    # -- helpers ----------------------------------------------------------------------
    def _rank_slice(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch; the loss is scaled so that DDP's average of
        per-rank means is the global batch's mean even when the parts differ in size."""
        assert self.dist is not None
        part = idx.tensor_split(self.dist.world_size)[self.dist.rank]
        self.step.loss_scale = part.shape[0] * self.dist.world_size / idx.shape[0]
        return part

    def _evaluate(self, batches: DeviceBatches, *,
                  predictions: bool = False) -> dict[str, Any] | None:
        """Loss and accuracy over a split; None when the split is empty."""
        if batches.num_samples == 0:
            return None
        return evaluate(self.model, batches.x, batches.y, batches.batch, self.loss_fn,
                        self.num_classes, want_predictions=predictions)

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
