"""Inspect on real runs: what the first layer learned, each unit over a 2-D plane, what a sample
does layer by layer, and where its answer comes from (Captum's saliency, Integrated
Gradients, Grad-CAM), measured against the data itself."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from prune_fixtures import CNN, train_run

from workbench.core.store.runs import RunError
from workbench.core.tools.inspect.inspection import Inspection, inspect_run, write_inspection
from workbench.core.tools.inspect.network import InspectCancelled, InspectError
from workbench.core.tools.inspect.weights import WeightImages, WeightTable

MLP = [{"type": "Flatten"}, {"type": "Linear", "out": 128}, {"type": "ReLU"},
       {"type": "Linear", "out": 10}]
MOONS = [{"type": "Linear", "out": 8}, {"type": "Tanh"}, {"type": "Linear", "out": 8},
         {"type": "ReLU"}, {"type": "Linear", "out": 2}]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> Inspection:
    """The MNIST MLP trained on the bundled sample: 3 epochs, about 93% on its test split."""
    run = train_run(tmp_path_factory.mktemp("runs"), MLP, epochs=3, lr=0.002, name="mlp")
    return Inspection.open(run)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> Inspection:
    return Inspection.open(train_run(tmp_path_factory.mktemp("runs"), CNN, epochs=1,
                                     name="cnn"))


@pytest.fixture(scope="module")
def moons(tmp_path_factory) -> Inspection:
    run = train_run(tmp_path_factory.mktemp("runs"), MOONS, epochs=20, lr=0.02,
                    batch_size=32, data={"name": "moons", "samples": 400, "noise": 0.15},
                    name="moons")
    return Inspection.open(run)


def test_integrated_gradients_of_right_digits_rest_on_the_digits_own_pixels(mlp):
    """For correctly classified digits, most of the attribution's mass lies on the digit's
    own pixels (18% of the image), measured over 200 of them, and a digit pixel carries
    several times the mass of a background pixel. The baseline is the average image, so the
    background could carry mass (against a black baseline it could not)."""
    predictions = mlp.predictions()
    assert predictions.accuracy > 0.88
    right = np.flatnonzero(predictions.correct)[:200]
    ink_share, density = [], []
    for index in right:
        sample = mlp.sample(int(index), methods=["integrated_gradients"])
        assert sample.predicted == sample.truth
        mass = np.abs(sample.attributions[0].values[0])
        ink = sample.input[0] > 0
        ink_share.append(mass[ink].sum() / mass.sum())
        density.append(mass[ink].mean() / mass[~ink].mean())
    assert np.mean(ink_share) > 0.5, np.mean(ink_share)
    assert np.median(ink_share) > 0.5
    assert np.mean(density) > 3, np.mean(density)


def test_integrated_gradients_add_up_to_the_score_difference(mlp):
    """Completeness: the map's sum is the score minus the average image's score."""
    sample = mlp.sample(0, methods=["integrated_gradients"])
    ig = sample.attributions[0]
    x = mlp._inputs([0])
    with torch.no_grad():
        score = mlp.model(x)[0, ig.target] - mlp.model(torch.zeros_like(x))[0, ig.target]
    assert ig.values.sum() == pytest.approx(float(score), abs=0.02 * abs(float(score)) + 1e-3)
    assert ig.delta is not None and ig.delta < 0.02 * abs(float(score)) + 1e-3


def test_class_averages_look_like_their_digit(mlp):
    """Each class's average map correlates with the class's average image more than with
    the other digits' average images (the diagonal wins in most rows)."""
    view = mlp.class_attribution(per_class=20)
    assert view.counts == tuple([20] * 10)
    images = mlp.splits.test_x.float().numpy()[:, 0]
    labels = mlp.splits.test_y.numpy()
    means = np.stack([images[labels == c].mean(0) for c in range(10)]).reshape(10, -1)
    maps = np.abs(view.maps[:, 0]).reshape(10, -1)
    corr = np.corrcoef(np.concatenate([maps, means]))[:10, 10:]
    assert (corr.argmax(axis=1) == np.arange(10)).sum() >= 8, corr.round(2)


def test_the_mlps_first_layer_is_256_images_of_28_by_28(tmp_path):
    run = train_run(tmp_path, [{"type": "Flatten"}, {"type": "Linear", "out": 256},
                               {"type": "ReLU"}, {"type": "Linear", "out": 10}], epochs=1)
    view = Inspection.open(run).first_layer()
    assert isinstance(view, WeightImages)
    assert view.weights.shape == (256, 1, 28, 28)
    assert view.layer == "2 Linear" and view.what == "units"


def test_a_cnns_first_layer_is_its_filters_and_grad_cam_reads_its_last_conv_block(cnn):
    view = cnn.first_layer()
    assert isinstance(view, WeightImages) and view.what == "filters"
    assert view.weights.shape == (6, 1, 3, 3)
    assert view.layer == "1 Conv2d"
    assert cnn.methods() == ("saliency", "integrated_gradients", "grad_cam")
    sample = cnn.sample(3)
    cam = sample.attributions[2]
    assert cam.method == "grad_cam" and cam.layer == "7 ReLU"  # after the second Conv2d
    assert cam.values.shape == (1, 28, 28) and cam.values.min() >= 0
    assert [a.layer for a in sample.activations][:3] == ["1 Conv2d", "2 BatchNorm", "3 ReLU"]


