"""Device-resident batches: the data moves to the device once, batches are sliced there.

No DataLoader and no worker processes: for datasets that fit in device memory, a `randperm`
on the device, an index gather and a few batched tensor ops per step are far faster than
per-sample Python (the cifar10-airbench approach). Images stay uint8 on the device and become
float one batch at a time. Every random draw comes from one `torch.Generator` on the device,
so the same seed gives the same batches bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from workbench.core.data.errors import DataError
from workbench.core.data.splits import Splits
from workbench.spec import AugmentSpec


class DeviceBatches:
    """Batches of (x, y) from tensors held on `device`, normalized and optionally augmented.

    Augmentation order: random crop of the zero-padded image (black padding, as torchvision's
    RandomCrop(padding=p)), horizontal flip with probability 0.5, normalize, then Gaussian
    noise of `noise_std` in normalized units. Crop and flip apply to images only.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, mean: Sequence[float],
                 std: Sequence[float], batch_size: int, device: torch.device, shuffle: bool,
                 generator: torch.Generator | None, augment: AugmentSpec | None = None,
                 drop_last: bool = False, channels_last: bool = False, image: bool) -> None:
        if batch_size < 1:
            raise DataError(f"train.batch_size: must be at least 1, got {batch_size}")
        if len(x) != len(y):
            raise DataError(f"{len(x)} inputs but {len(y)} targets")
        if image and (x.dim() != 4 or x.dtype != torch.uint8):
            raise DataError(f"images must be uint8 (N,C,H,W), got {x.dtype} {tuple(x.shape)}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        shape = (1, -1, 1, 1) if image else (1, -1)
        self.mean = torch.tensor(list(mean), dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.tensor(list(std), dtype=torch.float32, device=self.device).view(shape)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.augment = augment if augment is not None and augment.active else None
        self.drop_last = drop_last
        self.channels_last = channels_last and image
        self.image = image

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the data: every sample once (the last partial batch unless drop_last)."""
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for step in range(len(self)):
            yield self.batch(order[step * self.batch_size:(step + 1) * self.batch_size])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at `idx`, as float inputs ready for the model, and their targets."""
        idx = idx.to(self.device)
        x = self.x.index_select(0, idx).to(torch.float32)
        if self.image:
            x = x / 255.0
        aug = self.augment
        if aug is not None and self.image:
            if aug.crop_pad > 0:
                x = random_crop(x, aug.crop_pad, self.generator)
            if aug.hflip:
                x = random_hflip(x, self.generator)
        x = (x - self.mean) / self.std
        if aug is not None and aug.noise_std > 0:
            x = x + aug.noise_std * torch.randn(x.shape, generator=self.generator,
                                                device=x.device, dtype=x.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.y.index_select(0, idx)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None) -> torch.Tensor:
    """Each image shifted by its own random offset in [-pad, pad]^2, zeros filling the gap.

    Two gathers on the zero-padded batch, one per axis: no Python loop over samples.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)
    x = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))
    return x.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def random_hflip(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Each image mirrored left-right with probability 0.5."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def augment_preview(splits: Splits, augment: AugmentSpec, n: int,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(original, augmented) float images in [0,1], (n,C,H,W) on the CPU, of the first n
    train images: what the augmentation does, for the GUI to show. Noise is shown too, so the
    augmented images are clamped to [0,1]."""
    if not splits.info.is_image:
        raise DataError(f"{splits.info.name}: augmentation preview needs an image dataset")
    n = max(0, min(n, len(splits.train_x)))
    x = splits.train_x[:n]
    generator = torch.Generator().manual_seed(seed)
    batches = DeviceBatches(x, splits.train_y[:n], mean=splits.mean, std=splits.std,
                            batch_size=max(n, 1), device=torch.device("cpu"), shuffle=False,
                            generator=generator, augment=augment, image=True)
    augmented, _ = batches.batch(torch.arange(n))
    augmented = (augmented * batches.std + batches.mean).clamp(0.0, 1.0)
    return x.to(torch.float32) / 255.0, augmented
