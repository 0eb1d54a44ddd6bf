"""Deployment decisions from one model's benchmark rows, the choices no peer tool makes for you.

- pareto_front: the engine x batch points no other point beats on both p99 latency and samples/s;
- slo_pick: the highest-throughput row inside a latency and/or throughput budget, or the nearest miss;
- traffic_ranking: which engine (or set of static engines) serves *your* mix of request batch sizes
  fastest, with honest words about which latencies were measured and which interpolated;
- suggest_profiles: at most k optimization profiles that cover your batch histogram tightly;
- pareto_plot: the front, every point and the chosen one, as a PNG.

Every function takes rows of one model, shaped like benchmarks.csv (trtpipe.benchmark.BENCH_COLUMNS).
Latency is per call, i.e. per batch: a request that arrives in a batch of 16 waits for the batch-16 call.
Time spent queueing to form a batch is not measured and not included.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .report import columns as C
from .report.render import engine_label, fmt, save_figure
from .spec import Variant

OBJECTIVES = {  # config key -> (column, True when the value is an upper bound)
    "p99_latency_ms": (C.LATENCY_P99, True),
    "min_throughput": (C.THROUGHPUT, False),
}
FULL = 1.0 - 1e-9  # coverage at or above this serves all traffic (weights are normalised floats)
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def _one_model(rows: pd.DataFrame, what: str) -> None:
    models = sorted(rows["model"].astype(str).unique()) if "model" in rows.columns else []
    if len(models) > 1:
        raise ValueError(f"{what} decides for one model at a time; got rows of {', '.join(models)}")


def _static_batch(variant: str) -> int | None:
    return Variant.parse(str(variant)).batch


# --- a. Pareto front ----------------------------------------------------------------------------------------
def pareto_front(rows: pd.DataFrame, latency_col: str = C.LATENCY_P99, throughput_col: str = C.THROUGHPUT) -> pd.DataFrame:
    """Rows no other row dominates (at most the latency and at least the throughput, better in one).

    Identical points do not dominate each other, so both stay. Sorted by latency. Rows missing either
    value are left out.
    """
    data = rows.dropna(subset=[latency_col, throughput_col])
    lat = data[latency_col].to_numpy(dtype=float)
    thr = data[throughput_col].to_numpy(dtype=float)
    # [q, p]: does row q dominate row p?
    no_worse = (lat[:, None] <= lat[None, :]) & (thr[:, None] >= thr[None, :])
    better = (lat[:, None] < lat[None, :]) | (thr[:, None] > thr[None, :])
    dominated = (no_worse & better).any(axis=0)
    return data[~dominated].sort_values([latency_col, throughput_col], ascending=[True, False])


# --- b. SLO pick --------------------------------------------------------------------------------------------
def _budget_text(objective: Mapping[str, float]) -> str:
    parts = []
    if "p99_latency_ms" in objective:
        parts.append(f"p99 latency <= {fmt(float(objective['p99_latency_ms']))} ms")
    if "min_throughput" in objective:
        parts.append(f">= {fmt(float(objective['min_throughput']))} samples/s")
    return " and ".join(parts)


def _shortfalls(row: pd.Series, objective: Mapping[str, float]) -> dict[str, float]:
    """Relative violation per constraint: 0.54 = 54% over a latency budget or short of a throughput floor."""
    out = {}
    for key, bound in objective.items():
        column, upper = OBJECTIVES[key]
        value, bound = float(row[column]), float(bound)
        out[key] = max(0.0, value / bound - 1.0) if upper else max(0.0, 1.0 - value / bound)
    return out


def slo_pick(rows: pd.DataFrame, objective: Mapping[str, float]) -> tuple[pd.Series | None, str]:
    """The row with the highest samples/s among those meeting every constraint of `objective`
    ({"p99_latency_ms": 5.0} and/or {"min_throughput": 1000}), and a sentence saying why.

    When nothing fits, no row is chosen (a budget is a budget) and the sentence names the row that comes
    closest: the smallest worst relative violation across the constraints.
    """
    unknown = sorted(set(objective) - set(OBJECTIVES))
    if unknown:
        raise ValueError(f"unknown objective key(s) {', '.join(unknown)}; use {' and/or '.join(OBJECTIVES)}")
    _one_model(rows, "slo_pick")
    columns = ["throughput_samples_s"] + [OBJECTIVES[k][0] for k in objective]
    data = rows.dropna(subset=columns)
    if data.empty:
        return None, "no benchmark rows with the needed columns to choose from"
    budget = _budget_text(objective) or "no constraint"
    shortfalls = [_shortfalls(r, objective) for _, r in data.iterrows()]
    meets = np.array([not any(v > 0 for v in s.values()) for s in shortfalls])
    if meets.any():
        ok = data[meets].sort_values(["throughput_samples_s", "latency_ms_p99"], ascending=[False, True])
        best = ok.iloc[0]
        return best, (f"chose {engine_label(best, deployable=True)} at batch {int(best['batch'])}: {fmt(best['throughput_samples_s'])} "
                      f"samples/s at p99 {fmt(best['latency_ms_p99'])} ms, the highest throughput of the {int(meets.sum())} "
                      f"of {len(data)} engine x batch rows that meet {budget}.")
    worst = np.array([max(s.values()) for s in shortfalls])
    total = np.array([sum(s.values()) for s in shortfalls])
    closest_at = int(np.lexsort((total, worst))[0])
    closest, misses = data.iloc[closest_at], shortfalls[closest_at]
    words = []
    if misses.get("p99_latency_ms", 0) > 0:
        words.append(f"p99 {misses['p99_latency_ms']:.0%} over the budget")
    if misses.get("min_throughput", 0) > 0:
        words.append(f"throughput {misses['min_throughput']:.0%} short")
    return None, (f"nothing of {len(data)} engine x batch rows meets {budget}; closest: {engine_label(closest, deployable=True)} at batch "
                  f"{int(closest['batch'])} (p99 {fmt(closest['latency_ms_p99'])} ms, {fmt(closest['throughput_samples_s'])} "
                  f"samples/s): {' and '.join(words)}.")


# --- c. traffic ---------------------------------------------------------------------------------------------
def batch_histogram(traffic: Mapping[str, Any]) -> dict[int, float]:
    """{batch: share} from {"batch": {1: 0.7, 4: 0.2, ...}} (counts or shares), normalised to sum to 1."""
    histogram = traffic.get("batch", traffic) if isinstance(traffic, Mapping) else None
    if not isinstance(histogram, Mapping) or not histogram:
        raise ValueError(f"traffic must look like {{'batch': {{1: 0.7, 4: 0.3}}}}; got {traffic!r}")
    weights = {int(b): float(w) for b, w in histogram.items()}
    if any(b < 1 for b in weights) or any(w < 0 or not math.isfinite(w) for w in weights.values()):
        raise ValueError(f"traffic batches must be >= 1 and weights finite and >= 0; got {histogram!r}")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"traffic weights sum to {total}; give at least one positive weight")
    return {b: w / total for b, w in sorted(weights.items()) if w > 0}


@dataclass(frozen=True)
class BatchService:
    """How one option serves one request batch size."""

    batch: int
    share: float
    latency_ms: float  # NaN when not served
    how: str  # "measured", "interpolated between measured batches N and M", or why it is not served

    @property
    def served(self) -> bool:
        return math.isfinite(self.latency_ms)


@dataclass(frozen=True)
class TrafficOption:
    """A deployable choice: one engine, or one backend+precision's static engines, one per batch."""

    label: str
    kind: str  # "dynamic engine", "static engine" or "static engines, one per batch"
    backend: str
    precision: str
    variants: tuple[str, ...]
    profile: str
    services: tuple[BatchService, ...]
    max_throughput: float  # samples/s, the best of any measured batch of its engines

    @property
    def coverage(self) -> float:
        return sum(s.share for s in self.services if s.served)

    @property
    def expected_latency_ms(self) -> float:
        """Mean per-request latency over the traffic this option serves (all of it at full coverage)."""
        served = [s for s in self.services if s.served]
        if not served:
            return math.nan
        return sum(s.share * s.latency_ms for s in served) / sum(s.share for s in served)

    @property
    def interpolated(self) -> list[str]:
        return [f"batch {s.batch} {s.how}" for s in self.services if s.how.startswith("interpolated")]

    @property
    def unserved(self) -> list[str]:
        return [f"batch {s.batch} ({s.share:.0%} of requests): {s.how}" for s in self.services if not s.served]


