"""onnxruntime.quantization's int8 for ONNX Runtime's CPU provider: precision names, the registry's quantizers,
sensitivity on evaluation samples, the k-growing mixed-precision search, and what a failing quantizer says.
Every model here is a real ONNX file run by a real ONNX Runtime session."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtpipe import quantize as q
from trtpipe.backends import registry
from trtpipe.config import validate
from trtpipe.errors import TrtpipeError
from trtpipe.precision import convert, sensitivity_ranking
from trtpipe.spec import ModelSpec, Variant

DYNAMIC = Variant(None)


def outlier_model(path, seed=0):
    """x -> MatMul 'benign' -> Mul by [1000, 1, ..., 1] -> MatMul 'fragile' -> logits (10 classes).

    The fragile MatMul's input has one feature 1000x the others (and a near-zero weight row for it): quantized per
    tensor, its uint8 activation scale is set by that feature and the other features round to a few levels, so
    quantizing it alone ruins top-1 agreement. The benign MatMul's input is well spread."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((16, 16)).astype(np.float32) / 4
    scale = np.ones(16, np.float32)
    scale[0] = 1000.0
    w2 = rng.standard_normal((16, 10)).astype(np.float32)
    w2[0] = 1e-5
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="benign"),
        helper.make_node("Mul", ["h", "scale"], ["hs"], name="spread"),
        helper.make_node("MatMul", ["hs", "w2"], ["logits"], name="fragile"),
    ]
    graph = helper.make_graph(
        nodes, "outlier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


SPEC = ModelSpec.from_dict({"name": "outlier", "inputs": [{"name": "x", "shape": [16]}], "seed": 0})


def samples(path, n=128, seed=1):
    np.savez(path, x=np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32))
    return str(path)


def test_precision_names_say_what_made_them():
    assert q.recipe("int8").quantizer == q.MODELOPT
    plain = q.recipe("int8-ort-qdq")
    assert (plain.quantizer, plain.mode, plain.calibration, plain.per_channel, plain.mixed) == (q.ORT, "qdq", "minmax", True, False)
    dyn = q.recipe("int8-ort-dyn-pc-mixed")
    assert (dyn.mode, dyn.calibration, dyn.per_channel, dyn.mixed, dyn.base) == ("dyn", "", True, True, "int8")
    assert q.recipe("int8-ort-qdq-entropy-pt-mixed").describe().endswith("per-tensor weights, entropy calibration)")
    with pytest.raises(TrtpipeError, match=r"dynamic quantization has no calibration; fix: drop -entropy"):
        q.recipe("int8-ort-dyn-entropy")
    with pytest.raises(TrtpipeError, match=r"precision 'int7' is unknown; fix:"):
        q.recipe("int7")


def test_the_search_bound_keeps_the_first_candidates_and_zero_builds_none():
    every = q.candidates({"search": 100})
    assert len(every) == 8 and every[0] == "int8-ort-qdq-minmax-pc-mixed" and every[-1] == "int8-ort-dyn-pt-mixed"
    assert q.candidates({"search": 2}) == every[:2]
    assert q.candidates({"search": 0}) == []
    assert q.candidates({"search": 5, "quantizers": ["dyn"]}) == ["int8-ort-dyn-pc-mixed", "int8-ort-dyn-pt-mixed"]


def test_registry_says_which_quantizer_each_backend_runs():
    cpu, trt = registry.get("onnxruntime"), registry.get("tensorrt")
    assert cpu.builds("int8-ort-qdq") and cpu.builds("int8-ort-dyn-pt-mixed") and cpu.builds("int8")
    assert trt.builds("int8") and not trt.builds("int8-ort-qdq")  # TensorRT takes symmetric Q/DQ only
    cuda = registry.get("onnxruntime_cuda")
    assert not cuda.builds("int8-ort-qdq") and not cuda.builds("int8") and cuda.builds("fp16")  # int8 is fake-quant there
    assert not registry.get("onnxruntime_tensorrt").builds("int8-ort-dyn")
    assert not cpu.builds("int9-ort-qdq")


