"""`trtpipe compare` and the raw timings file, on fake results folders built from the committed GPU sweep.

Each row of docs/gpu/benchmarks.csv gets per-iteration timings drawn from a seeded lognormal with the
row's own median, cv and iteration count, so the statistics meet the noise levels of a real sweep
(cv from 0.2% for CUDA-graph replays to 90% for eager launches).
"""

from __future__ import annotations

import math
import zlib
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trtpipe import compare as cmp
from trtpipe.timings import read_timings, timings_path, write_timings

SWEEP_CSV = Path(__file__).resolve().parents[1] / "docs" / "gpu" / "benchmarks.csv"
ENGINE_KEYS = ["model", "backend", "variant", "precision", "profile"]
# The planted engine: CUDA-graph replay, its cv is at most 2.1% at every batch (asserted below), so a 30% slowdown
# lies far outside its noise at each of its five batches.
PLANTED = ("resnet50", "torch_compile_graph", "dynamic", "fp16", "gpu_sweep")
SLOWDOWN = 1.3
LATENCY_COLUMNS = ["latency_ms_min", "latency_ms_mean", "latency_ms_median", "latency_ms_p90", "latency_ms_p95",
                   "latency_ms_p99", "latency_ms_max", "latency_ms_std", "compute_ms_median", "h2d_ms_median",
                   "d2h_ms_median", "enqueue_ms_median"]
THROUGHPUT_COLUMNS = ["throughput_qps", "throughput_samples_s"]


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return pd.read_csv(SWEEP_CSV)


def engine_of(row) -> tuple:
    return tuple(row[k] for k in ENGINE_KEYS)


