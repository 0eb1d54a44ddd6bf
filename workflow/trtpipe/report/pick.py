"""The accuracy-gated pick: every engine's speed at the smallest batch against its metric on the evaluation
samples, the sensitivity ranking, and the fastest engine that meets every threshold, said in one sentence.

Inputs are what the sweep wrote: benchmark rows, the precision stats JSONs (method, metric, nodes kept in float)
and the sensitivity rankings. fp32 engines are the reference the metric compares with, so they meet it by
definition; an engine whose precision has no metric (tf32, the PyTorch backends) is not judged and never picked.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..quantize import shortfall

ENGINE = ["backend", "variant", "precision", "profile"]


def candidate_rows(bench: pd.DataFrame, precision_stats: list[dict[str, Any]], model: str,
                   accept: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per engine of `model` at its smallest benchmarked batch: median latency, speed-up against the fp32
    engine of the same backend, variant and profile, the metric, and how the precision was made."""
    # Judged against today's thresholds (`accept`), not those stored at conversion: a changed threshold reruns only
    # the search candidates, whose nodes kept in float depend on it, so a plain precision's stored verdict can be old.
    rows = bench[bench["model"] == model]
    if rows.empty:
        return pd.DataFrame()
    batch = int(rows["batch"].min())
    rows = rows[rows["batch"] == batch]
    stats = {(st["variant"], st["precision"]): st for st in precision_stats if st["model"] == model}
    fp32 = {(r.backend, r.variant, r.profile): float(r.latency_ms_median) for r in rows[rows["precision"] == "fp32"].itertuples()}
    out = []
    for r in rows.itertuples():
        st = stats.get((r.variant, r.precision))
        metric = (st or {}).get("metric")
        base = fp32.get((r.backend, r.variant, r.profile))
        kept = (st or {}).get("kept_float")
        out.append({
            "model": model, "backend": r.backend, "variant": r.variant, "precision": r.precision, "profile": r.profile,
            "batch": batch, "median_ms": float(r.latency_ms_median),
            "speedup": base / float(r.latency_ms_median) if base else math.nan,
            "made_by": (st or {}).get("method", "fp32 (the simplified ONNX)" if r.precision == "fp32" else ""),
            "kept_float": kept or [],
            "scores": metric["scores"] if metric else ({} if r.precision != "fp32" else None),
            "judged": bool(metric) or r.precision == "fp32",
            "met": (shortfall(metric["scores"], accept) == 0 if accept else bool(metric["met"])) if metric
                   else r.precision == "fp32",
            "shortfall": (shortfall(metric["scores"], accept) if accept else float(metric["shortfall"])) if metric
                         else (0.0 if r.precision == "fp32" else math.nan),
            "samples": int(metric["samples"]) if metric else 0,
            "data": metric["data"] if metric else "",
        })
    return pd.DataFrame(out)


def pick(rows: pd.DataFrame) -> dict[str, Any]:
    """The fastest judged engine meeting every threshold; without one, the judged engine nearest to meeting them
    (smallest shortfall, then fastest)."""
    judged = rows[rows["judged"]] if not rows.empty else rows
    if judged.empty:
        return {"pick": None, "nearest": None}
    met = judged[judged["met"]].sort_values("median_ms")
    if not met.empty:
        return {"pick": met.iloc[0].to_dict(), "nearest": None}
    return {"pick": None, "nearest": judged.sort_values(["shortfall", "median_ms"]).iloc[0].to_dict()}


def _engine(r: dict[str, Any]) -> str:
    return f"{r['backend']} {r['variant']} {r['precision']} {r['profile']}"


def _scores(r: dict[str, Any], accept: dict[str, float] | None = None) -> str:
    """The scores, or with `accept` only those it sets thresholds for."""
    return ", ".join(f"{k} {v:.4f}" for k, v in sorted((r["scores"] or {}).items())
                     if (k in accept if accept else k != "min_cosine"))


def _kept(r: dict[str, Any]) -> str:
    kept = r["kept_float"]
    if not kept:
        return "no node kept in float"
    names = ", ".join(f"{k['node']} ({k['op']})" for k in kept[:5]) + (", ..." if len(kept) > 5 else "")
    return f"{len(kept)} node(s) kept in float: {names}"


def sentence(result: dict[str, Any], accept: dict[str, float]) -> str:
    """The pick in one plain sentence, or the nearest miss and by how much."""
    thresholds = ", ".join(f"{k} >= {v:g}" for k, v in sorted(accept.items()))
    r = result["pick"]
    if r is not None:
        if r["precision"] == "fp32":
            return (f"Pick at batch {r['batch']}: {_engine(r)} ({r['median_ms']:.3g} ms): no reduced-precision engine is "
                    f"both faster than fp32 and within the thresholds ({thresholds}).")
        return (f"Pick at batch {r['batch']}: {_engine(r)}, made by {r['made_by']}, {_kept(r)}; "
                f"{r['speedup']:.2f}x the speed of fp32 ({r['median_ms']:.3g} ms); {_scores(r, accept)} against fp32 on "
                f"{r['samples']} held-out {'samples' if r['data'] == 'data' else 'seeded random inputs'} "
                f"(thresholds {thresholds}).")
    n = result["nearest"]
    if n is None:
        return "No engine has a metric to judge it by, so none is picked."
    return (f"No engine meets every threshold ({thresholds}); the nearest miss is {_engine(n)} ({_scores(n, accept)}, short by "
            f"{n['shortfall']:.4f}, {n['speedup']:.2f}x fp32's speed).")


