"""The stages on real files: export -> check -> simplify -> ONNX Runtime engine -> benchmark."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from helpers import SR_MODEL, TEXT_MODEL, USER_MODEL, tiny_config
from trtpipe import simplify as simplify_module
from trtpipe.benchmark import bench_columns, benchmark_engine
from trtpipe.check import check_export
from trtpipe.config import validate
from trtpipe.engine import build_engine
from trtpipe.errors import DynamicExportError, ProfileError, TrtpipeError
from trtpipe.export import export_onnx
from trtpipe.reference import Reference, make_reference
from trtpipe.simplify import simplify
from trtpipe.timing import TimingSettings
from trtpipe.spec import DYNAMIC, Variant

REPO = Path(__file__).resolve().parents[1]
TOL = {"atol": 1e-4, "rtol": 1e-3}
BAD_MODEL = {"factory": "tests/data/user_models.py:hardcoded_batch", "inputs": [{"name": "x", "shape": [3, 4, 4]}]}
TRACED_MODEL = {"factory": "tests/data/user_models.py:traced_batch", "inputs": [{"name": "x", "shape": [3, 4, 4]}]}


def dims(path, which="input"):
    graph = onnx.load(str(path)).graph
    values = graph.input if which == "input" else graph.output
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}


@pytest.fixture(scope="module")
def sweep(repo_cwd):
    config = tiny_config(tiny_text=TEXT_MODEL, tiny_sr=SR_MODEL, user=USER_MODEL, bad=BAD_MODEL, traced=TRACED_MODEL)
    config["export"] = {"dummy_batch": 2}  # the seeds' trap: a batch hard-coded at 2 and traced at 2 (the default is 5)
    return validate(config)


@pytest.fixture(scope="module")
def work(tmp_path_factory, sweep):
    """Reference files for every model, made once."""
    root = tmp_path_factory.mktemp("stages")
    for name, spec in sweep.models.items():
        make_reference(spec, None, sweep.reference_batches(name), root / f"{name}.npz")
    return root


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_dynamic_export_is_symbolic_and_matches_pytorch_at_other_batches(sweep, work, exporter):
    spec = sweep.models["tiny_text"]
    out = work / f"text.{exporter}.onnx"
    export_onnx(spec, None, DYNAMIC, out, exporter=exporter, opset=18, dummy_batch=2)
    assert dims(out) == {"input_ids": ["batch", "seq"], "attention_mask": ["batch", "seq"]}
    assert dims(out, "output")["output"][0] == "batch"
    rows, report = check_export(out, spec, work / "tiny_text.npz", DYNAMIC, TOL, dummy_batch=2)
    assert {r["case"] for r in rows} == {"b1", "b2", "b3", "b1-dmin", "b1-dmax"}  # the traced 2, and away from it
    assert all(r["passed"] for r in rows) and max(r["max_abs_err"] for r in rows) < 1e-4
    assert report["suspicious_reshapes"] == []


def test_dynamic_height_width_keep_their_names(sweep, work):
    out = work / "sr.onnx"
    export_onnx(sweep.models["tiny_sr"], None, DYNAMIC, out)
    assert dims(out) == {"low_res": ["batch", 3, "height", "width"]}
    assert dims(out, "output")["output"] == ["batch", 3, "2*height", "2*width"]
    rows, _ = check_export(out, sweep.models["tiny_sr"], work / "tiny_sr.npz", DYNAMIC, TOL, 2)
    assert {r["case"] for r in rows} >= {"b1-dmin", "b1-dmax"} and all(r["passed"] for r in rows)


def test_static_export_has_fixed_batch(sweep, work):
    out = work / "user.static-b2.onnx"
    export_onnx(sweep.models["user"], None, Variant.static(2), out)
    assert dims(out) == {"features": [2, 6], "category": [2]}
    rows, _ = check_export(out, sweep.models["user"], work / "user.npz", Variant.static(2), TOL, 2)
    assert [r["case"] for r in rows] == ["b2"] and rows[0]["passed"]


def test_view_2_minus_1_fails_the_check_naming_batch_cause_and_fix(sweep, work):
    """x.view(2, -1): PyTorch itself runs only at batch 2; the reference records that, the check reports it."""
    meta = Reference(work / "bad.npz")
    assert [c.id for c in meta.cases()] == ["b2"] and meta.case("b1").error.startswith("RuntimeError: mat1 and mat2")
    for exporter in ("dynamo", "torchscript"):
        out = work / f"bad.{exporter}.onnx"
        export_onnx(sweep.models["bad"], None, DYNAMIC, out, exporter=exporter, dummy_batch=2)
        with pytest.raises(DynamicExportError) as info:
            check_export(out, sweep.models["bad"], work / "bad.npz", DYNAMIC, TOL, dummy_batch=2)
        message = str(info.value)
        assert "axis 0 (batch) is hard-coded — the graph traced at batch 2 does not run at batch 1 (b1)" in message
        assert "PyTorch's forward() fails there too" in message and "x.view(2, -1)" in message and "fix: derive it from the tensor" in message and "\n" not in message


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_batch_frozen_by_tracing_fails_the_check_naming_node_and_reshape(sweep, work, exporter):
    """int(x.shape[0]) runs at any batch in PyTorch; both exporters keep the input symbolic (it looks
    dynamic) but bake [2, -1] into a Reshape."""
    out = work / f"traced.{exporter}.onnx"
    export_onnx(sweep.models["traced"], None, DYNAMIC, out, exporter=exporter, dummy_batch=2)
    assert dims(out)["x"][0] == "batch"
    with pytest.raises(DynamicExportError) as info:
        check_export(out, sweep.models["traced"], work / "traced.npz", DYNAMIC, TOL, dummy_batch=2)
    message = str(info.value)
    assert "axis 0 (batch) is hard-coded — the graph traced at batch 2 does not run at batch 1 (b1)" in message
    assert "ONNX Runtime failed in node" in message and "suspect: Reshape" in message
    assert "to constant [2, -1] contains 2 (the traced batch)" in message
    fix = ("cause: the TorchScript trace froze a value at tests/data/user_models.py:" if exporter == "torchscript"
           else "fix: derive it from the tensor")  # the tracer's warning, carried in the ONNX, is the cause it names
    assert fix in message and message.count("fix:") == 1 and "\n" not in message


def test_unsupported_operator_is_named(work):
    spec = validate(tiny_config(u={"factory": "tests/data/user_models.py:unexportable",
                                   "inputs": [{"name": "x", "shape": [4, 4]}]})).models["u"]
    for exporter in ("dynamo", "torchscript"):
        with pytest.raises(TrtpipeError, match=r"operator aten.*linalg_svd cannot be converted by the .* fix: set export.opset"):
            export_onnx(spec, None, DYNAMIC, work / "u.onnx", exporter=exporter)
        assert not (work / "u.onnx").exists() and not list(work.glob(".u.onnx.*"))


def test_simplify_counts_nodes_checks_parity_and_falls_back(sweep, work, monkeypatch):
    spec = sweep.models["tiny_sr"]
    src = work / "sr.dyn.onnx"
    export_onnx(spec, None, DYNAMIC, src, exporter="torchscript")
    rows, stats = simplify(src, work / "sr.sim.onnx", spec, work / "tiny_sr.npz", DYNAMIC, "onnxsim", TOL, 2)
    assert stats["tool"] == "onnxsim" and stats["nodes_after"] <= stats["nodes_before"]
    assert all(r["stage"] == "simplify" and r["passed"] for r in rows)
    assert dims(work / "sr.sim.onnx") == dims(src)

    def broken(graph):
        raise RuntimeError("simulated onnxsim failure")

    monkeypatch.setitem(simplify_module.TOOLS, "onnxsim", broken)
    _, stats = simplify(src, work / "sr.sim2.onnx", spec, work / "tiny_sr.npz", DYNAMIC, "onnxsim", TOL, 2)
    assert stats["tool"] == "onnxslim" and stats["requested_tool"] == "onnxsim"


@pytest.fixture(scope="module")
def text_engines(sweep, work):
    spec = sweep.models["tiny_text"]
    src = work / "text.engine-src.onnx"
    export_onnx(spec, None, DYNAMIC, src)
    built = {}
    for profile in (sweep.profile("latency"), sweep.profile("small")):
        engine = work / f"text.{profile.name}.onnx"
        rows = build_engine("onnxruntime", src, engine, engine.with_suffix(".json"), spec, DYNAMIC, "fp32", [profile],
                            {"optimization_level": "all"}, work / "tiny_text.npz", TOL)
        built[profile.name] = (engine, rows)
    return built


def test_engine_sidecar_parity_and_baked_dims(text_engines):
    engine, rows = text_engines["small"]
    sidecar = json.loads(engine.with_suffix(".json").read_text())
    assert sidecar["profiles"][0]["shapes"]["input_ids"] == [[1, 4], [2, 8], [4, 16]]
    for key in ("backend_version", "device", "engine_bytes", "build_seconds", "optimization_level", "source"):
        assert key in sidecar
    assert {r["case"] for r in rows} == {"b1", "b2", "b3", "b1-dmin", "b1-dmax"} and all(r["passed"] for r in rows)
    latency_engine, latency_rows = text_engines["latency"]
    assert json.loads(latency_engine.with_suffix(".json").read_text())["baked_dims"] == ["input_ids[0]=1", "attention_mask[0]=1"]
    assert {r["batch"] for r in latency_rows} == {1}  # b2/b3 were cut to the profile's max


def test_engine_for_a_profile_beyond_the_reference_uses_tiled_cases(sweep, work):
    spec = sweep.models["tiny_text"]
    src = work / "text.engine-src.onnx"
    engine = work / "text.offline.onnx"
    rows = build_engine("onnxruntime", src, engine, engine.with_suffix(".json"), spec, DYNAMIC, "fp32",
                        [sweep.profile("offline")], {}, work / "tiny_text.npz", TOL)
    assert {r["batch"] for r in rows} == {128} and {r["case"] for r in rows} >= {"b3->b128"} and all(r["passed"] for r in rows)
    tiled = Reference(work / "tiny_text.npz").cases_within(128, 128, 128, ("opt",))[0]
    assert np.array_equal(tiled.inputs["input_ids"][3], tiled.inputs["input_ids"][0])  # b3 repeated along the batch


def test_benchmark_rows_and_profile_refusal(sweep, text_engines):
    engine, _ = text_engines["small"]
    settings = TimingSettings(warmup_s=0.01, min_duration_s=0.05, min_iterations=5)
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [1, 4], settings, input_sets=2)
    assert list(frame.columns) == bench_columns() and list(frame["batch"]) == [1, 4]
    assert (frame["iterations"] >= 5).all() and (frame["latency_ms_min"] <= frame["latency_ms_median"]).all()
    assert json.loads(frame["input_shapes"][1]) == {"attention_mask": [4, 8], "input_ids": [4, 8]}
    with pytest.raises(ProfileError, match=r"batch 8 is outside profile 'small' \(batch 1..4\)"):
        benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [8], settings, input_sets=1)


def test_onnx_runtime_uses_the_cores_the_job_owns(sweep, work, text_engines, monkeypatch):
    """Snakemake's OMP_NUM_THREADS, which ONNX Runtime itself ignores: one-core checks each running a pool as wide as
    the machine slowed a sweep's checks 2.5x on the 16-core GPU box."""
    from trtpipe.ort_session import session

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert session(str(work / "text.engine-src.onnx")).get_session_options().intra_op_num_threads == 1
    engine, _ = text_engines["small"]
    settings = TimingSettings(warmup_s=0.01, min_duration_s=0.02, min_iterations=2)
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_text"], [1], settings, input_sets=1)
    assert list(frame["threads"]) == [1]  # the row says what ran