def lognormal(median: float, cv: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws with this median and coefficient of variation (a lognormal's cv is sqrt(exp(sigma^2) - 1))."""
    sigma = math.sqrt(math.log1p(cv ** 2))
    return median * np.exp(sigma * rng.standard_normal(int(n)))


def write_results(folder: Path, table: pd.DataFrame, seed: int, scale: dict[tuple, float] | None = None) -> Path:
    """A results folder as the pipeline leaves it: summary/benchmarks.csv and each engine's raw timings.

    Engines in `scale` are slower by that factor: their timings and their summary row alike. Draws depend on
    the seed and the row only, so two folders with the same seed hold identical timings elsewhere.
    """
    scale = scale or {}
    table = table.copy()
    for engine, factor in scale.items():
        rows = table[ENGINE_KEYS].apply(tuple, axis=1) == engine
        table.loc[rows, LATENCY_COLUMNS] *= factor
        table.loc[rows, THROUGHPUT_COLUMNS] /= factor
    (folder / "summary").mkdir(parents=True)
    table.to_csv(folder / "summary" / "benchmarks.csv", index=False)
    for engine, grp in table.groupby(ENGINE_KEYS):
        factor = scale.get(engine, 1.0)
        per_batch = {}
        for _, r in grp.iterrows():
            rng = np.random.default_rng([seed, zlib.crc32(f"{engine}{r['batch']}".encode())])
            # The unscaled median, then the factor: a planted engine's draws are exactly the base draws x factor.
            latency_median = r["latency_ms_median"] / factor
            per_batch[int(r["batch"])] = {"latency_ms": factor * lognormal(latency_median, r["cv"], r["iterations"], rng)}
            if pd.notna(r["compute_ms_median"]):
                per_batch[int(r["batch"])]["compute_ms"] = factor * lognormal(
                    r["compute_ms_median"] / factor, r["compute_cv"], r["iterations"], rng)
        model, backend, variant, precision, profile = engine
        write_timings(timings_path(folder / model / "bench" / backend / f"{variant}.{precision}.{profile}.csv"), per_batch)
    return folder


def keys_of(frame: pd.DataFrame) -> set[tuple]:
    return {tuple(r) for r in frame[cmp.KEY_COLUMNS].itertuples(index=False)}


def planted_keys(table: pd.DataFrame) -> set[tuple]:
    return keys_of(table[table[ENGINE_KEYS].apply(tuple, axis=1) == PLANTED])


# --- the timings file ----------------------------------------------------------------------------------------
def test_timings_file_round_trips_as_float32_beside_the_csv(tmp_path):
    csv = tmp_path / "bench" / "dynamic.fp16.latency.csv"
    path = timings_path(csv)
    assert path == csv.parent / "dynamic.fp16.latency.timings.npz"
    rng = np.random.default_rng(0)
    written = {1: {"latency_ms": rng.random(50), "compute_ms": rng.random(50)}, 8: {"latency_ms": rng.random(7)}}
    write_timings(path, written)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no .npz.npz, no temporary left behind
    read = read_timings(path)
    assert sorted(read) == sorted(written)
    for batch, metrics in written.items():
        assert sorted(read[batch]) == sorted(metrics)
        for metric, values in metrics.items():
            assert read[batch][metric].dtype == np.float32
            np.testing.assert_array_equal(read[batch][metric], values.astype(np.float32))


def test_timings_file_with_foreign_arrays_is_refused(tmp_path):
    path = tmp_path / "x.timings.npz"
    np.savez(path, stray=np.zeros(3))
    with pytest.raises(ValueError, match="stray"):
        read_timings(path)


# --- statistics against hand-worked examples ---------------------------------------------------------------
def test_mann_whitney_without_ties_matches_r():
    # x = 1, 2, 3 and y = 4, 5, 6: every x below every y, so U = 0; mu = 3*3/2 = 4.5, var = 3*3*7/12 = 5.25,
    # z = (4.5 - 0.5) / sqrt(5.25) = 1.7457, p = 2 * (1 - Phi(1.7457)) = 0.08086:
    # R's wilcox.test(1:3, 4:6, exact = FALSE) prints "W = 0, p-value = 0.08086".
    result = cmp.mann_whitney(np.array([1, 2, 3]), np.array([4, 5, 6]))
    assert result.u == 0
    assert result.z == pytest.approx(4.0 / math.sqrt(5.25))
    assert round(result.p, 5) == 0.08086


def test_mann_whitney_with_ties_matches_hand_computation():
    # x = 1, 2, 2, 3 and y = 2, 3, 4, 4. Pooled and sorted: 1 | 2 2 2 | 3 3 | 4 4, ranks 1 | 3 3 3 | 5.5 5.5 | 7.5 7.5.
    # Rank sum of x = 1 + 3 + 3 + 5.5 = 12.5, U = 12.5 - 4*5/2 = 2.5; mu = 4*4/2 = 8.
    # Tie groups of 3, 2 and 2: sum(t^3 - t) = 24 + 6 + 6 = 36; N = 8, so
    # var = 4*4/12 * (9 - 36/(8*7)) = 11.142857 and z = (|2.5 - 8| - 0.5) / sqrt(var) = 1.49786, p = 0.13424.
    expected_var = 4 * 4 / 12 * (9 - 36 / (8 * 7))
    expected_z = (abs(2.5 - 8) - 0.5) / math.sqrt(expected_var)
    result = cmp.mann_whitney(np.array([1, 2, 2, 3]), np.array([2, 3, 4, 4]))
    assert result.u == 2.5
    assert result.z == pytest.approx(expected_z)
    assert result.p == pytest.approx(math.erfc(expected_z / math.sqrt(2)))
    assert round(result.p, 4) == 0.1342


def test_mann_whitney_of_identical_samples_finds_nothing():
    assert cmp.mann_whitney(np.ones(5), np.ones(7)).p == 1.0


def test_holm_matches_hand_computation():
    # Sorted: 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running max: 0.02, 0.03, 0.06, 0.06.
    # Back in input order (0.01, 0.04, 0.03, 0.005), NaN is no test and leaves m at 4.
    adjusted = cmp.holm([0.01, 0.04, math.nan, 0.03, 0.005])
    np.testing.assert_allclose(adjusted[[0, 1, 3, 4]], [0.01 * 3, 0.03 * 2, 0.03 * 2, 0.005 * 4])
    assert math.isnan(adjusted[2])


def test_bootstrap_medians_follow_the_exact_bootstrap_distribution():
    # Odd n = 7: a resample's median is at most the j-th smallest value exactly when at least 4 of its 7 draws
    # are, and each draw is with probability j/7: P = P(Binomial(7, j/7) >= 4).
    values = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0])
    n, k = values.size, (values.size + 1) // 2
    medians = cmp.bootstrap_medians(values, 40_000, np.random.default_rng(1))
    for j, value in enumerate(np.sort(values), start=1):
        exact = sum(comb(n, i) * (j / n) ** i * (1 - j / n) ** (n - i) for i in range(k, n + 1))
        assert np.mean(medians <= value) == pytest.approx(exact, abs=0.01)


