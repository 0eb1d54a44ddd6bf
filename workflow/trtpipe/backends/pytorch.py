"""PyTorch backend: the baseline a user would otherwise pick, on the same GPU, batches and profiles.

Modes (one backend name each, so a sweep picks them like backends): `torch_eager`, `torch_compile`
(torch.compile, default mode or `torch.compile_mode`), and CUDA-graph replay of either
(`torch_eager_graph`, `torch_compile_graph`). Precisions: fp32 (TF32 off), tf32, fp16, bf16 (the model
is cast; integer inputs stay integers), channels-last for 4-D inputs of conv nets.

The engine is a zip: the runtime configuration (JSON) and, for the compiled modes, the code torch.compile
produced for it (PyTorch's portable cache artifacts, `torch.compiler.save_cache_artifacts`). The engine
job compiles once over the profile: every dynamic axis is marked with the profile's bounds, so one graph
covers 2..max and a profile starting at 1 has a second graph for size 1 (Dynamo specialises 0 and 1; turning
that off with `backed_size_oblivious` still let Inductor's lowering guard on size 1, a recompile inside the
profile). The benchmark job loads those artifacts into an empty Inductor cache and traces (Dynamo always
does) without compiling: its rows
record the seconds that took, the graphs compiled and Inductor's cache misses, and say so when a graph was
compiled anyway. AOTInductor packages would skip the trace too, but loading one crashed on the GPU machine's
torch 2.11 (docs/torch_compile_once.md). Eager and torch.compile also run on the CPU (`torch.device: cpu`),
which is how CI exercises this backend for real; CUDA graphs need a GPU.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, DynamicExportError
from ..machine import job_cores
from ..spec import ModelSpec
from .base import BuildRequest, Runner as BaseRunner, cpu_description, gpu_description

MODES = {  # the registry's mode -> (compiled, CUDA graph)
    "eager": (False, False),
    "compile": (True, False),
    "eager_graph": (False, True),
    "compile_graph": (True, True),
}
DTYPES = {"fp32": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16"}
CONFIG_ENTRY, COMPILED_ENTRY = "engine.json", "compiled.bin"  # the engine zip's members


def _torch():
    import torch

    return torch


def version() -> str:
    return _torch().__version__


def write_engine(path: str | Path, config: dict[str, Any], compiled: bytes | None = None) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(CONFIG_ENTRY, json.dumps(config, indent=2, sort_keys=True))
        if compiled is not None:
            zf.writestr(COMPILED_ENTRY, compiled)


def read_engine(path: str | Path) -> tuple[dict[str, Any], bytes | None]:
    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read(CONFIG_ENTRY))
        compiled = zf.read(COMPILED_ENTRY) if COMPILED_ENTRY in zf.namelist() else None
    return config, compiled


def dynamic_axes(shapes: dict[str, tuple]) -> dict[str, dict[str, list[int]]]:
    """input -> {axis: [min, max]} for every axis the profile lets vary (JSON keys: axes as strings)."""
    out = {}
    for name, (lo, _, hi) in shapes.items():
        axes = {str(a): [int(lo[a]), int(hi[a])] for a in range(len(lo)) if lo[a] != hi[a]}
        if axes:
            out[name] = axes
    return out


def compile_counters() -> dict[str, int]:
    """Dynamo's graphs and Inductor's FX-graph cache lookups so far in this process."""
    from torch._dynamo.utils import counters

    return {"graphs": int(counters["stats"]["unique_graphs"]), "misses": int(counters["inductor"]["fxgraph_cache_miss"]),
            "hits": int(counters["inductor"]["fxgraph_cache_hit"])}


_BUILT: dict[str, Any] = {}  # engine path -> its compiled model, so the engine job's parity check reuses the build


def build(request: BuildRequest) -> dict[str, Any]:
    """Record the runtime configuration; compiled modes also compile here, once, over the profile."""
    backend, options = request.backend, request.options
    compiled, graph = MODES[backend.mode]
    if options["device"] == "cpu" and graph:
        raise BackendUnavailable(f"{request.shown_as}: {backend.name} needs a CUDA GPU here (torch.device is cpu); fix: use "
                                 f"torch_eager or torch_compile on the CPU.")
    shapes = [request.shapes(p) for p in request.profiles]
    config = {
        "backend": backend.name, "checkpoint": str(request.source), "spec": request.spec.to_dict(),
        "precision": request.precision, "compiled": compiled, "compile_mode": options["compile_mode"], "cuda_graph": graph,
        "channels_last": bool(options["channels_last"]), "device": options["device"],
        "dynamic_axes": dynamic_axes(shapes[0]) if len(shapes) == 1 else {},  # empty: a static engine
    }
    fields = {"mode": backend.name, "compiled": compiled, "cuda_graph": graph, "compile_mode": config["compile_mode"],
              "channels_last": config["channels_last"], "torch_device": config["device"]}
    if not compiled:
        write_engine(request.engine_path, config)
        return fields
    (profile,) = request.profiles
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(options["cache_dir"]).resolve()))
    # On the CPU Inductor writes C++ kernels for torch's thread count: the rule gives this job its benchmark's cores
    prepared = Prepared(config, job_cores())
    before = compile_counters()
    seconds = prepared.warm(profile.min, profile.opt, profile.max, str(request.shown_as))
    after = compile_counters()
    artifacts = _torch().compiler.save_cache_artifacts()  # (bytes, info), or None when nothing was compiled
    blob = artifacts[0] if artifacts else b""
    write_engine(request.engine_path, config, blob)
    _BUILT[str(request.engine_path)] = prepared
    return {**fields, "compile_seconds": seconds, "graphs_compiled": after["graphs"] - before["graphs"],
            "inductor_cache": {"hits": after["hits"] - before["hits"], "misses": after["misses"] - before["misses"]},
            "compiled_bytes": len(blob)}


class Prepared:
    """The model as a runner uses it: on its device, cast, channels-last where it helps, compiled if asked."""

    def __init__(self, config: dict[str, Any], threads: int = 0):
        torch = self.torch = _torch()
        self.config = config
        spec = self.spec = ModelSpec.from_dict(config["spec"])
        if config["device"] == "cpu":
            self.device, self.gpu = torch.device("cpu"), None
            if threads:
                torch.set_num_threads(threads)
        else:
            from ..gpu import get_device

            self.gpu = get_device()
            self.device = self.gpu.device
        precision = config["precision"]
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
        self.dtype = getattr(torch, DTYPES[precision])

        from ..models import build_model, ordered_input_names

        model = build_model(spec, config["checkpoint"])
        self.order = ordered_input_names(model, spec)
        model = model.to(self.device, dtype=self.dtype)
        self.channels_last = config["channels_last"] and any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.axes = {n: {int(a): r for a, r in axes.items()} for n, axes in config.get("dynamic_axes", {}).items()}
        if config["compiled"]:
            import torch._inductor.config as inductor_config

            # Inductor's kernel-compile pool is as wide as the machine unless told: a job compiles on the cores it owns.
            inductor_config.compile_threads = threads or job_cores()
            mode = None if config["compile_mode"] == "default" else config["compile_mode"]
            model = torch.compile(model, mode=mode, dynamic=None if self.axes else False)
        self.model = model
        self.output_names: list[str] = []

    def host(self, array: np.ndarray):
        torch = self.torch
        t = torch.from_numpy(np.ascontiguousarray(array))
        if t.is_floating_point():
            t = t.to(self.dtype)
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t.pin_memory() if self.gpu is not None else t

    def to_device(self, array: np.ndarray):
        return self.host(array).to(self.device, non_blocking=True)

    def forward(self, inputs):
        from ..models import flatten_outputs

        torch = self.torch
        for name, t in zip(self.order, inputs):
            for axis, (lo, hi) in self.axes.get(name, {}).items():
                if t.shape[axis] > 1:  # Dynamo specialises sizes 0 and 1: size 1 gets a graph of its own
                    torch._dynamo.mark_dynamic(t, axis, min=max(2, lo), max=hi)
        with torch.inference_mode():
            names, outputs = flatten_outputs(self.model(*inputs), self.spec)
        self.output_names = names
        return outputs

    def warm(self, batch_min: int, batch_opt: int, batch_max: int, shown_as: str) -> float:
        """Run once at the profile's opt, min and max (compiling, for the compiled modes); the seconds it took.
        A model that torch.compile finds not dynamic over the profile is refused with the ONNX check's sentence."""
        from ..inputs import random_inputs

        points = [(batch_opt, "opt")] + ([(batch_min, "min"), (batch_max, "max")] if self.axes else [])
        start = time.perf_counter()
        for batch, dims in points:
            feeds = random_inputs(self.spec, batch, dims, self.spec.seed, stream="warm")
            try:
                self.forward([self.to_device(feeds[n]) for n in self.order])
            except Exception as exc:
                raise _not_dynamic(exc, shown_as, batch, self) or exc
        if self.gpu is not None:
            self.torch.cuda.synchronize(self.device)
        return time.perf_counter() - start


