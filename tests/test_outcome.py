"""Honest outcomes: a run that ends without an error but diverged, collapsed to one class or
guesses no better than chance is flagged in its summary and the CLI's result line; a run that
learned is not."""

from __future__ import annotations

import json

from workbench.cli import main
from workbench.core.store.runs import Run, RunStore
from workbench.core.training.events import RunFinished
from workbench.core.training.loop import Trainer
from workbench.core.training.outcome import judge, stored_warnings
from workbench.core.training.state import LoopState, loop_state
from workbench.spec import from_dict

SPIRALS = {"name": "spirals", "data": {"name": "spirals", "samples": 600, "noise": 0.1},
           "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "Tanh"},
                                {"type": "Linear", "out": 16}, {"type": "Tanh"},
                                {"type": "Linear", "out": 2}]},
           "optim": {"name": "adam", "lr": 0.02},
           "train": {"epochs": 3, "batch_size": 32, "seed": 0, "device": "cpu"}}


def _spec(**optim):
    d = json.loads(json.dumps(SPIRALS))
    d["optim"].update(optim)
    return from_dict(d)


def _kinds(warnings):
    return {w.kind if hasattr(w, "kind") else w["kind"] for w in warnings}


def test_judge_names_divergence_collapse_and_chance():
    assert judge(0.69, 0.25, [[90, 10], [12, 88]], ("a", "b")) == []
    diverged = judge(0.69, 53.7, [[103, 0], [97, 0]], ("a", "b"))
    assert _kinds(diverged) == {"diverged", "one_class"}
    assert "53.7" in diverged[0].message and "0.69" in diverged[0].message
    assert "lower the learning rate" in diverged[0].hint
    assert "“a” for 100%" in diverged[1].message
    assert _kinds(judge(0.69, float("inf"), None)) == {"diverged"}
    chance = judge(2.3, 2.2, [[3, 3, 4], [3, 4, 3], [4, 3, 3]], ("x", "y", "z"))
    assert _kinds(chance) == {"chance"}
    # a data set that is itself 95% one class: predicting it is no collapse, but no skill
    skewed = judge(0.5, 0.3, [[95, 0], [5, 0]], ("common", "rare"))
    assert _kinds(skewed) == {"chance"}
    assert judge(0.69, 0.5, [[3, 0], [2, 0]]) == []  # too few test samples to judge
    assert judge(1e-4, 1.2e-4, None) == []  # regression noise near zero


def test_a_trained_start_that_ends_a_little_worse_has_not_diverged():
    """Against the loss of knowing nothing (ln 10 for ten balanced classes), 0.05 -> 0.1 is
    a trained net a little worse; 0.05 -> 0.5 is a fine-tune that wrecked it."""
    ln10 = 2.302585
    assert judge(0.05, 0.1, None, chance_loss=ln10) == []
    assert _kinds(judge(0.05, 0.5, None, chance_loss=ln10)) == {"diverged"}
    assert "validation loss ended" in judge(0.05, 0.5, None, chance_loss=ln10,
                                            end_split="validation")[0].message


def test_a_diverging_run_finishes_flagged_and_the_cli_says_so(tmp_path, capsys):
    """SGD at learning rate 10 on the spirals: it 'finishes' near 50% with a test loss far
    above where it started; the summary, the event and the CLI's JSON line all say so."""
    events = list(Trainer(_spec(name="sgd", lr=10.0), runs=RunStore(tmp_path / "a")).events())
    end = events[-1]
    assert isinstance(end, RunFinished)
    summary = Run(end.run_dir).summary()
    assert summary["verdict"] == "suspect" == end.summary["verdict"]
    assert "diverged" in _kinds(summary["warnings"])
    assert _kinds(stored_warnings(summary)) == _kinds(summary["warnings"])

    spec_file = tmp_path / "sgd10.json"
    spec_file.write_text(_spec(name="sgd", lr=10.0).to_json())
    assert main(["train", str(spec_file), "--runs-dir", str(tmp_path / "b"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["verdict"] == "suspect"
    assert "diverged" in _kinds(result["warnings"])
    assert "workbench: warning: the test loss ended at" in err and "hint: lower" in err


def test_a_run_that_learned_is_ok(tmp_path):
    end = list(Trainer(_spec(), runs=RunStore(tmp_path)).events())[-1]
    assert isinstance(end, RunFinished) and end.test_accuracy > 0.6
    assert end.summary["verdict"] == "ok" and end.summary["warnings"] == []


def test_where_training_started_survives_a_checkpoint():
    state = LoopState(last_loss=0.3, start_loss=0.69, start_split="validation")
    ckpt = {"epoch": 1, "step": 0, "global_step": 10, "elapsed": 1.0,
            "best_val_accuracy": None, "epoch_sums": [0.0, 0, 0], "epoch_gen_state": None,
            "last_loss": state.last_loss,
            "start_loss": state.start_loss, "start_split": state.start_split}
    restored = loop_state(ckpt)
    assert restored.last_loss == 0.3
    assert (restored.start_loss, restored.start_split) == (0.69, "validation")
    del ckpt["start_loss"], ckpt["start_split"]  # a checkpoint from before measured starts
    assert loop_state(ckpt).start_loss is None  # measured again when the run resumes


def test_a_damaged_warnings_entry_reads_as_none():
    assert stored_warnings({"warnings": "bad"}) == []
    assert stored_warnings({"warnings": [{"kind": 1}, "x"]}) == []
    assert stored_warnings({}) == []
