"""A strict test double of onnxruntime-gpu 1.31.1 on the path its TensorRT execution provider takes: provider
options, session creation, the engine build that dumps an EP-context model, loading that model, and IOBinding
runs on CUDA buffers (those of tests/doubles/fake_cuda.py).

NOTHING HERE IS ONNX RUNTIME'S TENSORRT EP, and nothing in this project has run on it. The Python layer is the
real one: ONNX Runtime 1.31.1's onnxruntime/capi/onnxruntime_inference_collection.py (installed with the CPU
`onnxruntime` wheel; onnxruntime-gpu ships the same file) is executed unchanged on top of a fake native module
`C`, so provider-argument normalisation, `enable_fallback` and the TensorRT plugin registration run as in the
wheel. The real wheel's SessionOptions, RunOptions, GraphOptimizationLevel, OrtDevice and exception classes are
used as they are; everything else `C` would offer raises NotSettled.

Sources (read for this double; the native rules below cite them by short name and function):
  pybind      onnxruntime/python/onnxruntime_pybind_state.cc
  bridge      onnxruntime/core/session/provider_bridge_ort.cc
  ep          onnxruntime/core/providers/tensorrt/tensorrt_execution_provider.cc
  info        onnxruntime/core/providers/tensorrt/tensorrt_execution_provider_info.cc
              (these four: github.com/microsoft/onnxruntime, main at commit 5f33b96, which has the 1.31 option
              set, e.g. trt_load_user_initializer and trt_preview_features; whether it equals the v1.31.1 tag line
              for line is not settled, so functions are cited, not line numbers)
  utils       onnxruntime/core/providers/tensorrt/tensorrt_execution_provider_utils.h (ParseProfileShapes,
              ValidateProfileShapes, GetCachePath, GetTimingCachePath, CompareProfiles, TRTGenerateId)
  ctx         onnxruntime/core/providers/tensorrt/onnx_ctx_model_helper.{h,cc} (EPContext attribute names,
              CreateCtxModel, GetCtxModelPath, GetPathOrParentPathOfCtxModel, ValidateEPCtxNode,
              GetEpContextFromGraph)
  partitioner onnxruntime/core/framework/graph_partitioner.cc (PlaceNode: fused node names)
  cuda_info   onnxruntime/core/providers/cuda/cuda_execution_provider_info.cc (CUDA EP option names)
  collection  onnxruntime/capi/onnxruntime_inference_collection.py, onnxruntime 1.31.1 wheel (executed as is)
  docs        https://onnxruntime.ai/docs/execution-providers/TensorRT-ExecutionProvider.html ("for bool type
              options in python API, set them as False/True"); EP-context design:
              https://onnxruntime.ai/docs/execution-providers/EP-Context-Design.html (EPContext op schema,
              domain com.microsoft)
  nvinfer     NVIDIA/TensorRT release/10.x include/NvInferRuntimeBase.h: getInferLibVersion() returns
              (MAJOR * 100 + MINOR) * 100 + PATCH
What the sources leave open raises NotSettled (code must not depend on it); what would be undefined behaviour
on a GPU raises UndefinedBehaviour.

Rules (the contract tests name them):
 [O1] collection InferenceSession.__init__ / _create_inference_session / check_and_normalize_provider_args run
      unchanged: option values are str()'d; a provider that is not in get_available_providers() only warns;
      with enable_fallback (default 1) a ValueError or RuntimeError while creating the session is printed
      ("EP Error ...") and the session is created again with [CUDA, CPU] when TensorRT and CUDA were asked for.
      The pybind status exceptions (Fail, EPFail, NotImplemented, ...) derive from Exception only (their MRO in
      the wheel), so a failed build or load never falls back.
 [O2] get_available_providers(): the providers compiled into the wheel (onnxruntime-gpu: TensorRT, CUDA, CPU;
      pybind get_available_providers). It says nothing about whether libnvinfer loads. Tests may narrow it.
 [O3] collection _register_ep_custom_ops -> pybind RegisterTensorRTPluginsAsCustomOps, before the session is
      created, for an available TensorRT EP: if the EP library cannot be loaded (TryGetProviderInfo_TensorRT is
      null: libnvinfer.so.10 missing), ORT_THROW "Please install TensorRT libraries as mentioned in the GPU
      requirements page, make sure they're in the PATH or LD_LIBRARY_PATH, and that your GPU is supported."
      (OnnxRuntimeException -> RuntimeError).
 [O4] TensorRT options are parsed by pybind CreateExecutionProviderFactoryInstance: a key outside TRT_KEYS is
      ORT_THROW "Invalid TensorRT EP option: <key>"; booleans must be exactly True/true/False/false ("The value
      for the key '<key>' should be 'True' or 'False'. Default value is 'False'."); numbers go through
      std::stoi/std::stoull (no digits: std::invalid_argument -> ValueError); every other option must be non-empty
      (but trt_op_types_to_exclude, trt_preview_features; the double paraphrases those per-key messages). There is
      no strongly-typed key in 1.31.
 [O5] The TensorRT EP is left out without an error (the session runs on the other providers) when the wheel was
      built without it (the branch is compiled out: CreateExecutionProviderFactoryInstance returns nullptr),
      when ORT_TENSORRT_UNAVAILABLE is set, or when its library fails to load in the factory (bridge
      TensorrtProviderFactoryCreator::Create catches, logs and returns nullptr; pybind logs "Failed to create
      TensorrtExecutionProvider. Please reference ...").
 [O6] CUDA EP options (cuda_info FromProviderOptions, ProviderOptionsParser): a key outside CUDA_KEYS fails
      with 'Unknown provider option: "<key>".'; enum options take their names only; booleans "0"/"1" (other
      spellings: NotSettled).
 [O7] get_providers(): the registered providers in the order asked for, the CPU provider always last.
 [O8] EP constructor + utils ParseProfileShapes/ValidateProfileShapes: "name:d0xd1,..." (a name listed again is
      a second profile); a wrong format or inconsistent min/opt/max names only logs a warning and drops the
      explicit profiles (the engine is then built at the first run); a non-number dim throws std::invalid_argument
      from std::stoi (-> ValueError).
 [O9] ep CreateNodeComputeInfoFromGraph / ApplyProfileShapesFromProviderOptions: only the -1 dims of a network
      input take profile values (static dims keep the network's); a dynamic input without a profile is EP_FAIL
      "User needs to provide all the dynamic shape inputs with associated profiles ... Following input(s) has no
      associated shape profiles provided: <names>" (Compile returns it as FAIL); a profile with fewer dims than
      its input is read out of bounds (UndefinedBehaviour); min <= opt <= max is TensorRT's business and the EP
      ignores setDimensions' result: NotSettled.
 [O10] ep (GetSupportedList and CreateNodeComputeInfoFromGraph, TensorRT > 8): the network is created with
      kSTRONGLY_TYPED unless trt_fp16_enable, trt_int8_enable or trt_bf16_enable is set; the EP never touches
      BuilderFlag::kTF32 (TensorRT's default: on).
 [O11] EP constructor, caches: dumping with embed mode 0 forces the engine cache on; cache paths are kept only
      if the engine cache, INT8 or the timing cache is on; with a dump and the engine cache, the cache path
      becomes <directory of trt_ep_context_file_path> / trt_engine_cache_path (an absolute or '..' path only logs
      an ERROR; std::filesystem append lets an absolute path replace the directory); the timing cache lives in
      trt_timing_cache_path (else the engine cache path) as TensorrtExecutionProvider_cache_sm<cc>.timing, read
      before and written after each build; missing directories are made with fs::create_directory, one level
      (a missing parent throws std::filesystem_error -> RuntimeError).
 [O12] Engine cache (ep, partitioner PlaceNode, utils TRTGenerateId): <cache>/TensorrtExecutionProvider_TRTKernel_
      graph_<graph name>_<hash of model file name, inputs, node outputs, TensorRT and CUDA versions>_0_0
      [_fp16][_bf16][_int8]_sm<cc>.engine, with a .profile beside it for explicit profiles; when that engine
      exists and CompareProfiles finds the same profiles, it is deserialized and NO EP-context model is dumped
      (the dump is in the build branch only).
 [O13] EP-context model (ep, ctx CreateCtxModel/GetCtxModelPath/DumpCtxModel): written when the engine is built
      at session creation, at trt_ep_context_file_path unless that is a directory (then <dir>/<model stem>_ctx.onnx;
      a path without extension is created as a directory); one node "EPContext" of domain com.microsoft with
      embed_mode, ep_cache_context (the engine bytes for embed mode 1, else the engine file relative to the
      context model's directory), hardware_architecture (compute capability as major*10+minor) and
      onnx_model_filename; the graph keeps the model's inputs and outputs. With dynamic inputs and no explicit
      profiles, embed mode 1 dumps nothing at session creation.
 [O14] Loading an EP-context model (ep GetCapability: a graph of exactly one EPContext node; ctx
      ValidateEPCtxNode, GetEpContextFromGraph): only the TensorRT EP claims it; without it no kernel exists:
      NOT_IMPLEMENTED "Could not find an implementation for EPContext(1) node with name 'EPContext'". The engine
      deserializes only with the TensorRT version that built it (TensorRT: a plan is tied to its version, see
      tests/doubles/tensorrt [T11]), else "TensorRT EP could not deserialize engine from binary data"; another
      compute capability only logs a warning.
 [O15] Runs (ep BindContextInput, collection IOBinding): inputs are CUDA pointers of the engine's dtype; a shape
      outside the engine's profile is EP_FAIL "TensorRT EP failed to call
      nvinfer1::IExecutionContext::setInputShape() for input '<name>'"; with user_compute_stream the EP enqueues
      on that stream (pybind sets has_user_compute_stream); outputs bound without a buffer are allocated on the
      device by ONNX Runtime; a run on a session without the TensorRT EP is not modelled (NotSettled).
 [O17] TF32: the EP never clears BuilderFlag::kTF32 [O10], which TensorRT enables by default ("Allow (but not require)
      computations on tensors of type DataType::kFLOAT to use TF32 ... Enabled by default.", NvInfer.h
      release/10.13:8868-8871), so an engine built without NVIDIA_TF32_OVERRIDE=0 in the environment runs its
      MatMul/Gemm/Conv float inputs rounded to a 10-bit mantissa (tests/doubles/tf32.py), and an engine built with
      it set runs true fp32 (TensorRT's documentation: NVIDIA_TF32_OVERRIDE=0 while building disables TF32 despite
      kTF32). The double reads the variable when the engine is built (session creation), as TensorRT picks its
      tactics then; the built engine keeps its choice.
 [O16] nvinfer: getInferLibVersion() of the libnvinfer.so.10 a test declares (WORLD.libnvinfer; None: it cannot
      be loaded). The EP links TensorRT 10 (libnvinfer.so.10); another major: NotSettled.
Execution is simulated: the "engine" carries the ONNX it was built from and runs it with the real ONNX Runtime
on the CPU, reading inputs from and writing outputs to fake_cuda's device buffers.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import json
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

import fake_cuda
from tf32 import with_tf32_rounding
import onnxruntime as _real_ort
from onnxruntime.capi import _pybind_state as _REAL_C

ORT_VERSION = "1.31.1"
if _real_ort.__version__ != ORT_VERSION:  # the Python layer executed below must be 1.31.1's
    raise ImportError(f"the ONNX Runtime TensorRT double runs onnxruntime {ORT_VERSION}'s Python layer; "
                      f"this environment has {_real_ort.__version__}")

TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"


class NotSettled(AssertionError):
    """The ONNX Runtime (or TensorRT) sources do not say what happens here; code must not depend on it."""


class UndefinedBehaviour(AssertionError):
    """On a GPU this would read or write memory it must not."""


# --- what this machine has ------------------------------------------------------------------------------------------
class World:
    def __init__(self):
        self.reset()

    def reset(self, available=(TRT, CUDA, CPU), libnvinfer: str | None = "10.13.0", cuda_version: int = 12080):
        self.available = list(available)  # [O2]
        self.libnvinfer = libnvinfer  # [O16]
        self.cuda_version = cuda_version
        self.log: list[tuple[str, str]] = []  # ONNX Runtime's default logger: (severity, message)
        self.calls: list[tuple[str, Any]] = []  # what the code under test made the EP do
        self.engines: dict[str, Any] = {}  # executor per engine blob


WORLD = World()


def _logs(severity: str, message: str) -> None:
    WORLD.log.append((severity, message))


def _trt_library_loads() -> bool:
    """[O3][O5][O16] libonnxruntime_providers_tensorrt.so needs libnvinfer.so.10."""
    return WORLD.libnvinfer is not None and WORLD.libnvinfer.split(".")[0] == "10"


class _Libnvinfer:
    def __init__(self, version: str):
        self._version = version

    def getInferLibVersion(self) -> int:  # [O16] nvinfer
        major, minor, patch = (int(p) for p in self._version.split("."))
        return (major * 100 + minor) * 100 + patch


_REAL_CDLL = ctypes.CDLL


def cdll(name, *args, **kwargs):
    """Stands in for ctypes.CDLL: libnvinfer.so.10 is the one a test declares; other libraries load for real."""
    if isinstance(name, str) and name.startswith("libnvinfer"):
        if name != "libnvinfer.so.10":
            raise NotSettled(f"{name}: the TensorRT EP of onnxruntime-gpu 1.31 links libnvinfer.so.10 [O16]")
        if not _trt_library_loads():
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return _Libnvinfer(WORLD.libnvinfer)
    return _REAL_CDLL(name, *args, **kwargs)


# --- status exceptions: the wheel's own classes, Status::ToString()'s text ------------------------------------------
_STATUS = {"FAIL": 1, "INVALID_ARGUMENT": 2, "NO_SUCHFILE": 3, "NOT_IMPLEMENTED": 9, "INVALID_GRAPH": 10, "EP_FAIL": 11}
_STATUS_CLASS = {"FAIL": _REAL_C.Fail, "INVALID_ARGUMENT": _REAL_C.InvalidArgument, "NO_SUCHFILE": _REAL_C.NoSuchFile,
                 "NOT_IMPLEMENTED": _REAL_C.NotImplemented, "INVALID_GRAPH": _REAL_C.InvalidGraph,
                 "EP_FAIL": _REAL_C.EPFail}


def _status(code: str, message: str) -> Exception:
    return _STATUS_CLASS[code](f"[ONNXRuntimeError] : {_STATUS[code]} : {code} : {message}")


# --- option parsing -------------------------------------------------------------------------------------------------
TRT_BOOLS = {"trt_fp16_enable", "trt_bf16_enable", "trt_int8_enable", "trt_int8_use_native_calibration_table",
             "trt_dla_enable", "trt_dump_subgraphs", "trt_engine_cache_enable", "trt_weight_stripped_engine_enable",
             "trt_engine_decryption_enable", "trt_force_sequential_engine_build", "trt_context_memory_sharing_enable",
             "trt_layer_norm_fp32_fallback", "trt_timing_cache_enable", "trt_force_timing_cache",
             "trt_detailed_build_log", "trt_build_heuristics_enable", "trt_sparsity_enable", "trt_cuda_graph_enable",
             "trt_dump_ep_context_model", "trt_engine_hw_compatible"}
TRT_INTS = {"device_id", "trt_max_partition_iterations", "trt_min_subgraph_size", "trt_dla_core",
            "trt_builder_optimization_level", "trt_auxiliary_streams", "trt_ep_context_embed_mode"}
TRT_SIZES = {"trt_max_workspace_size", "user_compute_stream", "gpu_external_alloc", "gpu_external_free",
             "gpu_external_empty_cache", "gpu_external_mem_ptr", "gpu_external_mem_size"}  # std::stoull
TRT_STRINGS = {"trt_int8_calibration_table_name", "trt_engine_cache_path", "trt_engine_cache_prefix",
               "trt_onnx_model_folder_path", "trt_engine_decryption_lib_path", "trt_timing_cache_path",
               "trt_tactic_sources", "trt_extra_plugin_lib_paths", "trt_profile_min_shapes", "trt_profile_max_shapes",
               "trt_profile_opt_shapes", "trt_ep_context_file_path"}
TRT_MAY_BE_EMPTY = {"trt_op_types_to_exclude", "trt_preview_features"}
TRT_KEYS = TRT_BOOLS | TRT_INTS | TRT_SIZES | TRT_STRINGS | TRT_MAY_BE_EMPTY  # [O4] pybind's if/else chain

CUDA_KEYS = {"device_id", "has_user_compute_stream", "user_compute_stream", "gpu_mem_limit", "arena_extend_strategy",
             "cudnn_conv_algo_search", "do_copy_in_default_stream", "gpu_external_alloc", "gpu_external_free",
             "gpu_external_empty_cache", "cudnn_conv_use_max_workspace", "enable_cuda_graph",
             "cudnn_conv1d_pad_to_nc1d", "tunable_op_enable", "tunable_op_tuning_enable",
             "tunable_op_max_tuning_duration_ms", "enable_skip_layer_norm_strict_mode", "prefer_nhwc",
             "use_ep_level_unified_stream", "use_tf32"}  # [O6] cuda_info
CUDA_BOOLS = {"has_user_compute_stream", "do_copy_in_default_stream", "cudnn_conv_use_max_workspace",
              "enable_cuda_graph", "cudnn_conv1d_pad_to_nc1d", "tunable_op_enable", "tunable_op_tuning_enable",
              "enable_skip_layer_norm_strict_mode", "prefer_nhwc", "use_ep_level_unified_stream", "use_tf32"}
CUDA_ENUMS = {"cudnn_conv_algo_search": {"EXHAUSTIVE", "HEURISTIC", "DEFAULT"},
              "arena_extend_strategy": {"kNextPowerOfTwo", "kSameAsRequested"}}


def _stoi(text: str, key: str) -> int:
    """std::stoi / std::stoull: leading blanks, a sign, digits, and whatever follows is ignored; no digits:
    std::invalid_argument, which pybind11 turns into ValueError."""
    m = re.match(r"\s*([+-]?\d+)", text)
    if not m:
        raise ValueError("stoi")
    return int(m.group(1))


def _stoull_base0(text: str) -> int:
    m = re.match(r"\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)", text)  # std::stoull(s, nullptr, 0)
    if not m:
        raise ValueError("stoull")
    return int(m.group(1), 0)


def _parse_trt_options(options: dict[str, str]) -> dict[str, Any]:
    """[O4] pybind CreateExecutionProviderFactoryInstance, TensorRT branch."""
    params: dict[str, Any] = {}
    for key, value in options.items():
        if key not in TRT_KEYS:
            raise RuntimeError(f"Invalid TensorRT EP option: {key}")
        if key in TRT_BOOLS:
            if value in ("True", "true"):
                params[key] = True
            elif value in ("False", "false"):
                params[key] = False
            else:
                raise RuntimeError(f"[ERROR] [TensorRT] The value for the key '{key}' should be 'True' or 'False'. "
                                   f"Default value is 'False'.\n")
        elif key in TRT_MAY_BE_EMPTY:
            params[key] = value
        elif not value:
            raise RuntimeError(f"[ERROR] [TensorRT] The value for the key '{key}' should not be empty.\n")
        elif key in TRT_INTS:
            params[key] = _stoi(value, key)
        elif key == "user_compute_stream" or key.startswith("gpu_external"):
            params[key] = _stoull_base0(value)
        elif key in TRT_SIZES:
            params[key] = _stoi(value, key)
        else:
            params[key] = value
    return params


def _parse_cuda_options(options: dict[str, str]) -> dict[str, Any]:
    """[O6]"""
    params: dict[str, Any] = {}
    for key, value in options.items():
        if key not in CUDA_KEYS:
            raise RuntimeError(f'Unknown provider option: "{key}".')
        if key in CUDA_BOOLS:
            if value not in ("0", "1"):
                raise NotSettled(f"CUDA EP boolean {key}={value!r}: only 0/1 are modelled [O6]")
            params[key] = value == "1"
        elif key in CUDA_ENUMS:
            if value not in CUDA_ENUMS[key]:
                raise RuntimeError(f"Failed to parse provider option \"{key}\": unknown value {value!r}")
            params[key] = value
        elif key == "user_compute_stream" or key.startswith("gpu_external"):
            params[key] = _stoull_base0(value)
        else:
            params[key] = _stoi(value, key)
    if params.get("device_id", 0) != 0:
        raise RuntimeError(f"Invalid device ID: {params['device_id']}, must be between 0 (inclusive) and 1 (exclusive).")
    return params


def _getline_split(text: str, sep: str) -> list[str]:
    """The tokens std::getline yields: an empty text yields none, a trailing separator no empty last token."""
    if not text:
        return []
    parts = text.split(sep)
    if parts[-1] == "":
        parts.pop()
    return parts


def parse_profile_shapes(text: str) -> tuple[dict[str, list[list[int]]], bool]:
    """[O8] utils ParseProfileShapes + MakeInputNameShapePair."""
    shapes: dict[str, list[list[int]]] = {}
    for pair in _getline_split(text, ","):
        if not pair:
            continue
        pieces = _getline_split(pair, ":")
        name = pieces[0] if pieces else ""
        dims = [_stoi(v, "profile") for v in _getline_split(pieces[1] if len(pieces) > 1 else "", "x")]
        if not name or not dims:
            return {}, False
        shapes.setdefault(name, []).append(dims)
    return shapes, True


def validate_profile_shapes(mins, maxs, opts) -> bool:
    """[O8] utils ValidateProfileShapes, its `&&` included."""
    if not mins and not maxs and not opts:
        return True
    if len(mins) != len(maxs) and len(mins) != len(opts) and len(maxs) != len(opts):
        return False
    for name, profiles in mins.items():
        if name not in maxs or name not in opts:
            return False
        if len(profiles) != len(maxs[name]) or len(profiles) != len(opts[name]):
            return False
    return True


# --- the fake native layer -----------------------------------------------------------------------------------------
ONNX_TYPES = {onnx.TensorProto.FLOAT: "tensor(float)", onnx.TensorProto.FLOAT16: "tensor(float16)",
              onnx.TensorProto.DOUBLE: "tensor(double)", onnx.TensorProto.INT64: "tensor(int64)",
              onnx.TensorProto.INT32: "tensor(int32)", onnx.TensorProto.INT8: "tensor(int8)",
              onnx.TensorProto.UINT8: "tensor(uint8)", onnx.TensorProto.BOOL: "tensor(bool)"}
NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
         "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
         "tensor(bool)": np.bool_}


class NodeArg:
    def __init__(self, value_info):
        t = value_info.type.tensor_type
        self.name = value_info.name
        self.type = ONNX_TYPES[t.elem_type]
        self.shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


class OrtValue:
    """What IOBinding.get_outputs() wraps: a device tensor (shape(), data_type())."""

    def __init__(self, buffer, type_name: str):
        self._buffer = buffer
        self._type = type_name

    def shape(self) -> list[int]:
        return list(self._buffer.shape)

    def data_type(self) -> str:
        return self._type

    def device_name(self) -> str:
        return "Cuda"

    def _is_webgpu_buffer(self) -> bool:
        return False


class OrtValueVector(list):
    pass


class _Assigned:
    def __init__(self, ep_name: str, nodes):
        self.ep_name = ep_name
        self._nodes = nodes

    def get_nodes(self):
        return [types.SimpleNamespace(op_type=n.op_type, name=n.name, domain=n.domain) for n in self._nodes]


def _register_trt_plugins(session_options, options) -> None:
    """[O3]"""
    WORLD.calls.append(("register_tensorrt_plugins_as_custom_ops", dict(options)))
    if not _trt_library_loads():
        _logs("ERROR", "Failed to load library libonnxruntime_providers_tensorrt.so with error: libnvinfer.so.10: "
                       "cannot open shared object file: No such file or directory")
        raise RuntimeError("Please install TensorRT libraries as mentioned in the GPU requirements page, make sure "
                           "they're in the PATH or LD_LIBRARY_PATH, and that your GPU is supported.")


class _CudaEP:
    type = CUDA

    def __init__(self, params):
        self.params = params


class _CpuEP:
    type = CPU
    params: dict = {}


def _create_provider(kind: str, options: dict[str, str]):
    """pybind CreateExecutionProviderFactoryInstance and the factory's CreateProvider (the EP constructor)."""
    if kind == CPU:
        return _CpuEP()
    if kind == CUDA:
        if CUDA not in WORLD.available:
            return None  # [O5] compiled out
        return _CudaEP(_parse_cuda_options(options))
    if kind == TRT:
        if TRT not in WORLD.available:
            return None  # [O5] compiled out: nothing is logged
        failed = ("WARNING", "Failed to create TensorrtExecutionProvider. Please reference https://onnxruntime.ai/docs/"
                             "execution-providers/TensorRT-ExecutionProvider.html#requirements to ensure all "
                             "dependencies are met.")
        if os.environ.get("ORT_TENSORRT_UNAVAILABLE"):
            _logs(*failed)
            return None  # [O5]
        params = _parse_trt_options(options)
        if not _trt_library_loads():
            _logs("ERROR", "libnvinfer.so.10: cannot open shared object file: No such file or directory")
            _logs(*failed)
            return None  # [O5] bridge
        return _TensorrtEP(params)
    raise RuntimeError(f"Unknown Provider Type: {kind}")


