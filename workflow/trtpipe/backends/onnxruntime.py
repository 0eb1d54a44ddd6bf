"""ONNX Runtime backend: the engine is the optimized model ONNX Runtime saves for this machine.

Like a TensorRT engine it is tied to where it was built (graph optimizations at level `all` emit
CPU-specific layouts), and it carries a profile: fixed dims are baked into the graph when
min == max, and the runner refuses shapes outside min/max as TensorRT would.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnxruntime as ort

from ..errors import TrtpipeError
from ..spec import Shape, check_shapes_in_profile

log = logging.getLogger(__name__)

NAME = "onnxruntime"
ENGINE_SUFFIX = ".onnx"
LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def version() -> str:
    return ort.__version__


def identity() -> dict[str, str]:
    """What makes an engine invalid on another machine."""
    from ..sysinfo import cpu_name

    return {"backend_version": version(), "device": cpu_name()}


def session(model: str | Path | bytes, level: str = "basic", threads: int = 0, save_to: str | Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors reach us as exceptions; keep ORT's own log quiet
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


class RunFailure(TrtpipeError):
    """ONNX Runtime failed while running a node."""

    def __init__(self, message: str, node: str | None, op_type: str | None):
        super().__init__(message)
        self.node = node
        self.op_type = op_type


def run_session(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], what: str) -> list[np.ndarray]:
    try:
        return sess.run(None, feeds)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        text = str(exc)
        m = re.search(r"running (\w+) node\. Name:'([^']*)'", text)
        op_type, node = (m.group(1), m.group(2)) if m else (None, None)
        detail = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text).splitlines()[0]
        detail = detail.split("Status Message: ", 1)[-1]
        where = f" in node {node!r} ({op_type})" if node else ""
        raise RunFailure(f"{what}: ONNX Runtime failed{where}: {detail[:300]}", node, op_type) from exc


def output_names(sess: ort.InferenceSession) -> list[str]:
    return [o.name for o in sess.get_outputs()]


def build(onnx_path: str | Path, engine_path: str | Path, spec, profile, shapes: dict[str, tuple[Shape, Shape, Shape]],
          precision: str, options: dict[str, Any]) -> dict[str, Any]:
    """Save ONNX Runtime's optimized model for this profile; returns the sidecar's backend fields."""
    import onnx

    from . import PRECISIONS

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

    def __init__(self, engine_path: str | Path, sidecar: dict[str, Any], threads: int = 0):
        self.engine_path = str(engine_path)
        self.profile = sidecar["profile"]["name"]
        self.ranges = {n: tuple(tuple(s) for s in v) for n, v in sidecar["profile"]["shapes"].items()}
        self.threads = threads
        # Already optimized when it was built: loading it again must not re-run the optimizers.
        self.session = session(engine_path, level="disabled", threads=threads)
        self.output_names = output_names(self.session)

    def check(self, feeds: dict[str, np.ndarray]) -> None:
        check_shapes_in_profile({n: a.shape for n, a in feeds.items()}, self.ranges, self.engine_path, self.profile)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.check(feeds)
        return run_session(self.session, feeds, self.engine_path)

    def timed_step(self, feeds: dict[str, np.ndarray]) -> Callable[[], None]:
        """One inference on host inputs, outputs back on the host (what a CPU user pays)."""
        self.check(feeds)
        run = self.session.run
        return lambda: run(None, feeds)

    def describe(self) -> dict[str, Any]:
        from ..sysinfo import cpu_name

        return {"device": cpu_name(), "threads": self.threads, "transfers_included": True, "cuda_graph": False,
                "backend_version": version()}


def load(engine_path: str | Path, sidecar: dict[str, Any], threads: int = 0) -> Runner:
    return Runner(engine_path, sidecar, threads)


class OnnxEvaluator:
    """Runs an ONNX file on the CPU for parity checks, whatever its precision.

    ONNX Runtime first; with its graph optimizations off where they reject a graph (fp8 Q/DQ fusion);
    ONNX's reference evaluator where ONNX Runtime has no CPU kernel at all (bf16). `runtime` says
    which one ran, so accuracy rows can say how their numbers were obtained.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._run = None
        self.runtime = ""
        for level in ("basic", "disabled"):
            try:
                sess = session(self.path, level=level)
            except Exception as exc:  # ORT raises its own exception types for unsupported graphs
                log.info("ONNX Runtime (optimizations %s) cannot load %s: %s", level, self.path, str(exc).splitlines()[0][:200])
                continue
            self.output_names = output_names(sess)
            self._run = lambda feeds, s=sess: run_session(s, feeds, self.path)
            self.runtime = f"onnxruntime {version()} (optimizations {level})"
            return
        from onnx.reference import ReferenceEvaluator

        reference = ReferenceEvaluator(self.path)
        self.output_names = list(reference.output_names)
        self._run = lambda feeds: [np.asarray(o) for o in reference.run(None, feeds)]
        self.runtime = "onnx.reference (no ONNX Runtime CPU kernels for this graph)"
        log.warning("%s: evaluated with ONNX's reference evaluator (slow, exact)", self.path)

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._run(feeds)
