"""A strict test double of the `tensorrt` Python module: exactly the API trtpipe's backend uses, with
the documented semantics enforced, for TensorRT 10.x or 11.x (TRT_DOUBLE_VERSION, default 10.13.0).

Execution is simulated: the "engine" carries the ONNX it was parsed from, and execute_async_v3 runs
it with ONNX Runtime on the CPU (ONNX's reference evaluator where ORT has no kernel), reading inputs
from and writing outputs to the buffers registered by tests/doubles/fake_cuda.py.

The rules enforced, and where each is documented, are listed in tests/test_tensorrt_contract.py.
"""

from __future__ import annotations

import enum
import json
import os
from typing import Any

import numpy as np
import onnx

import fake_cuda

__version__ = os.environ.get("TRT_DOUBLE_VERSION", "10.13.0")
_MAJOR = int(__version__.split(".")[0])
if _MAJOR not in (10, 11):
    raise ImportError(f"the double emulates TensorRT 10.x and 11.x, not {__version__}")

CALLS: list[tuple] = []  # what the code under test called, for assertions on the contract


class Logger:
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, min_severity: int = 2):
        self.min_severity = min_severity
        self.messages: list[str] = []

    def log(self, severity: int, msg: str) -> None:
        self.messages.append(msg)


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8


class MemoryPoolType(enum.Enum):
    WORKSPACE = 0


if _MAJOR == 10:
    class NetworkDefinitionCreationFlag(enum.IntEnum):
        EXPLICIT_BATCH = 0  # deprecated in 10.0, ignored
        STRONGLY_TYPED = 1

    class BuilderFlag(enum.IntEnum):  # weak typing, still present in 10.x
        FP16 = 0
        BF16 = 1
        INT8 = 2
        FP8 = 3
        REFIT = 4
else:
    class NetworkDefinitionCreationFlag(enum.IntEnum):
        STRONGLY_TYPED = 1  # 11.x: deprecated, accepted and ignored (always strongly typed)

    class BuilderFlag(enum.IntEnum):  # 11.x removed every precision flag
        REFIT = 4

_WEAK_FLAGS = {"FP16", "BF16", "INT8", "FP8"}

_ONNX_TO_TRT = {onnx.TensorProto.FLOAT: DataType.FLOAT, onnx.TensorProto.FLOAT16: DataType.HALF,
                onnx.TensorProto.INT8: DataType.INT8, onnx.TensorProto.INT32: DataType.INT32,
                onnx.TensorProto.INT64: DataType.INT64, onnx.TensorProto.BOOL: DataType.BOOL,
                onnx.TensorProto.UINT8: DataType.UINT8, onnx.TensorProto.BFLOAT16: DataType.BF16}
_NUMPY = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8, DataType.INT32: np.int32,
          DataType.INT64: np.int64, DataType.BOOL: np.bool_, DataType.UINT8: np.uint8}
UNSUPPORTED_OPS = {"NotATensorRTOp"}  # tests use a custom op to exercise parser failures


class Dims(tuple):
    pass


class ITensor:
    def __init__(self, name: str, shape: tuple, dtype: DataType):
        self.name, self.shape, self.dtype = name, Dims(shape), dtype


class INetworkDefinition:
    def __init__(self, strongly_typed: bool):
        self.strongly_typed = strongly_typed
        self.onnx: bytes | None = None
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_input(self, i: int) -> ITensor:
        return self._inputs[i]

    def get_output(self, i: int) -> ITensor:
        return self._outputs[i]


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

    def code(self) -> int:
        return 8  # UNSUPPORTED_NODE


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: Logger):
        self.network, self.errors = network, []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> ParserError:
        return self.errors[i]

    def parse_from_file(self, path: str) -> bool:
        with open(path, "rb") as fh:
            return self.parse(fh.read())

    def parse(self, data: bytes) -> bool:
        model = onnx.load_from_string(bytes(data))
        for index, node in enumerate(model.graph.node):
            if node.op_type in UNSUPPORTED_OPS or node.domain not in ("", "ai.onnx", "com.microsoft"):
                self.errors.append(ParserError(f"No importer registered for op: {node.op_type}", index, node.name, node.op_type))
        if self.errors:
            return False
        initializers = {i.name for i in model.graph.initializer}

        def tensor(value) -> ITensor:
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)
            return ITensor(value.name, dims, _ONNX_TO_TRT[value.type.tensor_type.elem_type])

        self.network._inputs = [tensor(v) for v in model.graph.input if v.name not in initializers]
        self.network._outputs = [tensor(v) for v in model.graph.output]
        self.network.onnx = bytes(data)
        return True


