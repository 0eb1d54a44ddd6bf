"""Contract tests of the onnxruntime_tensorrt backend (ONNX Runtime's TensorRT execution provider) against a strict
double of onnxruntime-gpu 1.31.1 (tests/doubles/onnxruntime_trt) on a fake CUDA device.

No TensorRT runs here or anywhere this project reaches. The double executes ONNX Runtime 1.31.1's own Python
layer on a fake native module whose rules cite the ONNX Runtime sources ([O1]..[O17] in its docstring); the
tests drive the real build() and Runner of trtpipe/backends/ort_gpu.py through it, and name the rules they
rely on.
"""

import importlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from onnxruntime.capi.onnxruntime_pybind11_state import Fail  # the wheel's class, which the double raises

from helpers import SR_MODEL, TEXT_MODEL, tiny_config
from trtpipe.backends.base import BuildRequest
from trtpipe.backends.registry import get
from trtpipe.config import validate
from trtpipe.backends.registry import with_defaults
from trtpipe.engine import build_engine
from trtpipe.errors import BackendUnavailable, EngineMismatch, ProfileError, TrtpipeError
from trtpipe.export import export_onnx
from trtpipe.inputs import random_inputs
from trtpipe.reference import make_reference
from trtpipe.spec import DYNAMIC, InputSpec, ModelSpec, Profile, Variant
from trtpipe.timing import TimingSettings

DOUBLES = Path(__file__).resolve().parent / "doubles"
TRT_EP, CUDA_EP, CPU_EP = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
OPTIONS = {"workspace_gib": 1, "optimization_level": 3, "include_transfers": True}
TOL = {"atol": 1e-4, "rtol": 1e-3}
FAST = TimingSettings(warmup_s=0.01, min_duration_s=0.03, min_iterations=4)


def _forget():
    for name in ("onnxruntime_trt", "fake_cuda"):
        sys.modules.pop(name, None)


@pytest.fixture
def ortrt(monkeypatch):
    """The double as `onnxruntime` (TensorRT EP, CUDA EP, libnvinfer 10.13.0) on a fake CUDA device."""
    import trtpipe.backends.onnxruntime  # noqa: F401  (the CPU backend keeps the real ONNX Runtime it imported)

    monkeypatch.setenv("TRTPIPE_TEST_DEVICE", "fake_cuda")
    monkeypatch.delenv("ORT_TENSORRT_UNAVAILABLE", raising=False)
    monkeypatch.syspath_prepend(str(DOUBLES))
    os.environ.pop("NVIDIA_TF32_OVERRIDE", None)  # fp32 builds set it for their process; a test is not one
    _forget()
    double = importlib.import_module("onnxruntime_trt")
    double.install(monkeypatch)
    yield double
    _forget()
    os.environ.pop("NVIDIA_TF32_OVERRIDE", None)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ortrt")
    sweep = validate(tiny_config(tiny_text=TEXT_MODEL, tiny_sr=SR_MODEL))
    for name, spec in sweep.models.items():
        make_reference(spec, None, sweep.reference_batches(name), root / f"{name}.npz")
        export_onnx(spec, None, DYNAMIC, root / f"{name}.onnx")
    return sweep, root


def _build(sweep, root, engine, model="tiny_text", profile="small", **options):
    engine = Path(engine)
    rows = build_engine("onnxruntime_tensorrt", root / f"{model}.onnx", engine, engine.with_suffix(".json"),
                        sweep.models[model], DYNAMIC, "fp32", [sweep.profile(profile)], {**OPTIONS, **options},
                        root / f"{model}.npz", TOL)
    return json.loads(engine.with_suffix(".json").read_text()), rows


def _builds(double):
    return [args for call, args in double.WORLD.calls if call == "build"]


def _errors(double):
    return [m for severity, m in double.WORLD.log if severity == "ERROR"]


def _trt_session(ort, path, options, **kwargs):
    so = ort.SessionOptions()
    return ort.InferenceSession(str(path), sess_options=so, providers=[(TRT_EP, options), (CUDA_EP, {})], **kwargs)


