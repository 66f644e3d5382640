"""What the app's panels decide, tested without Qt: the Qt-free presenters beside each panel
(which runs a tool takes and why not, what a setting means, the numbers a panel shows), on real
small runs and data. No QApplication, no qtbot: a presenter that needs one fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench import spec as specmod
from workbench.core.memory import DeviceMemory
from workbench.core.model import analyze
from workbench.core.store.errors import RunError
from workbench.core.store.runs import RunInfo, RunStatus, RunStore
from workbench.core.tools.compare import Curves, ResultRow
from workbench.core.tools.fork import plan_fork
from workbench.core.training.loop import Trainer
from workbench.core.workspace import Workspace
from workbench.gui import run_rules
from workbench.gui.editors import data_presenter, model_presenter
from workbench.gui.shell import presenter as shell
from workbench.gui.tools import registry
from workbench.gui.tools.compare import presenter as compare
from workbench.gui.tools.compress import presenter as compress
from workbench.gui.tools.fork import presenter as fork
from workbench.gui.tools.prune import presenter as prune
from workbench.gui.train import presenter as train
from workbench.spec import SpecError
from workbench.spec.datasets import DATASETS

QT_FREE = ["workbench.gui.run_rules", "workbench.gui.tools.registry", "workbench.gui.tools.host",
           "workbench.gui.shell.presenter", "workbench.gui.editors.data_presenter",
           "workbench.gui.editors.model_presenter", "workbench.gui.editors.optim_presenter",
           "workbench.gui.train.presenter",
           "workbench.gui.tools.compare.presenter", "workbench.gui.tools.compress.presenter",
           "workbench.gui.tools.prune.presenter", "workbench.gui.tools.fork.presenter",
           "workbench.gui.tools.search.presenter", "workbench.gui.tools.inspect.presenter"]


def moons(epochs: int = 3) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "moons-mlp",
        "data": {"name": "moons", "samples": 200, "noise": 0.15},
        "model": {"layers": [{"type": "Linear", "out": 8}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": epochs, "batch_size": 32, "seed": 0, "device": "cpu"},
    })


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    """A store with a finished run (checkpoints every epoch), a failed one and a created one."""
    runs = RunStore(tmp_path_factory.mktemp("runs"))
    list(Trainer(moons(), runs=runs, threads=1).events())
    failed = runs.create(moons())
    failed.update_summary(status=RunStatus.FAILED, error="loss became NaN")
    runs.create(moons().with_value("name", "just-made"))
    return runs


def infos_by_status(store: RunStore) -> dict[str, object]:
    return {info.status: info for info in store.list()}


def test_the_presenters_import_no_qt():
    """Each presenter loads in a fresh interpreter without PySide6 or pyqtgraph."""
    code = ("import sys, importlib\n"
            f"for name in {QT_FREE!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError as exc:\n"
            "        if 'optuna' not in str(exc): raise\n"
            "qt = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'shiboken6'))\n"
            "print(qt)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- what the app offers on a run ------------------------------------------------------------

def test_run_rules_say_which_runs_a_tool_takes_and_why_not(store):
    by = infos_by_status(store)
    finished, failed = by[RunStatus.FINISHED], by[RunStatus.FAILED]
    created = by[RunStatus.CREATED]
    assert run_rules.has_model(finished) is None
    assert "failed" in run_rules.has_model(failed)
    assert "still training" in run_rules.has_model(created)
    assert run_rules.why_not("prune", finished, "model") is None
    assert run_rules.why_not("prune", failed, "model") == run_rules.has_model(failed)
    assert run_rules.why_not("compare", failed, "ended") is None  # its curves can be drawn
    assert "still training" in run_rules.why_not("compare", created, "ended")
    assert "finished" in run_rules.why_not("resume", finished)
    assert "checkpoint" in run_rules.why_not("resume", failed)  # failed before any
    assert "stop it first" in run_rules.why_not("delete", created)
    assert run_rules.why_not("open", None) == "select a run in the list first"
    # a tool on trained models opens on the selected run when it has one, else the newest
    assert run_rules.run_for_tool(failed, store.list()).path == finished.path
    assert run_rules.run_for_tool(finished, [failed]) is finished
    assert run_rules.run_for_tool(None, [failed, created]) is None
    assert run_rules.run_to_resume(None, store.list()) is None  # nothing stopped midway
    assert run_rules.result_text(finished.summary).endswith("% test")
    assert run_rules.run_titles([finished])[0].startswith("moons-mlp · test ")


def test_runs_that_share_a_name_say_what_differs(tmp_path):
    """Three rows reading "spirals · finished · 07 Dec 01:44" could not be told apart: each
    label names what differs (rate, trial, fork epoch, parent), else the folder's short id."""
    def info(folder: str, **summary) -> RunInfo:
        return RunInfo(tmp_path / folder, {"name": "spirals", "optimizer": "adam",
                                           "dataset": "spirals", **summary})

    same = [info("20261207-0144-spirals-aaaaaa", lr=0.02),
            info("20261207-0143-spirals-bbbbbb", lr=0.05),
            info("20261207-0142-spirals-cccccc", lr=0.02)]
    assert run_rules.run_labels(same) == ["spirals · lr 0.02 #aaaaaa", "spirals · lr 0.05",
                                          "spirals · lr 0.02 #cccccc"]
    alike = [info("a-111111"), info("b-222222")]  # nothing differs: the short ids do
    assert run_rules.run_labels(alike) == ["spirals #111111", "spirals #222222"]
    family = [info("p-parent", lr=0.02),
              info("f-fork01", lr=0.02, parent=str(tmp_path / "p-parent"), fork_epoch=2),
              info("t-trial3", lr=0.02, trial=3), info("t-trial4", lr=0.02, trial=4),
              RunInfo(tmp_path / "other-run", {"name": "mnist", "optimizer": "sgd"})]
    assert run_rules.run_labels(family) == [
        "spirals", "spirals · fork at epoch 2, from parent", "spirals · trial 3",
        "spirals · trial 4", "mnist"]
    damaged = RunInfo(tmp_path / "20261207-broken-dddddd", {}, "summary.json: missing")
    assert run_rules.run_labels([damaged, *alike])[0] == "20261207-broken-dddddd"
    titles = run_rules.run_titles(alike)
    assert titles[0] != titles[1] and titles[0].startswith("spirals #111111")


