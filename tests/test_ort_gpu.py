"""ONNX Runtime on the GPU (backends onnxruntime_cuda, onnxruntime_cuda_graph, onnxruntime_tensorrt).

On a machine with onnxruntime-gpu and a GPU the engines are built, checked against PyTorch and timed for
real (scripts/gpu_run.sh ort_check); everywhere the code paths that need no GPU run: provider options from
the config, the TensorRT EP's profile strings, DAG targets, and the one-sentence refusal without the provider."""

import importlib.util
import json

import numpy as np
import pytest

from helpers import SR_MODEL, TEXT_MODEL, copy_workflow, dry_run_outputs, tiny_config
from trtpipe.backends import ort_gpu
from trtpipe.backends.base import BuildRequest
from trtpipe.backends.registry import get
from trtpipe.config import validate
from trtpipe.backends.registry import with_defaults
from trtpipe.errors import BackendUnavailable
from trtpipe.spec import DYNAMIC, Variant


def _has_cuda_ep() -> bool:
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    import onnxruntime as ort
    import torch

    return torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers()


GPU = pytest.mark.skipif(not _has_cuda_ep(), reason="needs onnxruntime-gpu and a CUDA GPU")


def test_provider_options_follow_the_config_and_the_precision():
    options = with_defaults("onnxruntime_cuda", {"cudnn_conv_algo_search": "HEURISTIC"})
    [(name, cuda)] = ort_gpu.provider_options(get("onnxruntime_cuda"), options, "fp32", stream_handle=1234)
    assert name == "CUDAExecutionProvider"
    assert cuda["use_tf32"] == "0" and cuda["enable_cuda_graph"] == "0" and cuda["cudnn_conv_algo_search"] == "HEURISTIC"
    assert cuda["user_compute_stream"] == "1234"  # ONNX Runtime computes on the harness's stream
    assert "prefer_nhwc" not in cuda  # ONNX Runtime's default unless the config asks
    [(_, nhwc)] = ort_gpu.provider_options(get("onnxruntime_cuda"), {**options, "prefer_nhwc": True}, "fp16")
    assert nhwc["prefer_nhwc"] == "1"
    [(_, graph)] = ort_gpu.provider_options(get("onnxruntime_cuda_graph"), options, "tf32")
    assert graph["use_tf32"] == "1" and graph["enable_cuda_graph"] == "1" and "user_compute_stream" not in graph
    trt = ort_gpu.provider_options(get("onnxruntime_tensorrt"), with_defaults("onnxruntime_tensorrt", {}), "fp16")
    assert [p for p, _ in trt] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert "trt_fp16_enable" not in trt[0][1]  # precision comes from the ONNX, not a weak-typing flag


def test_tensorrt_ep_profiles_are_name_and_dims_strings_for_every_input(tmp_path):
    spec = validate(tiny_config(tiny_text=TEXT_MODEL)).models["tiny_text"]
    sweep = validate(tiny_config(tiny_text=TEXT_MODEL))
    request = BuildRequest(get("onnxruntime_tensorrt"), tmp_path / "m.onnx", tmp_path / "e.ctx.onnx", spec, DYNAMIC, "fp16",
                           (sweep.profile("small"),), with_defaults("onnxruntime_tensorrt", {"timing_cache_dir": "tc"}))
    options = ort_gpu.tensorrt_build_options(request, request.engine_path)
    # TensorRT EP docs: 'input1:dim1xdim2...,input2:...'; sequence axis 4..16 (opt 8), batch 1..4 (opt 2)
    assert options["trt_profile_min_shapes"] == "attention_mask:1x4,input_ids:1x4"
    assert options["trt_profile_opt_shapes"] == "attention_mask:2x8,input_ids:2x8"
    assert options["trt_profile_max_shapes"] == "attention_mask:4x16,input_ids:4x16"
    assert options["trt_dump_ep_context_model"] == "True" and options["trt_ep_context_embed_mode"] == "1"
    assert options["trt_ep_context_file_path"] == str(request.engine_path)
    assert options["trt_timing_cache_path"] == str(tmp_path / "tc")  # the timing cache inside the engine folder
    assert "trt_engine_cache_enable" not in options  # the EP-context model is the engine (test_ort_tensorrt_contract)
    assert options["trt_max_workspace_size"] == str(4 * 2**30)


def test_placement_names_the_nodes_on_each_provider():
    class Node:
        def __init__(self, op):
            self.op_type = op

    class Sub:
        def __init__(self, ep, ops):
            self.ep_name, self._ops = ep, ops

        def get_nodes(self):
            return [Node(op) for op in self._ops]

    class Session:
        def get_provider_graph_assignment_info(self):
            return [Sub("CUDAExecutionProvider", ["Conv", "Relu"]), Sub("CPUExecutionProvider", ["Shape", "Gather"])]

    places = ort_gpu.placement(Session())
    assert ort_gpu.cpu_nodes(places) == ["Shape", "Gather"] and places["CUDAExecutionProvider"] == ["Conv", "Relu"]


