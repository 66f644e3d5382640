"""Journeys through what a trained network learned, the data as the person means it, the run
report and the way to a cluster: the real main window at 1280x800, driven through its menus,
buttons, the Runs list and the Data tab, on real small data (the bundled MNIST sample, the
default spirals experiment, a CSV with whole-number targets made here).
"""

from __future__ import annotations

import base64
import shlex
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from dialog_answers import Answers  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog  # noqa: E402
from test_layout import clipped  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.core.store.runs import RunStatus  # noqa: E402
from workbench.core.tools.inspect.render import ROBUST, symmetric_top  # noqa: E402
from workbench.core.training.events import RunFinished  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.document import undo  # noqa: E402
from workbench.gui.shell.main_window import MainWindow  # noqa: E402
from workbench.gui.widgets.style import apply_style  # noqa: E402
from workbench.spec import LayerSpec  # noqa: E402

WAIT_MS = 180_000
LIST_MS = 20_000
SHOTS = Path("/tmp/inspect-shots")
MNIST = {"name": "digits", "data": {"name": "mnist_small", "val_fraction": 0.1},
         "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 32},
                              {"type": "ReLU"}, {"type": "Linear", "out": 10}]},
         "optim": {"name": "adam", "lr": 0.003},
         "train": {"epochs": 1, "batch_size": 128, "device": "cpu"}}


@pytest.fixture
def answers(monkeypatch):
    return Answers(monkeypatch)


@pytest.fixture
def window(qtbot, answers, tmp_path):
    apply_style(QApplication.instance())
    win = MainWindow(workspace=Workspace(tmp_path / "runs"))
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    if win.train_panel is None:  # torch still loading in the background
        with qtbot.waitSignal(win.trainPanelReady, timeout=WAIT_MS):
            pass
    yield win
    win.undo.setClean()
    win.close()
    assert win.workspace.jobs.names() == []  # every thread ended with the window


def _shot(widget, name: str) -> None:
    for _ in range(3):
        QApplication.processEvents()  # what just changed, laid out
    SHOTS.mkdir(exist_ok=True)
    widget.grab().save(str(SHOTS / name))


def _train(qtbot, win: MainWindow) -> RunFinished:
    panel = win.train_panel
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS) as ended:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    end = ended.args[0]
    assert isinstance(end, RunFinished), end
    qtbot.waitUntil(lambda: win.history.selected_path() == end.run_dir, timeout=LIST_MS)
    qtbot.waitUntil(lambda: win.history.selected_info().status == RunStatus.FINISHED,
                    timeout=LIST_MS)
    return end


def _context_action(qtbot, win: MainWindow, key: str) -> None:
    """Right-click the selected run's row and choose `key`."""
    tree = win.history.tree
    item = tree.currentItem()
    tree.customContextMenuRequested.emit(tree.visualItemRect(item).center())
    menu = win.history.menu
    qtbot.waitUntil(menu.isVisible, timeout=5000)
    action = win.history.actions[key]
    assert action in menu.actions() and action.isEnabled(), action.toolTip()
    action.trigger()
    menu.close()


def _pick(qtbot, combo, row: int) -> None:
    """Choose row `row` of a combo box from its popup, as a person does."""
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible, timeout=5000)
    index = view.model().index(row, 0)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(index).center())
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=5000)