def test_cli_reports_a_batch_outside_the_profile_in_one_line(sweep, text_engines, tmp_path):
    engine, _ = text_engines["small"]
    proc = subprocess.run(
        [sys.executable, "-m", "trtpipe", "benchmark", "--backend", "onnxruntime", "--model-spec", sweep.models["tiny_text"].to_json(),
         "--engine", str(engine), "--sidecar", str(engine.with_suffix(".json")), "--batches", "2,64",
         "--out", str(tmp_path / "b.csv"), "--log", str(tmp_path / "b.log")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "workflow")},
    )
    assert proc.returncode == 2 and not (tmp_path / "b.csv").exists()
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "batch 64 is outside profile 'small' (batch 1..4); fix:" in proc.stderr
    assert "batch 64 is outside profile" in (tmp_path / "b.log").read_text()


def test_a_benchmark_loads_beside_other_work_but_times_alone(sweep, text_engines, tmp_path, monkeypatch):
    """Another job on the machine (this test, holding it shared): the benchmark command loads its engine, then waits
    to time until that job is done, and never times beside it."""
    import time

    from trtpipe import machine

    engine, _ = text_engines["small"]
    monkeypatch.setenv("TRTPIPE_GPU_LOCK_DIR", str(tmp_path))
    log = tmp_path / "b.log"
    with machine.working():
        proc = subprocess.Popen(
            [sys.executable, "-m", "trtpipe", "benchmark", "--backend", "onnxruntime", "--model-spec",
             sweep.models["tiny_text"].to_json(), "--engine", str(engine), "--sidecar", str(engine.with_suffix(".json")),
             "--batches", "1", "--settings", json.dumps({"warmup_s": 0.01, "min_duration_s": 0.05, "min_iterations": 5}),
             "--out", str(tmp_path / "b.csv"), "--log", str(log)],
            env={**os.environ, "PYTHONPATH": str(REPO / "workflow")},
        )
        deadline = time.monotonic() + 120
        while "waiting for the other trtpipe jobs on this machine" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, "the benchmark never waited for the machine"
            time.sleep(0.2)
        assert proc.poll() is None and not (tmp_path / "b.csv").exists()
    assert proc.wait(timeout=120) == 0
    assert (tmp_path / "b.csv").read_text().count("\n") == 2  # header and the batch-1 row
    assert "timing alone on this machine (waited" in log.read_text()


