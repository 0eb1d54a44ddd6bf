"""A real trained model on real data end to end: the CNN trained on scikit-learn's digits (trtpipe.digits), its 797
held-out test images with labels as samples, fp32/fp16/int8 ONNX Runtime engines judged by the classification metric.
Also the staleness of samples, metric file and thresholds, and a case where random-input parity and the data disagree."""

import shutil

import numpy as np
import pandas as pd
import pytest

from helpers import FAST_BENCHMARK, REPO, copy_workflow, dry_run_jobs, snakemake, write_config
from trtpipe.evaluate import artifact_verdicts

pytestmark = pytest.mark.workflow


def test_digits_cnn_trains_in_seconds_and_is_what_data_digits_holds(tmp_path):
    from trtpipe import digits

    scores = digits.write(tmp_path)
    assert scores["test_accuracy"] > 0.95  # a real classifier, not a seeded one (10% by chance)
    with np.load(tmp_path / "samples.npz") as new, np.load(REPO / "data/digits/samples.npz") as shipped:
        assert np.array_equal(new["image"], shipped["image"]) and np.array_equal(new["labels"], shipped["labels"])


def reruns(workdir) -> set[str]:
    return set(dry_run_jobs(workdir)) - {"all"}


def digits_config(**model_extra) -> dict:
    model = {
        "factory": "trtpipe.zoo:digits_cnn",
        "checkpoint": "data/digits/checkpoint.pt",
        "static_batch_sizes": [],
        "samples": {"path": "data/digits/samples.npz", "labels": "labels", "calibration": 64},
        "metric": "classification",
        "accept": {"top1_agreement": 0.99, "accuracy_delta": -0.01},
        "inputs": [{"name": "image", "shape": [1, 8, 8]}],
        **model_extra,
    }
    # one engine per precision (the dynamic variant, the latency profile): the sweep stays small on a busy machine
    # int8's random-input parity asks for cosine 0.999 (default 0.99): on seeded random images (standard normal,
    # nothing like digits) the int8 engine misses it, while on the digits it keeps the top-1 class
    return {"batch_sizes": [1], "sweep": {"profiles": ["latency"], "precisions": ["fp32", "fp16", "int8"]},
            "tolerances": {"int8": {"min_cosine": 0.999}}, "benchmark": FAST_BENCHMARK, "models": {"digits": model}}


def test_digits_end_to_end_the_report_follows_the_data_and_staleness(tmp_path):
    workdir = copy_workflow(tmp_path / "wf", digits_config())
    shutil.copytree(REPO / "data" / "digits", workdir / "data" / "digits")
    snakemake(workdir, "--cores", "2", timeout=2400)
    summary = workdir / "results" / "summary"
    acc = pd.read_csv(summary / "accuracy.csv")

    # The task score and agreement of every engine, from the metric on the 733 held-out images (797 - 64 calibration).
    metric = acc[acc["metric"].notna() & (acc["stage"] == "engine")]
    assert set(metric["precision"]) == {"fp32", "fp16", "int8"}
    assert (metric["samples"] == 733).all() and metric["data"].str.contains("samples.npz: 733 held-out of 797").all()
    accuracy = metric[metric["metric"] == "accuracy"]
    assert (accuracy["value"] > 0.95).all()
    pytorch = acc[(acc["stage"] == "pytorch") & (acc["metric"] == "accuracy")]["value"].item()
    assert pytorch > 0.95

    # Random-input parity and the data disagree on int8 (see digits_config). The verdict follows the data.
    int8 = acc[(acc["stage"] == "engine") & (acc["precision"] == "int8")]
    random_rows = int8[int8["case"] != "data"]
    assert not random_rows["passed"].astype(bool).all()
    verdicts = artifact_verdicts(acc)
    int8_engines = verdicts[(verdicts["stage"] == "engine") & (verdicts["precision"] == "int8")]
    assert int8_engines["passed"].all() and (int8_engines["judged_on"] == "metric").all()
    report = (summary / "report.md").read_text()
    assert "### Accuracy on your data" in report and "samples.npz: 733 held-out of 797, 64 for calibration" in report
    assert "judged on seeded random inputs only" not in report  # every model here has samples
    data_section = report.split("### Accuracy on your data")[1].split("###")[0]
    assert "| engine | onnxruntime | dynamic | int8 | latency |" in data_section and "FAIL" not in data_section

    # Staleness: thresholds rerun only the evaluation jobs and the summary.
    write_config(workdir, digits_config(accept={"top1_agreement": 0.999}))
    assert reruns(workdir) == {"evaluate_onnx", "evaluate_onnxruntime", "summary"}
    # A metric file: switching to it, and editing it later, reruns the evaluation only.
    (workdir / "my_metric.py").write_text(
        "import numpy as np\n"
        "def agreement(actual, expected, inputs, labels):\n"
        "    return {'agree': float(np.mean(actual['output'].argmax(1) == expected['output'].argmax(1)))}\n")
    write_config(workdir, digits_config(metric="my_metric.py:agreement", accept={"agree": 0.99}))
    assert reruns(workdir) == {"evaluate_onnx", "evaluate_onnxruntime", "summary"}
    snakemake(workdir, "--cores", "2")
    acc = pd.read_csv(summary / "accuracy.csv")
    assert (acc[acc["metric"] == "agree"]["value"] > 0.99).any()
    (workdir / "my_metric.py").write_text((workdir / "my_metric.py").read_text() + "\n# edited\n")
    assert reruns(workdir) == {"evaluate_onnx", "evaluate_onnxruntime", "summary"}
    # New samples rerun the data reference and the evaluation, and int8 (its calibration part changed); never an
    # export, a simplification or an fp32/fp16 engine.
    with np.load(workdir / "data/digits/samples.npz") as data:
        np.savez(workdir / "data/digits/samples.npz", image=data["image"][:400], labels=data["labels"][:400])
    jobs = dry_run_jobs(workdir)
    assert {"data_reference", "evaluate_onnx", "evaluate_onnxruntime", "summary"} <= set(jobs)
    assert not {"export", "check_export", "simplify", "reference", "checkpoint"} & set(jobs)
    assert jobs.get("engine_onnxruntime") == 1 and jobs.get("precision") == 1  # int8's


