"""TensorRT backend, written against the documented Python API of TensorRT 10.x and 11.x and built on
Polygraphy's TensorRT loaders (which NVIDIA maintains against each TensorRT release).

NOTHING HERE HAS RUN ON REAL TENSORRT: no machine this project can reach has it. The module is
proven by contract tests against strict test doubles of the 10.x and 11.x APIs (tests/doubles/),
which enforce the documented semantics cited there.

Builder (Polygraphy): NetworkFromOnnxPath parses the precision ONNX into a strongly typed network
(11.x removed the FP16/INT8/BF16 builder flags and calibrators; precision lives in the ONNX: AutoCast
casts, Q/DQ nodes); CreateConfig sets one optimization profile per requested profile (Polygraphy's
Profile, which gives shape-tensor inputs value ranges through set_shape_input), the workspace limit,
the builder optimization level, TF32 off unless the precision is `tf32` (TensorRT turns it on by
default), and a timing cache keyed by GPU, compute capability and TensorRT version;
EngineBytesFromNetwork builds and merges the timing cache back under a file lock, so concurrent
builds add to it instead of overwriting each other; SaveEngine writes the engine. What Polygraphy does
not do stays here: strong typing checks, profile checks with messages naming the input, the sidecar
fields, foreign-engine refusal (base.Runner), one execution context per profile.

Runner: deserialize, one execution context per profile (`set_optimization_profile_async`). Each
input set is a GpuStep whose `prepare` (run before the timed region starts) sets every input's shape,
binds every address (shape-tensor inputs: host memory) and attaches an IOutputAllocator to outputs
whose size depends on the data; `compute` is `execute_async_v3` alone. Buffers, copies, events and
CUDA graphs go through PyTorch's CUDA API (trtpipe/gpu.py). Engines with data-dependent outputs are
never captured into CUDA graphs; a failed capture falls back to plain launches (gpu.measure_gpu).
"""

from __future__ import annotations

import contextlib
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
from ..spec import Shape, check_shapes_in_profile
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


def _polygraphy():
    try:
        from polygraphy.backend.trt import (CreateConfig, EngineBytesFromNetwork, EngineFromBytes, NetworkFromOnnxPath,
                                            Profile, SaveEngine)
        from polygraphy.exception import PolygraphyException
        from polygraphy.logger import G_LOGGER
    except ImportError as exc:
        raise BackendUnavailable("Polygraphy is not installed next to TensorRT (import polygraphy failed); fix: pip install "
                                 "polygraphy==0.53.6 (envs/tensorrt.yaml lists it).") from exc
    return (NetworkFromOnnxPath, CreateConfig, EngineBytesFromNetwork, EngineFromBytes, SaveEngine, Profile,
            PolygraphyException, G_LOGGER)


def version() -> str:
    return _trt().__version__


def major(trt) -> int:
    return int(trt.__version__.split(".")[0])


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


@contextlib.contextmanager
def _quiet(G_LOGGER):
    """Polygraphy's INFO lines (profiles, the configuration) would flood the job log; keep warnings and errors."""
    with G_LOGGER.verbosity(G_LOGGER.WARNING):
        yield


def _check_triple(onnx_path, profile_name: str, name: str, triple) -> None:
    """min <= opt <= max in every dimension, same rank: what set_shape would refuse with a bare RuntimeError."""
    lo, opt, hi = (tuple(int(d) for d in s) for s in triple)
    if not (len(lo) == len(opt) == len(hi)) or not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise ProfileError(f"{onnx_path}: profile {profile_name!r} gives input {name!r} min {lo}, opt {opt}, max {hi}, "
                           f"which is not min <= opt <= max in every dimension (TensorRT's set_shape refuses it); fix: "
                           f"order the profile's min/opt/max batch sizes and the input's dynamic ranges.")


