"""The TensorRT engine and benchmark stages run through the whole workflow against the strict doubles
(tests/doubles; see tests/test_tensorrt_contract.py for the rules they enforce), with the fake trtexec on
PATH, and without TensorRT. Nothing here runs real TensorRT."""

import json
import os

import pandas as pd
import pytest

from helpers import TEXT_MODEL, copy_workflow, snakemake, tiny_config

pytestmark = pytest.mark.workflow


def trt_config(combine: bool, precisions=("fp32", "fp16", "int8")) -> dict:
    config = tiny_config(tiny_text={**TEXT_MODEL, "precisions": list(precisions)})
    config["sweep"]["backends"] = ["onnxruntime", "tensorrt"]
    config["tensorrt"] = {"combine_profiles": combine, "workspace_gib": 1, "timing_cache_dir": "results/timing_cache"}
    return config


@pytest.mark.parametrize("version, combine, tf32", [("10.13.0", False, False), ("11.4.1", True, True)])
def test_sweep_with_tensorrt_double(tmp_path, version, combine, tf32):
    precisions = ("fp32", "tf32", "fp16", "int8") if tf32 else ("fp32", "fp16", "int8")
    workdir = copy_workflow(tmp_path, trt_config(combine, precisions))
    env = {"PYTHONPATH": str(workdir / "tests/doubles"), "TRTPIPE_TEST_DEVICE": "fake_cuda", "TRT_DOUBLE_VERSION": version,
           "PATH": f"{workdir / 'tests/doubles/bin'}{os.pathsep}{os.environ['PATH']}",  # the fake trtexec
           "TRTEXEC_DOUBLE_LOG": str(tmp_path / "trtexec.jsonl")}
    snakemake(workdir, "--cores", "2", env=env)
    results = workdir / "results"
    engines = sorted(p.name for p in (results / "tiny_text/engines/tensorrt").glob("*.engine"))
    if combine:
        assert "dynamic.fp16.combined.engine" in engines and not any(".small." in e for e in engines)
    else:
        assert "dynamic.fp16.small.engine" in engines and "dynamic.int8.latency.engine" in engines
    sidecar = json.loads((results / "tiny_text/engines/tensorrt/static-b2.int8.static.json").read_text())
    assert sidecar["backend_version"] == version and sidecar["strongly_typed"] and sidecar["device"] == "Fake GPU (tests)"
    assert not json.loads((results / "tiny_text/engines/tensorrt/static-b1.fp32.static.json").read_text())["tf32"]
    if tf32:  # built from the fp32 ONNX with TF32 allowed (there is no .sim.tf32.onnx)
        tf32_sidecar = json.loads((results / "tiny_text/engines/tensorrt/static-b1.tf32.static.json").read_text())
        assert tf32_sidecar["tf32"] and tf32_sidecar["source"].endswith("static-b1.sim.onnx")
        assert not list((results / "tiny_text/onnx").glob("*.tf32.onnx"))
    bench = pd.read_csv(results / "summary/benchmarks.csv")
    trt_rows = bench[bench["backend"] == "tensorrt"]
    ort_rows = bench[bench["backend"] == "onnxruntime"]
    # the same engines and batches as ONNX Runtime: static b1, b2; latency b1; small b1, b2 per precision
    assert len(ort_rows) == 15 and len(trt_rows) == 15 + 5 * tf32
    assert set(trt_rows["precision"]) == set(precisions) and (trt_rows["compute_ms_median"] > 0).all()
    assert trt_rows["transfers_included"].all() and not trt_rows["cuda_graph"].any()
    assert set(trt_rows[trt_rows["variant"] == "dynamic"]["profile"]) == {"latency", "small"}
    # trtexec cross-checked every row, every profile (--useProfile), timing what we timed on this version, one
    # inference in flight as our harness
    assert (trt_rows["trtexec_compute_ms_median"] > 0).all()
    runs = [json.loads(line) for line in (tmp_path / "trtexec.jsonl").read_text().splitlines()]
    assert len(runs) == len(trt_rows) and all(r["transfers"] and not r["cuda_graph"] and r["in_flight"] == 1 for r in runs)
    assert {r["profile"] for r in runs} == ({0, 1} if combine else {0})
    accuracy = pd.read_csv(results / "summary/accuracy.csv")
    engines_acc = accuracy[(accuracy["stage"] == "engine") & (accuracy["backend"] == "tensorrt")]
    assert engines_acc["passed"].all() and set(engines_acc["precision"]) == set(precisions)
    assert "tensorrt" in (results / "summary/report.html").read_text()
    assert list((results / "timing_cache").glob(f"*trt{version}.cache"))


