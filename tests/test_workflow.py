"""The real workflow, run by Snakemake's CLI in a temporary copy: artifacts, staleness, faults, interrupts.

Staleness is judged by Snakemake's own dry run (`snakemake -n`), as a user would see it.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from helpers import SNAKEMAKE, SR_MODEL, TEXT_MODEL, USER_MODEL, copy_workflow, dry_run_jobs, dry_run_outputs, snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow

BENCH_REQUIRED = [
    "model", "variant", "precision", "backend", "profile", "batch", "latency_ms_min", "latency_ms_mean",
    "latency_ms_median", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99", "latency_ms_max",
    "throughput_samples_s", "cv", "iterations", "device", "backend_version", "git_rev",
]
ACCURACY_REQUIRED = ["model", "stage", "variant", "precision", "backend", "profile", "batch", "max_abs_err",
                     "max_rel_err", "passed"]
TS_MODEL = {"checkpoint": "model.ts", "inputs": [{"name": "x", "shape": [3, 8, 8]}]}


def e2e_config():
    text = {**TEXT_MODEL, "precisions": ["fp32", "fp16", "int8"]}
    user = {**USER_MODEL, "checkpoint": "user.pt", "precisions": ["fp32", "int8"], "calibration_data": "calib.npz"}
    config = tiny_config(tiny_text=text, tiny_sr=SR_MODEL, user=user, scripted=TS_MODEL)
    config["objectives"] = {"tiny_text": {"p99_latency_ms": 1000.0}}
    config["traffic"] = {"tiny_text": {"batch": {1: 3, 2: 1}}}
    return config


def _write_user_checkpoints(workdir: Path) -> None:
    import sys

    sys.path.insert(0, str(workdir / "tests" / "data"))
    import user_models

    torch.manual_seed(1)
    torch.save(user_models.features_and_category().state_dict(), workdir / "user.pt")
    rng = np.random.default_rng(5)
    np.savez(workdir / "calib.npz", features=rng.standard_normal((24, 6)).astype(np.float32), category=rng.integers(0, 5, 24))
    conv = user_models.tiny_conv().eval()
    torch.jit.trace(conv, torch.randn(2, 3, 8, 8)).save(str(workdir / "model.ts"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One full run of a four-model sweep; later tests only dry-run against it."""
    workdir = copy_workflow(tmp_path_factory.mktemp("wf"), e2e_config())
    _write_user_checkpoints(workdir)
    proc = snakemake(workdir, "--cores", "2")
    return workdir, proc


