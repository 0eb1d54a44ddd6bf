"""Contract tests of the TensorRT backend against strict doubles of TensorRT 10.x and 11.x.

Nothing here runs real TensorRT (none can be installed on the machines this project reaches). The
double (tests/doubles/tensorrt) enforces documented rules, each citing its source (file, branch,
lines) in the double's docstring as [T1]..[T15]; the fake trtexec (tests/doubles/bin/trtexec) cites
samples/trtexec and samples/common. The tests below name the rules they rely on, and the audit
finding (F1..F11, project issue 12) each was written for; each F test failed on the code before it.

[R1] Strong typing: 11.x removed BuilderFlag.FP16/INT8/BF16/FP8 (and calibrators, quantization flags,
     ICudaEngine.device_memory_size); precision comes from the ONNX (AutoCast, Q/DQ). Precision flags are
     cleared with a warning by 10.x trtexec on a strongly typed network; what the builder does with them is
     not settled [T1][T14].
     https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html
[R2] NetworkDefinitionCreationFlag: EXPLICIT_BATCH deprecated/ignored in 10.x and gone in 11.x;
     STRONGLY_TYPED=1 opts in on 10.x, =0 and ignored on 11.x [T2].
[R3] Removed in 10.x: execute_async_v2, set_binding_shape, get_binding_index, build_engine, max_batch_size [T10].
[R4] Profiles: set_shape raises "Shape provided for {min|opt|max} is inconsistent with other shapes." [T5];
     a network with dynamic inputs needs a profile; set_input_shape returns False outside it [T12].
[R5] Execution: a profile per context, every input's shape and every I/O address (or output allocator)
     before execute_async_v3, which returns False rather than raising [T4][T7][T12].
[R6] An engine is tied to the TensorRT version that built it [T11]; a timing cache from another
     device/version is refused unless mismatches are ignored, and combine() skips other versions [T9].
[R7] trtexec --exportTimes writes a JSON array of records with h2dMs, computeMs, d2hMs, latencyMs
     (samples/common/sampleReporting.cpp release/10.13:367-372, release/11.0:368-373; samples/trtexec/tracer.py
     still reads the older inMs/outMs names, which no 10.x/11.x trtexec writes). Its defaults and flags differ
     by major version (bin/trtexec's docstring).
"""

import importlib
import json
import os
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
from trtpipe.backends.registry import with_defaults
from trtpipe.inputs import random_inputs
from trtpipe.spec import DYNAMIC, InputSpec, ModelSpec, Profile, Variant
from trtpipe.timing import TimingSettings

DOUBLES = Path(__file__).resolve().parent / "doubles"
REPO = Path(__file__).resolve().parents[1]
VERSIONS = ["10.13.0", "11.4.1"]
TOL = {"atol": 1e-4, "rtol": 1e-3}
OPTIONS = {"workspace_gib": 1, "optimization_level": 3, "include_transfers": True, "cuda_graph": False, "trtexec": True}


def forget_tensorrt():
    """Drop the double (and fake device) from sys.modules, and Polygraphy's cached handles on them: its lazy
    `tensorrt` modules import once per process, and its logger subclasses that module's ILogger."""
    for name in ("tensorrt", "fake_cuda"):
        sys.modules.pop(name, None)
    for name, module in list(sys.modules.items()):
        if name.startswith("polygraphy"):
            for value in list(vars(module).values()):
                if type(value).__name__ == "LazyModule" and object.__getattribute__(value, "module") is not None \
                        and getattr(object.__getattribute__(value, "module"), "__name__", "") == "tensorrt":
                    object.__setattr__(value, "module", None)
    trt_util = sys.modules.get("polygraphy.backend.trt.util")
    if trt_util is not None:
        trt_util.TRT_LOGGER = None


@pytest.fixture(params=VERSIONS)
def trt(request, monkeypatch, tmp_path):
    """The double of one TensorRT version, on a fake CUDA device."""
    monkeypatch.setenv("TRT_DOUBLE_VERSION", request.param)
    monkeypatch.setenv("TRTPIPE_TEST_DEVICE", "fake_cuda")
    monkeypatch.syspath_prepend(str(DOUBLES))
    forget_tensorrt()
    module = importlib.import_module("tensorrt")
    yield module
    forget_tensorrt()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("trt")
    sweep = validate(tiny_config(tiny_text=TEXT_MODEL, tiny_sr=SR_MODEL))
    for name, spec in sweep.models.items():
        make_reference(spec, None, sweep.reference_batches(name), root / f"{name}.npz")
        export_onnx(spec, None, DYNAMIC, root / f"{name}.onnx")
    return sweep, root


