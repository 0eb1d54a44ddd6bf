"""Helpers for tests that run the real workflow in a temporary copy."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
WORKFLOW_PARTS = ("Snakefile", "workflow", "profiles", "envs")

# Models and a sweep small enough for tests (the zoo's tiny models and one user factory).
FAST_BENCHMARK = {"warmup_s": 0.01, "min_duration_s": 0.05, "min_iterations": 3, "input_sets": 2}

TEXT_MODEL = {
    "factory": "trtpipe.zoo:tiny_text",
    "factory_kwargs": {"vocab_size": 50, "dim": 16},
    "inputs": [
        {"name": "input_ids", "shape": [8], "dtype": "int64", "range": [0, 50], "dynamic": {1: {"min": 4, "max": 16, "name": "seq"}}},
        {"name": "attention_mask", "shape": [8], "dtype": "int64", "range": [0, 2], "dynamic": {1: {"min": 4, "max": 16, "name": "seq"}}},
    ],
}
SR_MODEL = {
    "factory": "trtpipe.zoo:tiny_sr",
    "factory_kwargs": {"features": 8},
    "inputs": [{"name": "low_res", "shape": [3, 8, 8], "dynamic": {2: {"min": 4, "max": 16, "name": "height"}, 3: {"min": 4, "max": 16, "name": "width"}}}],
}
USER_MODEL = {
    "factory": "tests/data/user_models.py:features_and_category",
    "inputs": [
        {"name": "features", "shape": [6]},
        {"name": "category", "shape": [], "dtype": "int64", "range": [0, 5]},
    ],
}

# Seeded, its head is all zeros: 'logits' is the same for every input, so parity against it proves nothing.
ZERO_HEAD_MODEL = {
    "factory": "tests/data/user_models.py:zero_head",
    "inputs": [{"name": "x", "shape": [8]}],
    "outputs": ["features", "logits", "label"],
}


def tiny_config(**models) -> dict:
    """A sweep small enough to run end to end in a test: two batch sizes, two profiles."""
    return copy.deepcopy({
        "batch_sizes": [1, 2],
        "profiles": {"small": {"min": 1, "opt": 2, "max": 4}},
        "sweep": {"profiles": ["latency", "small"]},
        "benchmark": FAST_BENCHMARK,
        "models": models or {"tiny_text": TEXT_MODEL},
    })


def copy_workflow(dest: Path, config: dict) -> Path:
    """A runnable copy of the workflow in `dest` with `config` as its config.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / part)
    for folder in ("data", "doubles"):
        shutil.copytree(REPO / "tests" / folder, dest / "tests" / folder, ignore=shutil.ignore_patterns("__pycache__"))
    write_config(dest, config)
    return dest


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1200, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **(env or {})}
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def dry_run_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Job counts per rule from `snakemake -n` (Snakemake's own staleness verdict)."""
    proc = snakemake(workdir, "-n", "--cores", "2", *args)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        jobs[m.group(1)] = int(m.group(2))
    jobs.pop("total", None)
    return jobs


def dry_run_outputs(workdir: Path, *args: str) -> list[str]:
    """The output files of every job a dry run would execute."""
    proc = snakemake(workdir, "-n", "--cores", "2", *args)
    return re.findall(r"^\s+output: (.+)$", proc.stdout + proc.stderr, flags=re.M)
