"""Accuracy on the user's own samples: the built-in metrics on hand-computed cases, the user hook, thresholds, the three
kinds of samples and their bad inputs, the calibration/evaluation split, and the verdict rule."""

import json

import numpy as np
import pandas as pd
import pytest

from trtpipe import evaluate, metrics, samples
from trtpipe.config import validate
from trtpipe.errors import ConfigError, TrtpipeError
from trtpipe.metrics import Metric
from trtpipe.spec import ModelSpec

IMAGE_SPEC = ModelSpec.from_dict({"name": "m", "inputs": [{"name": "image", "shape": [3, 4, 4]}]})
TEXT_SPEC = ModelSpec.from_dict({"name": "t", "inputs": [
    {"name": "input_ids", "shape": [6], "dtype": "int64", "range": [0, 10], "dynamic": {1: {"min": 2, "max": 8, "name": "seq"}}},
    {"name": "attention_mask", "shape": [6], "dtype": "int64", "range": [0, 2], "dynamic": {1: {"min": 2, "max": 8, "name": "seq"}}},
]})


# --- built-in metrics, by hand ---------------------------------------------------------------------------------
def test_classification_top1_top5_and_labels():
    expected = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [0, 0, 9, 0, 0, 0]], float)
    actual = np.array([[0, 1, 2, 3, 4, 5],      # same order: top-1 agrees, top-5 overlap 5/5
                       [4, 5, 3, 2, 1, 0],      # top-1 0 vs 1: disagrees; top-5 {1,0,2,3,4} both: 5/5
                       [9, 0, 0, 0, 0, 1]], float)  # top-1 0 vs 2; top-5 of actual {0,5,1,2,3} (stable ties) vs {2,0,1,3,4}: 4/5
    s = metrics.classification(actual, expected, labels=np.array([5, 1, 2]))
    assert s["top1_agreement"] == pytest.approx(1 / 3)
    assert s["top5_overlap"] == pytest.approx((1 + 1 + 0.8) / 3)
    assert s["accuracy"] == pytest.approx(2 / 3)  # actual predicts 5, 1, 0
    assert s["accuracy_delta"] == pytest.approx(2 / 3 - 2 / 3)  # PyTorch predicts 5, 0, 2: also 2 of 3


def test_embeddings_pool_only_real_tokens_and_rank_pairwise_similarities():
    hidden = np.array([[[1.0, 0.0], [0.0, 1.0], [100.0, 100.0]]])  # the third token is padding
    pooled = metrics.mean_pool(hidden, np.array([[1, 1, 0]]))
    assert pooled.tolist() == [[0.5, 0.5]]
    e = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])  # similarities: (0,1) 0.8, (0,2) 0, (1,2) 0.6
    same = metrics.embeddings(e, e)
    assert same["cosine"] == pytest.approx(1.0) and same["rank_correlation"] == pytest.approx(1.0)
    a = np.array([[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]])  # mirrored: pairwise similarities the same, each vector turned
    s = metrics.embeddings(a, e)
    assert s["rank_correlation"] == pytest.approx(1.0)
    assert s["cosine"] == pytest.approx((0.0 + 0.96 + 0.0) / 3)
    assert s["min_cosine"] == pytest.approx(0.0)
    b = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # similarities: (0,1) 0, (0,2) 0.6, (1,2) 0.8: ranks 3,1,2 vs 1,2,3
    assert metrics.embeddings(b, e)["rank_correlation"] == pytest.approx(-0.5)


def test_dense_agreement_and_miou():
    e = np.zeros((1, 2, 2, 2)); e[0, 1, 0, :] = 1  # classes [[1, 1], [0, 0]]
    a = np.zeros((1, 2, 2, 2)); a[0, 1, 0, 0] = 1; a[0, 1, 1, 1] = 1  # classes [[1, 0], [0, 1]]
    s = metrics.dense(a, e, labels=np.array([[[1, 1], [0, 1]]]))
    assert s["pixel_agreement"] == pytest.approx(0.5)
    assert s["miou"] == pytest.approx((1 / 3 + 1 / 3) / 2)  # class 0: 1 of 3 pixels, class 1: 1 of 3
    assert s["pixel_accuracy"] == pytest.approx(0.75)


def test_psnr_against_the_reference_range():
    e = np.array([0.0, 1.0, 0.0, 1.0])
    assert metrics.psnr(e + 0.1, e) == pytest.approx(20.0)  # peak 1, mse 0.01
    assert metrics.psnr(e, e) == float("inf")


