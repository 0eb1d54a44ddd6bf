"""The workflow on a real SLURM: a single-node cluster on this machine (tests/local_slurm.py), jobs submitted by
Snakemake's own SLURM executor plugin with the project's profile, exactly as a user's sweep would be.

Where SLURM cannot be started (not installed, not root) these tests skip with the reason; CI sets
TRTPIPE_REQUIRE_SLURM=1 (.ci/run installs slurm-wlm and munge first), which turns the skip into a failure.
"""

import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

import local_slurm
from helpers import SNAKEMAKE, TEXT_MODEL, USER_MODEL, copy_workflow, dry_run_jobs, dry_run_outputs, snakemake, tiny_config, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

# The profile as a user runs it, plus what only a one-node test cluster needs: no accounts (no slurmdbd, so
# job states come from squeue) and status checks every 2 s instead of the plugin's cluster-friendly 40 s.
SLURM = ["--executor", "slurm", "--workflow-profile", "profiles/slurm", "--slurm-no-account",
         "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
         "--seconds-between-status-checks", "2", "--latency-wait", "5"]
BENCH_KEY = ["model", "variant", "precision", "backend", "profile", "batch"]


@pytest.fixture(scope="module")
def cluster():
    try:
        cluster = local_slurm.start()
    except local_slurm.SlurmUnavailable as exc:
        if os.environ.get("TRTPIPE_REQUIRE_SLURM") == "1":
            pytest.fail(f"TRTPIPE_REQUIRE_SLURM=1 but SLURM could not be started: {exc}")
        pytest.skip(f"no local SLURM: {exc}")
    yield cluster
    local_slurm.stop()


def files_under(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*") if p.is_file()}


def test_a_sweep_on_slurm_produces_what_a_local_run_produces(cluster, tmp_path):
    config = tiny_config(tiny_text=TEXT_MODEL, user=USER_MODEL)
    local = copy_workflow(tmp_path / "local", config)
    snakemake(local, "--cores", "2")
    on_slurm = copy_workflow(tmp_path / "slurm", config)
    proc = snakemake(on_slurm, *SLURM)
    out = proc.stdout + proc.stderr

    assert set(files_under(on_slurm / "results")) == set(files_under(local / "results"))
    bench = {d: pd.read_csv(w / "results/summary/benchmarks.csv") for d, w in (("local", local), ("slurm", on_slurm))}
    keys = {d: sorted(map(tuple, b[BENCH_KEY].astype(str).values)) for d, b in bench.items()}
    assert keys["slurm"] == keys["local"] and len(keys["slurm"]) == 2 * 5  # two models, five (engine, batch) each
    assert (bench["slurm"]["latency_ms_median"] > 0).all()
    assert pd.read_csv(on_slurm / "results/summary/accuracy.csv")["passed"].all()
    # every engine was built and timed in one SLURM job: one submitted group per engine, none left ungrouped
    engines = {f"engine-{p.parts[-4]}-{p.parts[-2]}-{p.stem}" for p in (on_slurm / "results").glob("*/engines/*/*.json")}
    groups = set(re.findall(r"submitted with SLURM jobid \d+ \(log: \S+/group_(engine-[^/]+?)_benchmark_", out))
    assert groups == engines and len(engines) == 8 and not re.search(r"logs/slurm/rule_(engine|benchmark)_", out)
    # what the cluster made is current for a local run too: nothing to redo
    assert dry_run_jobs(on_slurm, "--cores", "4") == {}


def _running_job(comment_part: str) -> tuple[str, str] | None:
    """(job id, comment) of a running SLURM job whose comment (the plugin's rule/group name) contains this."""
    rows = subprocess.run(["squeue", "--noheader", "--format=%i|%T|%k"], capture_output=True, text=True).stdout
    for line in rows.splitlines():
        job, state, comment = line.split("|", 2)
        if state == "RUNNING" and comment_part in comment:
            return job, comment
    return None


def test_on_slurm_a_failed_job_names_its_log_and_a_cancelled_job_resumes(cluster, tmp_path):
    config = tiny_config(tiny_text=TEXT_MODEL, missing={**USER_MODEL, "checkpoint": "missing.pt"})
    workdir = copy_workflow(tmp_path, config)
    proc = subprocess.Popen([*SNAKEMAKE, *SLURM], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, running = time.monotonic() + 600, None
    while running is None and proc.poll() is None and time.monotonic() < deadline:
        running = _running_job("engine-tiny_text-onnxruntime-dynamic")  # an engine build and its timing
        time.sleep(0.2)
    assert running, "no engine job of tiny_text was seen running"
    cancelled, comment = running
    engine = re.search(r"dynamic\.fp32\.[a-z]+", comment).group()
    subprocess.run(["scancel", cancelled], check=True)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode != 0

    # the failed jobs: each names its SLURM log, which holds the one-sentence error
    sentence = "model missing: checkpoint missing.pt not found; fix: correct models.missing.checkpoint"
    logs = re.findall(r"log: .*?(\S+/logs/slurm/rule_\w+/missing\S*/\d+\.log)", out)
    assert logs and all(sentence in Path(log).read_text() for log in logs), out[-3000:]
    # the cancelled job is reported; under keep-going all else of tiny_text finished
    group = f"engine-tiny_text-onnxruntime-{engine}"
    assert f"Error in group {group}" in out
    job_log = re.search(rf"\S+/logs/slurm/group_{re.escape(group)}_\S+/{cancelled}\.log", out).group()
    assert f"JOB {cancelled} ON {cluster.node} CANCELLED" in Path(job_log).read_text()
    left = [o for o in dry_run_outputs(workdir) if not o.startswith(("results/missing/", "results/summary/"))]
    assert len(left) == 2 and all("tiny_text/" in o and engine in o for o in left), left  # its engine and benchmark
    assert not list((workdir / "results").rglob("*.tmp"))

    # fixed and run again: only the cancelled engine and the summary run; finished work is kept
    config["models"].pop("missing")
    write_config(workdir, config)
    before = files_under(workdir / "results")
    snakemake(workdir, *SLURM)
    after = files_under(workdir / "results")
    changed = [f for f in before if after.get(f) != before[f]]
    assert changed and all(f.startswith("summary/") or engine in f for f in changed), changed  # (the cancelled job's logs)
    bench = pd.read_csv(workdir / "results/summary/benchmarks.csv")
    assert len(bench) == 5 and set(bench["model"]) == {"tiny_text"}
    assert dry_run_jobs(workdir, "--cores", "2") == {}
