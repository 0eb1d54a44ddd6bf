"""Simplify an ONNX graph (onnxsim, falling back to onnxslim) and check it still matches PyTorch."""

from __future__ import annotations

import collections
import logging
import time
import traceback
from pathlib import Path
from typing import Any

from .check import check_export, graph_dims
from .errors import TrtpipeError
from .io import atomic_path
from .spec import ModelSpec, Variant

log = logging.getLogger(__name__)


def _onnxsim(graph):
    import onnxsim

    simplified, ok = onnxsim.simplify(graph)
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified model")
    return simplified


def _onnxslim(graph):
    import onnxslim

    return onnxslim.slim(graph)


TOOLS = {"onnxsim": _onnxsim, "onnxslim": _onnxslim, "none": lambda graph: graph}
FALLBACK = {"onnxsim": "onnxslim"}


def simplify(
    in_path: str | Path,
    out_path: str | Path,
    spec: ModelSpec,
    reference_path: str | Path,
    variant: Variant,
    tool: str,
    tolerance: dict[str, float],
    dummy_batch: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import onnx

    graph = onnx.load(str(in_path))
    before = collections.Counter(n.op_type for n in graph.graph.node)
    used, start = tool, time.perf_counter()
    try:
        simplified = TOOLS[tool](graph)
    except Exception as exc:
        if tool not in FALLBACK:
            raise TrtpipeError(f"{in_path}: {tool} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); fix: set simplify.tool to another tool or none.") from exc
        used = FALLBACK[tool]
        log.warning("%s failed (%s); falling back to %s\n%s", tool, exc, used, traceback.format_exc())
        simplified = TOOLS[used](onnx.load(str(in_path)))
    seconds = time.perf_counter() - start
    after = collections.Counter(n.op_type for n in simplified.graph.node)

    if graph_dims(simplified) != graph_dims(graph):
        raise TrtpipeError(
            f"{in_path}: {used} changed the input dims from {graph_dims(graph)} to {graph_dims(simplified)}; "
            f"fix: set simplify.tool to another tool or none."
        )
    with atomic_path(out_path) as tmp:
        onnx.save(simplified, str(tmp))
        rows, report = check_export(tmp, spec, reference_path, variant, tolerance, dummy_batch, shown_as=out_path,
                                    stage="simplify")
    log.info("%s: %d -> %d nodes with %s in %.2fs", out_path, sum(before.values()), sum(after.values()), used, seconds)
    stats = {
        "model": spec.name, "variant": variant.name, "tool": used, "requested_tool": tool, "seconds": seconds,
        "nodes_before": sum(before.values()), "nodes_after": sum(after.values()),
        "ops_before": dict(sorted(before.items())), "ops_after": dict(sorted(after.items())),
        "suspicious_reshapes": report["suspicious_reshapes"],
    }
    return rows, stats
