"""ONNX Runtime on the GPU (onnxruntime-gpu): the CUDA execution provider (backends `onnxruntime_cuda` and
`onnxruntime_cuda_graph`) and the TensorRT execution provider (`onnxruntime_tensorrt`).

Engines. CUDA EP: the ONNX with fixed dims baked where the profile's min == max, not optimised: ONNX Runtime's
optimizations (`onnxruntime_cuda.optimization_level`) run when a session is created on the GPU. A model saved
after the CPU provider's optimizations carries fp32 Casts around fp16 nodes, and one saved after the CUDA EP's can carry
ONNX Runtime's Memcpy nodes, and reloading such a file fails ("Duplicate definition of name ..._CUDAExecutionProvider",
microsoft/foundry-local#1075), so it is never the engine. TensorRT EP: the EP-context model ONNX Runtime dumps
(`trt_dump_ep_context_model`), an ONNX whose EPContext node embeds the serialized TensorRT engine; the network is
strongly typed (the EP creates it so whenever no trt_fp16/int8/bf16 flag is set), so the ONNX decides precision.
fp32 is fp32 there: the EP never clears TensorRT's BuilderFlag.TF32 (on by default) and has no option for it, so
fp32 builds and runs set NVIDIA_TF32_OVERRIDE=0, which TensorRT documents as disabling TF32 while an engine is
built regardless of that flag (TensorRT Developer Guide, TF32), and the sidecar records it. The EP's own engine cache stays off: the EP-context model already is the engine, the cache would keep one more
copy per build beside it (its file name hashes the model's file name), and a cache hit skips the EP-context dump
(tensorrt_execution_provider.cc). The timing cache lives in the engine folder.

Timing. Inputs and outputs live in CUDA buffers owned by PyTorch (through trtpipe.gpu's device layer) and bound
with IOBinding; ONNX Runtime computes on the harness's stream (`user_compute_stream`) and returns without waiting for it
(`disable_synchronize_execution_providers`), so the shared harness's CUDA events split host-to-device, compute
and device-to-host exactly as for the torch and TensorRT rows, and enqueue time is the host time of
`run_with_iobinding`. CUDA graphs are ONNX Runtime's own (`enable_cuda_graph`, one graph id per input set and
shape): capturing ONNX Runtime inside a torch graph fails in stock ORT (microsoft/onnxruntime#32081).

Nodes that ONNX Runtime places on the CPU provider are recorded in the sidecar, and every benchmark row of
such an engine says so in its warnings.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, TrtpipeError
from .base import BuildRequest, Runner as BaseRunner, gpu_description

log = logging.getLogger(__name__)

CUDA_EP, TRT_EP, CPU_EP = "CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"
ASYNC_RUN = "disable_synchronize_execution_providers"  # onnxruntime_run_options_config_keys.h
GRAPH_ID = "gpu_graph_id"  # the same header: which captured CUDA graph a run uses; -1 disables capture for the run
PLACEMENT = "session.record_ep_graph_assignment_info"  # onnxruntime_session_options_config_keys.h (1.31)
NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
         "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
         "tensor(double)": np.float64}
LEVELS = ("disabled", "basic", "extended", "all")


def _ort():
    import torch  # noqa: F401  (first: ONNX Runtime's CUDA EP then uses torch's CUDA and cuDNN, per onnxruntime.preload_dlls)
    import onnxruntime as ort

    if CUDA_EP not in ort.get_available_providers():
        raise BackendUnavailable(
            f"ONNX Runtime {ort.__version__} here has no CUDA execution provider (it has "
            f"{', '.join(ort.get_available_providers())}); fix: install onnxruntime-gpu instead of onnxruntime "
            f"(make setup ORT=onnxruntime-gpu==1.31.1), or drop the onnxruntime_cuda/onnxruntime_tensorrt backends.")
    return ort


TRT_FIX = ("install TensorRT 10 (pip install 'tensorrt-cu13>=10,<11': libnvinfer.so.10) beside onnxruntime-gpu and leave "
           "ORT_TENSORRT_UNAVAILABLE unset, or drop onnxruntime_tensorrt from sweep.backends")


def require_tensorrt(ort) -> str:
    """The TensorRT version the EP would load; one sentence where it cannot (ONNX Runtime would only warn, or
    raise from its plugin registration, and run on CUDA with enable_fallback)."""
    if TRT_EP not in ort.get_available_providers():
        raise BackendUnavailable(f"ONNX Runtime {ort.__version__} here has no TensorRT execution provider (it has "
                                 f"{', '.join(ort.get_available_providers())}); fix: {TRT_FIX}.")
    version = tensorrt_version()
    if version == "not found":
        raise BackendUnavailable(f"the TensorRT execution provider needs TensorRT 10 (libnvinfer.so.10 was not found); "
                                 f"fix: {TRT_FIX}.")
    return version


TF32_OFF = {"NVIDIA_TF32_OVERRIDE": "0"}


def forbid_tf32(backend, precision: str) -> dict[str, str]:
    """fp32 on the TensorRT EP: NVIDIA_TF32_OVERRIDE=0 in this process's environment, before ONNX Runtime loads the
    EP and TensorRT (NVIDIA's libraries read it when they initialise); the variables set, for the sidecar. The EP
    builds with TensorRT's default BuilderFlag.TF32 (on) and offers no option to clear it."""
    if backend.mode != "tensorrt" or precision != "fp32":
        return {}
    os.environ.update(TF32_OFF)
    return dict(TF32_OFF)


def tensorrt_version() -> str:
    """The TensorRT the EP loads (libnvinfer.so.10's getInferLibVersion(), major*10000 + minor*100 + patch in 10.x);
    ONNX Runtime's Python API does not expose it."""
    try:
        lib = ctypes.CDLL("libnvinfer.so.10")
    except OSError:
        return "not found"
    v = int(lib.getInferLibVersion())
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}"


