"""A run's own random streams: nothing it draws comes from, or moves, torch's global generator.

Several jobs share one process (a run, a comparison's variants, the rate finder), so each run
draws from generators of its own, seeded from `train.seed`, and its checkpoints carry their
states:

- `model` (CPU): the initial weights, drawn as `torch.manual_seed(seed)` then building the
  layers drew them; on the CPU the same generator then draws Dropout's masks, so runs keep
  the numbers they had when both came from the global generator.
- `dropout`: Dropout's masks on the model's device (`model` itself on the CPU, a generator of
  the GPU seeded with the seed on CUDA, as `torch.manual_seed` seeded the GPU's before).
- `batches`: the device's generator for shuffling and augmentation (seed + 1).

Checkpoints written before these streams kept the global generator's state as `cpu_rng` (and
`cuda_rng`): on a resume that is where Dropout's stream stood, and it is restored as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class RunStreams:
    model: torch.Generator
    dropout: torch.Generator
    batches: torch.Generator

    @classmethod
    def seeded(cls, seed: int, device: torch.device) -> RunStreams:
        model = torch.Generator().manual_seed(seed)
        dropout = (model if device.type == "cpu"
                   else torch.Generator(device=device).manual_seed(seed))
        batches = torch.Generator(device=device).manual_seed(seed + 1)
        return cls(model, dropout, batches)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The checkpoint's entries for the streams a resumed run still draws from."""
        return {"dropout_rng": self.dropout.get_state(), "gen_state": self.batches.get_state()}

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        """Continue the streams where a checkpoint left them (one from before per-run
        streams included: its global generator's state was Dropout's stream)."""
        self.batches.set_state(ckpt["gen_state"])
        legacy = "cpu_rng" if self.dropout.device.type == "cpu" else "cuda_rng"
        state = ckpt.get("dropout_rng", ckpt.get(legacy))
        if state is not None:
            self.dropout.set_state(state)


__all__ = ["RunStreams"]
