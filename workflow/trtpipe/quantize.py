"""int8 made by the quantizer each runtime is built for, a sensitivity ranking on the user's data, and the
mixed-precision search that keeps the most sensitive nodes in float.

Which quantizer makes a precision is in its name, so that one sweep holds both kinds side by side:

- `int8` (and `fp8`): NVIDIA ModelOpt's ONNX PTQ, Q/DQ placed the way TensorRT fuses it (precision.py);
- `int8-ort-qdq`: onnxruntime.quantization's static QDQ, U8S8 (uint8 activations, int8 weights), weights per
  channel, MinMax calibration, Conv/MatMul/Gemm only with constant weights: what ONNX Runtime's CPU provider
  fuses into its integer kernels (QLinearConv, MatMulIntegerToFloat, QGemm);
- `int8-ort-dyn`: onnxruntime.quantization's dynamic quantization (weights int8 ahead of time, activations
  quantized per call: no calibration);
- search candidates `int8-ort-qdq-{minmax|entropy|percentile}-{pc|pt}-mixed` and `int8-ort-dyn-{pc|pt}-mixed`:
  the same quantizer with that calibration and per-channel (pc) or per-tensor (pt) weights, keeping the k most
  sensitive nodes in float, k grown (1, 2, 4, ... then bisected) until every threshold is met.

What a candidate is judged by (`Judge`) is the model's task metric and thresholds (`metric`, `accept`: trtpipe.metrics),
or for a model without them, agreement with the fp32 model and quantize.accept. The search compares the quantized
ONNX with the fp32 ONNX it came from (itself checked against PyTorch at fp32 tolerance by the simplify stage) on
search samples: the part of the calibration samples that calibration never saw. The report's pick then judges every
engine against PyTorch on the held-out samples, which neither calibration nor the search saw.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import metrics
from .errors import TrtpipeError

log = logging.getLogger(__name__)

MODELOPT = "ModelOpt"
ORT = "onnxruntime.quantization"
CALIBRATIONS = ("minmax", "entropy", "percentile")
ORT_MODES = ("qdq", "dyn")
# A precision name onnxruntime.quantization makes (the Snakemake wildcard and the config schema use it too)
ORT_PATTERN = r"int8-ort-(?:qdq|dyn)(?:-(?:minmax|entropy|percentile))?(?:-(?:pc|pt))?(?:-mixed)?"
_ORT_NAME = re.compile(r"^int8-ort-(?P<mode>qdq|dyn)(?:-(?P<calibration>minmax|entropy|percentile))?"
                       r"(?:-(?P<channels>pc|pt))?(?P<mixed>-mixed)?$")
# Op types whose integer kernels the CPU provider has (QDQ -> QLinearConv / MatMulIntegerToFloat / QGemm); other
# ops would only gain Q/DQ pairs around float kernels
DEFAULT_OP_TYPES = ("Conv", "MatMul", "Gemm")
# What a quantized graph holds where onnxruntime.quantization quantized something
QUANTIZED_OPS = ("QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger")


@dataclass(frozen=True)
class Recipe:
    """What a precision name says about how it is made."""

    precision: str
    quantizer: str  # MODELOPT or ORT (or "" for fp32/tf32/fp16/bf16 made without a quantizer)
    mode: str = ""  # ORT: "qdq" (static, calibrated) or "dyn" (dynamic)
    calibration: str = ""  # ORT static: minmax, entropy, percentile
    per_channel: bool = False
    mixed: bool = False  # keeps the most sensitive nodes in float

    @property
    def base(self) -> str:
        """The numeric precision (tolerances, peak FLOPs): int8 for every int8 recipe."""
        return "int8" if self.quantizer == ORT else self.precision

    def describe(self) -> str:
        if self.quantizer == MODELOPT:
            return f"ModelOpt PTQ ({self.precision} Q/DQ for TensorRT)"
        if self.quantizer != ORT:
            return self.precision
        channels = "per-channel" if self.per_channel else "per-tensor"
        if self.mode == "dyn":
            return f"onnxruntime.quantization dynamic ({channels} int8 weights)"
        return f"onnxruntime.quantization static QDQ (U8S8, {channels} weights, {self.calibration} calibration)"


def recipe(precision: str) -> Recipe:
    """Parse a precision name; one sentence for a name nothing makes."""
    if precision in ("int8", "fp8"):
        return Recipe(precision, MODELOPT)
    if precision in ("fp32", "tf32", "fp16", "bf16"):
        return Recipe(precision, "")
    m = _ORT_NAME.match(precision)
    if not m:
        raise TrtpipeError(f"precision {precision!r} is unknown; fix: use fp32, tf32, fp16, bf16, int8, fp8 or an "
                           f"onnxruntime.quantization name such as int8-ort-qdq, int8-ort-dyn, int8-ort-qdq-entropy-pc-mixed.")
    mode = m["mode"]
    if mode == "dyn" and m["calibration"]:
        raise TrtpipeError(f"precision {precision!r}: dynamic quantization has no calibration; fix: drop "
                           f"-{m['calibration']} (e.g. int8-ort-dyn-pc-mixed).")
    calibration = m["calibration"] or ("minmax" if mode == "qdq" else "")
    channels = m["channels"] or ("pc" if mode == "qdq" else "pt")
    return Recipe(precision, ORT, mode, calibration, channels == "pc", bool(m["mixed"]))


def base_precision(precision: str) -> str:
    return recipe(precision).base


def candidate_name(mode: str, calibration: str, per_channel: bool) -> str:
    parts = ["int8-ort", mode] + ([calibration] if mode == "qdq" else []) + ["pc" if per_channel else "pt", "mixed"]
    return "-".join(parts)


def candidates(options: dict[str, Any]) -> list[str]:
    """The mixed-precision candidates of the search, in the order the bound keeps them: quantizer, then
    per-channel before per-tensor, then calibration method, as configured; at most `options['search']`."""
    out: list[str] = []
    for mode in options.get("quantizers", ["qdq", "dyn"]):
        for per_channel in options.get("per_channel", [True, False]):
            for calibration in (options.get("calibration_methods", list(CALIBRATIONS)) if mode == "qdq" else [""]):
                name = candidate_name(mode, calibration, per_channel)
                if name not in out:
                    out.append(name)
    return out[: int(options.get("search", 0))]


# --- samples ----------------------------------------------------------------------------------------
def split_samples(arrays: dict[str, np.ndarray], calibration_share: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Calibration and evaluation never share a sample: the first part calibrates, the rest evaluates."""
    count = min(len(a) for a in arrays.values())
    n_cal = min(count - 1, max(1, int(round(count * calibration_share))))
    if count < 2:
        raise TrtpipeError(f"{count} sample(s) cannot be split into calibration and evaluation; fix: give at least 2.")
    return {k: v[:n_cal] for k, v in arrays.items()}, {k: v[n_cal:count] for k, v in arrays.items()}


