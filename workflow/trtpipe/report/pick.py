"""The accuracy-gated pick: every engine's speed at the smallest batch against its metric, the sensitivity ranking,
and the fastest engine that meets every threshold, said in one sentence.

Inputs are what the sweep wrote: benchmark rows, the accuracy rows (each engine's task metric against PyTorch on the
model's held-out samples, from its evaluation job), the precision stats JSONs (method, nodes kept in float, and for a
model without samples the agreement with the fp32 model on seeded random inputs) and the sensitivity rankings. An
engine is judged by its own metric rows where the model has samples and a metric, else by its precision's agreement
with the fp32 model; fp32 engines are the reference and meet the thresholds by definition. An engine with neither
(tf32, the PyTorch backends' reduced precisions) is not judged and never picked.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..metrics import shortfall, thresholds as threshold_table

ENGINE = ["backend", "variant", "precision", "profile"]


def engine_metrics(accuracy: pd.DataFrame, model: str) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Per engine (backend, variant, precision, profile) of `model`: its task scores against PyTorch on the held-out
    samples, how many, and which data (empty when the model has no samples and metric)."""
    if accuracy is None or accuracy.empty or "metric" not in accuracy or "case" not in accuracy:
        return {}
    rows = accuracy[(accuracy["model"] == model) & (accuracy["stage"] == "engine") & accuracy["metric"].notna()
                    & (accuracy["case"] == "data")]
    out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in rows.fillna({"profile": "", "variant": ""}).to_dict("records"):
        entry = out.setdefault(tuple(str(r[k]) for k in ENGINE), {"scores": {}, "samples": int(r["samples"]),
                                                                    "data": str(r.get("data") or "")})
        entry["scores"][r["metric"]] = float(r["value"])
    return out


