"""The trainer's three parts, each alone: the set-up (everything a run needs before its first
step, and nothing stored), and the recorder (the run's folder, lock, metrics, summary,
failure and final evaluation) driven without a loop."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import pytest
import torch

from workbench import spec as specmod
from workbench.core.data import load_splits
from workbench.core.model import build_model
from workbench.core.store.locks import is_locked
from workbench.core.store.runs import RunStatus, RunStore
from workbench.core.training.events import EpochEnded, Progress, RunFailed, RunFinished
from workbench.core.training.process import PROCESS
from workbench.core.training.recorder import (
    TRACEBACK_FILE,
    RunRecorder,
    chance_loss,
    final_evaluation,
    starting_loss,
)
from workbench.core.training.setup import make_step, prepare_run
from workbench.core.training.state import LoopState
from workbench.spec import SpecError


def moons_spec(**train) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "parts",
        "data": {"name": "moons", "samples": 300, "noise": 0.2},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Dropout", "p": 0.2}, {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 2, "batch_size": 32, "seed": 4, "device": "cpu", **train},
    })


# -- the set-up -------------------------------------------------------------------------------
def test_the_set_up_builds_a_run_from_its_spec_and_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    spec = moons_spec(threads=1)
    threads = torch.get_num_threads()
    with contextlib.ExitStack() as cleanup:
        setup = prepare_run(spec, cleanup=cleanup)
        assert setup.num_threads == 1 and torch.get_num_threads() == 1 and PROCESS.jobs == 1
        assert setup.num_classes == 2 and setup.device == torch.device("cpu")
        n = setup.data.train_x.shape[0]
        assert setup.batch_size == 32 and setup.steps_per_epoch == -(-n // 32)
        assert setup.val_batches.num_samples + setup.test_batches.num_samples > 0
        want = build_model(spec.model.layers, (2,), generator=torch.Generator().manual_seed(4))
        for key, value in want.state_dict().items():
            assert torch.equal(setup.model.state_dict()[key], value), key
        assert setup.streams.dropout is setup.streams.model  # on the CPU, as it always drew
        assert setup.schedule.lr(0, 0) == 0.01 and setup.graph_wanted is False
        step, note = make_step(setup.model, setup.optimizer, setup.loss_fn, spec,
                               setup.num_classes, setup.device, batch_size=setup.batch_size,
                               input_shape=(2,), graph=False)
        assert step.kind == "linear-stack" and note is None
    assert torch.get_num_threads() == threads and PROCESS.jobs == 0  # given back
    assert not (tmp_path / "home").exists()


def test_the_set_up_refuses_bad_input_and_gives_back_what_it_took():
    d = moons_spec().to_dict()
    d["model"]["layers"][3]["out"] = 3  # moons has 2 classes
    bad = specmod.from_dict(d)
    with pytest.raises(SpecError, match=r"model.layers\[3\]"), contextlib.ExitStack() as cleanup:
        prepare_run(bad, cleanup=cleanup)
    assert PROCESS.jobs == 0


# -- the recorder -----------------------------------------------------------------------------
@pytest.fixture
def stand_in():
    """What the recorder reads of a trainer, without a trainer: a model and its data."""
    spec = moons_spec()
    data = load_splits(spec.data, spec.train.seed)
    with contextlib.ExitStack() as cleanup:
        setup = prepare_run(spec, data=data, cleanup=cleanup)
    state = LoopState(epoch=2, global_step=2 * setup.steps_per_epoch, last_loss=0.3)
    trainer = SimpleNamespace(
        spec=spec, model=setup.model, data=data, num_classes=2, loss_fn=setup.loss_fn,
        val_batches=setup.val_batches, test_batches=setup.test_batches, device=setup.device,
        steps_per_epoch=setup.steps_per_epoch, state=state, dist=None, elapsed=lambda: 1.5)
    state.start_loss, state.start_split = starting_loss(
        setup.model, setup.val_batches, data, setup.loss_fn, 2)
    return trainer


def test_the_recorder_keeps_a_run_s_folder_from_its_start_to_its_result(tmp_path, stand_in):
    recorder = RunRecorder(RunStore(tmp_path), store=True)
    recorder.open_new(stand_in.spec)
    run = recorder.run
    assert run is not None and run.summary()["status"] == RunStatus.RUNNING
    assert is_locked(run.path)
    recorder.note_start(threads=1, step_note=None, shared=("1 CPU thread instead of 2",))
    progress = Progress(0, 3, 10, 3, 20, 0.6, 0.7, 0.01, 100.0, 0.1, 1.0)
    recorder.on_progress(stand_in, progress)
    ended = EpochEnded(1, 10, 0.5, 0.75, 0.45, 0.8, 0.01, 1.0, 100.0, 0.1, 0.2)
    recorder.on_epoch_end(stand_in, {"kind": "epoch", **ended.__dict__})
    assert [r["kind"] for r in run.metrics()] == ["step", "epoch"]

    end = recorder.finish(stand_in, stopped=False, early=False)
    assert isinstance(end, RunFinished) and end.run_dir == str(run.path)
    assert not is_locked(run.path)
    summary = run.summary()
    final = final_evaluation(stand_in.model, stand_in.test_batches, stand_in.val_batches,
                             stand_in.loss_fn, 2)
    assert summary["status"] == RunStatus.FINISHED and summary["test_loss"] == final.test_loss
    assert summary["test_accuracy"] == end.test_accuracy == final.test_accuracy
    assert sum(map(sum, summary["confusion"])) == stand_in.test_batches.num_samples
    assert (summary["threads"], summary["shared"]) == (1, ["1 CPU thread instead of 2"])
    assert summary["done"] == "2 epochs" and end.done == "2 epochs"
    assert summary["start_loss"] == stand_in.state.start_loss
    assert summary["chance_loss"] == pytest.approx(chance_loss(stand_in.data.train_y, 2))
    assert summary["verdict"] in ("ok", "suspect")
    assert run.metrics("test")[0]["loss"] == final.test_loss
    assert set(run.load_model_state()) == set(stand_in.model.state_dict())


def test_the_recorder_writes_down_a_bug_and_lets_the_folder_go(tmp_path, stand_in):
    recorder = RunRecorder(RunStore(tmp_path), store=True)
    recorder.open_new(stand_in.spec)
    run = recorder.run
    try:
        raise KeyError("a bug")
    except KeyError as exc:
        failed = recorder.failed(exc, epoch=1)
    assert isinstance(failed, RunFailed) and failed.run_dir == str(run.path)
    assert "KeyError" in failed.reason and failed.details == str(run.path / TRACEBACK_FILE)
    assert "KeyError: 'a bug'" in (run.path / TRACEBACK_FILE).read_text()
    summary = run.summary()
    assert summary["status"] == RunStatus.FAILED and summary["traceback"] == TRACEBACK_FILE
    assert not is_locked(run.path)


def test_a_recorder_that_does_not_store_still_gives_the_result(tmp_path, stand_in):
    recorder = RunRecorder(RunStore(tmp_path / "runs"), store=False)
    recorder.open_new(stand_in.spec)
    recorder.on_epoch_end(stand_in, {"kind": "epoch"})
    end = recorder.finish(stand_in, stopped=True, early=False)
    assert end.run_dir == "" and end.stopped and end.test_accuracy is not None
    assert end.summary["status"] == RunStatus.STOPPED
    assert not (tmp_path / "runs").exists()


def test_the_loss_of_knowing_nothing():
    assert chance_loss(torch.tensor([0, 1, 0, 1]), 2) == pytest.approx(0.693147, rel=1e-5)
    assert chance_loss(torch.tensor([2, 2, 2]), 3) == 0.0
    assert chance_loss(torch.tensor([[1.0], [3.0]]), 0) == pytest.approx(1.0)
    json.dumps(chance_loss(torch.zeros(0, 1), 0))  # an empty split is a number too
