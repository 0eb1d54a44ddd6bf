"""The backend registry: the one place that knows what a backend is.

Each backend is a `Backend` descriptor below plus one module that implements it: a `build(request)`
function (base.BuildRequest -> the sidecar's backend fields) and a `Runner` subclass of base.Runner
(the machine's identity, load, run, benchmark; base.Runner states the contract). Everything else — config
validation, the Snakemake rules, the CLI, the report — asks this registry instead of comparing backend names.
Importing it is cheap: no backend library (onnxruntime, tensorrt, torch) is imported until a backend is used,
so the Snakefile can read it.

A descriptor describes itself whole: its options (`options`, the JSON schema of its config section's keys, with
their defaults) are spliced into the config schema with the backend names (trtpipe.config.config_schema), and
its conda env defaults to the one of the files it reads. Adding a backend, options included: one module beside this file
and one `register(Backend(...))` line at the end; the README's table of its options is optional, and checked
against the schema where it exists (tests/test_config.py).
"""

from __future__ import annotations

import copy
import functools
import importlib
import importlib.metadata
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import yaml

from ..defaults import defaults_of
from ..errors import TrtpipeError

ONNX_SOURCE, CHECKPOINT_SOURCE = "onnx", "checkpoint"
SOURCE_ENVS = {ONNX_SOURCE: "onnx.yaml", CHECKPOINT_SOURCE: "torch.yaml"}  # envs/<file> of the stage that writes each