def test_bootstrap_medians_of_even_samples_match_brute_force_resampling():
    values = np.array([4.0, 1.0, 6.0, 2.0, 9.0, 3.0])
    rng = np.random.default_rng(2)
    drawn = cmp.bootstrap_medians(values, 40_000, rng)
    brute = np.median(values[rng.integers(0, values.size, (40_000, values.size))], axis=1)
    # Each possible median (a value, or the mean of two) must come up about as often both ways.
    for value in np.union1d(drawn, brute):
        assert np.mean(drawn == value) == pytest.approx(np.mean(brute == value), abs=0.01)


def test_ratio_interval_agrees_with_scipys_percentile_bootstrap():
    """SciPy's stats.bootstrap (percentile method, each side resampled on its own) as the oracle of the exact
    order-statistic draw: the same interval up to Monte Carlo error. SciPy builds every resample, thousands of
    times slower on a 20,000-iteration CPU row (docs/measurements.md), so the sweep uses the draw."""
    from scipy import stats

    rng = np.random.default_rng(5)
    base, new = rng.lognormal(0, 0.3, 301), 1.1 * rng.lognormal(0, 0.3, 240)
    ours = cmp.ratio_interval(base, new, 0.95, 20_000, np.random.default_rng(1))
    theirs = stats.bootstrap((base, new), lambda b, n, axis: np.median(n, axis=axis) / np.median(b, axis=axis),
                             n_resamples=20_000, method="percentile", vectorized=True, confidence_level=0.95,
                             random_state=np.random.default_rng(1)).confidence_interval
    np.testing.assert_allclose(ours, (theirs.low, theirs.high), atol=0.01)
    assert ours[0] > 1.0  # the 10% shift is found by both


@pytest.mark.parametrize("ci_low, ci_high, p_adjusted, expected", [
    (1.05, 1.10, cmp.DEFAULT_ALPHA / 10, "regression"),
    (1.05, 1.10, cmp.DEFAULT_ALPHA * 2, "within noise"),  # a clear shift by the interval, not significant after Holm
    (1.01, 1.10, cmp.DEFAULT_ALPHA / 10, "within noise"),  # the interval reaches below 1 + min_effect
    (0.90, 0.95, cmp.DEFAULT_ALPHA / 10, "improvement"),
    (0.90, 0.99, cmp.DEFAULT_ALPHA / 10, "within noise"),  # the interval reaches above 1 - min_effect
    (math.nan, math.nan, math.nan, cmp.NOT_COMPARED),
])
def test_verdict_needs_both_the_interval_and_the_p_value(ci_low, ci_high, p_adjusted, expected):
    assert cmp.verdict(ci_low, ci_high, p_adjusted, cmp.DEFAULT_ALPHA, cmp.DEFAULT_MIN_EFFECT) == expected


# --- whole sweeps ---------------------------------------------------------------------------------------------
def test_planted_regression_is_flagged_on_exactly_that_engine(sweep, tmp_path, capsys):
    planted = sweep[sweep[ENGINE_KEYS].apply(tuple, axis=1) == PLANTED]
    assert len(planted) >= 2 and planted["compute_cv"].max() < SLOWDOWN - 1 - cmp.DEFAULT_MIN_EFFECT
    base = write_results(tmp_path / "base", sweep, seed=1)
    new = write_results(tmp_path / "new", sweep, seed=1, scale={PLANTED: SLOWDOWN})

    result = cmp.compare(base, new)
    assert keys_of(result.regressions) == planted_keys(sweep)
    assert result.rows["verified"].all()
    assert set(result.rows["verdict"]) == {"regression", "within noise"}
    regressed = result.regressions
    assert (regressed["metric"] == "compute_ms").all()  # GPU rows: compute time on both sides
    np.testing.assert_allclose(regressed["ratio"], SLOWDOWN, rtol=1e-5)
    assert ((regressed["ci_low"] > 1 + cmp.DEFAULT_MIN_EFFECT) & (regressed["p_adjusted"] < cmp.DEFAULT_ALPHA)).all()
    assert result.env_diffs == [] and result.only_base.empty and result.only_new.empty

    out, table = tmp_path / "compare.md", tmp_path / "compare.csv"
    assert cmp.main([str(base), str(new), "--out", str(out), "--csv", str(table)]) == 1
    printed = capsys.readouterr().out
    flagged = [line for line in printed.splitlines() if line.startswith("REGRESSION ")]
    assert len(flagged) == len(planted)
    assert all(" ".join(PLANTED) in line for line in flagged)
    assert "## Regressions" in out.read_text() and " ".join(PLANTED) in out.read_text()
    assert keys_of(pd.read_csv(table).query("verdict == 'regression'")) == planted_keys(sweep)