def test_the_runs_list_offers_what_the_registry_declares():
    actions = shell.list_actions()
    keys = [a.key for a in actions]
    declared = [t.key for t in registry.TOOLS if t.run_action is not None]
    assert keys[:2] == ["open", "resume"] and keys[-2:] == ["folder", "delete"]
    assert sorted(keys[2:-2]) == sorted(declared)
    primary = [a.key for a in actions if a.primary]
    assert primary == ["open", "resume", "prune", "export"]  # the buttons under the list
    # one more tool with a run action: one more item, from its declaration alone
    extra = registry.ToolEntry("inspect", "Inspect", "&Inspect…", "x.y:Inspect",
                               run_action=registry.RunAction("Inspect…", "Look inside",
                                                             needs="model"))
    offered = {a.key: a for a in shell.list_actions((*registry.TOOLS, extra))}
    assert offered["inspect"].needs == "model" and not offered["inspect"].primary


def test_every_declared_tool_keeps_the_protocol():
    keys = [t.key for t in registry.TOOLS]
    assert len(keys) == len(set(keys))
    for tool in registry.TOOLS:
        assert tool.available(), tool.key
        cls = tool.load()
        assert issubclass(cls, registry.Tool)
        assert cls.open_tool.__func__ is not registry.Tool.open_tool.__func__, tool.key
        if tool.run_action is not None or tool.starts_on is not None:  # it opens on runs
            assert cls.show_run is not registry.Tool.show_run, tool.key
    with pytest.raises(KeyError, match="prune"):
        registry.entry("nothing")


def test_the_shell_presenter(tmp_path):
    assert shell.window_title(None, None) == "untitled[*] — Workbench"
    assert shell.window_title(None, "MNIST (example)") == "MNIST (example)[*] — Workbench"
    assert shell.window_title(tmp_path / "a.json", "ignored") == "a.json[*] — Workbench"
    assert shell.suggested_file_name("my/net: v2") == "my-net- v2.json"
    assert shell.suggested_file_name("  ") == "experiment.json"
    assert shell.blocked_reason("shape problem", moons(), "memory") == "shape problem"
    bad = moons()
    bad.optim.lr = -1.0
    assert "optim.lr" in shell.blocked_reason(None, bad, "memory")
    assert shell.blocked_reason(None, moons(), None) is None
    assert shell.device_text(None) == "still looking" and "CPU" in shell.device_text("")


# -- the editors -------------------------------------------------------------------------------

def test_the_data_presenter_on_real_data(tmp_path):
    assert data_presenter.visible_options(DATASETS["moons"])["noise"]
    csv = data_presenter.visible_options(DATASETS["csv"])
    assert csv["path"] and csv["label"] and not csv["samples"]
    mnist = DATASETS["mnist"]
    assert data_presenter.needs_download(mnist, moons().data.__class__(name="mnist"))
    assert not data_presenter.needs_download(
        mnist, moons().data.__class__(name="mnist", root=str(tmp_path)))
    splits = Workspace(tmp_path / "runs").splits(moons().data, 0)
    counts = data_presenter.class_counts(splits)
    assert len(counts) == 2 and sum(counts) == len(splits.train_x)
    assert "2 classes" in data_presenter.summary_text(splits)
    assert data_presenter.class_counts(None) == []
    assert data_presenter.progress_text(3 * 2**20, 10 * 2**20) == "3.0 of 10.0 MB"
    assert data_presenter.progress_text(5, 10) == "5 of 10"