@pytest.mark.skipif(_has_cuda_ep(), reason="this machine has the CUDA provider")
def test_without_the_cuda_provider_the_engine_job_says_so_in_one_sentence(tmp_path):
    from trtpipe.engine import build_engine

    sweep = validate(tiny_config(tiny_text=TEXT_MODEL))
    engine = tmp_path / "e.onnx"
    with pytest.raises(BackendUnavailable, match=r"has no CUDA execution provider .*fix: install onnxruntime-gpu"):
        build_engine("onnxruntime_cuda", tmp_path / "missing.onnx", engine, tmp_path / "e.json", sweep.models["tiny_text"],
                     DYNAMIC, "fp32", [sweep.profile("small")], {}, tmp_path / "ref.npz", sweep.tolerance("fp32"))
    assert list(tmp_path.iterdir()) == []  # no half-written engine


@pytest.mark.workflow
def test_gpu_onnx_backends_in_the_dag(tmp_path):
    """tf32 runs the fp32 ONNX; the TensorRT EP's engine is an EP-context model; each family has its rule."""
    config = tiny_config(tiny_sr=SR_MODEL)
    config["static_batch_sizes"] = []
    config["sweep"] = {"profiles": ["small"], "backends": ["onnxruntime_cuda", "onnxruntime_cuda_graph", "onnxruntime_tensorrt"],
                       "precisions": ["fp32", "tf32", "fp16"]}
    workdir = copy_workflow(tmp_path / "wf", config)
    outputs = dry_run_outputs(workdir)
    engines = sorted(o.split("engines/")[1].split(",")[0] for o in outputs if "/engines/" in o)
    assert "onnxruntime_cuda/dynamic.tf32.small.onnx" in engines and "onnxruntime_cuda_graph/dynamic.fp16.small.onnx" in engines
    assert "onnxruntime_tensorrt/dynamic.fp32.small.ctx.onnx" in engines
    assert not any(e.startswith("onnxruntime_tensorrt/dynamic.tf32") for e in engines)  # not a TensorRT EP precision
    assert not any("sim.tf32" in o for o in outputs)  # no tf32 ONNX: tf32 engines are built from the fp32 one


# --- on a GPU with onnxruntime-gpu ---------------------------------------------------------------
@pytest.fixture(scope="module")
def sr_onnx(tmp_path_factory):
    from trtpipe.export import export_onnx
    from trtpipe.reference import make_reference

    root = tmp_path_factory.mktemp("ortgpu")
    sweep = validate(tiny_config(tiny_sr=SR_MODEL))
    spec = sweep.models["tiny_sr"]
    make_reference(spec, None, sweep.reference_batches("tiny_sr"), root / "ref.npz")
    export_onnx(spec, None, DYNAMIC, root / "sr.onnx")
    return sweep, root


@GPU
@pytest.mark.parametrize("backend", ["onnxruntime_cuda", "onnxruntime_cuda_graph"])
@pytest.mark.parametrize("variant", ["dynamic", "static-b2"])
def test_cuda_engines_match_pytorch_and_time_on_device_buffers(sr_onnx, tmp_path, backend, variant):
    from trtpipe.benchmark import benchmark_engine
    from trtpipe.engine import build_engine
    from trtpipe.export import export_onnx
    from trtpipe.timing import TimingSettings

    sweep, root = sr_onnx
    spec = sweep.models["tiny_sr"]
    v = Variant.parse(variant)
    source = root / "sr.onnx"
    if not v.is_dynamic:
        source = root / "sr-b2.onnx"
        export_onnx(spec, None, v, source)
    profile = sweep.engine_profile(v, "small")
    engine = tmp_path / "e.onnx"
    rows = build_engine(backend, source, engine, tmp_path / "e.json", spec, v, "fp32", [profile], {}, root / "ref.npz",
                        sweep.tolerance("fp32"))
    assert rows and all(r["passed"] for r in rows)
    sidecar = json.loads((tmp_path / "e.json").read_text())
    assert sidecar["providers"] == ["CUDAExecutionProvider"] and "CUDAExecutionProvider" in sidecar["nodes_per_provider"]
    batches = [2] if not v.is_dynamic else [1, 4]
    frame = benchmark_engine(engine, tmp_path / "e.json", spec, batches, TimingSettings(warmup_s=0.05, min_duration_s=0.1,
                             min_iterations=10), 2, backend_name=backend)
    assert list(frame["batch"]) == batches
    assert (frame["compute_ms_median"] > 0).all() and (frame["h2d_ms_median"] > 0).all()
    assert frame["cuda_graph"].astype(bool).all() == (backend == "onnxruntime_cuda_graph")
    assert np.isfinite(frame["enqueue_ms_median"]).all()
