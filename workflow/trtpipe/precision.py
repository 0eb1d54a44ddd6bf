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
import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TrtpipeError
from .defaults import with_defaults
from .inputs import NUMPY_DTYPES, random_inputs
from .io import atomic_path
from .parity import parity_rows
from .reference import Reference
from .samples import CALIBRATION_LABELS
from .spec import ModelSpec, Variant

log = logging.getLogger(__name__)

MIXED = ("fp16", "bf16")
QUANTIZED = ("int8", "fp8")
PRECISIONS = ("fp32", *MIXED, *QUANTIZED)


def load_samples(spec: ModelSpec, data_path: str) -> dict[str, np.ndarray]:
    """The user's sample arrays (one per input, named like it, samples on axis 0), checked and cast to the inputs' dtypes;
    with their labels under samples.CALIBRATION_LABELS where the file has them."""
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
    labels = arrays.get(CALIBRATION_LABELS)
    arrays = {i.name: arrays[i.name].astype(NUMPY_DTYPES[i.dtype]) for i in spec.inputs}
    count = min(len(a) for a in arrays.values())
    if labels is not None and len(labels) >= count:  # the labels of a calibration file trtpipe wrote
        arrays[CALIBRATION_LABELS] = labels
    return {k: v[:count] for k, v in arrays.items()}