def accuracy_plot(rows: pd.DataFrame, accept: dict[str, float], path: str | Path) -> Path:
    """Speed-up against fp32 vs the metric, one point per judged engine, the thresholds drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .render import save_figure

    path = Path(path)
    judged = rows[rows["judged"] & rows["speedup"].notna()] if not rows.empty else rows
    fig, ax = plt.subplots(figsize=(8, 5))
    metrics = sorted({k for s in judged["scores"] if s for k in s if k in accept}) if not judged.empty else []
    for metric, marker in zip(metrics, "os^"):
        y = [(s or {}).get(metric, 1.0) for s in judged["scores"]]
        ax.scatter(judged["speedup"], y, marker=marker, label=metric)
        for x, yy, p in zip(judged["speedup"], y, judged["precision"]):
            ax.annotate(p, (x, yy), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.axhline(accept[metric], linestyle="--", linewidth=1, color="red", label=f"{metric} threshold {accept[metric]:g}")
    ax.axvline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("speed-up against fp32 at the smallest batch (median latency)")
    ax.set_ylabel("agreement with fp32 on the evaluation samples")
    ax.set_title(f"{', '.join(sorted(rows['model'].unique())) if not rows.empty else ''}: speed vs accuracy")
    ax.grid(True, alpha=0.3)
    if metrics:
        ax.legend(fontsize=7, loc="best")
    save_figure(fig, path)
    return path


def section(doc, model: str, bench: pd.DataFrame, precision_stats: list[dict[str, Any]],
            sensitivity: dict[str, Any] | None, accept: dict[str, float] | None, plots_dir: Path, top: int = 10) -> None:
    """The report's "Reduced precision: accuracy and the pick" part for one model (nothing without a metric)."""
    accept = accept or next((st["metric"]["accept"] for st in precision_stats
                             if st["model"] == model and st.get("metric")), {})
    rows = candidate_rows(bench, precision_stats, model, accept)
    if rows.empty or not (rows["precision"] != "fp32").any():
        return
    doc.h(3, "Reduced precision: accuracy and the pick")
    doc.p(sentence(pick(rows), accept))
    data = sorted(set(rows["data"]) - {""})
    if data == ["random"]:
        doc.p("The metric here was measured on seeded random inputs, not on your data: give models."
              f"{model}.calibration_data (real samples; one part calibrates, the rest evaluates) before trusting it.")
    rows = rows.sort_values("median_ms")
    table = rows.assign(
        engine=[_engine(r) for r in rows.to_dict("records")], median_ms=rows["median_ms"].map(lambda v: f"{v:.3g}"),
        speedup=rows["speedup"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}x"),
        kept_float=rows["kept_float"].map(lambda k: ", ".join(n["node"] for n in k) if k else ""),
        metric=[_scores(r) if r["scores"] is not None else "reference" for r in rows.to_dict("records")],
        verdict=[("meets" if r["met"] else f"misses by {r['shortfall']:.4f}") if r["judged"] else "not judged"
                 for r in rows.to_dict("records")],
    )[
        ["engine", "batch", "median_ms", "speedup", "made_by", "kept_float", "metric", "samples", "verdict"]]
    table["samples"] = table["samples"].map(lambda n: str(n) if n else "")
    doc.table(table)
    plots_dir.mkdir(parents=True, exist_ok=True)
    doc.image(accuracy_plot(rows, accept, plots_dir / f"{model}.accuracy.png"), f"{model} speed vs accuracy")
    if sensitivity and sensitivity.get("nodes"):
        nodes = sensitivity["nodes"]
        doc.p(f"Sensitivity ({len(nodes)} quantizable nodes, {sensitivity['data']['evaluation_samples']} evaluation "
              f"samples, {sensitivity['recipe']}): {sensitivity['measure']}; the {min(top, len(nodes))} most sensitive:")
        doc.table(pd.DataFrame([{"rank": n["rank"], "node": n["node"], "op": n["op"], "loss": f"{n['loss']:.4f}",
                                 **{k: f"{n[k]:.4f}" for k in ("top1_agreement", "cosine") if k in n},
                                 "output_cosine": f"{n['output_cosine']:.6f}"} for n in nodes[:top]]))
        doc.p("loss: the largest drop below perfect agreement among the thresholded metrics; output_cosine (the worst "
              "output's mean cosine to fp32) orders nodes whose loss ties.")
