"""The thread policy: physical cores but one, overridden by the spec, the CLI and the app."""

from __future__ import annotations

import threading

import pytest
import torch

from workbench import spec as specmod
from workbench.core.training.events import RunStarted
from workbench.core.training.loop import Trainer
from workbench.core.training.process import PROCESS, Share
from workbench.core.training.threads import automatic_threads, choose_threads, physical_cores
from workbench.spec import SpecError


def _topology(root, cpu: int, package: int, core: int) -> None:
    folder = root / f"cpu{cpu}" / "topology"
    folder.mkdir(parents=True)
    (folder / "physical_package_id").write_text(f"{package}\n")
    (folder / "core_id").write_text(f"{core}\n")


def test_hyper_threads_of_one_core_count_once(tmp_path):
    for cpu, (package, core) in enumerate([(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0)]):
        _topology(tmp_path, cpu, package, core)
    assert physical_cores(set(range(6)), tmp_path) == 3  # core 0 of package 1 is another core
    assert physical_cores({0, 1}, tmp_path) == 1
    assert physical_cores({0, 7, 8}, tmp_path) == 3  # unreadable topology: a core each
    assert physical_cores(set(), tmp_path) == 1


def test_automatic_threads_leave_a_core():
    assert automatic_threads(1) == 1
    assert automatic_threads(2) == 1
    assert automatic_threads(16) == 15
    assert 1 <= automatic_threads() <= max(1, physical_cores() - 1)


def test_precedence_explicit_then_spec_then_environment_then_automatic(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_threads() == automatic_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads() == 3
    assert choose_threads(spec_threads=5) == 5
    assert choose_threads(7, 5) == 7
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a count: ignored
    assert choose_threads() == automatic_threads()


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "4", 100_000])
def test_the_spec_refuses_a_bad_thread_count(bad):
    with pytest.raises(SpecError, match=r"^train\.threads: "):
        specmod.from_dict({"train": {"threads": bad}})


def test_the_spec_keeps_its_thread_count():
    spec = specmod.from_dict({"train": {"threads": 3}})
    assert specmod.from_json(spec.to_json()).train.threads == 3
    assert specmod.from_dict({}).train.threads is None


@pytest.fixture
def _torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _started(trainer: Trainer) -> RunStarted:
    for event in trainer.events():
        if isinstance(event, RunStarted):
            trainer.stop()
            started = event
    return started


@pytest.mark.usefixtures("_torch_threads")
def test_the_trainer_uses_the_spec_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(3)
    spec = specmod.from_dict({"data": {"name": "moons", "samples": 200},
                              "model": {"layers": [{"type": "Linear", "out": 2}]},
                              "train": {"epochs": 1, "device": "cpu", "threads": 2}})
    assert _started(Trainer(spec, store=False)).device_name == "CPU (2 threads)"
    assert torch.get_num_threads() == 3  # put back when the run ends
    started = _started(Trainer(spec, store=False, threads=1))  # the CLI's --threads wins
    assert started.device_name == "CPU (1 thread)"
    spec.train.threads = None
    started = _started(Trainer(spec, store=False))
    n = automatic_threads()
    assert started.device_name == f"CPU ({n} thread{'s' if n > 1 else ''})"
    assert torch.get_num_threads() == 3


@pytest.mark.usefixtures("_torch_threads")
def test_overlapping_jobs_share_one_thread_count_and_the_last_puts_it_back():
    """The first job sets the count; one that arrives while it runs trains with it and is
    told so; nothing changes under a running job, and the last puts back what was found."""
    torch.set_num_threads(3)
    with PROCESS.threads(1) as first:
        assert first == Share(1) and torch.get_num_threads() == 1
        seen: list = []
        thread = threading.Thread(target=lambda: _hold(seen, 2))
        thread.start()
        thread.join(timeout=60)
        share, jobs, note, threads = seen[0]
        assert share.value == 1 and "1 CPU thread instead of 2" in (share.note or "")
        assert jobs == 2 and "2 jobs share this process" in (note or "") and threads == 1
        assert torch.get_num_threads() == 1
        assert PROCESS.jobs == 1
    assert torch.get_num_threads() == 3 and PROCESS.jobs == 0 and PROCESS.note is None


def _hold(seen: list, wanted: int) -> None:
    with PROCESS.threads(wanted) as share:
        seen.append((share, PROCESS.jobs, PROCESS.note, torch.get_num_threads()))


def test_the_app_sets_and_clears_the_thread_count(qtbot):
    pytest.importorskip("PySide6")
    from PySide6.QtGui import QUndoStack

    from workbench.gui.document.experiment_model import ExperimentModel
    from workbench.gui.editors.optim_panel import OptimPanel

    model = ExperimentModel(specmod.ExperimentSpec())
    stack = QUndoStack()
    panel = OptimPanel(model, stack)
    qtbot.addWidget(panel)
    assert not panel.threads_on.isChecked() and not panel.threads.isEnabled()
    assert panel.threads.value() == automatic_threads()
    panel.threads_on.setChecked(True)
    panel.threads.setValue(3)
    assert model.live.train.threads == 3
    stack.undo()
    stack.undo()
    assert model.live.train.threads is None and not panel.threads_on.isChecked()
    assert str(automatic_threads()) in panel.threads_on.toolTip()
