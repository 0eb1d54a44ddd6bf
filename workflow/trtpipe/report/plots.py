"""The per-model plot: median latency and throughput against batch, one line per engine family."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import columns as C
from .analysis import is_static
from .render import save_figure


def plot_model(bench: pd.DataFrame, model: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    rows = bench[bench[C.MODEL] == model]
    fig, (ax_lat, ax_thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    groups = rows.assign(line=[
        f"{r.backend} static (one engine per batch) {r.precision}" if is_static(r.variant)
        else f"{r.backend} dynamic {r.precision} [{r.profile} {r.profile_min}-{r.profile_max}]" for r in rows.itertuples()
    ]).groupby("line")
    for label, grp in groups:
        grp = grp.sort_values(C.BATCH)
        style = "o--" if "static" in label else "s-"
        ax_lat.plot(grp[C.BATCH], grp[C.LATENCY_MEDIAN], style, label=label)
        ax_thr.plot(grp[C.BATCH], grp[C.THROUGHPUT], style, label=label)
    batches = sorted(rows[C.BATCH].unique())
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
