"""Every chart of the app, with real data, at 1280x800: the window opened as a person does, a
small run of each bundled example trained, and every tool that draws a chart set to work on the
runs (`scripts/gallery.py`, whose steps this test walks without saving pictures). No axis hides
a scale factor, overlaps or cuts its tick labels or title, writes a tick that is not a number,
and no colour that carries a value goes without its scale (`views.axes.chart_problems`).

Also the figures the charts draw beside their sources: the learning-rate preview's steps for the
data in the editor after another dataset was loaded (it kept the spirals' 22 steps for MNIST's
1,688), a file's size read before the preview shows it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
WAIT_MS = 120_000


def _gallery():
    if "gallery" not in sys.modules:
        found = importlib.util.spec_from_file_location("gallery", ROOT / "scripts" / "gallery.py")
        assert found is not None and found.loader is not None
        module = importlib.util.module_from_spec(found)
        sys.modules["gallery"] = module
        found.loader.exec_module(module)
    return sys.modules["gallery"]


def test_every_chart_with_real_data_is_true_and_readable(qtbot):
    gallery = _gallery()
    looked: list[str] = []
    g = gallery.run(None, quick=True, after=lambda name, _g: looked.append(name))
    assert looked == list(gallery.STEPS) and g.count >= 30  # every step, every picture
    assert not g.problems, "\n".join(g.problems)


def test_the_rate_preview_follows_the_data_in_the_editor(qtbot, tmp_path):
    """Spirals loaded, then the MNIST example opened: the preview counts MNIST's training
    samples (its figure stayed the loaded spirals'); a CSV's size is said unknown until the
    file has been read, then counted."""
    from workbench.gui.document import undo

    gallery = _gallery()
    g = gallery.Gallery(None)
    try:
        window, panel = g.window, g.window.optim_panel
        window.editors.setCurrentIndex(1)
        window.data_panel.load()
        g.wait(lambda: not window.data_panel.is_loading())
        assert panel.steps_per_epoch() == 22  # 700 spirals at 32 a batch
        g.open_example("mnist_mlp")
        assert panel.steps_per_epoch() == 1_688
        assert panel.preview_note.text().startswith("1,688 steps per epoch: 54,000 training")
        rows = ["a,b,label"] + [f"{i},{i % 7},{i % 2}" for i in range(500)]
        (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
        spec = window.model.spec()
        spec.data = type(spec.data)(name="csv", path=str(tmp_path / "table.csv"))
        undo.push_spec(window.undo, window.model, spec, "a CSV")  # no event handled yet:
        assert panel.steps_per_epoch() is None  # the file is being read off the GUI thread
        assert panel.preview_note.text().startswith("Steps per epoch unknown")
        qtbot.waitUntil(lambda: panel.steps_per_epoch() is not None, timeout=WAIT_MS)
        assert panel.preview.train_size == 350  # 500 rows less 10% validation, 20% test
        assert panel.steps_per_epoch() == 11
    finally:
        g.finish()