def shape_tensor_values(request: BuildRequest, tensor) -> tuple[list[int], list[int], list[int]]:
    """min/opt/max values of a shape-tensor input (its values, not its dims, vary): every element over the
    input's `range` [low, high), the values the benchmark's random inputs draw from."""
    spec = next((i for i in request.spec.inputs if i.name == tensor.name), None)
    dims = tuple(int(d) for d in tensor.shape)
    if spec is None or spec.range is None or spec.dtype not in ("int64", "int32") or any(d < 0 for d in dims):
        raise TrtpipeError(f"{request.source}: input {tensor.name!r} is a shape tensor (its values set shapes inside the "
                           f"network), so TensorRT needs the range of its values at build time; fix: declare it as an "
                           f"int64/int32 input with `range: [low, high]` and a fixed length.")
    count = dims[0] if dims else 1
    low, high = int(spec.range[0]), int(spec.range[1]) - 1
    return [low] * count, [(low + high) // 2] * count, [high] * count


def build(request: BuildRequest) -> dict[str, Any]:
    """Build a strongly typed engine with one optimization profile per requested profile."""
    onnx_path, options, precision = str(request.source), request.options, request.precision
    trt = _trt()
    (NetworkFromOnnxPath, CreateConfig, EngineBytesFromNetwork, EngineFromBytes, SaveEngine, PgProfile,
     PolygraphyException, G_LOGGER) = _polygraphy()
    device = get_device()
    with _quiet(G_LOGGER):
        try:
            builder, network, parser = NetworkFromOnnxPath(onnx_path, strongly_typed=True)()
        except PolygraphyException as exc:  # "Could not parse ONNX correctly" names no node: ask the parser which
            again = trt.OnnxParser(trt.Builder(_logger(trt)).create_network(0), _logger(trt))
            if again.parse_from_file(onnx_path) or again.num_errors == 0:  # not the parser's doing: Polygraphy's own text
                raise TrtpipeError(f"{onnx_path}: Polygraphy could not build TensorRT's network "
                                   f"({str(exc).strip()[:300]}); fix: see the log above for TensorRT's errors.") from None
            raise TrtpipeError(parser_errors(again, onnx_path)) from None
    if hasattr(network, "get_flag") and major(trt) == 10 and not network.get_flag(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED):
        raise TrtpipeError(f"{onnx_path}: the network is not strongly typed; fix: update Polygraphy (>= 0.49).")
    inputs = [network.get_input(i) for i in range(network.num_inputs)]

    profiles, shape_values = [], {}
    for profile in request.profiles:
        shapes = request.shapes(profile)
        pg_profile = PgProfile()
        for tensor in inputs:
            if tensor.is_shape_tensor:  # Polygraphy's Profile.to_trt calls set_shape_input for these
                values = shape_tensor_values(request, tensor)
                shape_values.setdefault(profile.name, {})[tensor.name] = [list(v) for v in values]
                pg_profile.add(tensor.name, *values)
                continue
            if tensor.name not in shapes:
                raise TrtpipeError(f"{onnx_path}: the network input {tensor.name!r} has no shapes in profile "
                                   f"{profile.name!r}; fix: configure every model input.")
            _check_triple(onnx_path, profile.name, tensor.name, shapes[tensor.name])
            pg_profile.add(tensor.name, *shapes[tensor.name])
        profiles.append(pg_profile)

    cache_file = timing_cache_path(options["timing_cache_dir"], device.info, trt.__version__)
    cache_file.parent.mkdir(parents=True, exist_ok=True)  # Polygraphy's lock file goes beside it
    tf32 = precision == "tf32"
    workspace = int(options["workspace_gib"] * 2**30)
    level = int(options["optimization_level"])
    with _quiet(G_LOGGER):
        create = CreateConfig(tf32=tf32, profiles=profiles, memory_pool_limits={trt.MemoryPoolType.WORKSPACE: workspace},
                              builder_optimization_level=level, load_timing_cache=str(cache_file))

    def make_config(builder, network):
        try:
            config = create(builder, network)
        except (RuntimeError, PolygraphyException) as exc:  # set_shape / set_shape_input refused a profile
            raise ProfileError(f"{onnx_path}: TensorRT refused an optimization profile ({exc}); fix: check each input's "
                               f"min <= opt <= max against the model's input shapes.") from None
        if config.num_optimization_profiles != len(profiles):  # Polygraphy ignores add_optimization_profile's -1
            raise ProfileError(f"{onnx_path}: TensorRT accepted {config.num_optimization_profiles} of {len(profiles)} "
                               f"optimization profiles; fix: check each profile's min <= opt <= max.")
        if config.get_flag(trt.BuilderFlag.TF32) != tf32:  # Polygraphy skips clear_flag where TF32 is missing
            raise TrtpipeError(f"{onnx_path}: could not {'allow' if tf32 else 'clear'} BuilderFlag.TF32 on TensorRT "
                               f"{trt.__version__}; fix: report this TensorRT version.")
        return config

    start = time.perf_counter()
    with _quiet(G_LOGGER):
        try:
            serialized = EngineBytesFromNetwork((builder, network, parser), config=make_config,
                                                save_timing_cache=str(cache_file))()
        except PolygraphyException as exc:
            raise TrtpipeError(f"{onnx_path}: TensorRT could not build the engine ({str(exc).strip()[:300]}; see the log "
                               f"for its errors); fix: raise tensorrt.workspace_gib or lower tensorrt.optimization_level, "
                               f"or check the ops it names.") from None
        build_s = time.perf_counter() - start
        engine = EngineFromBytes(serialized)()
        SaveEngine(engine, str(request.engine_path))()
    memory = getattr(engine, "device_memory_size_v2", None)  # 11.x removed device_memory_size
    if memory is None:
        memory = engine.device_memory_size
    log.info("built a %s engine with %d profile(s) in %.1fs (TensorRT %s, TF32 %s)", precision, len(profiles), build_s,
             trt.__version__, "allowed" if tf32 else "off")
    fields = {"strongly_typed": True, "tf32": tf32, "workspace_bytes": workspace, "optimization_level": level,
              "timing_cache": str(cache_file), "device_memory_bytes": int(memory), "layers": engine.num_layers,
              "build_seconds": build_s, **{f"gpu_{k}": v for k, v in device.info.items()}}
    if shape_values:
        fields["shape_tensor_values"] = shape_values
    return fields


def trtexec_flags(trt_major: int, transfers: bool, cuda_graph: bool) -> list[str]:
    """trtexec flags that make it time what our harness timed, for the trtexec binary's own major version.
    Defaults differ by major version (NVIDIA/TensorRT samples/common/sampleOptions.h): 10.x graph off, spin wait
    off, transfers on; 11.0 turned graphs and spin wait on and transfers off, made --useCudaGraph/--useSpinWait/
    --noDataTransfers no-ops and added --noCudaGraph/--noSpinWait/--includeDataTransfers, which 10.x rejects as
    unknown options (fatal). Our harness spin-waits on its events, so 10.x gets --useSpinWait.
    --exposeDMA on both: trtexec then keeps ONE inference in flight (IterationBase's depth is 1 + overlap, and
    --exposeDMA clears overlap: sampleInference.cpp release/10.13:1062, release/11.1:1135; sampleOptions.cpp
    release/10.13:1687-1690, release/11.1:1679-1682), as our harness does; by default it keeps two in flight, so
    its start event waits in the GPU's queue behind the previous inference and its compute time leaves out the
    host's launch delay that ours includes on an idle GPU."""
    if trt_major >= 11:
        flags = [*([] if cuda_graph else ["--noCudaGraph"]), *(["--includeDataTransfers"] if transfers else [])]
    else:
        flags = ["--useSpinWait", *(["--useCudaGraph"] if cuda_graph else []), *([] if transfers else ["--noDataTransfers"])]
    return ["--exposeDMA", *flags]


TRTEXEC_BANNER = re.compile(r"\[TensorRT v(\d+)\]")


def trtexec_version(exe: str) -> str | None:
    """The TensorRT version the trtexec binary `exe` was built with, from the line every run prints first,
    "&&&& RUNNING TensorRT.trtexec [TensorRT v101300] [b35] # trtexec --help" (main() reports the test start before
    parsing its options: samples/trtexec/trtexec.cpp release/10.13:195-200, release/11.1:800-805; the name is
    built in samples/common/logging.h defineTest from NV_TENSORRT_VERSION = major*10000 + minor*100 + patch,
    include/NvInferRuntimeBase.h release/10.13:97-101). None when it prints no such line."""
    try:
        proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    found = TRTEXEC_BANNER.search(proc.stdout + proc.stderr)
    if not found:
        return None
    v = int(found.group(1))
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}"


