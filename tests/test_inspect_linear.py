"""A model with no hidden layer reads as an equation in the data's own units, in the run's
summary, in `workbench train`'s result and in Inspect; and regression on whole-number targets
(scikit-learn's diabetes set, bundled) trains at ordinary least squares' error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench import spec as specmod
from workbench.core.data.loading import load_splits
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.inspect.inspection import Inspection
from workbench.core.training.events import RunFinished
from workbench.core.training.loop import Trainer
from workbench.paths import resources_dir

DIABETES = resources_dir() / "datasets" / "diabetes" / "diabetes.csv"
LINEAR = [{"type": "Linear", "out": 1}]


def train(tmp_path: Path, raw: dict) -> RunFinished:
    events = list(Trainer(specmod.from_dict(raw), runs=RunStore(tmp_path / "runs")).events())
    assert isinstance(events[-1], RunFinished), events[-1]
    return events[-1]


def spec(data: dict, *, layers: list | None = None, lr: float = 0.5, epochs: int = 60,
         name: str = "linear") -> dict:
    """Full-batch gradient descent: on standardized inputs, lr 0.5 is Newton's step for a
    single feature's squared error, so the fit converges to least squares."""
    return {"name": name, "data": data, "model": {"layers": layers or LINEAR},
            "optim": {"name": "gd", "lr": lr},
            "train": {"epochs": epochs, "seed": 3, "device": "cpu", "checkpoint_every": 0}}