def test_one_sweep_holds_both_quantizers_and_the_candidates_only_on_the_dynamic_variant():
    sweep = validate({
        "batch_sizes": [1], "sweep": {"backends": ["onnxruntime", "tensorrt"], "precisions": ["fp32", "int8", "int8-ort-qdq"],
                                      "profiles": ["latency"]},
        "quantize": {"search": 2},
        "models": {"m": {"factory": "trtpipe.zoo:tiny_text", "inputs": [{"name": "x", "shape": [4]}]}},
    })
    targets = {(t.backend, str(t.variant), t.precision) for t in sweep.engine_targets("m")}
    assert ("onnxruntime", "dynamic", "int8") in targets and ("tensorrt", "dynamic", "int8") in targets
    assert ("onnxruntime", "static-b1", "int8-ort-qdq") in targets and ("tensorrt", "dynamic", "int8-ort-qdq") not in targets
    assert ("onnxruntime", "dynamic", "int8-ort-qdq-minmax-pc-mixed") in targets
    assert not any(p.endswith("-mixed") for _, v, p in targets if v != "dynamic")
    assert ("tensorrt", "int8-ort-qdq") in sweep.skipped_targets("m") and sweep.needs_sensitivity("m")
    assert sweep.tolerance("int8-ort-qdq-minmax-pc-mixed") == sweep.tolerance("int8")
    zero = validate({**sweep.raw, "quantize": {"search": 0}})
    assert not any(t.precision.endswith("-mixed") for t in zero.engine_targets("m"))


def test_sensitivity_ranks_the_node_that_breaks_the_metric_first(tmp_path):
    model = outlier_model(tmp_path / "outlier.onnx")
    result = sensitivity_ranking(model, SPEC, DYNAMIC, {}, {"accept": {"top1_agreement": 0.99}}, samples(tmp_path / "s.npz"))
    nodes = result["nodes"]
    assert [n["node"] for n in nodes] == ["fragile", "benign"] and [n["rank"] for n in nodes] == [1, 2]
    assert nodes[0]["op"] == "MatMul" and nodes[0]["top1_agreement"] < 0.5 and nodes[1]["top1_agreement"] >= 0.95
    assert result["data"]["samples"] == 64 and result["data"]["evaluation_samples"] == 64  # never the same samples


def _mixed(tmp_path, accept, name="int8-ort-qdq-minmax-pt-mixed"):
    model = outlier_model(tmp_path / "outlier.onnx")
    data = samples(tmp_path / "s.npz")
    ranking = sensitivity_ranking(model, SPEC, DYNAMIC, {}, {"accept": accept}, data)
    (tmp_path / "sens.json").write_text(json.dumps(ranking))
    return convert(model, tmp_path / f"{name}.onnx", SPEC, DYNAMIC, name, {}, data, {"accept": accept}, tmp_path / "sens.json")


def test_the_search_keeps_the_sensitive_node_in_float_only_when_the_threshold_needs_it(tmp_path):
    strict = _mixed(tmp_path, {"top1_agreement": 0.95})
    assert strict["search"]["met"] and strict["kept_float"] == [{"node": "fragile", "op": "MatMul"}]
    assert strict["metric"]["scores"]["top1_agreement"] >= 0.95 and strict["metric"]["samples"] == 64
    kept = onnx.load(str(tmp_path / "int8-ort-qdq-minmax-pt-mixed.onnx"))
    fragile = next(n for n in kept.graph.node if n.name == "fragile")
    assert fragile.op_type == "MatMul" and not any(i.endswith("_DequantizeLinear_Output") for i in fragile.input)
    loose = _mixed(tmp_path, {"top1_agreement": 0.01})
    assert loose["search"]["met"] and loose["kept_float"] == [] and loose["search"]["k"] == 0