def same_release(a: str, b: str) -> bool:
    """Major.minor.patch agree (the Python module says e.g. 10.13.0.35, trtexec's banner 10.13.0): an engine only
    deserializes in the TensorRT that built it, unless built VERSION_COMPATIBLE (NvInfer.h release/10.13:8903-8908),
    which trtpipe does not set."""
    return a.split(".")[:3] == b.split(".")[:3]


def trtexec_shapes(feeds: dict[str, np.ndarray], shape_inputs) -> tuple[str | None, str | None]:
    """(the --shapes value, None), or (None, why it cannot be written). trtexec splits the list on every ',' first,
    then each item at a quoted name or else at its last ':' (sampleOptions.cpp getShapesInference and
    splitNameAndValue, release/10.13:291-325+586-597, release/11.1:270-303+543-556): names are quoted
    ('Input:0':1x3, its documented form), and a name holding ',' or "'" cannot be given at all."""
    bad = [n for n in feeds if "," in n or "'" in n]
    if bad:
        return None, (f"input name(s) {', '.join(repr(n) for n in bad)} hold ',' or a quote, which trtexec's --shapes "
                      f"cannot carry (it splits the list on every ',')")
    return ",".join(f"'{n}':{'x'.join(str(int(v)) for v in (np.asarray(a).reshape(-1) if n in shape_inputs else a.shape))}"
                    for n, a in feeds.items()), None


