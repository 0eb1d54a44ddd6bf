"""Contract tests of the TensorRT backend against strict doubles of TensorRT 10.x and 11.x.

Nothing here runs real TensorRT (none can be installed on the machines this project reaches). The
double (tests/doubles/tensorrt) enforces these documented rules; each test names the ones it relies on.

[R1] Strong typing: 11.x removed BuilderFlag.FP16/INT8/BF16/FP8 (and calibrators, quantization flags,
     ICudaEngine.device_memory_size); precision comes from the ONNX (AutoCast, Q/DQ). Precision flags are
     not allowed with a strongly typed network on 10.x.
     https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html
     https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-patterns.html
     samples/trtexec/README.md, "Create a strongly typed plan file" (github.com/NVIDIA/TensorRT)
[R2] NetworkDefinitionCreationFlag: EXPLICIT_BATCH deprecated/ignored in 10.x and gone in 11.x;
     STRONGLY_TYPED opts in on 10.x and is accepted but ignored on 11.x.
     https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Builder.html
     https://docs.nvidia.com/deeplearning/tensorrt/11.0.0/_static/python-api/infer/Core/Builder.html
[R3] Removed in 10.x: execute_async_v2, set_binding_shape, get_binding_index, build_engine, max_batch_size.
     https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-8x-to-10x-python-api-reference.html
[R4] Profiles: min <= opt <= max per dimension, else set_shape raises ("Shape provided for min is
     inconsistent with other shapes.", python/src/infer/pyCore.cpp); a network with dynamic inputs needs at
     least one profile; shapes outside the profile are an error at run time.
     https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/OptimizationProfile.html
[R5] Execution: choose the profile per context (set_optimization_profile_async), set every input's shape
     (set_input_shape) and every I/O tensor's address (set_tensor_address) before execute_async_v3;
     output shapes come from the context once input shapes are set.
     https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/ExecutionContext.html
     https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Engine.html
[R6] An engine is tied to the TensorRT version that built it (deserialization fails otherwise); a timing
     cache from another device/version is refused unless mismatches are ignored (set_timing_cache).
[R7] trtexec --exportTimes writes a JSON list of per-inference records with computeMs (and inMs, outMs,
     latencyMs); samples/trtexec/tracer.py in github.com/NVIDIA/TensorRT.
"""

import importlib
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import SR_MODEL, TEXT_MODEL, tiny_config
from trtpipe.config import validate
from trtpipe.engine import build_engine
from trtpipe.errors import BackendUnavailable, ProfileError, TrtpipeError
from trtpipe.export import export_onnx
from trtpipe.reference import make_reference
from trtpipe.backends.registry import get
from trtpipe.backends.base import BuildRequest
from trtpipe.defaults import with_defaults
from trtpipe.spec import DYNAMIC, InputSpec, ModelSpec, Profile, Variant

DOUBLES = Path(__file__).resolve().parent / "doubles"
REPO = Path(__file__).resolve().parents[1]
VERSIONS = ["10.13.0", "11.4.1"]
TOL = {"atol": 1e-4, "rtol": 1e-3}
OPTIONS = {"workspace_gib": 1, "optimization_level": 3, "include_transfers": True, "cuda_graph": False, "trtexec": True}


@pytest.fixture(params=VERSIONS)
def trt(request, monkeypatch, tmp_path):
    """The double of one TensorRT version, on a fake CUDA device."""
    monkeypatch.setenv("TRT_DOUBLE_VERSION", request.param)
    monkeypatch.setenv("TRTPIPE_TEST_DEVICE", "fake_cuda")
    monkeypatch.syspath_prepend(str(DOUBLES))
    for name in ("tensorrt", "fake_cuda"):
        sys.modules.pop(name, None)
    module = importlib.import_module("tensorrt")
    yield module
    for name in ("tensorrt", "fake_cuda"):
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("trt")
    sweep = validate(tiny_config(tiny_text=TEXT_MODEL, tiny_sr=SR_MODEL))
    for name, spec in sweep.models.items():
        make_reference(spec, None, sweep.reference_batches(name), root / f"{name}.npz")
        export_onnx(spec, None, DYNAMIC, root / f"{name}.onnx")
    return sweep, root


def _build(sweep, root, tmp_path, model, profiles, name="e"):
    engine = tmp_path / f"{name}.engine"
    rows = build_engine("tensorrt", root / f"{model}.onnx", engine, engine.with_suffix(".json"), sweep.models[model],
                        DYNAMIC, "fp32", profiles, {**OPTIONS, "timing_cache_dir": str(tmp_path / "cache")},
                        root / f"{model}.npz", TOL)
    return engine, json.loads(engine.with_suffix(".json").read_text()), rows