def _build(sweep, root, tmp_path, model, profiles, name="e", precision="fp32", **options):
    engine = tmp_path / f"{name}.engine"
    rows = build_engine("tensorrt", root / f"{model}.onnx", engine, engine.with_suffix(".json"), sweep.models[model],
                        DYNAMIC, precision, profiles, {**OPTIONS, "timing_cache_dir": str(tmp_path / "cache"), **options},
                        root / f"{model}.npz", TOL)
    return engine, json.loads(engine.with_suffix(".json").read_text()), rows


def _onnx(tmp_path, name, nodes, inputs, outputs):
    """A hand-written ONNX model (opset 18)."""
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs])
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def _build_direct(tmp_path, onnx_path, spec, batch, **options):
    """backend.build on a static variant, and the sidecar build_engine would write (no parity run)."""
    from trtpipe.backends import tensorrt as backend

    profile, variant = Profile.static(batch), Variant.static(batch)
    engine = tmp_path / f"{spec.name}.engine"
    opts = with_defaults("tensorrt", {**OPTIONS, "timing_cache_dir": str(tmp_path / "cache"), **options})
    fields = backend.build(BuildRequest(get("tensorrt"), onnx_path, engine, spec, variant, "fp32", (profile,), opts))
    sidecar = {"model": spec.name, "variant": variant.name, "precision": "fp32", "backend": "tensorrt",
               "profiles": [profile.sidecar_entry(spec, variant)], **backend.Runner.machine_identity(opts), **fields}
    return engine, sidecar, opts


def _fake_trtexec(monkeypatch, tmp_path):
    """tests/doubles/bin/trtexec on PATH; returns the file it logs each run to."""
    monkeypatch.setenv("PATH", f"{DOUBLES / 'bin'}{os.pathsep}{os.environ['PATH']}")
    runs = tmp_path / "trtexec-runs.jsonl"
    monkeypatch.setenv("TRTEXEC_DOUBLE_LOG", str(runs))
    monkeypatch.delenv("TRTEXEC_DOUBLE_VERSION", raising=False)  # the Python double's version unless a test says
    return runs