def _output_allocator(trt, device):
    """An IOutputAllocator (after Polygraphy's TrtRunner): raw device buffers grown on request, shapes as
    TensorRT reports them once it knows them."""

    class OutputAllocator(trt.IOutputAllocator):
        def __init__(self):
            trt.IOutputAllocator.__init__(self)
            self.buffers: dict[str, Any] = {}
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name, memory, size, alignment):
            buf = self.buffers.get(tensor_name)
            if buf is None or buf.nbytes < size:
                buf = self.buffers[tensor_name] = device.empty((int(size),), np.uint8)
            return buf.ptr

        def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name, shape):
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

    return OutputAllocator()


class Runner(BaseRunner):
    """One execution context for one of the engine's profiles."""

    @classmethod
    def machine_identity(cls, options: dict[str, Any]) -> dict[str, str]:
        """The TensorRT version and the GPU (name, compute capability)."""
        info = get_device().info
        return {"backend_version": version(), "device": info["name"], "compute_capability": info["compute_capability"]}

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
        engine = self.engine
        tensors = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = [t for t in tensors if engine.get_tensor_mode(t) == trt.TensorIOMode.INPUT]
        self.output_names = [t for t in tensors if engine.get_tensor_mode(t) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {t: _numpy_dtype(trt, engine.get_tensor_dtype(t)) for t in tensors}
        # shape-tensor inputs: host memory, and a range of values rather than of shapes
        self.shape_inputs = [t for t in self.input_names if engine.is_shape_inference_io(t)]
        self.ranges = {t: tuple(tuple(int(d) for d in dims) for dims in engine.get_tensor_profile_shape(t, self.profile_index))
                       for t in self.input_names if t not in self.shape_inputs}
        self.value_ranges = {t: tuple(tuple(int(v) for v in vals) for vals in
                                      engine.get_tensor_profile_values(self.profile_index, t))  # positional: see the double
                             for t in self.shape_inputs}
        self.cuda_graph_used = bool(self.options["cuda_graph"])

    # --- checks -------------------------------------------------------------------------------
    def check(self, feeds: dict[str, np.ndarray]) -> None:
        """Shapes inside the profile; shape-tensor inputs: values inside the profile's value range."""
        plain = {n: a.shape for n, a in feeds.items() if n not in self.shape_inputs}
        ranges = {n: r for n, r in self.profile.ranges.items() if n not in self.shape_inputs}
        check_shapes_in_profile(plain, ranges, self.engine_path, self.profile.name)
        for name in self.shape_inputs:
            if name not in feeds:
                raise ProfileError(f"{self.engine_path}: no values given for shape-tensor input {name!r}; fix: feed it.")
            lo, _, hi = self.value_ranges[name]
            values = [int(v) for v in np.asarray(feeds[name]).reshape(-1)]
            if len(values) != len(lo) or not all(a <= v <= b for a, v, b in zip(lo, values, hi)):
                raise ProfileError(f"{self.engine_path}: values {values} of shape-tensor input {name!r} are outside profile "
                                   f"{self.profile.name!r} (min {list(lo)}, max {list(hi)}); fix: use values inside it.")

    def _fail(self, what: str) -> None:
        raise TrtpipeError(f"{self.engine_path}: {what} (see TensorRT's log above); fix: check the engine and its inputs.")

    def _bind_inputs(self, shapes: dict[str, Shape], buffers: dict[str, Any]) -> None:
        context = self.context
        for name in self.input_names:
            if not context.set_input_shape(name, shapes[name]):
                raise ProfileError(f"{self.engine_path}: TensorRT refused shape {shapes[name]} for input {name!r} in profile "
                                   f"{self.profile.name!r} (range {self.ranges.get(name, self.value_ranges.get(name))}); "
                                   f"fix: use a shape inside it.")
            if not context.set_tensor_address(name, buffers[name].ptr):
                self._fail(f"set_tensor_address refused input {name!r}")

    # --- one input set ------------------------------------------------------------------------
    def _step(self, feeds: dict[str, np.ndarray]):
        """(GpuStep, results, data_dependent, ran) for one input set. `prepare` binds shapes, addresses and output
        allocators when the step runs (another step may have bound its own since); `compute` only enqueues.
        Call inside device.use(self.stream)."""
        device, context, stream = self.device, self.context, self.stream
        arrays = {n: np.ascontiguousarray(feeds[n], dtype=self.dtypes[n]) for n in self.input_names}
        shapes = {n: tuple(a.shape) for n, a in arrays.items()}
        host_in = {n: device.pinned(arrays[n]) for n in self.input_names}
        # shape-tensor inputs are read by TensorRT from host memory at enqueue: their pinned buffer is their address
        dev = {n: host_in[n] if n in self.shape_inputs else device.empty(shapes[n], self.dtypes[n]) for n in self.input_names}
        uploads = [n for n in self.input_names if n not in self.shape_inputs]
        self._bind_inputs(shapes, dev)  # to learn the output shapes; prepare() binds again when the step runs
        out_shapes = {n: tuple(int(d) for d in context.get_tensor_shape(n)) for n in self.output_names}
        dynamic = [n for n in self.output_names if any(d < 0 for d in out_shapes[n])]  # sizes known only by running
        fixed = [n for n in self.output_names if n not in dynamic]
        dev.update({n: device.empty(out_shapes[n], self.dtypes[n]) for n in fixed})
        host_out = {n: device.pinned_empty(out_shapes[n], self.dtypes[n]) for n in fixed}
        allocator = _output_allocator(self.trt, device) if dynamic else None
        raw_out: dict[str, Any] = {}

        def prepare() -> None:
            self._bind_inputs(shapes, dev)
            for n in fixed:
                if not context.set_tensor_address(n, dev[n].ptr):
                    self._fail(f"set_tensor_address refused output {n!r}")
            for n in dynamic:
                if not context.set_output_allocator(n, allocator):
                    self._fail(f"set_output_allocator refused output {n!r}")

        def upload() -> None:
            for n in uploads:
                device.copy(dev[n], host_in[n], stream)

        def compute() -> None:
            if not context.execute_async_v3(stream.handle):
                self._fail("execute_async_v3 failed")

        def download() -> None:
            for n in fixed:
                device.copy(host_out[n], dev[n], stream)
            for n in dynamic:  # the whole allocation TensorRT asked for; the notified shape says how much is output
                buf = allocator.buffers[n]
                if n not in raw_out or raw_out[n].nbytes != buf.nbytes:
                    raw_out[n] = device.pinned_empty((buf.nbytes,), np.uint8)
                device.copy(raw_out[n], buf, stream)

        def results() -> list[np.ndarray]:
            out = []
            for n in self.output_names:
                if n in fixed:
                    out.append(host_out[n].numpy().copy())
                else:
                    shape, dtype = allocator.shapes[n], self.dtypes[n]
                    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                    out.append(raw_out[n].numpy()[:nbytes].view(dtype).reshape(shape).copy())
            return out

        step = GpuStep(upload=upload, compute=compute, download=download, prepare=prepare)
        if dynamic:  # one run now, outside any timing, so the host buffers for these outputs exist before timing
            prepare(), upload(), compute(), download()
            stream.synchronize()
        return step, results, bool(dynamic), bool(dynamic)

    def run_impl(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self.device.use(self.stream):
            step, results, _, ran = self._step(feeds)
            if not ran:
                step.prepare()
                step.upload()
                step.compute()
                step.download()
            self.stream.synchronize()
        return results()

    def benchmark_impl(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        with self.device.use(self.stream):
            built = [self._step(feeds) for feeds in feed_sets]
        transfers = bool(self.options["include_transfers"])
        data_dependent = any(b[2] for b in built)
        graph = bool(self.options["cuda_graph"]) and not data_dependent
        m = measure_gpu(self.device, self.stream, [b[0] for b in built], settings, transfers, graph)
        stats = summarize_gpu(m, batch, settings.cv_threshold)
        if self.options["cuda_graph"] and data_dependent:
            note = "no CUDA graph: outputs whose size depends on the data (IOutputAllocator)"
            stats["warnings"] = "; ".join(w for w in (note, stats["warnings"]) if w)
        self.cuda_graph_used = m.cuda_graph
        check = self.trtexec_check(feed_sets[0], transfers, m.cuda_graph)
        stats["trtexec_compute_ms_median"] = check["trtexec_compute_ms_median"]
        if check.get("note"):
            stats["warnings"] = "; ".join(w for w in (stats["warnings"], check["note"]) if w)
        return stats

    def trtexec_check(self, feeds: dict[str, np.ndarray], transfers: bool, cuda_graph: bool) -> dict[str, Any]:
        """trtexec on the same engine, profile and shapes, timing what we timed (transfers, CUDA graph, one inference
        in flight), when it is on PATH: its median GPU compute time beside ours. Skipped, with one sentence for the
        log and the row (`note`), where trtexec is of another TensorRT than the engine or cannot take the shapes."""
        nan = {"trtexec_compute_ms_median": float("nan")}
        exe = shutil.which("trtexec")
        if not exe or not self.options["trtexec"]:
            return nan

        def skipped(why: str) -> dict[str, Any]:
            note = f"no trtexec cross-check: {why}"
            log.warning("%s", note)
            return {**nan, "note": note}

        theirs = trtexec_version(exe)
        if theirs is None:
            return skipped(f"{exe} printed no TensorRT version for --help")
        if not same_release(theirs, self.trt.__version__):
            return skipped(f"{exe} is TensorRT {theirs} and the engine TensorRT {self.trt.__version__} (an engine loads "
                           f"only in the TensorRT that built it); put the trtexec of TensorRT {self.trt.__version__} "
                           f"first on PATH")
        spec, why = trtexec_shapes(feeds, self.shape_inputs)
        if spec is None:
            return skipped(why)
        with tempfile.TemporaryDirectory() as tmp:
            times = Path(tmp) / "times.json"
            cmd = [exe, f"--loadEngine={self.engine_path}", f"--shapes={spec}", f"--useProfile={self.profile_index}",
                   "--warmUp=500", "--duration=3", f"--exportTimes={times}",
                   *trtexec_flags(int(theirs.split(".")[0]), transfers, cuda_graph)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or not times.exists():
                log.warning("trtexec failed (%d): %s", proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:])
                return skipped(f"trtexec {theirs} failed (exit {proc.returncode}); its output is in the log")
            log.info("trtexec: %s", " ".join(cmd[1:]))
            return {"trtexec_compute_ms_median": trtexec_median_compute(json.loads(times.read_text()))}

    def describe_impl(self) -> dict[str, Any]:
        return gpu_description(self.device.info, bool(self.options["include_transfers"]), bool(self.options["cuda_graph"]))


def trtexec_median_compute(trace: list[dict[str, Any]]) -> float:
    """Median GPU compute time (ms) of a trtexec --exportTimes trace (records: h2dMs, computeMs, d2hMs, latencyMs...)."""
    computes = [r["computeMs"] for r in trace if isinstance(r, dict) and "computeMs" in r]
    return float(np.median(computes)) if computes else float("nan")