def _device_cc() -> str:
    major, minor = fake_cuda.Device(0).info["compute_capability"].split(".")
    return str(int(major) * 10 + int(minor))  # utils GetComputeCapability


def _create_directory(path: str) -> None:
    """fs::create_directory: one level; a missing parent throws std::filesystem_error (-> RuntimeError)."""
    try:
        os.mkdir(path)
    except FileNotFoundError:
        raise RuntimeError(f"filesystem error: cannot create directory: No such file or directory [{path}]") from None
    except FileExistsError:
        raise RuntimeError(f"Failed to create directory {path}") from None


def _is_absolute(path: str) -> bool:  # ctx IsAbsolutePath (Linux)
    return path.startswith("/")


def _ctx_dir(ep_context_file_path: str) -> Path:
    """ctx GetPathOrParentPathOfCtxModel."""
    if not ep_context_file_path:
        return Path("")
    p = Path(ep_context_file_path)
    return p if p.is_dir() else p.parent


SHAPE_OPERANDS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,), "Range": (0, 1, 2),
                  "Slice": (1, 2, 3, 4), "Resize": (2, 3), "Pad": (1,), "TopK": (1,)}


class _TensorrtEP:
    """[O8][O11] the EP constructor; [O9]..[O15] compile, load and run."""

    type = TRT

    def __init__(self, params: dict[str, Any]):
        self.params = params
        if params.get("device_id", 0) != 0:
            raise NotSettled("device_id other than 0 on the one fake GPU (cudaSetDevice fails there)")
        self.cc = _device_cc()
        self.stream = params.get("user_compute_stream")
        if self.stream is not None and self.stream not in fake_cuda.STREAMS:
            raise UndefinedBehaviour(f"user_compute_stream {self.stream:#x} is no CUDA stream")
        get = params.get
        self.fp16, self.bf16, self.int8 = (get(f"trt_{p}_enable", False) for p in ("fp16", "bf16", "int8"))
        self.engine_cache = get("trt_engine_cache_enable", False)
        self.timing_cache = get("trt_timing_cache_enable", False)
        self.dump = get("trt_dump_ep_context_model", False)
        self.ctx_file = get("trt_ep_context_file_path", "")
        self.embed_mode = get("trt_ep_context_embed_mode", 0)
        if self.dump and self.embed_mode == 0:
            self.engine_cache = True  # enable_engine_cache_for_ep_context_model
        self.cache_path = self.global_cache_path = ""
        if self.engine_cache or self.int8 or self.timing_cache:
            self.cache_path = get("trt_engine_cache_path", "")
            self.cache_prefix = get("trt_engine_cache_prefix", "")
            if self.cache_prefix:
                raise NotSettled("trt_engine_cache_prefix names (GetCacheSuffix) are not modelled")
        if self.timing_cache:
            self.global_cache_path = get("trt_timing_cache_path", "") or self.cache_path
        if self.dump and self.ctx_file and not Path(self.ctx_file).suffix and not Path(self.ctx_file).is_dir():
            _create_directory(self.ctx_file)
        self.relative_cache_path = ""
        if self.dump and self.engine_cache:
            if _is_absolute(self.cache_path):
                _logs("ERROR", "In the case of dumping context model and for security purpose, the trt_engine_cache_path "
                               f"should be set with a relative path, but it is an absolute path:  {self.cache_path}")
            if ".." in self.cache_path:
                _logs("ERROR", "In the case of dumping context model and for security purpose, The trt_engine_cache_path "
                               "has '..', it's not allowed to point outside the directory.")
            self.relative_cache_path = self.cache_path
            self.cache_path = str(_ctx_dir(self.ctx_file) / self.cache_path)
        if self.engine_cache or self.int8 or self.timing_cache:
            for folder in (self.cache_path, self.global_cache_path):
                if folder and not Path(folder).is_dir():
                    _create_directory(folder)
        texts = [get(f"trt_profile_{w}_shapes", "") for w in ("min", "max", "opt")]
        parsed, ok = [], True
        for which, text in zip(("min", "max", "opt"), texts):
            shapes, ok = parse_profile_shapes(text) if ok else ({}, False)
            if not ok:
                _logs("WARNING", f"[TensorRT EP] The format of provider option 'trt_profile_{which}_shapes' is wrong, "
                                 f"please follow the format of 'input1:dim1xdimd2...,input2:dim1xdim2...,...'")
            parsed.append(shapes if ok else {})
        self.mins, self.maxs, self.opts = parsed
        if ok and not validate_profile_shapes(self.mins, self.maxs, self.opts):
            _logs("WARNING", "[TensorRT EP] Profile shapes validation failed. Make sure the provider options "
                             "'trt_profile_min_shapes', 'trt_profile_max_shapes' and 'trt_profile_opt_shapes' have "
                             "same input name and number of profile.")
            self.mins, self.maxs, self.opts = {}, {}, {}
        self.engine: dict | None = None
        WORLD.calls.append(("tensorrt_ep", dict(params)))

    # --- compile a plain model ------------------------------------------------------------------------------------
    def compile(self, model: onnx.ModelProto, model_path: Path) -> None:
        graph = model.graph
        initializers = {i.name for i in graph.initializer}
        for node in graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise NotSettled(f"node {node.name!r} of domain {node.domain!r}: which ops TensorRT takes is not modelled")
            for i in SHAPE_OPERANDS.get(node.op_type, ()):
                if i < len(node.input) and node.input[i] in {v.name for v in graph.input}:
                    raise NotSettled(f"input {node.input[i]!r} is a shape tensor: not modelled")
        inputs = []
        for vi in graph.input:
            if vi.name in initializers:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
            inputs.append((vi.name, dims))
        explicit = bool(self.mins) and bool(self.maxs) and bool(self.opts)
        n_profiles = next((len(v) for v in self.mins.values() if v), 0) if explicit else 0
        ranges: dict[str, list[list[list[int]]]] = {}  # input -> profile -> [min, opt, max] full dims
        implicit: list[str] = []
        for name, dims in inputs:
            applied = explicit and name in self.mins  # ApplyProfileShapesFromProviderOptions
            if applied:
                ranges[name] = []
                for i in range(n_profiles):
                    try:
                        lo, hi, op = self.mins[name][i], self.maxs[name][i], self.opts[name][i]
                    except IndexError:
                        raise UndefinedBehaviour(f"profile {i} of {name!r} is missing: read out of bounds [O9]") from None
                    full = [[], [], []]
                    for j, d in enumerate(dims):
                        if d == -1:
                            if j >= min(len(lo), len(hi), len(op)):
                                raise UndefinedBehaviour(f"profile of {name!r} has fewer dims than the input [O9]")
                            for k, src in enumerate((lo, op, hi)):
                                full[k].append(src[j])
                        else:
                            for k in range(3):
                                full[k].append(d)
                    ranges[name].append(full)
            elif -1 in dims:
                implicit.append(name)
        if explicit and implicit:
            raise _status("FAIL", "User needs to provide all the dynamic shape inputs with associated profiles if they "
                                  "want to explicitly set profiles through provider options.\nPlease note that main graph "
                                  "could be partitioned into TRT/CUDA/CPU subgraphs, in this case, user also needs to "
                                  "provide shape profiles for the TRT subgraph's input if it's dynamic shape input.\n"
                                  f"Following input(s) has no associated shape profiles provided: {','.join(implicit)}")
        for name, profiles in ranges.items():
            for lo, op, hi in profiles:
                if not all(a <= b <= c for a, b, c in zip(lo, op, hi)):
                    raise NotSettled(f"profile of {name!r} is not min <= opt <= max ({lo}, {op}, {hi}): the EP ignores "
                                     f"setDimensions' result and what TensorRT builds then is not documented [O9]")
        precision = "".join(s for s, on in (("_fp16", self.fp16), ("_bf16", self.bf16), ("_int8", self.int8)) if on)
        digest = hashlib.sha256("|".join([model_path.name, *(v.name for v in graph.input),
                                          *(o for n in graph.node for o in n.output if o), "LINUX", ORT_VERSION,
                                          str(WORLD.cuda_version), str(WORLD.libnvinfer)]).encode()).hexdigest()
        hash_value = int(digest[:16], 16)
        self.node_name = f"TensorrtExecutionProvider_TRTKernel_graph_{graph.name}_{hash_value}_0_0"  # partitioner
        stem = str(Path(self.cache_path) / (self.node_name + precision)) if self.cache_path else self.node_name + precision
        engine_file, profile_file = f"{stem}_sm{self.cc}.engine", f"{stem}_sm{self.cc}.profile"
        ctx_path = self._ctx_model_path(model_path) if self.dump else None
        if implicit:  # [O8] no explicit profiles: the engine is built at the first run
            self.engine = {"deferred": True}
            if self.dump and self.embed_mode == 0:
                self._dump(model, ctx_path, engine_file, None)
            return
        update = True
        if explicit and self.engine_cache and Path(profile_file).exists():  # CompareProfiles
            update = json.loads(Path(profile_file).read_text()) != ranges
        if self.engine_cache and Path(engine_file).exists() and not update:
            self.engine = self._deserialize(Path(engine_file).read_bytes(), "cache: " + engine_file)
            WORLD.calls.append(("engine_cache_hit", engine_file))
            return  # [O12] no EP-context model
        timing_file = None
        if self.timing_cache:
            timing_file = Path(self.global_cache_path or ".") / f"TensorrtExecutionProvider_cache_sm{self.cc}.timing"
            if not timing_file.exists():
                _logs("WARNING", f"[TensorRT EP] Could not read timing cache from: {timing_file}. A new timing cache "
                                 f"will be generated and written.")
        record = {"trt": WORLD.libnvinfer, "cc": self.cc, "strongly_typed": not (self.fp16 or self.int8 or self.bf16),
                  "flags": [f for f, on in (("FP16", self.fp16), ("BF16", self.bf16), ("INT8", self.int8)) if on],
                  "workspace": self.params.get("trt_max_workspace_size", 0),
                  "level": self.params.get("trt_builder_optimization_level", 3),
                  "profiles": ranges, "timing_cache": str(timing_file) if timing_file else None,
                  "timing_cache_read": bool(timing_file and timing_file.exists()), "model_file": model_path.name,
                  "tf32": os.environ.get("NVIDIA_TF32_OVERRIDE") != "0"}  # [O17]
        WORLD.calls.append(("build", record))
        blob = b"DOUBLE-TRT-ENGINE\n" + json.dumps({**record, "onnx": base64.b64encode(model.SerializeToString()).decode(),
                                                     "inputs": inputs}).encode()
        self.engine = self._deserialize(blob, "binary data")
        if self.engine_cache:
            if explicit:
                Path(profile_file).write_text(json.dumps(ranges))
            Path(engine_file).write_bytes(blob)
        if timing_file:
            old = json.loads(timing_file.read_text()) if timing_file.exists() else {"builds": 0}
            timing_file.write_text(json.dumps({"trt": WORLD.libnvinfer, "builds": old["builds"] + 1}))
        if self.dump:
            self._dump(model, ctx_path, engine_file, blob)

    def _ctx_model_path(self, model_path: Path) -> str:
        """ctx GetCtxModelPath."""
        if self.ctx_file and not Path(self.ctx_file).is_dir():
            return self.ctx_file
        name = model_path.stem + "_ctx.onnx"
        return str(Path(self.ctx_file) / name) if self.ctx_file else name

    def _dump(self, model, ctx_path: str, engine_file: str, blob: bytes | None) -> None:
        """[O13] ctx CreateCtxModel + DumpCtxModel."""
        graph = model.graph
        initializers = {i.name for i in graph.initializer}
        cache_attr = str(Path(self.relative_cache_path) / Path(engine_file).name)
        node = helper.make_node("EPContext", [v.name for v in graph.input if v.name not in initializers],
                                [o.name for o in graph.output], name="EPContext", domain="com.microsoft",
                                embed_mode=self.embed_mode,
                                ep_cache_context=blob if self.embed_mode else cache_attr.encode(),
                                hardware_architecture=self.cc, onnx_model_filename=Path(self.model_file).name)
        ctx_graph = helper.make_graph([node], graph.name, [v for v in graph.input if v.name not in initializers],
                                      list(graph.output))
        opsets = [o for o in model.opset_import if o.domain not in ("com.microsoft",)]
        ctx = helper.make_model(ctx_graph, opset_imports=[*opsets, helper.make_opsetid("com.microsoft", 1)],
                                ir_version=model.ir_version)
        Path(ctx_path).write_bytes(ctx.SerializeToString())
        WORLD.calls.append(("dump_ep_context_model", ctx_path))

    # --- an EP-context model ----------------------------------------------------------------------------------------
    def load_context(self, model: onnx.ModelProto, model_path: Path) -> None:
        """[O14]"""
        (node,) = model.graph.node
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        arch = attrs.get("hardware_architecture")
        if arch is not None and arch.decode() != self.cc:
            _logs("WARNING", "[TensorRT EP] Engine was compiled for a different compatibility level and might not "
                             "work or perform suboptimal")
        if attrs["embed_mode"] == 1:
            self.engine = self._deserialize(attrs["ep_cache_context"], "binary data")
            return
        relative = attrs["ep_cache_context"].decode()
        if _is_absolute(relative) or ".." in relative:
            raise _status("FAIL", "For security purpose, the ep_cache_context attribute should be set with a relative path")
        engine_file = model_path.parent / relative
        if not engine_file.exists():
            raise _status("FAIL", f"TensorRT EP can't find engine cache: {engine_file}. Please make sure engine cache is "
                                  f"in the same directory or sub-directory of context model.")
        self.engine = self._deserialize(engine_file.read_bytes(), f"cache: {engine_file}")

    @staticmethod
    def _deserialize(blob: bytes, what: str) -> dict:
        head = b"DOUBLE-TRT-ENGINE\n"
        if not blob.startswith(head):
            raise _status("FAIL", f"TensorRT EP could not deserialize engine from {what}")
        engine = json.loads(blob[len(head):])
        if engine["trt"] != WORLD.libnvinfer:  # a plan runs only on the TensorRT that built it
            raise _status("FAIL", f"TensorRT EP could not deserialize engine from {what}")
        return engine


