"""Epoch checkpoints and forks: a fork that changes nothing repeats its parent bit for bit on
the CPU; a fork that changes settings runs them from the parent's state; bad forks are refused
in one line before anything runs."""

from __future__ import annotations

import json

import pytest

from workbench import spec as specmod
from workbench.cli import main
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.fork import (
    ForkError,
    branch_of,
    fork_points,
    fork_trainer,
    parse_sets,
    plan_fork,
    spec_changes,
)
from workbench.core.training.events import EpochEnded, RunFinished
from workbench.core.training.loop import Trainer
from workbench.spec import SpecError


def make_spec(**sections) -> specmod.ExperimentSpec:
    d = {
        "name": "parent",
        "data": {"name": "moons", "samples": 400, "noise": 0.15},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Dropout", "p": 0.2}, {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.02},
        "schedule": {"name": "step", "step_size": 2, "gamma": 0.7, "warmup_epochs": 1},
        "regularization": {"early_stop_patience": 10},
        "train": {"epochs": 6, "batch_size": 16, "seed": 3, "device": "cpu"},
    }
    for key, value in sections.items():
        d[key] = {**d.get(key, {}), **value}
    return specmod.from_dict(d)


def train(spec, root) -> tuple[str, list[EpochEnded]]:
    events = list(Trainer(spec, runs=RunStore(root), threads=1).events())
    assert isinstance(events[-1], RunFinished), events[-1]
    return events[-1].run_dir, [e for e in events if isinstance(e, EpochEnded)]


def figures(epochs: list[EpochEnded]) -> list[tuple]:
    return [(e.epoch, e.global_step, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy,
             e.lr, e.grad_norm) for e in epochs]


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return train(make_spec(), root)


def test_runs_keep_a_checkpoint_per_epoch_by_default(parent):
    run_dir, _ = parent
    assert fork_points(run_dir) == [1, 2, 3, 4, 5, 6]


def test_checkpoint_every_and_keep(tmp_path):
    run_dir, _ = train(make_spec(train={"epochs": 7, "checkpoint_every": 2,
                                        "keep_checkpoints": 2}), tmp_path)
    assert fork_points(run_dir) == [6, 7]  # every 2nd and the last; the newest two kept
    run_dir, _ = train(make_spec(train={"checkpoint_every": 0}), tmp_path)
    assert fork_points(run_dir) == []
    with pytest.raises(ForkError, match="kept no epoch checkpoints"):
        plan_fork(run_dir, 2)


def test_old_specs_load_and_bad_values_are_refused():
    d = make_spec().to_dict()
    del d["train"]["checkpoint_every"], d["train"]["keep_checkpoints"]
    spec = specmod.from_dict(d)
    assert (spec.train.checkpoint_every, spec.train.keep_checkpoints) == (1, None)
    for field, value, message in (("checkpoint_every", -1, "a whole number from 0 to 100,000"),
                                  ("checkpoint_every", 1.5, "a whole number from 0"),
                                  ("keep_checkpoints", 0, "a whole number from 1 to 100,000"),
                                  ("keep_checkpoints", True, "a whole number from 1")):
        with pytest.raises(SpecError, match=f"train.{field}: must be {message}"):
            spec.with_value(f"train.{field}", value)


def test_a_fork_that_changes_nothing_repeats_its_parent_bit_for_bit(parent, tmp_path):
    run_dir, parent_epochs = parent
    plan = plan_fork(run_dir, 3)
    assert plan.changes == {} and not plan.fresh_optimizer
    events = list(fork_trainer(plan, runs=RunStore(tmp_path), threads=1).events())
    done = events[-1]
    assert isinstance(done, RunFinished)
    fork_epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert figures(fork_epochs) == figures(parent_epochs[3:])
    assert done.test_loss == Run(run_dir).summary()["test_loss"]
    summary = Run(done.run_dir).summary()
    assert branch_of(summary) == (run_dir, 3, parent_epochs[2].global_step)
    assert summary["fork_changes"] == {}
    # its metrics start with the parent's up to the fork: the curves are whole on their own
    assert [r["epoch"] for r in Run(done.run_dir).metrics("epoch")] == [1, 2, 3, 4, 5, 6]
    assert Run(done.run_dir).metrics("epoch")[:3] == Run(run_dir).metrics("epoch")[:3]