def test_the_model_presenter_says_what_fits():
    mnist = model_presenter.catalogue_shape(specmod.DataSpec(name="mnist"))
    assert mnist.input_shape == (1, 28, 28) and mnist.num_classes == 10
    csv = model_presenter.catalogue_shape(specmod.DataSpec(name="csv"))
    assert csv.problem and "data.path" in csv.problem
    assert model_presenter.catalogue_shape(specmod.DataSpec(name="csv", path="x.csv")) is None
    assert model_presenter.templates(3)["MLP"][-1].params["out"] == 3
    assert model_presenter.templates(0)["MLP"][-1].params["out"] == 1  # regression
    assert model_presenter.input_text((2,), 2) == "Input: 2 features · 2 classes"
    assert model_presenter.human(1_500_000) == "1.5 M"
    spec = moons()
    report = analyze(spec.model.layers, (2,), 2)
    shape = model_presenter.DataShape((2,), 2, 200)
    estimate, line, problem = model_presenter.memory_check(
        spec, report, shape, DeviceMemory("the CPU", 2**34))
    assert problem is None and line.startswith("Memory to train: about ")
    _, line, problem = model_presenter.memory_check(spec, report, shape,
                                                    DeviceMemory("the CPU", 10))
    assert line == "" and problem and "the CPU" in problem
    assert estimate.total > 0


def test_the_rate_preview_counts_the_steps_the_trainer_takes(tmp_path):
    """The preview's steps per epoch are the trainer's, for the data in the editor: a set
    whose last batch would hold one sample (the trainer drops it), full-batch descent, and
    the catalogue's MNIST (1,688 at batch 32, whatever data was loaded before)."""
    from workbench.core.training.events import RunStarted
    from workbench.gui.editors import optim_presenter
    from workbench.spec.datasets import split_sizes

    def with_(samples: int, optim: str = "adam") -> specmod.ExperimentSpec:
        spec = moons(epochs=1)
        spec.data.samples = samples
        spec.optim.name = optim
        return spec

    one_left = next(n for n in range(200, 400)
                    if split_sizes(n, 0.1, 0.2)[0] % 32 == 1)  # a last batch of one sample
    for i, spec in enumerate((with_(200), with_(one_left), with_(300, "gd"))):
        preview = optim_presenter.lr_preview(spec, model_presenter.catalogue_shape(spec.data))
        events = list(Trainer(spec, runs=RunStore(tmp_path / str(i)), threads=1).events())
        started = next(e for e in events if isinstance(e, RunStarted))
        assert (preview.train_size, preview.steps) == (started.train_size,
                                                       started.steps_per_epoch), spec.data
        assert len(preview.xs) == len(preview.ys) and preview.xs[-1] == spec.train.epochs
    # the curve is the rate each step trains with: cosine after 1 warm-up epoch of 2 falls
    # every step to near its final rate (it sat flat through epoch 2 when it moved per epoch)
    spec = with_(2000)
    spec.train.epochs = 2
    spec.schedule.name, spec.schedule.warmup_epochs, spec.schedule.min_lr = "cosine", 1.0, 0.0
    preview = optim_presenter.lr_preview(spec, model_presenter.catalogue_shape(spec.data))
    events = list(Trainer(spec, runs=RunStore(tmp_path / "cosine"), threads=1).events())
    reported = [(e.global_step, e.lr) for e in events if type(e).__name__ == "Progress"]
    assert len(reported) >= 2  # at least each epoch's end
    for step, lr in reported:  # a report's rate is its last step's
        assert preview.ys[step - 1] == pytest.approx(lr)
    second = preview.ys[preview.steps:-1]  # the last point repeats the last step to the end
    assert all(a > b for a, b in zip(second, second[1:], strict=False))
    assert preview.ys[-1] < 0.02 * spec.optim.lr
    mnist = specmod.load(Path(__file__).resolve().parent.parent / "resources" / "examples"
                         / "mnist_mlp.json")
    preview = optim_presenter.lr_preview(mnist, model_presenter.catalogue_shape(mnist.data))
    assert (preview.train_size, preview.steps) == (54_000, 1_688)
    assert preview.note.startswith("1,688 steps per epoch: 54,000 training samples")
    csv = specmod.DataSpec(name="csv", path="table.csv")
    reading = model_presenter.DataShape(None, None, problem=model_presenter.READING)
    unknown = optim_presenter.lr_preview(replace(moons(), data=csv), reading)
    assert unknown.steps is None and unknown.xs == ()
    assert unknown.note == f"Steps per epoch unknown:\n{model_presenter.READING}"