def provider_options(backend, options: dict[str, Any], precision: str, stream_handle: int | None = None) -> list:
    """The session's providers with their options, from the config section."""
    stream = {"user_compute_stream": str(stream_handle)} if stream_handle else {}
    cuda = {
        "device_id": "0", "use_tf32": "1" if precision == "tf32" else "0",
        "cudnn_conv_algo_search": options["cudnn_conv_algo_search"],
        "arena_extend_strategy": options["arena_extend_strategy"],
        "enable_cuda_graph": "1" if backend.mode == "cuda_graph" else "0", **stream,
    }
    if options.get("prefer_nhwc"):  # only the CUDA EP's section has it; unset, ONNX Runtime's default (0) applies
        cuda["prefer_nhwc"] = "1"
    if backend.mode != "tensorrt":
        return [(CUDA_EP, cuda)]
    trt = {"device_id": "0", "trt_cuda_graph_enable": "False", **stream}
    return [(TRT_EP, trt), (CUDA_EP, {k: v for k, v in cuda.items() if k != "enable_cuda_graph"})]


def _profile_string(shapes: dict[str, tuple], which: int) -> str:
    return ",".join(f"{name}:{'x'.join(map(str, triple[which]))}" for name, triple in sorted(shapes.items()))


def tensorrt_build_options(request: BuildRequest, engine_path: Path) -> dict[str, str]:
    """The TensorRT EP's options that build the engine and dump it as an EP-context model (TensorRT EP docs;
    option names as in onnxruntime-gpu 1.31.1). Booleans are 'True'/'False': its Python binding checks them.
    Every input is named: the EP fails a build whose dynamic input has no explicit profile. No engine cache (see
    the module docstring); the timing cache (TensorrtExecutionProvider_cache_sm<cc>.timing) in timing_cache_dir,
    relative to the engine folder."""
    options = request.options
    (profile,) = request.profiles
    shapes = request.shapes(profile)
    timing = engine_path.parent / options["timing_cache_dir"]  # an absolute timing_cache_dir stays as it is
    return {
        "trt_profile_min_shapes": _profile_string(shapes, 0), "trt_profile_opt_shapes": _profile_string(shapes, 1),
        "trt_profile_max_shapes": _profile_string(shapes, 2),
        "trt_timing_cache_enable": "True", "trt_timing_cache_path": str(timing),
        "trt_dump_ep_context_model": "True", "trt_ep_context_file_path": str(engine_path), "trt_ep_context_embed_mode": "1",
        "trt_builder_optimization_level": str(options["optimization_level"]),
        "trt_max_workspace_size": str(int(options["workspace_gib"] * 2**30)),
    }


