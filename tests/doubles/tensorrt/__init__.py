"""A strict test double of the `tensorrt` Python module, for TensorRT 10.x or 11.x (TRT_DOUBLE_VERSION, default
10.13.0): the API trtpipe's backend and Polygraphy 0.53.6's loaders call, with the documented semantics.

NOTHING HERE IS TENSORRT, and nothing in this project has run on real TensorRT. Every rule below cites where
it is documented: the NVIDIA/TensorRT repository (headers, Python bindings, samples) at the named release
branch, read from a git snapshot; short names (file relative to the repository):
  NvInfer.h = include/NvInfer.h, NvInferRuntime.h = include/NvInferRuntime.h,
  pyCore.cpp = python/src/infer/pyCore.cpp, pyCoreDoc.h = python/docstrings/infer/pyCoreDoc.h,
  pyOnnx.cpp = python/src/parsers/pyOnnx.cpp, wheel __init__.py = python/packaging/bindings_wheel/tensorrt/__init__.py.
What the sources do not settle (the core library is closed source) the double refuses with NotSettled, so
code that would depend on it fails here instead of guessing; what would be undefined behaviour on a GPU
(reading past a buffer, a host pointer where device memory is needed) raises UndefinedBehaviour.

Execution is simulated: the "engine" carries the ONNX it was parsed from, and execute_async_v3 runs it with
ONNX Runtime on the CPU (ONNX's reference evaluator where ORT has no kernel), reading inputs from and writing
outputs to the buffers registered by tests/doubles/fake_cuda.py. An engine built with TF32 allowed runs its
MatMul/Gemm/Conv inputs rounded to a 10-bit mantissa (an fp16 round trip stands in for TF32 rounding), as
TensorRT may choose TF32 tactics on Ampere and later.

Rules (the contract tests name them by number):
 [T1] BuilderFlag: TF32 exists and is ON in a new IBuilderConfig on 10.x and 11.x ("Enabled by default.",
      NvInfer.h release/10.3:8319, release/10.13:8870, release/11.0:9991); values per version: 10.x
      NvInfer.h release/10.13:8846ff (10.3 ends at REFIT_INDIVIDUAL=23); 11.x removed FP16, INT8, BF16, FP8,
      INT4, FP4, OBEY/PREFER_PRECISION_CONSTRAINTS, REJECT_EMPTY_ALGORITHMS, WEIGHTLESS and renumbered the rest
      (NvInfer.h release/11.0:9974-10114; Python pyCore.cpp release/11.0:1592-1614).
 [T2] NetworkDefinitionCreationFlag: 10.x EXPLICIT_BATCH=0 (deprecated, ignored), STRONGLY_TYPED=1,
      PREFER_JIT/AOT_PYTHON_PLUGINS=2/3 from 10.13 (NvInfer.h release/10.13:10474-10490); 11.x STRONGLY_TYPED=0
      (deprecated, ignored: every network is strongly typed), PREFER_JIT/AOT=1/2 (NvInfer.h release/11.0:11413-11424,
      11511). create_network's keyword is `flags` (pyCore.cpp release/11.0:1778).
 [T3] builder_optimization_level: default 3; above the maximum (5) "results in behavior identical to the
      maximum level" — accepted, no error (NvInfer.h release/10.13:10148-10165, release/11.0:11080-11097).
      Negative levels ("Must be non-negative"; what happens is not documented): NotSettled.
 [T4] set_tensor_address(name, ptr) -> bool, False if the name is no I/O tensor; execute_async_v3(stream) -> bool,
      False (with a logged error) when an input has no address or shape, or an output neither an address nor an
      IOutputAllocator — the bindings return the C++ bool, they do not raise (pyCore.cpp release/10.13:113-121,
      release/11.0:113-118; NvInferRuntime.h release/11.0:4346-4384, 4627-4645). Addresses need 256-byte alignment.
 [T5] IOptimizationProfile.set_shape calls setDimensions for min, then opt, then max and raises on the first that
      fails: "Shape provided for {min|opt|max} is inconsistent with other shapes." (pyCore.cpp release/10.13:36-44,
      release/11.0:36-44). Min is set first with nothing to compare, so a min>opt or rank mismatch can at most
      surface as the opt (or max) message; whether setDimensions checks the order at all is not settled — isValid()
      does (NvInferRuntime.h release/11.0:2665-2676) and add_optimization_profile returns -1 for an invalid profile.
 [T6] set_shape_input(name, min, opt, max) for shape-tensor inputs, and only for them (NvInferRuntime.h
      release/11.0:2682-2723; pyCore.cpp release/10.13:59-68); engine.is_shape_inference_io (pyCore.cpp
      release/11.0:1430), get_tensor_location HOST for shape inputs (NvInferRuntime.h release/11.0:3094-3105), whose
      address must be host memory read at enqueue (NvInferRuntime.h release/11.0:4363-4365);
      get_tensor_profile_values is bound with its keyword names swapped, so it is called positionally
      (profile_index, name) (pyCore.cpp release/10.13:196-219+1552, release/11.0:196+1503) and raises
      "Binding index does not correspond to an input shape tensor." for other tensors.
 [T7] Data-dependent output shapes: engine and context report -1 for them (NvInferRuntime.h release/11.0:3018-3027,
      4151-4158); "use setOutputAllocator()" (4371-4373); the allocator's reallocate_output_async (falling back to
      reallocate_output) returns an int address or None, exceptions in it are printed, not raised (pyCore.cpp
      release/10.13:601-690); notify_shape reports the shape before enqueueV3 returns (NvInferRuntime.h
      release/11.0:3819-3897). Subclasses must call IOutputAllocator.__init__ (a pybind11 trampoline).
 [T8] CUDA graph capture: an enqueue that cannot be captured returns False and trtexec falls back to plain
      launches (samples/trtexec/../common/sampleInference.cpp release/11.0:1310-1355). Which engines cannot be
      captured is not documented (only weight streaming: NvInferRuntime.h release/11.0:4642-4643): tests set
      CAPTURE_UNSUPPORTED to model one. A data-dependent engine under capture: NotSettled.
 [T9] Timing cache: create_timing_cache(b"") is a new cache; set_timing_cache(cache, ignore_mismatch) -> bool
      refuses a cache of another device unless mismatches are ignored (NvInfer.h release/10.13:10026-10043);
      ITimingCache.combine(input, ignore_mismatch) -> bool, skipped (False) for a cache of another TensorRT
      version (NvInfer.h release/10.13:9104-9122, release/11.0:10210-10218); serialize() -> IHostMemory, which
      supports the buffer protocol and (deprecated) `with` (wheel __init__.py release/10.13 and 11.0:101-132).
 [T10] Removed names: 10.0 removed execute_async_v2, set_binding_shape, bindings, build_engine, max_batch_size;
      11.0 removed device_memory_size (only device_memory_size_v2, pyCore.cpp release/11.0:1421), int8_calibrator,
      quantization flags (absent from pyCore.cpp release/11.0), ILayer.precision_is_set (absent from
      python/src/infer/pyGraph.cpp release/11.0). The double also leaves out
      10.x names trtpipe must not use (int8_calibrator, quantization flags): a strict subset.
 [T11] An engine deserializes only with the TensorRT version that built it (returns None otherwise): forward
      compatibility of a plan needs BuilderFlag.VERSION_COMPATIBLE (NvInfer.h release/10.13:8903-8908), which
      trtpipe does not set; the double refuses every other version.
 [T12] set_input_shape(name, shape) -> bool, False outside the active profile (the observed error text names
      neither min nor max: NVIDIA/TensorRT-LLM issues 1635 and 1332); set_optimization_profile_async raises RuntimeError("Error in
      set optimization profile async.") on failure (pyCore.cpp release/10.13:346-352, release/11.0:329-335) and
      must precede set_input_shape; get_tensor_profile_shape returns invalid Dims for a non-input (NvInferRuntime.h
      release/11.0:3440-3454).
 [T13] set_memory_pool_limit with an unusable size "does nothing and emits the recoverable error" (NvInfer.h
      release/11.0:10991-11017); a negative size does not convert to size_t (TypeError).
 [T14] 10.x precision builder flags with a strongly typed network: trtexec does NOT refuse them, it warns "Invalid
      usage, setting fp16 mode is not allowed if graph is strongly typed. Disabling BuilderFlag::kFP16." and clears
      each flag (samples/common/sampleOptions.cpp release/10.13:1268-1285; 11.x made --stronglyTyped a no-op,
      release/11.1:2752). What the builder itself does given those flags is not documented: NotSettled.
 [T15] CUDA graph capture of enqueueV3: trtexec runs one plain enqueue with the very bindings it then captures,
      synchronizes, and only then begins the capture ("Avoid capturing initialization calls by executing the
      enqueue function at least once before starting CUDA graph capture.": samples/common/sampleInference.cpp
      release/10.13:1261-1270, release/11.1:1335-1347). What a capture records without that plain enqueue is not
      documented: a capture whose shapes or addresses differ from this context's last plain enqueue is NotSettled.
TRT_DOUBLE_FAIL_BUILD (tests and the acceptance script's demonstration only): build_serialized_network returns None
with a logged error for a network parsed from an ONNX path containing this text, as a failed build does (the
plan is null on failure: NvInfer.h release/10.13 IBuilder::buildSerializedNetwork).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import sys
import warnings
from typing import Any

import numpy as np
import onnx

import fake_cuda
from tf32 import with_tf32_rounding as _with_tf32_rounding

__version__ = os.environ.get("TRT_DOUBLE_VERSION", "10.13.0")
_MAJOR, _MINOR = (int(p) for p in __version__.split(".")[:2])
if _MAJOR not in (10, 11):
    raise ImportError(f"the double emulates TensorRT 10.x and 11.x, not {__version__}")

CALLS: list[tuple] = []  # what the code under test called, for assertions on the contract
CAPTURE_UNSUPPORTED = False  # [T8] tests set it: enqueues under CUDA graph capture then fail, as some engines' do


class NotSettled(AssertionError):
    """The TensorRT sources do not say what happens here; code must not depend on it."""


class UndefinedBehaviour(AssertionError):
    """On a GPU this would read or write memory it must not (an illegal address, a buffer too small)."""


# --- logging ----------------------------------------------------------------------------------------------------
class ILogger:
    """Subclassable; subclasses call ILogger.__init__ and implement log(severity, msg) (Polygraphy does)."""

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self):
        pass

    def log(self, severity, msg: str) -> None:
        raise NotImplementedError("ILogger.log is pure virtual")


class Logger(ILogger):
    # the wheel copies ILogger.Severity's members onto Logger (wheel __init__.py)
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = ILogger.Severity

    def __init__(self, min_severity=ILogger.Severity.WARNING):
        super().__init__()
        self.min_severity = min_severity
        self.messages: list[str] = []

    def log(self, severity, msg: str) -> None:
        self.messages.append(msg)


def _log(logger, severity, msg: str) -> None:
    if logger is not None:
        logger.log(severity, msg)


def init_libnvinfer_plugins(logger, namespace: str) -> bool:
    return True


# --- enums ------------------------------------------------------------------------------------------------------
class TensorIOMode(enum.IntEnum):  # NvInferRuntimeBase.h release/11.0:664-670
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class TensorLocation(enum.IntEnum):  # NvInferRuntime.h release/11.0:203-206
    DEVICE = 0
    HOST = 1


class DataType(enum.IntEnum):  # pyFoundationalTypes.cpp (10.3/10.13/11.0) :180-191
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9

    @property
    def itemsize(self) -> int:
        return {0: 4, 1: 2, 2: 1, 3: 4, 4: 1, 5: 1, 6: 1, 7: 2, 8: 8}[int(self)]


class MemoryPoolType(enum.IntEnum):  # a subset: the workspace pool
    WORKSPACE = 0


class DeviceType(enum.IntEnum):
    GPU = 0
    DLA = 1


class ProfilingVerbosity(enum.IntEnum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class ErrorCode(enum.IntEnum):  # NvOnnxParser.h release/11.0:57-71
    SUCCESS = 0
    INTERNAL_ERROR = 1
    MEM_ALLOC_FAILED = 2
    MODEL_DESERIALIZE_FAILED = 3
    INVALID_VALUE = 4
    INVALID_GRAPH = 5
    INVALID_NODE = 6
    UNSUPPORTED_GRAPH = 7
    UNSUPPORTED_NODE = 8


if _MAJOR == 10:  # [T1][T2]
    _FLAGS = dict(FP16=0, INT8=1, DEBUG=2, GPU_FALLBACK=3, REFIT=4, DISABLE_TIMING_CACHE=5, TF32=6, SPARSE_WEIGHTS=7,
                  SAFETY_SCOPE=8, OBEY_PRECISION_CONSTRAINTS=9, PREFER_PRECISION_CONSTRAINTS=10, DIRECT_IO=11,
                  REJECT_EMPTY_ALGORITHMS=12, VERSION_COMPATIBLE=13, EXCLUDE_LEAN_RUNTIME=14, FP8=15,
                  ERROR_ON_TIMING_CACHE_MISS=16, BF16=17, DISABLE_COMPILATION_CACHE=18, STRIP_PLAN=19, WEIGHTLESS=19,
                  REFIT_IDENTICAL=20, WEIGHT_STREAMING=21, INT4=22, REFIT_INDIVIDUAL=23)
    if _MINOR >= 13:
        _FLAGS.update(STRICT_NANS=24, MONITOR_MEMORY=25, FP4=26, EDITABLE_TIMING_CACHE=27, DISTRIBUTIVE_INDEPENDENCE=28)
    _NETWORK_FLAGS = dict(EXPLICIT_BATCH=0, STRONGLY_TYPED=1)
    if _MINOR >= 13:
        _NETWORK_FLAGS.update(PREFER_JIT_PYTHON_PLUGINS=2, PREFER_AOT_PYTHON_PLUGINS=3)
else:
    _FLAGS = dict(DEBUG=2, GPU_FALLBACK=3, REFIT=4, DISABLE_TIMING_CACHE=5, TF32=6, SPARSE_WEIGHTS=7, SAFETY_SCOPE=8,
                  DIRECT_IO=11, VERSION_COMPATIBLE=12, EXCLUDE_LEAN_RUNTIME=13, ERROR_ON_TIMING_CACHE_MISS=15,
                  DISABLE_COMPILATION_CACHE=17, STRIP_PLAN=18, REFIT_IDENTICAL=19, WEIGHT_STREAMING=20,
                  REFIT_INDIVIDUAL=22, STRICT_NANS=23, MONITOR_MEMORY=24, EDITABLE_TIMING_CACHE=26,
                  DISTRIBUTIVE_INDEPENDENCE=27)
    _NETWORK_FLAGS = dict(STRONGLY_TYPED=0, PREFER_JIT_PYTHON_PLUGINS=1, PREFER_AOT_PYTHON_PLUGINS=2)

BuilderFlag = enum.IntEnum("BuilderFlag", _FLAGS)
NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", _NETWORK_FLAGS)
_WEAK_FLAGS = {"FP16", "BF16", "INT8", "FP8", "INT4", "FP4"}  # 10.x only; "superseded by strong typing"


# --- shapes -----------------------------------------------------------------------------------------------------
class Dims(tuple):
    """Dims; `nb_dims == -1` (an empty Dims here) is what TensorRT returns for an unknown name."""

    nb_dims_invalid = False

    @classmethod
    def invalid(cls) -> "Dims":
        d = cls(())
        d.nb_dims_invalid = True
        return d


def _dims(shape, what: str = "shape") -> tuple[int, ...]:
    shape = tuple(shape)
    if len(shape) > 8:  # castDimsFromPyIterable, pyCore.cpp release/10.13:143-162
        raise RuntimeError("The number of input dims exceeds the maximum allowed number of dimensions")
    return tuple(int(d) for d in shape)


# --- the ONNX stand-in for what the closed library infers -------------------------------------------------------
_ONNX_TO_TRT = {onnx.TensorProto.FLOAT: DataType.FLOAT, onnx.TensorProto.FLOAT16: DataType.HALF,
                onnx.TensorProto.INT8: DataType.INT8, onnx.TensorProto.INT32: DataType.INT32,
                onnx.TensorProto.INT64: DataType.INT64, onnx.TensorProto.BOOL: DataType.BOOL,
                onnx.TensorProto.UINT8: DataType.UINT8, onnx.TensorProto.BFLOAT16: DataType.BF16}
_NUMPY = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8, DataType.INT32: np.int32,
          DataType.INT64: np.int64, DataType.BOOL: np.bool_, DataType.UINT8: np.uint8}
UNSUPPORTED_OPS = {"NotATensorRTOp"}  # tests use a custom op to exercise parser failures
# Inputs consumed here are shape tensors (their values define shapes): the double's stand-in for the parser's
# shape-tensor inference, which is closed source.
_SHAPE_SLOTS = {"Reshape": {1}, "Expand": {1}, "ConstantOfShape": {0}, "Tile": {1}, "Range": {0, 1, 2},
                "Slice": {1, 2, 3, 4}, "Resize": {3}}
_DATA_DEPENDENT_OPS = {"NonZero", "NonMaxSuppression"}  # output sizes depend on the data (INonZeroLayer, INMSLayer)


def _analyse(model: onnx.ModelProto) -> tuple[set[str], set[str]]:
    """(shape-tensor inputs, data-dependent outputs) of a graph."""
    inputs = {v.name for v in model.graph.input} - {i.name for i in model.graph.initializer}
    shape_inputs = set()
    for node in model.graph.node:
        for slot in _SHAPE_SLOTS.get(node.op_type, ()):
            if slot < len(node.input) and node.input[slot] in inputs:
                shape_inputs.add(node.input[slot])
    tainted: set[str] = set()
    for node in model.graph.node:  # ONNX nodes are topologically sorted
        if node.op_type in _DATA_DEPENDENT_OPS or any(i in tainted for i in node.input):
            tainted.update(node.output)
    return shape_inputs, {v.name for v in model.graph.output if v.name in tainted}


_SESSIONS: dict[str, Any] = {}


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    key = hashlib.sha1(model).hexdigest()
    if key not in _SESSIONS:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            _SESSIONS[key] = lambda f: session.run(None, f)
        except Exception:  # no ORT CPU kernel (bf16): ONNX's reference evaluator
            from onnx.reference import ReferenceEvaluator

            reference = ReferenceEvaluator(onnx.load_from_string(model))
            _SESSIONS[key] = lambda f: reference.run(None, f)
    return [np.asarray(o) for o in _SESSIONS[key](feeds)]


# --- network and parser -----------------------------------------------------------------------------------------
class ITensor:
    def __init__(self, name: str, shape: tuple, dtype: DataType, is_shape_tensor: bool = False):
        self.name, self.shape, self.dtype = name, Dims(shape), dtype
        self.is_shape_tensor = is_shape_tensor
        self.is_network_input = True


class ILayer:
    def __init__(self, node: onnx.NodeProto, index: int):
        self.name = node.name or f"{node.op_type}_{index}"
        self.precision = DataType.FLOAT
        if _MAJOR == 10:  # removed in 11.0 (absent from pyGraph.cpp release/11.0)
            self.precision_is_set = False


class INetworkDefinition:
    def __init__(self, flags: int):
        self.flags = flags
        strongly = 1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        self.strongly_typed = _MAJOR >= 11 or bool(flags & strongly)  # [T2]
        self.onnx: bytes | None = None
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._layers: list[ILayer] = []

    num_inputs = property(lambda self: len(self._inputs))
    num_outputs = property(lambda self: len(self._outputs))
    num_layers = property(lambda self: len(self._layers))

    def get_input(self, i: int) -> ITensor:
        return self._inputs[i]

    def get_output(self, i: int) -> ITensor:
        return self._outputs[i]

    def get_flag(self, flag) -> bool:
        return bool(self.flags & (1 << int(NetworkDefinitionCreationFlag(flag))))

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, i: int) -> ILayer:
        if not 0 <= i < len(self._layers):
            raise IndexError(i)
        return self._layers[i]


class ParserError:
    def __init__(self, desc: str, node: int, name: str, op: str):
        self._desc, self._node, self._name, self._op = desc, node, name, op

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._name

    def node_operator(self) -> str:
        return self._op

    def code(self) -> ErrorCode:
        return ErrorCode.UNSUPPORTED_NODE

    def func(self) -> str:
        return "importNode"

    def __str__(self) -> str:  # parserErrorStr, pyOnnx.cpp release/11.0:155-166
        return (f"In node {self._node} with name: {self._name} and operator: {self._op} ({self.func()}): "
                f"{self.code().name}: {self._desc}")


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger):
        self.network, self.logger, self.errors = network, logger, []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> ParserError:
        return self.errors[i]

    def clear_errors(self) -> None:
        self.errors = []

    def parse_from_file(self, model: str) -> bool:
        if not isinstance(model, str):  # pybind11: std::string parameter (pyOnnx.cpp release/11.0:182)
            raise TypeError("parse_from_file(): incompatible function arguments; model must be a str")
        with open(model, "rb") as fh:
            ok = self.parse(fh.read())
        self.network.onnx_path = model  # TRT_DOUBLE_FAIL_BUILD matches it
        return ok

    def parse(self, model, path: str | None = None) -> bool:
        model_proto = onnx.load_from_string(bytes(model))
        for index, node in enumerate(model_proto.graph.node):
            if node.op_type in UNSUPPORTED_OPS or node.domain not in ("", "ai.onnx", "com.microsoft"):
                self.errors.append(ParserError(f"No importer registered for op: {node.op_type}", index, node.name, node.op_type))
        if self.errors:
            return False
        initializers = {i.name for i in model_proto.graph.initializer}
        shape_inputs, _ = _analyse(model_proto)

        def tensor(value) -> ITensor:
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)
            return ITensor(value.name, dims, _ONNX_TO_TRT[value.type.tensor_type.elem_type], value.name in shape_inputs)

        self.network._inputs = [tensor(v) for v in model_proto.graph.input if v.name not in initializers]
        self.network._outputs = [tensor(v) for v in model_proto.graph.output]
        for t in self.network._outputs:
            t.is_network_input = False
        self.network._layers = [ILayer(n, i) for i, n in enumerate(model_proto.graph.node)]
        self.network.onnx = bytes(model)
        return True


# --- builder ----------------------------------------------------------------------------------------------------
class IOptimizationProfile:
    def __init__(self):
        self.shapes: dict[str, tuple[tuple, tuple, tuple]] = {}
        self.values: dict[str, tuple[tuple, tuple, tuple]] = {}

    def set_shape(self, input: str, min, opt, max) -> None:  # [T5]
        lo, mid, hi = _dims(min), _dims(opt), _dims(max)
        if any(d < 0 for d in lo):
            raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
        if len(mid) != len(lo) or any(m < a for a, m in zip(lo, mid)):
            raise RuntimeError("Shape provided for opt is inconsistent with other shapes.")
        if len(hi) != len(mid) or any(h < m for m, h in zip(mid, hi)):
            raise RuntimeError("Shape provided for max is inconsistent with other shapes.")
        self.shapes[input] = (lo, mid, hi)

    def get_shape(self, input: str) -> list[Dims]:
        return [Dims(s) for s in self.shapes.get(input, ())]

    def set_shape_input(self, input: str, min, opt, max) -> None:  # [T6]
        lo, mid, hi = (tuple(int(v) for v in x) for x in (min, opt, max))
        if len(mid) != len(lo):
            raise RuntimeError("opt input provided for shape tensor is inconsistent with other inputs.")
        if len(hi) != len(lo):
            raise RuntimeError("max input provided for shape tensor is inconsistent with other inputs.")
        self.values[input] = (lo, mid, hi)

    def get_shape_input(self, input: str) -> list[list[int]]:
        return [list(v) for v in self.values.get(input, ())]

    def __bool__(self) -> bool:  # isValid(), NvInferRuntime.h release/11.0:2665-2676
        if not self.shapes and not self.values:
            return False
        return all(all(a <= b <= c for a, b, c in zip(*t)) for t in list(self.shapes.values()) + list(self.values.values()))


class IHostMemory(bytes):
    """Serialized data: the buffer protocol, and (deprecated) `with` support added by the wheel's __init__.py."""

    @property
    def nbytes(self) -> int:
        return len(self)

    def __enter__(self):
        warnings.warn("Context managers for TensorRT types are deprecated. Memory will be freed automatically when "
                      "the reference count reaches 0.", DeprecationWarning, stacklevel=2)
        return self

    def __exit__(self, *exc) -> None:
        pass


