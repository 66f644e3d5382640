"""True verdicts: a run is judged against its own start, measured on its starting weights
over a whole split, so runs that start from trained weights (a fork, a fine-tuned prune, a
compressed variant, a resumed run) are not called diverged because an already-trained net's
first batch is low; runs that did go wrong still are. Each verdict is checked against its
source: the figures the run's summary keeps."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.fork import fork_trainer, parse_sets, plan_fork
from workbench.core.tools.prune import PruneConfig, PruneSession
from workbench.core.tools.prune_apply import create_pruned_run
from workbench.core.training import outcome
from workbench.core.training.callbacks import Callback
from workbench.core.training.events import RunFinished
from workbench.core.training.loop import Trainer
from workbench.spec import from_dict

sys.path.insert(0, str(Path(__file__).parent))
from prune_fixtures import train_run  # noqa: E402
from test_outcome import SPIRALS  # noqa: E402

# A network that fits mnist_small's 4,800 training images closely: its training loss ends
# far below its test loss, which is what an already-trained net's first batches show.
WIDE = [{"type": "Flatten"}, {"type": "Linear", "out": 128}, {"type": "ReLU"},
        {"type": "Linear", "out": 10}]


def spirals(**changes):
    spec = from_dict(SPIRALS).with_value("train.epochs", 4)
    for path, value in changes.items():
        spec = spec.with_value(path, value)
    return spec


def finish(trainer: Trainer) -> dict:
    end = list(trainer.events())[-1]
    assert isinstance(end, RunFinished), end
    return Run(end.run_dir).summary()


def verdict_from_source(summary: dict) -> list[outcome.OutcomeWarning]:
    """The verdict the run's own stored figures give: what the summary says must follow."""
    which = "test" if summary.get("test_loss") is not None else "validation"
    end = summary["test_loss"] if which == "test" else summary["val_loss"]
    return outcome.judge(summary["start_loss"], end, summary.get("confusion") or None,
                         summary.get("class_names") or (),
                         chance_loss=summary["chance_loss"], end_split=which)


def assert_true_verdict(summary: dict, want: str, kinds: set[str] = frozenset()) -> None:
    assert summary["verdict"] == want, summary["warnings"]
    assert {w["kind"] for w in summary["warnings"]} == set(kinds)
    assert summary["warnings"] == outcome.as_summary(verdict_from_source(summary))["warnings"]
    assert math.isfinite(summary["start_loss"]) and summary["start_split"] in (
        "validation", "training")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A mnist_small MLP trained to fit its training set: the parent of prunes."""
    root = tmp_path_factory.mktemp("runs")
    return root, train_run(root, WIDE, epochs=12, lr=0.003)


@pytest.mark.parametrize(("amount", "structured"), [(0.2, True), (0.5, False)])
def test_a_fine_tuned_prune_of_a_trained_net_is_ok(trained, amount, structured):
    """The case from the app: flagged 'diverged' when judged against the fine-tune's first
    batches (0.035) rather than the pruned net's loss on the validation split."""
    root, run_dir = trained
    pruned = create_pruned_run(PruneSession(run_dir),
                               PruneConfig(amount=amount, structured=structured),
                               runs=RunStore(root), finetune_epochs=1)
    summary = Run(pruned.run_dir).summary()
    assert_true_verdict(summary, "ok")
    assert summary["start_loss"] < 1.0  # it started trained: nowhere near ln 10


def test_a_compressed_variant_is_ok(trained):
    """Compress > Find the smallest fine-tunes structured prunes of the run: each is ok."""
    pytest.importorskip("onnxruntime")
    from workbench.core.tools.compress import compress_to_target

    root, run_dir = trained
    result = compress_to_target(run_dir, 5.0, runs=RunStore(root / "compressed"), probes=1,
                                finetune_epochs=1)
    probed = [p for p in (root / "compressed").iterdir() if (p / "summary.json").exists()]
    assert probed, result
    for folder in probed:
        assert_true_verdict(Run(folder).summary(), "ok")


def test_a_normal_run_a_fork_and_a_resumed_run_are_ok(tmp_path, monkeypatch):
    monkeypatch.setattr("workbench.core.training.loop.PROGRESS_INTERVAL", 0.0)
    runs = RunStore(tmp_path)
    moons = {"data.name": "moons", "data.samples": 600, "data.noise": 0.2}
    parent = finish(Trainer(spirals(**moons), runs=runs, threads=1))
    assert_true_verdict(parent, "ok")
    parent_dir = str(next(p for p in tmp_path.iterdir() if (p / "checkpoints").is_dir()))
    for changes in ([], ["optim.lr=0.002"]):
        fork = finish(fork_trainer(plan_fork(parent_dir, 2, parse_sets(changes)), runs=runs,
                                   threads=1))
        assert_true_verdict(fork, "ok")
        # its own start: the parent's weights at the fork, on the same validation split
        assert fork["start_loss"] == Run(parent_dir).metrics("epoch")[1]["val_loss"]
        assert fork["start_loss"] < parent["start_loss"]

    class StopAfter(Callback):
        def __init__(self) -> None:
            self.left = 40

        def on_progress(self, trainer, progress) -> None:
            self.left -= 1
            if self.left == 0:
                trainer.stop()

    stopped = finish(Trainer(spirals(**moons), runs=runs, threads=1, callbacks=[StopAfter()]))
    assert stopped["status"] == "stopped"
    run_dir = next(i.path for i in runs.list() if i.status == "stopped")
    resumed = finish(Trainer(resume=run_dir, runs=runs, threads=1))
    assert_true_verdict(resumed, "ok")
    assert resumed["start_loss"] == stopped["start_loss"]  # where the run itself started


def test_a_run_at_learning_rate_10_is_flagged_diverged(tmp_path):
    summary = finish(Trainer(spirals(**{"optim.name": "sgd", "optim.lr": 10.0}),
                             runs=RunStore(tmp_path), threads=1))
    assert summary["verdict"] == "suspect"
    assert "diverged" in {w["kind"] for w in summary["warnings"]}
    assert summary["warnings"] == outcome.as_summary(verdict_from_source(summary))["warnings"]
    diverged = next(w for w in summary["warnings"] if w["kind"] == "diverged")
    assert f"{summary['test_loss']:.4g}" in diverged["message"]
    assert f"{summary['start_loss']:.4g}" in diverged["message"]


def test_a_one_class_predictor_is_flagged(tmp_path):
    """Weight decay that crushes every weight leaves the biases: one answer for everything."""
    spec = spirals(**{"optim.name": "sgd", "optim.lr": 0.5, "optim.weight_decay": 1.0,
                      "train.epochs": 3})
    summary = finish(Trainer(spec, runs=RunStore(tmp_path), threads=1))
    assert_true_verdict(summary, "suspect", {"one_class"})
