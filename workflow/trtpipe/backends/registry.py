"""The backend registry: the one place that knows what a backend is.

Each backend is a `Backend` descriptor below plus one module that implements it: a `build(request)`
function (base.BuildRequest -> the sidecar's backend fields) and a `Runner` subclass of base.Runner
(load, run, benchmark). Everything else — config validation, the Snakemake rules, the CLI, the report —
asks this registry instead of comparing backend names. Importing it is cheap: no backend library
(onnxruntime, tensorrt, torch) is imported until a backend is used, so the Snakefile can read it.

Adding a backend: one module beside this file and one `register(Backend(...))` line at the end.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from ..errors import TrtpipeError

ONNX_SOURCE, CHECKPOINT_SOURCE = "onnx", "checkpoint"


@dataclass(frozen=True)
class Backend:
    name: str
    module: str  # implementation: build() and a Runner
    rule: str  # Snakemake rules engine_<rule> / benchmark_<rule>; backends sharing one share suffix, env and section
    engine_suffix: str
    precisions: tuple[str, ...]  # what it can build; a sweep may narrow it with <section>.precisions
    source: str  # ONNX_SOURCE: the (precision) ONNX; CHECKPOINT_SOURCE: the PyTorch checkpoint
    gpu: bool  # runs on a GPU (unless its section sets device: cpu)
    section: str | None  # config section holding its options
    library: str  # how messages name it
    conda_env: str  # envs/<file>
    dag_identity: Callable[[dict[str, Any]], dict[str, str]]  # cheap, for rule params: what invalidates an engine
    combine_option: str | None = None  # option of its section that puts every profile into one engine
    mode: str | None = None  # for a module serving several backends (the torch family): which one
    fp32_math: str = "fp32"  # the math its fp32 engines run (the report's peak-FLOPs lookup)
    extra_columns: tuple[str, ...] = ()  # benchmark columns only this backend fills
    # Its builds time no kernels (given its options), so they may share the GPU with each other (not with timings)
    build_timing_free: Callable[[dict[str, Any]], bool] | None = None
    # What it builds is made for the cores that run it (Inductor's C++ kernels on the CPU): its build gets the
    # benchmark's cores
    builds_for_cores: Callable[[dict[str, Any]], bool] | None = None

    def implementation(self) -> ModuleType:
        return importlib.import_module(self.module)

    def needs_gpu(self, options: dict[str, Any]) -> bool:
        return self.gpu and options.get("device") != "cpu"

    def build_shares_gpu(self, options: dict[str, Any]) -> bool:
        return bool(self.build_timing_free and self.build_timing_free(options))

    def builds_on_bench_cores(self, options: dict[str, Any]) -> bool:
        return bool(self.builds_for_cores and self.builds_for_cores(options))

    def combines_profiles(self, options: dict[str, Any]) -> bool:
        return bool(self.combine_option and options.get(self.combine_option))


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    BACKENDS[backend.name] = backend
    return backend


def get(name: str) -> Backend:
    if name not in BACKENDS:
        raise TrtpipeError(f"backend {name!r} is unknown; fix: use one of {', '.join(sorted(BACKENDS))}.")
    return BACKENDS[name]


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
        shared = {(b.engine_suffix, b.conda_env, b.section, b.source) for b in members}
        if len(shared) > 1:
            raise TrtpipeError(f"backends {', '.join(b.name for b in members)} share rule {family!r} but differ in "
                               f"engine suffix, conda env, config section or source; fix: give them their own rule.")
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
register(Backend(
    name="onnxruntime", module="trtpipe.backends.onnxruntime", rule="onnxruntime", engine_suffix="onnx",
    # The CPU provider has fp16 and int8 (QDQ -> QLinear) kernels, no bf16 kernels, and runs fp8 Q/DQ only as
    # simulated fp32.
    precisions=("fp32", "fp16", "int8"), source=ONNX_SOURCE, gpu=False, section="onnxruntime",
    library="ONNX Runtime", conda_env="onnx.yaml", dag_identity=_cpu_identity("onnxruntime"),
))
register(Backend(
    name="tensorrt", module="trtpipe.backends.tensorrt", rule="tensorrt", engine_suffix="engine",
    # fp32 clears BuilderFlag.TF32 (on by default); tf32 allows it, built from the fp32 ONNX
    precisions=("fp32", "tf32", "fp16", "bf16", "int8", "fp8"), source=ONNX_SOURCE, gpu=True, section="tensorrt",
    library="TensorRT", conda_env="tensorrt.yaml", dag_identity=_tensorrt_identity, combine_option="combine_profiles",
    fp32_math="fp32", extra_columns=("trtexec_compute_ms_median",),
))
for _mode in ("cuda", "cuda_graph"):
    # Q/DQ runs as fake-quant on the CUDA EP (no CUDA QLinearConv in 1.31.1): int8 is correct there, not faster.
    register(Backend(
        name="onnxruntime_" + _mode, module="trtpipe.backends.ort_gpu", rule="onnxruntime_cuda", engine_suffix="onnx",
        precisions=("fp32", "tf32", "fp16", "int8"), source=ONNX_SOURCE, gpu=True, section="onnxruntime_cuda",
        library="ONNX Runtime (CUDA EP)", conda_env="onnx-gpu.yaml", dag_identity=_gpu_identity("onnxruntime-gpu"),
        mode=_mode,
        # cuDNN's algorithm search is not saved with the model: the benchmark's session searches again, inside its
        # timing block (Runner._step), so what a build times only serves its parity check
        build_timing_free=lambda options: True,
    ))
register(Backend(
    name="onnxruntime_tensorrt", module="trtpipe.backends.ort_gpu", rule="onnxruntime_tensorrt", engine_suffix="ctx.onnx",
    precisions=("fp32", "fp16", "int8"), source=ONNX_SOURCE, gpu=True, section="onnxruntime_tensorrt",
    library="ONNX Runtime (TensorRT EP)", conda_env="onnx-gpu.yaml", dag_identity=_gpu_identity("onnxruntime-gpu"),
    mode="tensorrt", fp32_math="tf32",  # the EP has no TF32 switch: TensorRT's default (TF32 on) applies
))
for _mode in ("eager", "compile", "eager_graph", "compile_graph"):
    register(Backend(
        name=f"torch_{_mode}", module="trtpipe.backends.pytorch", rule="torch", engine_suffix="torch",
        precisions=("fp32", "tf32", "fp16", "bf16"), source=CHECKPOINT_SOURCE, gpu=True, section="torch",
        library="PyTorch", conda_env="torch.yaml", dag_identity=_gpu_identity("torch"), mode=_mode,
        extra_columns=("compile_s", "graphs_compiled", "inductor_cache_misses"),  # the benchmark job's compile cost
        # compiling is CPU work; max-autotune times kernels while it compiles
        build_timing_free=lambda options: not str(options.get("compile_mode", "")).startswith("max-autotune"),
        builds_for_cores=(lambda options: options.get("device") == "cpu") if _mode.startswith("compile") else None,
    ))
