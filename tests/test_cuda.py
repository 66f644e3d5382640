"""The CUDA paths: the captured step, bf16 and channels-last. Skipped without a CUDA GPU (CI);
run on a GPU machine with `pip install --no-deps -e . && pytest tests/test_cuda.py`."""

import pytest
import torch

from workbench import spec as specmod
from workbench.core.training.events import EpochEnded, RunFinished, RunStarted
from workbench.core.training.loop import Trainer
from workbench.core.training.optim import build_optimizer
from workbench.core.training.step import wants_graph

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

MLP = [{"type": "Flatten"}, {"type": "Linear", "out": 64}, {"type": "ReLU"},
       {"type": "Dropout", "p": 0.1}, {"type": "Linear", "out": 10}]
CNN = [{"type": "Conv2d", "out": 8, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "MaxPool2d"}, {"type": "Flatten"}, {"type": "Linear", "out": 10}]


def make_spec(layers=MLP, **train):
    return specmod.from_dict({
        "data": {"name": "mnist_small"},
        "model": {"layers": layers},
        "optim": {"name": "adam", "lr": 0.002},
        "regularization": {"grad_clip": 5.0},
        "train": {"epochs": 2, "batch_size": 64, "seed": 0, "device": "cuda", **train},
    })


def run(spec):
    events = list(Trainer(spec, store=False).events())
    started = next(e for e in events if isinstance(e, RunStarted))
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert isinstance(events[-1], RunFinished), events[-1]
    return started, epochs, events[-1]


def test_no_graph_on_the_cpu():
    assert not wants_graph(make_spec(), torch.device("cpu"))


@cuda
def test_captured_step_trains_like_the_eager_one():
    started, graph_epochs, graph_end = run(make_spec())
    assert started.step_kind == "cuda-graph", started.step_note
    eager_started, eager_epochs, eager_end = run(make_spec(cuda_graph=False))
    assert eager_started.step_kind == "eager"
    for g, e in zip(graph_epochs, eager_epochs, strict=True):
        assert g.train_loss == pytest.approx(e.train_loss, rel=0.05)
    assert graph_end.test_accuracy > 0.85
    assert abs(graph_end.test_accuracy - eager_end.test_accuracy) < 0.03


@cuda
@pytest.mark.parametrize("name", ["sgd", "momentum", "adamw", "rmsprop"])
def test_every_capturable_optimizer_captures_or_says_why(name):
    spec = make_spec().with_value("optim.name", name).with_value("optim.lr", 0.01)
    started, _, end = run(spec)
    assert started.step_kind == "cuda-graph" or started.step_note
    assert end.test_accuracy > 0.7


@cuda
def test_bf16_channels_last_cnn():
    started, _, end = run(make_spec(CNN, precision="bf16", channels_last=True))
    assert end.test_accuracy > 0.85


@cuda
def test_capture_does_not_move_the_starting_weights():
    spec = make_spec(epochs=1)
    model = torch.nn.Linear(3, 2).cuda()
    before = [p.detach().clone() for p in model.parameters()]
    from workbench.core.training.step import GraphStep

    opt = build_optimizer(spec, model.parameters(), torch.device("cuda"), capturable=True)
    GraphStep(model, opt, torch.nn.CrossEntropyLoss(), spec, 2, torch.device("cuda"),
              batch_size=4, input_shape=(3,))
    for b, p in zip(before, model.parameters(), strict=True):
        assert torch.equal(b, p)


@cuda
def test_side_by_side_runs_capture_while_another_thread_syncs():
    import threading

    results: dict[int, object] = {}

    def train(index):
        results[index] = run(make_spec().with_value("train.seed", index))

    stop = threading.Event()

    def sync_often():  # what a neighbouring eager run does: small reads, every few ms
        x = torch.ones(1, device="cuda")
        while not stop.is_set():
            float(x * 2)

    syncer = threading.Thread(target=sync_often)
    syncer.start()
    workers = [threading.Thread(target=train, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    syncer.join()
    for started, _, end in results.values():
        assert started.step_kind == "cuda-graph", started.step_note
        assert end.test_accuracy > 0.8


@cuda
def test_a_conv_net_trains_with_the_autotuner_and_tf32_then_puts_them_back():
    from workbench.core.training.backends import current_settings
    from workbench.core.training.callbacks import Callback

    class Record(Callback):
        seen: dict = {}

        def on_run_start(self, trainer):
            Record.seen = current_settings()

    before = current_settings()
    events = list(Trainer(make_spec(CNN), store=False, callbacks=[Record()]).events())
    assert isinstance(events[-1], RunFinished) and events[-1].test_accuracy > 0.8
    assert Record.seen["cudnn.benchmark"] is True
    assert Record.seen["cuda.matmul.fp32_precision"] == "tf32"
    assert current_settings() == before
    mlp_events = list(Trainer(make_spec(MLP), store=False, callbacks=[Record()]).events())
    assert isinstance(mlp_events[-1], RunFinished)
    assert Record.seen == before  # an MLP keeps full float32 products