class IOptimizationProfile:
    def __init__(self):
        self.shapes: dict[str, tuple[tuple, tuple, tuple]] = {}

    def set_shape(self, name: str, min, opt, max) -> None:
        lo, mid, hi = (tuple(int(d) for d in s) for s in (min, opt, max))
        if not (len(lo) == len(mid) == len(hi)) or not all(a <= b <= c for a, b, c in zip(lo, mid, hi)):
            # pyCore.cpp raises this when setDimensions rejects one of the three
            raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
        self.shapes[name] = (lo, mid, hi)

    def get_shape(self, name: str):
        return [Dims(s) for s in self.shapes.get(name, ())]


class ITimingCache:
    def __init__(self, entries: dict[str, Any]):
        self.entries = entries

    def serialize(self) -> bytes:
        return json.dumps(self.entries).encode()


class IBuilderConfig:
    def __init__(self):
        self.profiles: list[IOptimizationProfile] = []
        self.pools: dict[MemoryPoolType, int] = {}
        self.flags: set[str] = set()
        self._level = 3
        self._cache: ITimingCache | None = None

    @property
    def builder_optimization_level(self) -> int:
        return self._level

    @builder_optimization_level.setter
    def builder_optimization_level(self, level: int) -> None:
        if not 0 <= int(level) <= 5:
            raise ValueError("builder optimization level must be in [0, 5]")
        self._level = int(level)

    def set_memory_pool_limit(self, pool: MemoryPoolType, size: int) -> None:
        if not isinstance(pool, MemoryPoolType) or int(size) <= 0:
            raise ValueError("invalid memory pool limit")
        self.pools[pool] = int(size)

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags.add(BuilderFlag(flag).name)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not profile.shapes:
            return -1  # an empty profile is not valid (IOptimizationProfile::isValid)
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data) -> ITimingCache:
        data = bytes(data)
        return ITimingCache(json.loads(data) if data else {"version": __version__, "device": fake_cuda.Device().info["name"], "hits": 0})

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        here = {"version": __version__, "device": fake_cuda.Device().info["name"]}
        if not ignore_mismatch and {k: cache.entries.get(k) for k in here} != here:
            return False  # a cache from another TensorRT or GPU is refused unless mismatches are ignored
        CALLS.append(("set_timing_cache", dict(cache.entries)))
        self._cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache:
        return self._cache


class IHostMemory(bytes):
    """Serialized engines support the buffer protocol; bytes does too."""


class Builder:
    def __init__(self, logger: Logger):
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        strongly_typed = _MAJOR >= 11 or bool(flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
        return INetworkDefinition(strongly_typed)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig):
        if network.onnx is None:
            return None
        if network.strongly_typed and config.flags & _WEAK_FLAGS:
            self.logger.log(Logger.ERROR, "precision builder flags are not allowed with a strongly typed network")
            return None
        dynamic = [t for t in network._inputs if -1 in t.shape]
        if dynamic and not config.profiles:
            self.logger.log(Logger.ERROR, "network has dynamic inputs but no optimization profile")
            return None
        profiles = []
        for profile in config.profiles:
            for t in network._inputs:
                if t.name not in profile.shapes:
                    self.logger.log(Logger.ERROR, f"profile has no shapes for input {t.name}")
                    return None
                for triple in profile.shapes[t.name]:
                    if len(triple) != len(t.shape) or any(d != -1 and d != s for d, s in zip(t.shape, triple)):
                        self.logger.log(Logger.ERROR, f"profile shapes {triple} do not fit input {t.name} {t.shape}")
                        return None
            profiles.append({k: [list(s) for s in v] for k, v in profile.shapes.items()})
        if config._cache is not None:
            config._cache.entries["hits"] = config._cache.entries.get("hits", 0) + 1
        CALLS.append(("build", {"strongly_typed": network.strongly_typed, "profiles": profiles, "flags": sorted(config.flags),
                                "workspace": config.pools.get(MemoryPoolType.WORKSPACE), "level": config._level}))
        blob = {"version": __version__, "strongly_typed": network.strongly_typed, "profiles": profiles,
                "inputs": [[t.name, list(t.shape), t.dtype.name] for t in network._inputs],
                "outputs": [[t.name, list(t.shape), t.dtype.name] for t in network._outputs],
                "onnx": network.onnx.hex()}
        return IHostMemory(json.dumps(blob).encode())


class Runtime:
    def __init__(self, logger: Logger):
        self.logger = logger

    def deserialize_cuda_engine(self, data):
        blob = json.loads(bytes(data))
        if blob["version"] != __version__:
            self.logger.log(Logger.ERROR, "serialization version mismatch")
            return None  # engines are tied to the TensorRT version that built them
        return ICudaEngine(blob)


