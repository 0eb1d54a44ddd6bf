"""What the report computes from the benchmark and accuracy tables: efficiency against the device's peak, the
engines excluded for failing their accuracy check, the best configurations, batch scaling, static against
dynamic, the accuracy overview, build costs and the deployment decisions (trtpipe.decide) per model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import decide
from ..backends import registry
from ..reference import CONSTANT_ATOL
from ..spec import Variant
from . import columns as C
from .render import engine_label

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
    bench[C.FLOPS_PER_SAMPLE] = bench[C.MODEL].map(lambda m: flops.get(m) or float("nan"))
    bench[C.ACHIEVED_TFLOPS] = bench[C.FLOPS_PER_SAMPLE] * bench[C.THROUGHPUT] / 1e12
    bench[C.PEAK_TFLOPS] = [peak_tflops(r.device, r.backend, r.precision, override) for r in bench.itertuples()]
    bench[C.EFFICIENCY] = bench[C.ACHIEVED_TFLOPS] / bench[C.PEAK_TFLOPS]
    return bench


def is_static(variant: str) -> bool:
    return not Variant.parse(variant).is_dynamic


Excluded = tuple[set[tuple], set[tuple]]


def failed_engines(accuracy: pd.DataFrame) -> Excluded:
    """What failed its accuracy check and is excluded from 'best configuration':
    engines (by ENGINE_KEYS) whose own check failed, and (model, variant, precision) ONNX files
    whose precision stage failed (every engine built from them). A model with samples and thresholds is judged on
    its task metric (trtpipe.evaluate.artifact_verdicts), others on parity."""
    from ..evaluate import artifact_verdicts

    if accuracy.empty:
        return set(), set()
    verdicts = artifact_verdicts(accuracy)  # on the samples' metric where the model has one, else on parity
    failed = verdicts[~verdicts[C.PASSED].astype(bool)]
    engines = {tuple(r[k] for k in C.ENGINE_KEYS) for _, r in failed[failed[C.STAGE] == "engine"].iterrows()}
    precisions = {(r[C.MODEL], r[C.VARIANT], r[C.PRECISION]) for _, r in failed[failed[C.STAGE] == "precision"].iterrows()}
    return engines, precisions


def excluded(row, failed: Excluded) -> bool:
    engines, precisions = failed
    return tuple(row[k] for k in C.ENGINE_KEYS) in engines or (row[C.MODEL], row[C.VARIANT], row[C.PRECISION]) in precisions


def passing_rows(rows: pd.DataFrame, failed: Excluded) -> pd.DataFrame:
    return rows[[not excluded(r, failed) for _, r in rows.iterrows()]]


def best_configurations(bench: pd.DataFrame, failed: Excluded) -> dict[str, dict[str, Any]]:
    """Per model: lowest median latency at its smallest batch, and highest samples/s at any batch."""
    out: dict[str, dict[str, Any]] = {}
    for model, rows in bench.groupby(C.MODEL):
        ok = passing_rows(rows, failed)
        if ok.empty:
            continue
        smallest = ok[ok[C.BATCH] == ok[C.BATCH].min()]
        out[model] = {
            "latency": smallest.loc[smallest[C.LATENCY_MEDIAN].idxmin()].to_dict(),
            "throughput": ok.loc[ok[C.THROUGHPUT].idxmax()].to_dict(),
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
        f"{r.backend} static-b* {r.precision}" if is_static(r.variant) else f"{r.backend} dynamic {r.precision} {r.profile}"
        for r in frame.itertuples()
    ]
    rows = []
    for (model, family), grp in frame.groupby([C.MODEL, "family"]):
        grp = grp.sort_values(C.BATCH)
        if grp[C.BATCH].nunique() < 2:
            continue
        base = grp.iloc[0]
        k = scaling_exponent(grp[C.BATCH].to_numpy(), grp[C.LATENCY_MEDIAN].to_numpy())
        for r in grp.itertuples():
            rows.append({
                C.MODEL: model, "engines": family, C.BATCH: r.batch,
                C.LATENCY_MEDIAN: r.latency_ms_median,
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
    for model, grp in bench.groupby(C.MODEL):
        static = grp[grp[C.VARIANT].map(is_static)]
        dynamic = grp[~grp[C.VARIANT].map(is_static)]
        for s in static.itertuples():
            same = (dynamic[C.BATCH] == s.batch) & (dynamic[C.BACKEND] == s.backend) & (dynamic[C.PRECISION] == s.precision)
            for d in dynamic[same].itertuples():
                rows.append({
                    C.MODEL: model, C.BACKEND: s.backend, C.PRECISION: s.precision, C.BATCH: s.batch,
                    "static_ms": s.latency_ms_median, "dynamic_profile": d.profile, "dynamic_ms": d.latency_ms_median,
                    "dynamic_vs_static": d.latency_ms_median / s.latency_ms_median,
                })
    return pd.DataFrame(rows)


def accuracy_overview(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Worst error per (model, stage, artifact)."""
    if accuracy.empty:
        return accuracy
    from ..evaluate import artifact_verdicts

    keys = [C.MODEL, C.STAGE, C.VARIANT, C.PRECISION, C.BACKEND, C.PROFILE]
    acc = accuracy[accuracy[C.STAGE] != "pytorch"].copy()  # PyTorch's own task score is no artifact
    acc[C.PROFILE] = acc[C.PROFILE].fillna("")
    acc[C.VARIANT] = acc[C.VARIANT].fillna("")
    overview = (acc.groupby(keys, sort=False)
                .agg(cases=(C.CASE, "nunique"), max_abs_err=(C.MAX_ABS_ERR, "max"), max_rel_err=(C.MAX_REL_ERR, "max"),
                     worst_cosine=(C.COSINE, "min"), atol=(C.ATOL, "first"), rtol=(C.RTOL, "first"),
                     cosine_floor=(C.MIN_COSINE, "first"))
                .reset_index())
    # the verdict: the task metric on the samples where the model has one (judged_on "metric"), else parity
    return overview.merge(artifact_verdicts(acc)[keys + [C.PASSED, "judged_on"]], on=keys, how="left")


