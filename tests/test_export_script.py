"""The exported training script: it runs without Workbench, pastes no text into code, reads
CIFAR with the safe unpickler, and retrains the run bit for bit on the CPU (same data order,
same initial weights, the trainer's own recipe functions)."""

from __future__ import annotations

import ast
import inspect
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from workbench import spec as specmod
from workbench.core.data.idx import write_idx
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.export_script import RUNTIME, runtime_source, write_script
from workbench.core.tools.trained import load_trained
from workbench.core.training.events import RunFinished
from workbench.core.training.loop import Trainer

THREADS = 1  # the run's and the script's CPU threads: the order of sums depends on them
# one line, as the spec allows a name: pasted into the docstring it would end it and run code
EVIL_NAME = 'x"""; import pathlib; pathlib.Path("PWNED").write_text("ran"); """'


def without_workbench(tmp_path: Path) -> dict[str, str]:
    """An environment where `import workbench` fails, as on a machine without it."""
    fake = tmp_path / "no-workbench" / "workbench"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text("raise ImportError('Workbench is not installed here')\n")
    return {"PYTHONPATH": str(fake.parent), "PATH": "/usr/bin:/bin",
            "OMP_NUM_THREADS": str(THREADS)}


def train(tmp_path: Path, spec: dict) -> str:
    events = list(Trainer(specmod.from_dict(spec), runs=RunStore(tmp_path / "runs"),
                          threads=THREADS).events())
    assert isinstance(events[-1], RunFinished), events[-1]
    return events[-1].run_dir


def export(run_dir: str, path: Path) -> Path:
    return write_script(load_trained(run_dir), path, "weights.safetensors")


def retrain(script: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), "--threads", str(THREADS), *args],
        capture_output=True, text=True, cwd=tmp_path, env=without_workbench(tmp_path),
        timeout=600)


def assert_same_run(run_dir: str, done: subprocess.CompletedProcess, weights: Path) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    got = [json.loads(line) for line in done.stdout.splitlines()]
    want = Run(run_dir).metrics("epoch")
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for key in ("epoch", "val_loss", "val_accuracy", "train_accuracy", "lr"):
            assert g[key] == w[key], key
        # the run sums its loss in windows read a few times a second: the same numbers,
        # added in another order
        assert math.isclose(g["train_loss"], w["train_loss"], rel_tol=1e-12)
    mine = torch.load(weights, weights_only=True)
    theirs = Run(run_dir).load_model_state()
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        assert torch.equal(mine[key], value), key