def whole_batches(arrays: dict[str, np.ndarray], batch: int | None, spec: ModelSpec | None = None,
                  source: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """A static graph calibrates whole batches: cut to a multiple of its batch, or repeat when too few (said, in the
    log and in the source's `repeated_to`, never repeated silently)."""
    if not batch:
        return arrays
    count = min(len(a) for a in arrays.values())
    usable = max(batch, count - count % batch)
    if count < batch and spec is not None and source is not None:
        source["repeated_to"] = usable
        from_data = source.get("source") == "data"
        where = (f"calibration data {source.get('path')} has, after the evaluation samples are put aside," if from_data
                 else "the random calibration set has")
        fix = f"models.{spec.name}.calibration_data" if from_data else "precision.calibration_samples"
        log.warning("model %s: %s %d sample(s), fewer than the static batch %d, so they are repeated to fill one "
                    "batch (the ranges come from %d sample(s) only); fix: give at least %d samples (a few hundred are "
                    "usual) in %s.", spec.name, where, count, batch, count, batch, fix)
    index = np.arange(usable) % count
    return {k: v[index] for k, v in arrays.items()}


def calibration_inputs(spec: ModelSpec, batch: int | None, data_path: str | None, samples: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Calibration arrays (batch axis first, a multiple of a static variant's batch) and their provenance."""
    calibration, _, _, source = split_inputs(spec, data_path, {"calibration_samples": samples}, {}, seed)
    return whole_batches(calibration, batch, spec, source), source


def split_inputs(spec: ModelSpec, data_path: str | None, options: dict[str, Any], quantize_options: dict[str, Any],
                 seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None, dict[str, Any]]:
    """Calibration and evaluation samples, never the same ones, the evaluation samples' labels (None without), and
    their provenance: the user's data split in two (quantize.calibration_share calibrates, the rest evaluates),
    else seeded random inputs of two streams."""
    from .quantize import split_samples

    q = with_defaults("quantize", quantize_options)
    labels = None
    if data_path:
        calibration, evaluation = split_samples(load_samples(spec, data_path), q["calibration_share"])
        calibration.pop(CALIBRATION_LABELS, None)
        labels = evaluation.pop(CALIBRATION_LABELS, None)
        source = {"source": "data", "path": str(data_path), "labelled": labels is not None}
    else:
        calibration = random_inputs(spec, options.get("calibration_samples", 32), "opt", seed, stream="calibration")
        evaluation = random_inputs(spec, q["evaluation_samples"], "opt", seed, stream="evaluation")
        source = {"source": "random", "seed": seed}
    count = lambda arrays: min(len(a) for a in arrays.values())  # noqa: E731
    return calibration, evaluation, labels, {**source, "samples": count(calibration), "evaluation_samples": count(evaluation)}


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
    import shutil
    import tempfile

    _hide_tensorrt_from_modelopt()
    from modelopt.onnx.quantization import quantize

    # ModelOpt 0.47 writes the ONNX file it is given back (same bytes, a new mtime: under a running sweep Snakemake then
    # saw the simplified ONNX, an input of every later stage, as updated): it gets a copy.
    scratch = tempfile.TemporaryDirectory(prefix="trtpipe-modelopt-")
    source = Path(scratch.name) / Path(in_path).name
    shutil.copy(in_path, source)
    with scratch, _onnxruntime_quantization_kept():
        _run_modelopt(quantize, str(source), out_path, precision, calibration, options)


@contextlib.contextmanager
def _onnxruntime_quantization_kept():
    """ModelOpt 0.47 patches onnxruntime.quantization for the whole process (ort_utils.configure_ort: its op registries
    edited, ort_patching.patch_ort_modules: the calibrators' and quantizers' methods replaced). A job is one process,
    but a process that then runs onnxruntime.quantization itself (the int8-ort-* recipes) got ModelOpt's versions and
    its static QDQ failed ('Quantization parameters are not specified for param x'): put ONNX Runtime's own back."""
    from onnxruntime.quantization import base_quantizer, calibrate, qdq_quantizer, registry

    owners = [calibrate.CalibraterBase, calibrate.MinMaxCalibrater, calibrate.HistogramCalibrater,
              calibrate.HistogramCollector, qdq_quantizer.QDQQuantizer, base_quantizer.BaseQuantizer]
    methods = [(owner, dict(vars(owner))) for owner in owners]
    create_calibrator = calibrate.create_calibrator
    registries = [(table, dict(table)) for table in (registry.QDQRegistry, registry.QLinearOpsRegistry)]
    try:
        yield
    finally:
        for owner, before in methods:
            for name in set(vars(owner)) - set(before):
                delattr(owner, name)
            for name, value in before.items():
                if vars(owner).get(name) is not value:
                    setattr(owner, name, value)
        calibrate.create_calibrator = create_calibrator
        for table, before in registries:
            table.clear()
            table.update(before)


def _run_modelopt(quantize, in_path: str, out_path: Path, precision: str, calibration, options: dict[str, Any]) -> None:
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
    quantize_options: dict[str, Any] | None = None,
    sensitivity_path: str | Path | None = None,
) -> dict[str, Any]:
    """Write the precision ONNX; returns its stats (method, what changed, calibration provenance, and the metric
    against the fp32 ONNX on evaluation samples calibration never saw)."""
    import onnx

    from . import quantize as q

    made = q.recipe(precision)  # one sentence for a name nothing makes
    if precision not in MIXED + QUANTIZED and made.quantizer != q.ORT:
        raise TrtpipeError(f"{in_path}: precision {precision!r} has no conversion; fix: use one of {', '.join(MIXED + QUANTIZED)} "
                           f"or an int8-ort-* name.")
    qopt = with_defaults("quantize", quantize_options)
    start = time.perf_counter()
    stats: dict[str, Any] = {"model": spec.name, "variant": variant.name, "precision": precision, "warnings": [],
                             "quantizer": made.quantizer or "ModelOpt", "recipe": made.describe()}
    calibration, evaluation, labels, source = split_inputs(spec, calibration_data, options, qopt, spec.seed)
    run_batch = variant.batch or min(8, source["evaluation_samples"])
    judge = q.Judge.from_options(qopt)
    with atomic_path(out_path, suffix=".tmp.onnx") as tmp:
        try:
            if precision in MIXED:
                model = _autocast(str(in_path), precision, options)
                onnx.save(model, str(tmp))
                stats["method"] = f"ModelOpt AutoCast ({'fp32 I/O' if options.get('keep_io_types', True) else f'{precision} I/O'})"
            elif made.quantizer == q.ORT:
                stats["calibration"] = source
                judged_on = q.Evaluation(evaluation, q.run_all(in_path, evaluation, run_batch), labels)
                with q.ort_quantizer(in_path, whole_batches(calibration, variant.batch, spec, source), variant.batch or 8,
                                     tuple(qopt["op_types"])) as quantizer:
                    stats["quantizable_nodes"] = len(quantizer.nodes)
                    if made.mixed:
                        ranking = [r["node"] for r in read_sensitivity(sensitivity_path, precision)]
                        stats["search"] = q.grow_float(quantizer, made, tmp, ranking, judged_on, judge,
                                                       qopt["max_float_nodes"])
                        if stats["search"]["unjudged"]:
                            stats["warnings"].append(
                                f"the search could not judge {', '.join(stats['search']['unjudged'])}: the metric "
                                f"returned no such score on its samples (scores against labels need samples with labels); "
                                f"the held-out evaluation judges them")
                        stats["kept_float"] = [dict(node=n, op=_op_of(quantizer.nodes, n)) for n in stats["search"]["kept_float"]]
                    else:
                        quantizer.quantize(made, tmp)
                        stats["kept_float"] = []
                stats["method"] = made.describe()
            else:
                stats["calibration"] = source
                _quantize(str(in_path), tmp, precision, whole_batches(calibration, variant.batch, spec, source), options)
                stats["method"] = f"ModelOpt ONNX PTQ ({options.get('calibration_method', 'max')} calibration)"
            if made.quantizer and source["source"] == "random":
                stats["warnings"].append(
                    f"{precision} calibrated on {source['samples']} seeded random inputs, not real data: its accuracy "
                    f"numbers say nothing about accuracy on real inputs (give models.{spec.name}.calibration_data)"
                )
        except TrtpipeError:
            raise
        except Exception as exc:
            log.exception("precision conversion failed")
            raise TrtpipeError(
                f"{in_path}: {precision} conversion with {stats['quantizer']} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); "
                f"fix: exclude the offending op types with precision.op_types_to_exclude, or drop {precision} for this model."
            ) from exc
        converted = onnx.load(str(tmp))
        ops = collections.Counter(n.op_type for n in converted.graph.node)
        if made.quantizer == q.ORT and not any(ops.get(op) for op in q.QUANTIZED_OPS):
            raise TrtpipeError(
                f"{in_path}: {precision} quantized no node ({made.describe()} has no kernel for this model's "
                f"{', '.join(sorted({n['op'] for n in quantizer.nodes})) or 'ops'}); fix: drop {precision} for model "
                f"{spec.name} (its engine would be fp32 under an int8 name).")
        stats["metric"] = metric_on_samples(in_path, tmp, evaluation, labels, run_batch, judge, source)
    stats.update(seconds=time.perf_counter() - start, nodes=sum(ops.values()),
                 casts=ops.get("Cast", 0), quantize_nodes=ops.get("QuantizeLinear", 0) + ops.get("DynamicQuantizeLinear", 0),
                 dequantize_nodes=ops.get("DequantizeLinear", 0))
    if precision in MIXED:
        low = {"fp16": onnx.TensorProto.FLOAT16, "bf16": onnx.TensorProto.BFLOAT16}[precision]
        stats["low_precision_initializers"] = sum(i.data_type == low for i in converted.graph.initializer)
        stats["fp32_initializers"] = sum(i.data_type == onnx.TensorProto.FLOAT for i in converted.graph.initializer)
    elif not stats["quantize_nodes"]:
        stats["warnings"].append(f"{stats['quantizer']} inserted no quantize nodes: nothing in this graph was quantized to {precision}")
    for w in stats["warnings"]:
        log.warning("%s", w)
    log.info("%s: %s via %s in %.2fs; metric %s", out_path, precision, stats["method"], stats["seconds"], stats["metric"])
    return stats


def _op_of(nodes: list[dict[str, str]], name: str) -> str:
    return next((n["op"] for n in nodes if n["node"] == name), "")


def metric_on_samples(fp32_path, path, evaluation: dict[str, np.ndarray], labels: np.ndarray | None, batch: int,
                      judge, source: dict[str, Any]) -> dict[str, Any]:
    """The scores of a precision ONNX against the fp32 ONNX it came from, on the evaluation samples, and what they
    are judged by. No verdict is stored: the report judges the scores against the thresholds of the day."""
    from .quantize import run_all

    scores = judge.scores(run_all(path, evaluation, batch), run_all(fp32_path, evaluation, batch), evaluation, labels)
    return {"scores": scores, "judged_by": judge.describe(), "samples": source["evaluation_samples"],
            "data": source["source"], "against": "the fp32 ONNX"}


def read_sensitivity(path: str | Path | None, precision: str) -> list[dict[str, Any]]:
    import json

    if not path or not Path(path).exists():
        raise TrtpipeError(f"{precision} keeps the most sensitive nodes in float, but no sensitivity ranking was given "
                           f"({path}); fix: run `trtpipe sensitivity` first and pass --sensitivity.")
    return json.loads(Path(path).read_text())["nodes"]


def sensitivity_ranking(in_path: str | Path, spec: ModelSpec, variant: Variant, options: dict[str, Any],
                        quantize_options: dict[str, Any] | None, calibration_data: str | None) -> dict[str, Any]:
    """Every quantizable node ranked by the share of the thresholds' margin it uses up when it alone is quantized
    (int8-ort-qdq, MinMax, per-channel weights), judged by the model's metric (or agreement) on the search samples."""
    from . import quantize as q

    qopt = with_defaults("quantize", quantize_options)
    calibration, evaluation, labels, source = split_inputs(spec, calibration_data, options, qopt, spec.seed)
    batch = variant.batch or min(8, source["evaluation_samples"])
    start = time.perf_counter()
    judge = q.Judge.from_options(qopt)
    judged_on = q.Evaluation(evaluation, q.run_all(in_path, evaluation, batch), labels)
    with q.ort_quantizer(in_path, whole_batches(calibration, variant.batch), variant.batch or 8, tuple(qopt["op_types"])) as quantizer:
        rows = q.sensitivity(quantizer, q.recipe("int8-ort-qdq"), judged_on, judge)
    return {"model": spec.name, "variant": variant.name, "recipe": q.recipe("int8-ort-qdq").describe(),
            "measure": f"{judge.describe()} when this node alone is quantized (every other node float)",
            "judged_by": judge.describe(), "accept": judge.accept, "data": source,
            "seconds": time.perf_counter() - start, "nodes": rows}


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
