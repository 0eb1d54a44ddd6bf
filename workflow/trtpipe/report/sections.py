"""The report's sections, in the order they appear: each a function of (document, context).

`SECTIONS` is the whole report; `MODEL_SECTIONS` is one model's part of it, each a function of
(document, model context). A new section is one function here and one line in a list; a section that needs a
new input reads it from `Context.inputs` (trtpipe.summary_inputs.SummaryInputs, built from the sweep in one place).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

from ..backends.registry import skip_reason
from ..decide import batch_histogram
from ..evaluate import data_summary, data_table, judged_on_random
from ..summary_inputs import SummaryInputs
from . import analysis as A
from . import columns as C
from . import pick
from .render import Doc, engine_label, fmt


@dataclass
class Context:
    """Everything a section reads: the inputs, the tables read from them, and what the summary derived."""

    inputs: SummaryInputs
    bench: pd.DataFrame
    accuracy: pd.DataFrame
    plots: dict[str, Path] = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    comparison: Any = None  # trtpipe.compare.Comparison against the baseline

    def __post_init__(self) -> None:
        self.failures = None if self.inputs.failures is None else list(self.inputs.failures)
        self.failed = A.failed_engines(self.accuracy)
        self.precisions = [json.loads(Path(p).read_text()) for p in self.inputs.precision_stats]
        self.simplify_stats = [json.loads(Path(p).read_text()) for p in self.inputs.simplify_stats]
        self.sensitivity = {r["model"]: r for r in (json.loads(Path(p).read_text()) for p in self.inputs.sensitivity)}
        self.best = A.best_configurations(self.bench, self.failed)
        self.scaling = A.batch_scaling(self.bench)
        self.static_vs_dynamic = A.static_vs_dynamic(self.bench)
        self.accuracy_overview = A.accuracy_overview(self.accuracy)
        self.constant = A.constant_outputs(self.accuracy)
        # how each model's checkpoint was loaded, where its factory loaded it (trtpipe.hf: what was ignored or missing)
        self.loading = {f["model"]: f.get("loading") for f in (json.loads(Path(p).read_text()) for p in self.inputs.flops)}
        self.models = sorted({*self.bench[C.MODEL].unique(), *self.accuracy[C.MODEL].unique(), *(self.inputs.models or ()),
                              *(f["model"] for f in self.failures or ())})
        self.failed_jobs = {m: [f for f in self.failures or () if f["model"] == m] for m in self.models}


@dataclass
class ModelContext:
    ctx: Context
    model: str

    @property
    def rows(self) -> pd.DataFrame:
        return self.ctx.bench[self.ctx.bench[C.MODEL] == self.model]

    def of(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame[C.MODEL] == self.model] if not frame.empty else frame


# --- the top of the report ----------------------------------------------------------------------------------
def title(doc: Doc, ctx: Context) -> None:
    bench = ctx.bench
    doc.h(1, "trtpipe report")
    devices = ", ".join(sorted(bench[C.DEVICE].astype(str).unique())) if not bench.empty else "none"
    revs = ", ".join(sorted(bench[C.GIT_REV].astype(str).unique())) if not bench.empty else "unknown"
    doc.p(f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from workflow revision {revs}. Device: {devices}.")
    doc.p("Method: time-based warm-up, then timed until both the minimum duration and the minimum number of "
          "iterations are reached, rotating over several seeded random input sets. Latency is per call (one batch); "
          "throughput is samples/s over the wall time of the timed loop. CPU timings include moving inputs and "
          "outputs (there is nothing to transfer); GPU rows time host-to-device copies, compute and device-to-host "
          "copies with CUDA events and say whether transfers and CUDA graphs were included. cv is the coefficient of "
          "variation of the latency (on the GPU, stability is judged on compute time); unstable rows are flagged. "
          "tflops is FLOPs per sample (PyTorch's counter) times samples/s; of_peak divides it by the device's dense "
          "datasheet peak for the row's precision.")


def warnings(doc: Doc, ctx: Context) -> None:
    bench = ctx.bench
    if not bench.empty and bench[C.UNSTABLE].astype(bool).all():
        doc.p(f"Every row's cv is above the threshold ({bench[C.CV].min():.1%} at best): this machine's timing noise "
              "(a shared or virtual host, other load) is larger than the differences the flag guards. Medians are "
              "more robust than means here; rerun on a quiet machine before drawing fine conclusions.")
    random_calibration = sorted({f"{st['model']} ({st['precision']})" for st in ctx.precisions
                                 if st.get("calibration", {}).get("source") == "random"})
    if random_calibration:
        doc.p("WARNING: " + ", ".join(random_calibration) + " were calibrated on seeded random inputs, not real data. "
              "Their accuracy numbers below compare random inputs with random inputs and say nothing about accuracy "
              "on real data; give models.<name>.calibration_data (an .npz of real samples) before trusting them.")
    for model, outputs in ctx.constant.items():
        doc.p(A.constant_warning(model, outputs))
    on_random = judged_on_random(ctx.accuracy, ctx.models)
    if on_random:
        doc.p(f"Accuracy of {', '.join(on_random)} was judged on seeded random inputs only: their pass/fail verdicts say "
              "whether the artifacts compute what PyTorch computes on noise, not how they do on real inputs (a reduced "
              "precision may fail on noise and be fine on data, or the other way round); give models.<name>.samples, a "
              "metric and accept thresholds to judge them on your data (README: Accuracy on your data).")


def _status(missing: list[str], failed: bool) -> str:
    if not missing:
        return "ok"
    listed = "; ".join(missing[:3]) + ("; ..." if len(missing) > 3 else "")
    return f"FAILED: {listed}" if failed else f"not finished: {listed}"


def _overview_row(ctx: Context, model: str) -> dict[str, Any]:
    failures, bench, acc = ctx.failures, ctx.bench, ctx.accuracy_overview
    b = ctx.best.get(model)
    acc_m = acc[acc[C.MODEL] == model] if not acc.empty else acc
    n_fail = int((~acc_m[C.PASSED].astype(bool)).sum()) if not acc_m.empty else 0
    unstable = int(bench[(bench[C.MODEL] == model)][C.UNSTABLE].astype(bool).sum())
    none = "none passed" if not bench[bench[C.MODEL] == model].empty else "none finished"
    if failures is not None:
        missing = [f"{f['stage']} {f['engine']}".strip() for f in ctx.failed_jobs[model] if f["log"]]
        not_run = sum(int(f["engine"].split()[0]) for f in ctx.failed_jobs[model] if not f["log"])
        missing += [f"{not_run} job(s) not run"] if not_run else []
    else:
        missing = A.missing_stages(bench, ctx.accuracy, model)
    if n_fail:
        verdict = f"{n_fail} artifact(s) FAILED"
    elif acc_m.empty and missing:
        verdict = "nothing checked" + (" (see Failures)" if failures is not None else "")
    elif failures is not None and missing:
        verdict = "what was checked passes, but not every stage ran (see Failures)"
    elif failures is None and missing:
        verdict = f"incomplete: no {', '.join(missing)} results given"
    else:
        verdict = "all stages pass"
    if model in ctx.constant:  # a pass against an output that ignores its input is no pass
        verdict += (f"{', but' if verdict == 'all stages pass' else ';'} parity against "
                    f"{', '.join(map(repr, ctx.constant[model]))} PROVES NOTHING (PyTorch gives the same for every input)")
    return {
        "model": model,
        "status": ("incomplete" if failures is None and missing else
                   _status(missing, any(f["log"] for f in ctx.failed_jobs[model]))),
        "best latency": (f"{engine_label(b['latency'])} @ b{b['latency'][C.BATCH]}: {fmt(b['latency'][C.LATENCY_MEDIAN])} ms"
                         if b else none),
        "best throughput": (f"{engine_label(b['throughput'])} @ b{b['throughput'][C.BATCH]}: "
                            f"{fmt(b['throughput'][C.THROUGHPUT])} samples/s" if b else none),
        "accuracy": verdict,
        "unstable rows": unstable,
    }


def overview(doc: Doc, ctx: Context) -> None:
    rows = [_overview_row(ctx, model) for model in ctx.models]
    doc.h(2, "Overview")
    if ctx.failures:
        doc.p(f"This run did not finish: {sum(1 for f in ctx.failures if f['log'])} job(s) failed or were cut off. The "
              f"report covers what finished; the Failures section says what did not, and why.")
    doc.table(pd.DataFrame(rows))


def failures(doc: Doc, ctx: Context) -> None:
    if not ctx.failures:
        return
    doc.h(2, "Failures")
    doc.p("Each failed job with its one-sentence reason and its log; jobs that needed a failed job's output did not run.")
    doc.table(pd.DataFrame(ctx.failures, columns=["model", "stage", "engine", "reason", "log"]))


def baseline(doc: Doc, ctx: Context) -> None:
    comparison = ctx.comparison
    if comparison is None:
        return
    rows = comparison.rows
    verdicts = rows["verdict"].astype(str) if not rows.empty else pd.Series(dtype=str)
    counts = {
        "regressions": int(verdicts.str.startswith("regression").sum()),
        "improvements": int(verdicts.str.startswith("improvement").sum()),
        "within noise": int(verdicts.str.startswith("within noise").sum()),
        "unverified": int(verdicts.str.contains("unverified").sum()),
    }
    doc.h(2, "Against the baseline")
    doc.p(f"Compared with {comparison.base}: {len(rows)} matched row(s): "
          + ", ".join(f"{n} {k}" for k, n in counts.items())
          + f"; {len(comparison.only_base)} row(s) only in the baseline, {len(comparison.only_new)} only in this sweep "
          "(summary/compare.md lists them). Each row is the ratio of medians new / base (GPU compute time where both sides "
          "have it, else latency). A regression needs the 95% bootstrap interval of that ratio entirely above "
          f"{1 + comparison.min_effect:g} and a Mann-Whitney U p-value below {comparison.alpha:g} after Holm's correction "
          "across rows; smaller shifts are not called however significant. Rows without raw timings on one side are judged "
          "from median, cv and iteration count alone and say 'unverified (no raw timings)'. The summary does not fail on a "
          "regression: `trtpipe compare` is the gate (exit status 1).")
    if comparison.env_diffs:
        doc.p("What differs between the two environments (a verdict says what changed, not why):")
        doc.bullets(list(comparison.env_diffs))

    def table(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "engine": [engine_label(r) for _, r in frame.iterrows()], "batch": frame[C.BATCH].to_list(),
            "metric": frame["metric"].to_list(), "base ms": frame["base_median_ms"].map(fmt).to_list(),
            "new ms": frame["new_median_ms"].map(fmt).to_list(), "ratio": frame["ratio"].map(lambda v: f"{v:.3f}").to_list(),
            "CI": [f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(frame["ci_low"], frame["ci_high"])],
            "Holm p": frame["p_adjusted"].map(lambda v: "" if pd.isna(v) else f"{v:.2g}").to_list(),
            "verdict": frame["verdict"].to_list(),
        })

    for heading, frame in (("Regressions", comparison.regressions), ("Improvements", comparison.improvements)):
        if not frame.empty:
            doc.h(3, heading)
            doc.table(table(frame))


def models(doc: Doc, ctx: Context) -> None:
    for model in ctx.models:
        m = ModelContext(ctx, model)
        for section in MODEL_SECTIONS:
            section(doc, m)


# --- one model ------------------------------------------------------------------------------------------------
def best(doc: Doc, m: ModelContext) -> None:
    doc.h(2, f"Model {m.model}")
    b = m.ctx.best.get(m.model)
    if b:
        lat, thr = b["latency"], b["throughput"]
        doc.bullets([
            f"Lowest latency: {engine_label(lat)} at batch {lat[C.BATCH]}: median {fmt(lat[C.LATENCY_MEDIAN])} ms, "
            f"p99 {fmt(lat[C.LATENCY_P99])} ms.",
            f"Highest throughput: {engine_label(thr)} at batch {thr[C.BATCH]}: {fmt(thr[C.THROUGHPUT])} samples/s "
            f"(median {fmt(thr[C.LATENCY_MEDIAN])} ms per batch).",
        ])
    if any(A.excluded(r, m.ctx.failed) for _, r in m.rows.iterrows()):
        doc.p("Engines that failed their accuracy check (their own, or their precision's) are excluded from the best "
              "configuration.")


def not_built(doc: Doc, m: ModelContext) -> None:
    skipped = m.ctx.inputs.skipped.get(m.model)
    if not skipped:
        return
    made = {st["precision"] for st in m.ctx.precisions if st["model"] == m.model}
    kept = sorted({p for _, p in skipped} & made)
    lost = sorted({p for _, p in skipped} - made)
    text = "Not built: " + "; ".join(f"{p} on {b} ({skip_reason(b, p, precision_named=True)})" for b, p in skipped)
    if kept:
        text += f"; the {', '.join(kept)} precision ONNX and its parity are still in accuracy.csv"
    if lost:
        text += (f"; no {', '.join(lost)} precision ONNX was made either, since no backend of this sweep builds "
                 f"{'it' if len(lost) == 1 else 'them'}")
    doc.p(text + ".")


def plot(doc: Doc, m: ModelContext) -> None:
    if m.model in m.ctx.plots:
        doc.image(m.ctx.plots[m.model], f"{m.model} latency and throughput vs batch")


def _mib(rows: pd.DataFrame, column: str) -> pd.Series:
    """A memory column in MiB for the report; rows of CSVs written before the column existed stay empty."""
    if column not in rows.columns:
        return pd.Series("", index=rows.index)
    return pd.to_numeric(rows[column], errors="coerce").map(lambda v: "" if pd.isna(v) else f"{v / 2**20:.1f}")


def latency_and_throughput(doc: Doc, m: ModelContext) -> None:
    rows = m.rows
    if rows.empty:
        doc.p("No engine of this model finished: see Failures." if m.ctx.failures else "No benchmark results were given.")
        return
    table = rows.assign(
        engine=[engine_label(r) for _, r in rows.iterrows()],
        median_ms=rows[C.LATENCY_MEDIAN].map(fmt), p90_ms=rows[C.LATENCY_P90].map(fmt),
        p99_ms=rows[C.LATENCY_P99].map(fmt), samples_s=rows[C.THROUGHPUT].map(fmt),
        cv_pct=(100 * rows[C.CV]).map(lambda v: f"{v:.1f}"),
        tflops=rows[C.ACHIEVED_TFLOPS].map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
        of_peak=rows[C.EFFICIENCY].map(lambda v: "" if pd.isna(v) else f"{v:.1%}"),
        flag=rows[C.UNSTABLE].map(lambda u: "unstable" if u else "")
        + rows.get(C.WARNINGS, pd.Series("", index=rows.index)).fillna("").map(lambda w: f" {w}" if w else ""),
        device_mem_mib=_mib(rows, C.DEVICE_MEM), engine_mib=_mib(rows, C.ENGINE_BYTES), host_rss_mib=_mib(rows, C.HOST_RSS),
    )[["engine", C.BATCH, "median_ms", "p90_ms", "p99_ms", "samples_s", C.ITERATIONS, "cv_pct", "tflops", "of_peak",
       "device_mem_mib", "engine_mib", "host_rss_mib", "flag"]]
    doc.h(3, "Latency and throughput")
    doc.table(table)
    doc.p("Memory: device_mem_mib is the peak device memory while the engine was timed (TensorRT: the engine's "
          "own device memory plus its weights where the sidecar records them; PyTorch: "
          "torch.cuda.max_memory_allocated; empty on the CPU and for ONNX Runtime on the GPU, whose CUDA arena "
          "PyTorch's counter cannot see). engine_mib is the engine file; host_rss_mib the benchmark process's "
          "peak resident host memory.")


def build_cost(doc: Doc, m: ModelContext) -> None:
    if m.rows.empty:
        return
    build = A.build_costs(m.rows)
    if not build.empty:
        doc.h(3, "Build cost")
        doc.table(build)
        doc.p("build_s is the engine job's build (torch.compile's compilation included: the compiled modes "
              "compile there, once per profile); load_compile_s is what the benchmark job spent loading the "
              "compiled code and tracing before it timed (PyTorch), graphs the Dynamo graphs it holds; a row "
              "that compiled while timing says so in its flag.")


def budget(doc: Doc, m: ModelContext) -> None:
    entry = m.ctx.decisions.get(m.model)
    if not entry or "front" not in entry:
        return
    doc.h(3, "Within your budget")
    if entry["objective"]:
        doc.p(entry["pick_sentence"])
    else:
        doc.p(f"No budget is configured for {m.model} (objectives.{m.model}: p99_latency_ms, min_throughput); the "
              "lowest-latency and highest-throughput picks above are the choices without one.")
    doc.p("Every engine at every batch, p99 latency per call against samples/s. The step line is the Pareto front: the "
          "best throughput available within a latency budget; any point below it is beaten on both. p99 is per call: a "
          "request waits for its whole batch, and the time spent queueing to form the batch is not measured. Unstable rows "
          "have noisy p99s.")
    doc.image(entry["pareto_plot"], f"{m.model} Pareto front: p99 latency vs samples/s")
    front = entry["front"]
    doc.table(pd.DataFrame({
        "engine": [engine_label(r) for _, r in front.iterrows()], "batch": front[C.BATCH].to_list(),
        "p99_ms": front[C.LATENCY_P99].map(fmt).to_list(), "samples_s": front[C.THROUGHPUT].map(fmt).to_list(),
    }))


def traffic(doc: Doc, m: ModelContext) -> None:
    entry = m.ctx.decisions.get(m.model)
    if not entry or "ranking" not in entry:
        return
    ranking, suggestion = entry["ranking"], entry["suggestion"]
    mix = ", ".join(f"batch {b}: {w:.0%}" for b, w in batch_histogram(entry["traffic"]).items())
    doc.h(3, "For your traffic")
    doc.p(f"Requests by batch size ({mix}). {ranking.recommendation}")
    opts = ranking.options
    doc.table(opts.assign(
        coverage=opts["coverage"].map(lambda v: f"{v:.0%}"),
        expected_latency_ms=opts["expected_latency_ms"].map(fmt),
        max_throughput_samples_s=opts["max_throughput_samples_s"].map(fmt),
    )[["rank", "option", "coverage", "expected_latency_ms", "max_throughput_samples_s", "interpolated", "not_served"]])
    doc.p("Expected latency per request is the traffic-weighted median latency of the call that serves it. Between "
          "measured batches it is interpolated linearly in batch (the table says where); beyond them nothing is "
          "extrapolated: such a batch counts as not served, and only options that serve every batch you see are ranked. "
          "A static engine serves only its own batch; 'static engines, one per batch' deploys all of one backend and "
          "precision together.")
    doc.p(suggestion.sentence + " To build them, paste under profiles: (and name them in sweep.profiles): "
          + yaml.safe_dump(suggestion.as_config(), default_flow_style=True, sort_keys=False).strip())


def static_vs_dynamic(doc: Doc, m: ModelContext) -> None:
    s = m.of(m.ctx.static_vs_dynamic)
    if s.empty:
        return
    doc.h(3, "Static vs dynamic at equal batch")
    doc.p("dynamic_vs_static above 1 means the dynamic engine is slower than the static one at that batch.")
    doc.table(s.drop(columns=[C.MODEL]).assign(
        static_ms=s["static_ms"].map(fmt), dynamic_ms=s["dynamic_ms"].map(fmt),
        dynamic_vs_static=s["dynamic_vs_static"].map(lambda v: f"{v:.2f}")))


def batch_scaling(doc: Doc, m: ModelContext) -> None:
    sc = m.of(m.ctx.scaling)
    if sc.empty:
        return
    doc.h(3, "Batch scaling")
    verdicts = []
    for family, grp in sc.groupby("engines"):
        last = grp.iloc[-1]
        verdicts.append(f"{family}: {A.scaling_verdict(last['exponent'], last['throughput_gain'], last['ideal_gain'])}.")
    doc.bullets(verdicts)
    doc.table(sc.drop(columns=[C.MODEL, "exponent"]).assign(
        latency_ms_median=sc[C.LATENCY_MEDIAN].map(fmt), per_sample_ms=sc["per_sample_ms"].map(fmt),
        throughput_gain=sc["throughput_gain"].map(lambda v: f"{v:.2f}"), ideal_gain=sc["ideal_gain"].map(lambda v: f"{v:g}")))


def accuracy(doc: Doc, m: ModelContext) -> None:
    a = m.of(m.ctx.accuracy_overview)
    if a.empty:
        return
    doc.h(3, "Accuracy against PyTorch")
    if m.model in m.ctx.constant:
        doc.p(A.constant_warning(m.model, m.ctx.constant[m.model]))
    doc.p("An element fails only if it exceeds both atol and rtol (Polygraphy's rule); each row is the worst case "
          "over the artifact's reference batches (seeded random inputs) and outputs, and over the samples (case "
          "'data') where the model has them. 'judged_on' says what decided 'passed': random-input parity, parity on "
          "the samples (data), or the task metric on the samples (metric; random-input parity then only counts "
          "for gross errors: wrong shapes, NaN/Inf).")
    doc.table(a.drop(columns=[C.MODEL]).assign(
        max_abs_err=a["max_abs_err"].map(lambda v: f"{v:.2e}"), max_rel_err=a["max_rel_err"].map(lambda v: f"{v:.2e}"),
        worst_cosine=a["worst_cosine"].map(lambda v: f"{v:.6f}"),
        cosine_floor=a["cosine_floor"].map(lambda v: "" if pd.isna(v) else f"{v:g}"),
        passed=a[C.PASSED].map(lambda v: "pass" if v else "FAIL")))


def data_accuracy(doc: Doc, m: ModelContext) -> None:
    """The task metric of every artifact on the model's held-out samples, its thresholds and the verdicts."""
    table = data_table(m.ctx.accuracy, m.model)
    if table.empty:
        return
    doc.h(3, "Accuracy on your data")
    doc.p(data_summary(m.ctx.accuracy, m.model) + " Each score compares the artifact's outputs with PyTorch's on the "
          "same held-out samples; reduced precisions pass or fail on the thresholds, fp32 also on its elementwise "
          "tolerance. These verdicts decide 'best configuration' and the budget pick.")
    doc.table(table)