def test_the_double_is_strict_about_removed_names(trt):
    """[R1][R2][R3] the removed names do not exist, so code using them fails here as it would there."""
    assert not hasattr(trt.Builder, "build_engine") and not hasattr(trt.Builder, "max_batch_size")
    for name in ("execute_async_v2", "set_binding_shape", "execute_v2"):
        assert not hasattr(trt.IExecutionContext, name)
    for name in ("get_binding_index", "num_bindings", "binding_is_input", "get_binding_shape"):
        assert not hasattr(trt.ICudaEngine, name)
    assert not hasattr(trt.IBuilderConfig, "int8_calibrator") and not hasattr(trt.IBuilderConfig, "set_quantization_flag")
    if trt.__version__.startswith("11."):
        for flag in ("FP16", "INT8", "BF16", "FP8"):
            assert not hasattr(trt.BuilderFlag, flag)
        assert not hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
        assert not hasattr(trt.ICudaEngine, "device_memory_size")
    else:
        assert hasattr(trt.BuilderFlag, "FP16") and hasattr(trt.ICudaEngine, "device_memory_size")


def test_profiles_need_min_opt_max_in_order(trt):
    """[R4]"""
    profile = trt.Builder(trt.Logger()).create_optimization_profile()
    with pytest.raises(RuntimeError, match="inconsistent"):
        profile.set_shape("x", (4, 3), (2, 3), (8, 3))
    profile.set_shape("x", (1, 3), (2, 3), (8, 3))


def test_weak_typing_flags_are_refused_on_a_strongly_typed_10x_network(trt, models, tmp_path):
    """[R1] on 10.x the flags exist but cannot be combined with strong typing; on 11.x they do not exist."""
    sweep, root = models
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert trt.OnnxParser(network, trt.Logger()).parse_from_file(str(root / "tiny_text.onnx"))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for name in ("input_ids", "attention_mask"):
        profile.set_shape(name, (1, 4), (2, 8), (4, 16))
    config.add_optimization_profile(profile)
    if trt.__version__.startswith("10."):
        config.set_flag(trt.BuilderFlag.FP16)
        assert builder.build_serialized_network(network, config) is None


def test_engine_build_runs_strongly_typed_with_profiles_cache_and_sidecar(trt, models, tmp_path):
    """[R1][R2][R4][R5][R6] the builder's calls, the sidecar, and parity of the engine's outputs."""
    sweep, root = models
    trt.CALLS.clear()
    profiles = [sweep.profile("latency"), sweep.profile("small")]
    engine, sidecar, rows = _build(sweep, root, tmp_path, "tiny_text", profiles)
    build = next(args for call, args in trt.CALLS if call == "build")
    assert build["strongly_typed"] and build["flags"] == [] and build["workspace"] == 2**30 and build["level"] == 3
    assert build["profiles"][1]["input_ids"] == [[1, 4], [2, 8], [4, 16]]  # one engine, both profiles
    assert [p["name"] for p in sidecar["profiles"]] == ["latency", "small"]
    assert sidecar["backend_version"] == trt.__version__ and sidecar["device"] == "Fake GPU (tests)"
    assert sidecar["compute_capability"] == "9.0" and sidecar["device_memory_bytes"] == 1 << 20 and sidecar["strongly_typed"]
    assert ("set_optimization_profile_async", 1) in trt.CALLS  # parity of profile 1 ran in its own context
    assert {r["profile"] for r in rows} == {"latency", "small"} and all(r["passed"] for r in rows)
    assert max(r["max_abs_err"] for r in rows) < 1e-5  # the double computes with ONNX Runtime: real outputs
    cache = Path(sidecar["timing_cache"])
    assert cache.name == f"Fake_GPU_tests_cc9.0_trt{trt.__version__}.cache" and cache.exists()
    _build(sweep, root, tmp_path, "tiny_text", profiles, name="again")
    caches = [args for call, args in trt.CALLS if call == "set_timing_cache"]
    assert caches[-1]["hits"] >= 1  # the second build was given the first build's cache


