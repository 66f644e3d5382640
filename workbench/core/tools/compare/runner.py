"""The fair runner: a comparison's pending variants trained from the same initial weights, on
the same loaded data, in the same batch order, one after another or side by side on threads.

Data and weights are built once per distinct (data, seed) and (model, data, seed) and handed
to each Trainer. Every variant ends with its own last event: `RunFinished`, or `RunFailed`
when it diverges, its set-up is refused, or anything else goes wrong (a bug included), and the
others go on. `events()` yields `(variant index, event)` so the GUI and the CLI drive it the
same way.

Immutable inputs in, results out: the runner copies what it runs when it is made and never
writes into the comparison it was given (the GUI edits that one on its own thread); the run
folders travel in the events, and the caller records them (`Comparison.record`). Each variant
draws from its own random streams (the trainer's), so variants with Dropout run side by side
exactly as they run one at a time.
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from workbench.core.data.cache import DataSource, load_from, spec_key
from workbench.core.store.runs import RunStore
from workbench.core.tools.compare.callbacks import FirstBatchLoss, WeightTrail
from workbench.core.tools.compare.variants import Comparison, Variant
from workbench.core.training.callbacks import Callback
from workbench.core.training.events import Event, RunFailed, RunFinished
from workbench.spec import ExperimentSpec, SpecError

log = logging.getLogger(__name__)


class ComparisonRunner:
    """Runs a comparison's pending variants fairly; `events()` yields (index, event).

    `side_by_side` > 1 trains that many variants at once on threads (meant for a GPU with
    room for several; on the CPU they would only share the cores). `stop()` from any thread
    stops the variants in flight and starts no more. The data comes from `source` (the
    workspace) when given; the runner holds what its variants use until it is done.
    """

    def __init__(self, comparison: Comparison, runs: RunStore | None = None, *,
                 only: Sequence[int] | None = None, threads: int | None = None,
                 side_by_side: int | str = 1, keep_trails: bool = True,
                 callbacks: Callable[[int, Variant], Sequence[Callback]] | None = None,
                 data_progress: Callable[[str], None] | None = None,
                 source: DataSource | None = None) -> None:
        indices = list(only) if only is not None else comparison.pending()
        # copies, taken on the caller's thread: the caller may go on editing its comparison
        self.variants: dict[int, Variant] = {
            i: Variant(comparison.variants[i].label, copy.deepcopy(comparison.variants[i].spec))
            for i in indices}
        self.indices = indices
        self.runs = runs or RunStore()
        self.source = source
        self.threads = threads
        self.side_by_side = side_by_side
        self.keep_trails = keep_trails
        self.extra_callbacks = callbacks
        self.data_progress = data_progress
        self.trails: dict[int, WeightTrail] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._trainers: dict[int, Any] = {}
        self._data: dict[str, Any] = {}
        self._weights: dict[str, dict[str, torch.Tensor]] = {}

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for trainer in self._trainers.values():
                trainer.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- shared data and weights -----------------------------------------------------------
    def _shared(self, spec: ExperimentSpec) -> tuple[Any, dict[str, torch.Tensor]]:
        """The loaded data and initial weights for this spec, built once and reused (the
        weights from the seed's own generator, as the trainer draws them)."""
        from workbench.core.model import build_model, check

        seed = spec.train.seed
        data_key = json.dumps([spec_key(spec.data), seed])
        if data_key not in self._data:
            if self.data_progress:
                self.data_progress(f"loading {spec.data.name}")
            self._data[data_key] = load_from(self.source, spec.data, seed, cancel=self._stop)
        data = self._data[data_key]
        info = data.info
        weights_key = json.dumps([[layer.to_dict() for layer in spec.model.layers],
                                  list(info.input_shape), seed])
        if weights_key not in self._weights:
            check(spec.model.layers, info.input_shape, info.num_classes)
            model = build_model(spec.model.layers, info.input_shape,
                                generator=torch.Generator().manual_seed(seed))
            self._weights[weights_key] = {k: v.detach().clone()
                                          for k, v in model.state_dict().items()}
        return data, self._weights[weights_key]

    def _trainer(self, index: int) -> Any:
        from workbench.core.training.loop import Trainer

        variant = self.variants[index]
        data, weights = self._shared(variant.spec)
        callbacks: list[Callback] = [FirstBatchLoss()]
        if self.keep_trails:
            self.trails[index] = WeightTrail()
            callbacks.append(self.trails[index])
        if self.extra_callbacks is not None:
            callbacks += list(self.extra_callbacks(index, variant))
        return Trainer(variant.spec, runs=self.runs, data=data, initial_state=weights,
                       callbacks=callbacks, threads=self.threads)

    def _events_of(self, index: int) -> Iterator[Event]:
        """One variant's events, ending with its RunFinished or RunFailed whatever happens
        (a set-up that is refused, or fails in any way, becomes its RunFailed)."""
        from workbench.core.data import DataError
        from workbench.core.training.failures import explain

        last: Event | None = None
        try:
            trainer = self._trainer(index)
            with self._lock:
                self._trainers[index] = trainer
                if self._stop.is_set():
                    trainer.stop()
            for event in trainer.events():
                last = event
                yield event
        except GeneratorExit:
            raise
        except Exception as exc:  # every failure is delivered as the variant's failure
            failure = explain(exc)
            if not isinstance(exc, SpecError | DataError):
                log.error("comparison variant %d (%s) failed: %s", index,
                          self.variants[index].label, failure.reason, exc_info=exc)
            if not isinstance(last, RunFinished | RunFailed):
                yield RunFailed(getattr(last, "run_dir", None) or None, failure.reason,
                                failure.hint)
        finally:
            with self._lock:
                self._trainers.pop(index, None)

    def events(self) -> Iterator[tuple[int, Event]]:
        width = self._width()
        if width <= 1:
            for index in self.indices:
                if self._stop.is_set():
                    break
                for event in self._events_of(index):
                    yield index, event
            return
        yield from self._parallel(width)

    def _width(self) -> int:
        if self.side_by_side == "auto":
            return auto_side_by_side([self.variants[i].spec for i in self.indices])
        return max(1, int(self.side_by_side))

    def _parallel(self, width: int) -> Iterator[tuple[int, Event]]:
        """Up to `width` variants at once, each on its own thread, events merged in order.

        Data and weights are built first on this thread so the workers only train; a variant
        whose data or weights cannot be built reports it as its RunFailed when it starts.
        """
        for index in self.indices:
            try:
                self._shared(self.variants[index].spec)
            except Exception:  # noqa: BLE001 (its own start says what, as a RunFailed)
                continue
        done = object()
        out: queue.Queue[tuple[int, Any]] = queue.Queue()

        def work(index: int) -> None:
            try:
                for event in self._events_of(index):
                    out.put((index, event))
            finally:
                out.put((index, done))

        waiting = list(self.indices)
        threads: dict[int, threading.Thread] = {}
        try:
            while waiting or threads:
                while waiting and len(threads) < width and not self._stop.is_set():
                    index = waiting.pop(0)
                    threads[index] = threading.Thread(target=work, args=(index,), daemon=True,
                                                      name=f"compare-{index}")
                    threads[index].start()
                if not threads:
                    break
                index, event = out.get()
                if event is done:
                    threads.pop(index).join()
                else:
                    yield index, event
        finally:
            self.stop()
            for thread in threads.values():
                thread.join()


def run_comparison(comparison: Comparison, runs: RunStore | None = None,
                   **options: Any) -> Iterator[tuple[int, Event]]:
    """Run the pending variants; yields (variant index, event). See ComparisonRunner."""
    return ComparisonRunner(comparison, runs, **options).events()


def auto_side_by_side(specs: Sequence[ExperimentSpec], limit: int = 4) -> int:
    """How many variants to train at once: 1 on the CPU; on a GPU as many as fit in half its
    free memory, by a rough estimate (weights, gradients, two optimizer states, activations)."""
    from workbench.core.training.setup import resolve_device

    if not specs:
        return 1
    spec = specs[0]
    try:
        device = resolve_device(spec.train.device)
    except SpecError:
        return 1
    if device.type != "cuda":
        return 1
    from workbench.core.data import dataset_info
    from workbench.core.model import analyze

    info = dataset_info(spec.data)
    report = analyze(spec.model.layers, info.input_shape, None)
    per_variant = 16 * report.total_params + 64 * spec.train.batch_size * max(
        1, report.total_macs // max(1, report.total_params)) + 256 * 2**20
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(limit, len(specs), int(0.5 * free // per_variant)))