def test_a_threshold_nothing_meets_is_said_with_the_nearest_miss(tmp_path):
    result = _mixed(tmp_path, {"top1_agreement": 1.0, "cosine": 1.0}, name="int8-ort-qdq-minmax-pc-mixed")
    search = result["search"]
    assert not search["met"] and search["shortfall"] > 0 and search["scores"]["top1_agreement"] < 1.0
    assert "met" not in result["metric"]  # no stored verdict: the report judges the scores against today's thresholds
    assert set(search["tried"]) >= {"0", "1"}


def test_the_search_judges_by_the_models_task_metric_and_its_labels(tmp_path):
    """With the model's metric (issue "Accuracy on the user's own data"), the ranking and the search score the task's
    own measures (classification: top-5 overlap, and accuracy against the labels the calibration file carries), not
    agreement; thresholds keep their direction ({max: ...})."""
    from trtpipe.samples import CALIBRATION_LABELS

    model = outlier_model(tmp_path / "outlier.onnx")
    x = np.random.default_rng(1).standard_normal((128, 16)).astype(np.float32)
    labels = q.run_all(model, {"x": x}, 8)["logits"].argmax(1)  # the fp32 model is right on every sample
    np.savez(tmp_path / "labelled.npz", x=x, **{CALIBRATION_LABELS: labels})
    judge = {"metric": {"task": "classification"}, "accept": {"top1_agreement": 0.9, "accuracy_delta": -0.05}}
    ranking = sensitivity_ranking(model, SPEC, DYNAMIC, {}, judge, str(tmp_path / "labelled.npz"))
    fragile, benign = ranking["nodes"]
    assert fragile["node"] == "fragile" and {"top5_overlap", "accuracy", "accuracy_delta"} <= set(fragile)
    assert fragile["accuracy_delta"] < -0.05 and fragile["loss"] > 1 > benign["loss"]  # past the threshold's margin
    assert ranking["judged_by"] == "the model's classification metric" and ranking["data"]["labelled"]
    (tmp_path / "sens.json").write_text(json.dumps(ranking))
    name = "int8-ort-qdq-minmax-pt-mixed"
    stats = convert(model, tmp_path / "m.onnx", SPEC, DYNAMIC, name, {}, str(tmp_path / "labelled.npz"), judge,
                    tmp_path / "sens.json")
    assert stats["search"]["met"] and stats["kept_float"] == [{"node": "fragile", "op": "MatMul"}]
    assert stats["search"]["scores"]["accuracy_delta"] >= -0.05 and not stats["search"]["unjudged"]
    # an upper bound: at most 1% of the samples may change their top-1 class (a user hook's kind of threshold)
    capped = {**judge, "accept": {"top1_agreement": 0.5, "accuracy_delta": {"max": 0.0}}}
    assert q.Judge.from_options(capped).shortfall({"top1_agreement": 0.9, "accuracy_delta": 0.02}) == pytest.approx(0.02)
    # without labels, accuracy cannot be judged by the search: said, and the rest still decides
    unlabelled = convert(model, tmp_path / "u.onnx", SPEC, DYNAMIC, name, {}, samples(tmp_path / "s.npz"), judge,
                         tmp_path / "sens.json")
    assert unlabelled["search"]["unjudged"] == ["accuracy_delta"]
    assert any("could not judge accuracy_delta" in w for w in unlabelled["warnings"])


def test_margin_used_compares_scores_of_different_units():
    from trtpipe.metrics import margin_used

    perfect = {"cosine": 1.0, "rank_correlation": 1.0, "psnr": float("inf")}
    accept = {"cosine": 0.99, "rank_correlation": 0.9}
    # cosine 0.995 uses half of its 0.01 margin; rank correlation 0.97 uses 0.3 of its 0.1
    assert margin_used({"cosine": 0.995, "rank_correlation": 0.97}, perfect, accept) == pytest.approx(0.5)
    assert margin_used({"cosine": 0.98, "rank_correlation": 1.0}, perfect, accept) == pytest.approx(2.0)
    assert margin_used({"psnr": 50.0}, perfect, {"psnr": 40.0}) < 0 < margin_used({"psnr": 30.0}, perfect, {"psnr": 40.0})
    assert margin_used({"cosine": float("nan")}, perfect, accept) == float("inf")