@dataclass
class TrafficRanking:
    options: pd.DataFrame  # one row per option, ranked; rank is empty for options short of full coverage
    recommendation: str
    details: list[TrafficOption]  # the same options, in the same order


def _measured_latency(rows: pd.DataFrame) -> dict[int, float]:
    return {int(b): float(v) for b, v in rows.groupby("batch")["latency_ms_median"].median().items() if math.isfinite(v)}


def _engine_option(rows: pd.DataFrame, histogram: dict[int, float]) -> TrafficOption:
    first = rows.iloc[0]
    static = _static_batch(first["variant"])
    low, high = (static, static) if static is not None else (int(first["profile_min"]), int(first["profile_max"]))
    measured = _measured_latency(rows)
    points = sorted(measured)
    services = []
    for batch, share in histogram.items():
        if not low <= batch <= high:
            how = (f"a {first['variant']} engine serves batch {static} only" if static is not None
                   else f"outside the profile's batch range {low}..{high}")
            services.append(BatchService(batch, share, math.nan, how))
        elif batch in measured:
            services.append(BatchService(batch, share, measured[batch], "measured"))
        elif points and points[0] < batch < points[-1]:
            below = max(p for p in points if p < batch)
            above = min(p for p in points if p > batch)
            t = (batch - below) / (above - below)
            latency = measured[below] + t * (measured[above] - measured[below])
            services.append(BatchService(batch, share, latency, f"interpolated between measured batches {below} and {above}"))
        else:
            span = f"{points[0]}..{points[-1]}" if points else "none"
            services.append(BatchService(batch, share, math.nan,
                                         f"not measured (inside the profile, outside the measured batches {span})"))
    kind = "static engine" if static is not None else "dynamic engine"
    return TrafficOption(engine_label(first, deployable=True), kind, str(first["backend"]), str(first["precision"]), (str(first["variant"]),),
                         str(first["profile"]), tuple(services), float(rows["throughput_samples_s"].max()))