def test_runner_binds_everything_and_refuses_shapes_outside_the_profile(trt, models, tmp_path):
    """[R4][R5]"""
    from trtpipe.backends import tensorrt as backend

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_sr", [sweep.profile("small")])
    runner = backend.Runner(engine, sidecar, profile="small", options=OPTIONS)
    assert runner.ranges["low_res"] == ((1, 3, 4, 4), (2, 3, 8, 8), (4, 3, 16, 16))
    out = runner.run({"low_res": np.random.randn(3, 3, 6, 10).astype(np.float32)})
    assert out[0].shape == (3, 3, 12, 20)  # output shape from the context after the input shapes
    with pytest.raises(ProfileError, match=r"shape 8x3x8x8 of input 'low_res' is outside profile 'small' \(min 1x3x4x4, max 4x3x16x16\)"):
        runner.run({"low_res": np.zeros((8, 3, 8, 8), np.float32)})
    context = runner.context
    context.addresses.clear()
    with pytest.raises(RuntimeError, match="before set_input_shape .* set_tensor_address"):
        context.execute_async_v3(runner.stream.handle)  # the double refuses to run unbound
    assert not context.set_input_shape("low_res", (5, 3, 8, 8))  # outside the active profile


def test_parser_failure_names_op_type_and_node(trt, models, tmp_path):
    """[R5 parser] one sentence with every rejected node."""
    import onnx
    from onnx import helper

    from trtpipe.backends import tensorrt as backend

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu0"), helper.make_node("NotATensorRTOp", ["r"], ["y"], name="custom1")],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph), str(path))
    sweep, _ = models
    with pytest.raises(TrtpipeError) as info:
        spec = ModelSpec("custom", (InputSpec("x", (4,)),))
        backend.build(BuildRequest(get("tensorrt"), path, tmp_path / "c.engine", spec, Variant.static(1), "fp32",
                                   (Profile.static(1),), with_defaults("tensorrt", {"timing_cache_dir": str(tmp_path)})))
    assert "failed on 1 node(s): NotATensorRTOp 'custom1'" in str(info.value) and "fix:" in str(info.value)


def test_a_foreign_engine_is_never_timed(trt, models, tmp_path, monkeypatch):
    """[R6] another TensorRT version or GPU: one sentence, no numbers."""
    from trtpipe.backends import tensorrt as backend

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    foreign = {**sidecar, "device": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}
    with pytest.raises(backend.EngineMismatch, match=r"built for TensorRT .* on NVIDIA A100-SXM4-80GB \(cc 8.0\), but this machine"):
        backend.Runner(engine, foreign, options=OPTIONS)
    other = "11.4.1" if trt.__version__.startswith("10.") else "10.13.0"
    with pytest.raises(backend.EngineMismatch, match=f"built for TensorRT {other}"):
        backend.Runner(engine, {**sidecar, "backend_version": other}, options=OPTIONS)


def test_gpu_timing_rows_and_trtexec_cross_check(trt, models, tmp_path, monkeypatch):
    """[R5][R7] the GPU harness through the runner; trtexec (a fake on PATH) is called on the same engine and shapes."""
    from trtpipe.benchmark import bench_columns, benchmark_engine
    from trtpipe.timing import TimingSettings

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "trtexec"
    fake.write_text(f"#!{sys.executable}\n" + '''import json, sys
args = dict(a.split("=", 1) for a in sys.argv[1:])
assert args["--loadEngine"].endswith(".engine"), args
assert args["--shapes"] in ("input_ids:2x8,attention_mask:2x8", "attention_mask:2x8,input_ids:2x8"), args
json.dump([{"startComputeMs": 0, "endComputeMs": 1, "computeMs": c, "latencyMs": c + 0.1, "inMs": 0.05, "outMs": 0.05}
           for c in (0.4, 0.5, 0.6)], open(args["--exportTimes"], "w"))
''')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    settings = TimingSettings(warmup_s=0.01, min_duration_s=0.05, min_iterations=5)
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [2], settings, 2,
                             profile_name="small", backend_options={**OPTIONS, "cuda_graph": True})
    row = frame.iloc[0]
    assert list(frame.columns) == bench_columns()
    assert row["trtexec_compute_ms_median"] == pytest.approx(0.5)
    assert row["compute_ms_median"] > 0 and row["h2d_ms_median"] >= 0 and row["enqueue_ms_median"] > 0
    assert bool(row["transfers_included"]) and bool(row["cuda_graph"]) and row["device"] == "Fake GPU (tests) (cc 9.0)"
    assert row["backend_version"] == trt.__version__ and row["iterations"] >= 5


def test_without_tensorrt_the_job_says_so_in_one_sentence(monkeypatch):
    """The real module is absent here: building fails with the reason and the fix, nothing else."""
    from trtpipe.backends import tensorrt as backend

    sys.modules.pop("tensorrt", None)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "doubles" not in p])
    with pytest.raises(BackendUnavailable, match=r"TensorRT is not installed on this machine .*fix: run the tensorrt backend on a GPU box"):
        backend.version()
