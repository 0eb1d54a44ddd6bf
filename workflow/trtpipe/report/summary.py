"""`trtpipe summarize`: the summary CSVs, the plots, the comparison against a baseline and the report
(Markdown and self-contained HTML), from one SummaryInputs value."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ..benchmark import bench_columns
from ..compare import compare, render_markdown
from ..io import write_csv, write_text
from ..parity import ACCURACY_COLUMNS
from ..summary_inputs import SummaryInputs
from . import columns as C
from .analysis import add_efficiency, deployment_decisions
from .plots import plot_model
from .sections import Context, build_document

log = logging.getLogger(__name__)


def read_tables(inputs: SummaryInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """benchmarks.csv (with efficiency against the device's peak) and accuracy.csv, as the summary writes them."""
    bench = (pd.concat([pd.read_csv(p) for p in inputs.bench], ignore_index=True) if inputs.bench
             else pd.DataFrame(columns=bench_columns()))
    accuracy = (pd.concat([pd.read_csv(p) for p in inputs.accuracy], ignore_index=True)
                if inputs.accuracy else pd.DataFrame(columns=ACCURACY_COLUMNS))
    accuracy[C.PROFILE] = accuracy[C.PROFILE].fillna("")
    bench = bench.sort_values(C.ROW_KEYS).reset_index(drop=True)
    flops = {f["model"]: f["flops_per_sample"] for f in (json.loads(Path(p).read_text()) for p in inputs.flops)}
    return add_efficiency(bench, flops, inputs.peaks), accuracy


def write_summary(inputs: SummaryInputs, out_dir: str | Path) -> None:
    out_dir = Path(out_dir)
    bench, accuracy = read_tables(inputs)
    write_csv(out_dir / "benchmarks.csv", bench)
    write_csv(out_dir / "accuracy.csv", accuracy)

    plots = {}
    for model in sorted(bench[C.MODEL].unique()):
        plots[model] = out_dir / "plots" / f"{model}.png"
        plot_model(bench, model, plots[model])

    comparison = None
    if inputs.baseline:
        # The CSV form finds this sweep's raw timings two folders up (results/). A regression does not fail the
        # summary: gating is `trtpipe compare`'s exit status.
        comparison = compare(inputs.baseline, out_dir / "benchmarks.csv", **inputs.compare_settings)
        write_text(out_dir / "compare.md", render_markdown(comparison))
        write_csv(out_dir / "compare.csv", comparison.rows)

    decisions = deployment_decisions(bench, accuracy, out_dir, inputs.objectives, inputs.traffic)
    doc = build_document(Context(inputs, bench, accuracy, plots, decisions, comparison))
    write_text(out_dir / "report.md", doc.markdown(out_dir))
    write_text(out_dir / "report.html", doc.html("trtpipe report"))
    log.info("report: %s", out_dir / "report.html")


def summarize(bench_paths: list[str], accuracy_paths: list[str], simplify_stats: list[str], out_dir: str | Path,
              precision_stats: list[str] = (), skipped: dict[str, list[list[str]]] | None = None,
              flops_paths: list[str] = (), peaks: dict[str, float] | None = None, *,
              failures: list[dict[str, Any]] | None = None, models: list[str] | None = None,
              objectives: dict[str, dict[str, float]] | None = None, traffic: dict[str, dict] | None = None,
              baseline: str | None = None, compare_settings: dict[str, float] | None = None) -> None:
    """write_summary with the inputs given one by one (by hand, in a notebook)."""
    write_summary(SummaryInputs(
        bench=tuple(bench_paths), accuracy=tuple(accuracy_paths), simplify_stats=tuple(simplify_stats),
        precision_stats=tuple(precision_stats), flops=tuple(flops_paths), skipped=skipped or {}, peaks=peaks or {},
        objectives=objectives or {}, traffic=traffic or {}, baseline=baseline, compare_settings=compare_settings or {},
        models=models, failures=failures), out_dir)
