"""Nothing crashes when a process ends: the benchmarks that open panels exit 0 after their
work (the app's own exit is tests/test_smoke_mode.py's; the other benchmarks load no Qt).

benchmarks/gui_responsiveness.py used to end every run in a segmentation fault at interpreter
exit (status 139, "Fatal Python error", no Python frame): the live curves' view held itself
through lambdas connected to its own plots, so a view without a parent was never freed, and
PySide's teardown at exit destroyed one of its view boxes first, which freed the view from
inside that view box's destructor.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parent.parent
MNIST_SMALL = ROOT / "resources" / "datasets" / "mnist-small"


def test_a_curves_view_nobody_holds_is_freed(qtbot):
    from workbench.gui.views.curves import CurvesView

    view = CurvesView()
    view.show()
    qtbot.waitExposed(view)
    plot = view.loss_plot
    plot.vb.sigRangeChangedManually.emit([True, True])  # a zoom by hand: the range is held
    assert not view.following[plot]
    plot.autoBtn.clicked.emit(plot.autoBtn)  # the auto-range button: it follows the data again
    assert view.following[plot]
    view.close()
    alive = weakref.ref(view)
    del view, plot
    gc.collect()
    assert alive() is None


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_HOME=str(tmp_path / "home"),
               PYTHONFAULTHANDLER="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


def test_the_gui_benchmark_ends_with_status_0(tmp_path):
    """Its smallest setting: a few training steps through the training panel and beside it,
    and redraws of 1,000-point curves; then the interpreter's exit."""
    done = _run(["benchmarks/gui_responsiveness.py", "--root", str(MNIST_SMALL), "--steps",
                 "10", "--repeats", "1", "--points", "1000", "--json"], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("{")  # its results came first
    assert "Fatal Python error" not in done.stderr


def test_the_redraw_benchmark_ends_with_status_0(tmp_path):
    done = _run(["benchmarks/gui_responsiveness.py", "--redraw-only", "--points", "1000"],
                tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Fatal Python error" not in done.stderr


def test_the_prune_slider_benchmark_ends_with_status_0(tmp_path):
    done = _run(["benchmarks/prune_slider.py", "--root", str(MNIST_SMALL), "--positions", "2"],
                tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Fatal Python error" not in done.stderr
