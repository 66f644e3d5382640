"""ONNX export of real small models, verified against PyTorch; runs that cannot be exported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.utils.prune as torch_prune
from prune_fixtures import CNN, MLP, train_run

from workbench.cli import main
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.export import ExportError, export_run, load_run
from workbench.core.tools.prune import PruneConfig, PruneSession
from workbench.core.tools.prune_apply import create_pruned_run


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("mlp-runs"), MLP)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("cnn-runs"), CNN, batch_size=128)


def _compare(path: Path, run_dir: str, *, raw: bool = False) -> None:
    """onnxruntime against PyTorch on test samples at batch 1 and 37 (rtol 1e-3, atol 1e-5)."""
    loaded = load_run(run_dir)
    s = loaded.splits
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 37):
        x = s.test_x[:batch].to(torch.float32)
        if s.info.is_image:
            x = x / 255.0
        shape = (1, -1, 1, 1) if s.info.is_image else (1, -1)
        normalized = (x - torch.tensor(s.mean).view(shape)) / torch.tensor(s.std).view(shape)
        feed = s.test_x[:batch].to(torch.float32).numpy() if raw else normalized.numpy()
        got = session.run(None, {"input": feed})[0]
        with torch.no_grad():
            want = loaded.model(normalized).numpy()
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


def test_mlp_export_is_verified_and_carries_metadata(mlp_run, tmp_path):
    out = tmp_path / "mlp.onnx"
    result = export_run(mlp_run, out)
    assert result.opset == 18 and result.bytes == out.stat().st_size
    assert [c.batch for c in result.checks] == [1, 37]
    assert result.agreement == 1.0 and result.max_abs_diff < 1e-3
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["class_names"]) == [str(d) for d in range(10)]
    assert json.loads(meta["input_shape"]) == [1, 28, 28]
    assert len(json.loads(meta["mean"])) == 1 and json.loads(meta["normalization_in_graph"]) \
        is False
    assert json.loads(meta["spec"])["model"]["layers"][1]["out"] == 32
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.dim_value
    _compare(out, mlp_run)
    assert (tmp_path / "mlp.safetensors").is_file() and (tmp_path / "mlp.py").is_file()


def test_cnn_with_batchnorm_and_dropout_exports_with_raw_input(cnn_run, tmp_path):
    out = tmp_path / "cnn.onnx"
    result = export_run(cnn_run, out, normalize_in_graph=True, opset=17, script=False)
    assert result.normalize_in_graph and result.opset == 17
    _compare(out, cnn_run, raw=True)
    assert not (tmp_path / "cnn.py").exists()


def test_pruned_runs_export_without_mask_names(mlp_run, tmp_path):
    session = PruneSession(mlp_run)
    unstructured = create_pruned_run(session, PruneConfig(0.8), runs=RunStore(tmp_path))
    structured = create_pruned_run(session, PruneConfig(0.5, structured=True,
                                                        per_layer={1: 0.5, 3: 0.5}),
                                   runs=RunStore(tmp_path))
    dense = export_run(mlp_run, tmp_path / "dense.onnx", weights=False, script=False)
    for run, name in ((unstructured, "u"), (structured, "s")):
        out = tmp_path / f"{name}.onnx"
        export_run(run.run_dir, out, weights=False, script=False)
        names = [init.name for init in onnx.load(str(out)).graph.initializer]
        assert not any("weight_orig" in n or "weight_mask" in n for n in names)
        _compare(out, run.run_dir)
    small = onnx.load(str(tmp_path / "s.onnx"))
    shapes = sorted(tuple(i.dims) for i in small.graph.initializer if len(i.dims) == 2)
    assert (16, 784) in shapes or (784, 16) in shapes
    assert (tmp_path / "s.onnx").stat().st_size < 0.6 * dense.bytes


def test_torch_prune_state_is_folded(mlp_run, tmp_path):
    loaded = load_run(mlp_run)
    model = loaded.model
    torch_prune.l1_unstructured(model[1], "weight", amount=0.5)
    run = RunStore(tmp_path).create(loaded.spec)
    run.save_model(model.state_dict())
    assert "1.weight_orig" in run.load_model_state()
    out = tmp_path / "folded.onnx"
    export_run(run.path, out, weights=False, script=False)
    graph = onnx.load(str(out)).graph
    text = " ".join([i.name for i in graph.initializer] + [n.name for n in graph.node])
    assert "weight_orig" not in text and "weight_mask" not in text


def test_runs_that_cannot_be_exported_say_why(mlp_run, tmp_path):
    loaded = load_run(mlp_run)
    failed = RunStore(tmp_path).create(loaded.spec)
    failed.update_summary(status="failed", error="the loss became nan at epoch 1")
    with pytest.raises(ExportError, match="no trained weights.*failed"):
        export_run(failed.path, tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="opset"):
        export_run(mlp_run, tmp_path / "x.onnx", opset=7)
    with pytest.raises(ExportError, match="not a run folder"):
        export_run(tmp_path / "missing", tmp_path / "x.onnx")
    broken = RunStore(tmp_path).create(loaded.spec)
    state = loaded.model.state_dict()
    state["1.weight"][0, 0] = float("nan")
    broken.save_model(state)
    with pytest.raises(ExportError, match="not finite"):
        export_run(broken.path, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_weights_and_script_rebuild_the_model(mlp_run, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "m.onnx"
    export_run(mlp_run, out)
    weights = load_file(str(tmp_path / "m.safetensors"))
    state = Run(Path(mlp_run)).load_model_state()
    assert weights.keys() == state.keys()
    done = subprocess.run([sys.executable, str(tmp_path / "m.py")], capture_output=True,
                          text=True, check=True)
    total = sum(v.numel() for k, v in state.items() if "running" not in k
                and "num_batches" not in k)
    assert f"{total} parameters" in done.stdout


def test_cli_export_prints_one_json_line(mlp_run, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert main(["export", mlp_run, str(out), "--opset", "18", "--no-script"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("path", "opset", "max_abs_diff", "agreement", "bytes"):
        assert key in result
    assert result["agreement"] == 1.0 and result["bytes"] == out.stat().st_size


def test_cli_export_error_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path), str(tmp_path / "a.onnx")]) == 2
    assert "not a run folder" in capsys.readouterr().err