def test_generated_set_three_epochs_bit_for_bit_with_every_recipe_part(tmp_path):
    spec = {
        "name": EVIL_NAME,
        "data": {"name": "moons", "samples": 500, "noise": 0.2,
                 "augment": {"noise_std": 0.05}},
        "model": {"layers": [{"type": "Linear", "out": 24}, {"type": "BatchNorm"},
                             {"type": "GELU"}, {"type": "Dropout", "p": 0.2},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adamw", "lr": 0.02, "weight_decay": 0.01},
        "schedule": {"name": "plateau", "patience": 0, "factor": 0.5, "warmup_epochs": 0.5},
        "regularization": {"l1": 1e-4, "l2": 1e-3, "grad_clip": 0.5,
                           "early_stop_patience": 5},
        "train": {"epochs": 3, "batch_size": 16, "seed": 7, "device": "cpu"},
    }
    run_dir = train(tmp_path, spec)
    script = export(run_dir, tmp_path / "model.py")
    done = retrain(script, tmp_path, "--train", "--out", "re.pt")
    assert_same_run(run_dir, done, tmp_path / "re.pt")
    assert not (tmp_path / "PWNED").exists()


def write_cifar_py(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, n)]
        with (folder / stem).open("wb") as f:
            pickle.dump({b"data": x, b"labels": y}, f, protocol=2)


CNN = [{"type": "Conv2d", "out": 4, "kernel": 3, "padding": 1}, {"type": "BatchNorm"},
       {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 4}, {"type": "Flatten"},
       {"type": "Linear", "out": 10}]


def test_cifar_python_batches_with_augmentation_bit_for_bit(tmp_path):
    root = tmp_path / "cifar"
    write_cifar_py(root / "cifar-10-batches-py", 24)
    run_dir = train(tmp_path, {
        "name": "cifar", "data": {"name": "cifar10", "root": str(root), "val_fraction": 0.2,
                                  "augment": {"hflip": True, "crop_pad": 2}},
        "model": {"layers": CNN}, "optim": {"name": "nesterov", "lr": 0.05},
        "schedule": {"name": "cosine"},
        "train": {"epochs": 1, "batch_size": 16, "seed": 1, "device": "cpu"}})
    script = export(run_dir, tmp_path / "cifar.py")
    done = retrain(script, tmp_path, "--train", "--out", "re.pt")
    assert_same_run(run_dir, done, tmp_path / "re.pt")


def test_cifar_is_read_with_the_safe_unpickler(tmp_path):
    root = tmp_path / "cifar"
    write_cifar_py(root / "cifar-10-batches-py", 8)
    run_dir = train(tmp_path, {
        "name": "cifar", "data": {"name": "cifar10", "root": str(root), "val_fraction": 0.25},
        "model": {"layers": CNN}, "train": {"epochs": 1, "batch_size": 8, "device": "cpu"}})
    script = export(run_dir, tmp_path / "cifar.py")

    class Evil:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w').write('ran')",))

    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(
        pickle.dumps({b"data": Evil(), b"labels": []}))
    done = retrain(script, tmp_path, "--train")
    assert done.returncode == 2
    assert "refusing to load builtins.exec" in done.stderr
    assert not (tmp_path / "PWNED").exists()


def test_idx_and_csv_sets_bit_for_bit(tmp_path):
    rng = np.random.default_rng(3)
    idx = tmp_path / "digits"
    for stem, n in (("train", 120), ("t10k", 30)):
        write_idx(idx / f"{stem}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(idx / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    run_dir = train(tmp_path, {
        "name": "digits", "data": {"name": "mnist", "root": str(idx), "val_fraction": 0.25},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 10}]},
        "optim": {"name": "rmsprop", "lr": 0.001},
        "schedule": {"name": "step", "step_size": 1, "gamma": 0.5},
        "train": {"epochs": 1, "batch_size": 32, "device": "cpu"}})
    done = retrain(export(run_dir, tmp_path / "digits.py"), tmp_path, "--train", "--out",
                   "d.pt")
    assert_same_run(run_dir, done, tmp_path / "d.pt")

    folder = tmp_path / "null true" / 'a "quoted" folder'
    folder.mkdir(parents=True)
    table = folder / "null-true.csv"
    points = rng.normal(size=(90, 3))
    table.write_text("a,b,c,label\n" + "".join(
        f"{x:.4f},{y:.4f},{z:.4f},{'yes' if x + y > 0 else 'no'}\n" for x, y, z in points))
    run_dir = train(tmp_path, {
        "name": "table", "data": {"name": "csv", "path": str(table)},
        "model": {"layers": [{"type": "Linear", "out": 8}, {"type": "Tanh"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adagrad", "lr": 0.05},
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu"}})
    script = export(run_dir, tmp_path / "table.py")
    recipe = _recipe(script)
    assert recipe["spec"]["data"]["path"] == str(table)
    done = retrain(script, tmp_path, "--train", "--out", "t.pt")
    assert_same_run(run_dir, done, tmp_path / "t.pt")


def _recipe(script: Path) -> dict:
    """RECIPE as the script holds it: the one JSON string literal."""
    tree = ast.parse(script.read_text())
    assign = next(node for node in tree.body if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", None) == "RECIPE")
    call = assign.value
    assert isinstance(call, ast.Call) and call.func.attr == "loads"
    (literal,) = call.args
    assert isinstance(literal, ast.Constant) and isinstance(literal.value, str)
    return json.loads(literal.value)


def test_no_text_from_the_spec_or_a_path_becomes_code(tmp_path):
    run_dir = train(tmp_path, {
        "name": EVIL_NAME, "data": {"name": "moons", "samples": 200},
        "model": {"layers": [{"type": "Linear", "out": 2}]},
        "train": {"epochs": 1, "device": "cpu"}})
    out = tmp_path / 'o"dd name.py'
    text = write_script(load_trained(run_dir), out, 'w"eights.safetensors').read_text()
    recipe = _recipe(out)
    assert recipe["name"] == EVIL_NAME and recipe["weights"] == 'w"eights.safetensors'
    tree = ast.parse(text)
    for node in ast.walk(tree):  # the name is nowhere but inside RECIPE's JSON text
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert "PWNED" not in node.value or node.value.startswith("{")
    assert "pathlib.Path(\"PWNED\")" not in text.replace("\\", "")[:text.index("RECIPE =")]
    done = subprocess.run([sys.executable, str(out), "--help"], capture_output=True,
                          text=True, cwd=tmp_path, env=without_workbench(tmp_path), timeout=300)
    assert done.returncode == 0 and not (tmp_path / "PWNED").exists()


def test_the_runtime_needs_nothing_the_script_does_not_define():
    """Every global an emitted function or method uses is defined or imported by the script:
    a core function that starts using a new helper fails here until RUNTIME lists it."""
    from workbench.core.tools import export_script

    text = export_script._HEADER + "RECIPE = {}\n" + runtime_source() + export_script._SCRIPT
    defined = {name for node in ast.walk(ast.parse(text)) for name in _bound(node)}
    missing = set()
    for module_name, names in RUNTIME:
        module = sys.modules[module_name]
        for name in names:
            for fn in _functions(getattr(module, name)):
                if fn.__code__.co_filename != module.__file__:
                    continue  # made by @dataclass, not in the source
                used = {n for code in _codes(fn.__code__) for n in code.co_names}
                missing |= {f"{module_name}.{name}: {n}" for n in used
                            if n in fn.__globals__ and n not in defined
                            and not n.startswith("__")}
    assert not missing


def _functions(value):
    if inspect.isfunction(value):
        yield value
    elif inspect.isclass(value):
        for member in vars(value).values():
            if isinstance(member, property):
                member = member.fget
            if isinstance(member, staticmethod | classmethod):
                member = member.__func__
            if inspect.isfunction(member):
                yield member


def _codes(code):
    yield code
    for const in code.co_consts:
        if inspect.iscode(const):
            yield from _codes(const)


def _bound(node):
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        yield node.name
    elif isinstance(node, ast.Import | ast.ImportFrom):
        for alias in node.names:
            yield (alias.asname or alias.name).split(".")[0]
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        yield node.id
