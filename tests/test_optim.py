import math

import pytest
import torch

from workbench import spec as specmod
from workbench.core.training.optim import LRSchedule, build_optimizer, lr_curve
from workbench.spec import OPTIMIZERS


def make_spec(**sched):
    d = {"data": {"name": "moons"},
         "model": {"layers": [{"type": "Linear", "out": 2}]},
         "optim": {"name": "sgd", "lr": 0.1},
         "schedule": sched,
         "train": {"epochs": 10}}
    return specmod.from_dict(d)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_lowers_a_quadratic(name):
    lr = 0.5 if name == "adagrad" else 0.05
    spec = make_spec().with_value("optim.name", name).with_value("optim.lr", lr)
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(10) * 3)
    target = torch.linspace(-1, 1, 10)
    opt = build_optimizer(spec, [w])

    def loss():
        return ((w - target) ** 2).sum()

    start = loss().item()
    for _ in range(100):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < 0.5 * start


@pytest.mark.parametrize(
    ("sched", "formula"),
    [
        ({"name": "constant"}, lambda t: 0.1),
        ({"name": "step", "step_size": 3, "gamma": 0.5}, lambda t: 0.1 * 0.5 ** (int(t) // 3)),
        ({"name": "exponential", "gamma": 0.8}, lambda t: 0.1 * 0.8**t),
        ({"name": "inv_sqrt", "decay": 2.0}, lambda t: 0.1 / math.sqrt(1 + 2.0 * t)),
        ({"name": "cosine", "min_lr": 0.01},
         lambda t: 0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * t / 10))),
    ],
)
def test_schedule_follows_its_formula(sched, formula):
    """At every step, t = epoch + step / steps_per_epoch: the curves move per step, the step
    decay holds for whole epochs."""
    s = LRSchedule(make_spec(**sched), steps_per_epoch=5)
    for epoch in range(10):
        for step in range(5):
            assert s.lr(epoch, step) == pytest.approx(formula(epoch + step / 5), rel=1e-12)


def test_cosine_after_warm_up_starts_at_the_rate_and_nears_its_final_rate():
    """1 warm-up epoch of 2: it used to sit at half the rate through epoch 2 (a rate an
    epoch), never nearing 'final rate 0'. Now it ramps to the rate, then falls every step."""
    spec = make_spec(name="cosine", min_lr=0.0, warmup_epochs=1).with_value("train.epochs", 2)
    s = LRSchedule(spec, steps_per_epoch=20)
    ramp = [s.lr(0, k) for k in range(20)]
    assert ramp == pytest.approx([0.1 * (k + 1) / 20 for k in range(20)])
    after = [s.lr(1, k) for k in range(20)]
    assert after == pytest.approx([0.05 * (1 + math.cos(math.pi * k / 20)) for k in range(20)])
    assert after == sorted(after, reverse=True) and len(set(after)) == 20
    assert after[-1] < 0.001  # its last step nears the final rate
    xs, ys = lr_curve(spec, steps_per_epoch=20)  # the preview draws the same numbers
    assert ys[:-1] == [s.lr(int(x), round((x - int(x)) * 20)) for x in xs[:-1]]


def test_warmup_ramps_linearly_then_hands_over():
    s = LRSchedule(make_spec(name="step", step_size=4, gamma=0.5, warmup_epochs=2),
                   steps_per_epoch=5)
    ramp = [s.lr(e, k) for e in range(2) for k in range(5)]
    assert ramp == pytest.approx([0.1 * (g + 1) / 10 for g in range(10)])
    assert s.lr(2, 0) == pytest.approx(0.1)
    assert s.lr(4, 0) == pytest.approx(0.05)


def test_plateau_cuts_after_patience():
    s = LRSchedule(make_spec(name="plateau", patience=1, factor=0.5), steps_per_epoch=1)
    losses = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95]
    rates = []
    for e, loss in enumerate(losses):
        rates.append(s.lr(e, 0))
        s.on_epoch_end(loss)
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    restored = LRSchedule(make_spec(name="plateau", patience=1, factor=0.5), 1)
    restored.load_state_dict(s.state_dict())
    assert restored.lr(6, 0) == s.lr(6, 0)


def test_lr_curve_for_preview():
    xs, ys = lr_curve(make_spec(name="exponential", gamma=0.5), steps_per_epoch=3)
    assert xs[0] == 0 and xs[-1] == 10
    assert ys[0] == pytest.approx(0.1) and ys[-1] == pytest.approx(0.1 * 0.5 ** (9 + 2 / 3))


@pytest.mark.parametrize(("warmup", "steps"), [(1.5, 1), (0.3, 7), (2.25, 4), (0.01, 3)])
def test_warmup_never_passes_the_schedules_rate(warmup, steps):
    # with a fractional last warm-up step the old ramp reached 2x the rate (0.0667, 0.1333)
    s = LRSchedule(make_spec(name="constant", warmup_epochs=warmup), steps_per_epoch=steps)
    rates = [s.lr(e, k) for e in range(4) for k in range(steps)]
    assert max(rates) == pytest.approx(0.1)
    assert all(0 < r <= 0.1 for r in rates)
    assert rates == sorted(rates)
    assert s.lr(0, 0) == pytest.approx(0.1 * min(1.0, 1 / (warmup * steps)))
