"""The precision stage for real: ModelOpt AutoCast (fp16/bf16) and PTQ (int8/fp8) on the CPU, parity
against PyTorch, calibration data, and what the report does with a precision that fails."""

import collections
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from helpers import SR_MODEL, TEXT_MODEL, USER_MODEL, tiny_config
from trtpipe.ort_session import OnnxEvaluator
from trtpipe.config import validate
from trtpipe.errors import TrtpipeError
from trtpipe.export import export_onnx
from trtpipe.precision import calibration_inputs, check_precision, convert
from trtpipe.reference import make_reference
from trtpipe.report.analysis import best_configurations, failed_engines
from trtpipe.spec import DYNAMIC

REPO = Path(__file__).resolve().parents[1]
OPTIONS = {"keep_io_types": True, "calibration_method": "max", "calibration_samples": 16}


@pytest.fixture(scope="module")
def sweep(repo_cwd):
    return validate(tiny_config(tiny_sr=SR_MODEL, tiny_text=TEXT_MODEL, user=USER_MODEL))


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, sweep):
    root = tmp_path_factory.mktemp("precision")
    for name in ("tiny_sr", "tiny_text"):
        spec = sweep.models[name]
        make_reference(spec, None, sweep.reference_batches(name), root / f"{name}.npz")
        export_onnx(spec, None, DYNAMIC, root / f"{name}.onnx")
    return root


@pytest.mark.parametrize("precision, runtime", [
    ("fp16", "onnxruntime"),  # ONNX Runtime has CPU fp16 kernels
    ("int8", "onnxruntime"),  # Q/DQ fused into QLinear int8 kernels
    ("bf16", "onnx.reference"),  # no ONNX Runtime CPU kernels at all
    ("fp8", "onnxruntime"),  # Q/DQ in float8e4m3fn, run with ORT's (fusing) optimizations off
])
def test_each_precision_converts_and_is_checked_against_pytorch(sweep, graphs, precision, runtime):
    spec = sweep.models["tiny_sr"]
    out = graphs / f"sr.{precision}.onnx"
    stats = convert(graphs / "tiny_sr.onnx", out, spec, DYNAMIC, precision, OPTIONS)
    ops = collections.Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    if precision in ("fp16", "bf16"):
        low = {"fp16": onnx.TensorProto.FLOAT16, "bf16": onnx.TensorProto.BFLOAT16}[precision]
        assert stats["low_precision_initializers"] > 0 and any(i.data_type == low for i in onnx.load(str(out)).graph.initializer)
        graph_inputs = {i.name: i.type.tensor_type.elem_type for i in onnx.load(str(out)).graph.input}
        assert graph_inputs["low_res"] == onnx.TensorProto.FLOAT  # keep_io_types
    if precision == "int8":
        assert ops["QuantizeLinear"] > 0 and stats["quantize_nodes"] == ops["QuantizeLinear"]
        assert stats["calibration"] == {"source": "random", "samples": 16, "seed": 0, "evaluation_samples": 32}
        assert stats["metric"]["data"] == "random" and stats["metric"]["samples"] == 32 and "cosine" in stats["metric"]["scores"]
        assert any("say nothing about accuracy on real inputs" in w for w in stats["warnings"])
    rows, used = check_precision(out, spec, graphs / "tiny_sr.npz", DYNAMIC, precision, sweep.tolerance(precision))
    assert used.startswith(runtime)
    assert {r["case"] for r in rows} >= {"b1", "b3", "b1-dmin", "b1-dmax"}
    assert all(r["passed"] for r in rows), [(r["case"], r["max_abs_err"], r["cosine"]) for r in rows if not r["passed"]]
    assert max(r["max_abs_err"] for r in rows) > 0  # really reduced precision, not a copy of fp32


def test_fp8_that_quantizes_nothing_says_so(sweep, graphs):
    stats = convert(graphs / "tiny_sr.onnx", graphs / "sr.fp8b.onnx", sweep.models["tiny_sr"], DYNAMIC, "fp8", OPTIONS)
    if stats["quantize_nodes"] == 0:  # ModelOpt 0.47 leaves this conv net unquantized in fp8
        assert any("inserted no quantize nodes" in w for w in stats["warnings"])


