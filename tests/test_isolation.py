"""Jobs in one process cannot disturb each other: each run draws from its own random streams
(initialisation, Dropout, shuffling, augmentation), nothing global is read or written, and a
run trained beside a comparison, another run and the rate finder ends with the weights it has
alone, bit for bit on the CPU."""

from __future__ import annotations

import threading

import pytest
import torch

from workbench import spec as specmod
from workbench.core.model import build_model
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools import lr_find as lr_find_module
from workbench.core.tools.compare import Comparison, ComparisonRunner, grid
from workbench.core.tools.lr_find import lr_find
from workbench.core.training.callbacks import Callback
from workbench.core.training.events import Progress, RunFailed, RunFinished
from workbench.core.training.loop import Trainer

WAIT = 300  # seconds: generous, for a loaded machine; never a sleep
THREADS = 1  # every job asks for the same count: the process has one


def dropout_spec(seed: int, epochs: int = 3) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": f"spirals-{seed}",
        "data": {"name": "spirals", "samples": 600, "noise": 0.1},
        "model": {"layers": [{"type": "Linear", "out": 32}, {"type": "ReLU"},
                             {"type": "Dropout", "p": 0.3}, {"type": "Linear", "out": 32},
                             {"type": "Tanh"}, {"type": "Dropout", "p": 0.2},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": epochs, "batch_size": 16, "seed": seed, "device": "cpu"},
    })


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def train(spec: specmod.ExperimentSpec, callbacks=()) -> Trainer:
    trainer = Trainer(spec, store=False, threads=THREADS, callbacks=callbacks)
    events = list(trainer.events())
    assert isinstance(events[-1], RunFinished), events[-1]
    return trainer


class Gate(Callback):
    """Says when its run is about to take its first step, then waits for `go`."""

    def __init__(self, ready: threading.Event, go: threading.Event) -> None:
        self.ready, self.go = ready, go

    def on_run_start(self, trainer) -> None:
        self.ready.set()
        assert self.go.wait(WAIT)


class StartTogether(Callback):
    """The run under test starts only once every other job is at its first step, then lets
    them all go: the whole run overlaps theirs."""

    def __init__(self, ready: list[threading.Event], go: threading.Event) -> None:
        self.ready, self.go = ready, go

    def on_run_start(self, trainer) -> None:
        for event in self.ready:
            assert event.wait(WAIT), "a job beside the run did not start"
        self.go.set()


def test_a_run_beside_a_comparison_another_run_and_the_rate_finder_is_bit_for_bit_alone(
        tmp_path, monkeypatch):
    monkeypatch.setattr(lr_find_module, "REPORT_INTERVAL", 0.0)  # a report every step
    spec = dropout_spec(seed=1)
    finder_spec = dropout_spec(seed=5)
    alone = weights(train(spec))
    finder_alone = lr_find(finder_spec, threads=THREADS, steps=200)

    go = threading.Event()
    ready = {name: threading.Event() for name in ("other", "compare", "finder")}
    other = Trainer(dropout_spec(seed=7, epochs=500), store=False, threads=THREADS,
                    callbacks=[Gate(ready["other"], go)])
    comparison = Comparison("beside", grid(dropout_spec(seed=3, epochs=500),
                                           {"optim.name": ["sgd", "adam"]}))
    runner = ComparisonRunner(comparison, RunStore(tmp_path / "runs"), threads=THREADS,
                              side_by_side=2,
                              callbacks=lambda _i, _v: [Gate(ready["compare"], go)])
    found: dict[str, object] = {}

    def finder_progress(_report) -> None:
        if not ready["finder"].is_set():
            ready["finder"].set()
            assert go.wait(WAIT)

    jobs = [threading.Thread(target=lambda: found.update(other=list(other.events()))),
            threading.Thread(target=lambda: found.update(compare=list(runner.events()))),
            threading.Thread(target=lambda: found.update(finder=lr_find(
                finder_spec, threads=THREADS, steps=200, progress=finder_progress)))]
    for job in jobs:
        job.start()
    try:
        beside = weights(train(spec, callbacks=[StartTogether(list(ready.values()), go)]))
    finally:
        go.set()
        other.stop()
        runner.stop()
        for job in jobs:
            job.join(WAIT)
    assert not any(job.is_alive() for job in jobs)
    assert isinstance(found["other"][-1], RunFinished)  # stopped once the run had ended
    assert not any(isinstance(event, RunFailed) for _i, event in found["compare"])
    for key, value in alone.items():
        assert torch.equal(beside[key], value), key
    finder = found["finder"]
    assert finder.lrs == finder_alone.lrs and finder.losses == finder_alone.losses


def test_a_run_reads_and_moves_nothing_global():
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    threads = torch.get_num_threads()
    train(dropout_spec(seed=2, epochs=1))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.get_num_threads() == threads