class ITimingCache:  # [T9]
    def __init__(self, header: dict[str, str], entries: dict[str, int]):
        self.header, self.entries = header, entries

    def serialize(self) -> IHostMemory:
        return IHostMemory(json.dumps({"header": self.header, "entries": self.entries}, sort_keys=True).encode())

    def combine(self, input_cache: "ITimingCache", ignore_mismatch: bool) -> bool:
        if input_cache.header.get("version") != self.header.get("version"):
            return False  # "must be generated by a TensorRT build of exact same version, otherwise ... false"
        if input_cache.header != self.header and not ignore_mismatch:
            return False
        for key, value in input_cache.entries.items():
            self.entries.setdefault(key, value)  # "Conflicting entries will be skipped"
        CALLS.append(("combine_timing_cache", sorted(input_cache.entries)))
        return True

    def reset(self) -> bool:
        self.entries = {}
        return True


def _cache_header() -> dict[str, str]:
    return {"version": __version__, "device": fake_cuda.Device().info["name"]}


class IBuilderConfig:
    def __init__(self, logger):
        self._logger = logger
        self.profiles: list[IOptimizationProfile] = []
        self.pools: dict[MemoryPoolType, int] = {}
        self.flags: set = {BuilderFlag.TF32}  # [T1] TF32 is on by default
        self._level = 3
        self._cache: ITimingCache | None = None
        self.DLA_core = -1  # NvInfer.h release/11.0:10783-10804
        self.default_device_type = DeviceType.GPU
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY

    @property
    def num_optimization_profiles(self) -> int:
        return len(self.profiles)

    @property
    def builder_optimization_level(self) -> int:
        return self._level

    @builder_optimization_level.setter
    def builder_optimization_level(self, level: int) -> None:  # [T3]
        if int(level) < 0:
            raise NotSettled("builder_optimization_level < 0: the header says only 'Must be non-negative'")
        self._level = int(level)  # > 5 behaves as 5; whether the getter then returns 5 is not settled

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:  # [T13]
        if not isinstance(pool, MemoryPoolType):
            raise TypeError("set_memory_pool_limit(): incompatible function arguments")
        if int(pool_size) < 0:
            raise TypeError("set_memory_pool_limit(): incompatible function arguments (size_t)")
        if int(pool_size) == 0:
            _log(self._logger, Logger.ERROR, "Parameter check failed: memory pool size must be positive; not changed")
            return
        self.pools[pool] = int(pool_size)

    def get_memory_pool_limit(self, pool: MemoryPoolType) -> int:
        return self.pools.get(pool, int(fake_cuda.Device().info["memory_gib"] * 2**30))

    def set_flag(self, flag) -> None:
        if not isinstance(flag, BuilderFlag):
            raise TypeError("set_flag(): incompatible function arguments")
        self.flags.add(flag)

    def clear_flag(self, flag) -> None:
        if not isinstance(flag, BuilderFlag):
            raise TypeError("clear_flag(): incompatible function arguments")
        self.flags.discard(flag)

    def get_flag(self, flag) -> bool:
        if not isinstance(flag, BuilderFlag):
            raise TypeError("get_flag(): incompatible function arguments")
        return flag in self.flags

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not profile:
            return -1  # "the index ... or -1 if the input is not valid" (NvInfer.h release/11.0:10846-10857)
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache) -> ITimingCache:
        data = bytes(serialized_timing_cache)
        if not data:
            return ITimingCache(_cache_header(), {})
        try:
            blob = json.loads(data)
            return ITimingCache(blob["header"], dict(blob["entries"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise NotSettled(f"create_timing_cache of data that is not a timing cache: {exc}") from exc

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if not isinstance(cache, ITimingCache):
            raise TypeError("set_timing_cache(): incompatible function arguments")
        if not ignore_mismatch and cache.header != _cache_header():
            return False  # a cache from another TensorRT or GPU is refused unless mismatches are ignored
        CALLS.append(("set_timing_cache", sorted(cache.entries)))
        self._cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self._cache


class Builder:
    def __init__(self, logger):
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(int(flags))

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig(self.logger)

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def _error(self, msg: str) -> None:
        _log(self.logger, Logger.ERROR, msg)

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig):
        if network.onnx is None:
            return None
        flag_names = sorted(f.name for f in config.flags)
        if _MAJOR == 10 and network.strongly_typed and set(flag_names) & _WEAK_FLAGS:  # [T14]
            raise NotSettled("precision builder flags on a strongly typed network (trtexec warns and clears them; "
                             "the builder's behaviour is not documented)")
        planted = os.environ.get("TRT_DOUBLE_FAIL_BUILD")
        if planted and planted in str(getattr(network, "onnx_path", "")):
            self._error(f"[double] planted build failure (TRT_DOUBLE_FAIL_BUILD={planted!r})")
            return None
        needs_profile = [t for t in network._inputs if -1 in t.shape or t.is_shape_tensor]
        if needs_profile and not config.profiles:
            self._error("network has dynamic or shape-tensor inputs but no optimization profile")
            return None
        profiles = []
        for index, profile in enumerate(config.profiles):
            entry = {"shapes": {}, "values": {}}
            for t in network._inputs:
                if t.is_shape_tensor:
                    if t.name not in profile.values:
                        self._error(f"optimization profile {index} has no shape values for shape tensor {t.name}")
                        return None
                    count = int(np.prod(t.shape)) if len(t.shape) else 1
                    if any(len(v) != count for v in profile.values[t.name]):
                        self._error(f"shape values for {t.name} need {count} elements")
                        return None
                    entry["values"][t.name] = [list(v) for v in profile.values[t.name]]
                    entry["shapes"][t.name] = [list(t.shape)] * 3
                    continue
                if t.name in profile.values:
                    self._error(f"{t.name} is not a shape tensor: set_shape_input is only for shape tensors")
                    return None
                if t.name not in profile.shapes:
                    if -1 in t.shape:
                        self._error(f"optimization profile {index} has no shapes for dynamic input {t.name}")
                        return None
                    entry["shapes"][t.name] = [list(t.shape)] * 3
                    continue
                for triple in profile.shapes[t.name]:
                    if len(triple) != len(t.shape) or any(d != -1 and d != s for d, s in zip(t.shape, triple)):
                        self._error(f"profile shapes {triple} do not fit input {t.name} {tuple(t.shape)}")
                        return None
                entry["shapes"][t.name] = [list(s) for s in profile.shapes[t.name]]
            profiles.append(entry)
        if config._cache is not None:  # the builder's tactic timings: one entry per layer and profile
            for layer in network._layers:
                for entry in profiles:
                    key = f"{layer.name}:{json.dumps(entry, sort_keys=True)}"
                    config._cache.entries[key] = config._cache.entries.get(key, 0) + 1
        tf32 = BuilderFlag.TF32 in config.flags
        CALLS.append(("build", {"strongly_typed": network.strongly_typed, "profiles": profiles, "flags": flag_names,
                                "workspace": config.pools.get(MemoryPoolType.WORKSPACE), "level": min(config._level, 5),
                                "tf32": tf32, "cache": config._cache is not None}))
        shape_inputs = {t.name for t in network._inputs if t.is_shape_tensor}
        _, data_dependent = _analyse(onnx.load_from_string(network.onnx))
        blob = {"version": __version__, "strongly_typed": network.strongly_typed, "profiles": profiles, "tf32": tf32,
                "inputs": [[t.name, list(t.shape), t.dtype.name, t.name in shape_inputs] for t in network._inputs],
                "outputs": [[t.name, list(t.shape), t.dtype.name, t.name in data_dependent] for t in network._outputs],
                "onnx": network.onnx.hex()}
        return IHostMemory(json.dumps(blob).encode())


# --- runtime ----------------------------------------------------------------------------------------------------
class Runtime:
    def __init__(self, logger):
        self.logger = logger

    def deserialize_cuda_engine(self, serialized_engine):
        try:
            blob = json.loads(bytes(serialized_engine))
        except ValueError:
            _log(self.logger, Logger.ERROR, "Failed to deserialize: the data is not an engine")
            return None
        if blob["version"] != __version__:  # [T11]
            _log(self.logger, Logger.ERROR, "The engine plan file is not compatible with this version of TensorRT")
            return None
        return ICudaEngine(blob, self.logger)


class ICudaEngine:
    def __init__(self, blob: dict[str, Any], logger):
        self._blob, self._logger = blob, logger
        self._io: dict[str, dict[str, Any]] = {}
        for name, shape, dtype, special in blob["inputs"]:
            self._io[name] = {"shape": tuple(shape), "dtype": DataType[dtype], "mode": TensorIOMode.INPUT,
                              "shape_input": special, "data_dependent": False}
        for name, shape, dtype, special in blob["outputs"]:
            self._io[name] = {"shape": tuple(shape), "dtype": DataType[dtype], "mode": TensorIOMode.OUTPUT,
                              "shape_input": False, "data_dependent": special}
        self._names = list(self._io)
        onnx_bytes = bytes.fromhex(blob["onnx"])
        self.onnx = _with_tf32_rounding(onnx_bytes) if blob["tf32"] else onnx_bytes

    num_layers = property(lambda self: len(onnx.load_from_string(bytes.fromhex(self._blob["onnx"])).graph.node))
    num_io_tensors = property(lambda self: len(self._names))
    num_optimization_profiles = property(lambda self: len(self._blob["profiles"]))
    device_memory_size_v2 = property(lambda self: 1 << 20)  # since 10.1
    if _MAJOR == 10:
        @property
        def device_memory_size(self) -> int:  # deprecated in 10.1, removed in 11.0 [T10]
            warnings.warn("Use get_device_memory_size_v2 instead", DeprecationWarning, stacklevel=2)
            return 1 << 20

    def serialize(self) -> IHostMemory:
        return IHostMemory(json.dumps(self._blob).encode())

    def get_tensor_name(self, index: int) -> str:
        return self._names[index]

    def _tensor(self, name: str) -> dict[str, Any]:
        if name not in self._io:
            raise NotSettled(f"engine query for {name!r}, which is no I/O tensor")
        return self._io[name]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self._io[name]["mode"] if name in self._io else TensorIOMode.NONE

    def get_tensor_dtype(self, name: str) -> DataType:
        return self._tensor(name)["dtype"]

    def get_tensor_shape(self, name: str) -> Dims:
        return Dims(self._tensor(name)["shape"]) if name in self._io else Dims.invalid()

    def get_tensor_location(self, name: str) -> TensorLocation:  # [T6]
        return TensorLocation.HOST if self._tensor(name)["shape_input"] else TensorLocation.DEVICE

    def is_shape_inference_io(self, name: str) -> bool:
        return bool(self._io.get(name, {}).get("shape_input", False))

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:  # [T12]
        if self.get_tensor_mode(name) != TensorIOMode.INPUT:
            return [Dims.invalid()] * 3
        if not 0 <= profile_index < self.num_optimization_profiles:
            raise NotSettled(f"get_tensor_profile_shape for profile {profile_index} of {self.num_optimization_profiles}")
        return [Dims(s) for s in self._blob["profiles"][profile_index]["shapes"][name]]

    def get_tensor_profile_values(self, name, profile_index) -> list[list[int]]:  # [T6]: keyword names swapped
        if not isinstance(name, int) or not isinstance(profile_index, str):
            raise TypeError("get_tensor_profile_values(): incompatible function arguments. The bound lambda takes "
                            "(profile_index: int, name: str) positionally")
        index, tensor = name, profile_index
        if not self.is_shape_inference_io(tensor) or self.get_tensor_mode(tensor) != TensorIOMode.INPUT:
            raise RuntimeError("Binding index does not correspond to an input shape tensor.")
        return [list(v) for v in self._blob["profiles"][index]["values"][tensor]]

    def create_execution_context(self, strategy=None) -> "IExecutionContext":
        return IExecutionContext(self)


class IOutputAllocator:
    """Subclass it and call IOutputAllocator.__init__(self) (a pybind11 trampoline) [T7]."""

    def __init__(self):
        self._trt_initialised = True

    def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int):
        raise NotImplementedError

    def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int, stream: int):
        return self.reallocate_output(tensor_name, memory, size, alignment)  # the trampoline's fallback

    def notify_shape(self, tensor_name: str, shape: Dims) -> None:
        raise NotImplementedError("notify_shape is pure virtual")


