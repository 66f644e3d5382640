"""Comparisons: a fair race (same weights, same batches), grids, divergence, saving, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from workbench import spec as specmod
from workbench.cli import main
from workbench.core.data import load_splits
from workbench.core.store.runs import RunStore
from workbench.core.store.specs import save_spec
from workbench.core.tools.compare import (
    Comparison,
    ComparisonRunner,
    Curves,
    curves_for,
    grid,
    load_comparison,
    load_trail,
    parse_vary,
    results,
    run_comparison,
    save_comparison,
    set_field,
)
from workbench.core.tools.landscape import landscape_for_runs, loss_landscape
from workbench.core.training.callbacks import Callback
from workbench.core.training.events import RunFailed, RunFinished
from workbench.spec import SpecError


def small_spec(**train) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "moons-mlp",
        "data": {"name": "moons", "samples": 300, "noise": 0.2},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Dropout", "p": 0.0}, {"type": "Linear", "out": 2}]},
        "optim": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": 2, "batch_size": 32, "seed": 3, **train},
    })


class StartProbe(Callback):
    """Records what each variant starts from: its weights and its first epoch's batch order."""

    def __init__(self) -> None:
        self.state: dict[str, torch.Tensor] = {}
        self.perm: torch.Tensor | None = None

    def on_run_start(self, trainer) -> None:
        self.state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        saved = trainer.gen.get_state()
        self.perm = torch.randperm(trainer.train_batches.x.shape[0], generator=trainer.gen)
        trainer.gen.set_state(saved)


def drive(comparison: Comparison, runs: RunStore, **options) -> list[Curves]:
    curves = [Curves() for _ in comparison.variants]
    for index, event in run_comparison(comparison, runs, **options):
        comparison.record(index, event)
        curves[index].add(event)
    return curves


def test_every_variant_starts_from_the_same_weights_and_batches(tmp_path):
    spec = small_spec()
    comparison = Comparison("fair", grid(spec, {"optim.name": ["sgd", "momentum", "adam",
                                                               "rmsprop"]}))
    probes: dict[int, StartProbe] = {}

    def extra(index, variant):
        probes[index] = StartProbe()
        return [probes[index]]

    curves = drive(comparison, RunStore(tmp_path / "runs"), callbacks=extra)
    assert [c.status for c in curves] == ["finished"] * 4
    first = [c.first_batch_loss for c in curves]
    assert first[0] is not None and all(v == first[0] for v in first)
    for probe in probes.values():
        assert torch.equal(probe.perm, probes[0].perm)
        for key, value in probe.state.items():
            assert torch.equal(value, probes[0].state[key])
    # the optimizers really differ after the start
    finals = {round(c.epochs["train_loss"][-1], 6) for c in curves}
    assert len(finals) == 4
    assert comparison.variants[2].spec.optim.lr == pytest.approx(1e-3)  # adam's own rate


def test_a_grid_of_two_fields_runs_every_combination(tmp_path):
    spec = small_spec(epochs=1)
    variants = grid(spec, {"optim.name": ["sgd", "adam"], "train.batch_size": [16, 64]})
    assert [v.label for v in variants] == ["sgd batch_size=16", "sgd batch_size=64",
                                           "adam batch_size=16", "adam batch_size=64"]
    comparison = Comparison("grid", variants)
    curves = drive(comparison, RunStore(tmp_path / "runs"))
    assert all(c.status == "finished" for c in curves)
    seen = {(specmod.load(f"{v.run_dir}/spec.json").optim.name,
             specmod.load(f"{v.run_dir}/spec.json").train.batch_size)
            for v in comparison.variants}
    assert seen == {("sgd", 16), ("sgd", 64), ("adam", 16), ("adam", 64)}


def test_a_diverging_variant_is_marked_and_the_others_finish(tmp_path):
    spec = small_spec()
    comparison = Comparison("div", grid(spec, {"optim.lr": [0.1, 1e6, 0.05]}))
    curves = drive(comparison, RunStore(tmp_path / "runs"))
    assert [c.status for c in curves] == ["finished", "diverged", "finished"]
    rows = results(comparison, curves)
    assert [r.diverged for r in rows] == [False, True, False]
    assert rows[0].best_val_accuracy is not None and rows[2].final_train_loss is not None


def test_side_by_side_threads_give_the_same_fair_start(tmp_path):
    spec = small_spec(epochs=1)
    comparison = Comparison("par", grid(spec, {"optim.name": ["sgd", "adam", "rmsprop"]}))
    curves = drive(comparison, RunStore(tmp_path / "runs"), side_by_side=2)
    assert all(c.status == "finished" for c in curves)
    assert len({c.first_batch_loss for c in curves}) == 1


def test_stop_ends_the_variant_in_flight_and_starts_no_more(tmp_path):
    comparison = Comparison("stop", grid(small_spec(), {"optim.name": ["sgd", "adam"]}))
    runner = ComparisonRunner(comparison, RunStore(tmp_path / "runs"))
    seen = []
    for index, event in runner.events():
        seen.append((index, event))
        if index == 0 and len(seen) == 2:
            runner.stop()
    assert {i for i, _ in seen} == {0}
    assert isinstance(seen[-1][1], RunFinished) and seen[-1][1].stopped


