"""`trtpipe compare BASE NEW`: is the new sweep slower than the old one, or is that noise?

Medians alone cannot answer it: two runs of the same engine differ by a few percent, and by much more
on a shared machine. Each matched row (same model, backend, variant, precision, profile and batch) gets
a ratio of medians (new / base), a bootstrap confidence interval of that ratio and a Mann-Whitney U test
over the per-iteration timings (trtpipe.timings), and a verdict:

- "regression": the CI lies entirely above 1 + min_effect AND the Holm-adjusted p-value < alpha;
- "improvement": the CI lies entirely below 1 - min_effect AND the Holm-adjusted p-value < alpha;
- "within noise": anything else.

min_effect (default 2%) is a floor of practical relevance: with thousands of iterations a 0.5% shift is
"significant" and still not worth anyone's afternoon, so shifts below it are never called. The p-values are
Holm-corrected across all tested rows (a sweep has dozens of rows; without a correction some would be
flagged by chance). GPU rows are compared on GPU compute time (compute_ms) where both sides have it,
since copies and the host add their own noise; other rows on latency_ms.

Without raw timings for a row (an older sweep, a deleted file) the verdict comes from the row's own
median, cv and iteration count under a normal approximation, and says "unverified (no raw timings)".
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Sequence

import numpy as np
import pandas as pd

from . import defaults
from .errors import TrtpipeError
from .io import write_csv, write_text
from .layout import Layout
from .report import columns as C
from .report.render import engine_label, markdown_table
from .timings import read_timings

log = logging.getLogger(__name__)

KEY_COLUMNS = C.ROW_KEYS
ENV_COLUMNS = [C.DEVICE, "backend_version", "driver", "sm_clock_mhz", C.GIT_REV]
# The schema's `compare` section holds them (the report's comparison against `baseline` reads the same).
DEFAULT_ALPHA, DEFAULT_MIN_EFFECT, DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED = (
    defaults.value("compare", key) for key in ("alpha", "min_effect", "confidence", "resamples", "seed"))
UNVERIFIED = "unverified (no raw timings)"
NOT_COMPARED = "not compared (no raw timings, and no cv or iteration count in the summary)"


class CompareInputError(TrtpipeError):
    """An input of `trtpipe compare` is missing or unreadable."""


# --- statistics --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of the first sample: how many (x, y) pairs have x > y, ties counting one half
    z: float
    p: float  # two-sided


def mann_whitney(x: np.ndarray, y: np.ndarray) -> MannWhitney:
    """Two-sided Mann-Whitney U test, normal approximation with tie and continuity correction (SciPy's
    mannwhitneyu, method="asymptotic"; R's wilcox.test(exact=FALSE) computes the same).

    Timings are skewed and heavy-tailed, so a rank test rather than a t-test; with the 20 or more
    iterations every benchmark row has, the normal approximation is adequate.
    """
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return MannWhitney(math.nan, math.nan, math.nan)
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    if np.ptp(np.concatenate([x, y])) == 0:  # every value identical: no evidence of a difference (SciPy: p NaN)
        return MannWhitney(float(result.statistic), 0.0, 1.0)
    p = float(result.pvalue)
    return MannWhitney(float(result.statistic), float(stats.norm.isf(p / 2.0)), p)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment (controls the family-wise error like Bonferroni, never less powerful).

    NaN entries are not tests: they stay NaN and do not count towards the number of tests.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = tested.size
    if m == 0:
        return adjusted
    order = tested[np.argsort(p[tested], kind="mergesort")]
    stepped = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(stepped))
    return adjusted


def bootstrap_medians(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `resamples` bootstrap resamples of `values`, drawn exactly without building the resamples.

    A resample's k-th smallest value is sorted[floor(n * U_(k))], where U_(k), the k-th smallest of n
    uniforms, is Beta(k, n - k + 1), and the next one up is U_(k) + (1 - U_(k)) * Beta(1, n - k). So one
    median costs two random draws instead of n: a 100,000-iteration CPU row is as cheap as a 20-iteration one.
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    n = ordered.size

    def value_at(u: np.ndarray) -> np.ndarray:
        return ordered[np.minimum((u * n).astype(np.int64), n - 1)]

    if n % 2:
        k = (n + 1) // 2
        return value_at(rng.beta(k, n - k + 1, resamples))
    k = n // 2
    lower = rng.beta(k, n - k + 1, resamples)
    upper = lower + (1.0 - lower) * rng.beta(1, n - k, resamples)
    return (value_at(lower) + value_at(upper)) / 2.0


def ratio_interval(base: np.ndarray, new: np.ndarray, confidence: float, resamples: int,
                   rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap CI of median(new) / median(base), the two sides resampled independently: what SciPy's
    stats.bootstrap(method="percentile") computes (tests/test_compare.py holds the two side by side), without
    building the resamples, which costs SciPy 10 s for one 20,000-iteration row (docs/measurements.md)."""
    ratios = bootstrap_medians(new, resamples, rng) / bootstrap_medians(base, resamples, rng)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def summary_test(base_median: float, base_cv: float, base_n: float, new_median: float, new_cv: float, new_n: float,
                 confidence: float) -> tuple[float, float, float]:
    """(CI low, CI high, p) for the ratio of medians from summary statistics alone.

    The standard error of a median is about sqrt(pi/2) * sd / sqrt(n) for near-normal data; in log space,
    with sd / median taken as cv, that is sqrt(pi/2) * cv / sqrt(n). Heavy tails make this optimistic,
    which is why such verdicts are marked unverified.
    """
    log_ratio = math.log(new_median / base_median)
    se = math.sqrt(math.pi / 2.0) * math.sqrt(base_cv ** 2 / base_n + new_cv ** 2 / new_n)
    if se == 0:
        ratio = new_median / base_median
        return ratio, ratio, 1.0 if log_ratio == 0 else 0.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = math.erfc(abs(log_ratio) / se / math.sqrt(2.0))
    return math.exp(log_ratio - z * se), math.exp(log_ratio + z * se), p


def verdict(ci_low: float, ci_high: float, p_adjusted: float, alpha: float, min_effect: float) -> str:
    """The rule of the module docstring; NaN anywhere means nothing could be tested."""
    if not all(math.isfinite(v) for v in (ci_low, ci_high, p_adjusted)):
        return NOT_COMPARED
    if p_adjusted < alpha and ci_low > 1.0 + min_effect:
        return "regression"
    if p_adjusted < alpha and ci_high < 1.0 - min_effect:
        return "improvement"
    return "within noise"


# --- inputs --------------------------------------------------------------------------------------------------
@dataclass
class Side:
    """One side of a comparison: its summary table and the results folder holding its raw timings."""

    table: pd.DataFrame
    source: Path  # the benchmarks.csv read
    results_dir: Path | None
    _cache: dict[tuple, tuple[dict | None, str]] = field(default_factory=dict, repr=False)

    def timings(self, row: pd.Series) -> tuple[dict[str, np.ndarray] | None, str]:
        """The row's per-iteration arrays by metric, or None and why not."""
        engine = tuple(str(row[k]) for k in C.ENGINE_KEYS)
        if engine not in self._cache:
            self._cache[engine] = self._read_engine(*engine)
        per_batch, why = self._cache[engine]
        if per_batch is None:
            return None, why
        batch = int(row[C.BATCH])
        if batch not in per_batch:
            return None, f"{why} has no batch {batch}"
        return per_batch[batch], why

    def _read_engine(self, model: str, backend: str, variant: str, precision: str, profile: str) -> tuple[dict | None, str]:
        if self.results_dir is None:
            return None, "no results folder"
        path = Path(Layout(self.results_dir).bench_paths(model, backend, variant, precision, profile)["timings"])
        if not path.is_file():
            return None, f"no {path}"
        try:
            return read_timings(path), str(path)
        except Exception as exc:  # a corrupt file must not stop the comparison of every other row
            return None, f"unreadable {path} ({type(exc).__name__}: {exc})"


def load_sweep(path: str | Path) -> Side:
    """A results folder (RESULTS/summary/benchmarks.csv, raw timings under RESULTS/{model}/bench/) or a
    benchmarks.csv (raw timings looked up two folders up, where a summary's results folder is)."""
    path = Path(path)
    if path.is_dir():
        csv, results_dir = path / "summary" / "benchmarks.csv", path
        if not csv.is_file():
            raise CompareInputError(
                f"{path} is a folder without summary/benchmarks.csv; fix: pass the results folder of a finished sweep "
                f"(or its summary/benchmarks.csv), or run the summary there first.")
    elif path.is_file():
        csv, results_dir = path, path.resolve().parent.parent
    else:
        raise CompareInputError(
            f"{path} does not exist; fix: pass a results folder (holding summary/benchmarks.csv) or a benchmarks.csv file.")
    try:
        table = pd.read_csv(csv)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CompareInputError(f"cannot read {csv} ({exc}); fix: pass a benchmarks.csv written by trtpipe's summary.") from exc
    missing = [c for c in KEY_COLUMNS + [C.LATENCY_MEDIAN] if c not in table.columns]
    if missing:
        raise CompareInputError(
            f"{csv} lacks the column(s) {', '.join(missing)}; fix: pass a benchmarks.csv written by trtpipe's summary.")
    table = table.copy()
    for column in KEY_COLUMNS[:-1]:
        table[column] = table[column].astype(str)
    try:
        table[C.BATCH] = table[C.BATCH].astype(int)
    except (TypeError, ValueError) as exc:
        raise CompareInputError(
            f"{csv} has a non-integer batch ({exc}); fix: pass a benchmarks.csv written by trtpipe's summary.") from exc
    duplicated = table.duplicated(KEY_COLUMNS)
    if duplicated.any():
        log.warning("%s: %d duplicate row(s) by %s; the first of each is compared", csv, int(duplicated.sum()), KEY_COLUMNS)
        table = table[~duplicated]
    return Side(table.reset_index(drop=True), csv, results_dir if results_dir.is_dir() else None)


# --- the comparison ------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    rows: pd.DataFrame  # one per matched row: medians, ratio, CI, p, Holm-adjusted p, verdict, evidence
    only_base: pd.DataFrame
    only_new: pd.DataFrame
    env_diffs: list[str]
    base: str = ""
    new: str = ""
    alpha: float = DEFAULT_ALPHA
    min_effect: float = DEFAULT_MIN_EFFECT
    confidence: float = DEFAULT_CONFIDENCE
    resamples: int = DEFAULT_RESAMPLES

    @property
    def regressions(self) -> pd.DataFrame:
        """Rows called regressions, unverified ones included: a gate should not pass what it cannot check."""
        return self.rows[self.rows["verdict"].str.startswith("regression")] if not self.rows.empty else self.rows

    @property
    def improvements(self) -> pd.DataFrame:
        return self.rows[self.rows["verdict"].str.startswith("improvement")] if not self.rows.empty else self.rows


ROW_COLUMNS = KEY_COLUMNS + ["metric", "base_median_ms", "new_median_ms", "ratio", "ci_low", "ci_high", "p_value",
                             "p_adjusted", "verdict", "verified", "base_iterations", "new_iterations", "evidence"]


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _finite(value) -> bool:
    return math.isfinite(_float(value))


def _row_seed(seed: int, key: tuple) -> np.random.Generator:
    """One generator per row, from the row's key: a row's CI does not depend on which other rows exist."""
    return np.random.default_rng([seed, zlib.crc32("|".join(map(str, key)).encode())])


def _raw_samples(base: dict[str, np.ndarray] | None, new: dict[str, np.ndarray] | None
                 ) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(metric, base values, new values): GPU compute time where both sides timed it, else latency;
    None when neither metric has at least two finite values and a positive median on both sides."""
    if base is None or new is None:
        return None
    for metric in ("compute_ms", "latency_ms"):
        if metric not in base or metric not in new:
            continue
        x, y = (np.asarray(side[metric], dtype=float) for side in (base, new))
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        if min(x.size, y.size) >= 2 and np.median(x) > 0 and np.median(y) > 0:
            return metric, x, y
    return None


def _summary_metric(b: pd.Series, n: pd.Series) -> tuple[str, str, str]:
    """(metric, median column, cv column): GPU compute time where both rows have it."""
    if all(_finite(r.get(C.COMPUTE_MEDIAN)) and _finite(r.get(C.COMPUTE_CV)) for r in (b, n)):
        return "compute_ms", C.COMPUTE_MEDIAN, C.COMPUTE_CV
    return "latency_ms", C.LATENCY_MEDIAN, C.CV


def _compare_row(key: tuple, b: pd.Series, n: pd.Series, base: Side, new: Side, confidence: float, resamples: int,
                 seed: int) -> dict:
    raw_b, where_b = base.timings(b)
    raw_n, where_n = new.timings(n)
    samples = _raw_samples(raw_b, raw_n)
    if samples:
        metric, x, y = samples
        med_b, med_n = float(np.median(x)), float(np.median(y))
        low, high = ratio_interval(x, y, confidence, resamples, _row_seed(seed, key))
        return dict(metric=metric, base_median_ms=med_b, new_median_ms=med_n, ratio=med_n / med_b, ci_low=low,
                    ci_high=high, p_value=mann_whitney(x, y).p, verified=True, base_iterations=x.size,
                    new_iterations=y.size, evidence="raw timings")
    why = (where_b if raw_b is None else where_n if raw_n is None
           else "no metric with finite, positive timings on both sides")
    metric, median_col, cv_col = _summary_metric(b, n)
    med_b, med_n = _float(b.get(median_col)), _float(n.get(median_col))
    values = [med_b, b.get(cv_col), b.get("iterations"), med_n, n.get(cv_col), n.get("iterations")]
    out = dict(metric=metric, base_median_ms=med_b, new_median_ms=med_n, verified=False,
               base_iterations=b.get("iterations", math.nan), new_iterations=n.get("iterations", math.nan),
               evidence=f"summary median and cv only: {why}")
    if not all(_finite(v) for v in values) or med_b <= 0 or med_n <= 0 or min(float(values[2]), float(values[5])) < 2:
        return dict(out, ratio=med_n / med_b if _finite(med_b) and med_b > 0 else math.nan, ci_low=math.nan,
                    ci_high=math.nan, p_value=math.nan)
    low, high, p = summary_test(med_b, float(b[cv_col]), float(b["iterations"]), med_n, float(n[cv_col]),
                                float(n["iterations"]), confidence)
    return dict(out, ratio=med_n / med_b, ci_low=low, ci_high=high, p_value=p)


def _env_values(table: pd.DataFrame, column: str) -> set[str]:
    if column not in table.columns:
        return set()
    values = set()
    for _, row in table.iterrows():
        value = row[column]
        if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "":
            continue
        text = f"{value:g}" if isinstance(value, float) else str(value)
        # A version alone is ambiguous across backends: say whose it is.
        values.add(f"{row[C.BACKEND]} {text}" if column == "backend_version" else text)
    return values


def environment_differences(base: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """'column: base value(s) -> new value(s)' for every environment column whose set of values differs."""
    diffs = []
    for column in ENV_COLUMNS:
        before, after = _env_values(base, column), _env_values(new, column)
        if before != after:
            diffs.append(f"{column}: {', '.join(sorted(before)) or '(none)'} -> {', '.join(sorted(after)) or '(none)'}")
    return diffs


def _unmatched(table: pd.DataFrame, keys: set[tuple]) -> pd.DataFrame:
    columns = KEY_COLUMNS + [c for c in (C.LATENCY_MEDIAN, C.COMPUTE_MEDIAN) if c in table.columns]
    mask = [tuple(r) in keys for r in table[KEY_COLUMNS].itertuples(index=False)]
    return table.loc[mask, columns].reset_index(drop=True)


def compare(base: str | Path | Side, new: str | Path | Side, alpha: float = DEFAULT_ALPHA,
            min_effect: float = DEFAULT_MIN_EFFECT, confidence: float = DEFAULT_CONFIDENCE,
            resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Comparison:
    """Compare two sweeps row by row (see the module docstring for the rule)."""
    if not 0 < alpha < 1 or not 0 <= min_effect < 1 or not 0 < confidence < 1 or resamples < 100:
        raise CompareInputError(
            f"alpha {alpha}, min_effect {min_effect}, confidence {confidence} or resamples {resamples} is out of range; "
            f"fix: alpha and confidence in (0, 1), min_effect in [0, 1), resamples >= 100.")
    base_sweep = base if isinstance(base, Side) else load_sweep(base)
    new_sweep = new if isinstance(new, Side) else load_sweep(new)
    base_rows = {tuple(r[k] for k in KEY_COLUMNS): r for _, r in base_sweep.table.iterrows()}
    new_rows = {tuple(r[k] for k in KEY_COLUMNS): r for _, r in new_sweep.table.iterrows()}
    matched = sorted(set(base_rows) & set(new_rows))
    rows = []
    for key in matched:
        result = _compare_row(key, base_rows[key], new_rows[key], base_sweep, new_sweep, confidence, resamples, seed)
        rows.append({**dict(zip(KEY_COLUMNS, key)), **result})
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    if not frame.empty:
        frame["p_adjusted"] = holm(frame["p_value"].to_numpy(dtype=float))
        verdicts, notes = [], []
        for r in frame.itertuples():
            v = verdict(r.ci_low, r.ci_high, r.p_adjusted, alpha, min_effect)
            if v == "within noise" and r.p_adjusted < alpha and (r.ci_low > 1 or r.ci_high < 1):
                notes.append(f"; significant, but its interval does not clear the {min_effect:.0%} minimum effect")
            else:
                notes.append("")
            verdicts.append(v if r.verified or v == NOT_COMPARED else f"{v}, {UNVERIFIED}")
        frame["verdict"] = verdicts
        frame["evidence"] = frame["evidence"] + notes
    return Comparison(
        rows=frame,
        only_base=_unmatched(base_sweep.table, set(base_rows) - set(new_rows)),
        only_new=_unmatched(new_sweep.table, set(new_rows) - set(base_rows)),
        env_diffs=environment_differences(base_sweep.table, new_sweep.table),
        base=str(base_sweep.source), new=str(new_sweep.source), alpha=alpha, min_effect=min_effect,
        confidence=confidence, resamples=resamples,
    )


# --- output -------------------------------------------------------------------------------------------------
def _num(value: float, digits: int = 3) -> str:
    return "" if not _finite(value) else f"{float(value):.{digits}g}"


def _p(value: float) -> str:
    """p-values below double precision's resolution print as a bound, not as a misleading 0."""
    return "" if not _finite(value) else "<1e-16" if value < 1e-16 else f"{value:.2g}"


def _rows_table(rows: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "engine": [engine_label(r, model=True) for r in rows.itertuples()],
        C.BATCH: rows[C.BATCH].to_numpy(),
        "metric": rows["metric"].to_numpy(),
        "base ms": [_num(v, 4) for v in rows["base_median_ms"]],
        "new ms": [_num(v, 4) for v in rows["new_median_ms"]],
        "ratio": [_num(v, 4) for v in rows["ratio"]],
        f"{rows.attrs.get('confidence', DEFAULT_CONFIDENCE):.0%} CI": [
            f"{lo:.3f}-{hi:.3f}" if _finite(lo) and _finite(hi) else "" for lo, hi in zip(rows["ci_low"], rows["ci_high"])],
        "p (Holm)": [_p(v) for v in rows["p_adjusted"]],
        "verdict": rows["verdict"].to_numpy(),
        "evidence": rows["evidence"].to_numpy(),
    })
    return markdown_table(shown)


