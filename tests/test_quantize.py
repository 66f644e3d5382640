"""int8 / fp16 quantization of real small runs, verified on the test split; refusals; the
sparse storage of pruned weights; the calibration sample and the value ranges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from prune_fixtures import CNN, MLP, train_run

from workbench.cli import main
from workbench.core.store.runs import RunStore
from workbench.core.tools.calibration import (
    CalibrationError,
    calibration_sample,
    model_inputs,
    run_value_ranges,
)
from workbench.core.tools.export import ExportError, export_run, load_run
from workbench.core.tools.prune import PruneConfig, PruneSession
from workbench.core.tools.prune_apply import create_pruned_run
from workbench.core.tools.quantize import QuantizeConfig, QuantizeError, quantize_run
from workbench.core.tools.sparse_onnx import sparse_names
from workbench.core.tools.variants import RECORD, read_record


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("mlp-runs"), MLP)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("cnn-runs"), CNN, batch_size=128)


@pytest.fixture(scope="module")
def broken_run(mlp_run, tmp_path_factory) -> str:
    """The MLP with its first hidden unit dead (its ReLU gives 0 for every input) and huge
    weights from that unit into the next layer: the float network computes exactly what it
    did without the unit, but an 8-bit scale wide enough for the huge weights rounds every
    other weight of that layer to zero."""
    loaded = load_run(mlp_run)
    state = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    state["1.weight"][0] = 0.0
    state["1.bias"][0] = -1.0
    state["3.weight"][:, 0] = 1000.0
    run = RunStore(tmp_path_factory.mktemp("broken")).create(loaded.spec)
    run.save_model(state)
    run.update_summary(status="finished")
    return str(run.path)


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_dynamic_int8_mlp_is_smaller_verified_and_recorded(mlp_run, tmp_path):
    out = tmp_path / "mlp.int8.onnx"
    result = quantize_run(mlp_run, out, QuantizeConfig(mode="dynamic"))
    assert out.is_file() and result.path == str(out) and result.kind == "int8-dynamic"
    assert "MatMulInteger" in _ops(out) or "DynamicQuantizeMatMul" in _ops(out)
    onnx.checker.check_model(str(out), full_check=True)
    assert result.quantized.bytes == out.stat().st_size
    assert result.ratio > 3.0
    assert result.drop is not None and result.drop <= 1.0
    assert result.quantized.agreement > 0.95
    assert {t["per_channel"] for t in result.tried} == {False, True}
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["class_names"]) == [str(d) for d in range(10)]
    assert "int8-dynamic" in meta["quantization"]
    loaded = load_run(mlp_run)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = calibration_sample(loaded.splits, 5)
    assert session.run(None, {"input": x})[0].shape == (5, 10)
    record = read_record(mlp_run)
    assert set(record) >= {"fp32", "int8-dynamic"}
    assert record["int8-dynamic"]["measured"]["bytes"] == out.stat().st_size
    assert record["int8-dynamic"]["file"] == str(out)
    assert record["fp32"]["measured"]["test_accuracy"] == result.fp32.test_accuracy


def test_static_int8_cnn_is_calibrated_qdq(cnn_run, tmp_path):
    out = tmp_path / "cnn.int8.onnx"
    result = quantize_run(cnn_run, out, QuantizeConfig(mode="auto", calibration=64),
                          normalize_in_graph=True)
    assert result.kind == "int8-static" and result.calibration == 64
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= _ops(out)
    assert "BatchNormalization" not in _ops(out)  # folded into the convolutions
    assert result.drop <= 1.0 and result.quantized.agreement > 0.9
    assert result.normalize_in_graph
    loaded = load_run(cnn_run)
    x = loaded.splits.test_x[:8]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.to(torch.float32).numpy()})[0].argmax(1)
    with torch.no_grad():
        want = loaded.model(model_inputs(loaded.splits, x)).argmax(1).numpy()
    assert (got == want).mean() >= 0.75


def test_fp16_halves_the_file(mlp_run, tmp_path):
    result = quantize_run(mlp_run, tmp_path / "half.onnx", QuantizeConfig(mode="fp16"),
                          record=False)
    assert result.kind == "fp16" and result.per_channel is None
    assert 1.8 < result.ratio < 2.2
    assert result.quantized.agreement >= 0.99 and abs(result.drop) < 0.5


def test_a_quantization_that_breaks_the_network_is_refused(broken_run, tmp_path):
    out = tmp_path / "broken.onnx"
    with pytest.raises(QuantizeError, match=r"breaks the network: test accuracy .* points "
                                            r"lost, 1 accepted"):
        quantize_run(broken_run, out, QuantizeConfig(mode="dynamic"))
    assert not out.exists() and not list(tmp_path.iterdir())
    refused = read_record(broken_run)["int8-dynamic"]
    assert "breaks the network" in refused["refused"] and refused["file"] == ""
    assert read_record(broken_run)["fp32"]["measured"]["test_accuracy"] > 0.6
    ranges = {(r.layer, r.tensor): r for r in run_value_ranges(broken_run, 32)}
    assert ranges[(3, "weights")].underflow > 0.95  # what the value ranges view shows


def test_bad_requests_say_why_and_write_nothing(mlp_run, tmp_path):
    cases = [(QuantizeConfig(mode="int4"), "quantization must be one of"),
             (QuantizeConfig(mode="static", calibration=0), "calibration samples"),
             (QuantizeConfig(mode="static", calibration=10**9), "calibration samples"),
             (QuantizeConfig(max_drop=-1), "accepted accuracy drop"),
             (QuantizeConfig(max_drop=float("nan")), "accepted accuracy drop")]
    for config, message in cases:
        with pytest.raises(QuantizeError, match=message):
            quantize_run(mlp_run, tmp_path / "x.onnx", config)
    with pytest.raises(ExportError, match="must end in .onnx"):
        quantize_run(mlp_run, tmp_path / "x.txt")
    with pytest.raises(ExportError, match="no such folder"):
        quantize_run(mlp_run, tmp_path / "missing" / "x.onnx")
    with pytest.raises(ExportError, match="not a run folder"):
        quantize_run(tmp_path, tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(CalibrationError, match="between 1 and"):
        calibration_sample(load_run(mlp_run).splits, 0)


def test_unstructured_pruning_shrinks_the_exported_file(mlp_run, tmp_path):
    session = PruneSession(mlp_run)
    runs = RunStore(tmp_path / "runs")
    dense = export_run(mlp_run, tmp_path / "dense.onnx", weights=False, script=False)
    sizes = {}
    for amount in (0.5, 0.9):
        pruned = create_pruned_run(session, PruneConfig(amount), runs=runs)
        out = tmp_path / f"p{amount}.onnx"
        result = export_run(pruned.run_dir, out, weights=False, script=False)
        sizes[amount] = result.bytes
        names = sparse_names(onnx.load(str(out)))
        assert names == list(result.sparse)
        onnx.checker.check_model(str(out), full_check=True)
        if amount == 0.9:
            assert "1.weight" in names and result.agreement == 1.0
            plain = export_run(pruned.run_dir, tmp_path / "plain.onnx", weights=False,
                               script=False, sparse=False)
            assert plain.sparse == () and plain.bytes > 0.9 * dense.bytes
            a = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            b = ort.InferenceSession(str(tmp_path / "plain.onnx"),
                                     providers=["CPUExecutionProvider"])
            x = calibration_sample(session.splits, 16)
            np.testing.assert_allclose(a.run(None, {"input": x})[0],
                                       b.run(None, {"input": x})[0], rtol=1e-5, atol=1e-6)
        else:
            assert names == []  # sparse storage would be larger at half zero
    assert sizes[0.5] == pytest.approx(dense.bytes, rel=0.02)
    assert sizes[0.9] < 0.45 * dense.bytes


def test_value_ranges_cover_every_layer(cnn_run):
    ranges = run_value_ranges(cnn_run, 40)
    kinds = {(r.layer, r.tensor) for r in ranges}
    assert {(0, "weights"), (4, "weights"), (10, "weights"), (13, "weights")} <= kinds
    assert (2, "activations") in kinds and not any(r.layer in (8, 9) for r in ranges)
    for r in ranges:
        assert sum(r.counts) + r.zeros == r.count
        assert 0.0 <= r.underflow <= 1.0 and r.step > 0
        assert r.minimum <= r.maximum and len(r.exponents) == len(r.counts)
    relu = next(r for r in ranges if r.layer == 2)
    assert relu.minimum == 0 and relu.zeros > 0


def test_cli_export_quantized_prints_the_variants(mlp_run, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    assert main(["export", mlp_run, str(out), "--quantize", "static", "--calibration", "32",
                 "--per-channel", "no"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["kind"] == "int8-static" and result["calibration"] == 32
    assert result["per_channel"] is False and len(result["tried"]) == 1
    assert result["quantized"]["bytes"] == out.stat().st_size
    assert result["fp32"]["bytes"] > 3 * result["quantized"]["bytes"]
    for key in ("latency_ms", "latency_ms_256", "test_accuracy", "agreement"):
        assert result["quantized"][key] is not None
    assert "int8-static" in captured.err and "smaller" in captured.err
    assert not (tmp_path / "q.safetensors").exists()
    assert RECORD in {p.name for p in Path(mlp_run).iterdir()}


def test_cli_refusal_and_bad_flags_are_one_line(broken_run, tmp_path, capsys):
    assert main(["export", broken_run, str(tmp_path / "b.onnx"), "--quantize",
                 "dynamic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "breaks the network" in err[0]
    for flags in (["--calibration", "0"], ["--max-drop", "-2"], ["--quantize", "int4"],
                  ["--max-drop", "nan"]):
        with pytest.raises(SystemExit) as exit_:
            main(["export", broken_run, str(tmp_path / "b.onnx"), *flags])
        assert exit_.value.code == 2
    assert not (tmp_path / "b.onnx").exists()