def _runs(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


FAST = TimingSettings(warmup_s=0.01, min_duration_s=0.03, min_iterations=4)


# --- the doubles --------------------------------------------------------------------------------------------------
def test_the_double_is_strict_about_removed_names(trt):
    """[R1][R2][R3][T10] the removed names do not exist, so code using them fails here as it would there."""
    assert not hasattr(trt.Builder, "build_engine") and not hasattr(trt.Builder, "max_batch_size")
    for name in ("execute_async_v2", "set_binding_shape", "execute_v2"):
        assert not hasattr(trt.IExecutionContext, name)
    for name in ("get_binding_index", "num_bindings", "binding_is_input", "get_binding_shape"):
        assert not hasattr(trt.ICudaEngine, name)
    assert not hasattr(trt.IBuilderConfig, "int8_calibrator") and not hasattr(trt.IBuilderConfig, "set_quantization_flag")
    if trt.__version__.startswith("11."):
        for flag in ("FP16", "INT8", "BF16", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS", "WEIGHTLESS"):
            assert not hasattr(trt.BuilderFlag, flag)
        assert not hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
        assert not hasattr(trt.ICudaEngine, "device_memory_size")
    else:
        assert hasattr(trt.BuilderFlag, "FP16") and hasattr(trt.ICudaEngine, "device_memory_size")


def test_the_double_keeps_tensorrts_enum_values_and_defaults(trt):
    """[T1][T2][T3] values from NvInfer.h per version; TF32 on by default; optimization level above 5 accepted."""
    flags = trt.BuilderFlag
    if trt.__version__.startswith("10."):
        assert (flags.FP16, flags.INT8, flags.REFIT, flags.TF32, flags.FP8, flags.BF16) == (0, 1, 4, 6, 15, 17)
        assert trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED == 1 and trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH == 0
    else:
        assert (flags.REFIT, flags.TF32, flags.VERSION_COMPATIBLE, flags.STRIP_PLAN) == (4, 6, 12, 18)
        assert trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED == 0 and trt.NetworkDefinitionCreationFlag.PREFER_JIT_PYTHON_PLUGINS == 1
    config = trt.Builder(trt.Logger()).create_builder_config()
    assert config.get_flag(trt.BuilderFlag.TF32)  # "Enabled by default."
    config.clear_flag(trt.BuilderFlag.TF32)
    assert not config.get_flag(trt.BuilderFlag.TF32)
    config.builder_optimization_level = 7  # "behavior identical to the maximum level", no error
    with pytest.raises(trt.NotSettled):
        config.builder_optimization_level = -1


def test_profiles_need_min_opt_max_in_order(trt):
    """[R4][T5] set_shape sets min first, so an order or rank error surfaces as the opt (or max) message."""
    profile = trt.Builder(trt.Logger()).create_optimization_profile()
    with pytest.raises(RuntimeError, match="Shape provided for opt is inconsistent"):
        profile.set_shape("x", (4, 3), (2, 3), (8, 3))
    with pytest.raises(RuntimeError, match="Shape provided for max is inconsistent"):
        profile.set_shape("x", (1, 3), (2, 3), (8, 3, 1))
    profile.set_shape("x", (1, 3), (2, 3), (8, 3))
    assert bool(profile)


def test_the_double_returns_false_where_tensorrt_does(trt, models, tmp_path):
    """[T4][T6][T7][T12] bools, not exceptions; the swapped keywords of get_tensor_profile_values."""
    from trtpipe.backends import tensorrt as backend

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_sr", [sweep.profile("small")])
    runner = backend.Runner(engine, sidecar, profile="small", options=OPTIONS)
    context = runner.context
    assert context.set_tensor_address("no_such_tensor", 0) is False
    context.addresses.clear()
    assert context.execute_async_v3(runner.stream.handle) is False  # unbound: False and a logged error
    assert not context.set_input_shape("low_res", (5, 3, 8, 8))  # outside the active profile
    assert not runner.engine.get_tensor_profile_shape(runner.output_names[0], 0)[0]  # invalid Dims for an output
    with pytest.raises(RuntimeError, match="does not correspond to an input shape tensor"):
        runner.engine.get_tensor_profile_values(0, "low_res")
    with pytest.raises(TypeError):
        runner.engine.get_tensor_profile_values(name="low_res", profile_index=0)

    class NoInit(trt.IOutputAllocator):
        def __init__(self):
            pass

    with pytest.raises(TypeError, match="must be called"):
        context.set_output_allocator(runner.output_names[0], NoInit())


def test_the_fake_trtexec_takes_each_versions_flags(trt, models, tmp_path, monkeypatch):
    """[R7] 10.x rejects the 11.x overrides as unknown options (fatal); 11.x takes the old flags as no-ops."""
    import subprocess

    sweep, root = models
    engine, _, _ = _build(sweep, root, tmp_path, "tiny_sr", [sweep.profile("small")])
    runs = _fake_trtexec(monkeypatch, tmp_path)
    base = [str(DOUBLES / "bin/trtexec"), f"--loadEngine={engine}", "--shapes=low_res:2x3x8x8"]
    new = subprocess.run(base + ["--noCudaGraph", "--includeDataTransfers"], capture_output=True, text=True)
    old = subprocess.run(base + ["--useCudaGraph", "--noDataTransfers"], capture_output=True, text=True)
    if trt.__version__.startswith("10."):
        assert new.returncode == 1 and "Unknown option: --noCudaGraph" in new.stdout
        assert old.returncode == 0
        assert json.loads(runs.read_text().splitlines()[-1])["cuda_graph"] is True
    else:
        assert new.returncode == 0 and old.returncode == 0
        first, second = (json.loads(line) for line in runs.read_text().splitlines())
        assert (first["cuda_graph"], first["transfers"]) == (False, True)
        assert (second["cuda_graph"], second["transfers"]) == (True, False)  # deprecated no-ops: the 11.x defaults


def test_weak_typing_flags_on_a_strongly_typed_10x_network_are_not_settled(trt, models, tmp_path):
    """[R1][T14] on 10.x the flags exist; trtexec clears them with a warning on a strongly typed network, what the
    builder does is not documented (the double refuses to guess); on 11.x they do not exist."""
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
        with pytest.raises(trt.NotSettled, match="trtexec warns and clears them"):
            builder.build_serialized_network(network, config)
    else:
        assert not hasattr(trt.BuilderFlag, "FP16")


# --- the backend ----------------------------------------------------------------------------------------------------
def test_engine_build_runs_strongly_typed_with_profiles_cache_and_sidecar(trt, models, tmp_path):
    """[R1][R2][R4][R5][R6] the builder's calls (through Polygraphy's loaders), the sidecar, parity of the outputs."""
    sweep, root = models
    trt.CALLS.clear()
    profiles = [sweep.profile("latency"), sweep.profile("small")]
    engine, sidecar, rows = _build(sweep, root, tmp_path, "tiny_text", profiles)
    build = next(args for call, args in trt.CALLS if call == "build")
    assert build["strongly_typed"] and build["flags"] == [] and build["workspace"] == 2**30 and build["level"] == 3
    assert build["profiles"][1]["shapes"]["input_ids"] == [[1, 4], [2, 8], [4, 16]]  # one engine, both profiles
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
    assert caches[-1]  # the second build was given the first build's cache entries


def test_f1_fp32_clears_tf32_and_tf32_is_its_own_precision(trt, models, tmp_path):
    """F1 [T1]: TensorRT enables TF32 by default; fp32 engines must clear it, `tf32` engines allow it (built from
    the fp32 ONNX, like the torch backends' tf32)."""
    from trtpipe.backends import registry

    sweep, root = models
    trt.CALLS.clear()
    _, fp32, rows = _build(sweep, root, tmp_path, "tiny_sr", [sweep.profile("small")])
    _, tf32, tf32_rows = _build(sweep, root, tmp_path, "tiny_sr", [sweep.profile("small")], name="tf32", precision="tf32")
    builds = [args for call, args in trt.CALLS if call == "build"]
    assert [b["tf32"] for b in builds] == [False, True] and "TF32" not in builds[0]["flags"]
    assert fp32["tf32"] is False and tf32["tf32"] is True
    assert max(r["max_abs_err"] for r in rows) < 1e-5  # true fp32
    assert max(r["max_abs_err"] for r in tf32_rows) > 1e-5  # the double rounds MatMul/Conv inputs as TF32 does
    backend = registry.get("tensorrt")
    assert "tf32" in backend.precisions and backend.fp32_math == "fp32"


def test_f2_trtexec_times_what_the_harness_timed_on_each_version(trt, models, tmp_path, monkeypatch):
    """F2 [R7]: 11.0 turned CUDA graphs (and spin wait) on and transfers off by default, and only 11.x knows
    --noCudaGraph/--includeDataTransfers: trtexec must run with our transfers and graph settings either way."""
    from trtpipe.benchmark import benchmark_engine

    sweep, root = models
    engine, _, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    runs = _fake_trtexec(monkeypatch, tmp_path)
    for transfers, graph in ((True, False), (False, True)):
        frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [2], FAST, 2,
                                 profile_name="small",
                                 backend_options={**OPTIONS, "include_transfers": transfers, "cuda_graph": graph})
        row = frame.iloc[0]
        ran = json.loads(runs.read_text().splitlines()[-1])
        assert row["trtexec_compute_ms_median"] > 0  # the median computeMs of the fake's trace
        assert (ran["transfers"], ran["cuda_graph"]) == (bool(row["transfers_included"]), bool(row["cuda_graph"])) \
            == (transfers, graph)
        assert ran["spin_wait"]  # our harness spin-waits on its events


def test_f3_trtexec_cross_checks_every_profile(trt, models, tmp_path, monkeypatch):
    """F3: --useProfile=N (10.3+, 11.x) selects the profile; the cross-check is no longer profile 0 only."""
    from trtpipe.benchmark import benchmark_engine

    sweep, root = models
    engine, _, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("latency"), sweep.profile("small")])
    runs = _fake_trtexec(monkeypatch, tmp_path)
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [2], FAST, 2,
                             profile_name="small", backend_options=OPTIONS)
    assert frame.iloc[0]["trtexec_compute_ms_median"] > 0
    ran = json.loads(runs.read_text().splitlines()[-1])
    assert ran["profile"] == 1 and "--useProfile=1" in ran["argv"]