def regression_line(row) -> str:
    return (f"{engine_label(row, model=True, batch=True)}: {row['metric']} median {_num(row['base_median_ms'], 4)} -> {_num(row['new_median_ms'], 4)} ms "
            f"(x{row['ratio']:.3f}, CI {row['ci_low']:.3f}-{row['ci_high']:.3f}, Holm p {_p(row['p_adjusted'])})")


def render_markdown(comparison: Comparison) -> str:
    c = comparison
    rows = c.rows.copy()
    rows.attrs["confidence"] = c.confidence
    verdicts = rows["verdict"] if not rows.empty else pd.Series(dtype=str)
    counts = {name: int(verdicts.str.startswith(name).sum()) for name in ("regression", "improvement", "within noise")}
    unverified = int((~rows["verified"].astype(bool)).sum()) if not rows.empty else 0
    not_compared = int((verdicts == NOT_COMPARED).sum())
    out = [
        "# trtpipe compare",
        f"Base: `{c.base}`. New: `{c.new}`.",
        f"Rule: per row, the ratio of medians new / base (GPU compute time where both sides have it, else latency). "
        f"A row is a regression when the {c.confidence:.0%} bootstrap interval of the ratio ({c.resamples} resamples, "
        f"fixed seed) lies entirely above {1 + c.min_effect:g} and the two-sided Mann-Whitney U p-value, Holm-adjusted "
        f"over the {int(rows['p_value'].notna().sum()) if not rows.empty else 0} rows tested, is below {c.alpha:g}; an "
        f"improvement when the interval lies entirely below {1 - c.min_effect:g} with the same p-value condition. Shifts "
        f"smaller than {c.min_effect:.0%} are never called, however significant: they are not worth acting on.",
        f"{len(rows)} matched rows: {counts['regression']} regression(s), {counts['improvement']} improvement(s), "
        f"{counts['within noise']} within noise" + (f", {not_compared} not compared" if not_compared else "") + "; "
        f"{unverified} row(s) without raw timings on both sides ({UNVERIFIED}: judged from median, cv and iteration "
        f"count alone). {len(c.only_base)} row(s) only in base, {len(c.only_new)} only in new.",
        "## Environment",
    ]
    if c.env_diffs:
        out.append("The sweeps differ in their environment; a verdict says what changed, not why:")
        out.append("\n".join(f"- {d}" for d in c.env_diffs))
    else:
        out.append("Same device, backend versions, driver, SM clock and workflow revision on both sides.")
    for title, subset in (("Regressions", c.regressions), ("Improvements", c.improvements)):
        if not subset.empty:
            subset = subset.copy()
            subset.attrs["confidence"] = c.confidence
            out += [f"## {title}", _rows_table(subset)]
    if not rows.empty:
        out += ["## All matched rows", _rows_table(rows)]
    for title, frame in (("Only in base", c.only_base), ("Only in new", c.only_new)):
        if not frame.empty:
            shown = frame.copy()
            for column in (C.LATENCY_MEDIAN, C.COMPUTE_MEDIAN):
                if column in shown.columns:
                    shown[column] = [_num(v, 4) for v in shown[column]]
            out += [f"## {title}", markdown_table(shown)]
    return "\n\n".join(out) + "\n"


