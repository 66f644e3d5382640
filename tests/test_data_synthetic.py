"""The generated sets: shapes, balance, determinism by seed."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.core.data import DataError
from workbench.core.data.synthetic import GENERATORS, REGRESSION, generate

CLASSIFIERS = sorted(set(GENERATORS) - REGRESSION)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classification_sets_are_balanced_2d_points(name):
    x, y = generate(name, 401, 0.1, seed=3)
    classes = 4 if name == "blobs" else 2
    assert x.shape == (401, 2) and x.dtype == np.float32
    assert y.shape == (401,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=classes)
    assert len(counts) == classes and counts.max() - counts.min() <= 1
    assert np.isfinite(x).all()


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_points_other_seed_other_points(name):
    a = generate(name, 200, 0.2, seed=7)
    b = generate(name, 200, 0.2, seed=7)
    c = generate(name, 200, 0.2, seed=8)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_regression_sets_follow_their_function():
    x, y = generate("line", 500, 0.0, seed=0)
    assert x.shape == y.shape == (500, 1) and y.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(y, 3 * x + 2, atol=1e-5)
    x, y = generate("sine", 500, 0.0, seed=0)
    assert x.min() >= -np.pi and x.max() <= np.pi
    np.testing.assert_allclose(y, np.sin(x), atol=1e-5)
    noisy = generate("sine", 500, 0.3, seed=0)
    assert 0.2 < float(np.std(noisy[1] - np.sin(noisy[0]))) < 0.4


def test_noise_free_sets_have_their_shape():
    x, y = generate("circles", 200, 0.0, seed=1)
    radius = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(radius[y == 1], 0.5, atol=1e-5)
    x, y = generate("xor", 200, 0.0, seed=1)
    assert ((x[:, 0] * x[:, 1] > 0) == (y == 1)).all()


def test_bad_generator_arguments_raise_data_error():
    with pytest.raises(DataError, match="not a generated set"):
        generate("mnist", 10, 0.1, 0)
    with pytest.raises(DataError, match="data.noise"):
        generate("moons", 10, -1.0, 0)
