"""The trainer on real small data: it learns, fails cleanly, stops, and resumes exactly."""

import math
import threading
from pathlib import Path

import pytest
import torch

from workbench import spec as specmod
from workbench.core.store.runs import Run, RunStore
from workbench.core.training.events import EpochEnded, Progress, RunFailed, RunFinished, RunStarted
from workbench.core.training.loop import Trainer


def make_spec(**sections):
    d = {
        "name": "test",
        "data": {"name": "moons", "samples": 400, "noise": 0.15},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Dropout", "p": 0.1},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.02},
        "train": {"epochs": 6, "batch_size": 16, "seed": 3, "device": "cpu"},
    }
    for key, value in sections.items():
        d[key] = {**d.get(key, {}), **value}
    return specmod.from_dict(d)


def run_all(trainer):
    return list(trainer.events())


def epochs_of(events):
    return [e for e in events if isinstance(e, EpochEnded)]


def test_training_learns_and_stores_the_run(tmp_path):
    store = RunStore(tmp_path)
    events = run_all(Trainer(make_spec(), runs=store))
    assert isinstance(events[0], RunStarted)
    assert isinstance(events[-1], RunFinished)
    ep = epochs_of(events)
    assert len(ep) == 6
    assert ep[-1].train_loss < 0.6 * ep[0].train_loss
    assert events[-1].test_accuracy > 0.9
    assert sum(map(sum, events[-1].confusion)) == events[0].test_size
    run = Run(events[-1].run_dir)
    assert run.summary()["status"] == "finished"
    assert run.spec() == make_spec()
    assert len(run.metrics("epoch")) == 6
    assert (run.path / "model.pt").exists() and (run.path / "checkpoint.pt").exists()
    infos = store.list()
    assert [i.path for i in infos] == [run.path]


def test_same_seed_same_result_bit_for_bit(tmp_path):
    a = epochs_of(run_all(Trainer(make_spec(), runs=RunStore(tmp_path / "a"))))
    b = epochs_of(run_all(Trainer(make_spec(), runs=RunStore(tmp_path / "b"))))
    assert [e.val_loss for e in a] == [e.val_loss for e in b]
    c = epochs_of(run_all(Trainer(make_spec(train={"seed": 4}), runs=RunStore(tmp_path / "c"))))
    assert [e.val_loss for e in a] != [e.val_loss for e in c]


def test_regression_reports_mse(tmp_path):
    spec = make_spec(data={"name": "line", "samples": 300, "noise": 0.05},
                     model={"layers": [{"type": "Linear", "out": 1}]},
                     optim={"name": "sgd", "lr": 0.1}, train={"epochs": 15})
    trainer = Trainer(spec, runs=RunStore(tmp_path))
    done = run_all(trainer)[-1]
    assert isinstance(done, RunFinished)
    assert done.test_accuracy is None
    assert done.summary["test_mse"] < 0.01
    model = torch.load(f"{done.run_dir}/model.pt", weights_only=True)
    slope = model["0.weight"].item() / trainer.data.std[0]  # inputs are normalized
    assert slope == pytest.approx(3.0, abs=0.1)


def test_nan_loss_fails_cleanly_without_a_bad_checkpoint(tmp_path):
    spec = make_spec(optim={"name": "sgd", "lr": 1e6}, train={"epochs": 3})
    events = run_all(Trainer(spec, runs=RunStore(tmp_path)))
    failed = events[-1]
    assert isinstance(failed, RunFailed)
    assert "loss became" in failed.reason
    assert "learning rate" in failed.hint
    run = Run(failed.run_dir)
    assert run.summary()["status"] == "failed"
    if (run.path / "checkpoint.pt").exists():
        state = run.load_checkpoint()["model"]
        assert all(torch.isfinite(v).all() for v in state.values())


def test_setup_errors_become_run_failed(tmp_path):
    spec = make_spec(model={"layers": [{"type": "Linear", "out": 3}]})
    events = run_all(Trainer(spec, runs=RunStore(tmp_path)))
    assert len(events) == 1 and isinstance(events[0], RunFailed)
    assert "model.layers[0]" in events[0].reason
    assert not any(tmp_path.iterdir())