class SessionIOBinding:
    def __init__(self, session: "InferenceSession"):
        self.session = session
        self.inputs: dict[str, tuple] = {}
        self.outputs: dict[str, tuple] = {}
        self.results: list[OrtValue] = []

    @staticmethod
    def _on_cuda(device) -> None:
        if device.device_type() != _REAL_C.OrtDevice.cuda() or device.device_id() != 0:
            raise NotSettled("bindings other than CUDA device 0 are not modelled")

    def bind_input(self, name, device, element_type, shape, buffer_ptr) -> None:
        self._on_cuda(device)
        self.inputs[name] = (np.dtype(element_type), tuple(int(s) for s in shape), int(buffer_ptr))

    def bind_output(self, name, device, element_type=None, shape=None, buffer_ptr=None) -> None:
        self._on_cuda(device)
        dtype = np.dtype(element_type) if element_type is not None else None
        self.outputs[name] = (dtype, tuple(int(s) for s in shape) if shape is not None else None,
                              int(buffer_ptr) if buffer_ptr is not None else None)

    def get_outputs(self) -> OrtValueVector:
        return OrtValueVector(self.results)


def _device_array(ptr: int, dtype, shape, what: str) -> np.ndarray:
    buf = fake_cuda.MEMORY.get(ptr)
    if buf is None:
        raise UndefinedBehaviour(f"{what}: {ptr:#x} is no device allocation (a host pointer bound as 'cuda'?)")
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if buf.nbytes < nbytes:
        raise UndefinedBehaviour(f"{what}: {nbytes} bytes bound to a {buf.nbytes}-byte allocation")
    return buf.reshape(-1).view(np.uint8)[:nbytes].view(dtype).reshape(shape)


