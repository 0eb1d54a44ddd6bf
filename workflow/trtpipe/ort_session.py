"""Running an ONNX file with ONNX Runtime on the CPU: sessions, readable failures, and an evaluator for
parity checks of any precision. Used by the export check, simplify and precision stages, and by the
ONNX Runtime engine backend. Not a backend itself (it builds and times no engine): the pipeline's own ONNX
evaluator, as onnx is its ONNX reader, and the one module outside backends/ that imports onnxruntime."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .errors import TrtpipeError
from .machine import job_cores

log = logging.getLogger(__name__)

LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def version() -> str:
    return ort.__version__


def session(model: str | Path | bytes, level: str = "basic", threads: int = 0, save_to: str | Path | None = None) -> ort.InferenceSession:
    """threads: intra-op threads; 0, the cores this job owns (ONNX Runtime's own default, every physical core,
    oversubscribes a machine whose other cores run other jobs)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.intra_op_num_threads = threads or job_cores()
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
