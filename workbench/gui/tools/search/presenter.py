"""What the Search panel decides and shows, Qt-free (tested without a QApplication): the fields
it suggests and the space it starts from, how a table cell reads and writes a space's values,
and `SearchState`, the trials of the study shown as the search's events change them, with the
table's cells, the best trial, the status lines and the parallel-coordinates maths.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.core.fields import shown
from workbench.core.tools.compare import COMMON_FIELDS
from workbench.core.tools.search import (
    SearchResult,
    SearchSpace,
    StudyOpened,
    StudyView,
    TrialEnded,
    TrialEvent,
    TrialRow,
    TrialStarted,
    same_experiment,
)
from workbench.core.training.events import EpochEnded, RunStarted
from workbench.spec import ExperimentSpec

SPACE_COLUMNS = ("field", "type", "low", "high", "log", "step", "choices")


def suggested_fields(spec: ExperimentSpec) -> list[str]:
    """Fields a person often searches: the common ones and every layer's width and rate, the
    layer numbered from 1 as the model editor shows it (`model.layer2.out`)."""
    fields = [f for f in COMMON_FIELDS if f not in ("train.epochs", "train.seed")]
    for i, layer in enumerate(spec.model.layers):
        if layer.type in ("Linear", "Conv2d"):
            fields.append(f"model.layer{i + 1}.out")
        elif layer.type == "Dropout":
            fields.append(f"model.layer{i + 1}.p")
    return fields


def default_space(spec: ExperimentSpec) -> dict[str, Any]:
    """A first space: the rate over three decades around the usual ones, and the width of the
    first hidden layer around its own."""
    params: dict[str, Any] = {"optim.lr": {"type": "float", "low": 1e-4, "high": 0.1,
                                           "log": True}}
    hidden = [i for i, layer in enumerate(spec.model.layers[:-1]) if layer.type == "Linear"]
    if hidden:
        out = int(spec.model.layers[hidden[0]].params.get("out", 64))
        params[f"model.layer{hidden[0] + 1}.out"] = {
            "type": "int", "low": max(2, out // 4), "high": max(4, out * 2), "log": True}
    return {"params": params}


def cell_value(text: str) -> Any:
    """A space table's cell as a value: JSON when it parses (numbers, true), else the text."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cell_text(value: Any) -> str:
    """A value as a space table's cell shows it (the inverse of `cell_value`)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def params_text(params: dict[str, Any]) -> str:
    """Settings as a line, each field as Workbench shows it (a layer by the editor's number,
    also for a space or study written with the document's index)."""
    return ", ".join(f"{shown(k)} = {fmt(v)}" for k, v in params.items())


def shown_importance(values: dict[str, float]) -> dict[str, float]:
    """Importances by field as Workbench shows it."""
    return {shown(k): v for k, v in values.items()}


def axis_ends(param: Any, column: list[Any]) -> tuple[str, str]:
    """What the bottom and top of a field's axis stand for."""
    if param is not None and param.kind == "categorical":
        return fmt(param.choices[0]), fmt(param.choices[-1])
    if param is not None:
        return fmt(param.low), fmt(param.high)
    numbers = [v for v in column if isinstance(v, int | float) and not isinstance(v, bool)]
    return (fmt(min(numbers)), fmt(max(numbers))) if numbers else ("", "")


def scaled(param: Any, value: Any, column: list[Any]) -> float:
    """A value's place on its axis, 0..1 (log axes in log; choices spread evenly)."""
    if param is not None and param.kind == "categorical":
        choices = list(param.choices)
        i = next((k for k, c in enumerate(choices) if c == value), 0)
        return 0.5 if len(choices) == 1 else i / (len(choices) - 1)
    if not isinstance(value, int | float) or isinstance(value, bool):
        distinct = sorted({json.dumps(v) for v in column})
        i = distinct.index(json.dumps(value))
        return 0.5 if len(distinct) == 1 else i / (len(distinct) - 1)
    if param is not None:
        lo, hi, log = float(param.low), float(param.high), param.log
    else:
        numbers = [float(v) for v in column]
        lo, hi, log = min(numbers), max(numbers), False
    if log and lo > 0 and value > 0:
        lo, hi, value = math.log10(lo), math.log10(hi), math.log10(value)
    return 0.5 if hi == lo else (float(value) - lo) / (hi - lo)


def result_text(result: SearchResult) -> str:
    """The status line once a search ends (HTML)."""
    best = result.best
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
    head = "Stopped" if result.stopped else "Gave up" if result.gave_up else "Done"
    gave_up = (f" This process gave up before the study's count: "
               f"{html.escape(result.gave_up)}." if result.gave_up else "")
    if best is None:
        return f"{head}: {counts or 'no trials'}; none completed yet.{gave_up}"
    return (f"{head}: {counts}. Best: trial {best.number}, {result.objective} "
            f"{best.value:.4f} ({html.escape(params_text(best.params))}).{gave_up} "
            "Double-click a trial to open its run.")


@dataclass
class SearchState:
    """The study the panel shows: its trials by number, space, direction and objective, where
    it is stored, and the experiment it searches (a stored study's)."""

    rows: dict[int, TrialRow] = field(default_factory=dict)
    space: SearchSpace | None = None
    direction: str = "maximize"
    objective: str = "val_accuracy"
    study: str = ""
    url: str = ""
    study_experiment: ExperimentSpec | None = None
    importance: dict[str, float] = field(default_factory=dict)

    def apply(self, event: Any) -> tuple[str, str | None]:
        """Take one event of a running search: what to redraw ("all", "table" or "") and the
        new status line (HTML; None: unchanged)."""
        if isinstance(event, StudyOpened):
            self.rows = {r.number: r for r in event.rows}
            done = sum(r.state in ("complete", "pruned") for r in event.rows)
            return "all", (f"Study {html.escape(event.name)}: {done} of {event.target} trials "
                           f"finished; {event.direction} {event.objective}.")
        if isinstance(event, TrialStarted):
            self.rows[event.number] = TrialRow(event.number, "running", None, event.params)
            return "table", f"Trial {event.number} is training…"
        if isinstance(event, TrialEvent):
            row = self.rows.get(event.number)
            inner = event.event
            if row is None:
                return "", None
            if isinstance(inner, RunStarted):
                self.rows[event.number] = replace(row, run_dir=inner.run_dir)
                return "table", None
            if isinstance(inner, EpochEnded):
                value = getattr(inner, self.objective, None)
                self.rows[event.number] = replace(row, epochs=inner.epoch, value=value)
                return "table", None
            return "", None
        if isinstance(event, TrialEnded):
            self.rows[event.row.number] = event.row
            return "all", None
        return "", None

    def show_view(self, view: StudyView, editor: ExperimentSpec) -> str:
        """Show a stored study (read without running it); the status line (HTML), which
        offers its experiment when it is not the one in the `editor`."""
        self.space = view.space
        self.direction = view.direction
        self.objective = view.objective or self.objective
        self.rows = {r.number: r for r in view.rows}
        self.importance = {}
        self.study_experiment = view.experiment
        head = f"Study {html.escape(view.name)}: {len(view.rows)} trials."
        if view.experiment is None or same_experiment(view.experiment, editor):
            return f"{head} Run to continue it."
        return (f"{head} It searches another experiment than the editor's: "
                "<a href='experiment'>open its experiment</a>, then Run to continue it.")

    def sorted_rows(self) -> list[TrialRow]:
        return sorted(self.rows.values(), key=lambda r: r.number)

    def param_names(self) -> list[str]:
        if self.space is not None:
            return [p.path for p in self.space.params]
        names: list[str] = []
        for row in self.rows.values():
            names += [k for k in row.params if k not in names]
        return names

    def table(self) -> tuple[list[str], list[tuple[TrialRow, list[str]]]]:
        """The trials table: its headers, and per trial (by number) its cells' texts."""
        names = self.param_names()
        headers = ["#", "state", self.objective, "epochs", *map(shown, names), "run"]
        rows = []
        for row in self.sorted_rows():
            value = "-" if row.value is None else f"{row.value:.4f}"
            rows.append((row, [str(row.number), row.state, value, str(row.epochs),
                               *(fmt(row.params.get(n, "")) for n in names),
                               Path(row.run_dir).name if row.run_dir else ""]))
        return headers, rows

    def trial_at(self, table_row: int) -> TrialRow | None:
        rows = self.sorted_rows()
        return rows[table_row] if 0 <= table_row < len(rows) else None

    def completed(self) -> list[TrialRow]:
        return [r for r in self.rows.values() if r.state == "complete" and r.value is not None]

    def best_row(self) -> TrialRow | None:
        done = self.completed()
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda r: r.value)  # type: ignore[arg-type, return-value]

    def parallel_lines(self) -> tuple[list[str], list[tuple[TrialRow, list[float]]]]:
        """Axis names and, per finished trial, its values scaled to 0..1 on each axis (ranges
        by the space: log axes in log; choices spread evenly); the objective last."""
        names = self.param_names()
        rows = [r for r in self.sorted_rows()
                if r.state in ("complete", "pruned") and all(n in r.params for n in names)]
        values = [r.value for r in rows if r.value is not None and math.isfinite(r.value)]
        lo_v, hi_v = (min(values), max(values)) if values else (0.0, 1.0)
        params = {p.path: p for p in self.space.params} if self.space is not None else {}
        out = []
        for row in rows:
            ys = [scaled(params.get(n), row.params[n], [r.params[n] for r in rows])
                  for n in names]
            value = row.value
            ys.append(0.5 if value is None or hi_v == lo_v else (value - lo_v) / (hi_v - lo_v))
            out.append((row, ys))
        return [*names, self.objective], out

    def parallel_ends(self, names: list[str],
                      lines: list[tuple[TrialRow, list[float]]]) -> list[tuple[str, str]]:
        """What the bottom and top of each parallel axis stand for."""
        params = {p.path: p for p in self.space.params} if self.space is not None else {}
        rows = [row for row, _ys in lines]
        ends = [axis_ends(params.get(n), [r.params[n] for r in rows]) for n in names[:-1]]
        values = [r.value for r in rows if r.value is not None]
        ends.append((fmt(min(values)), fmt(max(values))) if values else ("", ""))
        return ends

    def shade(self, value: float, lines: list[tuple[TrialRow, list[float]]]) -> float:
        """A complete trial's colour on the scale, 0 (worst) to 1 (best), from its scaled
        objective `value` among the complete trials of `lines`."""
        done = [ys[-1] for row, ys in lines if row.state == "complete"]
        lo, hi = (min(done), max(done)) if done else (0.0, 1.0)
        t = 0.5 if hi == lo else (value - lo) / (hi - lo)
        return t if self.direction == "maximize" else 1 - t