def test_stop_then_resume_continues_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr("workbench.core.training.loop.PROGRESS_INTERVAL", 0.0)  # report every step
    spec = make_spec(data={"augment": {"noise_std": 0.05}}, train={"epochs": 4})
    full = epochs_of(run_all(Trainer(spec, runs=RunStore(tmp_path / "full"))))

    trainer = Trainer(spec, runs=RunStore(tmp_path / "part"))
    seen = []
    for event in trainer.events():
        seen.append(event)
        if isinstance(event, Progress) and event.global_step > 1.5 * event.steps_per_epoch:
            trainer.stop()
    done = seen[-1]
    assert isinstance(done, RunFinished) and done.stopped
    assert Run(done.run_dir).summary()["status"] == "stopped"
    ckpt = Run(done.run_dir).load_checkpoint()
    assert ckpt["step"] > 0  # stopped mid-epoch: the partial epoch was saved

    resumed = run_all(Trainer(resume=done.run_dir))
    assert isinstance(resumed[0], RunStarted) and resumed[0].resumed
    assert isinstance(resumed[-1], RunFinished) and not resumed[-1].stopped
    tail = epochs_of(resumed)
    first = epochs_of(seen)
    together = first + tail
    assert [e.epoch for e in together] == [1, 2, 3, 4]
    assert [e.val_loss for e in together] == [e.val_loss for e in full]
    for a, b in zip(together, full, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-9)
    epoch_records = Run(done.run_dir).metrics("epoch")
    assert [r["epoch"] for r in epoch_records] == [1, 2, 3, 4]


def test_pause_holds_the_loop(tmp_path):
    trainer = Trainer(make_spec(train={"epochs": 3}), runs=RunStore(tmp_path))
    gen = trainer.events()
    assert isinstance(next(gen), RunStarted)
    trainer.pause()
    assert trainer.paused
    resumed = threading.Event()

    def release():
        resumed.set()
        trainer.resume()

    timer = threading.Timer(0.2, release)
    timer.start()
    event = next(gen)  # blocks until released
    assert resumed.is_set()
    rest = list(gen)
    timer.join()
    assert isinstance(rest[-1], RunFinished)
    assert isinstance(event, Progress | EpochEnded)


def test_early_stopping_restores_best_weights(tmp_path):
    spec = make_spec(optim={"lr": 0.05}, train={"epochs": 60},
                     regularization={"early_stop_patience": 2})
    events = run_all(Trainer(spec, runs=RunStore(tmp_path)))
    done = events[-1]
    assert isinstance(done, RunFinished) and done.early_stopped and not done.stopped
    ep = epochs_of(events)
    assert len(ep) < 60
    best = min(e.val_loss for e in ep)
    assert done.summary["val_loss"] == pytest.approx(best, rel=1e-6)


def _final_weights(run_dir):
    return torch.load(f"{run_dir}/model.pt", weights_only=True)


def test_l1_and_l2_shrink_weights(tmp_path):
    def norms(**reg):
        spec = make_spec(regularization=reg, train={"epochs": 4})
        done = run_all(Trainer(spec, runs=RunStore(tmp_path)))[-1]
        w = _final_weights(done.run_dir)
        return (sum(v.abs().sum().item() for k, v in w.items() if k.endswith("weight")),
                sum((v ** 2).sum().item() for k, v in w.items() if k.endswith("weight")))

    plain_l1, plain_l2 = norms()
    l1_l1, _ = norms(l1=0.01)
    _, l2_l2 = norms(l2=0.05)
    assert l1_l1 < 0.8 * plain_l1
    assert l2_l2 < 0.8 * plain_l2


def test_gradient_clipping_bounds_the_update(tmp_path):
    spec = make_spec(optim={"name": "sgd", "lr": 1.0}, regularization={"grad_clip": 1e-3},
                     train={"epochs": 1, "batch_size": 400})
    trainer = Trainer(spec, runs=RunStore(tmp_path), store=False)
    events = run_all(trainer)
    assert isinstance(events[-1], RunFinished)
    torch.manual_seed(spec.train.seed)
    from workbench.core.model import build_model

    start = build_model(spec.model.layers, (2,)).state_dict()
    end = trainer.model.state_dict()
    steps = events[0].steps_per_epoch
    moved = math.sqrt(sum(((end[k] - start[k]) ** 2).sum().item() for k in start))
    assert moved <= steps * 1e-3 * 1.0001


