"""Bad models, bad files and broken runs: each ends with one sentence that names the file, the value and the
fix, and nothing broken is ever called good. (The sweep-level test, three models under --keep-going, is
tests/test_workflow.py::test_a_failed_model_still_gets_a_report_with_its_failures.)"""

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from trtpipe.spec import DYNAMIC
from helpers import TEXT_MODEL, ZERO_HEAD_MODEL, tiny_config
from trtpipe import failures
from trtpipe import reference as reference_module
from trtpipe.check import check_export
from trtpipe.config import check_yaml_syntax, validate
from trtpipe.errors import ConfigError, DynamicExportError, TrtpipeError
from trtpipe.export import export_onnx
from trtpipe.models import build_model
from trtpipe.parity import compare, failure_clause, parity_rows, write_rows
from trtpipe.reference import Reference, input_independent, make_reference
from trtpipe.report.summary import summarize

REPO = Path(__file__).resolve().parents[1]
TOL = {"atol": 1e-4, "rtol": 1e-3}


def user_model(name, shape=(8,)):
    return {"factory": f"tests/data/user_models.py:{name}", "inputs": [{"name": "x", "shape": list(shape)}]}


@pytest.fixture(scope="module")
def sweep(repo_cwd):
    return validate(tiny_config(
        nan=user_model("nan_output"), constant=user_model("constant_batch"), branchy=user_model("data_dependent"),
        linear=user_model("tiny_linear"), pairs=user_model("pairs_of_two"), bad=user_model("hardcoded_batch", (3, 4, 4)),
        traced=user_model("traced_batch", (3, 4, 4)),
    ))


# --- parity: NaN is never equal, shapes before values ---------------------------------------------------
def test_nan_never_compares_equal():
    nan = np.full((2, 3), np.nan, dtype=np.float32)
    for actual, expected in ((nan, nan), (nan, np.zeros((2, 3), np.float32)), (np.zeros((2, 3), np.float32), nan)):
        result = compare(actual, expected, 1e-4, 1e-3)
        assert not result["passed"] and np.isnan(result["max_abs_err"]) and result["mismatch_fraction"] == 1.0
        assert "NaN" in result["note"]
    inf = np.full(3, np.inf, dtype=np.float32)
    assert not compare(inf, inf, 1e-4, 1e-3)["passed"]  # Inf - Inf is NaN: not a match either
    one = np.array([1.0, np.nan, 3.0], dtype=np.float32)
    row = compare(one, np.array([1.0, 2.0, 3.0], dtype=np.float32), 1e-4, 1e-3, min_cosine=0.99)
    assert not row["passed"] and row["mismatch_fraction"] == pytest.approx(1 / 3)
    assert compare(np.ones(3), np.ones(3), 1e-4, 1e-3)["passed"]  # finite and equal still passes


def test_output_shape_mismatch_is_its_own_sentence():
    rows = parity_rows({"model": "m"}, "b1", 1, ["logits"], [np.ones((2, 3))], [np.ones((1, 3))], TOL)
    assert not rows[0]["passed"]
    assert failure_clause(rows[0]) == "output 'logits' at batch 1 (b1) has shape [2, 3] but PyTorch gives [1, 3]"
    nan_rows = parity_rows({"model": "m"}, "b1", 1, ["logits"], [np.full((1, 3), np.nan)], [np.ones((1, 3))], TOL)
    assert "is not finite where PyTorch is (output has 3 NaN and 0 Inf of 3 values)" in failure_clause(nan_rows[0])


# --- the reference: PyTorch's own NaN and a hard-coded output batch are refused where they start -------------
def test_a_nan_reference_is_refused_naming_the_output_and_the_fix(sweep, tmp_path):
    with pytest.raises(TrtpipeError) as info:
        make_reference(sweep.models["nan"], None, [1, 3, 5], tmp_path / "nan.npz")
    message = str(info.value)
    assert message.startswith("model nan: PyTorch itself returns 4 NaN of 4 values in output 'output' at batch 1 (b1) "
                              "for seeded random inputs (x 1x8 standard normal)")
    # the weights are trtpipe's own seeded ones: the fix points at forward(), never at "the checkpoint"
    assert "with trtpipe's seeded weights, so nothing can be checked" in message and "the checkpoint" not in message
    assert "fix: check forward() (an operation that gives NaN/Inf" in message
    assert "models.nan.inputs[].range" in message and "\n" not in message
    assert not (tmp_path / "nan.npz").exists()


