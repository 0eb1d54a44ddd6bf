"""How much faster MiniLM's int8 is, made as trtpipe makes it and made other ways: fp32 against each, timed in
one process on ONNX Runtime's CPU provider (one intra-op thread, batch 1, sequence 32, trtpipe's onnxruntime engine
as it is built: graph optimizations at level `all` saved to a file, loaded again with them off), with the fused
integer kernels each optimized graph holds and the embeddings metric against PyTorch on the held-out sentences.

Reads the files a quant_table.py run leaves under its --work folder (results/minilm/...): the export stage's ONNX
(`dynamic.onnx`: MatMul + Add, as torch.onnx.export writes a Hugging Face BERT), the simplify stage's
(`dynamic.sim.onnx`: onnxsim's fusion of MatMul + Add into Gemm, between Reshapes), the calibration samples and the
held-out samples with PyTorch's outputs (`calibration.npz`, `data.npz`).

    PYTHONPATH=/tmp/minilm .venv/bin/python docs/quantization/quant_table.py --work /tmp/trtpipe-quant   # first
    .venv/bin/python docs/quantization/ort_int8_speed.py --work /tmp/trtpipe-quant --out docs/quantization/ort_int8_speed.md

Speed: every engine is timed in turn, `--rounds` times (round-robin, so that load from other processes falls on
all of them alike); a round's figure is the median of `--seconds` of back-to-back calls; the speed-up is fp32's
median over the engine's, per round, and the table gives the median and the range over rounds.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

import onnx  # noqa: E402
import onnxruntime  # noqa: E402
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static  # noqa: E402
from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: E402

from trtpipe import metrics  # noqa: E402
from trtpipe import quantize as q  # noqa: E402
from trtpipe.backends.onnxruntime import bake_fixed_dims  # noqa: E402
from trtpipe.evaluate import DataReference  # noqa: E402
from trtpipe.ort_session import session  # noqa: E402

SEQ = 32
# Ops of ONNX Runtime's optimized CPU graph that compute in integers, and the Q/DQ ops left around float kernels
INTEGER_OPS = ("QLinearMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "MatMulInteger", "QGemm",
               "QAttention", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear")
FLOAT_OPS = ("MatMul", "Gemm", "FusedMatMul", "FusedGemm", "Attention", "MultiHeadAttention", "SkipLayerNormalization",
             "BiasGelu", "FastGelu", "Gelu")
PROFILED = ("fp32 sim", "int8-ort-qdq (trtpipe)", "int8-ort-dyn (trtpipe)")
METRIC = metrics.Metric("embeddings", "last_hidden_state", "attention_mask")


def pre_process(src: str, dst: Path, optimize: bool) -> str:
    """onnxruntime.quantization's pre-processing, as trtpipe runs it (optimize=False) or with its optimization on."""
    quant_pre_process(src, str(dst), skip_optimization=not optimize, auto_merge=True)
    return str(dst)


def matmul_copy(src: str, dst: Path) -> str:
    """The model with every Gemm of a constant weight rewritten to MatMul (+ Add), as trtpipe does for dynamic."""
    model = onnx.load(src)
    q.gemm_to_matmul(model)
    onnx.save(model, str(dst))
    return str(dst)


