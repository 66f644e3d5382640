"""Smoke mode on the source tree: `WORKBENCH_SMOKE=1 python -m workbench` opens the window,
trains the bundled example for one epoch through the Train button, prints one JSON line and
exits 0. packaging/smoke_test.sh runs the same mode on the built app.

A fresh interpreter imports torch and trains a small CNN for an epoch: 8 s on two idle cores
(40 s when they are busy), so it stays in the default run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_mode_trains_one_epoch_and_exits_0(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_SMOKE="1",
               WORKBENCH_SMOKE_T0=repr(time.time()), WORKBENCH_HOME=str(tmp_path / "home"))
    result = subprocess.run([sys.executable, "-m", "workbench"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(lines) == 1, result.stdout
    report = json.loads(lines[0])
    assert report["ok"] is True
    assert report["epochs"] == 1
    assert report["train_size"] == 4500  # the bundled mnist_small, less its validation share
    assert report["test_accuracy"] > 0.5
    assert report["window_s"] <= report["torch_ready_s"] <= report["total_s"]
    assert report["frozen_objects"] > 100_000  # torch, Qt and the window: out of the GC's walk
    assert Path(report["run_dir"]).is_relative_to(tmp_path / "home")
    assert "Traceback" not in result.stderr, result.stderr


def test_app_icon_has_every_size(qapp):
    from workbench.gui.widgets.icon import ICON_SIZES, app_icon

    icon = app_icon()
    assert not icon.isNull()
    assert {size.width() for size in icon.availableSizes()} == set(ICON_SIZES)