# -- the training view -------------------------------------------------------------------------

def test_the_train_presenter_reads_a_stored_run(store, tmp_path):
    finished = infos_by_status(store)[RunStatus.FINISHED]
    stored = train.read_stored(finished.path)
    assert stored.branch is None and stored.parent_series is None
    xs, _ = stored.series.points("epochs", "epoch", "val_loss")
    assert list(xs) == [1.0, 2.0, 3.0]
    assert stored.progress_text() == "Stored run moons-mlp: finished after 3 epochs"
    with pytest.raises(RunError):
        train.read_stored(tmp_path / "nowhere")
    assert train.format_seconds(65) == "1:05"
    assert train.run_caption(finished.path, "moons-mlp") == f"moons-mlp ({finished.name[-6:]})"


# -- the tools ---------------------------------------------------------------------------------

def test_the_compare_presenter_builds_variants_and_reads_runs(store, tmp_path):
    variants = compare.build_variants(moons(), {"sgd": 0.1, "adam": 0.01}, "train.batch_size",
                                      "16, 64")
    assert len(variants) == 4
    assert {(v.spec.optim.name, v.spec.optim.lr, v.spec.train.batch_size)
            for v in variants} == {("sgd", 0.1, 16), ("sgd", 0.1, 64), ("adam", 0.01, 16),
                                   ("adam", 0.01, 64)}
    with pytest.raises(SpecError, match="tick at least one optimizer"):
        compare.build_variants(moons(), {}, compare.NOTHING, "")
    with pytest.raises(SpecError, match="train.batch_size"):
        compare.build_variants(moons(), {}, "train.batch_size", " , ")
    twins = compare.build_variants(moons(), {"sgd": 0.1}, compare.NOTHING, "")
    compare.label_apart(twins, ["sgd"])
    assert twins[0].label == "sgd #2"
    # an optimizer the person gave no rate of its own trains at the experiment's
    own = compare.build_variants(moons(), {"sgd": None, "adam": None, "rmsprop": 0.005},
                                 compare.NOTHING, "")
    assert [(v.spec.optim.name, v.spec.optim.lr) for v in own] == [
        ("sgd", moons().optim.lr), ("adam", moons().optim.lr), ("rmsprop", 0.005)]
    row = ResultRow(label="a", status="finished", run_dir=None, best_val_accuracy=0.5,
                    final_val_accuracy=None, final_train_loss=float("nan"),
                    final_val_loss=0.25, epochs_to_target=None, seconds_to_target=None,
                    seconds_per_epoch=0.00041, seconds=2.0, diverged=False,
                    first_batch_loss=None, lr=0.02)
    cells = compare.row_cells(row)
    assert cells[2] == (0.02, "0.02") and cells[3] == (0.5, "50.00%")
    assert cells[4] == (None, "-") and cells[5][1] == "-"
    assert cells[9] == (0.00041, "0.41 ms") and cells[10] == (2.0, "2.00 s")  # never 0.0
    assert compare.target_headers(0.9) == ("epochs to 90%", "time to 90%")
    failed = ResultRow(**{**row.to_dict(), "label": "b", "status": "failed",
                          "reason": "boom: a bug"})
    text = compare.ended_text([row, failed], None, "c.json")
    assert text == "Done with failures (1 finished, 1 failed). b failed: boom: a bug. " \
                   "Saved as c.json."
    assert compare.ended_text([row], "it broke", None).startswith(
        "The comparison stopped on an error: it broke.")
    series = {"global_step": [1, 2, 3, 4], "epoch": [1, 1, 2, 2], "train_loss": [4, 3, 2, 1]}
    assert compare.new_points(series, "train_loss", "epoch", 1, None) == ([1, 2, 2], [3, 2, 1])
    assert compare.new_points(series, "train_loss", "global_step", 0, 3) == ([3, 4], [2, 1])
    finished = str(infos_by_status(store)[RunStatus.FINISHED].path)
    loaded, problems = compare.read_runs([finished, str(tmp_path / "gone")], [])
    assert [run_dir for run_dir, _spec, _curves, _branch in loaded] == [finished]
    assert isinstance(loaded[0][2], Curves) and len(problems) == 1
    assert compare.fork_of(finished) is None


