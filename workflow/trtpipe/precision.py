"""Reduced precision expressed in the ONNX itself, the way TensorRT 11 expects (strong typing):

- fp16 / bf16: NVIDIA ModelOpt's ONNX AutoCast, which keeps numerically sensitive nodes in fp32 and
  inserts the casts;
- int8 / fp8: explicit quantization, Q/DQ nodes inserted by ModelOpt's ONNX PTQ, calibrated on the
  user's sample inputs (.npz) or, failing that, on seeded random inputs (flagged loudly).

Each precision ONNX is checked against PyTorch at per-precision tolerances; a failure is recorded
(and excluded from "best configuration" by the report), not raised: a user asks for int8 to see
what it costs, and the answer "too much" is a result.
"""

from __future__ import annotations

import collections
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TrtpipeError
from .inputs import NUMPY_DTYPES, random_inputs
from .io import atomic_path
from .parity import parity_rows
from .reference import Reference
from .spec import ModelSpec, Variant

log = logging.getLogger(__name__)

MIXED = ("fp16", "bf16")
QUANTIZED = ("int8", "fp8")
PRECISIONS = ("fp32", *MIXED, *QUANTIZED)


def calibration_inputs(spec: ModelSpec, batch: int | None, data_path: str | None, samples: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Calibration arrays (batch axis first, a multiple of a static variant's batch) and their provenance."""
    if data_path:
        path = Path(data_path)
        if not path.exists():
            raise TrtpipeError(
                f"model {spec.name}: calibration data {data_path} not found; fix: correct models.{spec.name}.calibration_data "
                f"or remove it to calibrate on random inputs (accuracy then says nothing)."
            )
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        for inp in spec.inputs:
            if inp.name not in arrays:
                raise TrtpipeError(
                    f"model {spec.name}: calibration data {data_path} has no array {inp.name!r} (it has {', '.join(arrays)}); "
                    f"fix: save one array per input, named like the input."
                )
            got = arrays[inp.name].shape[1:]
            if tuple(got) != inp.shape:
                raise TrtpipeError(
                    f"model {spec.name}: calibration array {inp.name!r} in {data_path} has samples of shape {list(got)}, "
                    f"but the input's shape is {list(inp.shape)}; fix: stack samples of that shape along axis 0."
                )
        arrays = {i.name: arrays[i.name].astype(NUMPY_DTYPES[i.dtype]) for i in spec.inputs}
        count = min(len(a) for a in arrays.values())
        source = {"source": "data", "path": str(data_path), "samples": count}
    else:
        count = samples
        arrays = random_inputs(spec, samples, "opt", seed, stream="calibration")
        source = {"source": "random", "samples": samples, "seed": seed}
    if batch:  # a static graph calibrates whole batches: cut to a multiple, or repeat when too few
        usable = max(batch, count - count % batch)
        if count < batch:  # said, in the log and in the report's calibration column, never repeated silently
            source["repeated_to"] = usable
            where = (f"calibration data {data_path} has" if data_path else "the random calibration set has")
            fix = (f"models.{spec.name}.calibration_data" if data_path else "precision.calibration_samples")
            log.warning("model %s: %s %d sample(s), fewer than the static batch %d, so they are repeated to fill one "
                        "batch (the ranges come from %d sample(s) only); fix: give at least %d samples (a few hundred are "
                        "usual) in %s.", spec.name, where, count, batch, count, batch, fix)
        index = np.arange(usable) % count
        arrays = {k: v[index] for k, v in arrays.items()}
    else:
        arrays = {k: v[:count] for k, v in arrays.items()}
    return arrays, source


def _hide_tensorrt_from_modelopt() -> None:
    """ModelOpt's PTQ, when `import tensorrt` works, parses the graph with TensorRT to find plugin layers.
    trtpipe supports no TensorRT plugins, and a precision ONNX must not depend on whether TensorRT happens
    to be installed where this job runs: the same conversion on every machine (calibration runs on the CPU)."""
    if "tensorrt" not in sys.modules:
        sys.modules["tensorrt"] = None  # makes `import tensorrt` raise ImportError in this process


def _autocast(in_path: str, precision: str, options: dict[str, Any]):
    _hide_tensorrt_from_modelopt()
    from modelopt.onnx.autocast import convert_to_mixed_precision

    model = convert_to_mixed_precision(
        onnx_path=in_path,
        low_precision_type=precision,
        keep_io_types=options.get("keep_io_types", True),
        op_types_to_exclude=options.get("op_types_to_exclude") or None,
    )
    # AutoCast leaves value_info from before its casts; ONNX Runtime then plans buffers with the
    # stale shapes ("Shape mismatch attempting to re-use buffer"). Shape inference redoes it.
    del model.graph.value_info[:]
    return model


def _quantize(in_path: str, out_path: Path, precision: str, calibration: dict[str, np.ndarray], options: dict[str, Any]) -> None:
    _hide_tensorrt_from_modelopt()
    from modelopt.onnx.quantization import quantize

    quantize(
        in_path,
        quantize_mode=precision,
        calibration_data=calibration,
        calibration_method=options.get("calibration_method", "max"),
        calibration_eps=["cpu"],  # calibrate with ONNX Runtime on the CPU: the same result on any machine
        op_types_to_exclude=options.get("op_types_to_exclude") or None,
        high_precision_dtype="fp32",
        output_path=str(out_path),
        log_level="WARNING",
    )


def convert(
    in_path: str | Path,
    out_path: str | Path,
    spec: ModelSpec,
    variant: Variant,
    precision: str,
    options: dict[str, Any],
    calibration_data: str | None = None,
) -> dict[str, Any]:
    """Write the precision ONNX; returns its stats (method, what changed, calibration provenance)."""
    import onnx

    if precision not in MIXED + QUANTIZED:
        raise TrtpipeError(f"{in_path}: precision {precision!r} has no conversion; fix: use one of {', '.join(MIXED + QUANTIZED)}.")
    start = time.perf_counter()
    stats: dict[str, Any] = {"model": spec.name, "variant": variant.name, "precision": precision, "warnings": []}
    with atomic_path(out_path, suffix=".tmp.onnx") as tmp:
        try:
            if precision in MIXED:
                model = _autocast(str(in_path), precision, options)
                onnx.save(model, str(tmp))
                stats["method"] = f"ModelOpt AutoCast ({'fp32 I/O' if options.get('keep_io_types', True) else f'{precision} I/O'})"
            else:
                batch = variant.batch
                calibration, source = calibration_inputs(spec, batch, calibration_data, options.get("calibration_samples", 32), spec.seed)
                stats["calibration"] = source
                if source["source"] == "random":
                    stats["warnings"].append(
                        f"{precision} calibrated on {source['samples']} seeded random inputs, not real data: its accuracy "
                        f"numbers say nothing about accuracy on real inputs (give models.{spec.name}.calibration_data)"
                    )
                _quantize(str(in_path), tmp, precision, calibration, options)
                stats["method"] = f"ModelOpt ONNX PTQ ({options.get('calibration_method', 'max')} calibration)"
        except TrtpipeError:
            raise
        except Exception as exc:
            log.exception("precision conversion failed")
            raise TrtpipeError(
                f"{in_path}: {precision} conversion with ModelOpt failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); "
                f"fix: exclude the offending op types with precision.op_types_to_exclude, or drop {precision} for this model."
            ) from exc
        converted = onnx.load(str(tmp))
    ops = collections.Counter(n.op_type for n in converted.graph.node)
    stats.update(seconds=time.perf_counter() - start, nodes=sum(ops.values()),
                 casts=ops.get("Cast", 0), quantize_nodes=ops.get("QuantizeLinear", 0),
                 dequantize_nodes=ops.get("DequantizeLinear", 0))
    if precision in MIXED:
        low = {"fp16": onnx.TensorProto.FLOAT16, "bf16": onnx.TensorProto.BFLOAT16}[precision]
        stats["low_precision_initializers"] = sum(i.data_type == low for i in converted.graph.initializer)
        stats["fp32_initializers"] = sum(i.data_type == onnx.TensorProto.FLOAT for i in converted.graph.initializer)
    elif not stats["quantize_nodes"]:
        stats["warnings"].append(f"ModelOpt inserted no Q/DQ nodes: nothing in this graph was quantized to {precision}")
    for w in stats["warnings"]:
        log.warning("%s", w)
    log.info("%s: %s via %s in %.2fs", out_path, precision, stats["method"], stats["seconds"])
    return stats


def check_precision(onnx_path: str | Path, spec: ModelSpec, reference_path: str | Path, variant: Variant, precision: str,
                    tolerance: dict[str, float]) -> tuple[list[dict[str, Any]], str]:
    """Parity of a precision ONNX against PyTorch; returns (rows, which runtime evaluated it)."""
    from .ort_session import OnnxEvaluator

    evaluator = OnnxEvaluator(onnx_path)
    reference = Reference(reference_path)
    cases = reference.cases() if variant.is_dynamic else [
        c for c in reference.cases_for_batch(variant.batch) if c.error is None]
    labels = {"model": spec.name, "stage": "precision", "variant": variant.name, "precision": precision,
              "backend": "onnxruntime" if evaluator.runtime.startswith("onnxruntime") else "onnx.reference", "profile": ""}
    rows: list[dict[str, Any]] = []
    for case in cases:
        outputs = evaluator(case.inputs)
        rows += parity_rows(labels, case.id, case.batch, evaluator.output_names, outputs, case.outputs, tolerance,
                            reference.constant_flags)
    worst = max((r["max_abs_err"] for r in rows), default=0.0)
    log.info("%s parity over %d case(s) with %s: max abs err %.3g, %s", precision, len(cases), evaluator.runtime, worst,
             "pass" if all(r["passed"] for r in rows) else "FAIL")
    return rows, evaluator.runtime
