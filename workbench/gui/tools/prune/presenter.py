"""What the Prune panel decides and says, Qt-free (tested without a QApplication): the pruning
its controls describe, which layer sliders a person may move, and the lines that report the
run, an evaluation, a fine-tuning epoch and the pruned run made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.tools.prune import PruneConfig, PruneResult

COLUMNS = ("Layer", "Amount", "Per layer", "Sparsity", "Parameters before", "Parameters after",
           "Units")
STAT_COLUMNS = (1, 3, 4, 5, 6)  # the columns an evaluation fills (2 holds the slider)
WHOLE_NETWORK = "whole network (global)"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def prune_config(session: Any, percent: int, *, per_layer: bool, structured: bool, l2: bool,
                 layer_percents: dict[int, int]) -> PruneConfig:
    """The pruning the controls describe: `percent` of the weights (or units), globally, or
    per layer at each usable layer's own percentage."""
    norm = "l2" if l2 else "l1"
    amount = percent / 100.0
    if not per_layer or session is None:
        return PruneConfig(amount=amount, structured=structured, norm=norm)
    allowed = {lay.index for lay in (session.structured_layers if structured
                                     else session.layers)}
    chosen = {i: p / 100.0 for i, p in layer_percents.items() if i in allowed}
    return PruneConfig(amount=amount, structured=structured, norm=norm, per_layer=chosen)


def keeps_units(layer: Any, structured: bool) -> bool:
    """Structured pruning leaves the output layer whole: its units are the classes."""
    return structured and layer.is_output


def run_text(session: Any) -> str:
    """The loaded run in a line (HTML): its name, folder, baseline and size."""
    base = session.baseline
    acc = f"val accuracy {pct(base.val_accuracy)}, " if base.val_accuracy is not None else ""
    return (f"<b>{session.spec.name}</b> ({session.run.path.name}): {acc}val loss "
            f"{base.val_loss:.4f}, {session.params_before:,} parameters, "
            f"{len(session.val_x):,} validation samples")


def result_text(result: PruneResult, baseline: Any) -> str:
    """An evaluation of the pruned copy against the unpruned run, in a line."""
    if result.val_accuracy is not None and baseline.val_accuracy is not None:
        delta = (result.val_accuracy - baseline.val_accuracy) * 100
        head = f"val accuracy {pct(result.val_accuracy)} ({delta:+.1f} points)"
    else:
        head = f"val loss {result.val_loss:.4f} (unpruned {baseline.val_loss:.4f})"
    return (f"{head} · loss {result.val_loss:.4f} · {result.sparsity:.1%} of weights zero · "
            f"{result.params_after:,} of {result.params_before:,} parameters")


def layer_cells(stats: Any) -> tuple[str, ...]:
    """A layer's row after an evaluation, for `STAT_COLUMNS`."""
    return (pct(stats.amount), pct(stats.sparsity), f"{stats.params_before:,}",
            f"{stats.params_after:,}", f"{stats.units_after} / {stats.units_before}")


def sweep_point(point: Any) -> tuple[float, float]:
    """A sensitivity point as the plot draws it: (amount %, val accuracy % or val loss)."""
    if point.val_accuracy is not None:
        return point.amount * 100, point.val_accuracy * 100.0
    return point.amount * 100, point.val_loss


def applied_text(run_dir: str, s: dict[str, Any]) -> str:
    """The pruned run made (HTML): accuracy before and after, size and latency."""
    recovery = (f" → <b>{pct(s['val_accuracy'])}</b> after {s['finetune_epochs']} epochs "
                "of fine-tuning" if s["finetune_epochs"] else "")
    return (f"New run <b>{Path(run_dir).name}</b> ({s['status']}).<br>"
            f"Val accuracy: parent {pct(s['val_accuracy_parent'])} → pruned "
            f"{pct(s['val_accuracy_pruned'])}{recovery}; test {pct(s['test_accuracy'])}.<br>"
            f"Parameters {s['parameters_before']:,} → {s['parameters']:,} nonzero "
            f"({s['parameters_stored']:,} stored); model.pt {s['bytes_before'] / 1024:,.0f} KB "
            f"→ {s['bytes_after'] / 1024:,.0f} KB; CPU latency batch 1 "
            f"{s['latency_ms_before']:.3f} → {s['latency_ms_after']:.3f} ms, batch 256 "
            f"{s['latency_ms_256_before']:.2f} → {s['latency_ms_256_after']:.2f} ms.")