def test_a_fork_runs_its_changed_settings_from_the_parents_state(parent, tmp_path):
    run_dir, parent_epochs = parent
    plan = plan_fork(run_dir, 2, parse_sets(["optim.lr=0.002", "optim.betas=[0.8, 0.99]",
                                             "train.epochs=5"]))
    assert plan.spec.optim.lr == 0.002 and plan.spec.train.epochs == 5
    trainer = fork_trainer(plan, runs=RunStore(tmp_path), threads=1)
    events = list(trainer.events())
    fork_epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in fork_epochs] == [3, 4, 5]
    assert fork_epochs[0].lr == pytest.approx(0.002 * 0.7)  # the new base rate, at epoch 3
    assert trainer.optimizer.param_groups[0]["betas"] == (0.8, 0.99)
    assert figures(fork_epochs) != figures(parent_epochs[2:5])
    assert Run(events[-1].run_dir).summary()["fork_changes"] == {
        "optim.lr": 0.002, "optim.betas": [0.8, 0.99], "train.epochs": 5}
    assert Run(run_dir).spec() == make_spec()  # the parent is only read


def test_a_fork_to_another_optimizer_starts_its_state_afresh(parent, tmp_path):
    run_dir, _ = parent
    plan = plan_fork(run_dir, 4, {"optim.name": "sgd", "optim.lr": 0.1})
    assert plan.fresh_optimizer and "starts afresh" in plan.notes[0]
    done = list(fork_trainer(plan, runs=RunStore(tmp_path), threads=1).events())[-1]
    assert isinstance(done, RunFinished) and done.test_accuracy > 0.8


@pytest.mark.parametrize("epoch, changes, message", [
    (9, {}, r"epoch 9: .* has no checkpoint of it; it has epochs 1-6"),
    (3, {"train.epochs": 3}, "train.epochs: the fork starts after epoch 3, so it must be more"),
    (3, {"model.layers[0].out": 8}, "model: the parent's weights do not fit the changed network"),
    (3, {"optim.lr": -1}, "optim.lr: must be a number from 1e-12"),
    (3, {"optim.nope": 1}, "optim.nope: no such field"),
    (3, {"train.device": "cuda"}, "train.device"),
])
def test_bad_forks_are_refused_before_anything_runs(parent, epoch, changes, message):
    run_dir, _ = parent
    with pytest.raises(ForkError, match=message):
        plan_fork(run_dir, epoch, changes)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ForkError, match="is not a run folder"):
        plan_fork(tmp_path, 1)


def test_changes_from_an_edited_spec():
    old = make_spec()
    new = old.with_value("optim.lr", 0.5).with_value("data.augment.noise_std", 0.1)
    new.model.layers[2].params["p"] = 0.4
    assert spec_changes(old, new) == {"optim.lr": 0.5, "data.augment.noise_std": 0.1,
                                      "model.layers[2].p": 0.4}
    assert parse_sets(["a.b=1", "c.d=sgd"]) == {"a.b": 1, "c.d": "sgd"}
    for bad in (["nope"], ["=1"], ["a.b=1", "a.b=2"]):
        with pytest.raises(ForkError):
            parse_sets(bad)