def test_a_quantizer_that_quantizes_nothing_fails_that_precision_with_one_sentence(tmp_path):
    # no Conv, MatMul or Gemm: an "int8" engine of this model would be fp32 under an int8 name
    graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"], name="tanh")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "tanh.onnx"))
    spec = ModelSpec.from_dict({"name": "tanh", "inputs": [{"name": "x", "shape": [4]}], "seed": 0})
    for precision in ("int8-ort-dyn", "int8-ort-qdq"):
        out = tmp_path / f"tanh.{precision}.onnx"
        with pytest.raises(TrtpipeError, match=rf"no node left to quantize with {precision} \(0 quantizable, 0 kept in float\)"):
            convert(tmp_path / "tanh.onnx", out, spec, DYNAMIC, precision, {}, None, {})
        assert not out.exists() and not list(tmp_path.glob(f".tanh.{precision}*"))  # nothing half-written


def _bench_and_stats():
    """Three engines of one model at batch 1: fp32, a fast int8 with top-1 0.97, a slower one with top-1 0.995."""
    import pandas as pd

    bench = pd.DataFrame([
        {"model": "m", "backend": "onnxruntime", "variant": "dynamic", "precision": p, "profile": "latency", "batch": b,
         "latency_ms_median": ms}
        for p, ms in (("fp32", 6.0), ("int8-ort-qdq", 2.5), ("int8-ort-qdq-minmax-pc-mixed", 3.0)) for b in (1, 4)])
    stats = []
    for p, top1, kept in (("int8-ort-qdq", 0.97, []), ("int8-ort-qdq-minmax-pc-mixed", 0.995, [{"node": "fc2", "op": "Gemm"}])):
        stats.append({"model": "m", "variant": "dynamic", "precision": p, "method": q.recipe(p).describe(), "kept_float": kept,
                      "metric": {"scores": {"top1_agreement": top1}, "samples": 40, "data": "data"}})
    return bench, stats


def test_the_pick_changes_when_the_threshold_changes():
    from trtpipe.report import pick

    bench, stats = _bench_and_stats()
    loose = pick.pick(pick.candidate_rows(bench, stats, "m", {"top1_agreement": 0.95}))["pick"]
    assert loose["precision"] == "int8-ort-qdq" and loose["speedup"] == pytest.approx(6.0 / 2.5)
    result = pick.pick(pick.candidate_rows(bench, stats, "m", {"top1_agreement": 0.99}))
    assert result["pick"]["precision"] == "int8-ort-qdq-minmax-pc-mixed"
    text = pick.sentence(result, {"top1_agreement": 0.99})
    assert ("int8-ort-qdq-minmax-pc-mixed" in text and "1 node(s) kept in float: fc2 (Gemm)" in text and "2.00x" in text
            and "top1_agreement 0.9950 against the fp32 model on 40 calibration_data samples" in text)
    rows = pick.candidate_rows(bench, stats, "m", {"top1_agreement": 0.999})
    assert pick.pick(rows)["pick"]["precision"] == "fp32"  # nothing reduced meets it: fp32 is the fastest that does
    judged_only_int8 = rows[rows["precision"] != "fp32"]
    miss = pick.pick(judged_only_int8)
    assert miss["pick"] is None and miss["nearest"]["precision"] == "int8-ort-qdq-minmax-pc-mixed"
    assert "nearest miss is onnxruntime dynamic int8-ort-qdq-minmax-pc-mixed latency" in pick.sentence(miss, {"top1_agreement": 0.999})
    assert "short by 0.0040" in pick.sentence(miss, {"top1_agreement": 0.999})


