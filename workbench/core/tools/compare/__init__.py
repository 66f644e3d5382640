"""Comparisons: several variants of one experiment raced fairly, their curves and a results table.

    variants.py   what a comparison is (Variant, Comparison) and its JSON form
    vary.py       the `--vary` grammar and the grid of variants
    runner.py     the fair runner (same weights, data and batch order; threads side by side)
    callbacks.py  what the runner adds to each trainer: the fairness check, the weight trail
    results.py    curves of each variant (live or from a stored run) and the results table
    files.py      saved comparisons under `<runs root>/comparisons/`
"""

from __future__ import annotations

from workbench.core.tools.compare.callbacks import (
    FairStart,
    FirstBatchLoss,
    WeightTrail,
    load_trail,
)
from workbench.core.tools.compare.files import (
    comparisons_dir,
    default_name,
    list_comparisons,
    load_comparison,
    save_comparison,
)
from workbench.core.tools.compare.results import (
    Curves,
    ResultRow,
    curves_for,
    is_divergence,
    result_row,
    results,
)
from workbench.core.tools.compare.runner import (
    ComparisonRunner,
    auto_side_by_side,
    run_comparison,
)
from workbench.core.tools.compare.variants import Comparison, Variant, unique_label
from workbench.core.tools.compare.vary import (
    COMMON_FIELDS,
    DEFAULT_LR,
    grid,
    parse_value,
    parse_vary,
    set_field,
)

__all__ = [
    "COMMON_FIELDS",
    "DEFAULT_LR",
    "Comparison",
    "ComparisonRunner",
    "Curves",
    "FairStart",
    "FirstBatchLoss",
    "ResultRow",
    "Variant",
    "WeightTrail",
    "auto_side_by_side",
    "comparisons_dir",
    "curves_for",
    "default_name",
    "grid",
    "is_divergence",
    "list_comparisons",
    "load_comparison",
    "load_trail",
    "parse_value",
    "parse_vary",
    "result_row",
    "results",
    "run_comparison",
    "save_comparison",
    "set_field",
    "unique_label",
]
