"""Deployment decisions (trtpipe.decide) against answers worked by hand on a small table."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from trtpipe import decide

# One model, ONNX Runtime fp32: three static engines, a dynamic 1/4/32 engine measured at 1, 4 and 32 (not 16),
# a latency 1/1/1 engine, and a wide 1/8/64 engine measured at 8 and 64 only.
TABLE = """\
model,backend,variant,precision,profile,profile_min,profile_opt,profile_max,batch,latency_ms_median,latency_ms_p99,throughput_samples_s
m,onnxruntime,static-b1,fp32,static,1,1,1,1,1.0,1.5,1000
m,onnxruntime,static-b4,fp32,static,4,4,4,4,2.0,3.0,2000
m,onnxruntime,static-b16,fp32,static,16,16,16,16,6.0,8.0,2667
m,onnxruntime,dynamic,fp32,dynamic,1,4,32,1,1.2,2.0,833
m,onnxruntime,dynamic,fp32,dynamic,1,4,32,4,2.4,4.0,1667
m,onnxruntime,dynamic,fp32,dynamic,1,4,32,32,12.0,15.0,2667
m,onnxruntime,dynamic,fp32,latency,1,1,1,1,0.9,1.2,1111
m,onnxruntime,dynamic,fp32,wide,1,8,64,8,4.0,5.0,1600
m,onnxruntime,dynamic,fp32,wide,1,8,64,64,20.0,30.0,2600
"""
TRAFFIC = {"batch": {1: 0.7, 4: 0.2, 16: 0.1}}


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(TABLE))


def latency(rows, variant, profile, batch) -> float:
    match = rows[(rows["variant"] == variant) & (rows["profile"] == profile) & (rows["batch"] == batch)]
    assert len(match) == 1
    return float(match["latency_ms_median"].iloc[0])


def points(frame: pd.DataFrame) -> set[tuple]:
    return {(r.variant, r.profile, r.batch) for r in frame.itertuples()}


def test_pareto_front_matches_hand_answer(rows):
    # By p99: latency b1 (1.2 ms, 1111/s) is fastest, so on the front; static-b1 (1.5, 1000) and dynamic b1 (2.0, 833)
    # are slower and lower. static-b4 (3.0, 2000) beats dynamic b4 (4.0, 1667) and wide b8 (5.0, 1600).
    # static-b16 (8.0, 2667) beats dynamic b32 (15.0, 2667: same throughput, slower) and wide b64 (30.0, 2600).
    front = decide.pareto_front(rows)
    assert points(front) == {("dynamic", "latency", 1), ("static-b4", "static", 4), ("static-b16", "static", 16)}
    assert list(front["latency_ms_p99"]) == sorted(front["latency_ms_p99"])


def test_identical_points_both_stay_on_the_front(rows):
    twin = rows[rows["variant"] == "static-b4"].assign(backend="twin")
    front = decide.pareto_front(pd.concat([rows, twin]))
    assert len(front[front["variant"] == "static-b4"]) == 2


def test_slo_pick_takes_the_highest_throughput_inside_the_budget(rows):
    # p99 <= 5 ms: static-b1 1.5, static-b4 3.0, dynamic b1 2.0, dynamic b4 4.0, latency b1 1.2, wide b8 5.0 (6 of 9);
    # the highest throughput among them is static-b4's 2000 samples/s.
    chosen, sentence = decide.slo_pick(rows, {"p99_latency_ms": 5.0})
    assert (chosen["variant"], chosen["batch"]) == ("static-b4", 4)
    assert "onnxruntime fp32 static-b4 engine at batch 4" in sentence and "6 of 9" in sentence


def test_slo_pick_with_both_constraints(rows):
    # p99 <= 10 ms and >= 2500 samples/s: only static-b16 (8.0 ms, 2667/s); dynamic b32 and wide b64 miss the p99.
    chosen, _ = decide.slo_pick(rows, {"p99_latency_ms": 10.0, "min_throughput": 2500})
    assert (chosen["variant"], chosen["batch"]) == ("static-b16", 16)


def test_slo_pick_names_the_closest_row_when_nothing_fits(rows):
    # p99 <= 5 ms and >= 2100 samples/s: rows within the p99 budget have at most 2000/s (static-b4: 1 - 2000/2100 = 4.8%
    # short); the fast-enough rows miss the p99 by 60% (static-b16) or more. Closest: static-b4.
    chosen, sentence = decide.slo_pick(rows, {"p99_latency_ms": 5.0, "min_throughput": 2100})
    assert chosen is None
    assert sentence.startswith("nothing of 9 engine x batch rows meets")
    assert "closest: onnxruntime fp32 static-b4 engine at batch 4" in sentence
    assert f"throughput {1 - 2000 / 2100:.0%} short" in sentence


def test_slo_pick_refuses_unknown_objectives(rows):
    with pytest.raises(ValueError, match="p50"):
        decide.slo_pick(rows, {"p50_latency_ms": 1.0})


def test_traffic_ranking_matches_hand_answer(rows):
    # Traffic 70% batch 1, 20% batch 4, 10% batch 16.
    # Static engines, one per batch: 0.7*1.0 + 0.2*2.0 + 0.1*6.0 = 1.7 ms, all traffic served.
    # Dynamic 1/4/32: batch 16 interpolated between 4 and 32: 2.4 + (16-4)/(32-4) * (12.0-2.4) = 6.5143 ms, so
    #   0.7*1.2 + 0.2*2.4 + 0.1*6.5143 = 1.9714 ms, 16% more than 1.7.
    # Latency 1/1/1 serves batch 1 only (70%); static-b4 alone serves 20%;
    # wide 1/8/64: batches 1 and 4 are inside the profile but below its measured 8..64, so only 16 (10%) is served.
    static_set = sum(w * latency(rows, f"static-b{b}", "static", b) for b, w in TRAFFIC["batch"].items())
    at_16 = latency(rows, "dynamic", "dynamic", 4) + (16 - 4) / (32 - 4) * (
        latency(rows, "dynamic", "dynamic", 32) - latency(rows, "dynamic", "dynamic", 4))
    dynamic = (0.7 * latency(rows, "dynamic", "dynamic", 1) + 0.2 * latency(rows, "dynamic", "dynamic", 4) + 0.1 * at_16)

    ranking = decide.traffic_ranking(rows, TRAFFIC)
    table = ranking.options
    ranked = table[table["rank"].notna()]
    assert list(ranked["kind"]) == ["static engines, one per batch", "dynamic engine"]
    assert list(ranked["expected_latency_ms"]) == pytest.approx([static_set, dynamic])
    assert "batch 16 interpolated between measured batches 4 and 32" in ranked["interpolated"].iloc[1]

    coverage = dict(zip(table["option"], table["coverage"]))
    assert coverage["onnxruntime fp32 dynamic 1/1/1 engine (profile latency)"] == pytest.approx(0.7)
    assert coverage["onnxruntime fp32 static-b4 engine"] == pytest.approx(0.2)
    assert coverage["onnxruntime fp32 dynamic 1/8/64 engine (profile wide)"] == pytest.approx(0.1)
    wide = table[table["option"].str.contains("profile wide")].iloc[0]
    assert "batch 1 " in wide["not_served"] and "batch 4 " in wide["not_served"] and "not measured" in wide["not_served"]

    text = ranking.recommendation
    assert text.startswith("deploy onnxruntime fp32 static engines (batches 1, 4, 16, one engine per batch): "
                           f"expected {static_set:.3g} ms per request (measured at every batch you see)")
    assert f"costs {dynamic / static_set - 1:.0%} more at the batches you see" in text
    assert "interpolated between measured batches 4 and 32" in text


def test_traffic_counts_are_normalised(rows):
    shares = decide.traffic_ranking(rows, TRAFFIC).options
    counts = decide.traffic_ranking(rows, {"batch": {b: 1000 * w for b, w in TRAFFIC["batch"].items()}}).options
    pd.testing.assert_frame_equal(shares, counts)


def test_traffic_nobody_serves_fully(rows):
    # Batch 64 is beyond every engine but the wide one, and the wide one never measured batch 1: each serves half.
    ranking = decide.traffic_ranking(rows, {"batch": {1: 1, 64: 1}})
    assert ranking.options["rank"].isna().all()
    assert ranking.recommendation.startswith("no engine serves all of your traffic")
    assert "serves 50%" in ranking.recommendation


def test_suggest_profiles_matches_hand_answer():
    # Batches 1, 4, 16, 32 with shares 0.7, 0.2, 0.05, 0.05; a range costs sum(share * |log2(batch / opt)|).
    # Two ranges: {1} + {4, 16, 32} (opt 4): 0 + 0.05*2 + 0.05*3 = 0.25      <- best
    #             {1, 4} (opt 1) + {16, 32} (opt 16): 0.2*2 + 0.05*1 = 0.45
    #             {1, 4, 16} (opt 1) + {32}: 0.2*2 + 0.05*4 = 0.6
    # One range: opt 1: 0.2*2 + 0.05*4 + 0.05*5 = 0.85.
    traffic = {"batch": {1: 0.7, 4: 0.2, 16: 0.05, 32: 0.05}}
    two = decide.suggest_profiles(traffic, k=2)
    assert [str(p) for p in two.profiles] == ["1/1/1", "4/4/32"]
    assert two.spread == pytest.approx(0.05 * 2 + 0.05 * 3)
    assert two.sentence.startswith("two profiles, 1/1/1 (70% of requests) and 4/4/32 (30% of requests), would serve 100%")
    assert two.as_config() == {"traffic1": {"min": 1, "opt": 1, "max": 1}, "traffic2": {"min": 4, "opt": 4, "max": 32}}
    one = decide.suggest_profiles(traffic, k=1)
    assert [str(p) for p in one.profiles] == ["1/1/32"] and one.spread == pytest.approx(0.2 * 2 + 0.05 * 4 + 0.05 * 5)
    assert one.sentence.startswith("one profile, 1/1/32")


def test_suggest_profiles_uses_no_more_ranges_than_help():
    # A single batch needs one profile however many are allowed.
    suggestion = decide.suggest_profiles({"batch": {8: 1.0}}, k=3)
    assert [str(p) for p in suggestion.profiles] == ["8/8/8"] and suggestion.spread == 0


def test_pareto_plot_writes_a_png_atomically(rows, tmp_path):
    chosen, _ = decide.slo_pick(rows, {"p99_latency_ms": 5.0})
    path = decide.pareto_plot(rows, chosen, tmp_path / "plots" / "m.pareto.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["m.pareto.png"]  # no temporary left behind


def test_a_model_whose_every_engine_failed_accuracy_still_gets_its_plot(rows, tmp_path):
    """The summary rule lists a Pareto plot per model: a model with no engine left after the accuracy
    exclusions (seeded ResNet-50 fp16 on the GPU, say) gets a figure that says so, not a missing output."""
    from trtpipe.report.analysis import deployment_decisions

    accuracy = rows.assign(stage="engine", passed=False, case="b1", output="y", max_abs_err=0.1, cosine=1.0)
    entry = deployment_decisions(rows, accuracy, tmp_path, {"m": {"p99_latency_ms": 5.0}}, {})["m"]
    assert entry["pick"] is None and "front" not in entry
    assert (tmp_path / "plots" / "m.pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_build_cost_is_one_row_per_engine_with_torch_load_columns(rows):
    """The report's Build cost table: the engine's build seconds once per engine (not per batch), and for the
    compiled torch modes what the benchmark spent loading and tracing, and its graphs."""
    from trtpipe.report.analysis import build_costs

    bench = rows.assign(engine_build_s=1.25)
    torch_rows = rows.head(2).assign(backend="torch_compile_graph", precision="fp16", engine_build_s=61.0,
                                     compile_s=[7.5, 7.5], graphs_compiled=[2, 2])
    table = build_costs(pd.concat([bench, torch_rows], ignore_index=True))
    assert len(table) == table["engine"].nunique() == 8  # 6 ORT engines (3 static, 3 dynamic profiles) + 2 torch
    torch_row = table[table["engine"].str.startswith("torch_compile_graph")].iloc[0]
    assert (torch_row["build_s"], torch_row["load_compile_s"], torch_row["graphs"]) == ("61.0", "7.5", "2")
    assert set(table[~table["engine"].str.startswith("torch")]["load_compile_s"]) == {""}
    assert build_costs(rows).empty  # CSVs from before the column: no table