# --- the double -----------------------------------------------------------------------------------------------------
def test_the_double_refuses_what_onnx_runtime_refuses(ortrt, models, capsys):
    """[O1][O4][O6] unknown keys and other boolean spellings fail; there is no strongly-typed option; with
    ONNX Runtime's default enable_fallback the session silently lands on CUDA instead."""
    ort = sys.modules["onnxruntime"]
    _, root = models
    model = root / "tiny_sr.onnx"
    with pytest.raises(RuntimeError, match="Invalid TensorRT EP option: trt_strongly_typed"):
        _trt_session(ort, model, {"trt_strongly_typed": "True"}, enable_fallback=0)
    with pytest.raises(RuntimeError, match="'trt_dump_ep_context_model' should be 'True' or 'False'"):
        _trt_session(ort, model, {"trt_dump_ep_context_model": "1"}, enable_fallback=0)
    with pytest.raises(RuntimeError, match='Unknown provider option: "use_fp16"'):
        ort.InferenceSession(str(model), providers=[(CUDA_EP, {"use_fp16": "1"})], enable_fallback=0)
    sess = _trt_session(ort, model, {"trt_dump_ep_context_model": "1"})  # enable_fallback defaults to 1
    assert sess.get_providers() == [CUDA_EP, CPU_EP] and "Falling back to" in capsys.readouterr().out


def test_explicit_profiles_must_name_every_dynamic_input(ortrt, models, tmp_path):
    """[O8][O9] a dynamic input without a profile fails the build; a malformed profile string only warns, and
    the engine (and its EP-context model) is then left to the first run."""
    ort = sys.modules["onnxruntime"]
    _, root = models
    ctx = tmp_path / "e.ctx.onnx"
    dump = {"trt_dump_ep_context_model": "True", "trt_ep_context_file_path": str(ctx), "trt_ep_context_embed_mode": "1"}
    half = {f"trt_profile_{w}_shapes": f"input_ids:{s}" for w, s in (("min", "1x4"), ("opt", "2x8"), ("max", "4x16"))}
    with pytest.raises(Fail, match="no associated shape profiles provided: attention_mask"):
        _trt_session(ort, root / "tiny_text.onnx", {**dump, **half}, enable_fallback=0)
    malformed = {**half, "trt_profile_max_shapes": "input_ids:"}
    sess = _trt_session(ort, root / "tiny_text.onnx", {**dump, **malformed}, enable_fallback=0)
    assert sess.get_providers()[0] == TRT_EP and not ctx.exists()
    assert any("'trt_profile_max_shapes' is wrong" in m for _, m in ortrt.WORLD.log)


# --- the backend ----------------------------------------------------------------------------------------------------
def test_build_dumps_a_strongly_typed_ep_context_engine_and_its_sidecar(ortrt, models, tmp_path):
    """[O9][O10][O13][O15] the real build: explicit profiles for every dynamic dim, no precision flag (strongly
    typed), the EP-context model as the engine, its sidecar, and parity through a reload of that model."""
    sweep, root = models
    engine = tmp_path / "e.ctx.onnx"
    sidecar, rows = _build(sweep, root, engine)
    (build,) = _builds(ortrt)
    assert build["profiles"] == {"input_ids": [[[1, 4], [2, 8], [4, 16]]], "attention_mask": [[[1, 4], [2, 8], [4, 16]]]}
    assert build["strongly_typed"] and build["flags"] == [] and build["workspace"] == 2**30 and build["level"] == 3
    assert sidecar["providers"] == [TRT_EP, CUDA_EP] and sidecar["backend_version"] == "1.31.1"
    assert sidecar["tensorrt_version"] == "10.13.0" and sidecar["strongly_typed"] is True
    assert sidecar["ep_context_embed_mode"] == 1 and sidecar["device"] == "Fake GPU (tests)"
    model = onnx.load(str(engine))
    (node,) = model.graph.node
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert (node.op_type, node.domain, attrs["embed_mode"]) == ("EPContext", "com.microsoft", 1)
    assert attrs["hardware_architecture"] == b"90" and attrs["ep_cache_context"].startswith(b"DOUBLE-TRT-ENGINE")
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    assert {r["profile"] for r in rows} == {"small"} and all(r["passed"] for r in rows)
    assert max(r["max_abs_err"] for r in rows) < 1e-5  # the double runs the ONNX with ONNX Runtime: real outputs