def test_the_fork_presenter_plans_from_real_checkpoints(store):
    finished = infos_by_status(store)[RunStatus.FINISHED]
    found = fork.with_checkpoints(store.list())
    assert [(info.path, epochs) for info, epochs in found] == [(finished.path, [1, 2, 3])]
    changed = moons().with_value("optim.lr", 0.001).with_value("name", "other")
    assert fork.editor_changes(str(finished.path), changed) == {"optim.lr": 0.001}
    plan = plan_fork(str(finished.path), 2, {"optim.lr": 0.001})
    text = fork.plan_text(plan)
    assert text.startswith("Continues from the end of epoch 2 to epoch 3 with optim.lr = 0.001")
    assert fork.value_text(None) == "null" and fork.value_text("adam") == "adam"


def _variant(kind: str, size: int, accuracy: float | None, *, pruned: bool = False,
             refused: str | None = None, loss: float = 0.5) -> SimpleNamespace:
    measured = SimpleNamespace(bytes=size, latency_ms=1.0, latency_ms_256=20.0,
                               test_accuracy=accuracy, val_accuracy=accuracy, test_loss=loss,
                               agreement=0.99)
    quality = accuracy if accuracy is not None else -loss
    return SimpleNamespace(kind=kind, measured=measured, quality=quality, refused=refused,
                           pruning={"amount": 0.5} if pruned else None,
                           label=f"{kind} {size}", run_name="run-abcdef", run_dir="/r")


def test_the_compress_presenter_places_and_marks_variants():
    variants = [_variant("fp32", 4096, 0.9), _variant("int8-dynamic", 1024, 0.88, pruned=True),
                _variant("fp16", 2048, 0.2, refused="lost 70 points"),
                _variant("fp32", 0, 0.9)]  # nothing measured: a log axis cannot place it
    spots = compress.frontier_spots(variants, "bytes")
    assert [s.index for s in spots] == [0, 1, 2]
    assert spots[0].x == pytest.approx(0.60206) and spots[0].y == pytest.approx(90.0)
    assert spots[1].pruned and spots[2].refused and not spots[0].refused
    xs, ys = compress.front_line(variants[:2], "bytes", regression=False)
    assert ys == pytest.approx([90.0, 88.0])
    regression = [_variant("fp32", 1024, None, loss=0.3)]
    assert compress.is_regression(regression)
    assert compress.frontier_spots(regression, "bytes")[0].y == pytest.approx(-0.3)
    text = compress.describe(variants[2])
    assert "size 2.0 KB" in text and "refused: lost 70 points" in text
    assert compress.family_text([]).startswith("Not measured yet")
    assert "3 variants of 1 run " in compress.family_text(variants[:3])
    infos = [RunInfo(Path("/runs/20260101-a1b2c3"), {"status": "finished", "name": "net",
                                                     "test_accuracy": 0.95}),
             RunInfo(Path("/runs/20260101-d4e5f6"), {"status": "finished", "name": "net"}),
             RunInfo(Path("/runs/f"), {"status": "failed"})]
    assert compress.picker_items(infos) == [  # the pickers' one rule: alike runs told apart
        ("/runs/20260101-a1b2c3", "net #a1b2c3 · test 95.0%"),
        ("/runs/20260101-d4e5f6", "net #d4e5f6")]
    assert compress.EXPORT_MODES.get("fp32") is None  # a float variant exports unquantized


def test_the_prune_presenter_describes_the_controls():
    layers = [SimpleNamespace(index=1, is_output=False), SimpleNamespace(index=3, is_output=True)]
    session = SimpleNamespace(layers=layers, structured_layers=layers[:1])
    config = prune.prune_config(session, 40, per_layer=False, structured=True, l2=True,
                                layer_percents={1: 10, 3: 20})
    assert config.amount == 0.4 and config.structured and config.norm == "l2"
    assert not config.per_layer
    config = prune.prune_config(session, 40, per_layer=True, structured=True, l2=False,
                                layer_percents={1: 10, 3: 20})
    assert config.per_layer == {1: 0.1}  # the output layer keeps its units
    config = prune.prune_config(session, 40, per_layer=True, structured=False, l2=False,
                                layer_percents={1: 10, 3: 20})
    assert config.per_layer == {1: 0.1, 3: 0.2}
    assert prune.keeps_units(layers[1], True) and not prune.keeps_units(layers[1], False)
    baseline = SimpleNamespace(val_accuracy=0.9, val_loss=0.3)
    result = SimpleNamespace(val_accuracy=0.85, val_loss=0.4, sparsity=0.5, params_after=50,
                             params_before=100)
    text = prune.result_text(result, baseline)
    assert text.startswith("val accuracy 85.0% (-5.0 points)") and "50 of 100 parameters" in text
    point = SimpleNamespace(amount=0.3, val_accuracy=None, val_loss=0.7)
    assert prune.sweep_point(point) == (30.0, 0.7)