def test_int8_on_a_multi_input_integer_model(sweep, graphs):
    spec = sweep.models["tiny_text"]
    out = graphs / "text.int8.onnx"
    convert(graphs / "tiny_text.onnx", out, spec, DYNAMIC, "int8", OPTIONS)
    rows, _ = check_precision(out, spec, graphs / "tiny_text.npz", DYNAMIC, "int8", sweep.tolerance("int8"))
    assert all(r["passed"] for r in rows) and min(r["cosine"] for r in rows) > 0.99


def test_fp16_text_model_runs_after_stale_value_info_is_dropped(sweep, graphs):
    """AutoCast's value_info made ONNX Runtime fail ('Shape mismatch attempting to re-use buffer')."""
    out = graphs / "text.fp16.onnx"
    convert(graphs / "tiny_text.onnx", out, sweep.models["tiny_text"], DYNAMIC, "fp16", OPTIONS)
    assert len(onnx.load(str(out)).graph.value_info) == 0
    evaluator = OnnxEvaluator(out)
    assert evaluator.runtime.startswith("onnxruntime")
    feeds = {"input_ids": np.ones((2, 8), np.int64), "attention_mask": np.ones((2, 8), np.int64)}
    assert evaluator(feeds)[0].shape == (2, 4)


def test_calibration_data_from_file(sweep, tmp_path):
    spec = sweep.models["user"]
    path = tmp_path / "calib.npz"
    np.savez(path, features=np.random.randn(10, 6).astype(np.float64), category=np.arange(10) % 5)
    arrays, source = calibration_inputs(spec, 4, str(path), 32, 0)
    # half calibrates, the other half is kept for evaluation (calibration and evaluation never share a sample)
    assert source == {"source": "data", "path": str(path), "samples": 5, "evaluation_samples": 5,
                      "labelled": False}
    assert arrays["features"].shape == (4, 6) and arrays["features"].dtype == np.float32  # a multiple of the static batch
    arrays, _ = calibration_inputs(spec, None, str(path), 32, 0)
    assert arrays["category"].shape == (5,)
    arrays, _ = calibration_inputs(spec, 16, str(path), 32, 0)
    assert arrays["features"].shape == (16, 6)  # too few samples for one batch: repeated
    np.savez(path, features=np.zeros((4, 7), np.float32), category=np.zeros(4, np.int64))
    with pytest.raises(TrtpipeError, match=r"calibration array 'features' .* samples of shape \[7\], but the input's shape is \[6\]"):
        calibration_inputs(spec, None, str(path), 32, 0)
    np.savez(path, features=np.zeros((4, 6), np.float32))
    with pytest.raises(TrtpipeError, match=r"has no array 'category' \(it has features\); fix: save one array per input"):
        calibration_inputs(spec, None, str(path), 32, 0)
    with pytest.raises(TrtpipeError, match="calibration data missing.npz not found"):
        calibration_inputs(spec, None, "missing.npz", 32, 0)


def test_a_failed_precision_is_excluded_from_best_configuration():
    bench = pd.DataFrame([
        {"model": "m", "backend": "onnxruntime", "variant": "static-b1", "precision": p, "profile": "static", "batch": 1,
         "latency_ms_median": lat, "throughput_samples_s": 1000 / lat}
        for p, lat in (("fp32", 2.0), ("int8", 1.0))
    ])
    accuracy = pd.DataFrame([
        {"model": "m", "stage": "precision", "variant": "static-b1", "precision": "int8", "backend": "onnxruntime",
         "profile": "", "passed": False},
        {"model": "m", "stage": "engine", "variant": "static-b1", "precision": "fp32", "backend": "onnxruntime",
         "profile": "static", "passed": True},
    ])
    best = best_configurations(bench, failed_engines(accuracy))
    assert best["m"]["latency"]["precision"] == "fp32"  # the faster int8 failed its tolerance
    assert best_configurations(bench, failed_engines(accuracy.assign(passed=True)))["m"]["latency"]["precision"] == "int8"