def test_caches_and_context_model_stay_in_the_engine_folder_with_relative_paths(ortrt, models, tmp_path, monkeypatch):
    """[O11][O13] with the relative paths Snakemake hands, nothing the EP writes may land outside the engine
    folder (the timing cache included: it goes where trt_timing_cache_path says, which is not relative to the
    context model), and the EP must log no error (it logs one for an absolute trt_engine_cache_path when it
    dumps an EP-context model)."""
    sweep, root = models
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    folder = Path("results/engines/onnxruntime_tensorrt")
    sidecar, rows = _build(sweep, root, folder / "dynamic.fp32.small.ctx.onnx")
    assert all(r["passed"] for r in rows) and not _errors(ortrt)
    (build,) = _builds(ortrt)
    timing = Path(build["timing_cache"])
    assert timing.exists() and timing.resolve().parent.parent == (work / folder).resolve()
    written = {p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()}
    assert all(p.startswith(folder.as_posix() + "/") for p in written), written


def test_a_rebuild_works_and_leaves_no_engine_copies_beside_the_context_model(ortrt, models, tmp_path):
    """[O11][O12] the EP-context model embeds the engine (embed mode 1); an engine cache would only duplicate
    it beside the model on every build (its name hashes the model file's name), and a cache hit skips the
    EP-context dump. The second build reuses the timing cache."""
    sweep, root = models
    engine = tmp_path / "engines" / "e.ctx.onnx"
    _build(sweep, root, engine)
    engine.unlink()
    _build(sweep, root, engine)
    first, second = _builds(ortrt)
    assert not first["timing_cache_read"] and second["timing_cache_read"]
    leftovers = [p.name for p in tmp_path.rglob("*") if p.suffix in (".engine", ".profile")]
    assert engine.exists() and leftovers == [] and not _errors(ortrt)


def test_fp16_comes_from_the_onnx_and_the_network_stays_strongly_typed(ortrt, tmp_path):
    """[O4][O10] an fp16 engine is built from the fp16 ONNX with no trt_fp16_enable (which would turn strong
    typing off and let TensorRT choose precisions); the sidecar says strongly typed."""
    from trtpipe.backends import ort_gpu

    nodes = [helper.make_node("Cast", ["x"], ["h"], to=onnx.TensorProto.FLOAT16),
             helper.make_node("Mul", ["h", "w"], ["y"])]
    w = onnx.numpy_helper.from_array(np.full((1, 4), 0.5, np.float16), "w")
    graph = helper.make_graph(nodes, "half", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT16, [2, 4])], [w])
    path = tmp_path / "half.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    spec = ModelSpec("half", (InputSpec("x", (4,)),))
    request = BuildRequest(get("onnxruntime_tensorrt"), path, tmp_path / "h.ctx.onnx", spec, Variant.static(2), "fp16",
                           (Profile.static(2),), with_defaults("onnxruntime_tensorrt", OPTIONS))
    fields = ort_gpu.build(request)
    (build,) = _builds(ortrt)
    assert build["strongly_typed"] and build["flags"] == [] and fields["strongly_typed"] is True
    trt_options = next(o for call, o in ortrt.WORLD.calls if call == "tensorrt_ep")
    assert not {"trt_fp16_enable", "trt_int8_enable", "trt_bf16_enable"} & set(trt_options)


