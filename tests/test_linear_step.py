"""The hand-written step of Linear stacks: bit for bit autograd's, and chosen only where it is."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench import spec as specmod
from workbench.core.model import build_model
from workbench.core.training.events import RunFinished, RunStarted
from workbench.core.training.linear_step import LinearStackStep, supports
from workbench.core.training.loop import Trainer
from workbench.core.training.optim import build_optimizer, loss_function
from workbench.core.training.setup import make_step
from workbench.core.training.step import EagerStep

CPU = torch.device("cpu")
HIDDEN = [{"type": "Linear", "out": 24}, {"type": "ReLU"}]


def _spec(layers, *, optim="adam", regression=False, **sections):
    d = {"data": {"name": "line" if regression else "moons"},
         "model": {"layers": layers},
         "optim": {"name": optim, "lr": 0.01},
         "train": {"device": "cpu", "batch_size": 16}}
    for key, value in sections.items():
        d[key] = {**d.get(key, {}), **value}
    return specmod.from_dict(d)


def _pair(spec, shape, num_classes, step_kind, masks=None):
    torch.manual_seed(0)
    model = build_model(spec.model.layers, shape)
    optimizer = build_optimizer(spec, model.parameters(), CPU)
    masked = ([], [])
    if masks:
        params = dict(model.named_parameters())
        masked = ([params[k] for k in masks], list(masks.values()))
    return model, step_kind(model, optimizer, loss_function(num_classes), spec, num_classes, CPU,
                            masked=masked)


def _same_training(spec, shape, num_classes, *, steps=12, masks=None):
    """Train two copies, one with each step, on the same batches; compare every bit."""
    x = torch.randn(steps * 16 + 5, *shape, generator=torch.Generator().manual_seed(1))
    if num_classes:
        y = torch.randint(0, num_classes, (len(x),), generator=torch.Generator().manual_seed(2))
    else:
        y = torch.randn(len(x), 1, generator=torch.Generator().manual_seed(2))
    results = []
    for kind in (EagerStep, LinearStackStep):
        model, step = _pair(spec, shape, num_classes, kind, masks)
        torch.manual_seed(5)  # dropout draws from the global generator
        for i in range(steps + 1):  # the last batch is a partial one
            step(x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16], 0.01 / (1 + i))
        results.append((model.state_dict(), step.take(), step.grad_norm()))
    (sa, ta, ga), (sb, tb, gb) = results
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert ta == tb and ga == gb


@pytest.mark.parametrize("activation", [
    {"type": "ReLU"}, {"type": "LeakyReLU", "slope": 0.1}, {"type": "Tanh"}, {"type": "Sigmoid"},
    {"type": "GELU"}, {"type": "Dropout", "p": 0.3}])
def test_every_supported_layer_trains_bit_for_bit_like_autograd(activation):
    layers = [{"type": "Linear", "out": 24}, activation, {"type": "Linear", "out": 12},
              {"type": "ReLU"}, {"type": "Linear", "out": 3}]
    _same_training(_spec(layers), (2,), 3)


@pytest.mark.parametrize("optim", ["sgd", "momentum", "nesterov", "adamw", "rmsprop", "adagrad"])
def test_every_optimizer_with_penalties_and_clipping(optim):
    spec = _spec([*HIDDEN, {"type": "Linear", "out": 3}], optim=optim,
                 regularization={"l2": 0.01, "grad_clip": 0.5})
    _same_training(spec, (2,), 3)


def test_images_through_flatten_without_biases_and_with_masks():
    layers = [{"type": "Flatten"}, {"type": "Linear", "out": 20, "bias": False},
              {"type": "ReLU"}, {"type": "Linear", "out": 10}]
    spec = _spec(layers, data={"name": "mnist_small"})
    mask = (torch.rand(20, 36, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    _same_training(spec, (1, 6, 6), 10, masks={"1.weight": mask})


def test_regression_with_mean_squared_error():
    spec = _spec([*HIDDEN, {"type": "Linear", "out": 1}], regression=True)
    _same_training(spec, (1,), 0)


def _kind(spec, shape=(2,), classes=2):
    model = build_model(spec.model.layers, shape)
    loss = loss_function(classes)
    step, _ = make_step(model, build_optimizer(spec, model.parameters(), CPU), loss, spec,
                        classes, CPU, batch_size=16, input_shape=shape, graph=False)
    return step.kind


def test_chosen_only_where_it_is_exact():
    mlp = [*HIDDEN, {"type": "Linear", "out": 2}]
    assert _kind(_spec(mlp)) == "linear-stack"
    assert _kind(_spec(mlp, regularization={"l1": 0.001})) == "eager"
    assert _kind(_spec(mlp, train={"precision": "bf16"})) == "eager"
    assert _kind(_spec([{"type": "Linear", "out": 8}, {"type": "BatchNorm"}, {"type": "ReLU"},
                        {"type": "Linear", "out": 2}])) == "eager"
    cnn = [{"type": "Conv2d", "out": 4, "kernel": 3}, {"type": "ReLU"}, {"type": "Flatten"},
           {"type": "Linear", "out": 10}]
    assert _kind(_spec(cnn, data={"name": "mnist_small"}), (1, 8, 8), 10) == "eager"
    model = build_model(_spec(mlp).model.layers, (2,))
    assert not supports(model, nn.CrossEntropyLoss(label_smoothing=0.1), _spec(mlp), CPU)
    assert not supports(model, loss_function(2), _spec(mlp), torch.device("cuda"))
    assert not supports(nn.Sequential(nn.Linear(2, 2), nn.ReLU(inplace=True)),
                        loss_function(2), _spec(mlp), CPU)


def test_a_run_says_which_step_it_took(tmp_path):
    spec = _spec([*HIDDEN, {"type": "Linear", "out": 2}], train={"epochs": 2})
    events = list(Trainer(spec, store=False).events())
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.step_kind == "linear-stack"
    assert isinstance(events[-1], RunFinished) and events[-1].test_accuracy > 0.8