def test_digits_search_and_pick_judge_by_the_task_metric_on_three_splits(tmp_path):
    """onnxruntime.quantization's int8 and one search candidate on the digits CNN: the ranking and the search judge by
    the classification metric (with the labels the calibration part carries) on the half of the 64 calibration
    images that did not calibrate; the pick judges every engine against PyTorch on the 733 held-out images. A
    threshold reruns the ranking and the candidate (their nodes kept in float depend on it), never the plain int8."""
    import json

    config = digits_config()
    config["sweep"]["precisions"] = ["fp32", "int8-ort-qdq"]
    config["quantize"] = {"search": 1}
    workdir = copy_workflow(tmp_path / "wf", config)
    shutil.copytree(REPO / "data" / "digits", workdir / "data" / "digits")
    snakemake(workdir, "--cores", "2", timeout=2400)
    results = workdir / "results"

    ranking = json.loads((results / "digits/quantize/sensitivity.json").read_text())
    assert ranking["judged_by"] == "the model's classification metric" and ranking["data"]["labelled"]
    assert ranking["data"]["samples"] == 32 and ranking["data"]["evaluation_samples"] == 32  # 64 calibration images
    assert all({"top1_agreement", "accuracy_delta", "loss"} <= set(n) for n in ranking["nodes"])
    mixed = json.loads((results / "digits/onnx/dynamic.sim.int8-ort-qdq-minmax-pc-mixed.json").read_text())
    assert mixed["search"]["judged_by"] == ranking["judged_by"] and not mixed["search"]["unjudged"]
    assert mixed["search"]["kept_float"] == [n["node"] for n in ranking["nodes"][: mixed["search"]["k"]]]

    report = (results / "summary/report.md").read_text()
    part = report.split("### Reduced precision: accuracy and the pick")[1].split("\n### ")[0]
    pick_line = next(line for line in part.splitlines() if line.startswith(("Pick at batch", "No engine meets")))
    # the sentence follows the table: a reduced engine faster than fp32 that meets the thresholds is named with its
    # held-out score, else fp32 is picked and says why
    rows = [line.split(" | ") for line in part.splitlines() if line.startswith("| onnxruntime dynamic int8-ort-qdq")]
    faster = any(float(r[3].rstrip("x")) > 1.0 and r[-1].startswith("meets") for r in rows)
    if faster:
        assert "against PyTorch on 733 held-out samples (samples.npz: 733 held-out of 797, 64 for calibration)" in pick_line
    else:
        assert "fp32 latency" in pick_line and "no reduced-precision engine is both faster" in pick_line
    assert "| rank | node | op | loss | accuracy_delta | top1_agreement |" in part
    int8 = next(line for line in part.splitlines() if line.startswith("| onnxruntime dynamic int8-ort-qdq latency |"))
    assert "accuracy_delta" in int8 and "| 733 |" in int8  # its own scores on the held-out images, not the search's

    write_config(workdir, {**config, "models": {"digits": {**config["models"]["digits"],
                                                           "accept": {"top1_agreement": 0.999}}}})
    jobs = dry_run_jobs(workdir)
    assert jobs.get("sensitivity") == 1 and jobs.get("precision") == 1  # the candidate, not the plain int8-ort-qdq
    assert not {"data_reference", "export", "simplify"} & set(jobs)
