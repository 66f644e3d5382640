"""What the Compress panel decides and says, Qt-free (tested without a QApplication): which
runs its picker offers, where each measured variant sits on the frontier plot and how it is
marked, the Pareto front's line, the lines that describe a variant, a search's steps and its
result, and the value-ranges table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.gui.run_rules import has_model, run_titles

AXIS_CHOICES = (("File size", "bytes", "file size (KB)"),
                ("Latency, batch 1", "latency_ms", "latency at batch 1 (ms)"),
                ("Latency, batch 256", "latency_ms_256", "latency at batch 256 (ms)"))
RANGE_COLUMNS = ("Layer", "Tensor", "Min", "Max", "int8 step", "Round to zero")
UNDERFLOW_WARN = 0.05  # a tensor that rounds more than this share to zero is marked
EXPORT_MODES = {"int8-dynamic": "dynamic", "int8-static": "static", "fp16": "fp16"}
_expected: tuple[type[BaseException], ...] = ()  # filled on first use (imports torch)


def expected_errors() -> tuple[type[BaseException], ...]:
    """The errors that are the person's input, not bugs (their message is enough)."""
    global _expected
    if not _expected:
        from workbench.core.tools.calibration import CalibrationError
        from workbench.core.tools.compress import CompressError
        from workbench.core.tools.export import ExportError
        from workbench.core.tools.prune import PruneError

        _expected = (CompressError, ExportError, PruneError, CalibrationError)
    return _expected


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def axis_value(variant: Any, axis: str) -> float:
    """A variant's x on the frontier: its file size in KB, or a latency in ms."""
    value = getattr(variant.measured, axis)
    return value / 1024.0 if axis == "bytes" else value


def is_regression(variants: list[Any]) -> bool:
    """Variants of a regression run: quality is minus the test MSE, not an accuracy."""
    return any(v.measured.test_accuracy is None for v in variants)


def quality_y(variant: Any, regression: bool) -> float:
    """A variant's y on the frontier: test accuracy in percent, or minus its test MSE."""
    return variant.quality * (1 if regression else 100)


@dataclass(frozen=True)
class Spot:
    """A variant's point on the frontier: at (log10 x, y); `index` into the variants; a
    refused variant a cross, a pruned one hollow."""

    x: float
    y: float
    index: int
    kind: str
    refused: bool
    pruned: bool


def frontier_spots(variants: list[Any], axis: str) -> list[Spot]:
    """The points the frontier plot shows (a variant without a positive x or a finite
    quality is left out: a log axis cannot place it)."""
    regression = is_regression(variants)
    spots = []
    for i, v in enumerate(variants):
        x = axis_value(v, axis)
        if x <= 0 or not math.isfinite(v.quality):
            continue
        spots.append(Spot(math.log10(x), quality_y(v, regression), i, v.kind,
                          bool(v.refused), v.pruning is not None))
    return spots


def front_line(front: list[Any], axis: str, regression: bool) -> tuple[list[float], list[float]]:
    """The Pareto front's line through its variants."""
    return ([math.log10(axis_value(v, axis)) for v in front],
            [quality_y(v, regression) for v in front])


def highlight_at(variant: Any, axis: str) -> tuple[float, float]:
    regression = variant.measured.test_accuracy is None
    return math.log10(max(axis_value(variant, axis), 1e-12)), quality_y(variant, regression)


def describe(v: Any) -> str:
    """A measured variant in a few lines: its run, size, latencies, accuracy, agreement."""
    m = v.measured
    lines = [f"{v.label}", f"run {v.run_name}",
             f"size {m.bytes / 1024:,.1f} KB",
             f"latency {m.latency_ms:.3f} ms (batch 1), {m.latency_ms_256:.2f} ms (batch 256)",
             f"test accuracy {pct(m.test_accuracy)}, val {pct(m.val_accuracy)}"
             if m.test_accuracy is not None else f"test MSE {m.test_loss:.4g}",
             f"agrees with its float model on {pct(m.agreement)} of the test split"]
    if v.refused:
        lines.append(f"refused: {v.refused}")
    return "\n".join(lines)


def picker_items(infos: list[Any]) -> list[tuple[str, str]]:
    """(run folder, text) of the runs with a trained model, as every run picker lists them
    (`run_rules.run_titles`: runs that share a name say what differs)."""
    trained = [info for info in infos if has_model(info) is None]
    return [(str(info.path), title) for info, title in zip(trained, run_titles(trained),
                                                           strict=True)]


def family_text(variants: list[Any]) -> str:
    """The status line for a run's measured family."""
    runs = {v.run_dir for v in variants}
    if not variants:
        return ("Not measured yet: press Measure variants (a minute or so), or Find the "
                "smallest.")
    return (f"{len(variants)} variants of {len(runs)} run{'s' if len(runs) != 1 else ''} "
            "(this one and those pruned from it), measured with onnxruntime on this machine.")


def last_target_text(target: dict[str, Any]) -> str:
    """The stored result of the run's last compress-to-target search, in one line."""
    best = target.get("best") or {}
    ratio = target.get("ratio")
    return (f"Last search: within {target.get('max_drop')} points, the smallest was "
            f"{best.get('label', 'none')}"
            + (f" ({best.get('run_name')}), {ratio:.1f}x smaller than the float original"
               if isinstance(ratio, int | float) else "")
            + f"; {len(target.get('steps', []))} steps.")


def target_result_text(result: Any) -> str:
    best = result.best
    if best is None:
        return "No variant holds."
    m = best.measured
    return (f"Smallest within {result.max_drop:g} points: {best.label} ({best.run_name}), "
            f"{m.bytes / 1024:,.1f} KB, {result.reference_bytes / m.bytes:.1f}x smaller "
            f"than the float original; val {pct(m.val_accuracy)} (original "
            f"{pct(result.reference_val_accuracy)}), test {pct(m.test_accuracy)} "
            f"(original {pct(result.reference_test_accuracy)})."
            + (" Stopped early." if result.stopped else ""))


def measuring_text(item: Any) -> str:
    """A measuring step's progress: a line of its own, or the runs measured so far."""
    if isinstance(item, str):
        return f"Measuring… {item}"
    return "Measuring… " + ", ".join(sorted({v.run_name[-6:] for v in item})) + " done"


def target_step_text(item: Any) -> tuple[str | None, bool]:
    """A compress-to-target step as a line of its log (None: nothing to say), and whether it
    measured a new variant (a probe: the frontier has one more point)."""
    from workbench.core.tools.compress import TargetStep, in_points
    from workbench.core.training.events import EpochEnded

    if isinstance(item, TargetStep):
        verdict = "holds" if item.holds else "too far"
        return (f"{item.action}: {verdict}, {in_points(item.drop)}: {item.note}",
                item.action == "probe")
    if isinstance(item, EpochEnded):
        return f"   fine-tuning epoch {item.epoch}: val accuracy {pct(item.val_accuracy)}", False
    return None, False


def range_cells(r: Any) -> tuple[str, ...]:
    return (r.label, r.tensor, f"{r.minimum:.4g}", f"{r.maximum:.4g}", f"{r.step:.3g}",
            f"{r.underflow:.2%}")


def ranges_note(ranges: list[Any], samples: int) -> str:
    worst = max(ranges, key=lambda r: r.underflow, default=None)
    return (f"{len(ranges)} tensors on {samples} calibration samples."
            + (f" Most affected: {worst.label} {worst.tensor}, {worst.underflow:.1%} of its "
               "nonzero values round to zero." if worst else ""))