class InferenceSession:
    """The native session (pybind PyInferenceSession) the collection's InferenceSession drives."""

    def __init__(self, sess_options, model, is_path: bool, read_config_from_model: bool):
        self.session_options = sess_options
        if not is_path:
            raise NotSettled("models from bytes: the TensorRT EP's cache and EP-context paths need a model path")
        if not os.path.exists(model):
            raise _status("NO_SUCHFILE", f"Load model from {model} failed:Load model {model} failed. File doesn't exist")
        self.model_path = Path(model)
        self.model = onnx.load(str(model))
        graph = self.model.graph
        initializers = {i.name for i in graph.initializer}
        self.inputs_meta = [NodeArg(v) for v in graph.input if v.name not in initializers]
        self.outputs_meta = [NodeArg(v) for v in graph.output]
        self.overridable_initializers, self.input_meminfos, self.output_meminfos, self.input_epdevices = [], [], [], []
        self.model_meta = None
        self.eps: list = []
        self.assignment: list[_Assigned] = []

    get_profiling_start_time_ns = 0

    def initialize_session(self, providers, provider_options, disabled_optimizers) -> None:
        options = {p: o for p, o in zip(providers, provider_options) if o}  # pybind GenerateProviderOptionsMap
        for kind in providers:
            ep = _create_provider(kind, options.get(kind, {}))
            if ep is not None:
                self.eps.append(ep)
        if not any(ep.type == CPU for ep in self.eps):
            self.eps.append(_CpuEP())  # [O7]
        trt = next((ep for ep in self.eps if ep.type == TRT), None)
        nodes = list(self.model.graph.node)
        context = [n for n in nodes if n.op_type == "EPContext"]
        if context:
            if trt is None:  # [O14] no other provider has an EPContext kernel
                raise _status("NOT_IMPLEMENTED", f"Could not find an implementation for EPContext(1) node with name "
                                                 f"'{context[0].name}'")
            if len(nodes) != 1:
                raise NotSettled("an EPContext node beside other nodes: the TensorRT EP claims a lone one only [O14]")
            trt.load_context(self.model, self.model_path)
            self.assignment = [_Assigned(TRT, nodes)]
        elif trt is not None:
            trt.model_file = self.model_path.name
            trt.compile(self.model, self.model_path)
            self.assignment = [_Assigned(TRT, nodes)]
        else:
            self.assignment = [_Assigned(self.eps[0].type, nodes)]
        self.trt = trt

    def get_providers(self) -> list[str]:
        return [ep.type for ep in self.eps]

    def get_provider_options(self) -> dict:
        return {ep.type: {k: str(v) for k, v in ep.params.items()} for ep in self.eps}

    def get_provider_graph_assignment_info(self):
        if self.session_options.get_session_config_entry("session.record_ep_graph_assignment_info") != "1":
            raise NotSettled("graph assignment info without session.record_ep_graph_assignment_info=1")
        return list(self.assignment)

    def is_webgpu_graph_capture_enabled(self) -> bool:
        return False

    def run_with_iobinding(self, binding: SessionIOBinding, run_options) -> None:
        """[O15]"""
        if self.trt is None or self.trt.engine is None:
            raise NotSettled("runs without the TensorRT EP are not modelled")
        engine = self.trt.engine
        if engine.get("deferred"):
            raise NotSettled("an engine built at the first run (no explicit profiles) is not modelled [O8]")
        wait = True  # onnxruntime_run_options_config_keys.h: the providers are synchronized after a run unless "1"
        if run_options is not None:
            try:
                value = run_options.get_run_config_entry("disable_synchronize_execution_providers")
            except RuntimeError:  # the real RunOptions raises for a key never set
                value = ""
            if value not in ("", "0", "1"):
                raise NotSettled(f"disable_synchronize_execution_providers={value!r}")
            wait = value != "1"
        feeds = {}
        profile = {name: full[0] for name, full in engine["profiles"].items()}
        for name, dims in engine["inputs"]:
            if name not in binding.inputs:
                raise _status("INVALID_ARGUMENT", f"Missing Input: {name}")
            dtype, shape, ptr = binding.inputs[name]
            expected = NUMPY[next(a.type for a in self.inputs_meta if a.name == name)]
            if dtype != np.dtype(expected):
                raise _status("INVALID_ARGUMENT", f"Unexpected input data type. Actual: ({dtype}) , expected: "
                                                  f"({np.dtype(expected)})")
            lo, _, hi = profile.get(name, (dims, dims, dims))
            if len(shape) != len(dims) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                raise _status("EP_FAIL", f"TensorRT EP failed to call nvinfer1::IExecutionContext::setInputShape() "
                                         f"for input '{name}'")
            feeds[name] = _device_array(ptr, dtype, shape, f"input {name!r}").copy()
        key = (engine["onnx"], engine.get("tf32", True))
        runner = WORLD.engines.get(key)
        if runner is None:
            model = base64.b64decode(engine["onnx"])
            runner = _real_ort.InferenceSession(with_tf32_rounding(model) if key[1] else model,  # [O17]
                                                providers=["CPUExecutionProvider"])
            WORLD.engines[key] = runner
        names = [o.name for o in self.outputs_meta]
        values = runner.run(names, feeds)
        fake_cuda.TRACE.append(("ort_run", self.trt.stream, wait))
        results = []
        for name, value in zip(names, values):
            if name not in binding.outputs:
                continue
            dtype, shape, ptr = binding.outputs[name]
            if ptr is None:
                buf = fake_cuda.Device(0).empty(value.shape, value.dtype)  # ONNX Runtime allocates it on the device
                np.copyto(buf.array, value)
            else:
                if dtype != value.dtype or shape != value.shape:
                    raise NotSettled(f"output {name!r} bound as {dtype}{shape}, the engine makes {value.dtype}{value.shape}")
                np.copyto(_device_array(ptr, dtype, shape, f"output {name!r}"), value)
                buf = types.SimpleNamespace(shape=value.shape)
            results.append(OrtValue(buf, next(a.type for a in self.outputs_meta if a.name == name)))
        binding.results = results