def test_set_field_and_parse_vary_validate():
    spec = small_spec()
    assert set_field(spec, "model.dropout", 0.3).model.layers[2].params["p"] == 0.3
    assert set_field(spec, "model.layers[0].out", 8).model.layers[0].params["out"] == 8
    with pytest.raises(SpecError, match="optim.lr"):
        set_field(spec, "optim.lr", -1)
    with pytest.raises(SpecError, match="no such field"):
        set_field(spec, "optim.nope", 1)
    path, values, extra = parse_vary("optim.name=sgd:lr=0.05,adam:lr=0.001:betas=[0.9,0.99]")
    assert path == "optim.name" and values == ["sgd", "adam"]
    assert extra == {"sgd": {"optim.lr": 0.05}, "adam": {"optim.lr": 0.001,
                                                         "optim.betas": [0.9, 0.99]}}
    variants = grid(spec, {path: values}, extra)
    assert variants[1].spec.optim.betas == (0.9, 0.99)
    with pytest.raises(SpecError, match="optim.name"):
        grid(spec, {"optim.name": ["sgd", "lbfgs"]})


def test_a_comparison_saves_reopens_and_takes_past_runs(tmp_path):
    runs = RunStore(tmp_path / "runs")
    comparison = Comparison("saved", grid(small_spec(epochs=1), {"optim.name": ["sgd", "adam"]}),
                            target_accuracy=0.5)
    live = drive(comparison, runs)
    past = Comparison("past", grid(small_spec(epochs=1), {"optim.lr": [0.3]}))
    drive(past, runs)
    comparison.add_run(past.variants[0].run_dir, label="old run")
    path = save_comparison(comparison, runs)
    assert path.parent == runs.root / "comparisons"
    again = load_comparison(path)
    assert [v.label for v in again.variants] == ["sgd", "adam", "old run"]
    assert again.pending() == []
    reopened = curves_for(again)
    for before, after in zip(live, reopened[:2], strict=True):
        assert after.epochs["val_accuracy"] == before.epochs["val_accuracy"]
        assert after.first_batch_loss == before.first_batch_loss
    rows = results(again, reopened)
    assert rows[2].label == "old run" and rows[2].status == "finished"
    assert rows[0].epochs_to_target == 1
    bad = tmp_path / "bad.json"
    broken = small_spec().to_dict()
    broken["optim"]["lr"] = -1
    bad.write_text(json.dumps({"variants": [{"label": "x", "spec": broken}]}))
    with pytest.raises(SpecError, match=r"variants\[0\].spec.optim.lr"):
        load_comparison(bad)


def test_loss_landscape_projects_every_path(tmp_path):
    runs = RunStore(tmp_path / "runs")
    spec = small_spec(epochs=3)
    comparison = Comparison("land", grid(spec, {"optim.name": ["sgd", "adam"]}))
    drive(comparison, runs)
    trails = {v.label: load_trail(v.run_dir) for v in comparison.variants}
    assert all(t is not None and t[0] == [0, 1, 2, 3] for t in trails.values())
    data = load_splits(spec.data, spec.train.seed)
    land = landscape_for_runs(spec, data, comparison.variants[1].run_dir,
                              {v.label: v.run_dir for v in comparison.variants},
                              center_label="adam", resolution=7, samples=128)
    assert land.losses.shape == (7, 7) and bool(torch.isfinite(torch.tensor(land.losses)).all())
    assert land.paths["adam"][-1] == pytest.approx([0.0, 0.0], abs=1e-4)  # ends at the centre
    assert land.paths["sgd"].shape == (4, 2)
    # the centre of the grid is the final weights: the smallest loss sits near it
    centre = land.losses[3, 3]
    assert centre == pytest.approx(land.center_loss, rel=1e-5)
    pca = loss_landscape(spec, data, torch.load(f"{comparison.variants[1].run_dir}/model.pt"),
                         {k: t[1] for k, t in trails.items()}, directions="pca", resolution=5,
                         samples=128)
    # on PCA directions the start, shared by both paths, projects to the same point
    assert pca.paths["sgd"][0] == pytest.approx(pca.paths["adam"][0], abs=1e-3)
    assert float(abs(pca.paths["sgd"][0]).max()) > 0.1


