"""TensorRT backend, written against the documented Python API of TensorRT 10.x and 11.x.

NOTHING HERE HAS RUN ON REAL TENSORRT: no machine this project can reach has it. The module is
proven by contract tests against strict test doubles of the 10.x and 11.x APIs (tests/doubles/),
which enforce the documented semantics cited there.

Builder: the precision ONNX is parsed into a strongly typed network (11.x removed the FP16/INT8/BF16
builder flags and calibrators; precision lives in the ONNX: AutoCast casts, Q/DQ nodes). One
optimization profile per engine, or several in one engine; workspace limit, builder optimization
level, and a timing cache keyed by GPU, compute capability and TensorRT version.

Runner: deserialize, one execution context per profile (`set_optimization_profile_async`),
`set_input_shape` for every input (shapes outside the profile are refused with its range),
`set_tensor_address` for every I/O tensor, `execute_async_v3` on a stream. Buffers, copies, events
and CUDA graphs go through PyTorch's CUDA API (trtpipe/gpu.py).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, EngineMismatch, ProfileError, TrtpipeError
from ..gpu import GpuStep, get_device, measure_gpu, summarize_gpu
from ..io import atomic_path
from .base import BuildRequest, Runner as BaseRunner, gpu_description

log = logging.getLogger(__name__)

SUPPORTED_MAJORS = (10, 11)


def _trt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(
            "TensorRT is not installed on this machine (import tensorrt failed); fix: run the tensorrt backend on a GPU "
            "box with TensorRT 10.x or 11.x (pip install tensorrt), or drop it from sweep.backends — the other backends "
            "of the sweep are unaffected."
        ) from exc
    major = int(trt.__version__.split(".")[0])
    if major not in SUPPORTED_MAJORS:
        raise BackendUnavailable(f"TensorRT {trt.__version__} is not supported; fix: install TensorRT 10.x or 11.x.")
    return trt


def version() -> str:
    return _trt().__version__


def identity(options: dict[str, Any] | None = None) -> dict[str, str]:
    """What makes an engine invalid elsewhere: the TensorRT version and the GPU (name, compute capability)."""
    info = get_device().info
    return {"backend_version": version(), "device": info["name"], "compute_capability": info["compute_capability"]}


def _logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def _numpy_dtype(trt, dtype) -> np.dtype:
    table = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
             "BOOL": np.bool_, "UINT8": np.uint8}
    name = getattr(dtype, "name", str(dtype)).split(".")[-1]
    if name not in table:
        raise TrtpipeError(f"engine I/O of type {name} is not supported by trtpipe's runner; fix: keep model I/O types "
                           f"(precision.keep_io_types: true).")
    return np.dtype(table[name])


def parser_errors(parser, onnx_path) -> str:
    """One sentence naming every node the ONNX parser rejected (op type, node name)."""
    nodes, other = [], []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        op, name = err.node_operator(), err.node_name()
        if op or name:
            nodes.append(f"{op or '?'} {name!r}: {err.desc()}")
        else:
            other.append(err.desc())
    found = "; ".join(nodes or other) or "no detail reported"
    return (f"{onnx_path}: TensorRT's ONNX parser failed on {len(nodes) or parser.num_errors} node(s): {found}; fix: replace "
            f"or exclude those ops (precision.op_types_to_exclude for quantization), or provide a TensorRT plugin.")


def timing_cache_path(cache_dir: str | Path, info: dict[str, Any], trt_version: str) -> Path:
    """One cache per GPU model, compute capability and TensorRT version: a cache is only valid there."""
    key = re.sub(r"[^A-Za-z0-9.]+", "_", f"{info['name']}-cc{info['compute_capability']}-trt{trt_version}")
    return Path(cache_dir) / f"{key}.cache"


def build(request: BuildRequest) -> dict[str, Any]:
    """Build a strongly typed engine with one optimization profile per requested profile."""
    onnx_path, engine_path, options, precision = request.source, request.engine_path, request.options, request.precision
    profiles = request.profiles
    shapes = [request.shapes(p) for p in profiles]
    trt = _trt()
    device = get_device()
    logger = _logger(trt)
    builder = trt.Builder(logger)
    # Required for strong typing on 10.x; accepted and ignored on 11.x, where every network is strongly typed.
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise TrtpipeError(parser_errors(parser, onnx_path))

    config = builder.create_builder_config()
    workspace = int(options["workspace_gib"] * 2**30)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    config.builder_optimization_level = int(options["optimization_level"])
    cache_file = timing_cache_path(options["timing_cache_dir"], device.info, trt.__version__)
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.exists() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s was made elsewhere (another GPU or TensorRT); starting a new one", cache_file)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)

    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    for profile, triple in zip(profiles, shapes):
        missing = [name for name in inputs if name not in triple]
        if missing:
            raise TrtpipeError(f"{onnx_path}: the network input {missing[0]!r} has no shapes in profile {profile.name!r}; "
                               f"fix: configure every model input.")
        opt_profile = builder.create_optimization_profile()
        for name in inputs:
            lo, opt, hi = triple[name]
            opt_profile.set_shape(name, lo, opt, hi)
        if config.add_optimization_profile(opt_profile) < 0:
            raise TrtpipeError(f"{onnx_path}: TensorRT rejected optimization profile {profile.name!r} ({triple}); fix: check "
                               f"its min <= opt <= max against the model's input shapes.")

    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - start
    if serialized is None:
        raise TrtpipeError(f"{onnx_path}: TensorRT could not build the engine (see the log for its errors); fix: raise "
                           f"tensorrt.workspace_gib or lower tensorrt.optimization_level, or check the ops it names.")
    with open(engine_path, "wb") as fh:
        fh.write(serialized)
    with atomic_path(cache_file) as tmp:  # reused by later builds on the same GPU and TensorRT
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))

    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    memory = getattr(engine, "device_memory_size_v2", None)  # 11.x removed device_memory_size
    if memory is None:
        memory = engine.device_memory_size
    log.info("built a %s engine with %d profile(s) in %.1fs (TensorRT %s)", precision, len(shapes), build_s, trt.__version__)
    return {"strongly_typed": True, "workspace_bytes": workspace, "optimization_level": config.builder_optimization_level,
            "timing_cache": str(cache_file), "device_memory_bytes": int(memory), "layers": engine.num_layers,
            "build_seconds": build_s, **{f"gpu_{k}": v for k, v in device.info.items()}}


class Runner(BaseRunner):
    """One execution context for one of the engine's profiles."""

    def identity(self) -> dict[str, str]:
        return identity(self.options)

    def load(self) -> None:
        trt = self.trt = _trt()
        self.device = get_device()
        self.profile_index = self.profile.index
        self.engine = trt.Runtime(_logger(trt)).deserialize_cuda_engine(Path(self.engine_path).read_bytes())
        if self.engine is None:
            raise EngineMismatch(f"{self.engine_path}: TensorRT {trt.__version__} could not deserialize it; fix: rebuild it here.")
        self.stream = self.device.stream()
        self.context = self.engine.create_execution_context()
        self.context.set_optimization_profile_async(self.profile_index, self.stream.handle)
        self.stream.synchronize()
        tensors = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [t for t in tensors if self.engine.get_tensor_mode(t) == trt.TensorIOMode.INPUT]
        self.output_names = [t for t in tensors if self.engine.get_tensor_mode(t) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {t: _numpy_dtype(trt, self.engine.get_tensor_dtype(t)) for t in tensors}
        self.ranges = {t: tuple(tuple(int(d) for d in dims) for dims in self.engine.get_tensor_profile_shape(t, self.profile_index))
                       for t in self.input_names}

    def _step(self, feeds: dict[str, np.ndarray]) -> tuple[GpuStep, dict[str, Any]]:
        """Buffers for one input set; its compute binds them and enqueues execute_async_v3."""
        for name in self.input_names:
            if not self.context.set_input_shape(name, tuple(feeds[name].shape)):
                raise ProfileError(f"{self.engine_path}: TensorRT refused shape {feeds[name].shape} for input {name!r} in "
                                   f"profile {self.profile.name!r} (range {self.ranges[name]}); fix: use a shape inside it.")
        host_in = {n: self.device.pinned(feeds[n].astype(self.dtypes[n], copy=False)) for n in self.input_names}
        dev = {n: self.device.empty(feeds[n].shape, self.dtypes[n]) for n in self.input_names}
        out_shapes = {n: tuple(int(d) for d in self.context.get_tensor_shape(n)) for n in self.output_names}
        dev.update({n: self.device.empty(out_shapes[n], self.dtypes[n]) for n in self.output_names})
        host_out = {n: self.device.pinned_empty(out_shapes[n], self.dtypes[n]) for n in self.output_names}
        context, stream = self.context, self.stream

        def compute() -> None:
            for name, buf in dev.items():
                context.set_tensor_address(name, buf.ptr)
            if not context.execute_async_v3(stream.handle):
                raise TrtpipeError(f"{self.engine_path}: execute_async_v3 failed (see the log); fix: check the engine and inputs.")

        step = GpuStep(
            upload=lambda: [self.device.copy(dev[n], host_in[n], stream) for n in self.input_names],
            compute=compute,
            download=lambda: [self.device.copy(host_out[n], dev[n], stream) for n in self.output_names],
        )
        return step, host_out

    def run_impl(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        step, host_out = self._step(feeds)
        step.upload()
        step.compute()
        step.download()
        self.stream.synchronize()
        return [host_out[n].numpy().copy() for n in self.output_names]

    def benchmark_impl(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        steps = [self._step(feeds)[0] for feeds in feed_sets]
        transfers = bool(self.options["include_transfers"])
        graph = bool(self.options["cuda_graph"])
        stats = summarize_gpu(measure_gpu(self.device, self.stream, steps, settings, transfers, graph), batch,
                              settings.cv_threshold)
        stats.update(self.trtexec_check({n: a.shape for n, a in feed_sets[0].items()}))
        return stats

    def trtexec_check(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """trtexec on the same engine and shapes, when it is on PATH: its median GPU compute time beside ours."""
        exe = shutil.which("trtexec")
        if not exe or not self.options["trtexec"]:
            return {"trtexec_compute_ms_median": float("nan")}
        if self.profile_index != 0:  # trtexec runs profile 0; no documented flag selects another
            log.info("trtexec cross-check skipped: profile %s is not the engine's first", self.profile.name)
            return {"trtexec_compute_ms_median": float("nan")}
        spec = ",".join(f"{n}:{'x'.join(map(str, s))}" for n, s in shapes.items())
        with tempfile.TemporaryDirectory() as tmp:
            times = Path(tmp) / "times.json"
            cmd = [exe, f"--loadEngine={self.engine_path}", f"--shapes={spec}", "--warmUp=500", "--duration=3",
                   f"--exportTimes={times}"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or not times.exists():
                log.warning("trtexec failed (%d): %s", proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:])
                return {"trtexec_compute_ms_median": float("nan")}
            return {"trtexec_compute_ms_median": trtexec_median_compute(json.loads(times.read_text()))}

    def describe_impl(self) -> dict[str, Any]:
        return gpu_description(self.device.info, bool(self.options["include_transfers"]), bool(self.options["cuda_graph"]))


def trtexec_median_compute(trace: list[dict[str, Any]]) -> float:
    """Median GPU compute time (ms) of a trtexec --exportTimes trace."""
    computes = [r["computeMs"] for r in trace if isinstance(r, dict) and "computeMs" in r]
    return float(np.median(computes)) if computes else float("nan")