def test_train_then_inspect_a_misclassified_digit_from_the_runs_list(qtbot, window):
    undo.push_spec(window.undo, window.model, specmod.from_dict(MNIST), "digits")
    run = _train(qtbot, window).run_dir

    # the Runs list's context menu: Inspect… opens a tab on the run, computed off the GUI thread
    _context_action(qtbot, window, "inspect")
    panel = window.tools.get("inspect")
    assert window.center.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.overview is not None or "Cannot" in panel.status.text(),
                    timeout=WAIT_MS)
    assert panel.overview is not None, panel.status.text()
    assert panel.working_on() == run and panel.picker.run_dir() == run
    ov = panel.overview
    wrong = ov.predictions.misclassified()
    assert wrong and f"{len(wrong):,} misclassified" in panel.status.text()

    # Layers: the 32 first-layer units as 28x28 weight images, with their colour bar
    panel.tabs.setCurrentIndex(panel.page("layers"))
    grid = panel.layers.weights
    assert grid.isVisible() and len(grid.maps) == 1 and len(grid.bars) == 1
    weights = ov.first_layer.weights
    assert weights.shape == (32, 1, 28, 28) and "2 Linear" in panel.layers.title.text()
    low, high = grid.bars[0].levels()  # 25,088 weights: the scale ends at 99.5% of them
    tiles = weights.sum(axis=1)
    assert low == pytest.approx(-high)
    assert high == pytest.approx(symmetric_top(tiles, ROBUST), rel=1e-6)
    assert high < symmetric_top(tiles)
    assert "that or beyond" in grid.bars[0].getAxis("left").labelText  # it says so

    # Sample: pick a misclassified digit from the list; its maps, each with its colour scale
    panel.tabs.setCurrentIndex(panel.page("sample"))
    page = panel.sample
    chosen = wrong[2]
    row = page.wrong.findData(chosen[0])
    with qtbot.waitSignal(panel.sampleShown, timeout=WAIT_MS) as shown:
        _pick(qtbot, page.wrong, row)
    insight = shown.args[0]
    assert insight.index == chosen[0] and page.index.value() == chosen[0]
    assert insight.truth == chosen[1] and insight.predicted == chosen[2]
    assert page.answer.text().endswith("wrong")
    methods = [a.method for a in insight.attributions]
    assert methods == ["saliency", "integrated_gradients"]  # no Grad-CAM for an MLP
    titles = [view.title for _box, view in page.maps.maps]
    assert titles == ["input", "Saliency", "Integrated Gradients"]
    ig = insight.attributions[1].values.sum(axis=0)
    ig_bar = page.maps.bars[2]  # input, saliency, IG: a bar each
    lo, hi = ig_bar.levels()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(symmetric_top(ig), rel=1e-6)
    assert ig_bar.colorMap().name == "CET-D1A"  # diverging, white at 0
    assert ig_bar.axis.autoSIPrefixScale == 1.0  # its numbers as they are (0.2, not 200)
    assert "Integrated Gradients" in page.how.text() and "Saliency" in page.how.text()
    assert page.probabilities.isVisible()
    assert len(insight.activations) == 4  # one output a layer, as the editor numbers them
    assert page.activations.count() == 8  # a line and a chart each
    _shot(panel, "inspect_sample.png")

    # the class averages, computed when their page is first shown
    assert panel.classes.result is None  # not computed before it is asked for
    with qtbot.waitSignal(panel.classesShown, timeout=WAIT_MS) as classes:
        panel.tabs.setCurrentIndex(panel.page("classes"))
    assert len(classes.args[0].class_names) == 10 and len(panel.classes.maps.maps) == 10
    assert not panel.tabs.isTabEnabled(panel.page("equation"))  # it has a hidden layer
    assert "hidden layer" in panel.tabs.tabToolTip(panel.page("equation"))

    # Results' mistakes: double-clicking a thumbnail shows that sample in Inspect
    window.center.setCurrentWidget(window.train_panel)
    results = window.train_panel.results
    window.train_panel.tabs.setCurrentWidget(results)
    item = results.thumbs.item(0)
    index = item.data(Qt.ItemDataRole.UserRole)
    assert index == wrong[0][0]
    with qtbot.waitSignal(panel.sampleShown, timeout=WAIT_MS) as again:
        results.thumbs.itemDoubleClicked.emit(item)
    assert again.args[0].index == index and window.center.currentWidget() is panel
    assert panel.tabs.currentIndex() == panel.page("sample")