def test_runner_times_the_ep_on_the_harness_stream(ortrt, models, tmp_path):
    """[O15] IOBinding to device buffers, ONNX Runtime enqueuing on the harness's stream without waiting for it,
    one run per timed compute region; benchmark rows as for the other GPU backends."""
    import fake_cuda
    from trtpipe.backends import ort_gpu
    from trtpipe.benchmark import bench_columns, benchmark_engine

    sweep, root = models
    engine = tmp_path / "e.ctx.onnx"
    sidecar, _ = _build(sweep, root, engine)
    runner = ort_gpu.Runner(engine, sidecar, profile="small", options=OPTIONS)
    assert runner.session.get_providers()[0] == TRT_EP
    sets = [random_inputs(sweep.models["tiny_text"], 2, "opt", 0, f"b/{k}") for k in range(2)]
    fake_cuda.TRACE.clear()
    stats = runner.benchmark(sets, FAST, 2)
    runs = [t for t in fake_cuda.TRACE if t[0] == "ort_run"]
    assert runs and all(t[1] == runner.stream.handle and t[2] is False for t in runs)
    trace = [t[0] for t in fake_cuda.TRACE]
    timed = trace[trace.index("record"):]
    inside = [i for i, call in enumerate(timed) if call == "ort_run" and timed[i - 1] == timed[i + 1] == "record"]
    assert stats["iterations"] >= 4 and len(inside) == timed.count("ort_run") >= stats["iterations"]
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [1, 4], FAST, 2,
                             profile_name="small", backend_options=OPTIONS, backend_name="onnxruntime_tensorrt")
    assert list(frame.columns) == bench_columns() and list(frame["batch"]) == [1, 4]
    assert (frame["compute_ms_median"] > 0).all() and (frame["backend_version"] == "1.31.1").all()
    assert not frame["cuda_graph"].astype(bool).any() and frame["device"].iloc[0] == "Fake GPU (tests) (cc 9.0)"
    with pytest.raises(ProfileError, match="outside profile 'small'"):
        runner.run(random_inputs(sweep.models["tiny_text"], 8, "opt", 0, "big"))


@pytest.mark.parametrize("world", ["no TensorRT EP in the wheel", "ORT_TENSORRT_UNAVAILABLE", "no libnvinfer"])
def test_without_the_tensorrt_ep_nothing_runs_elsewhere_in_silence(ortrt, models, tmp_path, monkeypatch, world):
    """[O2][O3][O5][O14] ONNX Runtime leaves the TensorRT EP out without an error in two of these cases and
    raises in the third; building or loading an engine must say that the TensorRT EP is missing, in one
    sentence, and never build or time on CUDA instead."""
    from trtpipe.backends import ort_gpu

    sweep, root = models
    built = tmp_path / "built.ctx.onnx"
    sidecar, _ = _build(sweep, root, built)
    if world == "no TensorRT EP in the wheel":
        ortrt.WORLD.available = [CUDA_EP, CPU_EP]
    elif world == "ORT_TENSORRT_UNAVAILABLE":
        monkeypatch.setenv("ORT_TENSORRT_UNAVAILABLE", "1")
    else:
        ortrt.WORLD.libnvinfer = None
    engine = tmp_path / "e.ctx.onnx"
    with pytest.raises(BackendUnavailable, match="TensorRT"):
        _build(sweep, root, engine)
    assert not engine.exists() and not engine.with_suffix(".json").exists()
    with pytest.raises(BackendUnavailable, match=r"TensorRT.*fix:"):
        ort_gpu.Runner(built, sidecar, profile="small", options=OPTIONS)


def test_an_engine_is_tied_to_the_tensorrt_that_built_it(ortrt, models, tmp_path):
    """[O14][O16] the EP cannot deserialize a plan of another TensorRT; the runner refuses first, naming both
    versions."""
    from trtpipe.backends import ort_gpu

    sweep, root = models
    engine = tmp_path / "e.ctx.onnx"
    sidecar, _ = _build(sweep, root, engine)
    ortrt.WORLD.libnvinfer = "10.14.0"
    ort = sys.modules["onnxruntime"]
    with pytest.raises(Fail, match="could not deserialize engine from binary data"):
        _trt_session(ort, engine, {}, enable_fallback=0)
    with pytest.raises(EngineMismatch, match=r"10\.13\.0.*10\.14\.0"):
        ort_gpu.Runner(engine, sidecar, profile="small", options=OPTIONS)


def test_a_bad_provider_option_fails_the_build_instead_of_falling_back(ortrt, models, tmp_path):
    """[O1][O4] enable_fallback=0: an option ONNX Runtime rejects is an error, not a silent CUDA session."""
    from trtpipe.backends import ort_gpu

    _, root = models
    ort = sys.modules["onnxruntime"]
    backend = get("onnxruntime_tensorrt")
    with pytest.raises(TrtpipeError, match="Invalid TensorRT EP option: trt_not_an_option"):
        ort_gpu.open_session(ort, root / "tiny_sr.onnx", backend, with_defaults("onnxruntime_tensorrt", OPTIONS), "fp32",
                             extra_trt={"trt_not_an_option": "True"})