def test_f4_binding_happens_before_the_timed_region(trt, models, tmp_path):
    """F4 [R5]: shapes and addresses are bound before the iteration's first event, so compute_ms times the
    kernels trtexec times, not the host's binding calls."""
    import fake_cuda
    from trtpipe.backends import tensorrt as backend

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    runner = backend.Runner(engine, sidecar, profile="small", options=OPTIONS)
    sets = [random_inputs(sweep.models["tiny_text"], 2, "opt", 0, f"b/{k}") for k in range(2)]
    fake_cuda.TRACE.clear()
    runner.benchmark(sets, FAST, 2)
    trace = [t[0] for t in fake_cuda.TRACE]
    timed = trace[trace.index("record"):]
    inside = []  # calls between an iteration's first event and its enqueue
    for i, call in enumerate(timed):
        if call == "execute_async_v3":
            j = i
            while j > 0 and timed[j - 1] != "record":
                j -= 1
            inside += timed[j:i]
    assert timed.count("execute_async_v3") >= 4 and not inside


def test_f5_data_dependent_outputs_use_an_output_allocator_and_no_cuda_graph(trt, tmp_path):
    """F5 [T7]: NonZero's output size depends on the data: -1 in its shape, an IOutputAllocator, no CUDA graph."""
    import fake_cuda
    import onnx
    from onnx import helper

    from trtpipe.backends import tensorrt as backend

    path = _onnx(tmp_path, "nonzero", [helper.make_node("NonZero", ["x"], ["idx"], name="nz")],
                 [("x", onnx.TensorProto.FLOAT, [3, 4])], [("idx", onnx.TensorProto.INT64, [2, "n"])])
    spec = ModelSpec("nonzero", (InputSpec("x", (4,)),))
    engine, sidecar, opts = _build_direct(tmp_path, path, spec, 3)
    runner = backend.Runner(engine, sidecar, options={**opts, "cuda_graph": True})
    x = np.array([[0, 1, 0, 2], [3, 0, 0, 0], [0, 0, 4, 5]], np.float32)
    (idx,) = runner.run({"x": x})
    np.testing.assert_array_equal(idx, np.stack(np.nonzero(x)))
    (fewer,) = runner.run({"x": np.eye(3, 4, dtype=np.float32)})  # another size, the same allocator
    assert fewer.shape == (2, 3)
    captures = runner.device.captures
    stats = runner.benchmark([{"x": x}, {"x": np.ones((3, 4), np.float32)}], FAST, 3)
    assert runner.device.captures == captures and stats["cuda_graph"] is False
    assert "no CUDA graph: outputs whose size depends on the data" in stats["warnings"] and stats["compute_ms_median"] > 0
    assert fake_cuda.CAPTURING[0] is None