def test_a_sample_shows_every_layer_and_the_probabilities(mlp):
    sample = mlp.sample(5)
    assert [a.layer for a in sample.activations] == ["1 Flatten", "2 Linear", "3 ReLU",
                                                     "4 Linear"]
    assert sample.activations[2].zero_share == pytest.approx(
        float((sample.activations[1].values <= 0).mean()))
    assert sample.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert sample.predicted == int(np.argmax(sample.probabilities))
    assert sample.truth == int(mlp.splits.test_y[5])
    assert mlp.methods() == ("saliency", "integrated_gradients")  # no Grad-CAM for an MLP
    assert sample.input.shape == (1, 28, 28) and 0 <= sample.input.min() <= sample.input.max() <= 1


def test_a_misclassified_sample_is_explained_with_its_wrong_answer(mlp):
    index, truth, wrong = mlp.predictions().misclassified(limit=1)[0]
    sample = mlp.sample(index)
    assert (sample.truth, sample.predicted, sample.correct) == (truth, wrong, False)
    assert all(a.target == wrong for a in sample.attributions)
    other = mlp.sample(index, methods=["saliency"], target=truth)
    assert other.attributions[0].target == truth


def test_each_hidden_unit_over_the_plane_of_a_2d_set(moons):
    view = moons.neurons()
    assert [m.layer for m in view.layers] == ["2 Tanh", "4 ReLU",
                                              "5 Linear (output: each class's probability)"]
    assert [m.maps.shape for m in view.layers] == [(8, 48, 48), (8, 48, 48), (2, 48, 48)]
    tanh, _, output = view.layers
    assert tanh.maps.min() >= -1 and tanh.maps.max() <= 1
    np.testing.assert_allclose(output.maps.sum(axis=0), 1, atol=1e-5)
    # the plane covers the training points, and its maps are the model's own answers there
    x0, x1, y0, y1 = view.extent
    points = moons.splits.train_x.numpy()
    assert x0 < points[:, 0].min() and points[:, 0].max() < x1
    assert y0 < points[:, 1].min() and points[:, 1].max() < y1
    table = moons.first_layer()
    assert isinstance(table, WeightTable) and table.feature_names == ("x1", "x2")
    np.testing.assert_allclose(table.raw, table.weights / np.array(moons.splits.std,
                                                                   dtype=np.float32), rtol=1e-5)


def test_bad_requests_are_one_line_and_cancel_stops_the_work(mlp):
    with pytest.raises(InspectError, match=r"sample 1000: the test split has 1,000 samples, "
                                           r"numbered 0 to 999"):
        mlp.sample(1000)
    with pytest.raises(InspectError, match="unknown attribution method 'lime'"):
        mlp.sample(0, methods=["lime"])
    with pytest.raises(InspectError, match="Grad-CAM needs a convolutional network"):
        mlp.sample(0, methods=["grad_cam"])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(InspectCancelled):
        mlp.class_attribution(cancel=cancel)
    done: list[tuple[int, int]] = []
    mlp.class_attribution(per_class=2, progress=lambda d, t: done.append((d, t)))
    assert done[-1] == (20, 20)


def test_a_run_without_a_model_is_refused_by_name(tmp_path):
    from workbench.core.store.runs import RunStore
    from workbench.spec import from_dict

    run = RunStore(tmp_path).create(from_dict({"name": "never trained"}))
    run.update_summary(status="failed", error="the loss became nan at epoch 1, step 3")
    with pytest.raises(RunError, match="has no trained weights.*failed \\(the loss became nan"):
        Inspection.open(run.path)


def test_the_whole_inspection_is_written_as_pictures_and_numbers(mlp, tmp_path):
    import json

    result = inspect_run(mlp.trained.run.path, per_class=5)
    files = write_inspection(result, tmp_path / "out")
    names = sorted(p.name for p in files)
    wrong = mlp.predictions().misclassified(limit=1)[0][0]
    assert names == sorted(["first-layer.png", "sample-0.png", "sample-0-activations.png",
                            f"sample-{wrong}.png", f"sample-{wrong}-activations.png",
                            "classes.png", "inspect.json"])
    for path in files:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((tmp_path / "out" / "inspect.json").read_text())
    assert doc["test_accuracy"] == pytest.approx(mlp.predictions().accuracy)
    assert doc["misclassified"][0]["index"] == wrong
    assert doc["layers"] == ["1 Flatten", "2 Linear", "3 ReLU", "4 Linear"]
    assert [p["file"] for p in doc["pictures"]][0] == "first-layer.png"
    assert all(p["how_to_read"] for p in doc["pictures"])


def test_a_run_without_a_test_split_still_shows_what_it_learned(tmp_path):
    run = train_run(tmp_path / "runs", MOONS, epochs=2, lr=0.02, batch_size=32,
                    data={"name": "moons", "samples": 200, "test_fraction": 0},
                    name="no test")
    result = inspect_run(run)
    assert result.samples == [] and result.classes is None
    assert result.first_layer is not None and result.neurons is not None
    names = [p.name for p in write_inspection(result, tmp_path / "out")]
    assert names == ["first-layer.png", "neurons.png", "inspect.json"]
    assert Inspection.open(run).methods() == ("saliency", "integrated_gradients")