def _session_options(ort, level: str):
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    so.log_severity_level = 3
    so.add_session_config_entry(PLACEMENT, "1")
    return so


def open_session(ort, path: str | Path, backend, options: dict[str, Any], precision: str, stream_handle: int | None = None,
                 extra_trt: dict[str, str] | None = None, label: str | Path | None = None):
    """A GPU session that never falls back to another provider in silence (enable_fallback=0), and the nodes it
    placed on each provider. `label` names the model in messages (default: `path`)."""
    label = label or path
    providers = provider_options(backend, options, precision, stream_handle)
    if extra_trt:
        providers[0] = (TRT_EP, {**providers[0][1], **extra_trt})
    level = "disabled" if backend.mode == "tensorrt" else options["optimization_level"]
    wanted = providers[0][0]
    try:
        sess = ort.InferenceSession(str(path), sess_options=_session_options(ort, level), providers=providers,
                                    enable_fallback=0)
    except Exception as exc:  # ONNX Runtime raises its own pybind exception types
        text = str(exc)
        if wanted == TRT_EP and ("Please install TensorRT libraries" in text or "implementation for EPContext" in text):
            # the plugin registration's error without libnvinfer; an EP-context model no other provider can load
            raise BackendUnavailable(f"{label}: ONNX Runtime could not use the TensorRT execution provider "
                                     f"({text.strip().splitlines()[0][:200]}); fix: {TRT_FIX}.") from exc
        raise TrtpipeError(provider_failure(label, wanted, exc)) from exc
    if wanted not in sess.get_providers():
        fix = TRT_FIX if wanted == TRT_EP else \
            "install the libraries that provider needs (see README, ONNX Runtime on the GPU)"
        raise BackendUnavailable(f"{label}: ONNX Runtime did not register the {wanted} (it has "
                                 f"{', '.join(sess.get_providers())}); fix: {fix}.")
    return sess, placement(sess)


