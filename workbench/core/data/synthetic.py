"""Generated 2-D classification and 1-D regression sets, made from a seed with numpy alone.

Every set is a pure function of (samples, noise, seed): numpy's Generator(seed) draws all of
it, so the same spec always gives the same points. Classes get equal counts (the first classes
take the remainder) so a small set is still balanced. `noise` is the standard deviation of
Gaussian jitter in data units, except where a docstring says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from workbench.core.data.errors import DataError

Arrays = tuple[np.ndarray, np.ndarray]


def _class_counts(samples: int, classes: int) -> list[int]:
    base, extra = divmod(samples, classes)
    return [base + (1 if k < extra else 0) for k in range(classes)]


def _labels_for(counts: list[int]) -> np.ndarray:
    return np.concatenate([np.full(c, k, dtype=np.int64) for k, c in enumerate(counts)])


def spirals(samples: int, noise: float, rng: np.random.Generator) -> Arrays:
    """Two interleaved spirals of 1.5 turns in [-1, 1]; the arms are 1/3 apart, so the jitter
    is noise/4 (noise 0.2 stays learnable)."""
    counts = _class_counts(samples, 2)
    parts = []
    for k, count in enumerate(counts):
        theta = np.sqrt(rng.random(count)) * 3 * np.pi
        r = theta / (3 * np.pi)
        sign = 1.0 if k == 0 else -1.0
        parts.append(sign * np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
    x = np.concatenate(parts) + rng.normal(0.0, noise / 4, (samples, 2))
    return x, _labels_for(counts)


def moons(samples: int, noise: float, rng: np.random.Generator) -> Arrays:
    """Two interleaving half circles of radius 1, centred on the origin."""
    counts = _class_counts(samples, 2)
    t0 = rng.random(counts[0]) * np.pi
    t1 = rng.random(counts[1]) * np.pi
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) - np.array([0.5, 0.25])
    return x + rng.normal(0.0, noise, (samples, 2)), _labels_for(counts)


def circles(samples: int, noise: float, rng: np.random.Generator) -> Arrays:
    """A ring of radius 1 (class 0) around a ring of radius 0.5 (class 1)."""
    counts = _class_counts(samples, 2)
    parts = []
    for radius, count in zip((1.0, 0.5), counts, strict=True):
        t = rng.random(count) * 2 * np.pi
        parts.append(radius * np.stack([np.cos(t), np.sin(t)], axis=1))
    x = np.concatenate(parts) + rng.normal(0.0, noise, (samples, 2))
    return x, _labels_for(counts)


def xor(samples: int, noise: float, rng: np.random.Generator) -> Arrays:
    """Points in the four quadrants of [-1, 1]^2; class 1 where x*y > 0. Labels come from the
    clean point and the jitter is added after, so noise blurs the axes."""
    counts = _class_counts(samples, 2)
    parts = []
    for k, count in enumerate(counts):
        magnitude = 0.05 + 0.95 * rng.random((count, 2))
        sx = rng.choice([-1.0, 1.0], count)
        sy = sx * (1.0 if k == 1 else -1.0)
        parts.append(magnitude * np.stack([sx, sy], axis=1))
    x = np.concatenate(parts) + rng.normal(0.0, noise, (samples, 2))
    return x, _labels_for(counts)


def blobs(samples: int, noise: float, rng: np.random.Generator) -> Arrays:
    """Four Gaussian blobs centred at (+-1, +-1) with standard deviation `noise`."""
    counts = _class_counts(samples, 4)
    centres = np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    x = np.concatenate([centres[k] + rng.normal(0.0, noise, (c, 2))
                        for k, c in enumerate(counts)])
    return x, _labels_for(counts)


def line(samples: int, noise: float, rng: np.random.Generator) -> Arrays:
    """y = 3x + 2 + noise on x uniform in [-1, 1]."""
    x = rng.uniform(-1.0, 1.0, (samples, 1))
    return x, 3 * x + 2 + rng.normal(0.0, noise, (samples, 1))


def sine(samples: int, noise: float, rng: np.random.Generator) -> Arrays:
    """y = sin(x) + noise on x uniform in [-pi, pi]."""
    x = rng.uniform(-np.pi, np.pi, (samples, 1))
    return x, np.sin(x) + rng.normal(0.0, noise, (samples, 1))


GENERATORS: dict[str, Callable[[int, float, np.random.Generator], Arrays]] = {
    "spirals": spirals, "moons": moons, "circles": circles, "xor": xor, "blobs": blobs,
    "line": line, "sine": sine,
}
REGRESSION = frozenset({"line", "sine"})


def generate(name: str, samples: int, noise: float, seed: int) -> Arrays:
    """(x float32 (N,F), y) for a generated set: y int64 (N,) for classes, float32 (N,1) else."""
    if name not in GENERATORS:
        raise DataError(f"data.name: {name!r} is not a generated set "
                        f"(known: {', '.join(GENERATORS)})")
    if samples < 1:
        raise DataError(f"data.samples: must be at least 1, got {samples}")
    if noise < 0:
        raise DataError(f"data.noise: must be >= 0, got {noise}")
    x, y = GENERATORS[name](samples, float(noise), np.random.default_rng(seed))
    y = y.astype(np.float32) if name in REGRESSION else y.astype(np.int64)
    return x.astype(np.float32), y