def test_f6_shape_tensor_inputs_get_value_ranges_and_host_memory(trt, tmp_path):
    """F6 [T6]: a shape-tensor input gets set_shape_input values at build (from its `range`), host memory at run,
    and its values are checked against get_tensor_profile_values."""
    import onnx
    from onnx import helper

    from trtpipe.backends import tensorrt as backend

    path = _onnx(tmp_path, "reshape", [helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")],
                 [("x", onnx.TensorProto.FLOAT, [2, 12]), ("shape", onnx.TensorProto.INT64, [2])],
                 [("y", onnx.TensorProto.FLOAT, ["a", "b"])])
    spec = ModelSpec("reshape", (InputSpec("x", (12,)), InputSpec("shape", (), "int64", range=(1, 25))))
    trt.CALLS.clear()
    engine, sidecar, opts = _build_direct(tmp_path, path, spec, 2)
    build = next(args for call, args in trt.CALLS if call == "build")
    assert build["profiles"][0]["values"] == {"shape": [[1, 1], [12, 12], [24, 24]]}
    assert sidecar["shape_tensor_values"] == {"static": {"shape": [[1, 1], [12, 12], [24, 24]]}}
    runner = backend.Runner(engine, sidecar, options=opts)
    assert runner.shape_inputs == ["shape"] and runner.value_ranges["shape"] == ((1, 1), (12, 12), (24, 24))
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    (y,) = runner.run({"x": x, "shape": np.array([4, 6])})
    np.testing.assert_array_equal(y, x.reshape(4, 6))
    (y,) = runner.run({"x": x, "shape": np.array([3, 8])})  # another shape: the values are read at each enqueue
    assert y.shape == (3, 8)
    with pytest.raises(ProfileError, match=r"values \[1, 30\] of shape-tensor input 'shape' are outside profile 'static' "
                                           r"\(min \[1, 1\], max \[24, 24\]\)"):
        runner.run({"x": x, "shape": np.array([1, 30])})
    stats = runner.benchmark([{"x": x, "shape": np.array([4, 6])}, {"x": x, "shape": np.array([6, 4])}], FAST, 2)
    assert stats["compute_ms_median"] > 0


def test_f6_a_shape_tensor_without_a_value_range_is_one_sentence(trt, tmp_path):
    """F6: without a `range` TensorRT cannot be given the values' range; say so, with the fix."""
    import onnx
    from onnx import helper

    path = _onnx(tmp_path, "reshape", [helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")],
                 [("x", onnx.TensorProto.FLOAT, [2, 12]), ("shape", onnx.TensorProto.INT64, [2])],
                 [("y", onnx.TensorProto.FLOAT, ["a", "b"])])
    spec = ModelSpec("reshape", (InputSpec("x", (12,)), InputSpec("shape", (), "int64")))
    with pytest.raises(TrtpipeError, match=r"input 'shape' is a shape tensor .* fix: declare it as an int64/int32 input "
                                           r"with `range: \[low, high\]`"):
        _build_direct(tmp_path, path, spec, 2)


def test_f7_a_failed_cuda_graph_capture_falls_back_to_plain_launches(trt, models, tmp_path, monkeypatch):
    """F7 [T8]: trtexec falls back when a capture fails; so does the harness, and the row says so."""
    from trtpipe.backends import tensorrt as backend

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    runner = backend.Runner(engine, sidecar, profile="small", options={**OPTIONS, "cuda_graph": True})
    monkeypatch.setattr(trt, "CAPTURE_UNSUPPORTED", True)
    sets = [random_inputs(sweep.models["tiny_text"], 2, "opt", 0, f"b/{k}") for k in range(2)]
    stats = runner.benchmark(sets, FAST, 2)
    assert stats["cuda_graph"] is False and stats["compute_ms_median"] > 0 and stats["iterations"] >= 4
    assert "CUDA graph capture failed" in stats["warnings"] and "timed without a graph" in stats["warnings"]


def test_f9_concurrent_builds_merge_their_timing_caches_under_polygraphys_lock(trt, models, tmp_path, monkeypatch):
    """F9 [T9]: a build that finishes while another is running must not drop the other's timings: the cache is
    saved under a lock (Polygraphy's LockFile: `<cache>.lock`) and combined with what is on disk."""
    sweep, root = models
    _, first, _ = _build(sweep, root, tmp_path, "tiny_sr", [sweep.profile("small")], name="first")
    cache_file = Path(first["timing_cache"])
    config = trt.Builder(trt.Logger()).create_builder_config()
    other = config.create_timing_cache(b"")
    other.entries["another-engine-layer"] = 1
    original = trt.Builder.build_serialized_network

    def build_while_another_finishes(self, network, config):
        out = original(self, network, config)
        cache_file.write_bytes(bytes(other.serialize()))  # the concurrent build saved its cache meanwhile
        return out

    monkeypatch.setattr(trt.Builder, "build_serialized_network", build_while_another_finishes)
    _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")], name="second")
    entries = config.create_timing_cache(cache_file.read_bytes()).entries
    assert "another-engine-layer" in entries  # combined, not overwritten
    assert any(key.startswith("/") or ":" in key for key in entries if key != "another-engine-layer")  # and ours
    assert Path(f"{cache_file}.lock").exists()  # Polygraphy's lock file (never deleted)


def test_f10_profile_and_binding_failures_are_one_sentence(trt, models, tmp_path, monkeypatch):
    """F10 [T4][T5]: set_shape's RuntimeError becomes a sentence naming profile and input; a False from
    set_tensor_address stops the run instead of being ignored."""
    from trtpipe.backends import tensorrt as backend

    sweep, root = models
    bad = Profile("bad", 4, 2, 8)
    with pytest.raises(ProfileError, match=r"profile 'bad' gives input 'low_res' min \(4, 3, 4, 4\), opt \(2, 3, 8, 8\).*"
                                           r"not min <= opt <= max .*fix:"):
        _build(sweep, root, tmp_path, "tiny_sr", [bad])
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_sr", [sweep.profile("small")])
    runner = backend.Runner(engine, sidecar, profile="small", options=OPTIONS)
    output = runner.output_names[0]
    original = trt.IExecutionContext.set_tensor_address
    monkeypatch.setattr(trt.IExecutionContext, "set_tensor_address",
                        lambda self, name, memory: False if name == output else original(self, name, memory))
    with pytest.raises(TrtpipeError, match=f"set_tensor_address refused output '{output}'"):
        runner.run({"low_res": np.zeros((2, 3, 8, 8), np.float32)})


def test_f11_each_input_set_runs_with_its_own_shapes(trt, models, tmp_path):
    """F11 [R5]: shapes are set when a step runs, not when it is prepared: two input sets of different shapes
    each run with their own (the double would otherwise read past the smaller set's buffers)."""
    from trtpipe.backends import tensorrt as backend

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    runner = backend.Runner(engine, sidecar, profile="small", options=OPTIONS)
    spec = sweep.models["tiny_text"]
    short, long = random_inputs(spec, 2, "min", 0, "a"), random_inputs(spec, 2, "max", 0, "b")
    assert short["input_ids"].shape != long["input_ids"].shape
    stats = runner.benchmark([short, long], FAST, 2)
    assert stats["compute_ms_median"] > 0 and stats["iterations"] >= 4


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


def test_parser_failure_names_op_type_and_node(trt, models, tmp_path):
    """[R5 parser] one sentence with every rejected node (Polygraphy only says "Could not parse ONNX correctly")."""
    import onnx
    from onnx import helper

    from trtpipe.backends import tensorrt as backend

    path = _onnx(tmp_path, "custom", [helper.make_node("Relu", ["x"], ["r"], name="relu0"),
                                      helper.make_node("NotATensorRTOp", ["r"], ["y"], name="custom1")],
                 [("x", onnx.TensorProto.FLOAT, [1, 4])], [("y", onnx.TensorProto.FLOAT, [1, 4])])
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
    """[R5][R7] the GPU harness through the runner; trtexec is called on the same engine, profile and shapes."""
    from trtpipe.benchmark import bench_columns, benchmark_engine

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    runs = _fake_trtexec(monkeypatch, tmp_path)
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [2], FAST, 2,
                             profile_name="small", backend_options={**OPTIONS, "cuda_graph": True})
    row = frame.iloc[0]
    assert list(frame.columns) == bench_columns()
    assert row["trtexec_compute_ms_median"] > 0
    ran = json.loads(runs.read_text())
    assert ran["shapes"] == {"input_ids": [2, 8], "attention_mask": [2, 8]}  # quoted names, parsed as trtexec does
    assert "--shapes='input_ids':2x8,'attention_mask':2x8" in ran["argv"]
    assert row["compute_ms_median"] > 0 and row["h2d_ms_median"] >= 0 and row["enqueue_ms_median"] > 0
    assert bool(row["transfers_included"]) and bool(row["cuda_graph"]) and row["device"] == "Fake GPU (tests) (cc 9.0)"
    assert row["backend_version"] == trt.__version__ and row["iterations"] >= 4


def test_without_tensorrt_the_job_says_so_in_one_sentence(monkeypatch):
    """The real module is absent here: building fails with the reason and the fix, nothing else."""
    from trtpipe.backends import tensorrt as backend

    forget_tensorrt()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "doubles" not in p])
    with pytest.raises(BackendUnavailable, match=r"TensorRT is not installed on this machine .*fix: run the tensorrt backend on a GPU"):
        backend.version()


