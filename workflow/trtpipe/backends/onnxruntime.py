"""ONNX Runtime backend: the engine is the optimized model ONNX Runtime saves for this machine.

Like a TensorRT engine it is tied to where it was built (graph optimizations at level `all` emit
CPU-specific layouts), and it carries a profile: fixed dims are baked into the graph when
min == max, and the runner refuses shapes outside min/max as TensorRT would.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ..errors import TrtpipeError
from ..machine import job_cores
from .base import BuildRequest, Runner as BaseRunner, cpu_description
from ..ort_session import output_names, run_session, session, version

log = logging.getLogger(__name__)


def bake_fixed_dims(graph, shapes) -> list[str]:
    """min == max: write the size into the graph's input so ONNX Runtime can fold shape arithmetic."""
    baked = []
    for value in graph.graph.input:
        if value.name not in shapes:
            continue
        lo, _, hi = shapes[value.name]
        dims = value.type.tensor_type.shape.dim
        for axis, (a, b) in enumerate(zip(lo, hi)):
            if a == b and axis < len(dims) and not dims[axis].HasField("dim_value"):
                dims[axis].dim_value = a
                baked.append(f"{value.name}[{axis}]={a}")
    return baked


def build(request: BuildRequest) -> dict[str, Any]:
    """Save ONNX Runtime's optimized model for one profile; returns the sidecar's backend fields."""
    import onnx

    if len(request.profiles) != 1:
        raise TrtpipeError(f"{request.source}: an ONNX Runtime engine holds one profile, not {len(request.profiles)}; "
                           f"fix: build one per profile.")
    graph = onnx.load(str(request.source))
    baked = bake_fixed_dims(graph, request.shapes(request.profiles[0]))
    level = request.options["optimization_level"]
    start = time.perf_counter()
    session(graph.SerializeToString(), level=level, threads=request.options["intra_op_threads"], save_to=request.engine_path)
    build_s = time.perf_counter() - start
    log.info("saved ONNX Runtime model optimized at level %s (%s) in %.2fs", level, ", ".join(baked) or "no dims baked", build_s)
    return {"optimization_level": level, "baked_dims": baked, "build_seconds": build_s,
            "providers": ["CPUExecutionProvider"]}


class Runner(BaseRunner):
    """Runs a saved engine within its profile; host-clock timing of whole calls."""

    @classmethod
    def machine_identity(cls, options: dict[str, Any]) -> dict[str, str]:
        from ..sysinfo import cpu_name

        return {"backend_version": version(), "device": cpu_name()}

    def load(self) -> None:
        # An explicit intra-op count wins over the cores the job owns.
        self.threads = self.options.get("intra_op_threads") or self.threads or job_cores()
        # Already optimized when it was built: loading it again must not re-run the optimizers.
        self.session = session(self.engine_path, level="disabled", threads=self.threads)
        self.output_names = output_names(self.session)

    def run_impl(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return run_session(self.session, feeds, self.engine_path)

    def benchmark_impl(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        """Inputs and outputs live on the host: what a CPU user pays."""
        from ..timing import measure, summarize

        run = self.session.run
        steps = [lambda feeds=feeds: run(None, feeds) for feeds in feed_sets]
        return summarize(measure(steps, settings), batch, settings.cv_threshold)

    def describe_impl(self) -> dict[str, Any]:
        return cpu_description(self.threads)