def _not_dynamic(exc: Exception, shown_as: str, batch: int, prepared: Prepared) -> DynamicExportError | None:
    """torch.compile's 'specialized it to be a constant (N)' as the ONNX check says it: axis, batch, cause, fix."""
    from ..check import SPECIALISED_CAUSE

    text = str(exc)
    found = re.search(r"specialized it to be a constant \((\d+)\)", text)
    if not prepared.axes:  # nothing was marked dynamic: torch's own error stands
        return None
    if not found and "Constraints violated" not in text and "ConstraintViolation" not in type(exc).__name__:
        return None
    named = re.search(r"\['(\w+)'\]\.size\(\)\[(\d+)\]", text)  # Dynamo names the tensor L['x'].size()[0]
    if named and named.group(1) in prepared.axes:
        name, axis = named.group(1), int(named.group(2))
    else:
        name, axes = next(iter(prepared.axes.items()))
        axis = next(iter(axes))
    label = "batch" if axis == 0 else next((d.name for i in prepared.spec.inputs if i.name == name for d in i.dynamic
                                             if d.axis == axis), f"axis {axis}")
    value = f"fixed to {found.group(1)}" if found else "not dynamic over the profile"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("-")]
    detail = (lines[0].lstrip("- ") if lines else text.splitlines()[0]).split(". ")[0][:240]  # torch's first sentence
    return DynamicExportError(
        f"{shown_as}: input {name!r} axis {axis} ({label}) is {value} when torch.compile traces forward() at batch {batch} "
        f"(torch: {detail}), so this model is not dynamic; {SPECIALISED_CAUSE}.")