def least_squares(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """(coefficients..., intercept) of ordinary least squares, with numpy."""
    a = np.c_[x.double().numpy(), np.ones(len(x))]
    coef, *_ = np.linalg.lstsq(a, y.double().numpy().reshape(-1), rcond=None)
    return coef


def line_csv(path: Path) -> Path:
    """Seed 003's example: y = 3x + 2 for x from 0 to 100, with a little noise."""
    rng = np.random.default_rng(3)
    x = np.linspace(0, 100, 201)
    y = 3 * x + 2 + rng.normal(0, 0.05, len(x))
    path.write_text("x,y\n" + "".join(f"{a:.2f},{b:.4f}\n" for a, b in zip(x, y, strict=True)))
    return path


def test_the_line_from_a_csv_reads_y_equals_3x_plus_2_in_raw_units(tmp_path):
    data = {"name": "csv", "path": str(line_csv(tmp_path / "line.csv"))}
    finished = train(tmp_path, spec(data))
    state = Run(Path(finished.run_dir)).load_model_state()
    stored_w = float(state["0.weight"][0, 0])
    assert stored_w > 80  # the layer holds standardized-unit weights (3 × the std of x)
    equation = finished.summary["equation"]
    w, b = equation["coefficients"]["x"], equation["intercept"]
    assert abs(w - 3) < 0.01 and abs(b - 2) < 0.01, (w, b)
    splits = load_splits(specmod.from_dict(spec(data)).data, 3)
    ols = least_squares(splits.train_x, splits.train_y)
    assert w == pytest.approx(ols[0], abs=1e-4) and b == pytest.approx(ols[1], abs=2e-3)
    assert equation["text"] == f"y = {w:.5g}·x + {b:.5g}"
    assert equation["units"] == "raw" and equation["task"] == "regression"
    # the same in summary.json, and in Inspect
    assert Run(Path(finished.run_dir)).summary()["equation"]["text"] == equation["text"]
    assert Inspection.open(finished.run_dir).equation().lines == (equation["text"],)


def test_the_builtin_line_reads_its_slope_and_intercept(tmp_path):
    data = {"name": "line", "samples": 2000, "noise": 0.05}
    finished = train(tmp_path, spec(data))
    equation = finished.summary["equation"]
    w, b = equation["coefficients"]["x"], equation["intercept"]
    assert abs(w - 3) < 0.01 and abs(b - 2) < 0.01, (w, b)
    splits = load_splits(specmod.from_dict(spec(data)).data, 3)
    ols = least_squares(splits.train_x, splits.train_y)
    assert (w, b) == pytest.approx(tuple(ols), abs=1e-3)
    regression = finished.summary["regression"]
    assert regression["mse"] == pytest.approx(finished.test_loss, rel=1e-5)
    assert regression["n"] == regression["points_of"] == 400 == len(regression["true"])
    assert regression["r2"] > 0.99


def test_workbench_train_prints_the_equation(tmp_path):
    path = tmp_path / "line.json"
    raw = spec({"name": "csv", "path": str(line_csv(tmp_path / "line.csv"))})
    path.write_text(json.dumps(raw))
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "train", str(path), "--quiet",
                           "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    text = result["equation"]["text"]
    assert text.startswith("y = 3.") and "·x + " in text
    assert f"equation (in the data's own units):\n  {text}\n" in done.stderr
    assert result["regression"]["r2"] > 0.99 and "true" not in result["regression"]


def test_diabetes_trains_as_regression_at_least_squares_error(tmp_path):
    data = {"name": "csv", "path": str(DIABETES)}
    raw = spec(data, lr=0.2, epochs=300, name="diabetes")
    finished = train(tmp_path, raw)
    splits = load_splits(specmod.from_dict(raw).data, 3)
    assert splits.info.num_classes == 0 and splits.info.target.kind == "quantity"
    ols = least_squares(splits.train_x, splits.train_y)
    test_x = np.c_[splits.test_x.double().numpy(), np.ones(len(splits.test_x))]
    ols_mse = float(np.mean((test_x @ ols - splits.test_y.double().numpy()[:, 0]) ** 2))
    assert finished.summary["test_mse"] == pytest.approx(ols_mse, rel=0.10), ols_mse
    regression = finished.summary["regression"]
    assert regression["target"] == "progression" and regression["n"] == 88
    equation = finished.summary["equation"]
    assert list(equation["coefficients"]) == ["age", "sex", "bmi", "bp", "s1", "s2", "s3",
                                              "s4", "s5", "s6"]
    assert equation["coefficients"]["bmi"] == pytest.approx(ols[2], rel=0.05)
    assert equation["text"].startswith("progression = ")


def test_logistic_regression_reads_as_log_odds_in_raw_units(tmp_path):
    finished = train(tmp_path, {
        "name": "logistic", "data": {"name": "moons", "samples": 400},
        "model": {"layers": [{"type": "Linear", "out": 2}]}, "optim": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": 5, "batch_size": 16, "device": "cpu", "checkpoint_every": 0}})
    ins = Inspection.open(finished.run_dir)
    equation = ins.equation()
    assert equation.lines[0].startswith("log(P(1) / P(0)) = ")
    assert [line.split(" = ")[0] for line in equation.lines[1:]] == ["score(0)", "score(1)"]
    raw = ins.splits.test_x[:50]
    from workbench.core.tools.inspect.network import normalize

    with torch.no_grad():
        logits = ins.model(normalize(ins.splits, raw)).double().numpy()
    mine = raw.double().numpy() @ equation.coefficients.T + equation.intercepts
    np.testing.assert_allclose(mine, logits, atol=1e-4)
    assert finished.summary["equation"]["intercepts"].keys() == {"0", "1"}


def test_an_image_classifier_without_hidden_layers_reads_in_pixel_units(tmp_path):
    finished = train(tmp_path, {
        "name": "pixels", "data": {"name": "mnist_small", "val_fraction": 0.1},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 10}]},
        "optim": {"name": "adam", "lr": 0.002},
        "train": {"epochs": 1, "batch_size": 64, "device": "cpu", "checkpoint_every": 0}})
    ins = Inspection.open(finished.run_dir)
    equation = ins.equation()
    assert equation.lines[0] == (f"score(0) = a sum over 784 pixels plus "
                                 f"{equation.intercepts[0]:.5g} (too long to write; the weights "
                                 "show it)")
    raw = ins.splits.test_x[:20]
    from workbench.core.tools.inspect.network import normalize

    with torch.no_grad():
        logits = ins.model(normalize(ins.splits, raw)).double().numpy()
    mine = raw.reshape(20, -1).double().numpy() @ equation.coefficients.T + equation.intercepts
    np.testing.assert_allclose(mine, logits, atol=1e-3)
    assert "coefficients" not in finished.summary["equation"]  # 7,840 numbers stay out
    assert finished.summary["equation"]["features"] == 784


def test_a_network_with_a_hidden_layer_has_no_equation(tmp_path):
    finished = train(tmp_path, spec({"name": "line", "samples": 200},
                                    layers=[{"type": "Linear", "out": 4}, {"type": "Tanh"},
                                            {"type": "Linear", "out": 1}], epochs=3))
    assert "equation" not in finished.summary and "regression" in finished.summary