# --- issue 24: the first real run ------------------------------------------------------------------------------------
def test_trtexec_of_another_tensorrt_is_not_run_and_the_row_says_why(trt, models, tmp_path, monkeypatch):
    """The cross-check asks trtexec its version (its banner, [TensorRT vMMmmpp]) and skips it, with one sentence in
    the row, when that is not the engine's TensorRT: an engine loads only in the TensorRT that built it [T11]."""
    from trtpipe.benchmark import benchmark_engine

    sweep, root = models
    engine, _, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    runs = _fake_trtexec(monkeypatch, tmp_path)
    other = "11.1.0" if trt.__version__.startswith("10.") else "10.16.0"
    monkeypatch.setenv("TRTEXEC_DOUBLE_VERSION", other)
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [2], FAST, 2,
                             profile_name="small", backend_options=OPTIONS)
    row = frame.iloc[0]
    assert np.isnan(row["trtexec_compute_ms_median"]) and not runs.exists()  # only --help ran, which logs no run
    assert "no trtexec cross-check: " in row["warnings"] and f"is TensorRT {other} and the engine TensorRT " \
        f"{trt.__version__}" in row["warnings"]


def test_trtexec_version_is_read_from_its_banner(trt, monkeypatch):
    """trtexec.cpp reports the test start (with NV_TENSORRT_VERSION) before it parses --help."""
    from trtpipe.backends.tensorrt import same_release, trtexec_version

    monkeypatch.setenv("TRTEXEC_DOUBLE_VERSION", "10.16.1")
    assert trtexec_version(str(DOUBLES / "bin/trtexec")) == "10.16.1"
    assert trtexec_version("/bin/true") is None
    assert same_release("10.13.0.35", "10.13.0") and not same_release("10.13.0.35", "10.13.1")


