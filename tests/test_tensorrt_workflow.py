"""The TensorRT engine and benchmark stages run through the whole workflow against the strict doubles
(tests/doubles; see tests/test_tensorrt_contract.py for the rules they enforce), and without TensorRT.
Nothing here runs real TensorRT."""

import json

import pandas as pd
import pytest

from helpers import TEXT_MODEL, copy_workflow, snakemake, tiny_config

pytestmark = pytest.mark.workflow


def trt_config(combine: bool) -> dict:
    config = tiny_config(tiny_text={**TEXT_MODEL, "precisions": ["fp32", "fp16", "int8"]})
    config["sweep"]["backends"] = ["onnxruntime", "tensorrt"]
    config["tensorrt"] = {"combine_profiles": combine, "workspace_gib": 1, "timing_cache_dir": "results/timing_cache"}
    return config


@pytest.mark.parametrize("version, combine", [("10.13.0", False), ("11.4.1", True)])
def test_sweep_with_tensorrt_double(tmp_path, version, combine):
    workdir = copy_workflow(tmp_path, trt_config(combine))
    env = {"PYTHONPATH": str(workdir / "tests/doubles"), "TRTPIPE_TEST_DEVICE": "fake_cuda", "TRT_DOUBLE_VERSION": version}
    snakemake(workdir, "--cores", "2", env=env)
    results = workdir / "results"
    engines = sorted(p.name for p in (results / "tiny_text/engines/tensorrt").glob("*.engine"))
    if combine:
        assert "dynamic.fp16.combined.engine" in engines and not any(".small." in e for e in engines)
    else:
        assert "dynamic.fp16.small.engine" in engines and "dynamic.int8.latency.engine" in engines
    sidecar = json.loads((results / "tiny_text/engines/tensorrt/static-b2.int8.static.json").read_text())
    assert sidecar["backend_version"] == version and sidecar["strongly_typed"] and sidecar["device"] == "Fake GPU (tests)"
    bench = pd.read_csv(results / "summary/benchmarks.csv")
    trt_rows = bench[bench["backend"] == "tensorrt"]
    # the same engines and batches as ONNX Runtime: static b1, b2; latency b1; small b1, b2 per precision
    assert len(trt_rows) == len(bench[bench["backend"] == "onnxruntime"]) == 15
    assert set(trt_rows["precision"]) == {"fp32", "fp16", "int8"} and (trt_rows["compute_ms_median"] > 0).all()
    assert trt_rows["transfers_included"].all() and not trt_rows["cuda_graph"].any()
    assert set(trt_rows[trt_rows["variant"] == "dynamic"]["profile"]) == {"latency", "small"}
    accuracy = pd.read_csv(results / "summary/accuracy.csv")
    engines_acc = accuracy[(accuracy["stage"] == "engine") & (accuracy["backend"] == "tensorrt")]
    assert engines_acc["passed"].all() and set(engines_acc["precision"]) == {"fp32", "fp16", "int8"}
    assert "tensorrt" in (results / "summary/report.html").read_text()
    assert list((results / "timing_cache").glob(f"*trt{version}.cache"))


def test_without_tensorrt_only_its_jobs_fail_and_say_why(tmp_path):
    workdir = copy_workflow(tmp_path, trt_config(False))
    proc = snakemake(workdir, "--cores", "2", "--keep-going", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "TensorRT is not installed on this machine (import tensorrt failed); fix:" in out
    ort = sorted(p.name for p in (workdir / "results/tiny_text/bench/onnxruntime").glob("*.csv"))
    assert len(ort) == 12  # 4 engines x 3 precisions: the ONNX Runtime half of the sweep completed
    assert not list((workdir / "results").rglob("*.engine"))