def _static_set_option(rows: pd.DataFrame, histogram: dict[int, float]) -> TrafficOption:
    """A backend+precision's static engines deployed together, each serving exactly its own batch."""
    first = rows.iloc[0]
    by_batch = {}
    for variant, grp in rows.groupby("variant"):
        measured = _measured_latency(grp)
        batch = _static_batch(variant)
        if batch in measured:
            by_batch[batch] = (variant, measured[batch])
    services = []
    for batch, share in histogram.items():
        if batch in by_batch:
            services.append(BatchService(batch, share, by_batch[batch][1], f"measured ({by_batch[batch][0]})"))
        else:
            services.append(BatchService(batch, share, math.nan, f"no static engine for batch {batch}"))
    batches = ", ".join(str(b) for b in sorted(by_batch))
    label = f"{first['backend']} {first['precision']} static engines (batches {batches}, one engine per batch)"
    variants = tuple(v for _, (v, _lat) in sorted(by_batch.items()))
    return TrafficOption(label, "static engines, one per batch", str(first["backend"]), str(first["precision"]), variants,
                         "static", tuple(services), float(rows["throughput_samples_s"].max()))


def traffic_options(rows: pd.DataFrame, traffic: Mapping[str, Any]) -> list[TrafficOption]:
    """Every engine as an option, plus each backend+precision's static engines as one option (two or more)."""
    _one_model(rows, "traffic_ranking")
    histogram = batch_histogram(traffic)
    data = rows.dropna(subset=["latency_ms_median"])
    options = [_engine_option(grp, histogram) for _, grp in data.groupby(C.ENGINE_KEYS, sort=True)]
    statics = data[data["variant"].map(lambda v: _static_batch(v) is not None)]
    for _, grp in statics.groupby(["backend", "precision"], sort=True):
        if grp["variant"].nunique() >= 2:
            options.append(_static_set_option(grp, histogram))
    return options


def _describe_gaps(option: TrafficOption) -> str:
    return "; ".join(option.unserved)