def checkpoint_loading(doc: Doc, m: ModelContext) -> None:
    loading = m.ctx.loading.get(m.model)
    if not loading or not (loading.get("ignored") or loading.get("missing") or loading.get("mismatched")):
        return
    parts = [f"{len(loading[k])} {k} ({', '.join(loading[k][:6])}{', ...' if len(loading[k]) > 6 else ''})"
             for k in ("ignored", "missing", "mismatched") if loading.get(k)]
    doc.p(f"Checkpoint loaded by {loading['loader']}: keys {'; '.join(parts)}. Ignored keys are stored tensors the "
          f"architecture does not use (a buffer older versions saved, a task head); missing weights keep their "
          f"initial values.")


def _calibration_text(calibration: dict[str, Any] | None) -> str:
    if not calibration:
        return ""
    repeated = (f", REPEATED to fill a batch of {calibration['repeated_to']}: fewer samples than the batch"
                if calibration.get("repeated_to") else "")
    if calibration["source"] == "random":
        return f"RANDOM ({calibration['samples']} seeded samples{repeated})"
    return f"{calibration['path']} ({calibration['samples']} samples{repeated})"


def precision_conversions(doc: Doc, m: ModelContext) -> None:
    prec = sorted((st for st in m.ctx.precisions if st["model"] == m.model), key=lambda st: (st["precision"], st["variant"]))
    if not prec:
        return
    doc.h(3, "Precision conversions")
    doc.p("Reduced precision lives in the ONNX (strongly typed, as TensorRT 11 builds it): AutoCast keeps sensitive "
          "nodes in fp32 and inserts casts; PTQ inserts Q/DQ nodes. 'passed' is the precision ONNX against PyTorch.")
    doc.table(pd.DataFrame([{
        "variant": st["variant"], "precision": st["precision"], "method": st["method"], "casts": st["casts"],
        "Q/DQ": f"{st['quantize_nodes']}/{st['dequantize_nodes']}",
        "calibration": _calibration_text(st.get("calibration")), "evaluated with": st.get("parity_runtime", ""),
        "passed": "pass" if st.get("passed") else "FAIL",
    } for st in prec]))
    doc.bullets(sorted({w for st in prec for w in st["warnings"]}))