def batches(arrays: dict[str, np.ndarray], batch: int) -> Iterator[dict[str, np.ndarray]]:
    """Whole batches of `batch` samples (the last one topped up from the start, for static graphs)."""
    count = min(len(a) for a in arrays.values())
    for start in range(0, count, batch):
        index = np.arange(start, start + batch) % count
        yield {k: v[index] for k, v in arrays.items()}


def run_all(path: str | Path, arrays: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Every sample through the ONNX file, `batch` at a time; outputs by name, samples on axis 0."""
    from .ort_session import OnnxEvaluator

    evaluator = OnnxEvaluator(path)
    names = evaluator.output_names
    count = min(len(a) for a in arrays.values())
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for feeds in batches(arrays, batch):
        for n, out in zip(names, evaluator(feeds)):
            parts[n].append(np.asarray(out, dtype=np.float64))
    return {n: np.concatenate(p)[:count] for n, p in parts.items()}


# --- the metric (agreement with the fp32 model) -----------------------------------------------------------
def agreement(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Per output: top-1 agreement for (samples, classes) logits, else the mean per-sample cosine similarity;
    over several outputs the worst of each. Shapes are compared before values."""
    scores: dict[str, list[float]] = {}
    for name, ref in reference.items():
        got = outputs[name]
        if got.shape != ref.shape:
            raise TrtpipeError(f"output {name!r} has shape {list(got.shape)}, the fp32 model's {list(ref.shape)}; "
                               f"fix: the quantized model must keep the outputs of the one it came from.")
        if ref.ndim == 2 and ref.shape[1] > 1:
            scores.setdefault("top1_agreement", []).append(float(np.mean(got.argmax(1) == ref.argmax(1))))
        else:
            cosine = sample_cosines(got, ref)
            scores.setdefault("cosine", []).append(float(np.mean(cosine)))
            scores.setdefault("min_cosine", []).append(float(np.min(cosine)))
    return {k: min(v) for k, v in sorted(scores.items())}


def sample_cosines(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Cosine similarity of each sample's flattened output to the reference's (1 where both are zero)."""
    a, b = got.reshape(len(got), -1), ref.reshape(len(ref), -1)
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norm > 0, (a * b).sum(1) / np.where(norm > 0, norm, 1), 1.0)


def output_cosine(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """The worst output's mean per-sample cosine: a finer measure than top-1 where top-1 agreement saturates."""
    return min(float(np.mean(sample_cosines(outputs[n], r))) for n, r in reference.items())


@dataclass(frozen=True)
class Judge:
    """What decides whether a quantized model is good enough: the model's task metric and its thresholds
    (trtpipe.metrics: `metric` and `accept` of the model), or for a model without one, agreement with the fp32 model
    and quantize.accept. Either way the reference is the fp32 ONNX the model came from, on samples calibration never
    saw (labels where the samples carry them)."""

    metric: metrics.Metric | None = None  # None: agreement
    accept: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, quantize_options: dict[str, Any]) -> "Judge":
        return cls(metrics.Metric.from_config(quantize_options.get("metric")), dict(quantize_options.get("accept") or {}))

    def describe(self) -> str:
        if self.metric is None:
            return "agreement with the fp32 model (top-1 for logits, mean cosine otherwise)"
        return f"the model's {self.metric.task} metric"

    def scores(self, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
               labels: np.ndarray | None = None) -> dict[str, float]:
        if self.metric is None:
            return agreement(outputs, reference)
        return metrics.score(self.metric, outputs, reference, inputs, labels, shown_as="quantized model")

    def shortfall(self, scores: dict[str, float]) -> float:
        return metrics.shortfall(scores, self.accept)

    def unjudged(self, scores: dict[str, float]) -> list[str]:
        """Thresholds of the model's metric its scores here lack (accuracy needs labels the samples may not carry).
        Agreement has a threshold per kind of output, and a model has one kind or the other: none is missing."""
        return sorted(set(self.accept) - set(scores)) if self.metric is not None else []


# --- onnxruntime.quantization -------------------------------------------------------------------------
def quantizable_nodes(model_path: str | Path, op_types: tuple[str, ...] = DEFAULT_OP_TYPES) -> list[dict[str, str]]:
    """Nodes the ORT quantizer would quantize: the op types, with a constant weight (MatMulConstBOnly)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    constants = {i.name for i in model.graph.initializer}
    constants |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    out = []
    for n in model.graph.node:
        if n.op_type in op_types and len(n.input) > 1 and n.input[1] in constants:
            out.append({"node": n.name, "op": n.op_type})
    unnamed = [n for n in out if not n["node"]]
    if unnamed:
        raise TrtpipeError(f"{model_path}: {len(unnamed)} quantizable node(s) have no name; fix: name every node "
                           f"(the simplify stage's onnxsim does) so that nodes can be kept in float by name.")
    return out


def gemm_to_matmul(model) -> int:
    """Rewrite Gemm(A, B[, C]) with a constant B and no transposed A as MatMul(A, alpha*B') [+ Add(beta*C)] in place,
    the MatMul keeping the Gemm's name; returns how many were rewritten."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    nodes, count = [], 0
    for n in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type != "Gemm" or attrs.get("transA", 0) or len(n.input) < 2 or n.input[1] not in inits:
            nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        w = (w.T if attrs.get("transB", 0) else w) * attrs.get("alpha", 1.0)
        weight = numpy_helper.from_array(w.astype(np.float32), f"{n.name}_matmul_weight")
        model.graph.initializer.append(weight)
        has_bias = len(n.input) > 2 and n.input[2]
        mm_out = f"{n.name}_matmul_out" if has_bias else n.output[0]
        nodes.append(helper.make_node("MatMul", [n.input[0], weight.name], [mm_out], name=n.name))
        if has_bias:
            bias = n.input[2]
            beta = attrs.get("beta", 1.0)
            if beta != 1.0 and bias in inits:
                scaled = numpy_helper.from_array(numpy_helper.to_array(inits[bias]) * beta, f"{n.name}_bias")
                model.graph.initializer.append(scaled)
                bias = scaled.name
            nodes.append(helper.make_node("Add", [mm_out, bias], [n.output[0]], name=f"{n.name}_bias_add"))
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader over arrays, `batch` samples at a time."""

    def __init__(self, arrays: dict[str, np.ndarray], batch: int):
        self._batches = list(batches(arrays, batch))
        self._next = iter(self._batches)

    def get_next(self):
        return next(self._next, None)

    def rewind(self):
        self._next = iter(self._batches)


_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


class OrtQuantizer:
    """Quantizes one fp32 ONNX with onnxruntime.quantization, any subset of its nodes, calibrating once per method
    (ranges cached: a sensitivity sweep re-quantizes the model once per node)."""

    def __init__(self, model_path: str | Path, calibration: dict[str, np.ndarray] | None, batch: int,
                 op_types: tuple[str, ...] = DEFAULT_OP_TYPES):
        self.model_path = str(model_path)
        self.calibration = calibration
        self.batch = batch
        self.op_types = tuple(op_types)
        self._dir = tempfile.TemporaryDirectory(prefix="trtpipe-quant-")
        self.nodes = quantizable_nodes(model_path, self.op_types)
        self._sources: dict[str, str] = {}

    def source(self, mode: str) -> str:
        """The model the quantizer reads, pre-processed once per mode (see _pre_process)."""
        if mode not in self._sources:
            self._sources[mode] = self._pre_process(mode)
        return self._sources[mode]

    def _pre_process(self, mode: str) -> str:
        """onnxruntime.quantization's recommended pre-processing: shape inference (symbolic, then ONNX's) so that
        the quantizer knows every tensor's shape. Its graph optimization is skipped: it would rename the nodes the
        sensitivity ranking names. A model shape inference fails on is quantized as it is. For dynamic quantization,
        which has no Gemm kernel, Gemm nodes with a constant weight become MatMul (+ Add) of the same name first."""
        import onnx
        from onnxruntime.quantization.shape_inference import quant_pre_process

        source = self.model_path
        if mode == "dyn":
            model = onnx.load(self.model_path)
            if gemm_to_matmul(model):
                source = str(Path(self._dir.name) / "matmul.onnx")
                onnx.save(model, source)
        out = Path(self._dir.name) / f"pre-{mode}.onnx"
        try:
            quant_pre_process(source, out, skip_optimization=True, auto_merge=True)
            return str(out)
        except Exception as exc:  # symbolic shape inference raises many types
            log.info("quantization pre-processing failed on %s (%s); quantizing it as it is", self.model_path,
                     str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            return source

    def close(self) -> None:
        self._dir.cleanup()

    def quantize(self, recipe_: Recipe, out_path: str | Path, keep_float: tuple[str, ...] = (),
                 only: tuple[str, ...] | None = None) -> None:
        """Write the quantized model: every quantizable node except `keep_float`, or only the nodes in `only`."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

        names = [n["node"] for n in self.nodes if n["node"] not in keep_float and (only is None or n["node"] in only)]
        if not names:
            raise TrtpipeError(f"{self.model_path}: no node left to quantize with {recipe_.precision} "
                               f"({len(self.nodes)} quantizable, {len(keep_float)} kept in float); fix: drop "
                               f"{recipe_.precision} for this model, or quantize more op types than "
                               f"{', '.join(self.op_types)} with quantize.op_types.")
        extra = {"MatMulConstBOnly": True}
        try:
            if recipe_.mode == "dyn":
                quantize_dynamic(self.source("dyn"), str(out_path), op_types_to_quantize=list(self.op_types),
                                 per_channel=recipe_.per_channel, weight_type=QuantType.QInt8, nodes_to_quantize=names,
                                 extra_options=extra)
            else:
                if self.calibration is None:
                    raise TrtpipeError(f"{self.model_path}: {recipe_.precision} needs calibration samples.")
                quantize_static(
                    self.source("qdq"), str(out_path), _Reader(self.calibration, self.batch),
                    quant_format=QuantFormat.QDQ, op_types_to_quantize=list(self.op_types),
                    per_channel=recipe_.per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_quantize=names, calibrate_method=getattr(CalibrationMethod, _METHODS[recipe_.calibration]),
                    calibration_cache_path=Path(self._dir.name) / f"{recipe_.calibration}.json",
                    calibration_providers=["CPUExecutionProvider"], extra_options=extra,
                )
        except TrtpipeError:
            raise
        except Exception as exc:
            log.exception("onnxruntime.quantization failed")
            raise TrtpipeError(
                f"{self.model_path}: {recipe_.precision} with onnxruntime.quantization failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else 'no message'}); fix: drop {recipe_.precision} for "
                f"this model, or keep the offending op types in float with quantize.op_types."
            ) from exc


@contextlib.contextmanager
def ort_quantizer(model_path, calibration, batch, op_types=DEFAULT_OP_TYPES) -> Iterator[OrtQuantizer]:
    q = OrtQuantizer(model_path, calibration, batch, op_types)
    try:
        yield q
    finally:
        q.close()


@dataclass(frozen=True)
class Evaluation:
    """The samples a quantized model is judged on and the fp32 model's outputs on them."""

    inputs: dict[str, np.ndarray]
    reference: dict[str, np.ndarray]
    labels: np.ndarray | None = None

    def scores(self, judge: Judge, path: str | Path, batch: int) -> dict[str, float]:
        return judge.scores(run_all(path, self.inputs, batch), self.reference, self.inputs, self.labels)


def sensitivity(q: OrtQuantizer, recipe_: Recipe, evaluation: Evaluation, judge: Judge) -> list[dict[str, Any]]:
    """Per quantizable node, the metric when that node alone is quantized; most sensitive first (by the share of the
    thresholds' margin it uses up, then by how far the outputs moved: the cosine of every output to the fp32
    model's)."""
    perfect = judge.scores(evaluation.reference, evaluation.reference, evaluation.inputs, evaluation.labels)
    rows = []
    with tempfile.TemporaryDirectory(prefix="trtpipe-sens-") as tmp:
        path = Path(tmp) / "one.onnx"
        for i, node in enumerate(q.nodes):
            q.quantize(recipe_, path, only=(node["node"],))
            outputs = run_all(path, evaluation.inputs, q.batch)
            scores = judge.scores(outputs, evaluation.reference, evaluation.inputs, evaluation.labels)
            rows.append({**node, **scores, "loss": metrics.margin_used(scores, perfect, judge.accept),
                         "output_cosine": output_cosine(outputs, evaluation.reference)})
            log.info("sensitivity %d/%d %s (%s): %s", i + 1, len(q.nodes), node["node"], node["op"], scores)
    rows.sort(key=lambda r: (-r["loss"], r["output_cosine"], r["node"]))  # ties in the metric: the larger output change first
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank
    return rows


def grow_float(q: OrtQuantizer, recipe_: Recipe, out_path: str | Path, ranking: list[str], evaluation: Evaluation,
               judge: Judge, max_float: int) -> dict[str, Any]:
    """Keep the k most sensitive nodes in float, k = 0, 1, 2, 4, ... (at most max_float), then bisect down to the
    smallest k that meets every threshold. Writes that model (or, with none meeting them, the one nearest) to
    out_path; returns what was tried."""
    tried: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="trtpipe-mixed-") as tmp:
        def attempt(k: int) -> float:
            path = Path(tmp) / f"k{k}.onnx"
            q.quantize(recipe_, path, keep_float=tuple(ranking[:k]))
            tried[k] = evaluation.scores(judge, path, q.batch)
            log.info("%s keeping %d node(s) in float: %s", recipe_.precision, k, tried[k])
            return judge.shortfall(tried[k])

        limit = min(max_float, len(ranking), len(q.nodes) - 1)
        k, met = 0, None
        while True:
            if attempt(k) == 0:
                met = k
                break
            if k >= limit:
                break
            k = min(limit, max(1, 2 * k))
        if met is not None and met > 1:  # bisect between the last miss (met // 2) and the hit
            low, high = met // 2, met
            while high - low > 1:
                mid = (low + high) // 2
                if (judge.shortfall(tried[mid]) if mid in tried else attempt(mid)) == 0:
                    high = mid
                else:
                    low = mid
            met = high
        chosen = met if met is not None else min(tried, key=lambda j: (judge.shortfall(tried[j]), j))
        shutil.move(str(Path(tmp, f"k{chosen}.onnx")), str(out_path))
    return {"kept_float": ranking[:chosen], "k": chosen, "met": met is not None, "scores": tried[chosen],
            "shortfall": judge.shortfall(tried[chosen]), "judged_by": judge.describe(),
            "unjudged": judge.unjudged(tried[chosen]), "tried": {str(j): s for j, s in sorted(tried.items())}}