def test_the_acceptance_script_reports_every_check_and_fails_on_a_planted_build_failure(tmp_path):
    """scripts/acceptance_tensorrt.py against the doubles, one engine build made to fail (TRT_DOUBLE_FAIL_BUILD): the
    sweep runs on (--keep-going), the failed job is a FAIL line with its sentence, the other checks still run, the
    report is written, and the exit status is 1. trtexec on PATH is of another TensorRT: the cross-check is skipped,
    with a sentence in every row and a SKIP line."""
    import shutil
    import subprocess
    import sys

    import yaml

    from helpers import REPO

    # fp32 only: the precision stage's int8 job rewrites its input .sim.onnx (ModelOpt), which would date the fp32
    # engines built before it as stale in the report's read-back (a separate finding, left to that stage)
    workdir = copy_workflow(tmp_path / "wf", trt_config(False, ("fp32",)))
    (workdir / "scripts").mkdir()
    shutil.copy2(REPO / "scripts/acceptance_tensorrt.py", workdir / "scripts")
    config = workdir / "acceptance.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load((workdir / "config.yaml").read_text()), "results": "results-acc"}))
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(workdir / "tests/doubles"),
           "TRTPIPE_TEST_DEVICE": "fake_cuda", "TRT_DOUBLE_FAIL_BUILD": "tiny_text/onnx/static-b1.sim.onnx",
           "TRT_DOUBLE_VERSION": "10.13.0", "TRTEXEC_DOUBLE_VERSION": "11.1.0",  # a trtexec of another TensorRT
           "PATH": f"{workdir / 'tests/doubles/bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "scripts/acceptance_tensorrt.py", "--cores", "2", "--config", str(config)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.split(" ", 1)[0] in ("PASS", "FAIL", "SKIP")]
    print("\n".join(lines + [proc.stdout.rstrip().splitlines()[-1], f"exit status {proc.returncode}"]))  # pytest -rP
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    failed = [line for line in lines if line.startswith("FAIL job: tiny_text engine tensorrt")]
    assert len(failed) == 1 and "tensorrt static-b1 fp32 static" in failed[0] and "could not build the engine" in failed[0]
    assert any(line.startswith("FAIL sweep:") for line in lines)
    for name in ("engine identity", "tf32 flag", "fp32 parity", "timing rows", "report"):
        assert any(line.startswith(f"PASS {name}:") for line in lines), (name, lines)
    assert any(line.startswith("SKIP trtexec:") and "is TensorRT 11.1.0 and the engines TensorRT 10.13.0" in line
               for line in lines)
    bench = pd.read_csv(workdir / "results-acc/summary/partial/benchmarks.csv")
    assert bench[bench["backend"] == "tensorrt"]["warnings"].str.contains("no trtexec cross-check").all()
    assert (workdir / "results-acc/summary/partial/report.html").exists()  # the report of what finished
    assert proc.stdout.rstrip().endswith("check(s) failed")


def test_without_tensorrt_only_its_jobs_fail_and_say_why(tmp_path):
    workdir = copy_workflow(tmp_path, trt_config(False))
    proc = snakemake(workdir, "--cores", "2", "--keep-going", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "TensorRT is not installed on this machine (import tensorrt failed); fix:" in out
    ort = sorted(p.name for p in (workdir / "results/tiny_text/bench/onnxruntime").glob("*.csv"))
    assert len(ort) == 12  # 4 engines x 3 precisions: the ONNX Runtime half of the sweep completed
    assert not list((workdir / "results").rglob("*.engine"))
