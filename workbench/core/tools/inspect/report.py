"""A run's report: one self-contained HTML page that a person can send to someone without
Workbench.

It holds the run's result and verdict, its curves, the confusion matrix or the regression
plots, a linear model's equation, Inspect's pictures with how to read each, the compression
frontier when the run was compressed, and the spec. Every picture is a PNG inside the page
(a `data:` URI); the page has no script and links to nothing, and its Content-Security-Policy
forbids fetching anything but those pictures. Every text that comes from the run (its name,
the spec, class and feature names, error messages) is escaped: a hostile experiment name
stays text.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import __version__
from workbench.core.data.cache import DataSource
from workbench.core.store.atomic import write_text_atomic
from workbench.core.store.metrics import read_series
from workbench.core.store.runs import Run, RunError
from workbench.core.tools.inspect import plots
from workbench.core.tools.inspect.inspection import PER_CLASS, InspectResult, inspect_run
from workbench.core.tools.inspect.network import InspectError, check_cancel
from workbench.core.tools.inspect.render import figures

FILE = "report.html"  # in the run folder, unless the caller names the file
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #1d2630; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom:
1px solid #d5dbe1; padding-bottom: 0.2em; } h3 { margin-bottom: 0.3em; }
.meta { color: #5b6b7a; } .bad { background: #fdecea; border-left: 4px solid #c0392b;
padding: 0.6em 1em; } .warn { background: #fff6e0; border-left: 4px solid #e6a700;
padding: 0.6em 1em; } table { border-collapse: collapse; } td, th { padding: 0.25em 0.8em;
border-bottom: 1px solid #e3e7eb; text-align: left; } td.num { text-align: right;
font-variant-numeric: tabular-nums; } img { max-width: 100%; height: auto; display: block;
margin: 0.5em 0; } pre { background: #f4f6f8; padding: 0.8em; overflow-x: auto;
font-size: 0.85em; } .read { color: #33414e; font-size: 0.95em; max-width: 60em; }
code { background: #f4f6f8; padding: 0 0.2em; }
"""

Progress = Callable[[str], None]


@dataclass
class Report:
    """The page and what it holds: `pictures` (every embedded PNG, by title) and `notes`
    (what the page had to leave out, and why)."""

    html: str
    pictures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None  # where `write_report` wrote it


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _number(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}g}"


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pictures: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def picture(self, png: bytes | None, title: str, how_to_read: str = "") -> None:
        if png is None:
            return
        self.pictures.append(title)
        self.add(f"<h3>{_e(title)}</h3>")
        if how_to_read:
            self.add(f'<p class="read">{_e(how_to_read)}</p>')
        self.add(_img(png, title))