def test_cli_compare_prints_a_runs_list(tmp_path, capsys):
    spec_path = tmp_path / "spec.json"
    save_spec(small_spec(epochs=1), spec_path)
    code = main(["compare", str(spec_path), "--vary", "optim.name=sgd,adam",
                 "--vary", "optim.lr=0.1,1e6", "--runs-dir", str(tmp_path / "runs"),
                 "--quiet"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert [r["variant"] for r in out["runs"]] == ["sgd lr=0.1", "sgd lr=1e+06", "adam lr=0.1",
                                                   "adam lr=1e+06"]
    for r in out["runs"]:
        assert set(r) >= {"variant", "run_dir", "best_val_accuracy", "final_train_loss",
                          "seconds", "diverged"}
    assert out["runs"][1]["diverged"] and not out["runs"][0]["diverged"]
    assert math.isfinite(out["runs"][0]["final_train_loss"])
    assert load_comparison(out["comparison"]).variants[0].run_dir == out["runs"][0]["run_dir"]


def test_cli_compare_refuses_bad_input(tmp_path, capsys):
    spec_path = tmp_path / "spec.json"
    save_spec(small_spec(), spec_path)
    runs = tmp_path / "runs"
    assert main(["compare", str(spec_path), "--vary", "optim.name=sgd,lbfgs",
                 "--runs-dir", str(runs)]) == 2
    assert "optim.name" in capsys.readouterr().err
    assert main(["compare", str(spec_path), "--vary", "optim.lr",
                 "--runs-dir", str(runs)]) == 2
    assert not runs.exists()


def test_failed_setup_of_one_variant_does_not_stop_the_others(tmp_path):
    spec = small_spec(epochs=1)
    bad = spec.with_value("data.path", str(tmp_path / "no.csv")).with_value("data.name", "csv")
    comparison = Comparison("mixed", grid(spec, {"optim.name": ["sgd"]}))
    comparison.variants.insert(0, type(comparison.variants[0])("broken", bad))
    events = list(run_comparison(comparison, RunStore(tmp_path / "runs")))
    assert isinstance(events[0][1], RunFailed) and events[0][0] == 0
    assert isinstance(events[-1][1], RunFinished) and events[-1][0] == 1


def test_side_by_side_variants_with_dropout_are_reproducible_and_fair(tmp_path):
    """Each variant draws its Dropout masks from its own stream (they once shared torch's
    global one), so three on threads side by side give what one at a time gives."""
    spec = specmod.from_dict({
        "name": "dropout",
        "data": {"name": "moons", "samples": 1200, "noise": 0.2},
        "model": {"layers": [{"type": "Linear", "out": 32}, {"type": "ReLU"},
                             {"type": "Dropout", "p": 0.5}, {"type": "Linear", "out": 2}]},
        "optim": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": 2, "batch_size": 8, "seed": 5},
    })
    def losses(side_by_side, folder):
        variants = grid(spec, {"optim.name": ["sgd", "adam"], "model.dropout": [0.5, 0.0]})
        curves = drive(Comparison("c", variants), RunStore(tmp_path / folder),
                       side_by_side=side_by_side)
        assert all(c.status == "finished" for c in curves)
        return [(c.epochs["train_loss"], c.epochs["val_loss"]) for c in curves]

    alone = losses(1, "one")
    assert losses(3, "three") == alone
    assert losses(3, "again") == alone


class _Broken(Callback):
    """Makes a variant's set-up fail the way a bug would."""


def _break_one(index, variant):
    if variant.label == "adam":
        raise RuntimeError("a bug while setting up")
    return [_Broken()]


@pytest.mark.parametrize("side_by_side", [1, 2])
def test_a_variant_whose_set_up_fails_unexpectedly_ends_failed_and_the_others_finish(
        tmp_path, side_by_side):
    spec = small_spec(epochs=1)
    comparison = Comparison("bug", grid(spec, {"optim.name": ["sgd", "adam", "rmsprop"]}))
    events = list(run_comparison(comparison, RunStore(tmp_path / "runs"),
                                 side_by_side=side_by_side, callbacks=_break_one))
    last = {index: event for index, event in events}
    assert isinstance(last[1], RunFailed)
    assert "RuntimeError: a bug while setting up" in last[1].reason
    assert "bug in Workbench" in last[1].hint
    assert isinstance(last[0], RunFinished) and isinstance(last[2], RunFinished)


def test_the_runner_never_writes_into_the_comparison_it_was_given(tmp_path):
    """The GUI edits its comparison on its own thread while the runner works on another: the
    runner copies what it runs, and the run folders come back in the events."""
    spec = small_spec(epochs=1)
    comparison = Comparison("c", grid(spec, {"optim.name": ["sgd", "adam"]}))
    runner = ComparisonRunner(comparison, RunStore(tmp_path / "runs"), side_by_side=2)
    lr = comparison.variants[1].spec.optim.lr
    comparison.variants[1].spec = comparison.variants[1].spec.with_value("optim.lr", 0.5)
    comparison.variants.append(comparison.variants[0])  # edited while it runs: not its business
    run_dirs = {index: event.run_dir for index, event in runner.events()
                if isinstance(event, RunFinished)}
    assert sorted(run_dirs) == [0, 1]
    assert all(v.run_dir is None for v in comparison.variants)
    assert specmod.load(f"{run_dirs[1]}/spec.json").optim.lr == lr != 0.5
    for index, run_dir in run_dirs.items():
        comparison.record(index, RunFinished(run_dir, False, False, 1, 0.0, None, None, None))
    assert [v.run_dir for v in comparison.variants[:2]] == [run_dirs[0], run_dirs[1]]