def test_a_cached_engine_skips_the_ep_context_dump(ortrt, models, tmp_path):
    """[O12][O13] why the backend keeps the EP's engine cache off: a second session on the same model file finds
    the cached engine and writes no EP-context model."""
    import shutil

    ort = sys.modules["onnxruntime"]
    _, root = models
    model = tmp_path / "m.onnx"
    shutil.copy(root / "tiny_sr.onnx", model)
    profiles = {f"trt_profile_{w}_shapes": f"low_res:{s}" for w, s in (("min", "1x3x4x4"), ("opt", "2x3x8x8"),
                                                                        ("max", "4x3x16x16"))}
    cache = {"trt_engine_cache_enable": "True", "trt_engine_cache_path": "cache", "trt_dump_ep_context_model": "True",
             "trt_ep_context_embed_mode": "1"}
    for name in ("first.ctx.onnx", "second.ctx.onnx"):
        _trt_session(ort, model, {**profiles, **cache, "trt_ep_context_file_path": str(tmp_path / name)},
                     enable_fallback=0)
    assert (tmp_path / "first.ctx.onnx").exists() and not (tmp_path / "second.ctx.onnx").exists()
    assert [call for call, _ in ortrt.WORLD.calls if call in ("build", "engine_cache_hit")] == ["build", "engine_cache_hit"]
    assert len(list((tmp_path / "cache").glob("*.engine"))) == 1


def test_a_cuda_ep_engine_keeps_its_fp16_nodes(ortrt, tmp_path):
    """The CUDA EP engine is the baked ONNX itself: saved after the CPU provider's optimizations, an fp16 model
    gained fp32 Casts around every node the CPU cannot run in fp16, and the GPU then ran it in fp32 (ResNet-50
    fp16 measured as slow as fp32 on the H100, docs/gpu/onnxruntime)."""
    from trtpipe.backends import ort_gpu

    nodes = [helper.make_node("Cast", ["x"], ["h"], to=onnx.TensorProto.FLOAT16),
             helper.make_node("Conv", ["h", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Cast", ["r"], ["y"], to=onnx.TensorProto.FLOAT)]
    w = onnx.numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float16), "w")
    graph = helper.make_graph(nodes, "half", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 4, 8, 8])], [w])
    path = tmp_path / "half.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    spec = ModelSpec("half", (InputSpec("x", (3, 8, 8)),))
    engine = tmp_path / "h.onnx"
    request = BuildRequest(get("onnxruntime_cuda"), path, engine, spec, Variant.static(2), "fp16",
                           (Profile.static(2),), with_defaults("onnxruntime_cuda", {}))
    fields = ort_gpu.build(request)
    saved = onnx.load(str(engine))
    assert [n.op_type for n in saved.graph.node] == ["Cast", "Conv", "Relu", "Cast"]
    assert fields["saved_optimization_level"] == "none"


def test_fp32_is_built_with_tf32_forbidden_and_the_sidecar_says_so(ortrt, models, tmp_path, monkeypatch):
    """[O10][O17] the EP leaves TensorRT's TF32 on and has no option for it: fp32 builds set NVIDIA_TF32_OVERRIDE=0
    and match PyTorch to fp32 tolerances; an engine built without it runs MatMul inputs in TF32 and misses them."""
    from trtpipe.backends import ort_gpu

    sweep, root = models
    sidecar, rows = _build(sweep, root, tmp_path / "fp32.ctx.onnx")
    assert sidecar["environment"] == {"NVIDIA_TF32_OVERRIDE": "0"} and sidecar["tf32"] is False
    assert [b["tf32"] for b in _builds(ortrt)] == [False] and max(r["max_abs_err"] for r in rows) < 1e-5
    os.environ.pop("NVIDIA_TF32_OVERRIDE")
    monkeypatch.setattr(ort_gpu, "forbid_tf32", lambda backend, precision: {})
    with pytest.raises(TrtpipeError, match="tf32.ctx.onnx"):  # the fp32 job holds fp32 tolerances
        _build(sweep, root, tmp_path / "tf32.ctx.onnx")
    assert [b["tf32"] for b in _builds(ortrt)] == [False, True]