def test_the_search_presenter_follows_a_search():
    pytest.importorskip("optuna")
    from workbench.core.tools.search import (
        StudyOpened,
        TrialEnded,
        TrialEvent,
        TrialRow,
        TrialStarted,
        parse_space,
    )
    from workbench.core.training.events import EpochEnded
    from workbench.gui.tools.search import presenter as search

    # layers as the editor numbers them, also for a space written with the document's index
    assert "model.layer1.out" in search.suggested_fields(moons())
    assert "model.layer3.out" in search.suggested_fields(moons())
    assert "model.layer1.out" in search.default_space(moons())["params"]
    assert search.params_text({"model.layers[0].out": 8, "optim.lr": 0.01}) == \
        "model.layer1.out = 8, optim.lr = 0.01"
    assert search.shown_importance({"model.layers[2].out": 0.5}) == {"model.layer3.out": 0.5}
    for value in (0.001, 16, True, "adam", [1, 2]):
        assert search.cell_value(search.cell_text(value)) == value
    space = parse_space({"params": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1,
                                                 "log": True},
                                    "optim.name": {"type": "categorical",
                                                   "choices": ["sgd", "adam", "rmsprop"]}}})
    state = search.SearchState(space=space)
    redraw, status = state.apply(StudyOpened("s", "sqlite://", "val_accuracy", "maximize", 3, ()))
    assert redraw == "all" and "0 of 3 trials" in status
    assert state.apply(TrialStarted(0, {"optim.lr": 1e-3, "optim.name": "adam"}))[0] == "table"
    epoch = EpochEnded(epoch=1, global_step=7, train_loss=0.5, train_accuracy=0.8,
                       val_loss=0.4, val_accuracy=0.75, lr=1e-3, grad_norm=1.0,
                       samples_per_sec=100.0, epoch_seconds=0.1, elapsed=0.1)
    state.apply(TrialEvent(0, epoch))
    assert state.rows[0].value == 0.75 and state.rows[0].epochs == 1
    assert state.best_row() is None  # still running
    done = [TrialRow(0, "complete", 0.75, {"optim.lr": 1e-3, "optim.name": "adam"}, "/r0"),
            TrialRow(1, "complete", 0.9, {"optim.lr": 1e-2, "optim.name": "rmsprop"}, "/r1"),
            TrialRow(2, "pruned", 0.5, {"optim.lr": 1e-4, "optim.name": "sgd"}, "/r2")]
    for row in done:
        assert state.apply(TrialEnded(row))[0] == "all"
    assert state.best_row().number == 1
    headers, table = state.table()
    assert headers == ["#", "state", "val_accuracy", "epochs", "optim.lr", "optim.name", "run"]
    assert table[1][1] == ["1", "complete", "0.9000", "0", "0.01", "rmsprop", "r1"]
    names, lines = state.parallel_lines()
    assert names == ["optim.lr", "optim.name", "val_accuracy"]
    scaled = {row.number: ys for row, ys in lines}
    assert scaled[0][0] == pytest.approx(1 / 3)  # 1e-3 on a log axis from 1e-4 to 1e-1
    assert scaled[1][1] == pytest.approx(1.0) and scaled[2][1] == pytest.approx(0.0)
    assert scaled[1][2] == pytest.approx(1.0) and scaled[2][2] == pytest.approx(0.0)
    assert state.parallel_ends(names, lines)[0] == ("0.0001", "0.1")
    assert state.shade(scaled[1][2], lines) == 1.0
    state.direction = "minimize"
    assert state.best_row().number == 0 and state.shade(scaled[1][2], lines) == 0.0
    assert replace(done[0], state="failed") not in state.completed()
    indexed = search.SearchState(rows={0: TrialRow(0, "complete", 0.5,
                                                   {"model.layers[0].out": 8}, "/r")})
    assert indexed.table()[0][4] == "model.layer1.out"
    # a search that gave up says so, and why
    from workbench.core.tools.search import SearchResult

    gave_up = SearchResult("s", "sqlite://", "val_accuracy", "maximize", list(done),
                           gave_up="5 trials in a row failed (the last: loss became NaN)")
    text = search.result_text(gave_up)
    assert text.startswith("Gave up:") and "5 trials in a row failed" in text
    assert search.result_text(replace(gave_up, gave_up=None)).startswith("Done:")


