"""PyTorch backend: the baseline a user would otherwise pick, on the same GPU, batches and profiles.

Modes (one backend name each, so a sweep picks them like backends): `torch_eager`, `torch_compile`
(torch.compile, default mode or `torch.compile_mode`), and CUDA-graph replay of either
(`torch_eager_graph`, `torch_compile_graph`). Precisions: fp32 (TF32 off), tf32, fp16, bf16 (the model
is cast; integer inputs stay integers), channels-last for 4-D inputs of conv nets.

The "engine" is a recorded runtime configuration (JSON), not a compiled artifact: torch.compile's own
on-disk cache (TORCHINDUCTOR_CACHE_DIR) makes reruns cheap, and what is timed is the JIT path users
run. Its sidecar pins the torch version and device, like any engine. Eager mode also runs on the CPU
(`torch.device: cpu`), which is how CI exercises this backend for real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable
from ..spec import ModelSpec
from .base import BuildRequest, Runner as BaseRunner, cpu_description, gpu_description

MODES = {  # the registry's mode -> (compiled, CUDA graph)
    "eager": (False, False),
    "compile": (True, False),
    "eager_graph": (False, True),
    "compile_graph": (True, True),
}
DTYPES = {"fp32": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _torch():
    import torch

    return torch


def version() -> str:
    return _torch().__version__


def identity(options: dict[str, Any]) -> dict[str, str]:
    if options["device"] == "cpu":
        from ..sysinfo import cpu_name

        return {"backend_version": version(), "device": cpu_name(), "compute_capability": ""}
    from ..gpu import get_device

    info = get_device().info
    return {"backend_version": version(), "device": info["name"], "compute_capability": info["compute_capability"]}


def build(request: BuildRequest) -> dict[str, Any]:
    """Record the runtime configuration; the model is built and checked by the runner (parity)."""
    backend, options = request.backend, request.options
    compiled, graph = MODES[backend.mode]
    if options["device"] == "cpu" and (graph or compiled):
        raise BackendUnavailable(f"{request.engine_path}: {backend.name} needs a CUDA GPU here (torch.device is cpu); fix: use "
                                 f"torch_eager on the CPU.")
    shapes = [request.shapes(p) for p in request.profiles]
    config = {
        "backend": backend.name, "checkpoint": str(request.source), "spec": request.spec.to_dict(),
        "precision": request.precision, "compiled": compiled, "compile_mode": options["compile_mode"], "cuda_graph": graph,
        "channels_last": bool(options["channels_last"]), "device": options["device"],
        "dynamic": len(shapes) == 1 and any(lo != hi for lo, _, hi in shapes[0].values()),
    }
    Path(request.engine_path).write_text(json.dumps(config, indent=2, sort_keys=True))
    return {"mode": backend.name, "compiled": compiled, "cuda_graph": graph, "compile_mode": config["compile_mode"],
            "channels_last": config["channels_last"], "torch_device": config["device"]}


class Runner(BaseRunner):
    def identity(self) -> dict[str, str]:
        return identity({**self.options, "device": self.sidecar["torch_device"]})

    def load(self) -> None:
        torch = self.torch = _torch()
        self.config = json.loads(Path(self.engine_path).read_text())
        self.options["device"] = self.config["device"]
        spec = self.spec = ModelSpec.from_dict(self.config["spec"])
        if self.config["device"] == "cpu":
            self.device, self.gpu = torch.device("cpu"), None
            if self.threads:
                torch.set_num_threads(self.threads)
        else:
            from ..gpu import get_device

            self.gpu = get_device()
            self.device = self.gpu.device
            self.stream = self.gpu.stream()
        precision = self.config["precision"]
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
        self.dtype = getattr(torch, DTYPES[precision])

        from ..models import build_model, ordered_input_names

        model = build_model(spec, self.config["checkpoint"])
        self.order = ordered_input_names(model, spec)
        model = model.to(self.device, dtype=self.dtype)
        self.channels_last = self.config["channels_last"] and any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.config["compiled"]:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(self.options["cache_dir"]).resolve()))
            mode = None if self.config["compile_mode"] == "default" else self.config["compile_mode"]
            model = torch.compile(model, mode=mode, dynamic=self.config["dynamic"] or None)
        self.model = model

    def _to_device(self, array: np.ndarray):
        return self._host(array).to(self.device, non_blocking=True)

    def _forward(self, inputs):
        from ..models import flatten_outputs

        with self.torch.inference_mode():
            names, outputs = flatten_outputs(self.model(*inputs), self.spec)
        self.output_names = names
        return outputs

    def run_impl(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        inputs = [self._to_device(feeds[n]) for n in self.order]
        outputs = self._forward(inputs)
        return [o.float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy() for o in outputs]

    def benchmark_impl(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        if self.gpu is None:
            from ..timing import measure, summarize

            prepared = [[self._to_device(f[n]) for n in self.order] for f in feed_sets]
            steps = [lambda inputs=inputs: self._forward(inputs) for inputs in prepared]
            return summarize(measure(steps, settings), batch, settings.cv_threshold)
        from ..gpu import measure_gpu, summarize_gpu

        steps = [self._gpu_step(feeds) for feeds in feed_sets]
        m = measure_gpu(self.gpu, self.stream, steps, settings, bool(self.options["include_transfers"]),
                        self.config["cuda_graph"])
        return summarize_gpu(m, batch, settings.cv_threshold)

    def _gpu_step(self, feeds: dict[str, np.ndarray]):
        """Pinned host inputs, static device inputs; compute keeps its outputs for the download.
        The functions enqueue on the current stream: measure_gpu sets it to self.stream for the whole timing."""
        from ..gpu import GpuStep

        torch = self.torch
        host = {n: self._host(feeds[n]) for n in self.order}
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

    def _host(self, array: np.ndarray):
        torch = self.torch
        t = torch.from_numpy(np.ascontiguousarray(array))
        if t.is_floating_point():
            t = t.to(self.dtype)
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t.pin_memory() if self.gpu is not None else t

    def describe_impl(self) -> dict[str, Any]:
        if self.gpu is None:
            return cpu_description(self.torch.get_num_threads(), transfers_included=False)
        return gpu_description(self.gpu.info, bool(self.options["include_transfers"]), self.config["cuda_graph"])