class IExecutionContext:
    def __init__(self, engine: ICudaEngine):
        self.engine = engine
        self.active_optimization_profile = 0
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.allocators: dict[str, IOutputAllocator] = {}
        self._plain_bindings = None  # [T15] shapes and addresses of the last uncaptured enqueue

    def _bindings(self) -> tuple:
        return (self.active_optimization_profile, tuple(sorted(self.shapes.items())), tuple(sorted(self.addresses.items())))

    def _error(self, msg: str) -> None:
        _log(self.engine._logger, Logger.ERROR, msg)

    def _io(self, mode: TensorIOMode) -> list[str]:
        return [n for n in self.engine._names if self.engine._io[n]["mode"] == mode]

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:  # [T12]
        if stream_handle not in fake_cuda.STREAMS:
            raise UndefinedBehaviour("set_optimization_profile_async on a stream that does not exist")
        if not 0 <= profile_index < self.engine.num_optimization_profiles:
            raise RuntimeError("Error in set optimization profile async.")  # pyCore.cpp's message
        self.active_optimization_profile, self.shapes = profile_index, {}  # shapes must be set after it
        CALLS.append(("set_optimization_profile_async", profile_index))
        return True

    def set_input_shape(self, name: str, shape) -> bool:  # [T12]
        shape = _dims(shape)
        fake_cuda.TRACE.append(("set_input_shape", name))
        if self.engine.get_tensor_mode(name) != TensorIOMode.INPUT:
            self._error(f"setInputShape: {name} is not an input tensor")
            return False
        lo, _, hi = self.engine._blob["profiles"][self.active_optimization_profile]["shapes"][name]
        if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            self._error("IExecutionContext::setInputShape: Error Code 3: API Usage Error (Parameter check failed, "
                        "condition: satisfyProfile Runtime dimension does not satisfy any optimization profile.)")
            return False
        self.shapes[name] = shape
        return True

    def _shape_values(self) -> dict[str, np.ndarray] | None:
        """Values of the shape-tensor inputs, read from their host addresses; None while one is unset."""
        values = {}
        for name in self._io(TensorIOMode.INPUT):
            if self.engine.is_shape_inference_io(name):
                if name not in self.addresses:
                    return None
                values[name] = self._read(name, host=True)
        return values

    def _input_shape(self, name: str) -> tuple | None:
        static = self.engine._io[name]["shape"]
        return self.shapes.get(name, None if -1 in static else static)

    def get_tensor_shape(self, name: str) -> Dims:
        if name not in self.engine._io:
            return Dims.invalid()
        info = self.engine._io[name]
        if info["mode"] == TensorIOMode.INPUT:
            return Dims(self._input_shape(name) or info["shape"])
        inputs = self._io(TensorIOMode.INPUT)
        values = self._shape_values()
        if info["data_dependent"] or values is None or any(self._input_shape(n) is None for n in inputs):
            return Dims(info["shape"])  # -1 where unknown: not all inputs set, or the dims depend on the data [T7]
        return Dims(self._infer_output_shapes(values)[name])

    def get_max_output_size(self, name: str) -> int:
        raise NotSettled("get_max_output_size: how TensorRT bounds a data-dependent output")

    def set_tensor_address(self, name: str, memory: int) -> bool:  # [T4]
        if not isinstance(memory, int):
            raise TypeError("set_tensor_address(): incompatible function arguments")
        fake_cuda.TRACE.append(("set_tensor_address", name))
        if name not in self.engine._io:
            self._error(f"setTensorAddress: {name} does not map to an input or output tensor")
            return False
        if memory % fake_cuda.ALIGNMENT:
            raise NotSettled(f"set_tensor_address({name}) with a pointer not 256-byte aligned")
        self.addresses[name] = memory
        return True

    def get_tensor_address(self, name: str) -> int:
        return self.addresses.get(name, 0)

    def set_output_allocator(self, name: str, output_allocator: IOutputAllocator) -> bool:  # [T7]
        if not getattr(output_allocator, "_trt_initialised", False):
            raise TypeError(f"{type(output_allocator).__name__}.__init__() must be called when overriding __init__")
        if self.engine.get_tensor_mode(name) != TensorIOMode.OUTPUT:
            return False
        self.allocators[name] = output_allocator
        return True

    def get_output_allocator(self, name: str):
        return self.allocators.get(name)

    def _read(self, name: str, host: bool) -> np.ndarray:
        """An input's value from its bound memory, as TensorRT would read it."""
        info, ptr = self.engine._io[name], self.addresses[name]
        memory = fake_cuda.HOST if host else fake_cuda.MEMORY
        if ptr not in memory:
            other = "device" if host else "host"
            raise UndefinedBehaviour(f"{name}: address {ptr:#x} is {other} memory or unknown; TensorRT needs "
                                     f"{'host' if host else 'device'} memory here")
        dtype = np.dtype(_NUMPY[info["dtype"]])
        shape = self._input_shape(name) or info["shape"]
        need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        raw = memory[ptr].reshape(-1).view(np.uint8)
        if raw.size < need:
            raise UndefinedBehaviour(f"{name}: {shape} {dtype} needs {need} bytes; the buffer at {ptr:#x} has {raw.size}")
        return raw[:need].view(dtype).reshape(shape)

    def _infer_output_shapes(self, values: dict[str, np.ndarray]) -> dict[str, tuple]:
        feeds = {}
        for name in self._io(TensorIOMode.INPUT):
            info = self.engine._io[name]
            feeds[name] = values[name] if name in values else np.zeros(self._input_shape(name), _NUMPY[info["dtype"]])
        outputs = self._io(TensorIOMode.OUTPUT)
        return {n: o.shape for n, o in zip(outputs, _run(self.engine.onnx, feeds))}

    def execute_async_v3(self, stream_handle: int) -> bool:  # [T4][T6][T7][T8]
        if stream_handle not in fake_cuda.STREAMS:
            raise UndefinedBehaviour("execute_async_v3 on a stream that does not exist")
        fake_cuda.TRACE.append(("execute_async_v3",))
        inputs, outputs = self._io(TensorIOMode.INPUT), self._io(TensorIOMode.OUTPUT)
        missing_shapes = [n for n in inputs if self._input_shape(n) is None]
        missing_addresses = [n for n in inputs if n not in self.addresses] + \
                            [n for n in outputs if n not in self.addresses and n not in self.allocators]
        if missing_shapes or missing_addresses:
            self._error(f"enqueueV3: not all input dimensions specified {missing_shapes} / no address for "
                        f"{missing_addresses}")
            return False
        data_dependent = [n for n in outputs if self.engine._io[n]["data_dependent"]]
        for name in data_dependent:
            if name not in self.allocators:
                raise NotSettled(f"{name} has a data-dependent shape and no IOutputAllocator (only an address)")
        if fake_cuda.CAPTURING[0] is not None:
            if data_dependent:
                raise NotSettled("capturing a CUDA graph of an engine with data-dependent output shapes")
            if self._plain_bindings != self._bindings():  # [T15]
                raise NotSettled("CUDA graph capture of an enqueue whose shapes/addresses differ from this context's "
                                 "last plain enqueue (trtexec enqueues once uncaptured with the same bindings first)")
            if CAPTURE_UNSUPPORTED:
                self._error("The built TensorRT engine contains operations that are not permitted under CUDA graph "
                            "capture mode.")
                return False
            return True  # recorded into the graph; the replay computes
        profile = self.engine._blob["profiles"][self.active_optimization_profile]
        feeds = {}
        for name in inputs:
            shape_input = self.engine.is_shape_inference_io(name)
            feeds[name] = self._read(name, host=shape_input).copy()
            if shape_input:
                lo, _, hi = profile["values"][name]
                if not all(a <= v <= b for a, v, b in zip(lo, feeds[name].reshape(-1), hi)):
                    self._error(f"enqueueV3: shape tensor {name} values {feeds[name].tolist()} are outside the "
                                f"optimization profile")
                    return False
        results = _run(self.engine.onnx, feeds)
        self._plain_bindings = self._bindings()
        for name, value in zip(outputs, results):
            info = self.engine._io[name]
            value = np.ascontiguousarray(value.astype(_NUMPY[info["dtype"]]))
            ptr = self.addresses.get(name)
            allocator = self.allocators.get(name)
            capacity = fake_cuda.MEMORY[ptr].nbytes if ptr in fake_cuda.MEMORY else -1
            if allocator is not None and capacity < value.nbytes:
                ptr = self._reallocate(allocator, name, ptr or 0, max(value.nbytes, 1), stream_handle)
                if ptr is None:
                    self._error(f"enqueueV3: the output allocator returned no memory for {name}")
                    return False
            if ptr not in fake_cuda.MEMORY:
                raise UndefinedBehaviour(f"output {name}: address {ptr:#x} is not device memory")
            raw = fake_cuda.MEMORY[ptr].reshape(-1).view(np.uint8)
            if raw.size < value.nbytes:
                raise UndefinedBehaviour(f"output {name} of {value.shape} needs {value.nbytes} bytes; the buffer at "
                                         f"{ptr:#x} has {raw.size}")
            raw[:value.nbytes] = value.reshape(-1).view(np.uint8)
            if allocator is not None:
                try:
                    allocator.notify_shape(name, Dims(value.shape))
                except Exception as exc:  # printed, not raised (pyCore.cpp release/10.13:684-697)
                    print(f"[ERROR] Exception caught in notifyShape(): {exc}", file=sys.stderr)
        return True

    @staticmethod
    def _reallocate(allocator, name: str, memory: int, size: int, stream: int) -> int | None:
        try:
            ptr = allocator.reallocate_output_async(name, memory, size, fake_cuda.ALIGNMENT, stream)
        except Exception as exc:  # printed, not raised (pyCore.cpp release/10.13:601-690)
            print(f"[ERROR] Exception caught in reallocateOutputAsync(): {exc}", file=sys.stderr)
            return None
        if ptr is None:
            return None
        if not isinstance(ptr, int):
            print("[ERROR] Return value of reallocateOutputAsync() could not be interpreted as an int", file=sys.stderr)
            return None
        if ptr not in fake_cuda.MEMORY or fake_cuda.MEMORY[ptr].nbytes < size:
            raise UndefinedBehaviour(f"the output allocator returned {ptr:#x}, not {size} bytes of device memory")
        return ptr
