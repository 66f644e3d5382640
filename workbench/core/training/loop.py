"""The training loop: a generator of events with stop and pause flags, and exact resume.

`Trainer(spec).events()` yields `RunStarted`, `Progress` (a few times a second), `EpochEnded`,
extra events from callbacks, and last `RunFinished` or `RunFailed`. It never raises for a
failed run: every failure becomes a `RunFailed` with a reason and a hint, and the run folder
keeps what was saved before it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from workbench.core.data import DataError, DeviceBatches, Splits, load_splits
from workbench.core.model import build_model, check
from workbench.core.store.runs import Run, RunError, RunStore
from workbench.core.training.callbacks import NAN_HINT, Callback, EarlyStopping, NanGuard, RunAbort
from workbench.core.training.distributed import DistContext
from workbench.core.training.events import (
    EpochEnded,
    Event,
    Progress,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.training.optim import LRSchedule, build_optimizer, loss_function
from workbench.core.training.step import evaluate, make_step, wants_graph
from workbench.spec import ExperimentSpec, SpecError

PROGRESS_INTERVAL = 0.25  # seconds between Progress events (and host reads of the metrics)
MISCLASSIFIED_KEPT = 100


def resolve_device(name: str) -> torch.device:
    """`auto` is the GPU when there is one; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError("train.device", f"{name} asked for, but this machine has no CUDA GPU; "
                                        "use auto or cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


class _Stopped(Exception):
    """Raised inside the loop when the stop flag is seen; unwinds to the saving code."""


class Trainer:
    """Runs one experiment. Drive it with `for event in trainer.events(): ...`.

    `stop()` and `pause()`/`resume()` may be called from any thread. `data` lets several runs
    share one loaded dataset; `initial_state` starts from given weights (fair comparisons);
    `resume` continues a stored run from its checkpoint exactly.
    """

    def __init__(
        self,
        spec: ExperimentSpec | None = None,
        *,
        runs: RunStore | None = None,
        resume: str | Path | None = None,
        data: Splits | None = None,
        initial_state: dict[str, torch.Tensor] | None = None,
        callbacks: Sequence[Callback] = (),
        threads: int | None = None,
        parent: Path | None = None,
        store: bool = True,
        dist: DistContext | None = None,
    ) -> None:
        if spec is None and resume is None:
            raise ValueError("give a spec, or a run folder to resume")
        self.resume_run = Run(Path(resume)) if resume is not None else None
        self.spec = spec if spec is not None else self.resume_run.spec()  # type: ignore[union-attr]
        self.runs = runs or RunStore()
        self.data = data
        self.initial_state = initial_state
        self.extra_callbacks = list(callbacks)
        self.threads = threads
        self.parent = parent
        self.dist = dist
        self.store = store and (dist is None or dist.is_main)
        self._stop = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._early = False
        self._pending: list[Event] = []
        self.run: Run | None = None
        self.model: torch.nn.Module | None = None

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

    # -- the loop ---------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        try:
            yield from self._events()
        except GeneratorExit:
            raise
        except BaseException as exc:  # every failure becomes an event, never a crash
            reason, hint = _explain(exc)
            if self.run is not None:
                self.run.update_summary(status="failed", error=reason, hint=hint)
            yield RunFailed(str(self.run.path) if self.run else None, reason, hint,
                            getattr(self, "_epoch", 0))

    def _setup(self) -> None:
        spec = self.spec
        if self.threads:
            torch.set_num_threads(self.threads)
        self.device = self.dist.device if self.dist else resolve_device(spec.train.device)
        if self.data is None:
            self.data = load_splits(spec.data, spec.train.seed, cancel=self._stop)
        data = self.data
        info = data.info
        self.num_classes = info.num_classes
        check(spec.model.layers, info.input_shape, info.num_classes)
        torch.manual_seed(spec.train.seed)
        model = build_model(spec.model.layers, info.input_shape)
        if self.initial_state is not None:
            model.load_state_dict(self.initial_state)
        memory = torch.channels_last if spec.train.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=memory)
        image = info.kind == "image"
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(spec.train.seed + 1)
        n_train = data.train_x.shape[0]
        bs = n_train if spec.optim.name == "gd" else min(spec.train.batch_size, n_train)
        self.batch_size = bs
        world = self.dist.world_size if self.dist else 1
        common = {"mean": data.mean, "std": data.std, "device": self.device, "image": image,
                  "channels_last": spec.train.channels_last}
        self.train_batches = DeviceBatches(
            data.train_x, data.train_y, batch_size=bs, shuffle=True, generator=self.gen,
            augment=spec.data.augment if spec.data.augment.active else None,
            drop_last=0 < n_train % bs < 2 * world, **common)
        self.val_batches = DeviceBatches(data.val_x, data.val_y, batch_size=1024, shuffle=False,
                                         generator=None, **common)
        self.test_batches = DeviceBatches(data.test_x, data.test_y, batch_size=1024,
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
        self.early_stopping = (
            EarlyStopping(spec.regularization.early_stop_patience,
                          spec.regularization.early_stop_min_delta)
            if spec.regularization.early_stop_patience else None
        )
        self.callbacks: list[Callback] = [NanGuard()]
        if self.early_stopping:
            self.callbacks.append(self.early_stopping)
        self.callbacks += self.extra_callbacks

    def _rank_slice(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch; the loss is scaled so that DDP's average of
        per-rank means is the global batch's mean even when the parts differ in size."""
        assert self.dist is not None
        part = idx.tensor_split(self.dist.world_size)[self.dist.rank]
        self.step.loss_scale = part.shape[0] * self.dist.world_size / idx.shape[0]
        return part

    def _report_due(self, since_report: float, step: int, steps_per_epoch: int) -> bool:
        """Time-based on one process; step-based across ranks, whose reads are collectives."""
        if step == steps_per_epoch:
            return True
        if self.dist:
            return step % max(1, steps_per_epoch // 10) == 0
        return since_report >= PROGRESS_INTERVAL

    def _take(self) -> tuple[float, int, int]:
        loss_sum, correct, count = self.step.take()
        if self.dist:
            loss_sum, correct, count = self.dist.all_reduce_sum([loss_sum, correct, count])
        return loss_sum, int(correct), int(count)

    def _evaluate(self, batches: DeviceBatches, *, predictions: bool = False) -> dict[str, Any]:
        return evaluate(self.model, batches.x, batches.y, batches.batch, self.loss_fn,
                        self.num_classes, want_predictions=predictions)

    def _flush(self) -> Iterator[Event]:
        while self._pending:
            yield self._pending.pop(0)

    def _events(self) -> Iterator[Event]:
        spec = self.spec
        self._epoch = 0
        try:
            self._setup()
        except (SpecError, DataError, RunError) as exc:
            yield RunFailed(None, str(exc), _setup_hint(exc))
            return
        assert self.model is not None
        state = self._start_run()
        run = self.run
        self.step, self.step_note = make_step(
            self.train_model, self.optimizer, self.loss_fn, spec, self.num_classes, self.device,
            batch_size=self.batch_size, input_shape=self.data.info.input_shape,
            graph=self.graph_wanted)
        if self.step_note and run:
            run.update_summary(step_note=self.step_note)
        epochs = spec.train.epochs
        spe = self.steps_per_epoch
        total_steps = epochs * spe
        n_params = sum(p.numel() for p in self.model.parameters())
        info = self.data.info  # type: ignore[union-attr]
        yield RunStarted(
            run_dir=str(run.path) if run else "", device=str(self.device),
            device_name=device_name(self.device),
            task="classification" if self.num_classes > 0 else "regression",
            class_names=info.class_names, input_shape=info.input_shape,
            train_size=self.train_batches.x.shape[0], val_size=self.val_batches.x.shape[0],
            test_size=self.test_batches.x.shape[0], steps_per_epoch=spe, epochs=epochs,
            start_epoch=state["epoch"], num_params=n_params, step_kind=self.step.kind,
            resumed=self.resume_run is not None, step_note=self.step_note)
        for cb in self.callbacks:
            cb.on_run_start(self)
        yield from self._flush()

        elapsed = state["elapsed"]
        best_val = state["best_val_accuracy"]
        epoch = state["epoch"]
        step = state["step"]
        global_step = epoch * spe + step
        stopped = False
        clock = time.perf_counter()
        try:
            while epoch < epochs:
                self._epoch = epoch
                if step == 0:
                    epoch_gen_state = self.gen.get_state()
                    perm = torch.randperm(self.train_batches.x.shape[0], generator=self.gen,
                                          device=self.device)
                    sums = [0.0, 0, 0]
                else:
                    epoch_gen_state = state["epoch_gen_state"]
                    self.gen.set_state(epoch_gen_state)
                    perm = torch.randperm(self.train_batches.x.shape[0], generator=self.gen,
                                          device=self.device)
                    self.gen.set_state(state["gen_state"])
                    sums = list(state["epoch_sums"])
                epoch_start = time.perf_counter()
                epoch_elapsed_before = state.get("epoch_elapsed", 0.0) if step else 0.0
                window = [0.0, 0, 0]
                window_start = time.perf_counter()
                last_report = window_start - PROGRESS_INTERVAL * 0.9  # first report comes soon
                while step < spe:
                    if self._stop.is_set():
                        raise _Stopped
                    if not self._unpaused.is_set():
                        paused_at = time.perf_counter()
                        self._unpaused.wait()
                        gap = time.perf_counter() - paused_at
                        epoch_start += gap
                        clock += gap
                        window_start += gap
                        if self._stop.is_set():
                            raise _Stopped
                    idx = perm[step * self.batch_size:(step + 1) * self.batch_size]
                    if self.dist:
                        idx = self._rank_slice(idx)
                    xb, yb = self.train_batches.batch(idx)
                    lr = self.schedule.lr(epoch, step)
                    self.step(xb, yb, lr)
                    step += 1
                    global_step += 1
                    now = time.perf_counter()
                    if self._report_due(now - last_report, step, spe):
                        loss_sum, correct, count = self._take()
                        for acc, v in ((window, (loss_sum, correct, count)),
                                       (sums, (loss_sum, correct, count))):
                            acc[0] += v[0]
                            acc[1] += v[1]
                            acc[2] += v[2]
                        run_elapsed = elapsed + now - clock
                        rate = window[2] / max(1e-9, now - window_start)
                        remaining = total_steps - global_step
                        progress = Progress(
                            epoch=epoch, step=step, steps_per_epoch=spe, global_step=global_step,
                            total_steps=total_steps, train_loss=window[0] / max(1, window[2]),
                            train_accuracy=(window[1] / max(1, window[2])
                                            if self.num_classes else None),
                            lr=lr, samples_per_sec=rate, elapsed=run_elapsed,
                            eta=remaining * self.batch_size / max(rate, 1e-9))
                        for cb in self.callbacks:
                            cb.on_progress(self, progress)
                        if run:
                            run.append_metrics([{"kind": "step", **_asdict(progress)}])
                        yield progress
                        yield from self._flush()
                        window = [0.0, 0, 0]
                        window_start = last_report = time.perf_counter()
                # -- end of epoch ---------------------------------------------------------
                grad_norm = self.step.grad_norm()
                epoch_seconds = epoch_elapsed_before + time.perf_counter() - epoch_start
                val = self._evaluate(self.val_batches)
                train_loss = sums[0] / max(1, sums[2])
                record = {
                    "kind": "epoch", "epoch": epoch + 1, "global_step": global_step,
                    "train_loss": train_loss,
                    "train_accuracy": sums[1] / max(1, sums[2]) if self.num_classes else None,
                    "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                    "lr": self.schedule.lr(epoch, spe - 1), "grad_norm": grad_norm,
                    "samples_per_sec": sums[2] / max(1e-9, epoch_seconds),
                    "epoch_seconds": epoch_seconds,
                    "elapsed": elapsed + time.perf_counter() - clock,
                }
                if val["accuracy"] is not None:
                    best_val = max(best_val or 0.0, val["accuracy"])
                self.schedule.on_epoch_end(val["loss"])
                for cb in self.callbacks:
                    cb.on_epoch_end(self, record)
                epoch += 1
                step = 0
                state["epoch_elapsed"] = 0.0
                if run:
                    run.append_metrics([record])
                    self._save_checkpoint(epoch, 0, global_step, sums=(0.0, 0, 0),
                                          epoch_gen_state=self.gen.get_state(),
                                          elapsed=record["elapsed"], best_val=best_val,
                                          epoch_elapsed=0.0)
                yield EpochEnded(**{k: v for k, v in record.items() if k != "kind"})
                yield from self._flush()
                if self._stop.is_set():
                    raise _Stopped
        except _Stopped:
            stopped = epoch < epochs
            if stopped and step > 0 and run:
                loss_sum, correct, count = self._take()
                sums = [sums[0] + loss_sum, sums[1] + correct, sums[2] + count]
                self._save_checkpoint(epoch, step, global_step, sums=tuple(sums),
                                      epoch_gen_state=epoch_gen_state,
                                      elapsed=elapsed + time.perf_counter() - clock,
                                      best_val=best_val,
                                      epoch_elapsed=epoch_elapsed_before
                                      + time.perf_counter() - epoch_start)
        yield from self._finish(epoch, stopped, elapsed + time.perf_counter() - clock, best_val)

    def _finish(self, epoch: int, stopped: bool, seconds: float,
                best_val: float | None) -> Iterator[Event]:
        for cb in self.callbacks:
            cb.on_run_end(self)
        yield from self._flush()
        early = self._early and self.early_stopping is not None and self.early_stopping.stopped
        test = self._evaluate(self.test_batches, predictions=self.num_classes > 0)
        val = self._evaluate(self.val_batches)
        confusion = None
        misclassified: tuple[tuple[int, int, int], ...] = ()
        if self.num_classes > 0:
            truth = self.test_batches.y.cpu()
            pred = test["predictions"]
            k = self.num_classes
            confusion_t = torch.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
            confusion = tuple(tuple(int(v) for v in row) for row in confusion_t.tolist())
            wrong = torch.nonzero(truth != pred).flatten()[:MISCLASSIFIED_KEPT].tolist()
            misclassified = tuple((i, int(truth[i]), int(pred[i])) for i in wrong)
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise RunAbort("the weights became non-finite", NAN_HINT)
        summary: dict[str, Any] = {
            "status": "stopped" if stopped and not early else "finished",
            "epochs_done": epoch, "seconds": round(seconds, 3), "device": str(self.device),
            "test_loss": test["loss"], "val_loss": val["loss"],
            "val_accuracy": val["accuracy"], "best_val_accuracy": best_val,
            "early_stopped": early, "num_params": sum(p.numel() for p in self.model.parameters()),
            "world_size": self.dist.world_size if self.dist else 1,
        }
        if self.num_classes > 0:
            summary["test_accuracy"] = test["accuracy"]
            summary["confusion"] = [list(row) for row in confusion or ()]
            summary["class_names"] = list(self.data.info.class_names)  # type: ignore[union-attr]
        else:
            summary["test_mse"] = test["loss"]
        if self.run:
            self.run.save_model(self.model.state_dict())
            self.run.append_metrics([{"kind": "test", "loss": test["loss"],
                                      "accuracy": test["accuracy"], "global_step":
                                      epoch * self.steps_per_epoch}])
            summary = self.run.update_summary(**summary)
        yield RunFinished(
            run_dir=str(self.run.path) if self.run else "", stopped=stopped and not early,
            early_stopped=early, epochs=epoch, seconds=seconds, test_loss=test["loss"],
            test_accuracy=test["accuracy"], best_val_accuracy=best_val, summary=summary,
            confusion=confusion, misclassified=misclassified)

    # -- checkpoints -------------------------------------------------------------------
    def _start_run(self) -> dict[str, Any]:
        """Create the run folder, or load the checkpoint of the run being resumed."""
        fresh = {"epoch": 0, "step": 0, "elapsed": 0.0, "best_val_accuracy": None}
        if self.resume_run is None:
            if self.store:
                self.run = self.runs.create(self.spec, parent=self.parent)
                self.run.update_summary(status="running")
            return fresh
        self.run = self.resume_run
        ckpt = self.run.load_checkpoint()
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        if self.early_stopping is not None and "early_stopping" in ckpt:
            self.early_stopping.load_state_dict(ckpt["early_stopping"])
        torch.set_rng_state(ckpt["cpu_rng"])
        if self.device.type == "cuda" and "cuda_rng" in ckpt:
            torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
        self.gen.set_state(ckpt["gen_state"])
        self.run.truncate_metrics(ckpt["global_step"])
        self.run.update_summary(status="running")
        return {"epoch": ckpt["epoch"], "step": ckpt["step"], "elapsed": ckpt["elapsed"],
                "best_val_accuracy": ckpt["best_val_accuracy"],
                "epoch_gen_state": ckpt["epoch_gen_state"], "gen_state": ckpt["gen_state"],
                "epoch_sums": ckpt["epoch_sums"], "epoch_elapsed": ckpt["epoch_elapsed"]}

    def _save_checkpoint(self, epoch: int, step: int, global_step: int, *, sums: tuple,
                         epoch_gen_state: torch.Tensor, elapsed: float,
                         best_val: float | None, epoch_elapsed: float) -> None:
        """Everything needed to continue exactly; never written for non-finite weights."""
        assert self.run is not None
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise RunAbort("the weights became non-finite", NAN_HINT)
        state: dict[str, Any] = {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "epoch": epoch, "step": step,
            "global_step": global_step, "epoch_sums": [float(sums[0]), int(sums[1]), int(sums[2])],
            "epoch_gen_state": epoch_gen_state, "gen_state": self.gen.get_state(),
            "cpu_rng": torch.get_rng_state(), "elapsed": float(elapsed),
            "best_val_accuracy": best_val, "epoch_elapsed": float(epoch_elapsed),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        if self.early_stopping is not None:
            state["early_stopping"] = self.early_stopping.state_dict()
        self.run.save_checkpoint(state)
        self.run.update_summary(epochs_done=epoch, checkpoint_step=global_step)


def _asdict(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


def _setup_hint(exc: Exception) -> str:
    if isinstance(exc, SpecError):
        return "fix the experiment and try again"
    if isinstance(exc, DataError):
        return "check the dataset's files or folder"
    return "the run folder may be damaged; start a new run"


def _explain(exc: BaseException) -> tuple[str, str]:
    """A person-readable reason and hint for an exception that ended a run."""
    if isinstance(exc, RunAbort):
        return exc.reason, exc.hint
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return ("the device ran out of memory",
                "lower the batch size, use a smaller network, or train on the CPU")
    if isinstance(exc, SpecError | DataError | RunError):
        return str(exc), _setup_hint(exc)
    text = str(exc)
    if isinstance(exc, torch.distributed.DistError) or any(
            marker in text for marker in ("Connection reset by peer", "Connection closed by peer",
                                          "gloo/transport", "NCCL error")):
        return ("another rank of this distributed run died or stopped answering",
                "look at that rank's output above; every rank was stopped and the run marked "
                "failed")
    if type(exc).__name__ == "RankStopped":
        return str(exc), "look at the other ranks' output above"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "resume the run from its folder"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"{type(exc).__name__}: {message}" if message else type(exc).__name__,
            "this is likely a bug in Workbench; the run folder keeps what was saved")


__all__ = ["Trainer", "device_name", "resolve_device"]