def test_a_benchmark_refuses_an_engine_built_on_another_machine(sweep, text_engines, tmp_path):
    """On a cluster a benchmark may land on another node type than its engine's build: one sentence, no numbers."""
    engine, _ = text_engines["small"]
    sidecar = json.loads(engine.with_suffix(".json").read_text())
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({**sidecar, "device": "AMD EPYC 9654 96-Core Processor"}))
    proc = subprocess.run(
        [sys.executable, "-m", "trtpipe", "benchmark", "--backend", "onnxruntime", "--model-spec", sweep.models["tiny_text"].to_json(),
         "--engine", str(engine), "--sidecar", str(foreign), "--batches", "1", "--out", str(tmp_path / "b.csv"),
         "--log", str(tmp_path / "b.log")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "workflow")},
    )
    assert proc.returncode == 2 and not (tmp_path / "b.csv").exists()
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert (f"was built for ONNX Runtime {sidecar['backend_version']} on AMD EPYC 9654 96-Core Processor, but this machine "
            f"has ONNX Runtime {sidecar['backend_version']} on {sidecar['device']}; fix: rebuild the engine here") in proc.stderr


def test_a_batch_hard_coded_outside_the_sweeps_batches_is_named_by_the_reference(tmp_path):
    """x.view(2, -1) with a sweep that never runs batch 2: PyTorch fails at every batch the reference tries, and the
    reference says the batch is hard-coded (it runs at 2), not that the inputs' shape is wrong."""
    spec = validate(tiny_config(bad=BAD_MODEL)).models["bad"]
    with pytest.raises(DynamicExportError) as info:
        make_reference(spec, None, [1, 4], tmp_path / "bad.npz")
    message = str(info.value)
    assert ("axis 0 (batch) is hard-coded in the model — PyTorch's forward() runs at batch 2 but fails at every batch "
            "this sweep runs (1, 4)") in message
    assert "fix: derive it from the tensor" in message and "inputs shape and dtype" not in message
    assert not (tmp_path / "bad.npz").exists()