def test_nan_weights_are_named(sweep, tmp_path):
    model = build_model(sweep.models["linear"], None)
    state = model.state_dict()
    state["fc.weight"][0, 0] = float("inf")
    torch.save(state, tmp_path / "diverged.pt")
    spec = validate(tiny_config(d={**user_model("tiny_linear"), "checkpoint": str(tmp_path / "diverged.pt")})).models["d"]
    with pytest.raises(TrtpipeError, match=r"with checkpoint .*diverged.pt \(its parameter 'fc.weight' itself holds NaN/Inf\), so nothing can be checked against it; fix: check the checkpoint \(a diverged"):
        make_reference(spec, spec.checkpoint, [1, 3], tmp_path / "d.npz")


def test_a_constant_shaped_tensor_that_fixes_the_output_batch_is_refused(sweep, tmp_path):
    """fc(x) + torch.ones(2, 3): batch 1 broadcasts to batch 2, so every ONNX would match PyTorch at batch 1."""
    with pytest.raises(TrtpipeError) as info:
        make_reference(sweep.models["constant"], None, [1, 2, 3], tmp_path / "c.npz")
    message = str(info.value)
    assert ("PyTorch returns output 'output' with shape [2, 3] for batch 1 (b1) where [1, 3] is expected (its axis 0 "
            "follows the batch at batch 2)") in message
    assert "a tensor of constant shape created in forward() (torch.ones(2, 3)" in message and "x.view" not in message


def test_an_output_without_a_batch_axis_is_left_alone(tmp_path):
    spec = validate(tiny_config(p=user_model("constant_table"))).models["p"]
    make_reference(spec, None, [1, 2, 3], tmp_path / "p.npz")  # the same [2, 3] at every batch: no batch axis


# --- the reference: an output that ignores its input makes every parity row pass, and is said so -------------
def test_a_zero_initialised_head_is_flagged_at_the_reference_in_parity_rows_and_in_the_report(repo_cwd, tmp_path, caplog):
    """Seeded torchvision ViT-B/16 gave the same logits for every image: every parity row passed and proved nothing."""
    from trtpipe.engine import build_engine

    sweep = validate(tiny_config(zero=ZERO_HEAD_MODEL))
    spec = sweep.models["zero"]
    with caplog.at_level("WARNING"):
        make_reference(spec, None, [1, 2, 3], tmp_path / "z.npz")
    reference = Reference(tmp_path / "z.npz")
    # features vary; the integer label is constant by design
    assert reference.input_independent == {"logits": {"samples": 6, "spread": 0.0, "scale": 0.0}}
    assert reference.constant_flags == [False, True, False]
    assert ("model zero: PyTorch's output 'logits' is the same for all 6 seeded random samples (at most 0 apart, largest "
            "magnitude 0: a zero-initialised head, or seeded weights?), so every parity check of it passes whatever an "
            "artifact does with its input; fix: give trained weights (models.zero.checkpoint") in caplog.text

    export_onnx(spec, None, DYNAMIC, tmp_path / "z.onnx", dummy_batch=2)
    rows, _ = check_export(tmp_path / "z.onnx", spec, tmp_path / "z.npz", DYNAMIC, TOL, dummy_batch=2)
    rows += build_engine("onnxruntime", tmp_path / "z.onnx", tmp_path / "z.ort.onnx", tmp_path / "z.ort.json", spec, DYNAMIC,
                         "fp32", [sweep.profile("small")], {}, tmp_path / "z.npz", TOL)
    assert {r["stage"] for r in rows} == {"export", "engine"} and all(r["passed"] for r in rows)  # passes: proves nothing
    assert {r["output"] for r in rows if r["reference_constant"]} == {"logits"}
    assert not any(r["reference_constant"] for r in rows if r["output"] != "logits")

    write_rows(tmp_path / "acc.csv", rows)
    summarize([], [str(tmp_path / "acc.csv")], [], tmp_path / "out")
    text = (tmp_path / "out/report.md").read_text()
    warning = ("WARNING: zero's reference output 'logits' is the same for every input (PyTorch gives the same values, "
               "to 1e-06, for every seeded random sample: a zero-initialised head, or seeded weights?), so its parity rows "
               "pass whatever an artifact does with its input and prove nothing; fix: give trained weights "
               "(models.zero.checkpoint")
    assert text.split("## Overview")[0].count(warning) == 1  # at the top, and again in the model's accuracy section
    assert text.split("### Accuracy against PyTorch")[1].count(warning) == 1
    assert "parity against 'logits' PROVES NOTHING (PyTorch gives the same for every input)" in text.split("## Model")[0]
    assert pd.read_csv(tmp_path / "out/accuracy.csv")["reference_constant"].any()