def constant_outputs(accuracy: pd.DataFrame) -> dict[str, list[str]]:
    """Per model, the outputs whose PyTorch reference is the same for every input (CSVs older than the column: none)."""
    if accuracy.empty or C.REFERENCE_CONSTANT not in accuracy.columns:
        return {}
    flagged = accuracy[accuracy[C.REFERENCE_CONSTANT].eq(True)]
    return {model: sorted(set(rows[C.OUTPUT].astype(str))) for model, rows in flagged.groupby(C.MODEL)}


def constant_warning(model: str, outputs: list[str]) -> str:
    names = ", ".join(repr(o) for o in outputs)
    one = len(outputs) == 1
    return (f"WARNING: {model}'s reference output{'' if one else 's'} {names} {'is' if one else 'are'} the same for every "
            f"input (PyTorch gives the same values, to {CONSTANT_ATOL:g}, for every seeded random sample: a zero-initialised "
            f"head, or seeded weights?), so {'its' if one else 'their'} parity rows pass whatever an artifact does with "
            f"its input and prove nothing; fix: give trained weights (models.{model}.checkpoint, or the factory's "
            f"pretrained weights through models.{model}.factory_kwargs). The speed measurements still hold.")


def missing_stages(bench: pd.DataFrame, accuracy: pd.DataFrame, model: str) -> list[str]:
    """What a model lacks among the files given, when nobody said what was expected: every export that was
    checked must also have been simplified, and some engine must have been built and timed. (A failed stage
    writes no accuracy row, so "no failed row" alone would call a half-run model good.)"""
    acc = accuracy[accuracy[C.MODEL] == model]
    missing = []
    exported = set(acc[acc[C.STAGE] == "export"][C.VARIANT])
    simplified = set(acc[acc[C.STAGE] == "simplify"][C.VARIANT])
    if not exported:
        missing.append("export")
    missing += [f"simplify {v}" for v in sorted(exported - simplified)]
    if acc[acc[C.STAGE] == "engine"].empty:
        missing.append("engine")
    if bench[bench[C.MODEL] == model].empty:
        missing.append("benchmark")
    return missing


def build_costs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per engine: its build seconds and, for PyTorch's compiled modes, the benchmark job's load cost."""
    if C.BUILD_S not in rows or rows[C.BUILD_S].isna().all():
        return pd.DataFrame()
    rows = rows.reindex(columns=[*rows.columns, *{C.COMPILE_S, C.GRAPHS_COMPILED} - set(rows.columns)])  # older CSVs
    out = rows.assign(engine=[engine_label(r) for _, r in rows.iterrows()]).groupby("engine", sort=False).agg(
        build_s=(C.BUILD_S, "first"), load_compile_s=(C.COMPILE_S, "max"), graphs=(C.GRAPHS_COMPILED, "max"),
    ).reset_index()
    seconds = lambda v: "" if pd.isna(v) else f"{v:.1f}"  # noqa: E731
    return out.assign(build_s=out["build_s"].map(seconds), load_compile_s=out["load_compile_s"].map(seconds),
                      graphs=out["graphs"].map(lambda v: "" if pd.isna(v) else str(int(v))))


def deployment_decisions(bench: pd.DataFrame, accuracy: pd.DataFrame, out_dir: Path, objectives: dict[str, dict],
                         traffic: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """Per model, on its rows without the engines that failed accuracy: the SLO pick, the Pareto front and plot
    (every model), the traffic ranking and suggested profiles (models with a traffic histogram)."""
    failed = failed_engines(accuracy)
    out: dict[str, dict[str, Any]] = {}
    for model in sorted(bench[C.MODEL].unique()) if not bench.empty else []:
        rows = passing_rows(bench[bench[C.MODEL] == model], failed)
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