def traffic_ranking(rows: pd.DataFrame, traffic: Mapping[str, Any]) -> TrafficRanking:
    """Rank deployable options by expected per-request latency under `traffic`, among those that serve
    all of it; latencies between measured batches are interpolated linearly in batch (said so), never
    extrapolated beyond them."""
    options = traffic_options(rows, traffic)
    full = sorted((o for o in options if o.coverage >= FULL), key=lambda o: (o.expected_latency_ms, len(o.variants), o.label))
    partial = sorted((o for o in options if o.coverage < FULL), key=lambda o: (-o.coverage, o.expected_latency_ms, o.label))
    ordered = full + partial
    table = pd.DataFrame([{
        "rank": i + 1 if o.coverage >= FULL else None,
        "option": o.label,
        "kind": o.kind,
        "coverage": o.coverage,
        "expected_latency_ms": o.expected_latency_ms,
        "max_throughput_samples_s": o.max_throughput,
        "interpolated": "; ".join(o.interpolated),
        "not_served": _describe_gaps(o),
    } for i, o in enumerate(ordered)], columns=["rank", "option", "kind", "coverage", "expected_latency_ms",
                                                "max_throughput_samples_s", "interpolated", "not_served"])
    table["rank"] = table["rank"].astype("Int64")
    return TrafficRanking(table, _recommend(full, partial), ordered)


def _interpolation_note(option: TrafficOption, whose: str) -> str:
    if option.interpolated:
        return f" ({whose} {', '.join(option.interpolated)})"
    return " (measured at every batch you see)"


def _recommend(full: list[TrafficOption], partial: list[TrafficOption]) -> str:
    if not full:
        if not partial:
            return "no engine was benchmarked for this model; nothing to recommend."
        widest = partial[0]
        return (f"no engine serves all of your traffic: the widest, {widest.label}, serves {widest.coverage:.0%} "
                f"({_describe_gaps(widest)}); benchmark the missing batches or add a profile that covers them.")
    best = full[0]
    text = (f"deploy {best.label}: expected {fmt(best.expected_latency_ms)} ms per request"
            f"{_interpolation_note(best, 'its')}")
    if len(full) > 1:
        runner = full[1]
        extra = runner.expected_latency_ms / best.expected_latency_ms - 1.0
        cost = "costs the same" if abs(extra) < 0.005 else f"costs {extra:.0%} more"
        text += f"; the runner-up, {runner.label}, {cost} at the batches you see{_interpolation_note(runner, 'its')}"
    else:
        text += "; it is the only option that serves every batch you see"
    return text + "."


@dataclass(frozen=True)
class SuggestedProfile:
    min: int
    opt: int
    max: int
    share: float  # of requests

    def __str__(self) -> str:
        return f"{self.min}/{self.opt}/{self.max}"


@dataclass(frozen=True)
class ProfileSuggestion:
    profiles: tuple[SuggestedProfile, ...]
    spread: float  # traffic-weighted mean |log2(batch / opt)|: doublings away from the batch a profile is tuned for
    sentence: str

    def as_config(self, prefix: str = "traffic") -> dict[str, dict[str, int]]:
        """The `profiles:` entries to paste into config.yaml."""
        return {f"{prefix}{i + 1}": {"min": p.min, "opt": p.opt, "max": p.max} for i, p in enumerate(self.profiles)}


def _range_cost(batches: list[int], shares: list[float]) -> tuple[float, int]:
    """(spread, opt) of one contiguous range: opt is the most frequent batch (ties: the lower spread, then the
    smaller batch); spread is the share-weighted distance from opt in doublings."""
    def spread(opt: int) -> float:
        return sum(s * abs(math.log2(b / opt)) for b, s in zip(batches, shares))

    top = max(shares)
    candidates = [b for b, s in zip(batches, shares) if s == top]
    opt = min(candidates, key=lambda b: (spread(b), b))
    return spread(opt), opt


