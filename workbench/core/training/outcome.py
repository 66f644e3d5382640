"""Whether a run that ended learned anything, said plainly: a run can finish without an error
and still have diverged or collapsed, and "Finished, 48.5%" must not pass for success.

`judge` looks at the training loss where it started and where it ended, the test loss and the
test confusion matrix, and returns the run's verdict ("ok" or "suspect") and its warnings,
each a message and what to try. The trainer stores both in the run's summary; the CLI prints
them in its result line and the app shows them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

DIVERGED_RATIO = 1.5  # the loss ended more than this many times where it started
ONE_CLASS_SHARE = 0.9  # one class predicted for at least this share of the test samples
CHANCE_MARGIN = 0.02  # accuracy within this of always guessing the most common class
MIN_TEST_SAMPLES = 20  # fewer than this: too few to judge the predictions


@dataclass(frozen=True)
class OutcomeWarning:
    kind: str  # "diverged", "one_class" or "chance"
    message: str
    hint: str


def _diverged(first: float | None, last: float | None) -> bool:
    return (first is not None and last is not None and math.isfinite(first)
            and (not math.isfinite(last) or last > DIVERGED_RATIO * first + 1e-3))


def judge(first_loss: float | None, last_loss: float | None, test_loss: float | None,
          confusion: Sequence[Sequence[int]] | None,
          class_names: Sequence[str] = ()) -> list[OutcomeWarning]:
    """What looks wrong with a run's outcome; an empty list when nothing does.

    `first_loss` is the training loss over the first steps, `last_loss` over the last epoch
    (or the last steps); `confusion[true][predicted]` counts the test samples.
    """
    warnings: list[OutcomeWarning] = []
    worst = max((v for v in (last_loss, test_loss) if v is not None), default=None)
    if _diverged(first_loss, worst):
        assert first_loss is not None and worst is not None
        which = "test" if test_loss is not None and worst == test_loss else "training"
        warnings.append(OutcomeWarning(
            "diverged", f"the {which} loss ended at {worst:.4g}, far above where training "
                        f"started ({first_loss:.4g}): the run diverged",
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


__all__ = ["OutcomeWarning", "as_summary", "judge", "stored_warnings", "verdict"]