@dataclass(frozen=True)
class Backend:
    name: str
    module: str  # implementation: build() and a Runner
    rule: str  # Snakemake rules engine_<rule> / benchmark_<rule>; backends sharing one share suffix, env and section
    engine_suffix: str
    precisions: tuple[str, ...]  # what it can build; a sweep may narrow it with <section>.precisions
    source: str  # ONNX_SOURCE: the (precision) ONNX; CHECKPOINT_SOURCE: the PyTorch checkpoint
    gpu: bool  # runs on a GPU (unless its section sets device: cpu)
    library: str  # how messages name it
    dag_identity: Callable[[dict[str, Any]], dict[str, str]]  # cheap, for rule params: what invalidates an engine
    section: str | None = None  # config section holding its options (backends sharing a rule share it)
    # Its options: the JSON schema (as YAML text) of its section's keys, with their defaults. The section also gets
    # `precisions` and `profiles` (which of them the sweep builds for this backend).
    options: str = ""
    conda_env: str | None = None  # envs/<file>; default: the env of its source (SOURCE_ENVS)
    combine_option: str | None = None  # option of its section that puts every profile into one engine
    mode: str | None = None  # for a module serving several backends (the torch family): which one
    fp32_math: str = "fp32"  # the math its fp32 engines run (the report's peak-FLOPs lookup)
    extra_columns: tuple[str, ...] = ()  # benchmark columns only this backend fills
    # Its builds time no kernels (given its options), so they may share the GPU with each other (not with timings)
    build_timing_free: Callable[[dict[str, Any]], bool] | None = None
    # What it builds is made for the cores that run it (Inductor's C++ kernels on the CPU): its build gets the
    # benchmark's cores
    builds_for_cores: Callable[[dict[str, Any]], bool] | None = None
    # Its build compiles code (torch.compile): long CPU work that takes a `compile` unit and several cores
    compiles: bool = False

    def implementation(self) -> ModuleType:
        return importlib.import_module(self.module)

    @property
    def env_file(self) -> str:
        return self.conda_env or SOURCE_ENVS[self.source]

    def section_schema(self) -> dict[str, Any]:
        """Its config section as JSON schema: its options plus the `precisions` and `profiles` every backend has."""
        return copy.deepcopy(_section_schema(self.options))

    def with_defaults(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """Its options with their defaults under whatever was given (a command run by hand may give none)."""
        return {**defaults_of(_section_schema(self.options)), **(options or {})}

    def needs_gpu(self, options: dict[str, Any]) -> bool:
        return self.gpu and options.get("device") != "cpu"

    def build_shares_gpu(self, options: dict[str, Any]) -> bool:
        return bool(self.build_timing_free and self.build_timing_free(options))

    def builds_on_bench_cores(self, options: dict[str, Any]) -> bool:
        return bool(self.builds_for_cores and self.builds_for_cores(options))

    def combines_profiles(self, options: dict[str, Any]) -> bool:
        return bool(self.combine_option and options.get(self.combine_option))


@functools.lru_cache(maxsize=None)
def _section_schema(options: str) -> dict[str, Any]:
    properties = yaml.safe_load(options) or {}
    if not isinstance(properties, dict):
        raise TrtpipeError(f"a backend's options must be a YAML mapping of option names to JSON schemas, not "
                           f"{options!r}; fix: write them as `name: {{type: ..., default: ...}}` lines.")
    return {"type": "object", "additionalProperties": False, "default": {},
            "properties": {**properties, "precisions": {"$ref": "#/$defs/precision_list"},
                           "profiles": {"$ref": "#/$defs/backend_profiles"}}}


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    if backend.name in BACKENDS:
        raise TrtpipeError(f"backend {backend.name!r} is registered twice ({BACKENDS[backend.name].module} and "
                           f"{backend.module}); fix: give the new backend a name of its own.")
    if backend.options and not backend.section:
        raise TrtpipeError(f"backend {backend.name!r} declares options but no config section to hold them; fix: give "
                           f"it section='{backend.name}' (or another name of its own).")
    _section_schema(backend.options)  # a malformed options text fails here, at import, not at validation
    BACKENDS[backend.name] = backend
    return backend


def get(name: str) -> Backend:
    if name not in BACKENDS:
        raise TrtpipeError(f"backend {name!r} is unknown; fix: use one of {', '.join(sorted(BACKENDS))}.")
    return BACKENDS[name]


def sections() -> dict[str, dict[str, Any]]:
    """Each config section of the registered backends, as JSON schema (trtpipe.config splices them in)."""
    out: dict[str, dict[str, Any]] = {}
    for b in BACKENDS.values():
        if b.section is None:
            continue
        schema = b.section_schema()
        if b.section in out and out[b.section] != schema:
            raise TrtpipeError(f"backends sharing the config section {b.section!r} declare different options "
                               f"({b.name} among them); fix: give them the same options or sections of their own.")
        out[b.section] = schema
    return out


def with_defaults(section: str | None, options: dict[str, Any] | None) -> dict[str, Any]:
    """A backend section's options with the defaults of its schema under whatever was given."""
    owner = next((b for b in BACKENDS.values() if b.section == section), None) if section else None
    if section and owner is None:
        raise TrtpipeError(f"no backend has the config section {section!r}; fix: use one of "
                           f"{', '.join(sorted(sections()))}.")
    return owner.with_defaults(options) if owner else dict(options or {})


def skip_reason(backend: str, precision: str, *, precision_named: bool = False) -> str:
    """Why a sweep builds no `precision` engines on `backend`: it has no such kernels, or its section leaves them out.
    precision_named: the sentence around it already names the precision."""
    b = get(backend)
    if precision not in b.precisions:
        return f"{b.library} ({backend}) has no {'kernels for it' if precision_named else f'{precision} kernels'}"
    return f"{b.section}.precisions leaves it out"


def rules() -> dict[str, list[Backend]]:
    """Backends by rule family, checking that each family can share one rule."""
    families: dict[str, list[Backend]] = {}
    for b in BACKENDS.values():
        families.setdefault(b.rule, []).append(b)
    for family, members in families.items():
        shared = {(b.engine_suffix, b.env_file, b.section, b.options, b.source) for b in members}
        if len(shared) > 1:
            raise TrtpipeError(f"backends {', '.join(b.name for b in members)} share rule {family!r} but differ in "
                               f"engine suffix, conda env, config section, options or source; fix: give them their own rule.")
    return families


# --- cheap identities (no backend library imported) ------------------------------------------------
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_identity(dist: str) -> Callable[[dict[str, Any]], dict[str, str]]:
    def identity(options: dict[str, Any]) -> dict[str, str]:
        from ..sysinfo import cpu_name

        return {dist: _version(dist), "device": cpu_name()}

    return identity


def _gpu_identity(dist: str) -> Callable[[dict[str, Any]], dict[str, str]]:
    def identity(options: dict[str, Any]) -> dict[str, str]:
        from ..gpu import visible_gpu_identity
        from ..sysinfo import cpu_name

        return {dist: _version(dist), "device": cpu_name() if options.get("device") == "cpu" else visible_gpu_identity()}

    return identity


def _tensorrt_identity(options: dict[str, Any]) -> dict[str, str]:
    from ..gpu import visible_gpu_identity

    try:  # the wheel's metadata can exist while libnvinfer is missing: ask the module; the job says what is wrong
        import tensorrt

        version = tensorrt.__version__
    except Exception:
        version = "not installed"
    return {"tensorrt": version, "device": visible_gpu_identity()}


# --- the backends --------------------------------------------------------------------------------
# Each backend's options: the keys of its config section, with their defaults (the README's tables say the same).
ONNXRUNTIME_OPTIONS = """\
optimization_level:
  enum: [disabled, basic, extended, all]
  default: all
intra_op_threads:
  type: integer
  minimum: 0
  default: 0
  description: 0 lets ONNX Runtime choose (one thread per physical core)
"""
TENSORRT_OPTIONS = """\
workspace_gib: {type: number, exclusiveMinimum: 0, default: 4}
optimization_level: {type: integer, minimum: 0, maximum: 5, default: 3}
timing_cache_dir:
  type: string
  default: timing_cache
  description: one timing cache per GPU model, compute capability and TensorRT version, reused across builds
combine_profiles:
  type: boolean
  default: false
  description: one engine holding every profile of the dynamic variant (one execution context per profile)
include_transfers:
  type: boolean
  default: true
  description: time host-to-device and device-to-host copies too (TensorRT 10's trtexec default; 11's is false)
cuda_graph:
  type: boolean
  default: false
  description: replay the engine from a CUDA graph (TensorRT 11's trtexec default)
trtexec:
  type: boolean
  default: true
  description: also time the engine with trtexec when it is on PATH, for comparison
"""
ONNXRUNTIME_CUDA_OPTIONS = """\
optimization_level:
  enum: [disabled, basic, extended, all]
  default: all
  description: graph optimizations applied when the session is created on the GPU
cudnn_conv_algo_search:
  enum: [EXHAUSTIVE, HEURISTIC, DEFAULT]
  default: EXHAUSTIVE
  description: cuDNN convolution algorithm search (ONNX Runtime's default); HEURISTIC where cuDNN finds no plan
prefer_nhwc:
  type: boolean
  default: false
  description: >
    the CUDA EP's NHWC convolutions (ONNX Runtime's prefer_nhwc; off by default there too): ResNet-50 fp16 at
    batch 128 ran 20% faster with it on an H100 (docs/gpu/onnxruntime)
arena_extend_strategy: {enum: [kNextPowerOfTwo, kSameAsRequested], default: kNextPowerOfTwo}
include_transfers: {type: boolean, default: true, description: time host-to-device and device-to-host copies too}
"""
ONNXRUNTIME_TENSORRT_OPTIONS = """\
workspace_gib: {type: number, exclusiveMinimum: 0, default: 4}
optimization_level: {type: integer, minimum: 0, maximum: 5, default: 3}
timing_cache_dir:
  type: string
  default: timing_cache
  description: the EP's timing cache (TensorrtExecutionProvider_cache_sm<cc>.timing), relative to the engine folder
cudnn_conv_algo_search: {enum: [EXHAUSTIVE, HEURISTIC, DEFAULT], default: EXHAUSTIVE}
arena_extend_strategy: {enum: [kNextPowerOfTwo, kSameAsRequested], default: kNextPowerOfTwo}
include_transfers: {type: boolean, default: true}
"""
TORCH_OPTIONS = """\
device:
  enum: [cuda, cpu]
  default: cuda
  description: cpu runs torch_eager and torch_compile on the CPU (host timing); the CUDA-graph modes need a GPU
compile_mode:
  enum: [default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs]
  default: default
  description: torch.compile mode; max-autotune can take many minutes on a big model
channels_last: {type: boolean, default: true, description: channels-last memory format for conv nets}
include_transfers: {type: boolean, default: true}
cache_dir:
  type: string
  default: torch_cache
  description: TORCHINDUCTOR_CACHE_DIR of the engine jobs, so rebuilding a compiled engine is cheap (benchmark jobs load the engine's own compiled code)
"""
register(Backend(
    name="onnxruntime", module="trtpipe.backends.onnxruntime", rule="onnxruntime", engine_suffix="onnx",
    # The CPU provider has fp16 and int8 (QDQ -> QLinear) kernels, no bf16 kernels, and runs fp8 Q/DQ only as
    # simulated fp32.
    precisions=("fp32", "fp16", "int8"), source=ONNX_SOURCE, gpu=False, section="onnxruntime",
    options=ONNXRUNTIME_OPTIONS, library="ONNX Runtime", dag_identity=_cpu_identity("onnxruntime"),
))
register(Backend(
    name="tensorrt", module="trtpipe.backends.tensorrt", rule="tensorrt", engine_suffix="engine",
    # fp32 clears BuilderFlag.TF32 (on by default); tf32 allows it, built from the fp32 ONNX
    precisions=("fp32", "tf32", "fp16", "bf16", "int8", "fp8"), source=ONNX_SOURCE, gpu=True, section="tensorrt",
    options=TENSORRT_OPTIONS, library="TensorRT", conda_env="tensorrt.yaml", dag_identity=_tensorrt_identity,
    combine_option="combine_profiles",
    fp32_math="fp32", extra_columns=("trtexec_compute_ms_median",),
))
for _mode in ("cuda", "cuda_graph"):
    # Q/DQ runs as fake-quant on the CUDA EP (no CUDA QLinearConv in 1.31.1): int8 is correct there, not faster.
    register(Backend(
        name="onnxruntime_" + _mode, module="trtpipe.backends.ort_gpu", rule="onnxruntime_cuda", engine_suffix="onnx",
        precisions=("fp32", "tf32", "fp16", "int8"), source=ONNX_SOURCE, gpu=True, section="onnxruntime_cuda",
        options=ONNXRUNTIME_CUDA_OPTIONS, library="ONNX Runtime (CUDA EP)", conda_env="onnx-gpu.yaml",
        dag_identity=_gpu_identity("onnxruntime-gpu"),
        mode=_mode,
        # cuDNN's algorithm search is not saved with the model: the benchmark's session searches again, inside its
        # timing block (Runner._step), so what a build times only serves its parity check
        build_timing_free=lambda options: True,
    ))
register(Backend(
    name="onnxruntime_tensorrt", module="trtpipe.backends.ort_gpu", rule="onnxruntime_tensorrt", engine_suffix="ctx.onnx",
    precisions=("fp32", "fp16", "int8"), source=ONNX_SOURCE, gpu=True, section="onnxruntime_tensorrt",
    options=ONNXRUNTIME_TENSORRT_OPTIONS, library="ONNX Runtime (TensorRT EP)", conda_env="onnx-gpu.yaml",
    dag_identity=_gpu_identity("onnxruntime-gpu"),
    mode="tensorrt",  # fp32: the EP has no TF32 switch, so its fp32 jobs set NVIDIA_TF32_OVERRIDE=0 (ort_gpu.forbid_tf32)
))
for _mode in ("eager", "compile", "eager_graph", "compile_graph"):
    register(Backend(
        name=f"torch_{_mode}", module="trtpipe.backends.pytorch", rule="torch", engine_suffix="torch",
        precisions=("fp32", "tf32", "fp16", "bf16"), source=CHECKPOINT_SOURCE, gpu=True, section="torch",
        options=TORCH_OPTIONS, library="PyTorch", dag_identity=_gpu_identity("torch"), mode=_mode,
        extra_columns=("compile_s", "graphs_compiled", "inductor_cache_misses"),  # the benchmark job's compile cost
        # compiling is CPU work; max-autotune times kernels while it compiles
        build_timing_free=lambda options: not str(options.get("compile_mode", "")).startswith("max-autotune"),
        builds_for_cores=(lambda options: options.get("device") == "cpu") if _mode.startswith("compile") else None,
        compiles=_mode.startswith("compile"),
    ))