class ICudaEngine:
    def __init__(self, blob: dict[str, Any]):
        self._blob = blob
        self._io = [(n, tuple(s), DataType[d], TensorIOMode.INPUT) for n, s, d in blob["inputs"]] + \
                   [(n, tuple(s), DataType[d], TensorIOMode.OUTPUT) for n, s, d in blob["outputs"]]
        self._by_name = {n: (s, d, m) for n, s, d, m in self._io}
        self.onnx = bytes.fromhex(blob["onnx"])

    num_layers = property(lambda self: len(onnx.load_from_string(self.onnx).graph.node))
    num_io_tensors = property(lambda self: len(self._io))
    num_optimization_profiles = property(lambda self: len(self._blob["profiles"]))
    device_memory_size_v2 = property(lambda self: 1 << 20)
    if _MAJOR == 10:
        device_memory_size = property(lambda self: 1 << 20)  # removed in 11.x

    def get_tensor_name(self, index: int) -> str:
        return self._io[index][0]

    def _tensor(self, name: str):
        if name not in self._by_name:
            raise RuntimeError(f"no tensor named {name}")
        return self._by_name[name]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self._tensor(name)[2]

    def get_tensor_dtype(self, name: str) -> DataType:
        return self._tensor(name)[1]

    def get_tensor_shape(self, name: str) -> Dims:
        return Dims(self._tensor(name)[0])

    def get_tensor_profile_shape(self, name: str, profile_index: int):
        if self._tensor(name)[2] != TensorIOMode.INPUT:
            raise RuntimeError(f"{name} is not an input")
        if not 0 <= profile_index < self.num_optimization_profiles:
            raise RuntimeError(f"profile index {profile_index} out of range")
        return [Dims(s) for s in self._blob["profiles"][profile_index][name]]

    def create_execution_context(self):
        return IExecutionContext(self)


class IExecutionContext:
    def __init__(self, engine: ICudaEngine):
        self.engine = engine
        self.active_profile = 0
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}

    def set_optimization_profile_async(self, index: int, stream_handle: int) -> bool:
        if stream_handle not in fake_cuda.STREAMS:
            raise RuntimeError("unknown stream")
        if not 0 <= index < self.engine.num_optimization_profiles:
            raise RuntimeError("Error in set optimization profile async.")  # pyCore.cpp's message
        self.active_profile, self.shapes = index, {}  # switching profiles invalidates input shapes
        CALLS.append(("set_optimization_profile_async", index))
        return True

    def set_input_shape(self, name: str, shape) -> bool:
        shape = tuple(int(d) for d in shape)
        if self.engine._tensor(name)[2] != TensorIOMode.INPUT:
            return False
        lo, _, hi = self.engine._blob["profiles"][self.active_profile][name]
        if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return False  # outside the active profile: TensorRT reports an error and refuses
        self.shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> Dims:
        static, _, mode = self.engine._tensor(name)
        if mode == TensorIOMode.INPUT:
            return Dims(self.shapes.get(name, static))
        inputs = [n for n, _, _, m in self.engine._io if m == TensorIOMode.INPUT]
        if any(n not in self.shapes for n in inputs):
            return Dims(static)  # output dims stay unknown (-1) until every input shape is set
        return Dims(self._infer_output_shapes()[name])

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.engine._tensor(name)
        if ptr not in fake_cuda.MEMORY:
            raise RuntimeError(f"address {ptr:#x} for {name} is not device memory")
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        if stream_handle not in fake_cuda.STREAMS:
            raise RuntimeError("unknown stream")
        io = self.engine._io
        inputs = [n for n, _, _, m in io if m == TensorIOMode.INPUT]
        missing_shapes = [n for n in inputs if n not in self.shapes]
        missing_addresses = [n for n, *_ in io if n not in self.addresses]
        if missing_shapes or missing_addresses:
            raise RuntimeError(f"execute_async_v3 before set_input_shape {missing_shapes} / set_tensor_address "
                               f"{missing_addresses}")
        feeds = {}
        for name in inputs:
            buf = fake_cuda.MEMORY[self.addresses[name]]
            want = (self.shapes[name], _NUMPY[self.engine._tensor(name)[1]])
            if buf.shape != want[0] or buf.dtype != want[1]:
                raise RuntimeError(f"input buffer of {name} is {buf.dtype}{buf.shape}, the engine needs {want[1]}{want[0]}")
            feeds[name] = buf
        outputs = _run(self.engine.onnx, feeds)
        for (name, *_), value in zip([t for t in io if t[3] == TensorIOMode.OUTPUT], outputs):
            buf = fake_cuda.MEMORY[self.addresses[name]]
            if buf.shape != value.shape:
                raise RuntimeError(f"output buffer of {name} is {buf.shape}, the output is {value.shape}")
            np.copyto(buf, value.astype(buf.dtype))
        return True

    def _infer_output_shapes(self) -> dict[str, tuple]:
        feeds = {n: np.zeros(s, _NUMPY[self.engine._tensor(n)[1]]) for n, s in self.shapes.items()}
        names = [n for n, _, _, m in self.engine._io if m == TensorIOMode.OUTPUT]
        return {n: o.shape for n, o in zip(names, _run(self.engine.onnx, feeds))}


_SESSIONS: dict[int, Any] = {}


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    key = hash(model)
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