def test_results_link_opens_inspect_on_the_run_shown_and_a_2d_run_shows_its_neurons(
        qtbot, window):
    window.optim_panel.epochs.setValue(3)  # the default experiment: spirals, quick
    run = _train(qtbot, window).run_dir
    results = window.train_panel.results
    assert not results.inspect_link.isHidden()
    results.inspect_link.linkActivated.emit("inspect")
    panel = window.tools.get("inspect")
    qtbot.waitUntil(lambda: panel.overview is not None, timeout=WAIT_MS)
    assert panel.working_on() == run
    layers = panel.layers
    # a 2-D set: the first layer as a table by feature, and every unit over the plane
    assert layers.table.isVisibleTo(panel) and layers.table.grid.columns == ("x1", "x2")
    grids = [layers.neurons.itemAt(i).widget() for i in range(layers.neurons.count())]
    maps = [g for g in grids if hasattr(g, "maps")]
    hidden = [g for g in maps if g.maps and g.maps[0][1].title == "unit 1"]
    assert hidden and all(len(g.bars) == 1 for g in maps)  # a colour bar a layer
    assert "across" in layers.neurons_how.text()
    # Help > Getting started's step brings it back to the front
    window.center.setCurrentWidget(window.train_panel)
    window.actions["getting_started"].trigger()
    guide = window._help["guide"]
    qtbot.mouseClick(guide.buttons["See what the network learned"], Qt.MouseButton.LeftButton)
    assert window.center.currentWidget() is panel and panel.working_on() == run
    guide.close()


def _whole_number_csv(path: Path) -> Path:
    """y = 3x + 2 on whole numbers: x from 0 to 100, y rounded, 101 distinct targets."""
    rng = np.random.default_rng(0)
    x = np.arange(101)
    y = np.round(3 * x + 2 + rng.normal(0, 0.3, len(x))).astype(int)
    path.write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in zip(x, y, strict=True)))
    return path


def test_a_csv_of_whole_number_targets_trains_as_regression_from_the_data_tab(
        qtbot, window, tmp_path):
    csv = _whole_number_csv(tmp_path / "line.csv")
    undo.push_layers(window.undo, window.model, [LayerSpec("Linear", {"out": 1})], "linear")
    for path, value in (("optim.name", "gd"), ("optim.lr", 0.5), ("train.epochs", 60),
                        ("train.device", "cpu")):
        undo.push_value(window.undo, window.model, path, value)
    window.editors.setCurrentWidget(window.data_panel)  # View > Data editor
    data = window.data_panel
    _pick(qtbot, data.combo, data.combo.findData("csv"))
    assert data.form.isRowVisible(data.rows["target"])
    data.path.setText(str(csv))
    data.path.editingFinished.emit()
    qtbot.waitUntil(lambda: data.splits is not None and data.splits.info.name == "csv",
                    timeout=WAIT_MS)
    assert data.splits.info.num_classes == 0  # read as a quantity
    note = data.target_note.text()
    assert note.startswith("Guess: ‘y’ is a quantity") and "101 distinct whole numbers" in note
    assert "more than 20 values" in data.target_note.toolTip()  # the whole reason
    for _ in range(3):
        QApplication.processEvents()  # the new text laid out
    assert not clipped(data)  # the target's row and its guess whole, at 1280x800
    assert data.target.currentData() == "auto"
    _shot(window, "data_tab_target.png")

    end = _train(qtbot, window)
    results = window.train_panel.results
    window.train_panel.tabs.setCurrentWidget(results)
    assert results.regression.isVisible() and not results.splitter.isVisible()
    regression = end.summary["regression"]
    assert len(results.regression.truth) == regression["n"] > 0
    assert results.headline.text().startswith("Test MSE")
    assert f"R² {regression['r2']:.4f}" in results.detail.text()
    assert regression["r2"] > 0.99
    equation = end.summary["equation"]
    assert abs(equation["coefficients"]["x"] - 3) < 0.05
    assert equation["text"] in results.equation.text().replace("&nbsp;", " ")
    _shot(window, "results_regression.png")

    # declared categories: the classes follow, and the editor says the last layer no longer
    # fits; picking another dataset sets the target back to auto in the same undo step
    _pick(qtbot, data.target, data.target.findData("category"))
    assert window.model.live.data.target == "category"
    qtbot.waitUntil(lambda: window.blocked_reason() is not None, timeout=WAIT_MS)
    assert "classes" in window.blocked_reason()
    qtbot.waitUntil(lambda: data.splits is not None, timeout=WAIT_MS)
    assert data.target_note.text().startswith("Declared categories (101 classes); the guess "
                                              "is a quantity")
    _pick(qtbot, data.combo, data.combo.findData("moons"))
    assert window.model.live.data.name == "moons" and window.model.live.data.target == "auto"
    window.actions["undo"].trigger()
    assert window.model.live.data.name == "csv" and window.model.live.data.target == "category"
    assert data.target.currentData() == "category"


