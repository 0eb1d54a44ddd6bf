"""The summary: concatenated CSVs, plots, and one report (Markdown and self-contained HTML).

Per model it answers the questions the seeds kept asking: which configuration is fastest for
latency and for throughput, does static beat dynamic at the same batch, does batching pay at all
(or does latency grow linearly with batch), and does every stage still match PyTorch.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import atomic_path, write_csv, write_text
from .parity import ACCURACY_COLUMNS
from .reference import CONSTANT_ATOL
from .spec import Variant

log = logging.getLogger(__name__)

LINEAR_EXPONENT = 0.9  # latency ~ batch^k with k >= this: batching buys (almost) nothing

# Dense (no sparsity) peak TFLOP/s from NVIDIA's datasheets, per precision; the first name that occurs
# in a row's device wins (so "H100 PCIe" before "H100"). Override with the config's peak_tflops.
PEAK_TFLOPS = [
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0, "int8": 1513.0, "fp8": 1513.0}),
    ("H100", {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9, "fp8": 1978.9}),
    ("H200", {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9, "fp8": 1978.9}),
    ("A100", {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0, "int8": 624.0}),
    ("L40S", {"fp32": 91.6, "tf32": 183.0, "fp16": 362.0, "bf16": 362.0, "int8": 733.0, "fp8": 733.0}),
    ("L4", {"fp32": 30.3, "tf32": 60.0, "fp16": 121.0, "bf16": 121.0, "int8": 242.0, "fp8": 242.0}),
]


def peak_tflops(device: str, backend: str, precision: str, override: dict[str, float] | None = None) -> float:
    """The device's peak for the math a row ran (a backend may run fp32 engines with TF32 kernels)."""
    from .backends import registry

    key = registry.get(backend).fp32_math if precision == "fp32" and backend in registry.BACKENDS else precision
    if override and key in override:
        return float(override[key])
    for name, peaks in PEAK_TFLOPS:
        if name in str(device):
            return peaks.get(key, float("nan"))
    return float("nan")


def add_efficiency(bench: pd.DataFrame, flops: dict[str, float | None], override: dict[str, float] | None = None) -> pd.DataFrame:
    """Achieved TFLOP/s (FLOPs per sample x samples/s) and its share of the device's peak."""
    bench = bench.copy()
    bench["flops_per_sample"] = bench["model"].map(lambda m: flops.get(m) or float("nan"))
    bench["achieved_tflops"] = bench["flops_per_sample"] * bench["throughput_samples_s"] / 1e12
    bench["peak_tflops"] = [peak_tflops(r.device, r.backend, r.precision, override) for r in bench.itertuples()]
    bench["efficiency"] = bench["achieved_tflops"] / bench["peak_tflops"]
    return bench
ENGINE_KEYS = ["model", "backend", "variant", "precision", "profile"]