def test_trtexec_shapes_are_quoted_and_names_it_cannot_split_are_skipped():
    """trtexec splits --shapes on every ',' and then at a quoted name or the last ':' (sampleOptions.cpp)."""
    from trtpipe.backends.tensorrt import trtexec_shapes

    feeds = {"input:0": np.zeros((2, 8)), "n": np.array([3, 4], dtype=np.int64)}
    assert trtexec_shapes(feeds, ["n"]) == ("'input:0':2x8,'n':3x4", None)
    spec, why = trtexec_shapes({"a,b": np.zeros((1, 2))}, [])
    assert spec is None and "'a,b'" in why and "splits the list on every ','" in why


def test_trtexec_is_timed_with_one_inference_in_flight_like_the_harness(trt, models, tmp_path, monkeypatch):
    """By default trtexec keeps two inferences in flight, so its start event waits behind the previous inference and
    its compute time leaves out the launch delay our harness (one at a time) includes; --exposeDMA makes it one
    (sampleInference.cpp: depth = 1 + overlap). The fake: 0.1 ms of GPU work behind 0.5 ms of launching."""
    from trtpipe.benchmark import benchmark_engine

    sweep, root = models
    engine, _, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    runs = _fake_trtexec(monkeypatch, tmp_path)
    monkeypatch.setenv("TRTEXEC_DOUBLE_GPU_MS", "0.1")
    monkeypatch.setenv("TRTEXEC_DOUBLE_LAUNCH_MS", "0.5")
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [2], FAST, 2,
                             profile_name="small", backend_options=OPTIONS)
    assert _runs(runs)[-1]["in_flight"] == 1 and "--exposeDMA" in _runs(runs)[-1]["argv"]
    assert frame.iloc[0]["trtexec_compute_ms_median"] >= 0.45  # the launch-bound span, as our harness sees it