def _results_table(summary: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    if isinstance(summary.get("test_accuracy"), int | float):
        rows.append(("test accuracy", f"{summary['test_accuracy']:.2%}"))
    found = summary.get("regression")
    regression: dict[str, Any] = found if isinstance(found, dict) else {}
    if regression or summary.get("test_mse") is not None:
        rows.append(("test MSE", _number(regression.get("mse", summary.get("test_mse")))))
        for key, label in (("rmse", "test RMSE"), ("mae", "test MAE"), ("r2", "test R²")):
            if key in regression:
                rows.append((label, _number(regression[key])))
    for key, label in (("test_loss", "test loss"), ("val_loss", "validation loss"),
                       ("val_accuracy", "validation accuracy"),
                       ("best_val_accuracy", "best validation accuracy"),
                       ("epochs_done", "epochs"), ("seconds", "training seconds"),
                       ("num_params", "parameters"), ("device", "device"),
                       ("verdict", "verdict")):
        value = summary.get(key)
        if value is None:
            continue
        if "accuracy" in key and isinstance(value, int | float):
            shown = f"{value:.2%}"
        else:
            shown = value if isinstance(value, str) else _number(value)
        rows.append((label, str(shown)))
    body = "".join(f'<tr><th>{_e(k)}</th><td class="num">{_e(v)}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>"


def _header(page: _Page, run: Run, summary: dict[str, Any], name: str) -> None:
    page.add(f"<h1>{_e(name)}</h1>")
    created = summary.get("created")
    when = (datetime.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")
            if isinstance(created, int | float) else "unknown time")
    page.add(f'<p class="meta">Run <code>{_e(run.path.name)}</code>, started {_e(when)}, '
             f"status <b>{_e(summary.get('status', 'unknown'))}</b>.</p>")
    if summary.get("status") == "failed":
        page.add(f'<p class="bad"><b>The run failed:</b> {_e(summary.get("error", ""))}'
                 + (f"<br><b>Try:</b> {_e(summary['hint'])}" if summary.get("hint") else "")
                 + "</p>")
    warnings = summary.get("warnings")
    if isinstance(warnings, list):
        for w in warnings:
            if isinstance(w, dict):
                page.add(f'<p class="warn">⚠ {_e(w.get("message", ""))}<br><b>Try:</b> '
                         f'{_e(w.get("hint", ""))}</p>')


def _equation(page: _Page, entry: Any) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("lines"), list):
        return
    page.add("<h2>The model's equation</h2>")
    page.add(f'<p class="read">{_e(entry.get("note", ""))}</p>')
    page.add("<pre>" + "\n".join(_e(line) for line in entry["lines"]) + "</pre>")


def _compression(page: _Page, run_dir: Path, notes: list[str]) -> None:
    if not (run_dir / "compression.json").is_file():
        return
    try:
        from workbench.core.tools.compress import frontier, pareto
    except ImportError as exc:  # the [export] extra is not installed
        notes.append(f"the compression frontier needs the export extra ({exc})")
        return
    variants = frontier(run_dir)
    if not variants:
        return
    front = pareto(variants)
    page.add("<h2>Compression</h2>")
    page.picture(plots.frontier(variants, front), "Compressed variants",
                 "Every measured variant of the run and of the runs pruned from it: test "
                 "accuracy against the file's size. The red line joins the Pareto front, the "
                 "variants that no other beats on both size and accuracy.")
    rows = "".join(
        f"<tr><td>{_e(v.label)}</td><td class='num'>{_e(f'{v.measured.bytes:,}')}</td>"
        f"<td class='num'>{_e(_number(v.measured.test_accuracy))}</td>"
        f"<td class='num'>{_e(_number(v.measured.latency_ms))}</td>"
        f"<td>{'Pareto' if v in front else ''}{_e(v.refused or '')}</td></tr>"
        for v in variants)
    page.add("<table><tr><th>variant</th><th>bytes</th><th>test accuracy</th>"
             f"<th>latency (ms, batch 1)</th><th></th></tr>{rows}</table>")


def _inspection(page: _Page, result: InspectResult) -> None:
    page.add("<h2>Inspect: what the network learned</h2>")
    for fig in figures(result):
        page.picture(fig.png, fig.title, fig.how_to_read)


def build_report(run_dir: str | Path, *, source: DataSource | None = None,
                 samples: Sequence[int] | None = None, per_class: int = PER_CLASS,
                 cancel: threading.Event | None = None,
                 progress: Progress | None = None) -> Report:
    """The run's report page. RunError when the folder is no run or its files are damaged;
    a run without a usable model (one that failed) gets a page without Inspect's pictures,
    saying why."""
    path = Path(run_dir)
    if not (path / "spec.json").is_file():
        raise RunError(f"{path} is not a run folder (no spec.json)")
    run = Run(path)
    spec = run.spec()
    summary = run.summary()
    say = progress or (lambda _what: None)
    page = _Page()
    notes: list[str] = []
    _header(page, run, summary, spec.name)
    page.add("<h2>Results</h2>")
    page.add(_results_table(summary))
    _equation(page, summary.get("equation"))
    check_cancel(cancel)
    say("the curves")
    page.picture(plots.curves(read_series(run)), "Training curves",
                 "Loss, accuracy and learning rate against epoch, as the run logged them.")
    confusion = summary.get("confusion")
    if isinstance(confusion, list) and confusion:
        page.picture(plots.confusion(confusion, summary.get("class_names") or []),
                     "Confusion matrix",
                     "Each row is a true class, each column the class the network answered: "
                     "the diagonal holds the right answers, every other cell a kind of "
                     "mistake.")
    regression = summary.get("regression")
    if isinstance(regression, dict):
        target = str(regression.get("target") or "y")
        page.picture(plots.regression(regression, target), "Regression: predicted and true",
                     "Left: each test sample's prediction against its true value; the dashed "
                     "diagonal is a perfect answer. Right: the residuals (predicted minus "
                     "true): a pattern in them is something the model has not captured.")
    check_cancel(cancel)
    try:
        result = inspect_run(path, source=source, samples=samples, per_class=per_class,
                             cancel=cancel, progress=say)
    except (RunError, InspectError) as exc:
        page.add("<h2>Inspect: what the network learned</h2>")
        page.add(f"<p>Nothing to inspect: {_e(exc)}</p>")
        notes.append(f"no Inspect pictures: {exc}")
    else:
        _inspection(page, result)
    check_cancel(cancel)
    say("the compression frontier")
    _compression(page, path, notes)
    page.add("<h2>The experiment spec</h2>")
    page.add("<pre>" + _e(json.dumps(spec.to_dict(), indent=2, ensure_ascii=False)) + "</pre>")
    made = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    page.add(f'<p class="meta">Made by Workbench {_e(__version__)} on {_e(made)}.</p>')
    document = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{_e(spec.name)}: Workbench run report</title>"
                f"<style>{STYLE}</style></head><body>\n" + "\n".join(page.parts)
                + "\n</body></html>\n")
    return Report(document, page.pictures, notes)


def write_report(run_dir: str | Path, out: str | Path | None = None,
                 **options: Any) -> Report:
    """Build the run's report (`options` as `build_report` takes them) and write it to `out`
    (default: `report.html` in the run folder), atomically."""
    target = Path(out) if out is not None else Path(run_dir) / FILE
    report = build_report(run_dir, **options)
    write_text_atomic(target, report.html)
    report.path = target
    return report


__all__ = ["CSP", "FILE", "Report", "build_report", "write_report"]