def test_verdict_thresholds_min_max_and_unknown_names():
    rows = {r["metric"]: r for r in metrics.verdict({"a": 0.95, "b": 0.2, "c": 1.0}, {"a": 0.99, "b": {"max": 0.5}})}
    assert not rows["a"]["passed"] and rows["b"]["passed"] and rows["c"]["passed"]
    assert rows["b"]["direction"] == "max" and np.isnan(rows["c"]["threshold"])
    assert not metrics.passed({"a": float("nan")}, {"a": 0.0})  # NaN never passes
    with pytest.raises(TrtpipeError, match="accept names 'top1'.*returns a, b, c"):
        metrics.verdict({"a": 1.0, "b": 1.0, "c": 1.0}, {"top1": 0.9})


def test_user_hook_scores_and_its_failures(tmp_path):
    hook = tmp_path / "my_metric.py"
    hook.write_text(
        "import numpy as np\n"
        "def max_err(actual, expected, inputs, labels):\n"
        "    return {'max_err': float(np.abs(actual['y'] - expected['y']).max()), 'n': len(labels)}\n"
        "def broken(actual, expected, inputs, labels):\n"
        "    raise KeyError('logits')\n"
        "def words(actual, expected, inputs, labels):\n"
        "    return {'score': 'good'}\n"
        "def nothing(actual, expected, inputs, labels):\n"
        "    return None\n")
    y = {"y": np.array([1.0, 2.0])}
    got = metrics.score(Metric(f"{hook}:max_err"), {"y": np.array([1.5, 2.0])}, y, labels=np.array([0, 1]))
    assert got == {"max_err": 0.5, "n": 2.0}
    assert metrics.passed(got, {"max_err": {"max": 0.6}}) and not metrics.passed(got, {"max_err": {"max": 0.4}})
    with pytest.raises(TrtpipeError, match=r"broken raised KeyError: 'logits'; fix"):
        metrics.score(Metric(f"{hook}:broken"), y, y)
    with pytest.raises(TrtpipeError, match=r"returned 'score' = 'good', which is not a number"):
        metrics.score(Metric(f"{hook}:words"), y, y)
    with pytest.raises(TrtpipeError, match=r"returned NoneType .*not a non-empty"):
        metrics.score(Metric(f"{hook}:nothing"), y, y)
    with pytest.raises(TrtpipeError, match=r"metric .*has no callable 'absent'"):
        metrics.score(Metric(f"{hook}:absent"), y, y)


# --- samples -----------------------------------------------------------------------------------------------------
def test_npz_samples_and_their_bad_inputs(tmp_path):
    good = tmp_path / "s.npz"
    np.savez(good, image=np.ones((5, 3, 4, 4), np.float64), y=np.arange(5))
    s = samples.load(IMAGE_SPEC, {"path": str(good), "labels": "y"})
    assert len(s) == 5 and s.inputs["image"].dtype == np.float32 and s.labels.tolist() == [0, 1, 2, 3, 4]
    cases = {
        "wrong name": ({"img": np.ones((5, 3, 4, 4), np.float32)}, r"has no array 'image' \(it has img\); fix"),
        "wrong rank": ({"image": np.ones((5, 3, 16), np.float32)}, r"has rank 3 .*rank 4; fix"),
        "wrong size": ({"image": np.ones((5, 3, 4, 5), np.float32)}, r"shape \[3, 4, 5\] .*axis 3 is not dynamic"),
        "wrong dtype": ({"image": np.ones((5, 3, 4, 4), np.int64)}, r"has dtype int64 but the input is float32; fix"),
    }
    for name, (arrays, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        np.savez(path, **arrays)
        with pytest.raises(TrtpipeError, match=message):
            samples.load(IMAGE_SPEC, {"path": str(path)})
    with pytest.raises(TrtpipeError, match=r"has no labels array 'labels'"):
        samples.load(IMAGE_SPEC, {"path": str(good), "labels": "labels"})
    with pytest.raises(TrtpipeError, match=r"samples .*missing.npz not found; fix"):
        samples.load(IMAGE_SPEC, {"path": str(tmp_path / "missing.npz")})
    np.savez(tmp_path / "dyn.npz", input_ids=np.ones((2, 9), np.int64), attention_mask=np.ones((2, 9), np.int64))
    with pytest.raises(TrtpipeError, match=r"size 9 on axis 1 \(seq\), outside its range 2..8"):
        samples.load(TEXT_SPEC, {"path": str(tmp_path / "dyn.npz")})


def test_image_folder_preprocessing_labels_and_an_unreadable_image(tmp_path):
    from PIL import Image

    for cls, value in (("cat", 255), ("dog", 0)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 6), (value, 0, 0)).save(tmp_path / "imgs" / cls / "a.png")
    cfg = {"path": str(tmp_path / "imgs"), "labels": "folders", "mean": [0.5, 0.0, 0.0], "std": [0.5, 1.0, 1.0]}
    s = samples.load(IMAGE_SPEC, cfg)
    assert s.inputs["image"].shape == (2, 3, 4, 4) and s.labels.tolist() == [0, 1]
    assert np.allclose(s.inputs["image"][0, 0], 1.0) and np.allclose(s.inputs["image"][1, 0], -1.0)  # (v/255-0.5)/0.5
    nhwc = ModelSpec.from_dict({"name": "m", "inputs": [{"name": "image", "shape": [4, 4, 3]}]})
    assert samples.load(nhwc, {**cfg, "layout": "NHWC"}).inputs["image"].shape == (2, 4, 4, 3)
    (tmp_path / "imgs" / "dog" / "b.png").write_bytes(b"not a png")
    with pytest.raises(TrtpipeError, match=r"samples image .*b.png cannot be read .*; fix: replace or remove the file"):
        samples.load(IMAGE_SPEC, cfg)