def test_outputs_that_follow_their_input_or_are_constant_by_design_are_not_flagged(repo_cwd, tmp_path):
    """tiny_linear varies with its input; constant_table has no batch axis (a table: constant by design); the
    default sweep's zoo models, seeded, all depend on their inputs."""
    from trtpipe.config import load_file

    for name in ("tiny_linear", "constant_table"):
        spec = validate(tiny_config(m=user_model(name))).models["m"]
        make_reference(spec, None, [1, 2, 3], tmp_path / f"{name}.npz")
        assert Reference(tmp_path / f"{name}.npz").input_independent == {}, name
    zoo = load_file(REPO / "config.yaml")
    for name, spec in zoo.models.items():
        make_reference(spec, None, [1, 2], tmp_path / f"{name}.npz")
        assert Reference(tmp_path / f"{name}.npz").input_independent == {}, name


def test_the_input_independence_rule():
    """Across the batch and across cases; one sample per case still counts when the cases' inputs differ; values that
    are ~0 everywhere count too. Identical inputs, integer outputs and values that vary by more than a millionth of
    their size (and 1e-6) are not flagged."""
    rng = np.random.default_rng(0)
    cases = [{"id": "b1", "batch": 1, "dims": "opt"}, {"id": "b1-dmin", "batch": 1, "dims": "min"}]

    spec = validate(tiny_config(m=user_model("tiny_linear"))).models["m"]  # one input, x

    def flagged(outputs, inputs=None):
        arrays = {}
        for i, case in enumerate(cases):
            arrays[f"{case['id']}/input/x"] = (inputs[i] if inputs is not None
                                               else rng.normal(size=(case["batch"], 4)).astype(np.float32))
            arrays[f"{case['id']}/output/y"] = outputs[i]
        return list(input_independent(spec, cases, arrays, ["y"]))

    same = [np.full((1, 3), 0.25, np.float32)] * 2
    assert flagged(same) == ["y"]  # one sample per case, compared across cases
    assert flagged([np.zeros((1, 3), np.float32)] * 2) == ["y"]  # all zeros: a zero head with a zero bias
    assert flagged(same, inputs=[np.ones((1, 4), np.float32)] * 2) == []  # the inputs did not differ: nothing learnt
    assert flagged([np.full((1, 3), 7, np.int64)] * 2) == []  # an integer output (a shape, a class) may be constant
    assert flagged([same[0], same[0] * (1 + 1e-4)]) == []  # varies little, but varies
    tiny = np.full((1, 3), 8e-10, np.float32)
    assert flagged([tiny, tiny * 0.85]) == ["y"]  # ~0 everywhere (seeded MobileNetV3-Large: logits of 1e-9)
    cases.append({"id": "b2", "batch": 2, "dims": "opt"})
    assert flagged([*same, np.full((2, 3), 0.25, np.float32)]) == ["y"]  # and across the samples of a batch
    assert flagged([*same, np.array([[0.25] * 3, [0.5] * 3], np.float32)]) == []


