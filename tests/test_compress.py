"""The compression frontier of real small runs: the family, the Pareto set, structured CNN
pruning on the frontier, compress-to-target and `workbench compress`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prune_fixtures import CNN, MLP, train_run

from workbench.cli import main
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.compress import (
    CompressError,
    Variant,
    compress_to_target,
    family,
    frontier,
    last_target,
    measure_family,
    pareto,
)
from workbench.core.tools.prune import PruneConfig, PruneSession
from workbench.core.tools.prune_apply import create_pruned_run
from workbench.core.tools.variants import Measured


@pytest.fixture(scope="module")
def mlp_store(tmp_path_factory) -> tuple[str, RunStore]:
    root = tmp_path_factory.mktemp("mlp-family")
    return train_run(root, MLP, epochs=2), RunStore(root)


def _variant(name: str, size: int, acc: float, *, refused: str | None = None,
             latency: float = 1.0) -> Variant:
    measured = Measured(bytes=size, latency_ms=latency, latency_ms_256=latency * 10,
                        val_accuracy=acc, val_loss=1 - acc, test_accuracy=acc,
                        test_loss=1 - acc, agreement=1.0, max_abs_diff=0.0)
    return Variant(f"/runs/{name}", name, "fp32", None, 0.0, "", measured, refused)


def test_pareto_keeps_only_what_nothing_beats():
    big = _variant("big", 1000, 0.98, latency=0.5)
    mid = _variant("mid", 400, 0.97, latency=2.0)
    worse = _variant("worse", 500, 0.96)  # bigger and less accurate than mid
    tie = _variant("tie", 400, 0.95)  # same size as mid, less accurate
    small = _variant("small", 100, 0.90)
    refused = _variant("refused", 50, 0.99, refused="breaks the network")
    every = [big, mid, worse, tie, small, refused]
    assert pareto(every) == [small, mid, big]
    assert pareto(every, "latency_ms") == [big]
    assert pareto([]) == []
    with pytest.raises(CompressError, match="axis"):
        pareto(every, "colour")


def test_family_follows_parent_links_down(mlp_store, tmp_path):
    run_dir, store = mlp_store
    session = PruneSession(run_dir)
    child = create_pruned_run(session, PruneConfig(0.5, structured=True), runs=store)
    grandchild = create_pruned_run(PruneSession(child.run_dir), PruneConfig(0.3), runs=store)
    stranger = train_run(store.root, MLP, name="stranger")
    members = family(run_dir, store)
    assert members[0] == Path(run_dir).resolve()
    assert Path(child.run_dir).resolve() in members
    assert Path(grandchild.run_dir).resolve() in members
    assert Path(stranger).resolve() not in members
    assert members.index(Path(child.run_dir).resolve()) < \
        members.index(Path(grandchild.run_dir).resolve())
    assert family(child.run_dir, store)[0] == Path(child.run_dir).resolve()


def test_structured_cnn_pruning_puts_smaller_points_on_the_frontier(tmp_path):
    store = RunStore(tmp_path)
    run_dir = train_run(tmp_path, CNN, batch_size=128)
    session = PruneSession(run_dir)
    preview = session.evaluate(PruneConfig(0.5, structured=True))
    units = {s.index: s.units_after for s in preview.layers}
    # ranked globally, the dense layer's units score lowest: it keeps half its uniform share
    # (4 of 16) instead of being cut to a single unit
    assert units[10] >= 4 and sum(units[i] for i in (0, 4, 10)) == 30 - 15
    create_pruned_run(session, PruneConfig(0.5, structured=True), runs=store,
                      finetune_epochs=1)
    variants = measure_family(run_dir, store)
    kinds = {(v.pruning is not None, v.kind) for v in variants}
    assert kinds == {(False, "fp32"), (False, "int8-static"), (True, "fp32"),
                     (True, "int8-static")}
    by = {(v.pruning is not None, v.kind): v.measured for v in variants}
    assert by[(True, "fp32")].bytes < 0.8 * by[(False, "fp32")].bytes
    assert by[(True, "int8-static")].bytes < by[(False, "int8-static")].bytes
    assert by[(False, "int8-static")].bytes < 0.6 * by[(False, "fp32")].bytes
    for m in by.values():  # the tiny CNN trained for an epoch: well above chance (10%)
        assert m.test_accuracy > 0.3 and m.latency_ms > 0 and m.latency_ms_256 > 0
    front = pareto(variants)
    assert front and front[0].measured.bytes == min(v.measured.bytes for v in variants)
    pruned = [v for v in variants if v.pruning]
    assert all(Path(v.file).is_file() for v in pruned if v.kind == "int8-static")
    assert all(v.pruning == "50% structured" for v in pruned)


def test_compress_to_target_finds_a_smaller_variant_that_holds(mlp_store):
    run_dir, store = mlp_store
    steps = []
    result = compress_to_target(run_dir, 1.0, runs=store, finetune_epochs=1, probes=2,
                                report=steps.append)
    assert result.best is not None and not result.stopped
    best = result.best.measured
    assert (result.reference_val_accuracy - best.val_accuracy) * 100 <= 1.0 + 1e-9
    original = [v for v in frontier(run_dir, store) if v.run_dir == str(Path(run_dir))]
    assert best.bytes <= min(v.measured.bytes for v in original if v.refused is None)
    assert best.bytes < result.reference_bytes / 3
    actions = [s.action for s in result.steps]
    assert actions[0] == "measure" and actions.count("sweep") == 11
    assert 1 <= actions.count("probe") <= 2
    assert [s for s in steps if hasattr(s, "action")] == list(result.steps)
    for step in result.steps:
        if step.action == "probe" and step.run_dir:
            summary = Run(Path(step.run_dir)).summary()
            assert summary["parent"] == str(Path(run_dir))
            assert summary["finetune_epochs"] == 1
    stored = last_target(run_dir)
    assert stored["best"]["run_dir"] == result.best.run_dir
    assert stored["ratio"] == pytest.approx(result.reference_bytes / best.bytes)


def test_compress_refuses_bad_requests(mlp_store, tmp_path):
    run_dir, store = mlp_store
    for kwargs, message in (({"max_drop": -1}, "accepted accuracy drop"),
                            ({"max_drop": float("nan")}, "accepted accuracy drop"),
                            ({"max_drop": 1, "finetune_epochs": -1}, "fine-tune epochs"),
                            ({"max_drop": 1, "probes": 0}, "probes")):
        with pytest.raises(CompressError, match=message):
            compress_to_target(run_dir, runs=store, **kwargs)
    with pytest.raises(CompressError, match="not a run folder"):
        compress_to_target(tmp_path, 1.0)
    regression = train_run(tmp_path, [{"type": "Linear", "out": 8}, {"type": "ReLU"},
                                      {"type": "Linear", "out": 1}],
                           data={"name": "sine", "samples": 200, "noise": 0.1,
                                 "val_fraction": 0.2})
    with pytest.raises(CompressError, match="regression"):
        compress_to_target(regression, 1.0)


def test_cli_compress_measures_and_searches(mlp_store, tmp_path, capsys):
    run_dir, store = mlp_store
    assert main(["compress", run_dir, "--runs-dir", str(store.root)]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["variants"] and result["pareto"]
    assert {v["kind"] for v in result["variants"]} >= {"fp32", "int8-dynamic"}
    assert "Pareto set" in captured.err
    assert main(["compress", run_dir, "--max-drop", "2", "--probes", "1", "--finetune", "0",
                 "--runs-dir", str(store.root)]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["max_drop"] == 2 and result["best"]["measured"]["bytes"] > 0
    assert "smallest within 2 points" in captured.err
    for flags in (["--max-drop", "-1"], ["--probes", "0"], ["--finetune", "x"]):
        with pytest.raises(SystemExit) as exit_:
            main(["compress", run_dir, *flags])
        assert exit_.value.code == 2
    assert main(["compress", str(tmp_path), "--max-drop", "1"]) == 2
    assert "not a run folder" in capsys.readouterr().err