def test_the_shell_presenter_picks_the_run_to_report_and_words_the_launch(store, tmp_path):
    infos = store.list()
    finished = next(i for i in infos if i.status == RunStatus.FINISHED)
    failed = next(i for i in infos if i.status == RunStatus.FAILED)
    created = next(i for i in infos if i.status == RunStatus.CREATED)
    # the selected run once it has ended (a failed run's report says why), else the one the
    # training view shows, else the newest that ended; never one still training
    assert shell.report_run(failed, None, infos) == str(failed.path)
    assert shell.report_run(created, str(finished.path), infos) == str(finished.path)
    assert shell.report_run(created, None, infos) in {str(finished.path), str(failed.path)}
    assert shell.report_run(None, None, [created]) is None
    assert shell.report_file_name("/runs/20261201-1016-spirals-befcf5") == \
        "20261201-1016-spirals-befcf5-report.html"
    assert shell.sbatch_file_name("my/net") == "my-net.sbatch"
    two = shell.launch_note(2, tmp_path / "runs", tmp_path / "exp.json", None, "spirals")
    assert "each of the 2 machines" in two and "no --node-rank" in two
    assert "the data" not in two  # generated on every node from the seed
    mnist = shell.launch_note(1, tmp_path, tmp_path / "e.json", None, "mnist")
    assert "each node downloads it" in mnist
    assert "the data in /data" in shell.launch_note(1, tmp_path, tmp_path, "/data", "mnist")


def test_the_data_presenter_words_a_csv_target_and_resets_it_off_csv(tmp_path):
    from workbench.core.data.tables import read_csv

    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{k},{3 * k + 2}\n" for k in range(40)))
    auto = read_csv(path).target
    assert data_presenter.target_text(auto) == \
        "Guess: ‘y’ is a quantity (regression): 40 distinct whole numbers (2 to 119)."
    assert "more than 20 values" in data_presenter.target_reason(auto)
    declared = read_csv(path, target="category").target
    assert data_presenter.target_text(declared).startswith(
        "Declared categories (40 classes); the guess is a quantity: 40 distinct")
    same = read_csv(path, target="quantity").target
    assert data_presenter.target_text(same).startswith("Declared a quantity (regression), "
                                                       "as guessed")
    assert data_presenter.target_text(None).startswith("How the column reads")
    assert data_presenter.with_dataset("moons", "quantity") == {"data.target": "auto"}
    assert data_presenter.with_dataset("csv", "quantity") == {}
    assert data_presenter.with_dataset("moons", "auto") == {}
    assert data_presenter.visible_options(DATASETS["csv"])["target"]
    assert not data_presenter.visible_options(DATASETS["moons"])["target"]


def test_the_inspect_presenter_on_a_trained_run(store):
    import threading

    import numpy as np

    from workbench.core.tools.inspect.render import symmetric_top
    from workbench.gui.tools.inspect import presenter as inspect

    run = next(i for i in store.list() if i.status == RunStatus.FINISHED)
    said: list[str] = []
    cancel = threading.Event()
    ov = inspect.open_overview(None, str(run.path), said.append, cancel)
    assert said[0].startswith("loading") and ov.task == "classification"
    assert ov.test_size == 40 and ov.feature_names == ("x1", "x2") and not ov.image_input
    reasons = inspect.page_reasons(ov)
    assert reasons["layers"] is None and reasons["sample"] is None
    assert reasons["classes"] is None and "hidden layer" in reasons["equation"]
    wrong = ov.predictions.misclassified()
    assert f"{len(wrong)} misclassified" in inspect.run_text(ov)
    items = inspect.misclassified_items(ov)
    assert [index for _text, index in items] == [i for i, _t, _p in wrong]
    if items:
        index, true, answer = wrong[0]
        assert items[0][0].startswith(f"#{index}: {true} → {answer} (")
    # a sample, explained; its answer and probabilities in words
    s = inspect.sample_work(ov.inspection, 0, None, cancel)
    assert inspect.answer_text(s).startswith("Test sample 0: answered “")
    rows, title = inspect.probability_rows(s)
    assert [r[0] for r in rows] == ["0", "1"] and sum(r[1] for r in rows) == \
        pytest.approx(1.0) and "answer in red" in title
    assert sum(r[2] for r in rows) == 1 and sum(r[3] for r in rows) == 1
    many = SimpleNamespace(probabilities=np.linspace(0, 1, 30) / 15, class_names=tuple(
        str(k) for k in range(30)), predicted=29, truth=0)
    rows, title = inspect.probability_rows(many, limit=5)
    assert [r[0] for r in rows] == ["29", "28", "27", "26", "0"] and "true one" in title
    assert inspect.activation_text(s.activations[1]).startswith("2 ReLU: 8 values, mean ")
    bars = inspect.feature_bars(s, ov.feature_names)
    assert [b[0] for b in bars] == ["input, in its own units", "Saliency",
                                    "Integrated Gradients"]
    # the first layer, coloured per standard deviation, written per unit of the data
    grid = inspect.weight_grid(ov.first_layer, raw=False)
    raw = inspect.weight_grid(ov.first_layer, raw=True)
    assert grid.columns == ("x1", "x2") and grid.rows[0] == "unit 1"
    assert np.array_equal(grid.colours, raw.colours) and not np.array_equal(grid.cells,
                                                                            raw.cells)
    assert grid.levels == (-symmetric_top(grid.colours), symmetric_top(grid.colours))
    # each layer over the plane: row 0 drawn at the top is the plane's top
    layers = inspect.neuron_views(ov.neurons)
    assert [title for title, _maps in layers][0] == "2 ReLU"
    first = layers[0][1][0]
    assert np.array_equal(first.values[0], ov.neurons.layers[0].maps[0][-1])
    assert first.scale == "sequential" and first.levels[0] == pytest.approx(0.0, abs=1e-6)
    assert inspect.plane_text(ov.neurons).startswith("Each square is the plane: x1 from")
    classes = inspect.classes_work(ov.inspection, said.append, cancel)
    assert said[-1] == (sum(classes.counts), sum(classes.counts))
    table = inspect.class_grid(classes, ov.feature_names)
    assert table.rows[0].startswith("0 (n=") and table.levels[0] == -table.levels[1]