def test_end_to_end_artifacts(run):
    workdir, proc = run
    results = workdir / "results"
    assert "trtpipe: done. Report:" in proc.stdout + proc.stderr
    dims = lambda p: [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in onnx.load(p).graph.input]  # noqa: E731
    assert dims(results / "tiny_text/onnx/dynamic.onnx") == [["batch", "seq"], ["batch", "seq"]]
    assert dims(results / "tiny_sr/onnx/dynamic.sim.onnx") == [["batch", 3, "height", "width"]]
    assert dims(results / "user/onnx/static-b2.onnx") == [[2, 6], [2]]
    assert dims(results / "scripted/onnx/dynamic.onnx")[0][0] == "batch"

    bench = pd.read_csv(results / "summary/benchmarks.csv")
    assert set(BENCH_REQUIRED) <= set(bench.columns)
    # every engine at every configured batch inside its profile, opt included: static b1, b2; latency b1; small b1, b2;
    # for each precision of each model (tiny_text 3, user 2, the others fp32)
    assert len(bench) == 5 * (3 + 2 + 1 + 1)
    assert set(bench[bench["model"] == "tiny_text"]["precision"]) == {"fp32", "fp16", "int8"}
    assert set(bench[bench["profile"] == "small"]["batch"]) == {1, 2}
    assert (bench["latency_ms_median"] > 0).all() and (bench["iterations"] >= 3).all()
    assert set(bench["variant"]) == {"static-b1", "static-b2", "dynamic"}

    accuracy = pd.read_csv(results / "summary/accuracy.csv")
    assert set(ACCURACY_REQUIRED) <= set(accuracy.columns)
    assert accuracy["passed"].all()
    assert set(accuracy["stage"]) == {"export", "simplify", "precision", "engine"}
    int8_user = json.loads((results / "user/onnx/dynamic.sim.int8.json").read_text())
    # the 24 calibration_data samples: half calibrate, the held-out half judges int8 against fp32 (never shared)
    assert int8_user["calibration"] == {"source": "data", "path": "calib.npz", "samples": 12,
                                   "evaluation_samples": 12, "labelled": False}
    # ModelOpt 0.47's int8 PTQ leaves this Gemm-only MLP unquantized; the stats say so instead of hiding it
    assert int8_user["quantize_nodes"] > 0 or "nothing in this graph was quantized" in " ".join(int8_user["warnings"])
    int8_text = json.loads((results / "tiny_text/onnx/static-b2.sim.int8.json").read_text())
    assert int8_text["calibration"]["source"] == "random" and int8_text["passed"]
    assert set(accuracy["model"]) == {"tiny_text", "tiny_sr", "user", "scripted"}
    sr_dims = accuracy[(accuracy["model"] == "tiny_sr") & (accuracy["stage"] == "engine") & (accuracy["profile"] == "small")]
    assert {"b1-dmin", "b1-dmax"} <= set(sr_dims["case"])  # the dynamic height/width were checked at min and max

    sidecar = json.loads((results / "tiny_text/engines/onnxruntime/dynamic.fp32.small.json").read_text())
    assert sidecar["profiles"][0]["shapes"]["input_ids"] == [[1, 4], [2, 8], [4, 16]]
    html = (results / "summary/report.html").read_text()
    for needle in ("tiny_text", "tiny_sr", "user", "scripted", "Batch scaling", "Static vs dynamic", "Accuracy against PyTorch",
                   "Precision conversions", "WARNING: tiny_text (int8) were calibrated on seeded random inputs"):
        assert needle in html
    for model in ("tiny_text", "tiny_sr", "user", "scripted"):
        assert (results / f"summary/plots/{model}.png").read_bytes()[:4] == b"\x89PNG"
        assert (results / f"summary/plots/{model}.pareto.png").read_bytes()[:4] == b"\x89PNG"
    # issue 15: raw timings beside every benchmark CSV, memory columns, the Pareto plot, the budget and traffic sections
    from trtpipe.timings import read_timings, timings_path

    for csv in results.glob("*/bench/*/*.csv"):
        raw = read_timings(timings_path(csv))
        frame = pd.read_csv(csv)
        assert sorted(raw) == sorted(frame["batch"]) and all(raw[b]["latency_ms"].size == n for b, n in zip(frame["batch"], frame["iterations"]))
    assert {"device_mem_peak_bytes", "engine_bytes", "host_rss_peak_bytes"} <= set(bench.columns)
    assert (bench["engine_bytes"] > 0).all() and (bench["host_rss_peak_bytes"] > 0).all()
    assert bench["device_mem_peak_bytes"].isna().all()  # CPU rows: no device memory
    md = (results / "summary/report.md").read_text()
    for needle in ("device_mem_mib", "engine_mib", "host_rss_mib", "### Within your budget", "plots/tiny_text.pareto.png",
                   "### For your traffic", "Against the baseline"):
        assert (needle in md) == (needle != "Against the baseline"), needle
    assert not list(results.rglob("*.tmp"))


def test_second_run_does_nothing(run):
    workdir, _ = run
    assert dry_run_jobs(workdir) == {}


def _dry_run_with(workdir: Path, config: dict):
    write_config(workdir, config)
    try:
        return dry_run_jobs(workdir), dry_run_outputs(workdir)
    finally:
        write_config(workdir, e2e_config())


def test_changing_a_profile_rebuilds_only_its_engines_benchmarks_and_summary(run):
    workdir, _ = run
    config = e2e_config()
    config["profiles"]["small"] = {"min": 1, "opt": 3, "max": 8}
    jobs, outputs = _dry_run_with(workdir, config)
    assert jobs == {"engine_onnxruntime": 7, "benchmark_onnxruntime": 7, "summary": 1, "all": 1}
    stage_outputs = [o for o in outputs if "/summary/" not in o]
    assert stage_outputs and all("/dynamic." in o and ".small." in o for o in stage_outputs)


