"""Whether a run that ended learned anything, said plainly: a run can finish without an error
and still have diverged or collapsed, and "Finished, 48.5%" must not pass for success.

`judge` compares where the run ended with where it started, and reads the test confusion
matrix; it returns the run's verdict ("ok" or "suspect") and its warnings, each a message and
what to try. The trainer stores both, and the figures they come from, in the run's summary;
the CLI prints them in its result line and the app shows them.

Where a run started is measured, not guessed from its first batches: the loss of its starting
weights over the validation split (`recorder.starting_loss`), before the first step. A run
that starts from trained weights (a fork, a fine-tuned prune, a compressed variant) starts
low, and its first training batches lower still (a net that fits its training set), so a
baseline taken from them called such runs diverged; its own start over a split is the fair
one, and a resumed run keeps the start it had. Both ends are measured the same way (eval
mode, a whole split), and a rise counts as divergence only when it is large against the
loss of knowing nothing (the entropy of the class frequencies; for regression the targets'
variance): a trained net that ends a little worse has not diverged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

DIVERGED_RATIO = 1.5  # the loss ended more than this many times where it started...
DIVERGED_MARGIN = 0.1  # ...and more than this share of the know-nothing loss above that
MIN_MARGIN = 1e-3  # the least margin (regression noise near zero)
ONE_CLASS_SHARE = 0.9  # one class predicted for at least this share of the test samples
CHANCE_MARGIN = 0.02  # accuracy within this of always guessing the most common class
MIN_TEST_SAMPLES = 20  # fewer than this: too few to judge the predictions


@dataclass(frozen=True)
class OutcomeWarning:
    kind: str  # "diverged", "one_class" or "chance"
    message: str
    hint: str


def diverged(start_loss: float | None, end_loss: float | None,
             chance_loss: float | None = None) -> bool:
    """Whether a loss that began at `start_loss` and ended at `end_loss` diverged."""
    if start_loss is None or end_loss is None or not math.isfinite(start_loss):
        return False
    if not math.isfinite(end_loss):
        return True
    margin = max(MIN_MARGIN, DIVERGED_MARGIN * chance_loss) if chance_loss else MIN_MARGIN
    return end_loss > DIVERGED_RATIO * start_loss + margin


def judge(start_loss: float | None, end_loss: float | None,
          confusion: Sequence[Sequence[int]] | None, class_names: Sequence[str] = (), *,
          chance_loss: float | None = None, end_split: str = "test") -> list[OutcomeWarning]:
    """What looks wrong with a run's outcome; an empty list when nothing does.

    `start_loss` is the loss of the run's starting weights, `end_loss` that of its final
    weights on the `end_split` split ("test", "validation" or "training"), both in eval
    mode; `chance_loss` the loss of knowing nothing; `confusion[true][predicted]` counts the
    test samples.
    """
    warnings: list[OutcomeWarning] = []
    if diverged(start_loss, end_loss, chance_loss):
        assert start_loss is not None and end_loss is not None
        warnings.append(OutcomeWarning(
            "diverged", f"the {end_split} loss ended at {end_loss:.4g}, far above where this "
                        f"run started ({start_loss:.4g}): the run diverged",
            "lower the learning rate (try 10× lower) or clip the gradient norm"))
    if confusion:
        warnings += _prediction_warnings(confusion, class_names)
    return warnings


def _prediction_warnings(confusion: Sequence[Sequence[int]],
                         class_names: Sequence[str]) -> list[OutcomeWarning]:
    k = len(confusion)
    total = sum(sum(row) for row in confusion)
    if k < 2 or total < MIN_TEST_SAMPLES:
        return []
    names = [str(n) for n in class_names[:k]] + [str(i) for i in range(len(class_names), k)]
    predicted = [sum(row[c] for row in confusion) for c in range(k)]
    actual = [sum(row) for row in confusion]
    top = max(range(k), key=lambda c: predicted[c])
    share = predicted[top] / total
    majority = max(actual) / total
    if share >= ONE_CLASS_SHARE and majority < ONE_CLASS_SHARE:
        return [OutcomeWarning(
            "one_class", f"the network predicts “{names[top]}” for {share:.0%} of the test "
                         "samples: it has collapsed to one answer",
            "lower the learning rate, train longer, or check that the classes are balanced")]
    accuracy = sum(confusion[i][i] for i in range(k)) / total
    if accuracy <= majority + CHANCE_MARGIN:
        common = names[max(range(k), key=lambda c: actual[c])]
        return [OutcomeWarning(
            "chance", f"test accuracy {accuracy:.1%} is no better than always answering "
                      f"“{common}” ({majority:.1%})",
            "train longer, change the learning rate, or use a larger network")]
    return []


def verdict(warnings: Sequence[OutcomeWarning]) -> str:
    return "suspect" if warnings else "ok"


def as_summary(warnings: Sequence[OutcomeWarning]) -> dict[str, Any]:
    """The summary's `verdict` and `warnings` entries (plain JSON)."""
    return {"verdict": verdict(warnings), "warnings": [asdict(w) for w in warnings]}


def stored_warnings(summary: dict[str, Any]) -> list[OutcomeWarning]:
    """The warnings a run's summary holds (none for runs stored before there were any, or a
    summary whose entry is not the right shape)."""
    raw = summary.get("warnings")
    if not isinstance(raw, list):
        return []
    found = []
    for item in raw:
        if isinstance(item, dict) and all(isinstance(item.get(k), str)
                                          for k in ("kind", "message", "hint")):
            found.append(OutcomeWarning(item["kind"], item["message"], item["hint"]))
    return found


__all__ = ["OutcomeWarning", "as_summary", "diverged", "judge", "stored_warnings", "verdict"]