class Runner(BaseRunner):
    @classmethod
    def machine_identity(cls, options: dict[str, Any]) -> dict[str, str]:
        if options["device"] == "cpu":
            from ..sysinfo import cpu_name

            return {"backend_version": version(), "device": cpu_name(), "compute_capability": ""}
        from ..gpu import get_device

        info = get_device().info
        return {"backend_version": version(), "device": info["name"], "compute_capability": info["compute_capability"]}

    def identity(self) -> dict[str, str]:
        return self.machine_identity({**self.options, "device": self.sidecar["torch_device"]})  # the engine's device

    def load(self) -> None:
        config, compiled = read_engine(self.engine_path)
        self.config = config
        self.options["device"] = config["device"]
        self.compile_s = float("nan")
        self.loaded_counters = {"graphs": 0, "misses": 0, "hits": 0}  # what loading this engine compiled
        prepared = _BUILT.get(self.engine_path)
        if prepared is None:
            if config["compiled"]:
                # An empty Inductor cache holding only the engine's artifacts: what the benchmark runs was compiled
                # by the engine job, or it shows as cache misses. Removed when the process ends.
                cache = tempfile.mkdtemp(prefix="trtpipe-inductor-")
                atexit.register(shutil.rmtree, cache, True)
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
                if compiled:
                    _torch().compiler.load_cache_artifacts(compiled)
            prepared = Prepared(config, self.threads)
            if config["compiled"]:
                before = compile_counters()
                p = self.profile.profile
                self.compile_s = prepared.warm(p.min, p.opt, p.max, self.engine_path)
                self.loaded_counters = {k: v - before[k] for k, v in compile_counters().items()}
        self.prepared = prepared
        self.torch, self.spec, self.gpu, self.device = prepared.torch, prepared.spec, prepared.gpu, prepared.device
        self.order = prepared.order
        if self.gpu is not None:
            self.stream = self.gpu.stream()

    def _forward(self, inputs):
        outputs = self.prepared.forward(inputs)
        self.output_names = self.prepared.output_names
        return outputs

    def run_impl(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        inputs = [self.prepared.to_device(feeds[n]) for n in self.order]
        outputs = self._forward(inputs)
        return [o.float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy() for o in outputs]

    def benchmark_impl(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        before = compile_counters() if self.config["compiled"] else None
        if self.gpu is None:
            from ..timing import measure, summarize

            prepared = [[self.prepared.to_device(f[n]) for n in self.order] for f in feed_sets]
            steps = [lambda inputs=inputs: self._forward(inputs) for inputs in prepared]
            stats = summarize(measure(steps, settings), batch, settings.cv_threshold)
        else:
            from ..gpu import measure_gpu, summarize_gpu

            steps = [self._gpu_step(feeds) for feeds in feed_sets]
            m = measure_gpu(self.gpu, self.stream, steps, settings, bool(self.options["include_transfers"]),
                            self.config["cuda_graph"])
            stats = summarize_gpu(m, batch, settings.cv_threshold)
        return {**stats, **self._compile_columns(before, stats.get("warnings", ""))}

    def _compile_columns(self, before: dict[str, int] | None, warnings: str) -> dict[str, Any]:
        """This process's compile cost and whether timing compiled again: graphs or cache misses beyond the load."""
        if before is None:
            return {}
        now = compile_counters()
        loaded = self.loaded_counters
        notes = [w for w in (warnings,) if w]
        if now["graphs"] > before["graphs"]:
            notes.append(f"recompiled: {now['graphs'] - before['graphs']} graph(s) compiled while timing this batch "
                         f"(outside the graph the engine holds); its latency may include them")
        if loaded["misses"]:
            notes.append(f"compiled here: {loaded['misses']} Inductor cache miss(es) when loading the engine (its "
                         f"compiled code did not match); rebuild the engine on this machine")
        return {"compile_s": self.compile_s, "graphs_compiled": now["graphs"],
                "inductor_cache_misses": now["misses"], "warnings": "; ".join(notes)}

    def _gpu_step(self, feeds: dict[str, np.ndarray]):
        """Pinned host inputs, static device inputs; compute keeps its outputs for the download.
        The functions enqueue on the current stream: measure_gpu sets it to self.stream for the whole timing."""
        from ..gpu import GpuStep

        torch = self.torch
        host = {n: self.prepared.host(feeds[n]) for n in self.order}
        with self.gpu.use(self.stream):
            dev = {n: torch.empty_like(host[n], device=self.device) for n in self.order}
        state: dict[str, Any] = {}

        def upload() -> None:
            for n in self.order:
                dev[n].copy_(host[n], non_blocking=True)

        def compute() -> None:
            state["outputs"] = self._forward([dev[n] for n in self.order])

        def download() -> None:
            if "host" not in state:  # pinned output buffers, once the output shapes are known
                state["host"] = [torch.empty_like(o, device="cpu").pin_memory() for o in state["outputs"]]
            for h, o in zip(state["host"], state["outputs"]):
                h.copy_(o, non_blocking=True)

        return GpuStep(upload, compute, download)

    def describe_impl(self) -> dict[str, Any]:
        if self.gpu is None:
            return cpu_description(self.torch.get_num_threads(), transfers_included=False)
        return gpu_description(self.gpu.info, bool(self.options["include_transfers"]), self.config["cuda_graph"])