def test_the_fork_command(parent, tmp_path, capsys):
    run_dir, _ = parent
    code = main(["fork", run_dir, "--epoch", "5", "--set", "optim.lr=0.001", "--quiet",
                 "--threads", "1", "--runs-dir", str(tmp_path)])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["parent"] == run_dir and result["fork_epoch"] == 5
    assert result["fork_changes"] == {"optim.lr": 0.001}
    assert result["epochs"] == 6 and result["status"] == "finished"

    assert main(["fork", run_dir, "--set", "optim.lr=0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epoch: give the epoch to fork at; it has 1, 2, 3" in err[0]
    assert main(["fork", run_dir, "--epoch", "2", "--set", "optim.lr"]) == 2
    assert "--set: expected FIELD=VALUE" in capsys.readouterr().err


def test_a_damaged_checkpoint_is_refused_before_the_fork_is_made(parent, tmp_path, capsys):
    import shutil

    run_dir, _ = parent
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    damaged = copy / "checkpoints" / "epoch-00002.pt"
    damaged.write_bytes(damaged.read_bytes()[:100])
    code = main(["fork", str(copy), "--epoch", "2", "--quiet", "--runs-dir",
                 str(tmp_path / "runs")])
    assert code == 2  # refused before anything was made: bad input, one line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged or truncated" in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert Run(copy).summary()["status"] == "finished"


def test_a_parent_whose_metrics_cannot_be_read_is_refused_before_the_fork_is_made(
        parent, tmp_path, capsys):
    """fork made the new run's folder before finding the parent's metrics unreadable."""
    import os
    import shutil

    run_dir, _ = parent
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "metrics.jsonl").unlink()
    os.mkfifo(copy / "metrics.jsonl")  # not a plain file: refused unread
    runs = tmp_path / "runs"
    assert main(["fork", str(copy), "--epoch", "2", "--quiet", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read the parent's metrics" in err[0], err
    assert not runs.exists()
    with pytest.raises(ForkError, match="cannot read the parent's metrics"):
        fork_trainer(plan_fork(copy, 2), runs=RunStore(runs))
    assert not runs.exists()


def test_a_fork_into_a_read_only_store_says_so_in_one_line(parent, tmp_path, capsys,
                                                           monkeypatch):
    """It said "free some disk space" (over two lines, exit 1) for a store that is read-only."""
    import errno

    from workbench.core.store import atomic

    def read_only(*_args, **kw):
        raise OSError(errno.EROFS, "Read-only file system", kw.get("dir"))

    def create(self, spec, **_kw):
        raise OSError(errno.EROFS, "Read-only file system", str(self.root))

    monkeypatch.setattr(atomic.tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(RunStore, "create", create)
    run_dir, _ = parent
    runs = tmp_path / "ro"
    assert main(["fork", run_dir, "--epoch", "2", "--quiet", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "read-only file system" in err[0], err
    assert "disk space" not in err[0] and not any(runs.iterdir())


_KILL_BETWEEN_WRITES = """
import os, signal, sys
from workbench import spec as specmod
from workbench.core.store.runs import Run, RunStore
from workbench.core.training.loop import Trainer

writes = []
save_checkpoint, save_state = Run.save_checkpoint, Run.save_state


def wrote(kind, state):
    # keyed to the run's progress: the two writes at the end of epoch 3, whatever their order
    if state.get("epoch") == 3 and state.get("step") == 0:
        writes.append(kind)
        if len(writes) == 2:  # the first is on disk; die before the second
            os.kill(os.getpid(), signal.SIGKILL)


def checkpoint(self, state):
    wrote("checkpoint.pt", state)
    return save_checkpoint(self, state)


def keep(self, name, state):
    if name.startswith("checkpoints/"):
        wrote(name, state)
    return save_state(self, name, state)


Run.save_checkpoint, Run.save_state = checkpoint, keep
spec = specmod.load(sys.argv[1])
for event in Trainer(spec, runs=RunStore(sys.argv[2]), threads=1).events():
    pass
"""


def test_a_kill_between_the_two_checkpoint_writes_leaves_no_hole_in_the_fork_points(tmp_path):
    """checkpoint.pt was written before checkpoints/epoch-N.pt: a kill between them left
    checkpoint.pt at epoch N with no fork point N, and the resume went on from N+1 (the fork
    points of one run had holes at 29 and 44). Killed between the two writes of epoch 3
    (keyed to the run's progress, not to a time), the run resumes to whole fork points."""
    import signal
    import subprocess
    import sys

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(make_spec(train={"epochs": 5}).to_json())
    script = tmp_path / "kill.py"
    script.write_text(_KILL_BETWEEN_WRITES)
    root = tmp_path / "runs"
    done = subprocess.run([sys.executable, str(script), str(spec_file), str(root)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    (run_dir,) = [p for p in root.iterdir() if (p / "spec.json").exists()]
    at = Run(run_dir).load_checkpoint()["epoch"]
    assert fork_points(run_dir) == list(range(1, max(fork_points(run_dir)) + 1))
    assert set(range(1, at + 1)) <= set(fork_points(run_dir))
    end = list(Trainer(resume=run_dir, runs=RunStore(root), threads=1).events())[-1]
    assert isinstance(end, RunFinished) and not end.stopped
    assert fork_points(run_dir) == [1, 2, 3, 4, 5]
