"""The benchmarks run (on the bundled MNIST sample) and their yardstick owes nothing to Workbench.

Nothing here is timed: the numbers belong to the README, measured on a quiet machine."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SAMPLE = ROOT / "resources" / "datasets" / "mnist-small"
sys.path.insert(0, str(BENCH))

import hand_loops  # noqa: E402
import train_speed  # noqa: E402


def test_the_hand_written_loops_import_nothing_from_workbench():
    tree = ast.parse((BENCH / "hand_loops.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported and not any(name.startswith("workbench") for name in imported)
    assert {name.split(".")[0] for name in imported} <= {"__future__", "collections", "dataclasses",
                                                         "torch"}


def _data(n: int = 640) -> hand_loops.Data:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=g)
    noise = torch.randint(0, 128, (n, 1, 28, 28), generator=g)
    images = (noise + 127 * labels[:, None, None, None]).to(torch.uint8)  # dark or bright
    x = hand_loops.normalize(images, 127.5 / 255, 0.29)
    return hand_loops.Data(x[:512], labels[:512], x[512:576], labels[512:576], x[576:],
                           labels[576:])


@pytest.mark.parametrize("loop", [hand_loops.expert_loop, hand_loops.dataloader_loop])
def test_each_hand_loop_trains_an_epoch_per_step(loop):
    epochs = loop(hand_loops.mlp, _data(), epochs=3, batch=32, lr=0.003, seed=0,
                  device=torch.device("cpu"))
    assert [next(epochs) for _ in range(3)] == [None] * 3
    with pytest.raises(StopIteration) as done:
        next(epochs)
    assert done.value.value > 0.8


def test_the_flop_count_matches_the_products_of_the_mlp():
    train, val = train_speed.epoch_flops("mlp", _data(), 32)
    macs = 784 * 256 + 256 * 128 + 128 * 10
    per_sample = 3 * 2 * macs - 2 * 784 * 256  # forward, weight and input gradients; no dX
    assert train == pytest.approx(512 * per_sample)
    assert val == pytest.approx(64 * 2 * macs)


def test_train_speed_reports_every_contender(tmp_path, capsys):
    out = tmp_path / "speed.json"
    code = train_speed.main(["--root", str(SAMPLE), "--models", "mlp,mlp:64", "--epochs", "2",
                             "--train-subset", "640", "--out", str(out),
                             "--contenders", "dataloader,expert,workbench,workbench-app"])
    assert code == 0
    results = json.loads(out.read_text())
    table = results["models"]["mlp:32"]
    assert set(table["contenders"]) == {"dataloader", "expert", "workbench", "workbench-app"}
    assert table["step_kinds"] == {"workbench": "linear-stack", "workbench-app": "linear-stack"}
    for row in table["contenders"].values():
        assert row["epoch_s"] > 0 and 0 < row["of_peak"] < 1 and row["x_bound"] > 1
    assert set(table["paired_ratios"]) >= {"workbench/expert", "dataloader/workbench",
                                           "workbench-app/workbench"}
    assert results["models"]["mlp:64"]["batch"] == 64
    assert "workbench/expert" in capsys.readouterr().out


def test_train_speed_refuses_an_unknown_contender():
    with pytest.raises(SystemExit, match="unknown 'tensorflow'"):
        train_speed.main(["--root", str(SAMPLE), "--models", "mlp", "--epochs", "2",
                          "--train-subset", "64", "--contenders", "tensorflow"])


def test_prune_slider_reports_the_evaluation_and_the_answer(qtbot, capsys):
    import prune_slider

    assert prune_slider.main(["--root", str(SAMPLE), "--positions", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["validation_samples"] == 500  # a tenth of the sample's training images
    for key in ("evaluate_unstructured", "evaluate_structured"):
        assert 0 < result[key]["wall"]["median_ms"] <= result[key]["wall"]["max_ms"]
    assert set(result["slider"]) == {"one_move", "drag_of_20_from_first_move",
                                     "drag_of_20_from_letting_go"}


def test_the_thread_benchmark_times_both_counts(capsys, monkeypatch):
    import threads as thread_bench

    monkeypatch.setattr(thread_bench, "SETUPS", {"mlp": (32, 3), "cnn": (16, 1)})
    assert thread_bench.main(["--rounds", "2", "--many", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("mlp", "cnn"):
        assert len(result[name]["1_threads_ms_per_step"]) == 2
        assert len(result[name]["2_threads_ms_per_step"]) == 2
