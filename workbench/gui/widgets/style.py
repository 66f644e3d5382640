"""The app's look: Qt's Fusion style, a light palette and `resources/style.qss`; every colour
a view draws with, named by what it means; legends drawn beside charts."""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from workbench.paths import resources_dir

# Every colour the app draws with, by what it means (one home: a view names them, never a hex
# code). The palette of the window itself is `apply_style`'s, below.
ACCENT = "#2f6fde"  # the app's blue: selection, the primary curve, a running trial
TEXT = "#1d232b"  # body text, and a chart's dark marks
WHITE = "#ffffff"
BLACK = "#000000"
HINT = "#5b6675"  # a chart's secondary text
CAPTION = "#4a5563"  # a caption under a thumbnail, a count over a bar
GREY = "#8a94a1"  # what waits or is in the background (a trial not run, a fork's parent)
MUTED = "#c5ccd6"  # reference lines, what is set aside (a pruned trial, each raw step)
DISABLED_FILL = "#eceef1"  # behind a control that does not apply now
FAINT = "#b8c2d0"  # points behind the line that sums them up
GRID_LINE = "#dde1e6"  # between the cells of a matrix
LABEL_FILL = "#ffffffc8"  # behind a label on a chart, so lines under it do not cut it
ERROR = "#b42318"  # a failed or damaged item in a list or a table
ERROR_BG = "#fde7e7"  # behind a layer that does not fit
ALERT = "#c0392b"  # a refusal or failure said in a status line, a point marked as refused
GOOD = "#1e8449"  # verified
CAUTION = "#b25d00"  # a note to heed (what pruning did, why Train is off)
SUSPECT = "#9a6700"  # a result that ended but did not learn
# the boxes over a run's views: a failure, and a notice (also in the Health tab and Results)
FAILURE_BG, FAILURE_EDGE, FAILURE_TEXT = "#f8d7da", "#f1aeb5", "#58151c"
NOTICE_BG, NOTICE_EDGE, NOTICE_TEXT = "#fff3cd", "#ffda6a", "#664d03"
FAILURE_STYLE = (f"#failure {{ background: {FAILURE_BG}; border: 1px solid {FAILURE_EDGE}; "
                 f"border-radius: 4px; }} #failure QLabel {{ color: {FAILURE_TEXT}; }}")
NOTICE_STYLE = (f"#notice {{ background: {NOTICE_BG}; border: 1px solid {NOTICE_EDGE}; "
                f"border-radius: 4px; }} #notice QLabel {{ color: {NOTICE_TEXT}; }}")


def notice_label_style(padding: int) -> str:
    """A label in the notice's amber (a verdict, a health warning)."""
    return (f"QLabel {{ background: {NOTICE_BG}; color: {NOTICE_TEXT}; border: 1px solid "
            f"{NOTICE_EDGE}; border-radius: 4px; padding: {padding}px; }}")


# Several series told apart: classes, variants, optimizers, layers in a sweep
CLASS_COLORS = ("#2f6fde", "#e4572e", "#29a35a", "#9b5de5", "#f2a541", "#17becf", "#d62789",
                "#8c564b", "#7f7f7f", "#bcbd22")
# The training curves and the Health tab's layers: matplotlib's tab10, as people know it
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
         "#7f7f7f", "#bcbd22", "#17becf")
TRAIN, VALIDATION = TAB10[0], TAB10[3]
# the kinds of a compressed variant, and the two tensors of a layer's value ranges
VARIANT_COLORS = {"fp32": "#4c72b0", "int8-dynamic": "#dd8452", "int8-static": "#55a868",
                  "fp16": "#8172b3"}
WEIGHTS, ACTIVATIONS = VARIANT_COLORS["fp32"], VARIANT_COLORS["int8-dynamic"]


def rgba(color: str, alpha: int) -> tuple[int, int, int, int]:
    """A "#rrggbb" colour with an alpha (0-255), as pyqtgraph takes it."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), alpha


def series_color(index: int) -> str:
    """The colour of the `index`-th of several series (a class, a variant), cycling."""
    return CLASS_COLORS[index % len(CLASS_COLORS)]


def legend_html(entries: Sequence[tuple[str, str, bool]]) -> str:
    """A legend to show beside a chart, never over its curves: (colour, label, marked) as a
    line swatch (with a dot on it when the curve marks its points) and the label."""
    parts = []
    for color, label, marked in entries:
        swatch = "\u2500\u25cf\u2500" if marked else "\u2501\u2501"
        parts.append(f"<span style='color:{color}'>{swatch}</span>&nbsp;{html.escape(label)}")
    return "&nbsp;&nbsp; ".join(parts)  # a line may break between two entries


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    for role, color in (
        (QPalette.ColorRole.Window, "#f5f6f8"),
        (QPalette.ColorRole.Base, WHITE),
        (QPalette.ColorRole.AlternateBase, "#f0f2f5"),
        (QPalette.ColorRole.Button, WHITE),
        (QPalette.ColorRole.Highlight, ACCENT),
        (QPalette.ColorRole.HighlightedText, WHITE),
        (QPalette.ColorRole.Text, TEXT),
        (QPalette.ColorRole.WindowText, TEXT),
        (QPalette.ColorRole.ButtonText, TEXT),
        (QPalette.ColorRole.ToolTipBase, WHITE),
        (QPalette.ColorRole.ToolTipText, TEXT),
    ):
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText,
                 QPalette.ColorRole.ButtonText):  # a disabled menu item or button looks it
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#9aa3ad"))
    # a disabled slider (a per-layer amount while pruning is global) is grey, not blue: the
    # blue fill is what says "this moves"
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(MUTED))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button,
                     QColor(DISABLED_FILL))
    app.setPalette(palette)
    qss = resources_dir() / "style.qss"
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