def reduced_precision_pick(doc: Doc, m: ModelContext) -> None:
    """Speed against the metric for every engine, the accuracy-gated pick, the sensitivity ranking."""
    plot = m.ctx.plots.get(m.model)  # its plot is beside the latency plot (none: nothing was timed)
    if plot is not None:
        pick.section(doc, m.model, m.ctx.bench, m.ctx.precisions, m.ctx.sensitivity.get(m.model),
                     m.ctx.inputs.accept.get(m.model), Path(plot).parent, m.ctx.accuracy)


def simplification(doc: Doc, m: ModelContext) -> None:
    simp = sorted((st for st in m.ctx.simplify_stats if st["model"] == m.model), key=lambda st: st["variant"])
    if not simp:
        return
    doc.h(3, "Graph simplification")
    doc.table(pd.DataFrame([{"variant": st["variant"], "tool": st["tool"], "nodes_before": st["nodes_before"],
                             "nodes_after": st["nodes_after"],
                             "suspicious_reshapes": "; ".join(st["suspicious_reshapes"]) or "none"}
                            for st in simp]))


MODEL_SECTIONS: list[Callable[[Doc, ModelContext], None]] = [
    best, not_built, plot, latency_and_throughput, build_cost, budget, traffic, static_vs_dynamic, batch_scaling,
    accuracy, data_accuracy, checkpoint_loading, precision_conversions, reduced_precision_pick, simplification,
]
SECTIONS: list[Callable[[Doc, Context], None]] = [title, warnings, overview, failures, baseline, models]


def build_document(ctx: Context) -> Doc:
    doc = Doc()
    for section in SECTIONS:
        section(doc, ctx)
    return doc