def test_a_sweep_compared_with_itself_passes(sweep, tmp_path, capsys):
    base = write_results(tmp_path / "base", sweep, seed=1)
    assert cmp.main([str(base), str(base)]) == 0
    assert "0 regression(s)" in capsys.readouterr().out
    result = cmp.compare(base, base)
    assert (result.rows["verdict"] == "within noise").all() and (result.rows["ratio"] == 1).all()


def test_independent_draws_of_the_same_engines_are_within_noise(sweep, tmp_path):
    base = write_results(tmp_path / "base", sweep, seed=1)
    new = write_results(tmp_path / "new", sweep, seed=2)
    result = cmp.compare(base, new)
    assert result.rows["verified"].all()
    assert (result.rows["ratio"] != 1).all()  # really different draws
    assert (result.rows["verdict"] == "within noise").all(), result.rows[result.rows["verdict"] != "within noise"]


def test_shifts_below_the_minimum_effect_are_not_called(sweep, tmp_path):
    # The steadiest row of the sweep, slowed by half the minimum effect: highly significant, not worth calling.
    steadiest = sweep.loc[[sweep["compute_cv"].idxmin()]]
    engine = engine_of(steadiest.iloc[0])
    base = write_results(tmp_path / "base", steadiest, seed=1)
    new = write_results(tmp_path / "new", steadiest, seed=1, scale={engine: 1 + cmp.DEFAULT_MIN_EFFECT / 2})
    row = cmp.compare(base, new).rows.iloc[0]
    assert row["p_adjusted"] < cmp.DEFAULT_ALPHA and row["ci_low"] > 1
    assert row["verdict"] == "within noise" and "minimum effect" in row["evidence"]
    assert cmp.compare(base, new, min_effect=0.0).rows.iloc[0]["verdict"] == "regression"


def test_missing_or_corrupt_raw_timings_fall_back_to_unverified_verdicts(sweep, tmp_path, capsys):
    base = write_results(tmp_path / "base", sweep, seed=1)
    new = write_results(tmp_path / "new", sweep, seed=1, scale={PLANTED: SLOWDOWN})
    model, backend, variant, precision, profile = PLANTED
    timings_path(new / model / "bench" / backend / f"{variant}.{precision}.{profile}.csv").unlink()
    corrupt = engine_of(sweep.iloc[0])
    corrupt_file = timings_path(base / corrupt[0] / "bench" / corrupt[1] / f"{'.'.join(corrupt[2:])}.csv")
    corrupt_file.write_bytes(b"not a zip file")

    result = cmp.compare(base, new)
    rows = result.rows.set_index(cmp.KEY_COLUMNS)
    unverified = keys_of(result.rows[~result.rows["verified"]])
    assert unverified == planted_keys(sweep) | keys_of(sweep[sweep[ENGINE_KEYS].apply(tuple, axis=1) == corrupt])
    assert keys_of(result.regressions) == planted_keys(sweep)
    assert all(rows.loc[k, "verdict"] == f"regression, {cmp.UNVERIFIED}" for k in planted_keys(sweep))
    assert all("unreadable" in rows.loc[k, "evidence"] for k in unverified - planted_keys(sweep))
    assert cmp.main([str(base), str(new)]) == 1
    assert "unverified" in capsys.readouterr().out


def test_a_benchmarks_csv_finds_raw_timings_two_folders_up(sweep, tmp_path):
    base = write_results(tmp_path / "base", sweep, seed=1)
    new = write_results(tmp_path / "new", sweep, seed=1, scale={PLANTED: SLOWDOWN})
    result = cmp.compare(base / "summary" / "benchmarks.csv", new / "summary" / "benchmarks.csv")
    assert result.rows["verified"].all()
    assert keys_of(result.regressions) == planted_keys(sweep)


