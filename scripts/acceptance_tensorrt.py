#!/usr/bin/env python3
"""Acceptance check of the TensorRT backend on a real GPU box (it cannot run where trtpipe is developed).

    .venv/bin/python scripts/acceptance_tensorrt.py [--cores 4] [--config config/tensorrt-acceptance.yaml]

Runs the acceptance sweep through Snakemake with --keep-going (a failed build costs only what depends on it;
the Snakefile then writes the report over what finished), then checks what the contract tests could only
simulate: engines built by this machine's TensorRT for this GPU, fp32 engines built with TF32 cleared
(TensorRT enables it by default) and matching PyTorch, tf32 engines built with it allowed, GPU timing rows,
and trtexec's median compute time beside ours for every profile when the trtexec on PATH is of the same
TensorRT as the Python module (an engine loads only in the TensorRT that built it). Prints one line per
check, PASS / FAIL / SKIP with its sentence, and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "tensorrt-acceptance.yaml"
sys.path.insert(0, str(REPO / "workflow"))

AGREEMENT = (0.8, 1.25)  # ours / trtexec's median compute time: a tolerance of this check, not a measured agreement


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def line(self, status: str, name: str, sentence: str) -> None:
        print(f"{status} {name}: {sentence}", flush=True)
        self.failed += status == "FAIL"

    def check(self, name: str, ok: bool, passed: str, failed: str) -> bool:
        self.line("PASS" if ok else "FAIL", name, passed if ok else failed)
        return ok


def preflight(checks: Checks) -> tuple[str, str] | None:
    try:
        import tensorrt
    except ImportError:
        checks.line("FAIL", "tensorrt", "import tensorrt failed; fix: install TensorRT 10.x or 11.x into this virtualenv "
                                        "(pip install tensorrt)")
        return None
    from trtpipe.gpu import get_device

    try:
        gpu = get_device().info["name"]
    except Exception as exc:  # noqa: BLE001 - no CUDA: say so and stop
        checks.line("FAIL", "gpu", f"no CUDA GPU is usable here ({exc}); fix: install the CUDA build of torch "
                                   f"(make setup TORCH='torch==<version>')")
        return None
    checks.line("PASS", "tensorrt", f"TensorRT {tensorrt.__version__} on {gpu}")
    return tensorrt.__version__, gpu


def run_sweep(checks: Checks, config: Path, cores: int, sweep) -> Path:
    """The sweep with --keep-going; one FAIL line per job that failed, with its sentence (trtpipe.failures reads
    them back from the job logs, as the report's Failures table does)."""
    from trtpipe import failures
    from trtpipe.layout import Layout

    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "--resources", "gpu=1",
                           "--keep-going", "--configfile", str(config)], cwd=REPO)
    rows = failures.failure_rows(failures.outcomes(sweep))
    for r in rows:
        label = " ".join(x for x in (r["model"], r["stage"], r["engine"]) if x)
        checks.line("FAIL", "job", f"{label}: {r['reason']}" + (f" (log: {r['log']})" if r["log"] else ""))
    finished = checks.check("sweep", proc.returncode == 0 and not rows, "every job of the sweep finished",
                            f"Snakemake exited with {proc.returncode} and {len(rows)} job(s) or group(s) did not "
                            f"finish (above)")
    summary = Path(Layout(sweep.results).summary_dir)  # after a failure, the report of what finished is beside it
    return summary if finished else failures.partial_dir(summary)


def check_engines(checks: Checks, results: Path, trt_version: str, gpu: str) -> None:
    sidecars = sorted(results.glob("*/engines/tensorrt/*.json"))
    if not checks.check("engines", bool(sidecars), f"{len(sidecars)} TensorRT engine(s) built",
                        "no TensorRT engine was built"):
        return
    wrong, tf32 = [], []
    for path in sidecars:
        sidecar = json.loads(path.read_text())
        if sidecar["backend_version"] != trt_version or sidecar["device"] != gpu or not sidecar["strongly_typed"]:
            wrong.append(f"{path} was built by TensorRT {sidecar['backend_version']} on {sidecar['device']} "
                         f"(strongly typed: {sidecar['strongly_typed']})")
        if sidecar["precision"] in ("fp32", "tf32") and sidecar.get("tf32") != (sidecar["precision"] == "tf32"):
            tf32.append(f"{path}: a {sidecar['precision']} engine built with TF32 "
                        f"{'allowed' if sidecar.get('tf32') else 'off'}")
    checks.check("engine identity", not wrong, f"strongly typed, built by TensorRT {trt_version} on {gpu}",
                 f"expected TensorRT {trt_version} on {gpu}: " + "; ".join(wrong))
    checks.check("tf32 flag", not tf32, "fp32 engines with TF32 off, tf32 engines with TF32 allowed", "; ".join(tf32))