def test_the_pick_judges_each_engine_against_pytorch_on_the_held_out_samples():
    """Where the model has samples and a metric, each engine's own metric rows decide (the evaluation job's, against
    PyTorch on samples neither calibration nor the search saw), not the search's score in the precision stats."""
    import pandas as pd

    from trtpipe.report import pick

    bench, stats = _bench_and_stats()  # the stats say 0.97 and 0.995 on the search samples
    rows = []
    for precision, top1, delta in (("fp32", 1.0, 0.0), ("int8-ort-qdq", 0.996, -0.002),
                                   ("int8-ort-qdq-minmax-pc-mixed", 0.999, 0.0)):
        for metric, value in (("top1_agreement", top1), ("accuracy_delta", delta)):
            rows.append({"model": "m", "stage": "engine", "variant": "dynamic", "precision": precision,
                         "backend": "onnxruntime", "profile": "latency", "case": "data", "metric": metric,
                         "value": value, "samples": 733, "data": "samples.npz: 733 held-out of 797, 64 for calibration"})
    accuracy = pd.DataFrame(rows)
    accept = {"top1_agreement": 0.99, "accuracy_delta": -0.001}
    result = pick.pick(pick.candidate_rows(bench, stats, "m", accept, accuracy))
    assert result["pick"]["precision"] == "int8-ort-qdq-minmax-pc-mixed"  # int8-ort-qdq loses 0.2% accuracy
    text = pick.sentence(result, accept)
    assert "top1_agreement 0.9990 against PyTorch on 733 held-out samples (samples.npz" in text
    assert "accuracy_delta >= -0.001" in text
    looser = {"top1_agreement": 0.99, "accuracy_delta": -0.01}
    assert pick.pick(pick.candidate_rows(bench, stats, "m", looser, accuracy))["pick"]["precision"] == "int8-ort-qdq"


@pytest.mark.workflow
def test_a_quantizer_failing_on_a_model_fails_that_engine_and_the_others_go_on(tmp_path):
    """A real sweep under --keep-going: the elementwise model has nothing onnxruntime.quantization can quantize, so
    its int8-ort-* precisions fail with one sentence each; the text model's static QDQ, dynamic and search candidate
    (its k chosen on the evaluation samples from the sensitivity ranking) are built, benchmarked and judged, and the
    report says both."""
    import pandas as pd

    from helpers import TEXT_MODEL, copy_workflow, dry_run_jobs, snakemake, tiny_config

    config = tiny_config(text=TEXT_MODEL, flat={"factory": "tests/data/user_models.py:elementwise",
                                                 "inputs": [{"name": "x", "shape": [8]}]})
    config.update(batch_sizes=[1], static_batch_sizes=[], quantize={"search": 1},
                  sweep={"profiles": ["latency"], "precisions": ["fp32", "int8-ort-dyn", "int8-ort-qdq"]})
    workdir = copy_workflow(tmp_path, config)
    proc = snakemake(workdir, "--cores", "2", "--keep-going", check=False)
    assert proc.returncode != 0
    results = workdir / "results"  # the report of a run that did not finish is in summary/partial/
    bench = pd.read_csv(results / "summary/partial/benchmarks.csv")
    precisions = {m: set(g["precision"]) for m, g in bench.groupby("model")}
    assert precisions == {"text": {"fp32", "int8-ort-dyn", "int8-ort-qdq", "int8-ort-qdq-minmax-pc-mixed"}, "flat": {"fp32"}}
    assert not list((results / "flat/onnx").glob("*.int8-ort-*.onnx"))
    ranking = pd.read_csv(results / "text/quantize/sensitivity.csv")
    assert list(ranking["rank"]) == list(range(1, len(ranking) + 1)) and set(ranking["op"]) == {"Gemm"}
    mixed = json.loads((results / "text/onnx/dynamic.sim.int8-ort-qdq-minmax-pc-mixed.json").read_text())
    assert mixed["search"]["kept_float"] == list(ranking["node"][: mixed["search"]["k"]])
    report = (results / "summary/partial/report.md").read_text()
    failures = report.split("## Failures")[1].split("## Model")[0]
    for precision in ("int8-ort-dyn", "int8-ort-qdq", "int8-ort-qdq-minmax-pc-mixed"):
        assert f"no node left to quantize with {precision} (0 quantizable, 0 kept in float)" in failures
    part = report.split("### Reduced precision: accuracy and the pick")[1]
    assert "onnxruntime dynamic int8-ort-qdq-minmax-pc-mixed latency" in part and "| rank | node | op | loss |" in part
    assert "seeded random inputs, not on your data" in part
    assert (results / "summary/partial/plots/text.accuracy.png").exists()
    # the candidates are ordinary cached jobs: a second run retries only the failed one and what needs it
    jobs = dry_run_jobs(workdir, "--keep-going")
    assert jobs.get("precision") == 3 and "sensitivity" not in jobs and jobs.get("engine_onnxruntime") == 3