def test_each_input_set_is_captured_after_a_plain_enqueue_of_its_own_bindings(trt, models, tmp_path):
    """[T15] trtexec enqueues once uncaptured with the bindings it then captures; with several input sets on one
    context the last plain enqueue before a capture must be that set's."""
    from trtpipe.backends import tensorrt as backend

    sweep, root = models
    engine, sidecar, _ = _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    runner = backend.Runner(engine, sidecar, profile="small", options={**OPTIONS, "cuda_graph": True})
    sets = [random_inputs(sweep.models["tiny_text"], b, "opt", 0, f"b/{b}") for b in (1, 2, 4)]
    stats = runner.benchmark(sets, FAST, 2)
    assert stats["cuda_graph"] is True and "capture failed" not in stats["warnings"]


def test_a_polygraphy_error_keeps_its_own_text(trt, models, tmp_path, monkeypatch):
    """A Polygraphy exception the ONNX parser did not cause is reported with its own text, not as 0 failed nodes."""
    from polygraphy.backend.trt import NetworkFromOnnxPath
    from polygraphy.exception import PolygraphyException

    def broken(self):
        raise PolygraphyException("Model does not exist or was not provided somehow")

    monkeypatch.setattr(NetworkFromOnnxPath, "call_impl", broken)
    sweep, root = models
    with pytest.raises(TrtpipeError, match=r"Polygraphy could not build TensorRT's network \(Model does not exist") as err:
        _build(sweep, root, tmp_path, "tiny_text", [sweep.profile("small")])
    assert "0 node(s)" not in str(err.value)