# --- command line -------------------------------------------------------------------------------------------
def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _effect(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`trtpipe compare`'s arguments (the trtpipe CLI parses them with this too), defaults from the schema."""
    parser.add_argument("base", help="the baseline: a results folder or its summary/benchmarks.csv")
    parser.add_argument("new", help="the sweep to judge: a results folder or its summary/benchmarks.csv")
    parser.add_argument("--alpha", type=_probability, default=DEFAULT_ALPHA,
                        help=f"significance level after Holm's correction across rows (default {DEFAULT_ALPHA})")
    parser.add_argument("--min-effect", type=_effect, default=DEFAULT_MIN_EFFECT,
                        help=f"smallest relative change ever called (default {DEFAULT_MIN_EFFECT}: {DEFAULT_MIN_EFFECT * 100:g}%%)")
    parser.add_argument("--out", help="write the Markdown report here (default: print it)")
    parser.add_argument("--csv", help="also write the per-row comparison as CSV")
    return parser


def run(args: argparse.Namespace) -> int:
    """Exit status: 1 when any row is a regression, 0 otherwise; missing or unreadable inputs, and two sweeps
    without a single matching row, raise CompareInputError (status 2 from main and the trtpipe CLI)."""
    comparison = compare(args.base, args.new, alpha=args.alpha, min_effect=args.min_effect)
    if comparison.rows.empty:  # a gate that checked nothing must not pass
        raise CompareInputError(
            f"no row of {comparison.new} matches a row of {comparison.base} by {', '.join(KEY_COLUMNS)}; "
            f"fix: compare two sweeps of the same models and engines.")
    markdown = render_markdown(comparison)
    for target, write in ((args.out, lambda p: write_text(p, markdown)), (args.csv, lambda p: write_csv(p, comparison.rows))):
        if target:
            try:
                write(target)
            except OSError as exc:
                raise CompareInputError(f"cannot write {target} ({exc.strerror}); fix: choose a writable path.") from exc
    if not args.out:
        print(markdown)
    regressions = comparison.regressions
    for _, row in regressions.iterrows():
        print(f"REGRESSION {regression_line(row)}")
    print(f"trtpipe compare: {len(regressions)} regression(s) in {len(comparison.rows)} matched row(s)"
          + (f"; report: {args.out}" if args.out else ""))
    return 1 if len(regressions) else 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="trtpipe compare", description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except TrtpipeError as exc:
        print(f"trtpipe compare: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
