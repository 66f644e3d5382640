"""The torch network of a layer stack, drawn from a run's own random streams.

PyTorch's layers draw their initial values from the process's global generator as they are
made, and `nn.Dropout` draws its masks from it too: two runs in one process (a comparison's
variants, the rate finder, a run beside them) would take each other's numbers. Here the
layers are made on the meta device (no memory, no draws), given memory, and initialised from
the run's generator with the distributions their own `reset_parameters` uses, in the same
order: for a generator seeded `s` the same weights as `torch.manual_seed(s)` then making the
layers. Dropout becomes `RunDropout`, whose masks come from the run's generator: on the CPU
the same Bernoulli mask and product as `F.dropout`, so the same bits from the same stream.

Self-contained (torch, math and `model.module_for` only): the exported training script
carries this source and builds its network the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from workbench.core.model import module_for


class RunDropout(nn.Dropout):
    """Dropout whose masks come from `generator` (a run's own), not torch's global one."""

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1 - self.p  # the CPU's dropout: a Bernoulli mask scaled by 1/keep, a product
        return x * torch.empty_like(x).bernoulli_(keep, generator=self.generator).div_(keep)


def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """Set every parameter and buffer of `model` as its layers' own `reset_parameters` would,
    drawing from `generator`: Linear and convolution weights Kaiming-uniform (a = sqrt 5),
    their biases uniform in +-1/sqrt(fan_in); BatchNorm by its own reset, which draws
    nothing. A layer with values of another kind is refused (TypeError), never left unset."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear | nn.modules.conv._ConvNd):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.modules.batchnorm._NormBase):
                m.reset_parameters()
            elif any(True for _ in m.parameters(recurse=False)) or \
                    any(True for _ in m.buffers(recurse=False)):
                raise TypeError(f"{type(m).__name__}: no initialisation from a run's generator")


def assemble(layers: Sequence[tuple[str, dict[str, Any], tuple[int, ...]]], *,
             generator: torch.Generator | None = None,
             dropout: torch.Generator | None = None) -> nn.Sequential:
    """The network of `layers`, each (type, full parameters, input shape).

    With `generator` its parameters are drawn from it and nothing global is read or moved;
    without, the layers draw from torch's global generator as they are made. With `dropout`
    its Dropout layers draw their masks from that generator (`RunDropout`)."""
    if generator is None:
        model = nn.Sequential(*[module_for(t, p, shape) for t, p, shape in layers])
    else:
        with torch.device("meta"):
            model = nn.Sequential(*[module_for(t, p, shape) for t, p, shape in layers])
        model = model.to_empty(device="cpu")
        init_parameters(model, generator)
    if dropout is not None:
        for i, m in enumerate(model):
            if type(m) is nn.Dropout:
                model[i] = RunDropout(m.p, dropout)
    return model


__all__ = ["RunDropout", "assemble", "init_parameters"]