def test_the_dynamic_check_names_the_cause_it_saw(sweep, tmp_path, monkeypatch):
    """No Reshape here: the usual cause is the constant-shaped tensor, not x.view(2, -1)."""
    spec = sweep.models["constant"]
    monkeypatch.setattr(reference_module, "refuse_batch_mismatch", lambda *a: None)  # let the bad reference through
    make_reference(spec, None, [1, 2, 3], tmp_path / "c.npz")
    export_onnx(spec, None, DYNAMIC, tmp_path / "c.onnx", dummy_batch=2)
    with pytest.raises(DynamicExportError) as info:
        check_export(tmp_path / "c.onnx", spec, tmp_path / "c.npz", DYNAMIC, TOL, dummy_batch=2)
    message = str(info.value)
    assert "does not run at batch 3 (b3)" in message and "(Add)" in message
    assert "combines the input with a tensor of constant shape (torch.ones(2, 3)" in message
    assert "x.view(2, -1)" not in message and "suspect" not in message


def test_reshape_constants_that_equal_the_traced_batch_are_explained_away(sweep, tmp_path, caplog):
    """x.reshape(-1, 2, 4) is a real feature size of 2, not the traced batch 2: the graph runs at every batch,
    so the Reshape is not reported (the swin_t windows of 2 gave ten such warnings)."""
    spec = sweep.models["pairs"]
    make_reference(spec, None, [1, 2, 3], tmp_path / "p.npz")
    for exporter in ("dynamo", "torchscript"):
        export_onnx(spec, None, DYNAMIC, tmp_path / "p.onnx", exporter=exporter, dummy_batch=2)
        with caplog.at_level("INFO"):
            rows, report = check_export(tmp_path / "p.onnx", spec, tmp_path / "p.npz", DYNAMIC, TOL, dummy_batch=2)
        assert all(r["passed"] for r in rows) and report["suspicious_reshapes"] == []
        assert "explained away" in caplog.text and "contains 2 (the traced batch)" in caplog.text


def test_a_batch_frozen_at_the_default_traced_batch_is_still_caught(sweep, tmp_path):
    """The default traced batch is 5: int(x.shape[0]) bakes 5 into the Reshape, and the check finds it."""
    spec = sweep.models["traced"]
    make_reference(spec, None, sweep.reference_batches("traced"), tmp_path / "t.npz")
    export_onnx(spec, None, DYNAMIC, tmp_path / "t.onnx")
    with pytest.raises(DynamicExportError) as info:
        check_export(tmp_path / "t.onnx", spec, tmp_path / "t.npz", DYNAMIC, TOL, dummy_batch=5)
    assert "the graph traced at batch 5 does not run at batch 1 (b1)" in str(info.value)
    assert "to constant [5, -1] contains 5 (the traced batch)" in str(info.value)


def test_a_hard_coded_batch_that_differs_from_the_traced_one_fails_at_export(sweep, tmp_path):
    """x.view(2, -1) traced at 5: PyTorch itself fails there, and the export says the batch is hard-coded."""
    with pytest.raises(DynamicExportError) as info:
        export_onnx(sweep.models["bad"], None, DYNAMIC, tmp_path / "bad.onnx")
    message = str(info.value)
    assert message.startswith("model bad: axis 0 (batch) is hard-coded in the model — PyTorch's forward() runs at batch 2 "
                              "but fails at the traced batch 5 (export.dummy_batch)")
    assert "x.view(2, -1)" in message and "\n" not in message and not (tmp_path / "bad.onnx").exists()


# --- export failures: plain text, the user's line, a fix that helps --------------------------------------
def test_data_dependent_control_flow_names_the_line_and_a_fix_that_helps(sweep, tmp_path):
    with pytest.raises(TrtpipeError) as info:
        export_onnx(sweep.models["branchy"], None, DYNAMIC, tmp_path / "b.onnx")
    message = str(info.value)
    line = next(i for i, text in enumerate((REPO / "tests/data/user_models.py").read_text().splitlines(), 1)
                if "if y.sum() > 0:" in text)
    assert f"makes a Python decision from a tensor's values at tests/data/user_models.py:{line} (`if y.sum() > 0:`)" in message
    assert "torch.cond(" in message and "torchscript is no fix here" in message
    assert "\x1b" not in message and "Next steps" not in message and "\n" not in message
    assert not (tmp_path / "b.onnx").exists()


