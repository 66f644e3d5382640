"""A run's report is one HTML page that works without Workbench and without a network: every
picture inside it, nothing fetched from elsewhere, and no text of the run taken for markup."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from prune_fixtures import train_run

from workbench.core.store.runs import RunStore
from workbench.core.tools.inspect.report import CSP, build_report, write_report
from workbench.paths import resources_dir
from workbench.spec import from_dict

HOSTILE = ('<script>alert("x")</script> & <img src=http://evil.example/x.png> '
           'costs $5 and $\\frac{1}{2}$')
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "data", "poster",
                  "background", "xlink:href", "ping", "manifest", "codebase", "cite"}


class Page(HTMLParser):
    """Every tag, every URL-bearing attribute, and the text, of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.images: list[str] = []
        self.metas: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "meta":
            self.metas.append(values)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if "style" in values:
            self.styles.append(values["style"] or "")
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value or ""))

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def assert_self_contained(html: str) -> Page:
    page = parse(html)
    assert not {"script", "link", "iframe", "object", "embed", "base", "form", "frame",
                "svg", "video", "audio", "source"} & set(page.tags)
    for tag, name, value in page.urls:  # only pictures, each a PNG inside the page
        assert (tag, name) == ("img", "src"), (tag, name, value[:80])
        assert value.startswith("data:image/png;base64,"), value[:80]
        png = base64.b64decode(value.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 100
    for style in page.styles:
        assert "url(" not in style and "@import" not in style
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in page.metas
    assert "default-src 'none'" in CSP and "img-src data:" in CSP
    return page


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("runs"),
                     [{"type": "Flatten"}, {"type": "Linear", "out": 32}, {"type": "ReLU"},
                      {"type": "Linear", "out": 10}], epochs=1, name=HOSTILE)


def test_every_picture_is_inside_the_page_and_nothing_is_fetched(hostile_run, tmp_path):
    report = write_report(hostile_run, tmp_path / "r.html", per_class=3)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html == report.html
    page = assert_self_contained(html)
    assert len(page.images) == len(report.pictures) >= 8
    assert report.pictures[:3] == ["Training curves", "Confusion matrix",
                                   "What layer 2 Linear learned"]
    assert "What each class is recognised by" in report.pictures
    assert report.notes == []


def test_a_hostile_experiment_name_stays_text(hostile_run):
    html = build_report(hostile_run, per_class=2).html
    page = parse(html)
    assert page.tags.count("img") == len(page.images)
    assert HOSTILE in "".join(page.text)  # shown as it is, in the title, heading and spec
    assert "<script>" not in html and "evil.example/x.png>" not in html
    assert html.count("&lt;script&gt;alert(") >= 2
    spec = json.loads(next(t for t in page.text if t.lstrip().startswith('{\n  "version"')))
    assert spec["name"] == HOSTILE


def test_a_regression_run_shows_its_plot_and_equation(tmp_path):
    path = resources_dir() / "datasets" / "diabetes" / "diabetes.csv"
    from workbench.core.training.events import RunFinished
    from workbench.core.training.loop import Trainer

    events = list(Trainer(from_dict({
        "name": "diabetes", "data": {"name": "csv", "path": str(path)},
        "model": {"layers": [{"type": "Linear", "out": 1}]}, "optim": {"name": "gd", "lr": 0.2},
        "train": {"epochs": 100, "device": "cpu", "checkpoint_every": 0}}),
        runs=RunStore(tmp_path)).events())
    assert isinstance(events[-1], RunFinished)
    report = build_report(events[-1].run_dir)
    page = assert_self_contained(report.html)
    assert "Regression: predicted and true" in report.pictures
    assert "Confusion matrix" not in report.pictures
    text = "".join(page.text)
    assert "progression = " in text and "test R²" in text
    assert "What each class is recognised by" not in report.pictures


def test_a_failed_run_gets_a_page_that_says_why(tmp_path):
    from workbench.core.training.events import RunFailed
    from workbench.core.training.loop import Trainer

    events = list(Trainer(from_dict({
        "name": "diverges", "data": {"name": "line", "samples": 200},
        "model": {"layers": [{"type": "Linear", "out": 1}]}, "optim": {"name": "sgd", "lr": 1e6},
        "train": {"epochs": 3, "device": "cpu"}}), runs=RunStore(tmp_path)).events())
    assert isinstance(events[-1], RunFailed)
    report = build_report(events[-1].run_dir)
    page = assert_self_contained(report.html)
    text = " ".join(page.text)
    assert "The run failed:" in text and events[-1].reason in text
    assert "Nothing to inspect:" in text and "has no trained weights" in text
    assert report.notes and report.notes[0].startswith("no Inspect pictures:")


def test_a_compressed_run_shows_its_frontier(hostile_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from workbench.core.tools.compress import measure_run

    variants = measure_run(hostile_run)
    assert {v.kind for v in variants} >= {"fp32"}
    report = build_report(hostile_run, samples=[0], per_class=1)
    assert "Compressed variants" in report.pictures
    page = assert_self_contained(report.html)
    assert "Pareto" in "".join(page.text)
    assert Path(hostile_run, "compression.json").is_file()