def candidate_rows(bench: pd.DataFrame, precision_stats: list[dict[str, Any]], model: str,
                   accept: dict[str, Any], accuracy: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per engine of `model` at its smallest benchmarked batch: median latency, speed-up against the fp32
    engine of the same backend, variant and profile, the metric, the verdict against `accept`, and how the precision
    was made."""
    # Judged against today's thresholds (`accept`), never a verdict stored at conversion
    rows = bench[bench["model"] == model]
    if rows.empty:
        return pd.DataFrame()
    batch = int(rows["batch"].min())
    rows = rows[rows["batch"] == batch]
    stats = {(st["variant"], st["precision"]): st for st in precision_stats if st["model"] == model}
    on_data = engine_metrics(accuracy, model)
    fp32 = {(r.backend, r.variant, r.profile): float(r.latency_ms_median) for r in rows[rows["precision"] == "fp32"].itertuples()}
    out = []
    for r in rows.itertuples():
        st = stats.get((r.variant, r.precision)) or {}
        if on_data:  # the model has samples and a metric: each engine's own rows, against PyTorch, held out
            metric = on_data.get((str(r.backend), str(r.variant), str(r.precision), str(r.profile) if pd.notna(r.profile) else ""))
            against = "PyTorch"
        else:
            metric = st.get("metric")
            against = "fp32"
        base = fp32.get((r.backend, r.variant, r.profile))
        judged = bool(metric) or r.precision == "fp32"
        missed = (0.0 if r.precision == "fp32" else shortfall(metric["scores"], accept)) if judged else math.nan
        out.append({
            "model": model, "backend": r.backend, "variant": r.variant, "precision": r.precision, "profile": r.profile,
            "batch": batch, "median_ms": float(r.latency_ms_median),
            "speedup": base / float(r.latency_ms_median) if base else math.nan,
            "made_by": st.get("method", "fp32 (the simplified ONNX)" if r.precision == "fp32" else ""),
            "kept_float": st.get("kept_float") or [],
            "scores": metric["scores"] if metric else None,
            "judged": judged, "met": judged and missed == 0, "shortfall": missed,
            "samples": int(metric["samples"]) if metric else 0,
            "data": metric["data"] if metric else "", "against": against,
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


def _scores(r: dict[str, Any], accept: dict[str, Any] | None = None) -> str:
    """The scores, or with `accept` only those it sets thresholds for."""
    return ", ".join(f"{k} {v:.4f}" for k, v in sorted((r["scores"] or {}).items())
                     if (k in accept if accept else k != "min_cosine"))


def _kept(r: dict[str, Any]) -> str:
    kept = r["kept_float"]
    if not kept:
        return "no node kept in float"
    names = ", ".join(f"{k['node']} ({k['op']})" for k in kept[:5]) + (", ..." if len(kept) > 5 else "")
    return f"{len(kept)} node(s) kept in float: {names}"


def _on(r: dict[str, Any]) -> str:
    """What the scores were measured against, and on which samples."""
    if r["against"] == "PyTorch":
        return f"against PyTorch on {r['samples']} held-out samples ({r['data']})"
    kind = "seeded random inputs" if r["data"] == "random" else "calibration_data samples calibration never saw"
    return f"against the fp32 model on {r['samples']} {kind}"


def threshold_text(accept: dict[str, Any]) -> str:
    return ", ".join(f"{k} {'>=' if op == 'min' else '<='} {v:g}" for k, (op, v) in threshold_table(accept).items())


def sentence(result: dict[str, Any], accept: dict[str, Any]) -> str:
    """The pick in one plain sentence, or the nearest miss and by how much."""
    limits = threshold_text(accept)
    r = result["pick"]
    if r is not None:
        if r["precision"] == "fp32":
            return (f"Pick at batch {r['batch']}: {_engine(r)} ({r['median_ms']:.3g} ms): no reduced-precision engine is "
                    f"both faster than fp32 and within the thresholds ({limits}).")
        return (f"Pick at batch {r['batch']}: {_engine(r)}, made by {r['made_by']}, {_kept(r)}; "
                f"{r['speedup']:.2f}x the speed of fp32 ({r['median_ms']:.3g} ms); {_scores(r, accept)} {_on(r)} "
                f"(thresholds {limits}).")
    n = result["nearest"]
    if n is None:
        return "No engine has a metric to judge it by, so none is picked."
    return (f"No engine meets every threshold ({limits}); the nearest miss is {_engine(n)} ({_scores(n, accept)} "
            f"{_on(n)}, short by {n['shortfall']:.4f}, {n['speedup']:.2f}x fp32's speed).")


def accuracy_plot(rows: pd.DataFrame, accept: dict[str, Any], path: str | Path) -> Path:
    """Speed-up against fp32 vs the metric, one point per judged engine, the thresholds drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .render import save_figure

    path = Path(path)
    judged = rows[rows["judged"] & rows["speedup"].notna()] if not rows.empty else rows
    fig, ax = plt.subplots(figsize=(8, 5))
    limits = threshold_table(accept)
    shown = sorted({k for s in judged["scores"] if s for k in s if k in limits}) if not judged.empty else []
    fp32 = judged["precision"] == "fp32"
    for metric, marker in zip(shown, "os^v"):
        # fp32 engines without a score of their own (the reference) are drawn at the score of identical outputs
        y = [(s or {}).get(metric, 1.0 if p else math.nan) for s, p in zip(judged["scores"], fp32)]
        ax.scatter(judged["speedup"], y, marker=marker, label=metric)
        for x, yy, p in zip(judged["speedup"], y, judged["precision"]):
            ax.annotate(p, (x, yy), fontsize=6, xytext=(3, 3), textcoords="offset points")
        op, limit = limits[metric]
        ax.axhline(limit, linestyle="--", linewidth=1, color="red",
                   label=f"{metric} threshold {'>=' if op == 'min' else '<='} {limit:g}")
    ax.axvline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("speed-up against fp32 at the smallest batch (median latency)")
    against = sorted(set(judged["against"])) if not judged.empty else []
    ax.set_ylabel(f"the metric against {' / '.join(against) or 'the reference'}")
    ax.set_title(f"{', '.join(sorted(rows['model'].unique())) if not rows.empty else ''}: speed vs accuracy")
    ax.grid(True, alpha=0.3)
    if shown:
        ax.legend(fontsize=7, loc="best")
    save_figure(fig, path)
    return path


def section(doc, model: str, bench: pd.DataFrame, precision_stats: list[dict[str, Any]],
            sensitivity: dict[str, Any] | None, accept: dict[str, Any] | None, plots_dir: Path,
            accuracy: pd.DataFrame | None = None, top: int = 10) -> None:
    """The report's "Reduced precision: accuracy and the pick" part for one model (nothing without a metric)."""
    accept = accept or {}
    rows = candidate_rows(bench, precision_stats, model, accept, accuracy)
    if rows.empty or not (rows["precision"] != "fp32").any():
        return
    doc.h(3, "Reduced precision: accuracy and the pick")
    doc.p(sentence(pick(rows), accept))
    if sorted(set(rows["data"]) - {""}) == ["random"]:
        doc.p("The metric here was measured on seeded random inputs, not on your data: give models."
              f"{model}.samples and a metric (README: Accuracy on your data; the samples then calibrate, steer the "
              "search and judge every engine, each on its own part) before trusting it.")
    rows = rows.sort_values("median_ms")
    table = rows.assign(
        engine=[_engine(r) for r in rows.to_dict("records")], median_ms=rows["median_ms"].map(lambda v: f"{v:.3g}"),
        speedup=rows["speedup"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}x"),
        kept_float=rows["kept_float"].map(lambda k: ", ".join(n["node"] for n in k) if k else ""),
        metric=[_scores(r) if r["scores"] else ("reference" if r["precision"] == "fp32" else "")
                for r in rows.to_dict("records")],
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
        judged_by = sensitivity.get("accept", accept)
        doc.p(f"Sensitivity ({len(nodes)} quantizable nodes, {sensitivity['data']['evaluation_samples']} search "
              f"samples, {sensitivity['recipe']}): {sensitivity['measure']}; the {min(top, len(nodes))} most sensitive:")
        doc.table(pd.DataFrame([{"rank": n["rank"], "node": n["node"], "op": n["op"], "loss": f"{n['loss']:.4f}",
                                 **{k: f"{n[k]:.4f}" for k in sorted(judged_by) if k in n},
                                 "output_cosine": f"{n['output_cosine']:.6f}"} for n in nodes[:top]]))
        doc.p(f"loss: the largest share of a threshold's margin ({threshold_text(judged_by)}) this node alone uses up, "
              "against the fp32 model (0: no change, 1: at the threshold); output_cosine (the worst output's mean "
              "cosine to fp32) orders nodes whose loss ties.")
