"""ONNX Runtime backend: the engine is the optimized model ONNX Runtime saves for this machine.

Like a TensorRT engine it is tied to where it was built (graph optimizations at level `all` emit
CPU-specific layouts), and it carries a profile: fixed dims are baked into the graph when
min == max, and the runner refuses shapes outside min/max as TensorRT would.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrtpipeError
from ..identity import refuse_foreign_engine
from ..spec import Shape, check_shapes_in_profile
from .ort_session import output_names, run_session, session, version

log = logging.getLogger(__name__)

NAME = "onnxruntime"
ENGINE_SUFFIX = ".onnx"


def identity(options: dict[str, Any] | None = None) -> dict[str, str]:
    """What makes an engine invalid on another machine."""
    from ..sysinfo import cpu_name

    return {"backend_version": version(), "device": cpu_name()}


def build(onnx_path: str | Path, engine_path: str | Path, spec, profiles, shapes: list[dict[str, tuple[Shape, Shape, Shape]]],
          precision: str, options: dict[str, Any]) -> dict[str, Any]:
    """Save ONNX Runtime's optimized model for one profile; returns the sidecar's backend fields."""
    import onnx

    from . import PRECISIONS

    if len(shapes) != 1:
        raise TrtpipeError(f"{onnx_path}: an ONNX Runtime engine holds one profile, not {len(shapes)}; fix: build one per profile.")
    shapes = shapes[0]

    if precision not in PRECISIONS[NAME]:
        raise TrtpipeError(
            f"{onnx_path}: ONNX Runtime's CPU provider has no {precision} kernels; fix: build {precision} with the "
            f"tensorrt backend, or use one of {', '.join(PRECISIONS[NAME])} here."
        )
    graph = onnx.load(str(onnx_path))
    baked = []
    for value in graph.graph.input:
        if value.name not in shapes:
            continue
        lo, _, hi = shapes[value.name]
        dims = value.type.tensor_type.shape.dim
        for axis, (a, b) in enumerate(zip(lo, hi)):
            if a == b and axis < len(dims) and not dims[axis].HasField("dim_value"):
                dims[axis].dim_value = a  # min == max: bake the size so ORT can fold shape arithmetic
                baked.append(f"{value.name}[{axis}]={a}")
    level = options.get("optimization_level", "all")
    engine_path = Path(engine_path)
    start = time.perf_counter()
    session(graph.SerializeToString(), level=level, threads=options.get("intra_op_threads", 0), save_to=engine_path)
    build_s = time.perf_counter() - start
    log.info("saved ONNX Runtime model optimized at level %s (%s) in %.2fs", level, ", ".join(baked) or "no dims baked", build_s)
    return {"optimization_level": level, "baked_dims": baked, "build_seconds": build_s,
            "providers": ["CPUExecutionProvider"]}


class Runner:
    """Runs a saved engine within its profile."""

    def __init__(self, engine_path: str | Path, sidecar: dict[str, Any], threads: int = 0, profile: str | None = None,
                 options: dict[str, Any] | None = None):
        refuse_foreign_engine(engine_path, sidecar, identity(), "ONNX Runtime")
        self.engine_path = str(engine_path)
        (entry,) = sidecar["profiles"]
        self.profile = entry["name"]
        self.ranges = {n: tuple(tuple(s) for s in v) for n, v in entry["shapes"].items()}
        self.threads = threads
        # Already optimized when it was built: loading it again must not re-run the optimizers.
        self.session = session(engine_path, level="disabled", threads=threads)
        self.output_names = output_names(self.session)

    def check(self, feeds: dict[str, np.ndarray]) -> None:
        check_shapes_in_profile({n: a.shape for n, a in feeds.items()}, self.ranges, self.engine_path, self.profile)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.check(feeds)
        return run_session(self.session, feeds, self.engine_path)

    def benchmark(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        """Host-clock timing of whole calls: inputs and outputs live on the host (what a CPU user pays)."""
        from ..timing import measure, summarize

        for feeds in feed_sets:
            self.check(feeds)
        run = self.session.run
        steps = [lambda feeds=feeds: run(None, feeds) for feeds in feed_sets]
        return summarize(measure(steps, settings), batch, settings.cv_threshold)

    def describe(self) -> dict[str, Any]:
        from ..sysinfo import cpu_name

        return {"device": cpu_name(), "threads": self.threads, "transfers_included": True, "cuda_graph": False,
                "backend_version": version()}


def load(engine_path: str | Path, sidecar: dict[str, Any], threads: int = 0, profile: str | None = None,
         options: dict[str, Any] | None = None) -> Runner:
    return Runner(engine_path, sidecar, threads, profile, options)