def suggest_profiles(traffic: Mapping[str, Any], k: int = 2) -> ProfileSuggestion:
    """At most k contiguous batch ranges, min/opt/max each, minimising the traffic-weighted spread.

    An engine's kernels are chosen for its profile's opt; the further (by ratio) a request batch is from
    opt, the more it is served by kernels tuned for another shape, so the cost of a range is the weighted
    |log2(batch / opt)|. Exact dynamic programme over the sorted batches; fewer ranges win ties.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    histogram = batch_histogram(traffic)
    batches, shares = list(histogram), list(histogram.values())
    n = len(batches)
    cost = {(i, j): _range_cost(batches[i:j + 1], shares[i:j + 1]) for i in range(n) for j in range(i, n)}
    # best[c][j]: the lowest spread covering batches[0..j] with exactly c ranges, and where its last range starts
    best: list[list[tuple[float, int]]] = [[(math.inf, -1)] * n for _ in range(k + 1)]
    for j in range(n):
        best[1][j] = (cost[(0, j)][0], 0)
    for c in range(2, k + 1):
        for j in range(n):
            for i in range(1, j + 1):
                total = best[c - 1][i - 1][0] + cost[(i, j)][0]
                if total < best[c][j][0] - 1e-12:
                    best[c][j] = (total, i)
    ranges_used = min(range(1, k + 1), key=lambda c: (round(best[c][n - 1][0], 12), c))
    spans, end = [], n - 1
    for c in range(ranges_used, 0, -1):
        start = best[c][end][1]
        spans.append((start, end))
        end = start - 1
    spans.reverse()
    profiles = tuple(SuggestedProfile(batches[i], cost[(i, j)][1], batches[j], sum(shares[i:j + 1])) for i, j in spans)
    spread = best[ranges_used][n - 1][0]
    count = len(profiles)
    names = [f"{p} ({p.share:.0%} of requests)" for p in profiles]
    listed = names[0] if count == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    served = sum(p.share for p in profiles)
    sentence = (f"{_NUMBER_WORDS.get(count, str(count))} profile{'s' if count > 1 else ''}, {listed}, would serve "
                f"{served:.0%} of your requests; on average a request is {spread:.2f} doublings away from its "
                f"profile's opt batch.")
    return ProfileSuggestion(profiles, spread, sentence)


# --- 4. plot ------------------------------------------------------------------------------------------------
def pareto_plot(rows: pd.DataFrame, chosen_row: Mapping[str, Any] | pd.Series | None, path: str | os.PathLike,
                latency_col: str = C.LATENCY_P99, throughput_col: str = C.THROUGHPUT,
                empty_note: str = "no engine to plot") -> Path:
    """p99 latency against samples/s for every engine x batch, the Pareto front as a step line (the best
    throughput available within a latency budget), the chosen point marked. Written atomically; without rows,
    a figure that says `empty_note`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    data = rows.dropna(subset=[latency_col, throughput_col]) if not rows.empty else rows
    fig, ax = plt.subplots(figsize=(8, 5))
    if data.empty:
        ax.text(0.5, 0.5, empty_note, ha="center", va="center", wrap=True)
        ax.set_axis_off()
        save_figure(fig, path)
        return path
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, ((backend, precision), grp) in enumerate(data.groupby(["backend", "precision"], sort=True)):
        static = grp["variant"].map(lambda v: _static_batch(v) is not None)
        for subset, marker, kind in ((grp[~static], "o", "dynamic"), (grp[static], "s", "static")):
            if subset.empty:
                continue
            ax.scatter(subset[latency_col], subset[throughput_col], marker=marker, alpha=0.7, color=colors[i % len(colors)],
                       label=f"{backend} {precision} {kind}")
            for r in subset.itertuples():
                ax.annotate(f"b{r.batch}", (getattr(r, latency_col), getattr(r, throughput_col)), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
    front = pareto_front(data, latency_col, throughput_col)
    if not front.empty:
        ax.step(front[latency_col], front[throughput_col], where="post", color="black", linewidth=1.2, label="Pareto front")
    if chosen_row is not None:
        ax.scatter([float(chosen_row[latency_col])], [float(chosen_row[throughput_col])], marker="*", s=320,
                   facecolor="none", edgecolor="red", linewidth=1.5, zorder=5,
                   label=f"chosen: {engine_label(chosen_row, deployable=True)} @ b{int(chosen_row['batch'])}")
    model = ", ".join(sorted(data["model"].astype(str).unique())) if "model" in data.columns else ""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("p99 latency per call (ms)")
    ax.set_ylabel("throughput (samples/s)")
    ax.set_title(f"{model}: latency vs throughput, every engine and batch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    save_figure(fig, path)
    return path