# --- the modules code under test imports ----------------------------------------------------------------------------
class _StrictModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotSettled(f"the double does not model {self.__name__}.{name}")


C = _StrictModule("onnxruntime.capi.onnxruntime_pybind11_state (double)")
for _name in ("SessionOptions", "RunOptions", "GraphOptimizationLevel", "ExecutionMode", "ExecutionOrder", "OrtDevice",
              "get_default_session_options", "Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError",
              "RuntimeException", "InvalidProtobuf", "ModelLoaded", "NotImplemented", "InvalidGraph", "EPFail",
              "OrtExternalInitializerInfo", "OrtEpAssignedSubgraph", "NodeArg", "ModelMetadata", "OrtMemoryInfo",
              "OrtEpDevice", "SparseTensor", "OrtCompileApiFlags"):
    setattr(C, _name, getattr(_REAL_C, _name))
C.get_available_providers = lambda: list(WORLD.available)
C.get_all_providers = lambda: [TRT, CUDA, CPU]
C.register_tensorrt_plugins_as_custom_ops = _register_trt_plugins
C.InferenceSession = InferenceSession
C.SessionIOBinding = SessionIOBinding
C.OrtValue = OrtValue
C.OrtValueVector = OrtValueVector


def _collection() -> types.ModuleType:
    """The wheel's onnxruntime_inference_collection.py, executed with `C` bound to the double's native module."""
    path = Path(_real_ort.capi.onnxruntime_inference_collection.__file__)
    source = path.read_text()
    line = "from onnxruntime.capi import _pybind_state as C\n"
    if source.count(line) != 1:
        raise NotSettled(f"{path} no longer imports its native module as the double expects")
    module = types.ModuleType("onnxruntime_trt_collection")
    module.__file__ = str(path)
    module.__dict__["_double_native"] = C
    exec(compile(source.replace(line, "C = _double_native\n"), str(path), "exec"), module.__dict__)
    return module


COLLECTION = _collection()
ORT = _StrictModule("onnxruntime")
ORT.__version__ = ORT_VERSION
ORT.get_available_providers = C.get_available_providers
ORT.get_all_providers = C.get_all_providers
for _name in ("SessionOptions", "RunOptions", "GraphOptimizationLevel", "ExecutionMode", "OrtDevice"):
    setattr(ORT, _name, getattr(_REAL_C, _name))
for _name in ("InferenceSession", "IOBinding", "OrtValue", "SparseTensor"):
    setattr(ORT, _name, getattr(COLLECTION, _name))


def install(monkeypatch, **world) -> types.ModuleType:
    """Make `import onnxruntime` give the double and ctypes find the declared libnvinfer, for one test."""
    WORLD.reset(**world)
    monkeypatch.setitem(sys.modules, "onnxruntime", ORT)
    monkeypatch.setattr(ctypes, "CDLL", cdll)
    return ORT