def transformer_fused(src: str, dst: Path) -> str:
    """onnxruntime.transformers' BERT fusions (Attention, SkipLayerNormalization, BiasGelu where its patterns match),
    the route to QAttention under dynamic quantization."""
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(src, model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
    model.save_model_to_file(str(dst))
    return str(dst)


def static(src: str, dst: Path, calibration, fmt=QuantFormat.QDQ, reduce_range=False, per_channel=True,
           activations=QuantType.QUInt8) -> str:
    """onnxruntime.quantization static int8 with trtpipe's int8-ort-qdq settings unless told otherwise."""
    quantize_static(src, str(dst), q._Reader(calibration, 8), quant_format=fmt, op_types_to_quantize=list(q.DEFAULT_OP_TYPES),
                    per_channel=per_channel, reduce_range=reduce_range, activation_type=activations,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    calibration_providers=["CPUExecutionProvider"], extra_options={"MatMulConstBOnly": True})
    return str(dst)


def dynamic(src: str, dst: Path, per_channel=False, reduce_range=False) -> str:
    quantize_dynamic(src, str(dst), op_types_to_quantize=list(q.DEFAULT_OP_TYPES), per_channel=per_channel,
                     reduce_range=reduce_range, weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    return str(dst)


def trtpipe_made(src: str, dst: Path, precision: str, calibration) -> str:
    """The int8 ONNX as trtpipe.quantize makes it (its pre-processing, its settings)."""
    with q.ort_quantizer(src, calibration, 8) as quantizer:
        quantizer.quantize(q.recipe(precision), dst)
    return str(dst)


def variants(work: Path, tmp: Path, calibration) -> dict[str, tuple[str, str]]:
    """name -> (ONNX path, how it was made)."""
    onnx_dir = work / "results" / "minilm" / "onnx"
    export, sim = str(onnx_dir / "dynamic.onnx"), str(onnx_dir / "dynamic.sim.onnx")
    sim_mm = matmul_copy(sim, tmp / "sim-matmul.onnx")
    pre_sim = pre_process(sim, tmp / "pre-sim.onnx", optimize=False)
    pre_sim_mm = pre_process(sim_mm, tmp / "pre-sim-mm.onnx", optimize=False)
    pre_export = pre_process(export, tmp / "pre-export.onnx", optimize=False)
    opt_sim = pre_process(sim, tmp / "opt-sim.onnx", optimize=True)
    opt_export = pre_process(export, tmp / "opt-export.onnx", optimize=True)
    out = {
        "fp32 sim": (sim, "trtpipe's simplified ONNX (onnxsim: Reshape-Gemm-Reshape)"),
        "fp32 export": (export, "trtpipe's export before simplify (MatMul + Add, as a Hugging Face export)"),
        "int8-ort-qdq (trtpipe)": (trtpipe_made(sim, tmp / "t-qdq.onnx", "int8-ort-qdq", calibration),
                                   "trtpipe.quantize on the simplified ONNX"),
        "int8-ort-dyn (trtpipe)": (trtpipe_made(sim, tmp / "t-dyn.onnx", "int8-ort-dyn", calibration),
                                   "trtpipe.quantize on the simplified ONNX (Gemm -> MatMul first)"),
        "int8-ort-dyn-pc (trtpipe)": (trtpipe_made(sim, tmp / "t-dyn-pc.onnx", "int8-ort-dyn-pc", calibration),
                                      "trtpipe.quantize, dynamic with per-channel weights (the search's pick, k = 0)"),
        "qdq sim Gemm->MatMul": (static(pre_sim_mm, tmp / "qdq-sim-mm.onnx", calibration), "static QDQ after gemm_to_matmul"),
        "qdq sim S8S8": (static(pre_sim, tmp / "qdq-sim-s8.onnx", calibration, activations=QuantType.QInt8),
                         "static QDQ, int8 activations (ONNX Runtime's documented default)"),
        "qdq sim per-tensor": (static(pre_sim, tmp / "qdq-sim-pt.onnx", calibration, per_channel=False),
                               "static QDQ, per-tensor weights"),
        "qdq sim reduce_range": (static(pre_sim, tmp / "qdq-sim-rr.onnx", calibration, reduce_range=True), "static QDQ, 7-bit weights"),
        "qdq sim pre-optimized": (static(opt_sim, tmp / "qdq-sim-opt.onnx", calibration), "quant_pre_process with optimization"),
        "qoperator sim": (static(pre_sim, tmp / "qop-sim.onnx", calibration, fmt=QuantFormat.QOperator), "static QOperator"),
        "qoperator sim Gemm->MatMul": (static(pre_sim_mm, tmp / "qop-sim-mm.onnx", calibration, fmt=QuantFormat.QOperator),
                                       "static QOperator after gemm_to_matmul"),
        "qdq export": (static(pre_export, tmp / "qdq-export.onnx", calibration), "static QDQ of the export"),
        "qdq export pre-optimized": (static(opt_export, tmp / "qdq-export-opt.onnx", calibration),
                                     "static QDQ of the export, pre-processing with optimization"),
        "dyn export": (dynamic(pre_export, tmp / "dyn-export.onnx"), "dynamic of the export (per-tensor)"),
        "dyn export transformer-fused": (dynamic(transformer_fused(export, tmp / "fused-export.onnx"), tmp / "dyn-fused.onnx"),
                                         "dynamic after onnxruntime.transformers' BERT fusions"),
        "dyn sim pre-optimized Gemm->MatMul": (dynamic(pre_process(sim_mm, tmp / "opt-sim-mm.onnx", optimize=True),
                                                       tmp / "dyn-sim-opt.onnx"), "dynamic, pre-processing with optimization"),
    }
    return out


def engine(path: str, tmp: Path, name: str):
    """trtpipe's onnxruntime engine: batch baked to 1, optimized at level all and saved, loaded with optimizations off."""
    graph = onnx.load(path)
    shapes = {i.name: ((1, 8), (1, SEQ), (1, 128)) for i in graph.graph.input}
    bake_fixed_dims(graph, shapes)
    saved = tmp / f"engine-{abs(hash(name))}.onnx"
    session(graph.SerializeToString(), level="all", threads=1, save_to=saved)
    ops = collections.Counter(n.op_type for n in onnx.load(str(saved), load_external_data=False).graph.node)
    return session(saved, level="disabled", threads=1), ops, saved


def profile(saved: Path, feeds, calls: int) -> collections.Counter:
    """ms per call spent in each op type (ONNX Runtime's own profiler, the engine's session options)."""
    import json

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(saved.with_suffix(""))
    sess = onnxruntime.InferenceSession(str(saved), sess_options=options, providers=["CPUExecutionProvider"])
    for _ in range(calls + 10):
        sess.run(None, feeds)
    events = json.loads(Path(sess.end_profiling()).read_text())
    runs = [e for e in events if e.get("name") == "model_run"][10:]
    start = runs[0]["ts"]
    spent = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
            spent[e["args"]["op_name"]] += e["dur"] / 1e3 / len(runs)
    spent["(whole call)"] = sum(e["dur"] for e in runs) / 1e3 / len(runs)
    return spent


def accuracy(sess, data: DataReference) -> dict[str, float]:
    names = [o.name for o in sess.get_outputs()]
    outs = [sess.run(None, {k: v[i:i + 1] for k, v in data.inputs.items()}) for i in range(len(data))]
    actual = {n: np.concatenate([o[j] for o in outs]) for j, n in enumerate(names)}
    return metrics.score(METRIC, actual, data.outputs, data.inputs)


def time_round(sess, feeds, seconds: float) -> float:
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 20:
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def cpu() -> str:
    """The processor and the instruction-set extensions int8 GEMM kernels use (AVX2, AVX-512, VNNI)."""
    from trtpipe.sysinfo import cpu_name

    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    simd = [f for f in flags if f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")]
    return f"{cpu_name()} ({os.cpu_count()} cores; {' '.join(simd) or 'no AVX2'})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/trtpipe-quant", help="a quant_table.py --work folder")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--seconds", type=float, default=1.0, help="timed seconds per engine per round")
    p.add_argument("--profile-calls", type=int, default=200, help="calls profiled per op type (fp32 and trtpipe's int8)")
    p.add_argument("--out", help="write the Markdown tables here too")
    args = p.parse_args()
    onnxruntime.set_default_logger_severity(3)  # quantize_static's calibration sessions warn about unused initializers
    work = Path(args.work)
    res = work / "results" / "minilm"
    data = DataReference(res / "data.npz")
    with np.load(res / "calibration.npz") as f:  # trtpipe's calibrate half of the calibration samples
        calibration = q.split_samples({k: f[k] for k in data.inputs}, 0.5)[0]
    feeds = {k: np.ascontiguousarray(v[:1]) for k, v in data.inputs.items()}
    assert feeds["input_ids"].shape == (1, SEQ)
    with tempfile.TemporaryDirectory(prefix="ort-int8-") as d:
        tmp = Path(d)
        made = variants(work, tmp, calibration)
        engines, rows, spent = {}, {}, {}
        for name, (path, how) in made.items():
            sess, ops, saved = engine(path, tmp, name)
            engines[name] = sess
            if name in PROFILED:
                spent[name] = profile(saved, feeds, args.profile_calls)
            rows[name] = {"engine": name, "made": how, **accuracy(sess, data),
                          "integer kernels": ", ".join(f"{k} {ops[k]}" for k in INTEGER_OPS if ops[k]),
                          "float kernels": ", ".join(f"{k} {ops[k]}" for k in FLOAT_OPS if ops[k]),
                          "nodes": sum(ops.values())}
            print(f"built {name}: {rows[name]['integer kernels'] or 'no integer kernel'}", flush=True)
        medians = {n: [] for n in engines}
        for r in range(args.rounds):
            for name, sess in engines.items():
                medians[name].append(time_round(sess, feeds, args.seconds))
            print(f"round {r + 1}: " + ", ".join(f"{n} {m[-1]:.2f}" for n, m in medians.items()), flush=True)
    base = medians["fp32 sim"]
    lines = ["| engine | made | median ms | vs fp32 sim (median, range over rounds) | cosine | min_cosine | rank_correlation | "
             "integer kernels in the optimized graph | float kernels | nodes |", "|---" * 10 + "|"]
    for name, row in rows.items():
        ratios = [b / m for b, m in zip(base, medians[name])]
        lines.append(f"| {name} | {row['made']} | {statistics.median(medians[name]):.2f} | "
                     f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f}) | {row['cosine']:.4f} | {row['min_cosine']:.4f} | "
                     f"{row['rank_correlation']:.4f} | {row['integer kernels']} | {row['float kernels']} | {row['nodes']} |")
    kinds = sorted({k for c in spent.values() for k in c}, key=lambda k: -max(c[k] for c in spent.values()))
    prof = ["| op type | " + " | ".join(f"{n} ms/call" for n in spent) + " |", "|---" * (len(spent) + 1) + "|"]
    prof += [f"| {k} | " + " | ".join(f"{c[k]:.3f}" if c[k] else "" for c in spent.values()) + " |" for k in kinds]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    text = (f"onnxruntime {onnxruntime.__version__}, {cpu()}, load average at the end {load}; 1 intra-op thread, batch 1, sequence {SEQ}, {args.rounds} rounds "
            f"of {args.seconds} s per engine; metric on {len(data)} held-out sentences against PyTorch\n\n"
            + "\n".join(lines) + f"\n\nWhere the time goes (ONNX Runtime's profiler, {args.profile_calls} calls, "
            f"kernel time per op type; a round's load falls on these too):\n\n" + "\n".join(prof) + "\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