def test_torchscript_names_the_frozen_branch_in_the_log(sweep, tmp_path, caplog):
    with caplog.at_level("WARNING"):
        export_onnx(sweep.models["branchy"], None, DYNAMIC, tmp_path / "b.onnx", exporter="torchscript")
    assert re.search(r"the trace froze a value at tests/data/user_models.py:\d+: Converting a tensor to a Python boolean",
                     caplog.text)


# --- checkpoints as users have them ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken_files(tmp_path_factory, sweep):
    root = tmp_path_factory.mktemp("ckpt")
    model = build_model(sweep.models["linear"], None)
    torch.save(model.state_dict(), root / "good.pt")
    data = (root / "good.pt").read_bytes()
    (root / "truncated.pt").write_bytes(data[: len(data) // 2])
    (root / "garbage.pt").write_bytes(b"<html>404 Not Found</html>" * 8)
    (root / "empty.pt").write_bytes(b"")
    torch.save(model, root / "whole.pt")
    from safetensors.torch import save_file

    save_file(model.state_dict(), root / "good.safetensors")
    (root / "truncated.safetensors").write_bytes((root / "good.safetensors").read_bytes()[:40])
    return root


@pytest.mark.parametrize("name, what", [("truncated.pt", "its zip archive is damaged"),
                                        ("garbage.pt", "it is not a file torch.save wrote"),
                                        ("empty.pt", "it is empty")])
def test_a_corrupt_checkpoint_is_named_without_torchs_unsafe_advice(broken_files, name, what):
    path = broken_files / name
    spec = validate(tiny_config(c={**user_model("tiny_linear"), "checkpoint": str(path)})).models["c"]
    with pytest.raises(TrtpipeError) as info:
        build_model(spec, path)
    message = str(info.value)
    assert message.startswith(f"model c: checkpoint {path} is not a readable checkpoint ({path.stat().st_size} bytes: {what}")
    assert "fix: copy or download it again" in message and "weights_only" not in message and "\n" not in message


def test_a_pickled_module_is_refused_without_unpickling_it(broken_files):
    path = broken_files / "whole.pt"
    spec = validate(tiny_config(c={**user_model("tiny_linear"), "checkpoint": str(path)})).models["c"]
    with pytest.raises(TrtpipeError, match=r"holds a pickled TinyLinear object, not only tensors .* "
                                           r"fix: save the weights with torch.save\(model.state_dict\(\), path\)") as info:
        build_model(spec, path)
    assert "weights_only" not in str(info.value)


def test_safetensors_checkpoints_load_and_a_broken_one_is_named(broken_files, sweep):
    good = validate(tiny_config(s={**user_model("tiny_linear"), "checkpoint": str(broken_files / "good.safetensors")}))
    model = build_model(good.models["s"], broken_files / "good.safetensors")
    reference = build_model(sweep.models["linear"], None)
    assert torch.equal(model.fc.weight, reference.fc.weight)
    bad = broken_files / "truncated.safetensors"
    spec = validate(tiny_config(s={**user_model("tiny_linear"), "checkpoint": str(bad)})).models["s"]
    with pytest.raises(TrtpipeError, match=rf"checkpoint {re.escape(str(bad))} is not a readable safetensors file \(40 bytes; "):
        build_model(spec, bad)


# --- config ------------------------------------------------------------------------------------------------
def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  a:\n    factory: x:y\n    inputs: [{name: x, shape: [3]}\n  b: 1\n")
    with pytest.raises(ConfigError) as info:
        check_yaml_syntax(path)
    assert str(info.value).startswith(f"{path}: not valid YAML at line 5, column 3 (expected ',' or ']', but got '<scalar>'; while parsing a flow sequence at line 4)")


# --- precisions not built, and what the report says about them ------------------------------------------
def test_precisions_no_backend_builds_are_named_once_with_why():
    sweep = validate({**tiny_config(), "sweep": {"profiles": ["latency"], "precisions": ["fp32", "bf16"]}})
    assert failures.skipped_notes(sweep) == [
        "not built: bf16 engines on onnxruntime for tiny_text (ONNX Runtime (onnxruntime) has no bf16 kernels); "
        "nothing bf16 is built at all (no backend of the sweep runs it): add tensorrt or a torch_* backend to "
        "sweep.backends, or drop bf16 from the precisions."
    ]
    both = validate({**tiny_config(), "sweep": {"profiles": ["latency"], "precisions": ["fp32", "bf16"],
                                                "backends": ["onnxruntime", "tensorrt"]}})
    assert failures.skipped_notes(both) == [
        "not built: bf16 engines on onnxruntime for tiny_text (ONNX Runtime (onnxruntime) has no bf16 kernels); "
        "the bf16 precision ONNX is still made for tensorrt."
    ]
    assert failures.skipped_notes(validate(tiny_config())) == []


def _write_bench_and_accuracy(root: Path, model: str) -> tuple[str, str]:
    from trtpipe.benchmark import bench_columns
    from trtpipe.parity import ACCURACY_COLUMNS

    bench = pd.DataFrame([{c: None for c in bench_columns()} | {
        "model": model, "variant": "dynamic", "precision": "fp32", "backend": "onnxruntime", "profile": "latency",
        "profile_min": 1, "profile_opt": 1, "profile_max": 1, "batch": 1, "device": "cpu", "git_rev": "x",
        "latency_ms_median": 1.0, "latency_ms_p90": 1.0, "latency_ms_p99": 1.0, "throughput_samples_s": 1000.0,
        "iterations": 10, "cv": 0.01, "unstable": False}])
    accuracy = pd.DataFrame([{c: None for c in ACCURACY_COLUMNS} | {
        "model": model, "stage": "export", "variant": "dynamic", "precision": "fp32", "backend": "onnxruntime",
        "profile": "", "case": "b1", "batch": 1, "output": "y", "max_abs_err": 0.0, "max_rel_err": 0.0, "cosine": 1.0,
        "atol": 1e-4, "rtol": 1e-3, "passed": True}])
    bench.to_csv(root / "bench.csv", index=False)
    accuracy.to_csv(root / "acc.csv", index=False)
    return str(root / "bench.csv"), str(root / "acc.csv")


def test_the_report_says_which_precision_onnx_exists(tmp_path):
    bench, acc = _write_bench_and_accuracy(tmp_path, "m")
    summarize([bench], [acc], [], tmp_path / "out", [], {"m": [["onnxruntime", "bf16"]]})
    text = (tmp_path / "out/report.md").read_text()
    assert ("Not built: bf16 on onnxruntime (ONNX Runtime (onnxruntime) has no kernels for it); no bf16 precision ONNX "
            "was made either, since no backend of this sweep builds it.") in text
    assert "still in accuracy.csv" not in text
    stats = tmp_path / "bf16.json"
    stats.write_text(json.dumps({"model": "m", "variant": "dynamic", "precision": "bf16", "method": "autocast", "casts": 2,
                                 "quantize_nodes": 0, "dequantize_nodes": 0, "warnings": [], "passed": True}))
    summarize([bench], [acc], [], tmp_path / "out", [str(stats)], {"m": [["onnxruntime", "bf16"]]})
    assert "the bf16 precision ONNX and its parity are still in accuracy.csv" in (tmp_path / "out/report.md").read_text()


def test_the_report_warns_about_a_reference_that_ignores_its_input(tmp_path):
    """Hand-built rows: one model's output is flagged, an older CSV (no reference_constant column) is not."""
    bench, acc = _write_bench_and_accuracy(tmp_path, "m")
    frame = pd.read_csv(acc)
    frame.assign(reference_constant=True).to_csv(acc, index=False)
    frame.assign(model="old").drop(columns=["reference_constant"]).to_csv(tmp_path / "old.csv", index=False)
    summarize([bench], [acc, str(tmp_path / "old.csv")], [], tmp_path / "out")
    text = (tmp_path / "out/report.md").read_text()
    top, models = text.split("## Overview")
    assert "WARNING: m's reference output 'y' is the same for every input" in top and "old's" not in top
    assert "The speed measurements still hold." in top
    overview = models.split("## Model")[0]
    assert "parity against 'y' PROVES NOTHING" in next(l for l in overview.splitlines() if l.startswith("| m |"))
    assert "PROVES NOTHING" not in next(l for l in overview.splitlines() if l.startswith("| old |"))
    assert "WARNING: m's reference output 'y'" in text.split("## Model m")[1].split("## Model")[0]
    assert "WARNING: m's reference output 'y'" in (tmp_path / "out/report.html").read_text().replace("&#x27;", "'")


def test_summarize_by_hand_never_calls_a_half_run_model_good(tmp_path):
    """A failed stage writes no accuracy row: 'no failed row' must not read as 'all stages pass'."""
    bench, acc = _write_bench_and_accuracy(tmp_path, "m")
    summarize([bench], [acc], [], tmp_path / "out")
    overview = (tmp_path / "out/report.md").read_text().split("## Model")[0]
    assert "| m | incomplete |" in overview and "incomplete: no simplify dynamic, engine results given" in overview
    assert "all stages pass" not in overview


def test_failures_are_read_back_from_the_logs(tmp_path):
    """The onerror handler's view of a run, from the files alone: a failed job's sentence from its log, what it
    blocked, and a stale output below a failure that is not taken for a result."""
    config = tiny_config(a=TEXT_MODEL)
    config.update(results=str(tmp_path / "results"), static_batch_sizes=[], sweep={"profiles": ["latency"]})
    sweep = validate(config)
    jobs = {j.key: j for j in failures.expected_jobs(sweep)}
    assert [j.stage for j in jobs.values()] == ["checkpoint", "reference", "export", "check_export", "simplify", "engine",
                                                "benchmark"]
    for key in ("a|checkpoint|", "a|reference|"):
        for out in jobs[key].outputs:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text("x")
    log = Path(jobs["a|export|dynamic"].log)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("2026-11-23 19:55:30,046 INFO trtpipe: trtpipe export ...\n"
                   "2026-11-23 19:55:31,046 ERROR trtpipe: model a: ONNX export (dynamic) failed: it broke; fix: mend it.\n")
    stale = Path(jobs["a|benchmark|onnxruntime dynamic fp32 latency"].outputs[0])
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("an old result")
    status = {o.job.key: (o.status, o.reason) for o in failures.outcomes(sweep)}
    assert status["a|reference|"] == ("done", "")
    assert status["a|export|dynamic"] == ("failed", "model a: ONNX export (dynamic) failed: it broke; fix: mend it.")
    assert status["a|check_export|dynamic"] == ("not run", "needs export dynamic")
    assert status["a|benchmark|onnxruntime dynamic fp32 latency"][0] == "not run"  # the stale CSV is no result
    rows = failures.failure_rows(failures.outcomes(sweep))
    assert rows[0] == {"model": "a", "stage": "export", "engine": "dynamic", "log": str(log),
                       "reason": "model a: ONNX export (dynamic) failed: it broke; fix: mend it."}
    assert rows[1]["engine"] == "4 job(s)" and rows[1]["reason"] == "not run: they need an output of a job that did not finish"
    log.write_text("2026-11-23 19:55:30,046 INFO trtpipe: trtpipe export ...\n")  # killed mid-way: no sentence
    assert failures.outcomes(sweep)[2].status == "unfinished"


def test_a_killed_jobs_temporary_file_is_removed_by_the_next_write(tmp_path):
    """SIGKILL runs no clean-up: the next write of the same artifact removes what a dead process of this host left,
    never a live writer's file (a shared timing cache) or another host's; artifacts are not private (mkstemp's 0600)."""
    from trtpipe import io

    dead = tmp_path / f".out.csv.{io._HOST}-{2**22 + 12345}.abc.tmp"  # above the default pid_max: never a live pid
    live = tmp_path / f".out.csv.{io._HOST}-{os.getpid()}.def.tmp"
    other = tmp_path / ".out.csv.otherhost-1.ghi.tmp"
    for f in (dead, live, other):
        f.write_text("half")
    io.write_text(tmp_path / "out.csv", "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "out.csv"])
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o666 & ~umask