def _layers(*layers: dict) -> list:
    return specmod.from_dict({"data": {"name": "mnist_small"},
                              "model": {"layers": list(layers)}}).model.layers


def test_the_run_s_generator_gives_the_weights_a_seeded_global_generator_gave():
    """Explicit initialisation from the run's generator keeps every layer's weights as
    torch.manual_seed(seed) then building the layers made them (runs keep their numbers),
    and moves nothing global."""
    stacks = [
        (_layers({"type": "Conv2d", "out": 4, "kernel": 3}, {"type": "BatchNorm"},
                 {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
                 {"type": "AvgPool2d", "kernel": 2}, {"type": "Dropout", "p": 0.1},
                 {"type": "Flatten"}, {"type": "LeakyReLU"}, {"type": "Linear", "out": 16},
                 {"type": "BatchNorm"}, {"type": "GELU"}, {"type": "Sigmoid"},
                 {"type": "Tanh"}, {"type": "Linear", "out": 10}), (1, 28, 28)),
        (_layers({"type": "Conv2d", "out": 4, "kernel": 5, "stride": 2, "bias": False},
                 {"type": "GlobalAvgPool"}, {"type": "Linear", "out": 10, "bias": False}),
         (1, 28, 28)),
        (dropout_spec(0).model.layers, (2,)),
    ]
    for stack, shape in stacks:
        torch.manual_seed(11)
        want = build_model(stack, shape).state_dict()
        before = torch.get_rng_state()
        got = build_model(stack, shape, generator=torch.Generator().manual_seed(11))
        assert torch.equal(torch.get_rng_state(), before)
        assert want.keys() == got.state_dict().keys()
        for key, value in want.items():
            assert torch.equal(got.state_dict()[key], value), key


class StopAfter(Callback):
    def __init__(self, reports: int) -> None:
        self.left = reports

    def on_progress(self, trainer, progress: Progress) -> None:
        self.left -= 1
        if self.left == 0:
            trainer.stop()


def test_a_checkpoint_from_before_per_run_streams_resumes_exactly(tmp_path, monkeypatch):
    """Version 2 checkpoints kept the global generator's state (`cpu_rng`), which was
    Dropout's stream on the CPU: a resume continues it, bit for bit."""
    monkeypatch.setattr("workbench.core.training.loop.PROGRESS_INTERVAL", 0.0)
    spec = dropout_spec(seed=4, epochs=2)
    straight = weights(train(spec))
    runs = RunStore(tmp_path)
    stopped = Trainer(spec, runs=runs, threads=THREADS, callbacks=[StopAfter(30)])
    end = list(stopped.events())[-1]
    assert isinstance(end, RunFinished) and end.stopped
    run = Run(end.run_dir)
    ckpt = run.load_checkpoint()
    assert ckpt["step"] > 0  # stopped mid-epoch: Dropout's stream is mid-way too
    ckpt["version"] = 2
    ckpt["cpu_rng"] = ckpt.pop("dropout_rng")
    run.save_checkpoint(ckpt)
    resumed = Trainer(resume=end.run_dir, runs=runs, threads=THREADS)
    assert isinstance(list(resumed.events())[-1], RunFinished)
    for key, value in straight.items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


@pytest.mark.parametrize("seed", [0, 9])
def test_same_spec_and_seed_same_weights_different_seed_different(seed):
    a, b = weights(train(dropout_spec(seed, epochs=1))), weights(train(dropout_spec(seed, 1)))
    c = weights(train(dropout_spec(seed + 1, epochs=1)))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_exporting_and_timing_a_network_draw_nothing_from_the_process_generator(tmp_path):
    """A stored run's network rebuilt to load its weights, an export's example input and a
    latency measurement's drew from the process's generator, moving the random numbers of
    whatever job drew from it next."""
    pytest.importorskip("onnxruntime")
    from workbench.core.tools.export import export_run
    from workbench.core.tools.prune_apply import cpu_latency_ms

    spec = specmod.from_dict({"name": "exported", "data": {"name": "moons", "samples": 200},
                              "model": {"layers": [{"type": "Linear", "out": 8},
                                                   {"type": "ReLU"}, {"type": "Linear", "out": 2}]},
                              "train": {"epochs": 1}})
    events = list(Trainer(spec, runs=RunStore(tmp_path / "runs")).events())
    assert isinstance(events[-1], RunFinished)
    timed = torch.nn.Linear(2, 2)
    torch.manual_seed(7)
    before = torch.get_rng_state()
    export_run(events[-1].run_dir, tmp_path / "exported.onnx")  # the run's network rebuilt
    cpu_latency_ms(timed, (2,), repeats=2)
    assert torch.equal(torch.get_rng_state(), before)