def test_unmatched_rows_and_environment_differences_are_listed(sweep, tmp_path):
    dropped_from_new, dropped_from_base = sweep.index[0], sweep.index[-1]
    changed = sweep.drop(index=dropped_from_new).copy()
    gpu = changed["driver"].notna()
    old_driver = sorted(sweep["driver"].dropna().astype(str).unique())
    changed.loc[gpu, "driver"] = "999.1"
    changed["git_rev"] = "abc123"
    base = write_results(tmp_path / "base", sweep.drop(index=dropped_from_base), seed=1)
    new = write_results(tmp_path / "new", changed, seed=1)
    result = cmp.compare(base, new)
    assert keys_of(result.only_base) == keys_of(sweep.loc[[dropped_from_new]])
    assert keys_of(result.only_new) == keys_of(sweep.loc[[dropped_from_base]])
    old_rev = ", ".join(sorted(sweep["git_rev"].astype(str).unique()))
    assert result.env_diffs == [f"driver: {', '.join(old_driver)} -> 999.1", f"git_rev: {old_rev} -> abc123"]
    text = cmp.render_markdown(result)
    assert "## Only in base" in text and "## Only in new" in text and "driver: " in text


def test_missing_or_unreadable_inputs_exit_2_with_one_sentence(sweep, tmp_path, capsys):
    base = write_results(tmp_path / "base", sweep, seed=1)
    cases = {
        tmp_path / "nowhere": "does not exist",
        tmp_path / "empty": "without summary/benchmarks.csv",
        tmp_path / "bad.csv": "lacks the column(s)",
    }
    (tmp_path / "empty").mkdir()
    sweep.drop(columns=["batch"]).to_csv(tmp_path / "bad.csv", index=False)
    for path, words in cases.items():
        assert cmp.main([str(base), str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and words in err and "fix:" in err


def test_sweeps_without_a_common_row_exit_2(sweep, tmp_path, capsys):
    base = write_results(tmp_path / "base", sweep, seed=1)
    renamed = write_results(tmp_path / "renamed", sweep.assign(model=sweep["model"] + "_other"), seed=1)
    assert cmp.main([str(base), str(renamed)]) == 2
    assert "no row of" in capsys.readouterr().err


# --- wired into the trtpipe CLI and the report -------------------------------------------------------------
def test_planted_regression_through_the_trtpipe_cli_exits_1(sweep, tmp_path):
    """`python -m trtpipe compare` (the command a CI job runs): status 1 on a regression, 0 on none, 2 on bad input."""
    import os
    import subprocess
    import sys

    base = write_results(tmp_path / "base", sweep, seed=1)
    new = write_results(tmp_path / "new", sweep, seed=1, scale={PLANTED: SLOWDOWN})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "workflow")}

    def trtpipe(*args):
        return subprocess.run([sys.executable, "-m", "trtpipe", "compare", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=300)

    out = tmp_path / "compare.md"
    proc = trtpipe(base, new, "--out", out, "--csv", tmp_path / "compare.csv")
    assert proc.returncode == 1, proc.stderr
    assert "REGRESSION" in proc.stdout and PLANTED[1] in proc.stdout
    assert "regression" in out.read_text()
    assert trtpipe(base, base).returncode == 0
    missing = trtpipe(base, tmp_path / "nowhere")
    assert missing.returncode == 2 and "trtpipe compare: error:" in missing.stderr


def test_report_sections_for_budget_traffic_memory_and_baseline(sweep, tmp_path):
    """The summary with objectives, traffic and a baseline: each section appears, a regression does not fail it."""
    from trtpipe.report.summary import summarize

    base = write_results(tmp_path / "base", sweep, seed=1)
    new = write_results(tmp_path / "new", sweep, seed=1, scale={PLANTED: SLOWDOWN})
    table = pd.read_csv(new / "summary" / "benchmarks.csv")
    table["device_mem_peak_bytes"] = 3 * 2**20
    table["engine_bytes"] = 2**20
    table["host_rss_peak_bytes"] = 100 * 2**20
    bench = tmp_path / "bench.csv"
    table.drop(columns=[c for c in ("flops_per_sample", "achieved_tflops", "peak_tflops", "efficiency") if c in table]).to_csv(
        bench, index=False)
    out_dir = new / "summary"
    summarize([str(bench)], [], [], out_dir, objectives={"resnet50": {"p99_latency_ms": 5.0}},
              traffic={"resnet50": {"batch": {1: 0.7, 8: 0.3}}}, baseline=str(base))
    md = (out_dir / "report.md").read_text()
    for needle in ("## Against the baseline", "### Regressions", "### Within your budget", "### For your traffic",
                   "device_mem_mib", "engine_mib", "host_rss_mib", "resnet50.pareto.png"):
        assert needle in md, needle
    assert (out_dir / "plots" / "resnet50.pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert (out_dir / "compare.md").exists() and not pd.read_csv(out_dir / "compare.csv").empty