def test_changing_one_models_input_shape_reruns_only_that_model(run):
    workdir, _ = run
    config = e2e_config()
    for inp in config["models"]["tiny_text"]["inputs"]:
        inp["shape"] = [12]
    jobs, outputs = _dry_run_with(workdir, config)
    assert jobs["checkpoint"] == 1  # seeded weights do: their BatchNorm statistics are measured on seeded inputs
    assert jobs["export"] == 3 and jobs["reference"] == 1 and jobs["summary"] == 1
    assert all(o.startswith("results/tiny_text/") or o.startswith("results/summary/") for o in outputs)


def test_editing_one_stages_code_reruns_that_stage_and_what_follows(run):
    workdir, _ = run
    source = workdir / "workflow/trtpipe/simplify.py"
    original = source.read_text()
    source.write_text(original + "\n# an edit\n")
    try:
        jobs = dry_run_jobs(workdir)
    finally:
        source.write_text(original)
    # 4 engines (static b1, b2; latency; small) per model and precision: tiny_text 3, user 2, the others 1
    assert jobs == {"simplify": 12, "precision": 9, "engine_onnxruntime": 28, "benchmark_onnxruntime": 28, "summary": 1, "all": 1}
    assert dry_run_jobs(workdir) == {}  # digests are of content: restoring the file restores the verdict


FAULTY = {
    "good": TEXT_MODEL,
    "missing_checkpoint": {**USER_MODEL, "checkpoint": "missing.pt"},
    "wrong_name": {"factory": "tests/data/user_models.py:tiny_conv", "inputs": [{"name": "img", "shape": [3, 8, 8]}]},
    "wrong_shape": {"factory": "tests/data/user_models.py:tiny_conv", "inputs": [{"name": "x", "shape": [4, 8, 8]}]},
    "hardcoded_batch": {"factory": "tests/data/user_models.py:hardcoded_batch", "inputs": [{"name": "x", "shape": [3, 4, 4]}]},
    "unexportable": {"factory": "tests/data/user_models.py:unexportable", "inputs": [{"name": "x", "shape": [4, 4]}]},
}