def _word_tokenizer(path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, "the": 2, "cat": 3, "sat": 4, "on": 5, "mat": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))
    return path


def test_text_tokenized_with_the_models_tokenizer(tmp_path):
    lines = tmp_path / "s.txt"
    lines.write_text("the cat sat\n\nthe cat sat on the mat again and again\n")
    tok = _word_tokenizer(tmp_path / "tokenizer.json")
    s = samples.load(TEXT_SPEC, {"path": str(lines), "tokenizer": str(tok)})
    assert s.inputs["input_ids"].tolist() == [[2, 3, 4, 0, 0, 0], [2, 3, 4, 5, 2, 6]]  # padded and cut to 6
    assert s.inputs["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert s.details["truncated"] == 1
    with pytest.raises(TrtpipeError, match=r"tokenizer .*absent.json not found; fix"):
        samples.load(TEXT_SPEC, {"path": str(lines), "tokenizer": str(tmp_path / "absent.json")})
    with pytest.raises(TrtpipeError, match=r"is text, which needs the model's tokenizer"):
        samples.load(TEXT_SPEC, {"path": str(lines)})


def test_calibration_and_evaluation_never_share_a_sample():
    s = samples.SampleSet({"x": np.arange(20, dtype=np.float32)[:, None]}, np.arange(20), "x.npz", "npz")
    calib, held, info = samples.split(s, 5, seed=0)
    assert len(calib) == 5 and len(held) == 15 and info["evaluation"] == 15
    assert not set(calib.inputs["x"].ravel()) & set(held.inputs["x"].ravel())
    assert held.labels.tolist() == held.inputs["x"].ravel().astype(int).tolist()  # labels follow their samples
    # with the user's own calibration_data, a sample found in it is not evaluated on
    _, held, info = samples.split(s, 0, seed=0, exclude={"x": np.array([[3.0], [7.0]], np.float32)})
    assert info["dropped_as_in_calibration_data"] == 2 and {3.0, 7.0}.isdisjoint(held.inputs["x"].ravel())


def test_data_reference_refuses_fewer_samples_than_the_largest_batch(tmp_path):
    np.savez(tmp_path / "s.npz", image=np.ones((6, 3, 4, 4), np.float32))
    spec = ModelSpec.from_dict({"name": "m", "factory": "trtpipe.zoo:tiny_resnet", "inputs": [{"name": "image", "shape": [3, 4, 4]}]})
    with pytest.raises(TrtpipeError, match=r"leave 4 held-out sample\(s\), fewer than the largest batch 8; fix"):
        evaluate.make_data_reference(spec, None, {"path": str(tmp_path / "s.npz")}, 2, None, 8, tmp_path / "d.npz")
    assert not (tmp_path / "d.npz").exists()


def test_config_refuses_thresholds_the_metric_never_returns(tmp_path):
    model = {"factory": "trtpipe.zoo:tiny_resnet", "inputs": [{"name": "image", "shape": [3, 8, 8]}],
             "samples": {"path": "s.npz"}, "metric": "classification"}
    validate({"models": {"m": {**model, "accept": {"top1_agreement": 0.99}}}})
    with pytest.raises(ConfigError, match=r"models.m.accept names 'top1', which the classification metric does not "
                                          r"return; fix: use one of top1_agreement, top5_overlap"):
        validate({"models": {"m": {**model, "accept": {"top1": 0.99}}}})
    with pytest.raises(ConfigError, match=r"names 'accuracy'"):  # no labels: no accuracy
        validate({"models": {"m": {**model, "accept": {"accuracy": 0.9}}}})
    with pytest.raises(ConfigError, match=r"models.m.metric is set but models.m.samples is not"):
        validate({"models": {"m": {k: v for k, v in model.items() if k != "samples"}}})
    with pytest.raises(ConfigError, match=r"metric = 'nowhere.py:f': file nowhere.py not found"):
        validate({"models": {"m": {**model, "metric": "nowhere.py:f"}}})
    sweep = validate({"models": {"m": model}, "sweep": {"precisions": ["fp32", "int8"]}})
    assert sweep.accept("m") == metrics.DEFAULT_ACCEPT["classification"]
    assert sweep.samples_calibration("m") == 32 and sweep.calibration_file("m").endswith("m/calibration.npz")


# --- the verdict -------------------------------------------------------------------------------------------------
def _row(**kw):
    base = {"model": "m", "stage": "engine", "variant": "dynamic", "precision": "int8", "backend": "onnxruntime",
            "profile": "latency", "case": "b1", "passed": True, "note": "", "judged_by": np.nan}
    return {**base, **kw}


def test_a_metric_verdict_overrides_random_input_parity_but_not_gross_errors():
    random_fail = _row(passed=False, note="cosine 0.95 < 0.99")
    data_ok = [_row(case="data", judged_by="info", passed=False), _row(case="data", metric="top1_agreement", judged_by="metric")]
    v = evaluate.artifact_verdicts(pd.DataFrame([random_fail, *data_ok]))
    assert v["passed"].tolist() == [True] and v["judged_on"].tolist() == ["metric"]
    gross = _row(passed=False, note="output has 3 NaN and 0 Inf of 10 values")
    assert evaluate.artifact_verdicts(pd.DataFrame([gross, *data_ok]))["passed"].tolist() == [False]
    data_bad = [_row(case="data", metric="top1_agreement", judged_by="metric", passed=False)]
    assert evaluate.artifact_verdicts(pd.DataFrame([_row(), *data_bad]))["passed"].tolist() == [False]
    # no samples: random-input parity decides, as before
    assert evaluate.artifact_verdicts(pd.DataFrame([random_fail]))[["passed", "judged_on"]].values.tolist() == [[False, "random"]]


def test_run_in_batches_fills_a_short_last_batch_and_drops_its_outputs():
    seen = []

    def run(feeds):
        seen.append(len(feeds["x"]))
        return [feeds["x"] * 2]

    out = evaluate.run_in_batches(run, {"x": np.arange(10.0)}, lo=4, hi=4)
    assert seen == [4, 4, 4] and out[0].tolist() == (np.arange(10.0) * 2).tolist()


def test_the_report_tables_say_which_data_the_scores_and_the_verdict():
    data = "samples.npz: 30 held-out of 40, 10 for calibration"
    metric = dict(case="data", data=data, samples=30, direction="min")
    rows = [
        _row(passed=False, note="cosine 0.95 < 0.99"),  # random-input parity of the int8 engine: fails
        _row(**metric, metric="top1_agreement", value=0.995, threshold=0.99, judged_by="metric"),
        _row(**metric, metric="accuracy", value=0.97, threshold=np.nan, judged_by="info"),
        _row(**metric, precision="fp16", metric="top1_agreement", value=0.95, threshold=0.99, judged_by="metric", passed=False),
        _row(**metric, stage="pytorch", backend="torch", variant="", profile="", precision="fp32", metric="accuracy",
             value=0.98, threshold=np.nan, judged_by="info"),
    ]
    acc = pd.DataFrame(rows)
    table = evaluate.data_table(acc, "m")
    assert table[["precision", "top1_agreement", "verdict"]].values.tolist() == [
        ["fp16", "0.9500", "FAIL (top1_agreement 0.9500 < 0.99)"], ["int8", "0.9950", "pass"]]
    assert evaluate.data_summary(acc, "m") == (f"Judged on {data}. Thresholds for reduced precisions: top1_agreement >= "
                                               f"0.99. PyTorch's accuracy 0.9800 against the labels.")
    assert evaluate.judged_on_random(acc, ["m", "other"]) == ["other"]
