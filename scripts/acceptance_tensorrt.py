#!/usr/bin/env python3
"""Acceptance check of the TensorRT backend on a real GPU box (it cannot run where trtpipe is developed).

    .venv/bin/python scripts/acceptance_tensorrt.py [--cores 4]

Runs config/tensorrt-acceptance.yaml through Snakemake, then checks what the contract tests could only
simulate: engines built by this machine's TensorRT for this GPU, fp32 engines built with TF32 cleared
(TensorRT enables it by default) and matching PyTorch, tf32 engines built with it allowed, GPU timing
rows, and trtexec's median compute time beside ours for every profile (--useProfile), with the trtexec
flags of this TensorRT major version (11.0 changed trtexec's defaults). Exit status 0 means every check
passed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "tensorrt-acceptance.yaml"


def fail(message: str) -> None:
    print(f"FAIL: {message}")
    sys.exit(1)


def preflight() -> tuple[str, str]:
    try:
        import tensorrt
    except ImportError:
        fail("import tensorrt failed: install TensorRT 10.x or 11.x into this virtualenv (pip install tensorrt)")
    import torch

    if not torch.cuda.is_available():
        fail("PyTorch sees no CUDA GPU: install the CUDA build of torch (make setup TORCH='torch==<version>')")
    return tensorrt.__version__, torch.cuda.get_device_name(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=4)
    args = parser.parse_args()
    trt_version, gpu = preflight()
    print(f"TensorRT {trt_version} on {gpu}")
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--resources", "gpu=1",
                    "--configfile", str(CONFIG)], cwd=REPO, check=True)

    results = REPO / yaml.safe_load(CONFIG.read_text())["results"]
    sidecars = sorted(results.glob("*/engines/tensorrt/*.json"))
    if not sidecars:
        fail("no TensorRT engine was built")
    for path in sidecars:
        sidecar = json.loads(path.read_text())
        if sidecar["backend_version"] != trt_version or sidecar["device"] != gpu or not sidecar["strongly_typed"]:
            fail(f"{path}: built by TensorRT {sidecar['backend_version']} on {sidecar['device']}, expected {trt_version} on {gpu}")
        if sidecar["precision"] in ("fp32", "tf32") and sidecar.get("tf32") != (sidecar["precision"] == "tf32"):
            fail(f"{path}: a {sidecar['precision']} engine built with TF32 {'off' if not sidecar.get('tf32') else 'allowed'}")
    print(f"ok: {len(sidecars)} strongly typed engines built by TensorRT {trt_version} on {gpu}; fp32 with TF32 off, "
          f"tf32 with TF32 allowed")

    accuracy = pd.read_csv(results / "summary" / "accuracy.csv")
    engines = accuracy[(accuracy["stage"] == "engine") & (accuracy["backend"] == "tensorrt")]
    failed = engines[~engines["passed"]]
    print(engines.groupby("precision").agg(max_abs_err=("max_abs_err", "max"), worst_cosine=("cosine", "min"),
                                           passed=("passed", "all")).to_string())
    if not failed[failed["precision"] == "fp32"].empty:
        fail("an fp32 TensorRT engine disagrees with PyTorch:\n" + failed.head().to_string())

    bench = pd.read_csv(results / "summary" / "benchmarks.csv")
    trt = bench[bench["backend"] == "tensorrt"]
    if trt.empty or not (trt["compute_ms_median"] > 0).all():
        fail("TensorRT benchmark rows are missing or have no GPU compute time")
    table = trt[["model", "variant", "precision", "profile", "batch", "compute_ms_median", "trtexec_compute_ms_median",
                 "latency_ms_median", "throughput_samples_s", "warnings"]]
    print(table.to_string(index=False))
    compared = trt.dropna(subset=["trtexec_compute_ms_median"])
    if shutil.which("trtexec") is None:
        print("note: trtexec is not on PATH, so there is no cross-check of the compute times")
    elif len(compared) < len(trt):
        fail(f"trtexec gave no time for {len(trt) - len(compared)} of {len(trt)} rows (every profile is cross-checked "
             f"with --useProfile); see the benchmark logs for its output")
    else:
        sys.path.insert(0, str(REPO / "workflow"))
        from trtpipe.backends.tensorrt import trtexec_flags

        major = int(trt_version.split(".")[0])
        for transfers, graph in sorted(set(zip(trt["transfers_included"].astype(bool), trt["cuda_graph"].astype(bool)))):
            print(f"trtexec {trt_version} ran with {' '.join(trtexec_flags(major, transfers, graph)) or 'its defaults'} "
                  f"for rows with transfers={transfers}, cuda_graph={graph}")
        ratio = compared["compute_ms_median"] / compared["trtexec_compute_ms_median"]
        print(f"ours / trtexec median compute: min {ratio.min():.3f}, median {ratio.median():.3f}, max {ratio.max():.3f}")
        if not ratio.between(0.8, 1.25).all():
            fail("our compute time and trtexec's disagree by more than 25% somewhere; see the table above")
    if not failed.empty:
        print(f"note: {len(failed)} reduced-precision engine rows miss their tolerance; the report excludes them")
    print(f"PASS. Report: {results / 'summary' / 'report.html'}")


if __name__ == "__main__":
    main()