def test_dynamic_quantization_reaches_gemm_nodes_rewritten_as_matmul(tmp_path):
    """Dynamic quantization has no Gemm kernel; exporters write Linear layers as Gemm: they become MatMul + Add of the
    same name first, so int8-ort-dyn quantizes them and its outputs stay those of the fp32 model within int8 error."""
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1, alpha=0.5, beta=2.0)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "gemm.onnx"))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    rewritten = onnx.load(str(tmp_path / "gemm.onnx"))
    assert q.gemm_to_matmul(rewritten) == 1 and [n.op_type for n in rewritten.graph.node] == ["MatMul", "Add"]
    onnx.save(rewritten, str(tmp_path / "mm.onnx"))
    same = q.run_all(tmp_path / "mm.onnx", {"x": x}, 5)["y"]
    np.testing.assert_allclose(same, 0.5 * x @ w.T + 2.0 * b, rtol=1e-5, atol=1e-5)
    spec = ModelSpec.from_dict({"name": "gemm", "inputs": [{"name": "x", "shape": [4]}], "seed": 0})
    stats = convert(tmp_path / "gemm.onnx", tmp_path / "gemm.dyn.onnx", spec, DYNAMIC, "int8-ort-dyn", {}, None, {})
    ops = {n.op_type for n in onnx.load(str(tmp_path / "gemm.dyn.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops and stats["quantize_nodes"] > 0 and "top1_agreement" in stats["metric"]["scores"]
    quantized = q.run_all(tmp_path / "gemm.dyn.onnx", {"x": x}, 5)
    assert 0.99 < q.output_cosine(quantized, {"y": same}) < 1.0  # int8, close to fp32


def test_the_expected_jobs_put_the_sensitivity_ranking_between_simplify_and_the_candidates():
    """The failure read-back walks the jobs in order, what a job needs first: a ranking listed before the simplify
    it reads would count as not run, and every candidate after it with it."""
    from trtpipe.layout import expected_jobs

    sweep = validate({"batch_sizes": [1], "sweep": {"precisions": ["fp32", "int8-ort-qdq"], "profiles": ["latency"]},
                      "quantize": {"search": 1},
                      "models": {"m": {"factory": "trtpipe.zoo:tiny_text", "inputs": [{"name": "x", "shape": [4]}]}}})
    keys = [j.key for j in expected_jobs(sweep)]
    sens = keys.index("m|sensitivity|")
    assert keys.index("m|simplify|dynamic") < sens < keys.index("m|precision|dynamic int8-ort-qdq-minmax-pc-mixed")
    mixed = next(j for j in expected_jobs(sweep) if j.key == "m|precision|dynamic int8-ort-qdq-minmax-pc-mixed")
    assert "m|sensitivity|" in mixed.needs and all(k in keys[: keys.index(mixed.key)] for k in mixed.needs)
    plain = next(j for j in expected_jobs(sweep) if j.key == "m|precision|dynamic int8-ort-qdq")
    assert "m|sensitivity|" not in plain.needs


def test_modelopt_int8_leaves_the_simplified_onnx_untouched(tmp_path):
    """ModelOpt writes the file it quantizes back (a new mtime): it gets a copy, so the simplified ONNX, an input of
    every later job, does not look updated to Snakemake after an int8 job."""
    import os

    rng = np.random.default_rng(0)
    w1, w2 = (rng.standard_normal(s).astype(np.float32) / 3 for s in ((8, 3, 3, 3), (8, 8, 3, 3)))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["a"], ["b"], name="relu"),
         helper.make_node("Conv", ["b", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1])], "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 8, 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "convs.onnx"
    onnx.save(model, str(path))
    os.utime(path, (1_600_000_000, 1_600_000_000))
    spec = ModelSpec.from_dict({"name": "convs", "inputs": [{"name": "x", "shape": [3, 8, 8]}], "seed": 0})
    stats = convert(path, tmp_path / "convs.int8.onnx", spec, DYNAMIC, "int8", {"calibration_samples": 8}, None,
                    {"evaluation_samples": 8})
    assert stats["quantizer"] == "ModelOpt" and stats["quantize_nodes"] > 0
    assert os.path.getmtime(path) == 1_600_000_000


def test_onnxruntime_quantization_still_works_after_modelopt_ran_in_the_same_process(tmp_path):
    """ModelOpt patches onnxruntime.quantization process-wide; trtpipe puts ONNX Runtime's own back after each ModelOpt
    conversion, so an int8-ort-* conversion after a ModelOpt one in one process still quantizes (it failed before)."""
    (tmp_path / "modelopt").mkdir()
    test_modelopt_int8_leaves_the_simplified_onnx_untouched(tmp_path / "modelopt")
    test_sensitivity_ranks_the_node_that_breaks_the_metric_first(tmp_path)


def test_the_cpu_providers_optimized_graph_runs_every_linear_layer_of_ort_int8_as_a_fused_integer_kernel(tmp_path):
    """What the onnxruntime engine runs (the graph ONNX Runtime saves at level `all`, as its backend builds it): each
    Gemm of int8-ort-qdq becomes one QGemm, each of int8-ort-dyn one DynamicQuantizeMatMul, and no Gemm, MatMul or
    DequantizeLinear of a weight is left in float (docs/quantization.md measures what that buys on MiniLM)."""
    import collections

    from trtpipe.ort_session import session

    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i, act in enumerate(("Relu", "Tanh", "Relu")):
        inits += [numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32) / 4, f"w{i}"),
                  numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), f"b{i}")]
        nodes += [helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], name=f"fc{i}", transB=1),
                  helper.make_node(act, [f"g{i}"], [f"a{i}"], name=f"act{i}")]
        prev = f"a{i}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["batch", 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "mlp.onnx"))
    calibration = {"x": rng.standard_normal((32, 16)).astype(np.float32)}
    fused = {"int8-ort-qdq": "QGemm", "int8-ort-dyn": "DynamicQuantizeMatMul"}
    with q.ort_quantizer(tmp_path / "mlp.onnx", calibration, 8) as quantizer:
        for precision, kernel in fused.items():
            quantizer.quantize(q.recipe(precision), tmp_path / f"{precision}.onnx")
            session(tmp_path / f"{precision}.onnx", level="all", threads=1, save_to=tmp_path / f"{precision}.opt.onnx")
            ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / f"{precision}.opt.onnx")).graph.node)
            assert ops[kernel] == 3, (precision, ops)
            assert not ops["Gemm"] + ops["MatMul"] + ops["FusedGemm"] + ops["FusedMatMul"], (precision, ops)
            assert ops["DequantizeLinear"] <= ops["QuantizeLinear"], (precision, ops)  # no weight dequantized to float
