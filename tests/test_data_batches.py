"""DeviceBatches: coverage, determinism, normalization and batched augmentation."""

from __future__ import annotations

import pytest
import torch

from workbench.core.data import DeviceBatches, augment_preview, load_splits
from workbench.core.data.batches import random_crop
from workbench.spec import AugmentSpec, DataSpec

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))


def images(n: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8), torch.arange(n)


def make(x, y, seed=0, **kw) -> DeviceBatches:
    kw.setdefault("shuffle", True)
    kw.setdefault("image", x.dim() == 4)
    channels = x.shape[1]
    return DeviceBatches(x, y, mean=(0.5,) * channels, std=(0.25,) * channels, batch_size=16,
                         device=CPU, generator=torch.Generator().manual_seed(seed), **kw)


def test_epoch_covers_every_sample_once():
    x, y = images(50)
    b = make(x, y)
    assert len(b) == 4
    seen = torch.cat([yb for _, yb in b.epoch()])
    assert sorted(seen.tolist()) == list(range(50))
    assert len(make(x, y, drop_last=True)) == 3
    assert sum(len(yb) for _, yb in make(x, y, drop_last=True).epoch()) == 48


def test_same_seed_same_order_and_epochs_differ():
    x, y = images(50)
    a, b = make(x, y, seed=3), make(x, y, seed=3)
    first = [yb for _, yb in a.epoch()]
    assert all(torch.equal(u, v) for u, v in zip(first, [yb for _, yb in b.epoch()],
                                                 strict=True))
    second = [yb for _, yb in a.epoch()]
    assert not all(torch.equal(u, v) for u, v in zip(first, second, strict=True))
    ordered = torch.cat([yb for _, yb in make(x, y, shuffle=False).epoch()])
    assert ordered.tolist() == list(range(50))


def test_images_stay_uint8_and_batches_are_normalized_float():
    x, y = images(20)
    b = make(x, y, shuffle=False)
    assert b.x.dtype == torch.uint8
    xb, yb = b.batch(torch.tensor([0, 5]))
    assert xb.dtype == torch.float32 and xb.shape == (2, 3, 8, 8)
    expected = (x[[0, 5]].float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(xb, expected)
    assert torch.equal(yb, torch.tensor([0, 5]))
    assert make(x, y, channels_last=True).batch(torch.arange(4))[0].is_contiguous(
        memory_format=torch.channels_last)


def test_features_are_normalized_per_feature():
    x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    b = DeviceBatches(x, torch.tensor([0, 1]), mean=(2.0, 20.0), std=(1.0, 10.0),
                      batch_size=2, device=CPU, shuffle=False, generator=None, image=False)
    xb, _ = next(iter(b.epoch()))
    torch.testing.assert_close(xb, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))


def test_augmentation_shapes_and_determinism():
    x, y = images(40)
    aug = AugmentSpec(hflip=True, crop_pad=2, noise_std=0.1)
    a = [xb for xb, _ in make(x, y, seed=9, augment=aug).epoch()]
    b = [xb for xb, _ in make(x, y, seed=9, augment=aug).epoch()]
    c = [xb for xb, _ in make(x, y, seed=10, augment=aug).epoch()]
    assert [t.shape for t in a] == [t.shape for t in b] and a[0].shape == (16, 3, 8, 8)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    plain = make(x, y, augment=AugmentSpec(), shuffle=False).batch(torch.arange(4))[0]
    torch.testing.assert_close(plain, make(x, y, shuffle=False).batch(torch.arange(4))[0])


def test_crop_shifts_content_with_zero_padding():
    x = torch.zeros(64, 1, 5, 5)
    x[:, :, 2, 2] = 1.0  # one bright centre pixel
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(out.sum(dim=(1, 2, 3)), torch.ones(64))  # pad 2 keeps it inside
    positions = {tuple(p) for p in (out[:, 0] == 1).nonzero()[:, 1:].tolist()}
    assert len(positions) > 5 and (2, 2) in positions
    rows, cols = zip(*positions, strict=True)
    assert min(rows) == 0 and max(rows) == 4 and min(cols) == 0 and max(cols) == 4
    edge = random_crop(torch.ones(200, 1, 4, 4), 1, torch.Generator().manual_seed(1))
    assert (edge == 0).any() and set(edge.unique().tolist()) == {0.0, 1.0}


def test_flip_mirrors_about_half_of_the_images():
    x = torch.zeros(200, 1, 1, 4, dtype=torch.uint8)
    x[..., 0] = 255
    b = DeviceBatches(x, torch.zeros(200), mean=(0.0,), std=(1.0,), batch_size=200,
                      device=CPU, shuffle=False, generator=torch.Generator().manual_seed(0),
                      augment=AugmentSpec(hflip=True), image=True)
    xb, _ = b.batch(torch.arange(200))
    flipped = int((xb[:, 0, 0, 3] == 1).sum())
    assert 70 < flipped < 130 and torch.equal(xb.sum(dim=(1, 2, 3)), torch.ones(200))


def test_augment_preview_returns_unit_range_images():
    s = load_splits(DataSpec(name="mnist_small"), seed=0)
    aug = AugmentSpec(hflip=True, crop_pad=4, noise_std=0.2)
    original, augmented = augment_preview(s, aug, 6, seed=1)
    assert original.shape == augmented.shape == (6, 1, 28, 28)
    assert original.dtype == augmented.dtype == torch.float32
    assert float(augmented.min()) >= 0 and float(augmented.max()) <= 1
    assert not torch.equal(original, augmented)
    again = augment_preview(s, aug, 6, seed=1)[1]
    assert torch.equal(augmented, again)
    torch.testing.assert_close(augment_preview(s, AugmentSpec(), 6, 0)[1], original)