def test_the_inspect_presenters_colour_scales_and_the_value_under_the_pointer():
    import numpy as np

    from workbench.gui.tools.inspect import presenter as inspect

    values = np.array([[-2.0, 1.0], [0.5, 4.0]])
    signed = inspect.diverging("map", values, "weight")
    assert signed.levels == (-4.0, 4.0) and not signed.clipped and signed.scale == "diverging"
    spread = np.r_[np.linspace(-1, 1, 999), 50.0].reshape(40, 25)
    robust = inspect.diverging("w", spread, "weight", quantile=0.99)
    assert robust.clipped and robust.levels[1] < 50
    sizes = inspect.sequential("s", np.array([[0.0, 0.2], [0.1, np.nan]]), "attribution")
    assert sizes.levels == (0.0, 0.2) and sizes.at(1, 1) is None
    assert sizes.at(0, 1) == "s: row 1, column 2: attribution 0.2"
    assert sizes.at(5, 0) is None
    # a mosaic of 5 tiles of 2x3 in 3 columns, a pixel between them
    assert inspect.tile_at(0, 0, 5, 2, 3, 3) == (0, 0, 0)
    assert inspect.tile_at(1, 6, 5, 2, 3, 3) == (1, 1, 2)
    assert inspect.tile_at(2, 0, 5, 2, 3, 3) is None  # the gap between rows
    assert inspect.tile_at(3, 9, 5, 2, 3, 3) is None  # past the fifth tile
    assert inspect.tile_at(3, 4, 5, 2, 3, 3) == (4, 0, 0)
    tiles = np.arange(5 * 2 * 3, dtype=float).reshape(5, 1, 2, 3)
    view = inspect.weight_map(SimpleNamespace(weights=tiles, what="units", layer="2 Linear"))
    assert view.tiles == (5, 2, 3, 3) and view.title.startswith("2 Linear: all 5 units as 2×3")
    assert view.at(3, 4) == "2 Linear: all 5 units as 2×3 weight images: unit 5, row 1, " \
        "column 1: weight 24"


def test_a_narrow_colour_bar_is_labelled_with_a_few_round_values_inside_its_ends():
    from workbench.gui.tools.inspect.presenter import scale_ticks

    assert scale_ticks(0, 0.155) == [0.05, 0.1]  # five labels overlapped on 150 px
    assert scale_ticks(-0.4, 0.4) == [-0.2, 0.0, 0.2]
    assert scale_ticks(0, 0.00155) == [0.0005, 0.001]
    assert scale_ticks(2, 302) == [100.0, 200.0]
    for low, high in ((0, 1), (-3.7, 3.7), (1e-6, 3e-6), (-250, 4)):
        ticks = scale_ticks(low, high)
        assert 2 <= len(ticks) <= 3 and all(low < t < high for t in ticks)
    assert scale_ticks(1.0, 1.0) == [1.0]


def test_a_tool_that_works_on_no_run_asked_to_show_one_comes_to_the_front():
    """Another tool opening the Playground or Search on a run used to raise
    NotImplementedError inside a Qt slot."""
    class Alone(registry.Tool):
        fronted = 0

        def reopen(self) -> None:
            self.fronted += 1

    tool = Alone()
    tool.show_run("/some/run")
    assert tool.fronted == 1 and tool.working_on() is None