def test_bad_models_fail_with_one_sentence_and_the_rest_finishes(tmp_path):
    config = tiny_config(**FAULTY)
    config["batch_sizes"] = [2]  # keep the failing models' static exports alive
    workdir = copy_workflow(tmp_path, config)
    proc = snakemake(workdir, "--cores", "2", "--keep-going", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    expected = {
        "missing_checkpoint": "model missing_checkpoint: checkpoint missing.pt not found; fix: correct models.missing_checkpoint.checkpoint",
        "wrong_name": "input 'img' is not an argument of forward(x); fix: rename models.wrong_name.inputs",
        "wrong_shape": "forward() failed on inputs [x 1x4x8x8 float32]",
        # x.view(2, -1) traced at the default batch 5: PyTorch itself fails there (the check-stage form of this
        # trap, traced at 2, is in tests/test_stages.py)
        "hardcoded_batch": "axis 0 (batch) is hard-coded in the model — PyTorch's forward() runs at batch 2 but fails at "
                           "the traced batch 5 (export.dummy_batch)",
        "unexportable": "linalg_svd cannot be converted by the dynamo exporter at opset 18; fix:",
    }
    for model, sentence in expected.items():
        assert sentence in out, f"{model}: {sentence!r} not in output"
    results = workdir / "results"
    good = sorted(p.name for p in (results / "good/bench/onnxruntime").glob("*.csv"))
    assert good == ["dynamic.fp32.latency.csv", "dynamic.fp32.small.csv", "static-b2.fp32.static.csv"]
    assert not (results / "hardcoded_batch/onnx/dynamic.check.json").exists()  # failed jobs leave no output
    assert not (results / "hardcoded_batch/onnx/dynamic.sim.onnx").exists()
    assert not list(results.rglob("*.tmp"))


def test_a_failed_model_still_gets_a_report_with_its_failures(tmp_path):
    """A good model and two broken ones under --keep-going: the report of what finished appears, with the
    failures listed and the broken models marked; the run exits non-zero. bf16 (no ONNX Runtime CPU kernels) is
    named at DAG time and the report says truthfully that nothing bf16 was made."""
    config = tiny_config(good=TEXT_MODEL, nan=BROKEN["nan"], branchy=BROKEN["branchy"])
    config.update(static_batch_sizes=[], sweep={"profiles": ["latency"], "precisions": ["fp32", "bf16"]})
    workdir = copy_workflow(tmp_path, config)
    proc = snakemake(workdir, "--cores", "2", "--keep-going", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert out.count("trtpipe: not built: bf16 engines on onnxruntime for branchy, good, nan (ONNX Runtime "
                     "(onnxruntime) has no bf16 kernels); nothing bf16 is built at all") == 1
    results = workdir / "results"
    report = (results / "summary/partial/report.md").read_text()
    assert not (results / "summary/report.md").exists()  # never where the summary rule writes
    overview, failures = report.split("## Overview")[1].split("## Failures")
    failures = failures.split("## Model")[0]
    assert "| good | ok |" in overview and "all stages pass" in overview
    assert "| nan | FAILED: reference; 4 job(s) not run |" in overview
    assert "| branchy | FAILED: export dynamic; 4 job(s) not run |" in overview
    assert overview.count("all stages pass") == 1
    assert ("| nan | reference |  | model nan: PyTorch itself returns 4 NaN of 4 values in output 'output' at batch 1 (b1)"
            in failures and "| results/nan/logs/reference.log |" in failures)
    assert "| branchy | export | dynamic | model branchy: ONNX export (dynamic) failed: forward() makes a Python decision" in failures
    assert "| results/branchy/logs/export.dynamic.log |" in failures
    assert "not run: they need an output of a job that did not finish" in failures
    for sentence in ("nan reference: model nan: PyTorch itself returns", "branchy export dynamic: model branchy: ONNX export"):
        assert sentence in out  # the console lists them too, once the run has stopped
    assert "no bf16 precision ONNX was made either" in report and "still in accuracy.csv" not in report
    assert set(pd.read_csv(results / "summary/partial/benchmarks.csv")["model"]) == {"good"}
    assert (results / "summary/partial/plots/good.png").exists() and (results / "summary/partial/report.html").exists()
    assert not (results / "nan/reference.npz").exists() and not (results / "branchy/onnx/dynamic.onnx").exists()
    assert not list(results.rglob("*.tmp"))
    # the next run still runs the summary (and retries the failed jobs)
    assert dry_run_jobs(workdir, "--keep-going").get("summary") == 1
    # the manual fallback says the same without Snakemake
    by_hand = subprocess.run([sys.executable, "-m", "trtpipe", "summarize", "--config", "config.yaml", "--out-dir", "again"],
                             cwd=workdir, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": "workflow"})
    assert by_hand.returncode == 0, by_hand.stderr
    again = (workdir / "again/report.md").read_text()
    assert "| nan | FAILED: reference; 4 job(s) not run |" in again and again.count("all stages pass") == 1


BROKEN = {
    "nan": {"factory": "tests/data/user_models.py:nan_output", "inputs": [{"name": "x", "shape": [8]}]},
    "branchy": {"factory": "tests/data/user_models.py:data_dependent", "inputs": [{"name": "x", "shape": [8]}]},
}


def test_a_yaml_syntax_error_in_config_yaml_names_the_line(tmp_path):
    workdir = copy_workflow(tmp_path, tiny_config())
    (workdir / "config.yaml").write_text((workdir / "config.yaml").read_text().replace("profiles:\n", "profiles: [\n", 1))
    proc = snakemake(workdir, "-n", "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config.yaml: not valid YAML at line " in out and "fix: correct the syntax there" in out


def test_the_failure_read_back_knows_every_job_snakemake_plans(tmp_path):
    """trtpipe/layout.py's expected jobs are the rules' jobs: the dry run of a fresh sweep lists exactly their outputs."""
    from trtpipe.config import validate
    from trtpipe.layout import expected_jobs

    config = e2e_config()
    config["sweep"]["backends"] = ["onnxruntime", "torch_eager"]
    config["torch"] = {"device": "cpu"}
    workdir = copy_workflow(tmp_path, config)
    _write_user_checkpoints(workdir)
    planned = {o.strip() for line in dry_run_outputs(workdir) for o in line.split(", ")}
    planned = {o for o in planned if not o.startswith("results/summary/")}
    with pytest.MonkeyPatch.context() as patch:  # factory paths are relative to the workflow's folder
        patch.chdir(workdir)
        expected = {o for job in expected_jobs(validate(config)) for o in job.outputs}
    assert planned == expected


def test_config_mistake_stops_before_any_job(tmp_path):
    config = tiny_config()
    config["sweep"]["profiles"] = ["latency", "nightly"]
    workdir = copy_workflow(tmp_path, config)
    proc = snakemake(workdir, "--cores", "2", check=False)
    assert proc.returncode != 0
    assert "sweep.profiles names 'nightly', which is not a profile; fix: use one of" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


def test_interrupted_run_resumes_without_redoing_finished_work(tmp_path):
    workdir = copy_workflow(tmp_path, tiny_config())
    # Its output goes to a file (shown if the test fails); its own session, so that Ctrl-C can reach the whole process
    # group, as a terminal sends it.
    log = open(tmp_path / "snakemake.log", "w+")
    # SIGINT at its default, as under a terminal: a child inherits an ignored SIGINT (the full suite's pytest process
    # had one: Snakemake then ran to the end, rc 0), and Python installs no KeyboardInterrupt handler over it
    proc = subprocess.Popen([*SNAKEMAKE, "--cores", "2"], cwd=workdir, stdout=log, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    engines = workdir / "results/tiny_text/engines/onnxruntime"
    deadline = time.time() + 600
    while not list(engines.glob("*.json")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C to Snakemake and its running jobs alike: their outputs are deleted
    proc.wait(timeout=300)
    log.seek(0)
    assert proc.returncode != 0, log.read()[-4000:]
    log.close()
    assert not list((workdir / "results").rglob("*.tmp"))
    remaining = dry_run_jobs(workdir)
    assert "reference" not in remaining and "checkpoint" not in remaining and remaining.get("summary") == 1
    snakemake(workdir, "--cores", "2")
    assert dry_run_jobs(workdir) == {}
    assert pd.read_csv(workdir / "results/summary/accuracy.csv")["passed"].all()


def test_a_configfile_replaces_the_default_sweep(tmp_path):
    """`--configfile other.yaml` must not inherit config.yaml's models (Snakemake would merge them)."""
    import yaml

    workdir = copy_workflow(tmp_path, tiny_config())  # config.yaml: tiny_text
    other = tiny_config(only_user=USER_MODEL)
    (workdir / "other.yaml").write_text(yaml.safe_dump(other))
    outputs = dry_run_outputs(workdir, "--configfile", "other.yaml")
    assert outputs and all(o.startswith("results/only_user/") or o.startswith("results/summary/") for o in outputs)


def test_torch_baseline_beside_onnxruntime_in_one_report(tmp_path):
    """The PyTorch backend as a sweep sees it: on the CPU here (eager), kept to its own profiles."""
    config = tiny_config(tiny_sr=SR_MODEL)
    config["sweep"]["backends"] = ["onnxruntime", "torch_eager"]
    config["static_batch_sizes"] = [2]
    config["torch"] = {"device": "cpu", "profiles": ["small"]}
    config["onnxruntime"] = {"profiles": ["latency"]}
    workdir = copy_workflow(tmp_path, config)
    snakemake(workdir, "--cores", "2")
    results = workdir / "results"
    bench = pd.read_csv(results / "summary/benchmarks.csv")
    engines = {(r.backend, r.variant, r.profile) for r in bench.itertuples()}
    assert engines == {("onnxruntime", "dynamic", "latency"), ("torch_eager", "dynamic", "small")}
    torch_rows = bench[bench["backend"] == "torch_eager"]
    assert list(torch_rows["batch"]) == [1, 2] and (torch_rows["latency_ms_median"] > 0).all()
    flops = json.loads((results / "tiny_sr/flops.json").read_text())["flops_per_sample"]
    expected = flops * bench["throughput_samples_s"] / 1e12
    assert np.allclose(bench["achieved_tflops"], expected) and bench["efficiency"].isna().all()  # no peak for a CPU
    accuracy = pd.read_csv(results / "summary/accuracy.csv")
    assert accuracy[accuracy["backend"] == "torch_eager"]["passed"].all()
    assert dry_run_jobs(workdir) == {}


def test_gpu_sweep_example_and_slurm_profile_dry_run_on_a_cpu_machine():
    """The GPU sweep examples validate and build their DAG here; the SLURM profile is read by the real plugin
    (tests/test_slurm.py submits to a real SLURM)."""
    from helpers import REPO

    zoo = dry_run_jobs(REPO, "--configfile", "config/sweep-gpu-zoo.yaml")
    assert zoo["engine_tensorrt"] == 6 * 3 * (1 + 3)  # 6 models x fp32/fp16/int8 x (static-b1 + 3 profiles)
    assert zoo["engine_torch"] == 6 * 2 * (1 + 3)  # fp32/fp16
    gpu = dry_run_jobs(REPO, "--configfile", "config/gpu-torchvision.yaml")
    assert gpu["benchmark_torch"] == 3 * (3 + 1) and gpu["engine_onnxruntime"] == 2
    proc = snakemake(REPO, "-n", "--workflow-profile", "profiles/slurm", "--configfile", "config/sweep-gpu-zoo.yaml")
    out = proc.stdout + proc.stderr
    assert "rule engine_tensorrt" in out and "runtime=120" in out and "cpus_per_task=2" in out  # the profile's resources
    # on a cluster a GPU benchmark's `gpu` unit still asks SLURM for the GPU
    bench_jobs = [job for job in out.split("rule ")[1:] if job.startswith("benchmark_torch")]
    assert bench_jobs and all("bench=0, gpu=1" in job for job in bench_jobs)
    # a GPU benchmark loads on one core beside other jobs; a CPU benchmark takes every core and the bench unit
    proc = snakemake(REPO, "-n", "--cores", "4", "--configfile", "config/gpu-compile-once.yaml")
    jobs = proc.stdout.split("rule ")[1:]
    gpu_bench = [job for job in jobs if job.startswith("benchmark_torch")]
    cpu_bench = [job for job in jobs if job.startswith("benchmark_onnxruntime:")]
    assert gpu_bench and all("threads:" not in job and "bench=0" in job for job in gpu_bench)  # one thread
    assert cpu_bench and all("threads: 4" in job and "bench=1, gpu=0" in job for job in cpu_bench)


def test_a_seeded_batchnorm_model_gets_its_statistics_through_the_checkpoint_rule(tmp_path):
    """The rule hands the stage the model's input shapes (a first version gave it none, and every BatchNorm model's
    checkpoint job failed on the H100); the reference made from that checkpoint depends on its input."""
    from trtpipe.reference import Reference

    config = tiny_config(resnet={"factory": "trtpipe.zoo:tiny_resnet", "inputs": [{"name": "image", "shape": [3, 16, 16]}]})
    workdir = copy_workflow(tmp_path, config)
    snakemake(workdir, "--cores", "2", "results/resnet/reference.npz")
    assert "statistics of 9 BatchNorm layers measured" in (workdir / "results/resnet/logs/checkpoint.log").read_text()
    assert Reference(workdir / "results/resnet/reference.npz").input_independent == {}


def test_a_cpu_torch_compile_engine_is_compiled_for_its_benchmarks_cores(tmp_path):
    """On the CPU, Inductor writes C++ kernels for torch's thread count: an engine job compiling on its one core made
    every benchmark compile again (2 cache misses, and a warning to rebuild the engine)."""
    config = tiny_config(tiny_text=TEXT_MODEL)
    config["sweep"].update(backends=["torch_compile"], precisions=["fp32"])
    config["static_batch_sizes"] = []
    config["torch"] = {"device": "cpu", "profiles": ["small"]}
    workdir = copy_workflow(tmp_path, config)
    snakemake(workdir, "--cores", "2")
    bench = pd.read_csv(workdir / "results/summary/benchmarks.csv")
    assert len(bench) and (bench["graphs_compiled"] == 2).all() and (bench["inductor_cache_misses"] == 0).all()