def provider_failure(path, provider: str, exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.split("Status Message: ", 1)[-1][:300]
    if "cannot use the graph capture feature" in text:
        fix = "the graph needs every node on the CUDA provider; use onnxruntime_cuda (no CUDA graph) for this model"
    elif "No execution plans support the graph" in text or "CUDNN" in text.upper():
        fix = "try onnxruntime_cuda.cudnn_conv_algo_search: HEURISTIC (or DEFAULT), or another precision"
    else:
        fix = "check the model's ops against the provider's, or use another backend for this model"
    return f"{path}: ONNX Runtime's {provider} failed: {text}; fix: {fix}."


def placement(sess) -> dict[str, list[str]]:
    """Op types per provider, after ONNX Runtime's optimizations (empty where this ONNX Runtime cannot say)."""
    try:
        subgraphs = sess.get_provider_graph_assignment_info()
    except Exception:  # older ONNX Runtime, or the session was created without the config entry
        return {}
    out: dict[str, list[str]] = {}
    for sub in subgraphs:
        out.setdefault(sub.ep_name, []).extend(n.op_type for n in sub.get_nodes())
    return out


def cpu_nodes(places: dict[str, list[str]]) -> list[str]:
    return places.get(CPU_EP, [])


def build(request: BuildRequest) -> dict[str, Any]:
    import onnx

    from .onnxruntime import bake_fixed_dims

    backend, options = request.backend, request.options
    environment = forbid_tf32(backend, request.precision)
    ort = _ort()
    if len(request.profiles) != 1:
        raise TrtpipeError(f"{request.source}: an ONNX Runtime engine holds one profile, not {len(request.profiles)}; "
                           f"fix: build one per profile.")
    graph = onnx.load(str(request.source))
    baked = bake_fixed_dims(graph, request.shapes(request.profiles[0]))
    start = time.perf_counter()
    if backend.mode == "tensorrt":
        trt_version = require_tensorrt(ort)
        baked_path = request.engine_path.with_name(request.engine_path.name + ".src.onnx")
        onnx.save(graph, str(baked_path))
        try:
            sess, places = open_session(ort, baked_path, backend, options, request.precision,
                                        extra_trt=tensorrt_build_options(request, request.engine_path), label=request.source)
        finally:
            baked_path.unlink(missing_ok=True)
        if not request.engine_path.exists() or request.engine_path.stat().st_size == 0:
            raise TrtpipeError(f"{request.source}: the TensorRT EP built no EP-context model at {request.shown_as}; "
                               f"fix: check that every node runs on TensorRT (see the log).")
        del sess
        # strongly typed: the EP creates the network with kSTRONGLY_TYPED unless trt_fp16/int8/bf16_enable is set
        fields = {"tensorrt_version": trt_version, "ep_context_embed_mode": 1, "strongly_typed": True,
                  "environment": environment, "tf32": not environment}
    else:
        # The baked ONNX as it is: a model that ONNX Runtime optimises and saves on the CPU provider gains fp32
        # Casts around every fp16 node the CPU cannot run (its InsertCastTransformer), and the GPU then runs fp16
        # engines in fp32 (measured: ResNet-50 fp16 as slow as fp32, docs/gpu/onnxruntime). Every optimisation
        # runs when a session opens on the GPU: now, once, to check the engine and record where each node runs.
        onnx.save(graph, str(request.engine_path))
        sess, places = open_session(ort, request.engine_path, backend, options, request.precision)
        del sess
        fields = {"saved_optimization_level": "none", "session_optimization_level": options["optimization_level"]}
    build_s = time.perf_counter() - start
    on_cpu = cpu_nodes(places)
    if on_cpu:
        log.warning("%s: %d node(s) run on the CPU provider: %s", request.source, len(on_cpu), ", ".join(sorted(set(on_cpu))))
    log.info("built an %s engine in %.2fs (%s)", backend.name, build_s, ", ".join(baked) or "no dims baked")
    return {"providers": [p for p, _ in provider_options(backend, options, request.precision)],
            "provider_options": {p: o for p, o in provider_options(backend, options, request.precision)},
            "baked_dims": baked, "build_seconds": build_s,
            "nodes_per_provider": {ep: len(ops) for ep, ops in places.items()}, "cpu_nodes": sorted(set(on_cpu)), **fields}


class Runner(BaseRunner):
    """IOBinding to CUDA buffers, computing on the harness's stream."""

    @classmethod
    def machine_identity(cls, options: dict[str, Any]) -> dict[str, str]:
        from ..gpu import get_device

        info = get_device().info
        return {"backend_version": _ort().__version__, "device": info["name"],
                "compute_capability": info["compute_capability"]}

    def identity(self) -> dict[str, str]:
        here = self.machine_identity(self.options)
        if self.backend.mode == "tensorrt":  # an EP-context engine is also tied to the TensorRT that built it
            here["tensorrt_version"] = require_tensorrt(_ort())
        return here

    def load(self) -> None:
        from ..gpu import get_device

        forbid_tf32(self.backend, self.sidecar["precision"])
        self.ort = _ort()
        self.device = get_device()
        self.stream = self.device.stream()
        self.graph = self.backend.mode == "cuda_graph"
        self.session, self.places = open_session(self.ort, self.engine_path, self.backend, self.options,
                                                 self.sidecar["precision"], self.stream.handle)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_types = {i.name: NUMPY[i.type] for i in self.session.get_inputs()}
        self._graph_ids = itertools.count(1)

    def _run_options(self, graph_id: int | None):
        ro = self.ort.RunOptions()
        ro.add_run_config_entry(ASYNC_RUN, "1")
        if self.graph:
            ro.add_run_config_entry(GRAPH_ID, str(graph_id if graph_id is not None else -1))
        return ro

    def _bind_inputs(self, binding, dev: dict[str, Any]) -> None:
        for name, t in dev.items():
            binding.bind_input(name, "cuda", 0, self.input_types[name], t.shape, t.ptr)

    def _step(self, feeds: dict[str, np.ndarray]):
        """Device buffers for one input set, bound; each of its own CUDA graph (graph mode)."""
        from ..gpu import GpuStep

        device, stream = self.device, self.stream
        with device.use(stream):
            host = {n: device.pinned(np.ascontiguousarray(feeds[n].astype(self.input_types[n], copy=False)))
                    for n in self.input_types}
            dev = {n: device.empty(h.shape, self.input_types[n]) for n, h in host.items()}
            for n in dev:
                device.copy(dev[n], host[n], stream)
            # Output shapes: one run with outputs that ONNX Runtime allocates (no graph capture for it).
            probe = self.session.io_binding()
            self._bind_inputs(probe, dev)
            for name in self.output_names:
                probe.bind_output(name, "cuda", 0)
            stream.synchronize()
            self.session.run_with_iobinding(probe, self._run_options(None))
            stream.synchronize()
            shapes = {n: tuple(v.shape()) for n, v in zip(self.output_names, probe.get_outputs())}
            types = {n: NUMPY[v.data_type()] for n, v in zip(self.output_names, probe.get_outputs())}
            out = {n: device.empty(shapes[n], types[n]) for n in self.output_names}
            host_out = {n: device.pinned_empty(shapes[n], types[n]) for n in self.output_names}
        binding = self.session.io_binding()
        self._bind_inputs(binding, dev)
        for name, t in out.items():
            binding.bind_output(name, "cuda", 0, types[name], t.shape, t.ptr)
        run_options = self._run_options(next(self._graph_ids) if self.graph else None)
        run = self.session.run_with_iobinding

        def upload() -> None:
            for n in dev:
                device.copy(dev[n], host[n], stream)

        def download() -> None:
            for n in out:
                device.copy(host_out[n], out[n], stream)

        return GpuStep(upload, lambda: run(binding, run_options), download), host_out

    def run_impl(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        step, host_out = self._step(feeds)
        with self.device.use(self.stream):
            step.upload()
            step.compute()
            step.download()
        self.stream.synchronize()
        return [host_out[n].numpy().copy() for n in self.output_names]

    def benchmark_impl(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        from ..gpu import measure_gpu, summarize_gpu

        steps = [self._step(feeds)[0] for feeds in feed_sets]
        # ONNX Runtime replays its own graphs inside compute(); the harness must not capture around it.
        m = measure_gpu(self.device, self.stream, steps, settings, bool(self.options["include_transfers"]), cuda_graph=False)
        m.cuda_graph = self.graph
        stats = summarize_gpu(m, batch, settings.cv_threshold)
        on_cpu = cpu_nodes(self.places)
        if on_cpu:
            note = f"partly on the CPU: {len(on_cpu)} node(s) ({', '.join(sorted(set(on_cpu)))})"
            stats["warnings"] = "; ".join(w for w in (stats["warnings"], note) if w)
        return stats

    def describe_impl(self) -> dict[str, Any]:
        return gpu_description(self.device.info, bool(self.options["include_transfers"]), self.graph)

    @contextlib.contextmanager
    def device_memory(self):
        """Not measured: ONNX Runtime allocates through its own CUDA arena, which PyTorch's allocator counter does
        not see (it would report only the harness's I/O buffers and look deceptively small)."""
        yield {"bytes": math.nan}