# --- a tiny document model rendered to both Markdown and HTML ---------------------------------
@dataclass
class Doc:
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def image(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))

    def markdown(self, relative_to: Path) -> str:
        out = []
        for kind, value in self.blocks:
            if kind == "h":
                out.append("#" * value[0] + " " + value[1])
            elif kind == "p":
                out.append(value)
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in value))
            elif kind == "table":
                out.append(markdown_table(value))
            elif kind == "img":
                out.append(f"![{value[1]}]({value[0].relative_to(relative_to).as_posix()})")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        body = []
        for kind, value in self.blocks:
            if kind == "h":
                body.append(f"<h{value[0]}>{html.escape(value[1])}</h{value[0]}>")
            elif kind == "p":
                body.append(f"<p>{html.escape(value)}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in value) + "</ul>")
            elif kind == "table":
                body.append(value.to_html(index=False, border=0, classes="t", na_rep="", escape=True))
            elif kind == "img":
                data = base64.b64encode(value[0].read_bytes()).decode()
                body.append(f'<img alt="{html.escape(value[1])}" src="data:image/png;base64,{data}">')
        style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
                 "table.t{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}"
                 "table.t th,table.t td{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
                 "table.t th{background:#f3f3f3}img{max-width:100%}h2{border-bottom:1px solid #ddd}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def markdown_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join("" if (isinstance(v, float) and math.isnan(v)) else str(v) for v in row) + " |")
    return "\n".join(lines)


# --- analysis ------------------------------------------------------------------------------------
def _is_static(variant: str) -> bool:
    return not Variant.parse(variant).is_dynamic


def engine_label(row: pd.Series | dict) -> str:
    return f"{row['backend']} {row['variant']} {row['precision']} {row['profile']}"


def failed_engines(accuracy: pd.DataFrame) -> tuple[set[tuple], set[tuple]]:
    """What failed its accuracy check and is excluded from 'best configuration':
    engines (by ENGINE_KEYS) whose own parity failed, and (model, variant, precision) ONNX files
    whose precision stage failed (every engine built from them)."""
    from .evaluate import artifact_verdicts

    if accuracy.empty:
        return set(), set()
    verdicts = artifact_verdicts(accuracy)  # on the samples' metric where the model has one, else on parity
    failed = verdicts[~verdicts["passed"].astype(bool)]
    engines = {tuple(r[k] for k in ENGINE_KEYS) for _, r in failed[failed["stage"] == "engine"].iterrows()}
    precisions = {(r["model"], r["variant"], r["precision"]) for _, r in failed[failed["stage"] == "precision"].iterrows()}
    return engines, precisions


def _excluded(row, excluded: tuple[set[tuple], set[tuple]]) -> bool:
    engines, precisions = excluded
    return tuple(row[k] for k in ENGINE_KEYS) in engines or (row["model"], row["variant"], row["precision"]) in precisions


def best_configurations(bench: pd.DataFrame, excluded: tuple[set[tuple], set[tuple]]) -> dict[str, dict[str, Any]]:
    """Per model: lowest median latency at its smallest batch, and highest samples/s at any batch."""
    out: dict[str, dict[str, Any]] = {}
    for model, rows in bench.groupby("model"):
        ok = rows[[not _excluded(r, excluded) for _, r in rows.iterrows()]]
        if ok.empty:
            continue
        smallest = ok[ok["batch"] == ok["batch"].min()]
        out[model] = {
            "latency": smallest.loc[smallest["latency_ms_median"].idxmin()].to_dict(),
            "throughput": ok.loc[ok["throughput_samples_s"].idxmax()].to_dict(),
        }
    return out


def scaling_exponent(batches: np.ndarray, latencies: np.ndarray) -> float:
    """k in latency ~ batch^k (least squares in log-log): 1 means batching gives nothing."""
    x, y = np.log(batches.astype(float)), np.log(latencies.astype(float))
    return float(np.polyfit(x, y, 1)[0])


def batch_scaling(bench: pd.DataFrame) -> pd.DataFrame:
    """Per engine family with >= 2 batches: per-sample latency and throughput gain vs the smallest batch.

    The static engines of one model form a family too (one engine per batch).
    """
    frame = bench.copy()
    frame["family"] = [
        f"{r.backend} static-b* {r.precision}" if _is_static(r.variant) else f"{r.backend} dynamic {r.precision} {r.profile}"
        for r in frame.itertuples()
    ]
    rows = []
    for (model, family), grp in frame.groupby(["model", "family"]):
        grp = grp.sort_values("batch")
        if grp["batch"].nunique() < 2:
            continue
        base = grp.iloc[0]
        k = scaling_exponent(grp["batch"].to_numpy(), grp["latency_ms_median"].to_numpy())
        for r in grp.itertuples():
            rows.append({
                "model": model, "engines": family, "batch": r.batch,
                "latency_ms_median": r.latency_ms_median,
                "per_sample_ms": r.latency_ms_median / r.batch,
                "throughput_gain": r.throughput_samples_s / base.throughput_samples_s,
                "ideal_gain": r.batch / base.batch,
                "exponent": k,
            })
    return pd.DataFrame(rows)


def scaling_verdict(exponent: float, gain: float, batch_ratio: float) -> str:
    if exponent >= LINEAR_EXPONENT:
        return (f"latency grows linearly with batch (latency ~ batch^{exponent:.2f}): batching gives nothing here — "
                f"{batch_ratio:g}x the batch buys only {gain:.2f}x the throughput")
    if exponent <= 0.5:
        return f"batching pays: {batch_ratio:g}x the batch gives {gain:.2f}x the throughput (latency ~ batch^{exponent:.2f})"
    return f"batching helps partly: {batch_ratio:g}x the batch gives {gain:.2f}x the throughput (latency ~ batch^{exponent:.2f})"


def static_vs_dynamic(bench: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for model, grp in bench.groupby("model"):
        static = grp[grp["variant"].map(_is_static)]
        dynamic = grp[~grp["variant"].map(_is_static)]
        for s in static.itertuples():
            for d in dynamic[(dynamic["batch"] == s.batch) & (dynamic["backend"] == s.backend) & (dynamic["precision"] == s.precision)].itertuples():
                rows.append({
                    "model": model, "backend": s.backend, "precision": s.precision, "batch": s.batch,
                    "static_ms": s.latency_ms_median, "dynamic_profile": d.profile, "dynamic_ms": d.latency_ms_median,
                    "dynamic_vs_static": d.latency_ms_median / s.latency_ms_median,
                })
    return pd.DataFrame(rows)


def accuracy_overview(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Worst error per (model, stage, artifact)."""
    if accuracy.empty:
        return accuracy
    keys = ["model", "stage", "variant", "precision", "backend", "profile"]
    acc = accuracy.copy()
    acc["profile"] = acc["profile"].fillna("")
    return (acc.groupby(keys, sort=False)
            .agg(cases=("case", "nunique"), max_abs_err=("max_abs_err", "max"), max_rel_err=("max_rel_err", "max"),
                 worst_cosine=("cosine", "min"), atol=("atol", "first"), rtol=("rtol", "first"),
                 cosine_floor=("min_cosine", "first"), passed=("passed", "all"))
            .reset_index())


def constant_outputs(accuracy: pd.DataFrame) -> dict[str, list[str]]:
    """Per model, the outputs whose PyTorch reference is the same for every input (CSVs older than the column: none)."""
    if accuracy.empty or "reference_constant" not in accuracy.columns:
        return {}
    flagged = accuracy[accuracy["reference_constant"].eq(True)]
    return {model: sorted(set(rows["output"].astype(str))) for model, rows in flagged.groupby("model")}


def constant_warning(model: str, outputs: list[str]) -> str:
    names = ", ".join(repr(o) for o in outputs)
    one = len(outputs) == 1
    return (f"WARNING: {model}'s reference output{'' if one else 's'} {names} {'is' if one else 'are'} the same for every "
            f"input (PyTorch gives the same values, to {CONSTANT_ATOL:g}, for every seeded random sample: a zero-initialised "
            f"head, or seeded weights?), so {'its' if one else 'their'} parity rows pass whatever an artifact does with "
            f"its input and prove nothing; fix: give trained weights (models.{model}.checkpoint, or the factory's "
            f"pretrained weights through models.{model}.factory_kwargs). The speed measurements still hold.")


def _calibration_text(calibration: dict[str, Any] | None) -> str:
    if not calibration:
        return ""
    repeated = (f", REPEATED to fill a batch of {calibration['repeated_to']}: fewer samples than the batch"
                if calibration.get("repeated_to") else "")
    if calibration["source"] == "random":
        return f"RANDOM ({calibration['samples']} seeded samples{repeated})"
    return f"{calibration['path']} ({calibration['samples']} samples{repeated})"


# --- plots ---------------------------------------------------------------------------------------
def plot_model(bench: pd.DataFrame, model: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = bench[bench["model"] == model]
    fig, (ax_lat, ax_thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    groups = rows.assign(line=[
        f"{r.backend} static (one engine per batch) {r.precision}" if _is_static(r.variant)
        else f"{r.backend} dynamic {r.precision} [{r.profile} {r.profile_min}-{r.profile_max}]" for r in rows.itertuples()
    ]).groupby("line")
    for label, grp in groups:
        grp = grp.sort_values("batch")
        style = "o--" if "static" in label else "s-"
        ax_lat.plot(grp["batch"], grp["latency_ms_median"], style, label=label)
        ax_thr.plot(grp["batch"], grp["throughput_samples_s"], style, label=label)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    batches = sorted(rows["batch"].unique())
    for ax, title, ylabel in ((ax_lat, "median latency", "ms"), (ax_thr, "throughput", "samples/s")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(batches)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("batch")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{model}: {title} vs batch")
        ax.grid(True, which="both", alpha=0.3)
    ax_thr.legend(fontsize=7, loc="best")
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """A PNG written atomically, the figure closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# --- the report ----------------------------------------------------------------------------------
def _fmt(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def summarize(bench_paths: list[str], accuracy_paths: list[str], simplify_stats: list[str], out_dir: str | Path,
              precision_stats: list[str] = (), skipped: dict[str, list[list[str]]] | None = None,
              flops_paths: list[str] = (), peaks: dict[str, float] | None = None, *,
              failures: list[dict[str, Any]] | None = None, models: list[str] | None = None,
              objectives: dict[str, dict[str, float]] | None = None, traffic: dict[str, dict] | None = None,
              baseline: str | None = None, compare_settings: dict[str, float] | None = None) -> None:
    """`failures` (rows of trtpipe.failures.failure_rows) and `models` (every model of the sweep) come from a
    run that did not finish; without them the report judges completeness from the files it was given."""
    from .benchmark import bench_columns

    out_dir = Path(out_dir)
    bench = (pd.concat([pd.read_csv(p) for p in bench_paths], ignore_index=True) if bench_paths
             else pd.DataFrame(columns=bench_columns()))
    accuracy = (pd.concat([pd.read_csv(p) for p in accuracy_paths], ignore_index=True)
                if accuracy_paths else pd.DataFrame(columns=ACCURACY_COLUMNS))
    accuracy["profile"] = accuracy["profile"].fillna("")
    bench = bench.sort_values(["model", "backend", "variant", "precision", "profile", "batch"]).reset_index(drop=True)
    flops = {f["model"]: f["flops_per_sample"] for f in (json.loads(Path(p).read_text()) for p in flops_paths)}
    bench = add_efficiency(bench, flops, peaks)
    write_csv(out_dir / "benchmarks.csv", bench)
    write_csv(out_dir / "accuracy.csv", accuracy)

    plots = {}
    for model in sorted(bench["model"].unique()):
        plots[model] = out_dir / "plots" / f"{model}.png"
        plot_model(bench, model, plots[model])

    comparison = None
    if baseline:
        from .compare import compare

        # The CSV form finds this sweep's raw timings two folders up (results/). A regression does not fail the
        # summary: gating is `trtpipe compare`'s exit status.
        comparison = compare(baseline, out_dir / "benchmarks.csv", **(compare_settings or {}))
        write_compare(comparison, out_dir)

    decisions = deployment_decisions(bench, accuracy, out_dir, objectives or {}, traffic or {})
    doc = build_document(bench, accuracy, simplify_stats, plots, precision_stats, skipped or {}, failures=failures,
                         models=models, decisions=decisions, comparison=comparison)
    write_text(out_dir / "report.md", doc.markdown(out_dir))
    write_text(out_dir / "report.html", doc.html("trtpipe report"))
    log.info("report: %s", out_dir / "report.html")


def _skip_reason(backend: str, precision: str) -> str:
    from .backends.registry import get

    b = get(backend)
    if precision in b.precisions:
        return f"{b.section}.precisions leaves it out"
    return f"{b.library} ({backend}) has no kernels for it"


def _status(missing: list[str], failed: bool) -> str:
    if not missing:
        return "ok"
    listed = "; ".join(missing[:3]) + ("; ..." if len(missing) > 3 else "")
    return f"FAILED: {listed}" if failed else f"not finished: {listed}"


def missing_stages(bench: pd.DataFrame, accuracy: pd.DataFrame, model: str) -> list[str]:
    """What a model lacks among the files given, when nobody said what was expected: every export that was
    checked must also have been simplified, and some engine must have been built and timed. (A failed stage
    writes no accuracy row, so "no failed row" alone would call a half-run model good.)"""
    acc = accuracy[accuracy["model"] == model]
    missing = []
    exported = set(acc[acc["stage"] == "export"]["variant"])
    simplified = set(acc[acc["stage"] == "simplify"]["variant"])
    if not exported:
        missing.append("export")
    missing += [f"simplify {v}" for v in sorted(exported - simplified)]
    if acc[acc["stage"] == "engine"].empty:
        missing.append("engine")
    if bench[bench["model"] == model].empty:
        missing.append("benchmark")
    return missing


def build_document(bench: pd.DataFrame, accuracy: pd.DataFrame, simplify_stats: list[str], plots: dict[str, Path],
                   precision_stats: list[str] = (), skipped: dict[str, list[list[str]]] | None = None, *,
                   failures: list[dict[str, Any]] | None = None, models: list[str] | None = None,
                   decisions: dict[str, dict[str, Any]] | None = None, comparison=None) -> Doc:
    doc = Doc()
    decisions = decisions or {}
    skipped = skipped or {}
    excluded = failed_engines(accuracy)
    precisions = [json.loads(Path(p).read_text()) for p in precision_stats]
    best = best_configurations(bench, excluded)
    scaling = batch_scaling(bench)
    svd = static_vs_dynamic(bench)
    acc = accuracy_overview(accuracy)
    constant = constant_outputs(accuracy)
    stats = [json.loads(Path(p).read_text()) for p in simplify_stats]

    doc.h(1, "trtpipe report")
    devices = ", ".join(sorted(bench["device"].astype(str).unique())) if not bench.empty else "none"
    revs = ", ".join(sorted(bench["git_rev"].astype(str).unique())) if not bench.empty else "unknown"
    doc.p(f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from workflow revision {revs}. Device: {devices}.")
    doc.p("Method: time-based warm-up, then timed until both the minimum duration and the minimum number of "
          "iterations are reached, rotating over several seeded random input sets. Latency is per call (one batch); "
          "throughput is samples/s over the wall time of the timed loop. CPU timings include moving inputs and "
          "outputs (there is nothing to transfer); GPU rows time host-to-device copies, compute and device-to-host "
          "copies with CUDA events and say whether transfers and CUDA graphs were included. cv is the coefficient of "
          "variation of the latency (on the GPU, stability is judged on compute time); unstable rows are flagged. "
          "tflops is FLOPs per sample (PyTorch's counter) times samples/s; of_peak divides it by the device's dense "
          "datasheet peak for the row's precision.")

    if not bench.empty and bench["unstable"].astype(bool).all():
        doc.p(f"Every row's cv is above the threshold ({bench['cv'].min():.1%} at best): this machine's timing noise "
              "(a shared or virtual host, other load) is larger than the differences the flag guards. Medians are "
              "more robust than means here; rerun on a quiet machine before drawing fine conclusions.")

    random_calibration = sorted({f"{st['model']} ({st['precision']})" for st in precisions
                                 if st.get("calibration", {}).get("source") == "random"})
    if random_calibration:
        doc.p("WARNING: " + ", ".join(random_calibration) + " were calibrated on seeded random inputs, not real data. "
              "Their accuracy numbers below compare random inputs with random inputs and say nothing about accuracy "
              "on real data; give models.<name>.calibration_data (an .npz of real samples) before trusting them.")
    for model, outputs in constant.items():
        doc.p(constant_warning(model, outputs))

    all_models = sorted({*bench["model"].unique(), *accuracy["model"].unique(), *(models or ()),
                         *(f["model"] for f in failures or ())})
    failed_jobs = {m: [f for f in failures or () if f["model"] == m] for m in all_models}
    overview = []
    for model in all_models:
        b = best.get(model)
        acc_m = acc[acc["model"] == model] if not acc.empty else acc
        n_fail = int((~acc_m["passed"].astype(bool)).sum()) if not acc_m.empty else 0
        unstable = int(bench[(bench["model"] == model)]["unstable"].astype(bool).sum())
        none = "none passed" if not bench[bench["model"] == model].empty else "none finished"
        if failures is not None:
            missing = [f"{f['stage']} {f['engine']}".strip() for f in failed_jobs[model] if f["log"]]
            not_run = sum(int(f["engine"].split()[0]) for f in failed_jobs[model] if not f["log"])
            missing += [f"{not_run} job(s) not run"] if not_run else []
        else:
            missing = missing_stages(bench, accuracy, model)
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
        if model in constant:  # a pass against an output that ignores its input is no pass
            verdict += (f"{', but' if verdict == 'all stages pass' else ';'} parity against "
                        f"{', '.join(map(repr, constant[model]))} PROVES NOTHING (PyTorch gives the same for every input)")
        overview.append({
            "model": model,
            "status": ("incomplete" if failures is None and missing else
                       _status(missing, any(f["log"] for f in failed_jobs[model]))),
            "best latency": f"{engine_label(b['latency'])} @ b{b['latency']['batch']}: {_fmt(b['latency']['latency_ms_median'])} ms" if b else none,
            "best throughput": f"{engine_label(b['throughput'])} @ b{b['throughput']['batch']}: {_fmt(b['throughput']['throughput_samples_s'])} samples/s" if b else none,
            "accuracy": verdict,
            "unstable rows": unstable,
        })
    doc.h(2, "Overview")
    if failures:
        doc.p(f"This run did not finish: {sum(1 for f in failures if f['log'])} job(s) failed or were cut off. The report "
              f"covers what finished; the Failures section says what did not, and why.")
    doc.table(pd.DataFrame(overview))
    if failures:
        doc.h(2, "Failures")
        doc.p("Each failed job with its one-sentence reason and its log; jobs that needed a failed job's output did not run.")
        doc.table(pd.DataFrame(failures, columns=["model", "stage", "engine", "reason", "log"]))
    if comparison is not None:
        comparison_section(doc, comparison)

    for model in all_models:
        rows = bench[bench["model"] == model]
        doc.h(2, f"Model {model}")
        b = best.get(model)
        if b:
            lat, thr = b["latency"], b["throughput"]
            doc.bullets([
                f"Lowest latency: {engine_label(lat)} at batch {lat['batch']}: median {_fmt(lat['latency_ms_median'])} ms, "
                f"p99 {_fmt(lat['latency_ms_p99'])} ms.",
                f"Highest throughput: {engine_label(thr)} at batch {thr['batch']}: {_fmt(thr['throughput_samples_s'])} samples/s "
                f"(median {_fmt(thr['latency_ms_median'])} ms per batch).",
            ])
        if any(_excluded(r, excluded) for _, r in rows.iterrows()):
            doc.p("Engines that failed their accuracy check (their own, or their precision's) are excluded from the best "
                  "configuration.")
        if skipped.get(model):
            made = {st["precision"] for st in precisions if st["model"] == model}
            kept = sorted({p for _, p in skipped[model]} & made)
            lost = sorted({p for _, p in skipped[model]} - made)
            text = "Not built: " + "; ".join(f"{p} on {b} ({_skip_reason(b, p)})" for b, p in skipped[model])
            if kept:
                text += f"; the {', '.join(kept)} precision ONNX and its parity are still in accuracy.csv"
            if lost:
                text += (f"; no {', '.join(lost)} precision ONNX was made either, since no backend of this sweep builds "
                         f"{'it' if len(lost) == 1 else 'them'}")
            doc.p(text + ".")
        if model in plots:
            doc.image(plots[model], f"{model} latency and throughput vs batch")

        if rows.empty:
            doc.p("No engine of this model finished: see Failures." if failures else "No benchmark results were given.")
        table = pd.DataFrame() if rows.empty else rows.assign(
            engine=[engine_label(r) for _, r in rows.iterrows()],
            median_ms=rows["latency_ms_median"].map(_fmt), p90_ms=rows["latency_ms_p90"].map(_fmt),
            p99_ms=rows["latency_ms_p99"].map(_fmt), samples_s=rows["throughput_samples_s"].map(_fmt),
            cv_pct=(100 * rows["cv"]).map(lambda v: f"{v:.1f}"),
            tflops=rows["achieved_tflops"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
            of_peak=rows["efficiency"].map(lambda v: "" if pd.isna(v) else f"{v:.1%}"),
            flag=rows["unstable"].map(lambda u: "unstable" if u else "")
            + rows.get("warnings", pd.Series("", index=rows.index)).fillna("").map(lambda w: f" {w}" if w else ""),
            device_mem_mib=_mib(rows, "device_mem_peak_bytes"), engine_mib=_mib(rows, "engine_bytes"),
            host_rss_mib=_mib(rows, "host_rss_peak_bytes"),
        )[["engine", "batch", "median_ms", "p90_ms", "p99_ms", "samples_s", "iterations", "cv_pct", "tflops", "of_peak",
           "device_mem_mib", "engine_mib", "host_rss_mib", "flag"]]
        if not rows.empty:
            doc.h(3, "Latency and throughput")
            doc.table(table)
            doc.p("Memory: device_mem_mib is the peak device memory while the engine was timed (TensorRT: the engine's "
                  "own device memory plus its weights where the sidecar records them; PyTorch: "
                  "torch.cuda.max_memory_allocated; empty on the CPU and for ONNX Runtime on the GPU, whose CUDA arena "
                  "PyTorch's counter cannot see). engine_mib is the engine file; host_rss_mib the benchmark process's "
                  "peak resident host memory.")
            build = build_costs(rows)
            if not build.empty:
                doc.h(3, "Build cost")
                doc.table(build)
                doc.p("build_s is the engine job's build (torch.compile's compilation included: the compiled modes "
                      "compile there, once per profile); load_compile_s is what the benchmark job spent loading the "
                      "compiled code and tracing before it timed (PyTorch), graphs the Dynamo graphs it holds; a row "
                      "that compiled while timing says so in its flag.")
        decision_sections(doc, model, (decisions or {}).get(model))

        s = svd[svd["model"] == model] if not svd.empty else svd
        if not s.empty:
            doc.h(3, "Static vs dynamic at equal batch")
            doc.p("dynamic_vs_static above 1 means the dynamic engine is slower than the static one at that batch.")
            doc.table(s.drop(columns=["model"]).assign(
                static_ms=s["static_ms"].map(_fmt), dynamic_ms=s["dynamic_ms"].map(_fmt),
                dynamic_vs_static=s["dynamic_vs_static"].map(lambda v: f"{v:.2f}")))

        sc = scaling[scaling["model"] == model] if not scaling.empty else scaling
        if not sc.empty:
            doc.h(3, "Batch scaling")
            verdicts = []
            for family, grp in sc.groupby("engines"):
                last = grp.iloc[-1]
                verdicts.append(f"{family}: {scaling_verdict(last['exponent'], last['throughput_gain'], last['ideal_gain'])}.")
            doc.bullets(verdicts)
            doc.table(sc.drop(columns=["model", "exponent"]).assign(
                latency_ms_median=sc["latency_ms_median"].map(_fmt), per_sample_ms=sc["per_sample_ms"].map(_fmt),
                throughput_gain=sc["throughput_gain"].map(lambda v: f"{v:.2f}"), ideal_gain=sc["ideal_gain"].map(lambda v: f"{v:g}")))

        a = acc[acc["model"] == model] if not acc.empty else acc
        if not a.empty:
            doc.h(3, "Accuracy against PyTorch")
            if model in constant:
                doc.p(constant_warning(model, constant[model]))
            doc.p("An element fails only if it exceeds both atol and rtol (Polygraphy's rule); each row is the worst case "
                  "over the artifact's reference batches and outputs.")
            doc.table(a.drop(columns=["model"]).assign(
                max_abs_err=a["max_abs_err"].map(lambda v: f"{v:.2e}"), max_rel_err=a["max_rel_err"].map(lambda v: f"{v:.2e}"),
                worst_cosine=a["worst_cosine"].map(lambda v: f"{v:.6f}"),
                cosine_floor=a["cosine_floor"].map(lambda v: "" if pd.isna(v) else f"{v:g}"),
                passed=a["passed"].map(lambda v: "pass" if v else "FAIL")))

        prec = sorted((st for st in precisions if st["model"] == model), key=lambda st: (st["precision"], st["variant"]))
        if prec:
            doc.h(3, "Precision conversions")
            doc.p("Reduced precision lives in the ONNX (strongly typed, as TensorRT 11 builds it): AutoCast keeps sensitive "
                  "nodes in fp32 and inserts casts; PTQ inserts Q/DQ nodes. 'passed' is the precision ONNX against PyTorch.")
            doc.table(pd.DataFrame([{
                "variant": st["variant"], "precision": st["precision"], "method": st["method"], "casts": st["casts"],
                "Q/DQ": f"{st['quantize_nodes']}/{st['dequantize_nodes']}",
                "calibration": _calibration_text(st.get("calibration")), "evaluated with": st.get("parity_runtime", ""),
                "passed": "pass" if st.get("passed") else "FAIL",
            } for st in prec]))
            notes = sorted({w for st in prec for w in st["warnings"]})
            doc.bullets(notes)

        simp = sorted((st for st in stats if st["model"] == model), key=lambda st: st["variant"])
        if simp:
            doc.h(3, "Graph simplification")
            doc.table(pd.DataFrame([{"variant": st["variant"], "tool": st["tool"], "nodes_before": st["nodes_before"],
                                     "nodes_after": st["nodes_after"],
                                     "suspicious_reshapes": "; ".join(st["suspicious_reshapes"]) or "none"}
                                    for st in simp]))
    return doc


# --- issue 15: memory, deployment decisions, the comparison against a baseline -------------------------
def build_costs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per engine: its build seconds and, for PyTorch's compiled modes, the benchmark job's load cost."""
    if "engine_build_s" not in rows or rows["engine_build_s"].isna().all():
        return pd.DataFrame()
    rows = rows.reindex(columns=[*rows.columns, *{"compile_s", "graphs_compiled"} - set(rows.columns)])  # older CSVs
    out = rows.assign(engine=[engine_label(r) for _, r in rows.iterrows()]).groupby("engine", sort=False).agg(
        build_s=("engine_build_s", "first"), load_compile_s=("compile_s", "max"), graphs=("graphs_compiled", "max"),
    ).reset_index()
    seconds = lambda v: "" if pd.isna(v) else f"{v:.1f}"  # noqa: E731
    return out.assign(build_s=out["build_s"].map(seconds), load_compile_s=out["load_compile_s"].map(seconds),
                      graphs=out["graphs"].map(lambda v: "" if pd.isna(v) else str(int(v))))


def _mib(rows: pd.DataFrame, column: str) -> pd.Series:
    """A memory column in MiB for the report; rows of CSVs written before the column existed stay empty."""
    if column not in rows.columns:
        return pd.Series("", index=rows.index)
    return pd.to_numeric(rows[column], errors="coerce").map(lambda v: "" if pd.isna(v) else f"{v / 2**20:.1f}")


def deployment_decisions(bench: pd.DataFrame, accuracy: pd.DataFrame, out_dir: Path, objectives: dict[str, dict],
                         traffic: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """Per model, on its rows without the engines that failed accuracy: the SLO pick, the Pareto front and plot
    (every model), the traffic ranking and suggested profiles (models with a traffic histogram)."""
    from . import decide

    excluded = failed_engines(accuracy)
    out: dict[str, dict[str, Any]] = {}
    for model in sorted(bench["model"].unique()) if not bench.empty else []:
        rows = bench[bench["model"] == model]
        rows = rows[[not _excluded(r, excluded) for _, r in rows.iterrows()]]
        entry: dict[str, Any] = {"objective": objectives.get(model), "pick": None, "pick_sentence": None}
        if rows.empty:  # every engine failed its accuracy check: the plot (a rule output) says so
            decide.pareto_plot(rows, None, out_dir / "plots" / f"{model}.pareto.png",
                               empty_note=f"{model}: no engine passed its accuracy check (see Accuracy)")
            out[model] = entry
            continue
        if entry["objective"]:
            entry["pick"], entry["pick_sentence"] = decide.slo_pick(rows, entry["objective"])
        entry["front"] = decide.pareto_front(rows)
        entry["pareto_plot"] = decide.pareto_plot(rows, entry["pick"], out_dir / "plots" / f"{model}.pareto.png")
        if traffic.get(model):
            entry["traffic"] = traffic[model]
            entry["ranking"] = decide.traffic_ranking(rows, traffic[model])
            entry["suggestion"] = decide.suggest_profiles(traffic[model], k=2)
        out[model] = entry
    return out


def decision_sections(doc: Doc, model: str, entry: dict[str, Any] | None) -> None:
    if not entry or "front" not in entry:
        return
    doc.h(3, "Within your budget")
    if entry["objective"]:
        doc.p(entry["pick_sentence"])
    else:
        doc.p(f"No budget is configured for {model} (objectives.{model}: p99_latency_ms, min_throughput); the lowest-latency "
              "and highest-throughput picks above are the choices without one.")
    doc.p("Every engine at every batch, p99 latency per call against samples/s. The step line is the Pareto front: the "
          "best throughput available within a latency budget; any point below it is beaten on both. p99 is per call: a "
          "request waits for its whole batch, and the time spent queueing to form the batch is not measured. Unstable rows "
          "have noisy p99s.")
    doc.image(entry["pareto_plot"], f"{model} Pareto front: p99 latency vs samples/s")
    front = entry["front"]
    doc.table(pd.DataFrame({
        "engine": [engine_label(r) for _, r in front.iterrows()], "batch": front["batch"].to_list(),
        "p99_ms": front["latency_ms_p99"].map(_fmt).to_list(), "samples_s": front["throughput_samples_s"].map(_fmt).to_list(),
    }))
    if "ranking" not in entry:
        return
    import yaml

    from .decide import batch_histogram

    ranking, suggestion = entry["ranking"], entry["suggestion"]
    mix = ", ".join(f"batch {b}: {w:.0%}" for b, w in batch_histogram(entry["traffic"]).items())
    doc.h(3, "For your traffic")
    doc.p(f"Requests by batch size ({mix}). {ranking.recommendation}")
    opts = ranking.options
    doc.table(opts.assign(
        coverage=opts["coverage"].map(lambda v: f"{v:.0%}"),
        expected_latency_ms=opts["expected_latency_ms"].map(_fmt),
        max_throughput_samples_s=opts["max_throughput_samples_s"].map(_fmt),
    )[["rank", "option", "coverage", "expected_latency_ms", "max_throughput_samples_s", "interpolated", "not_served"]])
    doc.p("Expected latency per request is the traffic-weighted median latency of the call that serves it. Between "
          "measured batches it is interpolated linearly in batch (the table says where); beyond them nothing is "
          "extrapolated: such a batch counts as not served, and only options that serve every batch you see are ranked. "
          "A static engine serves only its own batch; 'static engines, one per batch' deploys all of one backend and "
          "precision together.")
    doc.p(suggestion.sentence + " To build them, paste under profiles: (and name them in sweep.profiles): "
          + yaml.safe_dump(suggestion.as_config(), default_flow_style=True, sort_keys=False).strip())


def write_compare(comparison, out_dir: Path) -> None:
    from .compare import render_markdown

    write_text(out_dir / "compare.md", render_markdown(comparison))
    write_csv(out_dir / "compare.csv", comparison.rows)


def comparison_section(doc: Doc, comparison) -> None:
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
            "engine": [engine_label(r) for _, r in frame.iterrows()], "batch": frame["batch"].to_list(),
            "metric": frame["metric"].to_list(), "base ms": frame["base_median_ms"].map(_fmt).to_list(),
            "new ms": frame["new_median_ms"].map(_fmt).to_list(), "ratio": frame["ratio"].map(lambda v: f"{v:.3f}").to_list(),
            "CI": [f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(frame["ci_low"], frame["ci_high"])],
            "Holm p": frame["p_adjusted"].map(lambda v: "" if pd.isna(v) else f"{v:.2g}").to_list(),
            "verdict": frame["verdict"].to_list(),
        })

    for title, frame in (("Regressions", comparison.regressions), ("Improvements", comparison.improvements)):
        if not frame.empty:
            doc.h(3, title)
            doc.table(table(frame))