def check_accuracy(checks: Checks, summary: Path) -> None:
    if not checks.check("accuracy table", (summary / "accuracy.csv").exists(), f"{summary / 'accuracy.csv'} written",
                        f"{summary / 'accuracy.csv'} is missing"):
        return
    accuracy = pd.read_csv(summary / "accuracy.csv")
    engines = accuracy[(accuracy["stage"] == "engine") & (accuracy["backend"] == "tensorrt")]
    if engines.empty:
        checks.line("FAIL", "fp32 parity", "no TensorRT engine has accuracy rows")
        return
    print(engines.groupby("precision").agg(max_abs_err=("max_abs_err", "max"), worst_cosine=("cosine", "min"),
                                           passed=("passed", "all")).to_string())
    failed = engines[~engines["passed"].astype(bool)]
    fp32 = failed[failed["precision"] == "fp32"]
    if (engines["precision"] == "fp32").any():
        checks.check("fp32 parity", fp32.empty, "every fp32 TensorRT engine matches PyTorch",
                     f"{len(fp32)} fp32 TensorRT row(s) disagree with PyTorch: " + "; ".join(
                         f"{r.model} {r.variant} {r.profile} max abs err {r.max_abs_err:.3g}" for r in fp32.itertuples()))
    else:
        checks.line("FAIL", "fp32 parity", "no fp32 TensorRT engine has accuracy rows (see the failed jobs above)")
    if len(failed) > len(fp32):
        print(f"note: {len(failed) - len(fp32)} reduced-precision engine row(s) miss their tolerance; the report "
              f"excludes them")


def check_timing(checks: Checks, summary: Path, trt_version: str) -> None:
    if not checks.check("benchmark table", (summary / "benchmarks.csv").exists(), f"{summary / 'benchmarks.csv'} written",
                        f"{summary / 'benchmarks.csv'} is missing"):
        return
    bench = pd.read_csv(summary / "benchmarks.csv")
    trt = bench[bench["backend"] == "tensorrt"]
    if not checks.check("timing rows", not trt.empty and bool((trt["compute_ms_median"] > 0).all()),
                        f"{len(trt)} TensorRT row(s) with a GPU compute time",
                        "TensorRT benchmark rows are missing or have no GPU compute time"):
        return
    print(trt[["model", "variant", "precision", "profile", "batch", "compute_ms_median", "trtexec_compute_ms_median",
               "latency_ms_median", "throughput_samples_s", "warnings"]].to_string(index=False))
    exe = shutil.which("trtexec")
    if exe is None:
        checks.line("SKIP", "trtexec", "trtexec is not on PATH, so there is no cross-check of the compute times")
        return
    from trtpipe.backends.tensorrt import same_release, trtexec_flags, trtexec_version

    theirs = trtexec_version(exe)
    if theirs is None or not same_release(theirs, trt_version):
        checks.line("SKIP", "trtexec", f"{exe} is TensorRT {theirs or 'of an unknown version'} and the engines TensorRT "
                                       f"{trt_version}, so it cannot load them; put the trtexec of TensorRT "
                                       f"{trt_version} first on PATH for the cross-check")
        return
    compared = trt.dropna(subset=["trtexec_compute_ms_median"])
    if not checks.check("trtexec runs", len(compared) == len(trt), f"trtexec {theirs} timed all {len(trt)} rows",
                        f"trtexec gave no time for {len(trt) - len(compared)} of {len(trt)} rows (every profile is "
                        f"cross-checked with --useProfile); the rows' warnings and the benchmark logs say why"):
        return
    for transfers, graph in sorted(set(zip(trt["transfers_included"].astype(bool), trt["cuda_graph"].astype(bool)))):
        flags = " ".join(trtexec_flags(int(theirs.split(".")[0]), transfers, graph))
        print(f"trtexec {theirs} ran with {flags} for rows with transfers={transfers}, cuda_graph={graph}")
    ratio = compared["compute_ms_median"] / compared["trtexec_compute_ms_median"]
    lo, hi = AGREEMENT
    checks.check("trtexec agreement", bool(ratio.between(lo, hi).all()),
                 f"ours / trtexec's median compute time: min {ratio.min():.3f}, median {ratio.median():.3f}, "
                 f"max {ratio.max():.3f} (within {lo}..{hi})",
                 f"ours / trtexec's median compute time spans {ratio.min():.3f}..{ratio.max():.3f}, outside {lo}..{hi}; "
                 f"see the table above")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--config", type=Path, default=CONFIG, help="the sweep (default: %(default)s)")
    args = parser.parse_args()
    os.chdir(REPO)  # results paths in the config are relative to the workflow
    checks = Checks()
    found = preflight(checks)
    if found is None:
        return 1
    trt_version, gpu = found
    from trtpipe.config import validate

    config = args.config.resolve()
    sweep = validate(yaml.safe_load(config.read_text()), source=str(config))
    summary = REPO / run_sweep(checks, config, args.cores, sweep)
    results = REPO / sweep.results
    check_engines(checks, results, trt_version, gpu)
    check_accuracy(checks, summary)
    check_timing(checks, summary, trt_version)
    report = summary / "report.html"
    checks.check("report", report.exists(), f"{report}", f"{report} was not written; see {summary / 'summary.log'}")
    print(f"{'FAILED' if checks.failed else 'PASSED'}: {checks.failed} check(s) failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