@pytest.mark.parametrize("name", ["gd", "sgd", "momentum", "nesterov", "adam", "adamw",
                                  "rmsprop", "adagrad"])
def test_every_optimizer_trains_the_network(tmp_path, name):
    rates = {"gd": 0.5, "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05}
    lr = rates.get(name, 0.01)
    spec = make_spec(optim={"name": name, "lr": lr}, train={"epochs": 4})
    ep = epochs_of(run_all(Trainer(spec, runs=RunStore(tmp_path), store=False)))
    assert ep[-1].train_loss < 0.8 * ep[0].train_loss or ep[-1].val_accuracy > 0.85
    assert ep[-1].train_loss < math.log(2)


def test_masks_keep_pruned_weights_zero_through_a_stop_and_a_resume(tmp_path, monkeypatch):
    monkeypatch.setattr("workbench.core.training.loop.PROGRESS_INTERVAL", 0.0)
    spec = make_spec(optim={"name": "momentum", "lr": 0.05}, train={"epochs": 3})
    torch.manual_seed(0)
    mask = (torch.rand(16, 2) > 0.5).float()
    trainer = Trainer(spec, runs=RunStore(tmp_path), masks={"0.weight": mask})
    seen = []
    for event in trainer.events():
        seen.append(event)
        if isinstance(event, Progress) and event.global_step > 1.5 * event.steps_per_epoch:
            trainer.stop()
    done = seen[-1]
    assert isinstance(done, RunFinished) and done.stopped
    stored = Run(done.run_dir).load_checkpoint()
    assert torch.equal(stored["masks"]["0.weight"], mask)
    assert (stored["model"]["0.weight"][mask == 0] == 0).all()

    resumed = Trainer(resume=done.run_dir)
    end = run_all(resumed)[-1]
    assert isinstance(end, RunFinished) and not end.stopped
    weights = Run(done.run_dir).load_model_state()["0.weight"]
    assert (weights[mask == 0] == 0).all()
    assert (weights[mask == 1] != 0).all()


@pytest.mark.parametrize("split", ["val_fraction", "test_fraction"])
def test_a_run_without_a_validation_or_test_split_finishes(tmp_path, split):
    events = run_all(Trainer(make_spec(data={split: 0}, train={"epochs": 2}),
                             runs=RunStore(tmp_path)))
    end = events[-1]
    assert isinstance(end, RunFinished), end
    summary = Run(end.run_dir).summary()
    if split == "val_fraction":
        assert [e.val_loss for e in epochs_of(events)] == [None, None]
        assert summary["val_accuracy"] is None and summary["test_accuracy"] > 0.5
    else:
        assert end.test_loss is None and end.confusion is None
        assert summary["test_accuracy"] is None and summary["val_accuracy"] > 0.5
    assert (Path(end.run_dir) / "model.pt").exists()


def test_a_run_stopped_partway_into_an_epoch_says_how_far_it_got(tmp_path, monkeypatch):
    """'Stopped after 0 epochs' was said of a run stopped 40% into epoch 1: the event and
    the summary carry the steps done, and the words for them."""
    monkeypatch.setattr("workbench.core.training.loop.PROGRESS_INTERVAL", 0.0)
    trainer = Trainer(make_spec(train={"epochs": 3}), runs=RunStore(tmp_path))
    seen = []
    for event in trainer.events():
        seen.append(event)
        if isinstance(event, Progress) and event.step >= 0.4 * event.steps_per_epoch:
            trainer.stop()
    done = seen[-1]
    assert isinstance(done, RunFinished) and done.stopped and done.epochs == 0
    steps = done.global_step
    assert 0 < steps < done.steps_per_epoch == seen[0].steps_per_epoch
    assert done.epochs_run == steps / done.steps_per_epoch
    assert done.done == f"{steps / done.steps_per_epoch:.0%} into epoch 1"
    summary = Run(done.run_dir).summary()
    assert (summary["steps_done"], summary["done"]) == (steps, done.done)
    finished = run_all(Trainer(resume=done.run_dir))[-1]
    assert finished.done == "3 epochs" and finished.epochs_run == 3.0