class _Page(HTMLParser):
    """What a report page holds: its images' sources, its links, its scripts, its CSP."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self.csp = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found.get("src") or "")
        if tag == "script":
            self.scripts += 1
        if "href" in found:
            self.links.append(found["href"] or "")
        if tag == "meta" and found.get("http-equiv") == "Content-Security-Policy":
            self.csp = found.get("content") or ""


def test_export_report_from_the_file_menu_writes_one_page_with_its_pictures_inside(
        qtbot, window, tmp_path, monkeypatch, answers):
    window.optim_panel.epochs.setValue(3)
    run = _train(qtbot, window).run_dir
    target = tmp_path / "sent" / "spirals"  # no suffix: .html is added
    target.parent.mkdir()
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (asked.append(a[2]) or str(target), ""))
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    action = window.actions["export_report"]
    assert action in file_menu.actions()
    with qtbot.waitSignal(window.reports.written, timeout=WAIT_MS) as written:
        action.trigger()
    report = written.args[0]
    assert asked == [str(Path.home() / f"{Path(run).name}-report.html")]
    page_file = target.with_suffix(".html")
    assert report.path == page_file and page_file.is_file()
    assert str(page_file) in window.statusBar().currentMessage()
    page = _Page()
    page.feed(page_file.read_text(encoding="utf-8"))
    assert page.scripts == 0 and page.links == [] and "default-src 'none'" in page.csp
    assert len(page.images) == len(report.pictures) >= 4  # curves, first layer, neurons…
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not answers.warned

    # nothing can be written inside a file: one dialog, nothing written
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(blocked / "report.html"), ""))
    with qtbot.waitSignal(window.reports.failedWith, timeout=WAIT_MS):
        action.trigger()
    assert answers.warned and "a-file" in answers.warned[-1]


def test_launch_dialog_gives_the_command_for_two_nodes_and_saves_the_slurm_script(
        qtbot, window, tmp_path, monkeypatch, answers):
    window.path = tmp_path / "exp.json"  # the experiment's file: the launch spec goes beside
    window.actions["launch"].trigger()
    dialog = window.launch
    qtbot.waitExposed(dialog)
    dialog.nodes.setValue(2)
    dialog.procs.setValue(4)
    dialog.head.setText("node01")
    dialog.port.setValue(29_600)
    args = shlex.split(dialog.text.toPlainText())
    assert args[0] == "torchrun" and "--nnodes=2" in args and "--nproc-per-node=4" in args
    assert "--rdzv-endpoint=node01:29600" in args
    assert not any(a.startswith("--node-rank") for a in args)  # c10d numbers the nodes
    spec_path = tmp_path / "exp.launch.json"
    assert args[args.index("workbench.commands.rank") + 1] == str(spec_path)
    note = dialog.note.text()
    assert "2 machines" in note and "no --node-rank is needed" in note
    assert "the data" not in note  # the spirals are generated on every node

    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == dialog.command
    assert specmod.load(spec_path) == window.model.spec()

    script = tmp_path / "job.sbatch"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(script), ""))
    dialog.time.setText("4:00:00")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    text = script.read_text()
    assert "#SBATCH --nodes=2" in text and "#SBATCH --time=4:00:00" in text
    assert "srun torchrun" in text and str(spec_path) in text
    assert '--rdzv-endpoint="$head_node":29600' in text
    assert script.stat().st_mode & 0o100  # executable
    assert f"sbatch {script}" in dialog.note.text()

    # a SLURM setting it cannot use: one dialog, no script
    other = tmp_path / "bad.sbatch"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(other), ""))
    dialog.partition.setText("gpu; rm -rf /")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not other.exists() and "--partition" in answers.warned[-1]
    dialog.runs_dir.setText("  ")  # no runs folder: no command, nothing to copy or save
    assert "Runs folder" in dialog.text.toPlainText()
    assert not dialog.copy_button.isEnabled() and not dialog.save_button.isEnabled()
    dialog.close()
