"""The scripts users run (scripts/), run as users run them. The one-off investigation scripts live under docs/
beside the figures they produced and are not exercised here."""

import importlib.util
import re
import subprocess
import sys

import pytest
import yaml

from helpers import REPO

SCRIPTS = REPO / "scripts"


def run_script(name, *args, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def test_scripts_holds_only_the_scripts_users_run():
    assert sorted(p.name for p in SCRIPTS.iterdir()) == sorted([
        "acceptance_tensorrt.py", "dag_scale.py", "gpu_run.sh", "harness_fidelity.py", "job_times.py",
        "make_tiny_bert.py", "ort_cuda_probe.py",
        # the GPU sweep-time driver and the fidelity script it and gpu_run.sh call, like harness_fidelity.py
        "gpu_sweep_time.sh", "beside_compile_fidelity.py"])


def test_dag_scale_dry_runs_copies_of_the_default_config_with_its_budgets_and_traffic():
    """The default config's objectives and traffic name its zoo models; the copies carry them over (the script once
    exited 1 here, its copies having other names)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert config["objectives"] and config["traffic"]  # what the copies must carry over
    proc = run_script("dag_scale.py", "--models", 3)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.fullmatch(r"3 models: (\d+) jobs, dry run [0-9.]+ s \(rc 0\)", proc.stdout.strip().splitlines()[-1])
    assert match and int(match.group(1)) > 3, proc.stdout


def test_make_tiny_bert_writes_what_the_hf_config_loads(tmp_path):
    proc = run_script("make_tiny_bert.py", tmp_path / "bert-tiny")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "bert-tiny" / "config.json").is_file() and (tmp_path / "bert-tiny" / "model.safetensors").is_file()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed: run it for real")
def test_acceptance_tensorrt_without_tensorrt_fails_in_one_sentence():
    proc = run_script("acceptance_tensorrt.py", timeout=120)
    assert proc.returncode == 1
    assert proc.stdout.strip().startswith("FAIL: import tensorrt failed") and "install TensorRT" in proc.stdout


def test_job_times_reads_a_snakemake_log(tmp_path):
    log = tmp_path / "sweep.log"
    log.write_text(
        "[Sat Dec  5 03:00:00 2026]\nlocalrule export:\n    jobid: 3\n"
        "[Sat Dec  5 03:00:05 2026]\nFinished jobid: 3 (Rule: export)\n")
    proc = run_script("job_times.py", log)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["rule,wildcards,start_s,end_s,seconds", "export,,0.0,5.0,5.0"]
