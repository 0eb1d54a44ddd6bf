"""How a sweep shares the machine (trtpipe/schedule.py and the rules' priority, threads and `compile` resource):
the costliest torch.compile chain starts first, compiles share the build cores, GPU timings keep cores of their
own. The lock side (timings beside confined work) is in tests/test_machine.py."""

import json
import re

import pytest

from helpers import TEXT_MODEL, copy_workflow, snakemake, tiny_config
from trtpipe import schedule

RESNET = {"factory": "trtpipe.zoo:tiny_resnet", "inputs": [{"name": "image", "shape": [3, 16, 16]}]}


def test_timing_cores_are_the_last_cores_and_never_all_of_them():
    assert schedule.timing_cores_of([3, 0, 2, 1], 1) == ([0, 1, 2], [3])
    assert schedule.timing_cores_of([0, 1, 2, 3], 2) == ([0, 1], [2, 3])
    assert schedule.timing_cores_of([0, 1, 2, 3], 0) == ([0, 1, 2, 3], [])
    assert schedule.timing_cores_of([5], 1) == ([5], [])  # nothing else would be left
    assert schedule.build_cores(16, 1) == 15 and schedule.build_cores(1, 1) == 1


def test_compiles_share_the_build_cores():
    assert schedule.compile_threads(15, 8) == 2  # eight compiles on 15 cores: two each (the minimum)
    assert schedule.compile_threads(15, 3) == 5  # three: a third each
    assert schedule.compile_threads(15, 40) == 2  # many: the minimum, and the compile resource queues them
    assert schedule.compile_threads(1, 8) == 1  # never more than the cores
    assert schedule.compile_threads(15, 8, configured=4) == 4 and schedule.compile_threads(3, 8, configured=4) == 3
    assert schedule.compile_slots(15, 2) == 7 and schedule.compile_slots(15, 5) == 3 and schedule.compile_slots(1, 2) == 1


def test_an_earlier_builds_recorded_seconds_are_the_estimate(tmp_path):
    (tmp_path / "dynamic.fp16.dynamic.json").write_text(json.dumps({"build_seconds_total": 80.5}))
    (tmp_path / "dynamic.fp32.dynamic.json").write_text(json.dumps({"build_seconds_total": 120.0}))
    (tmp_path / "broken.json").write_text("{")
    assert schedule.build_cost(tmp_path / "dynamic.fp16.dynamic.json") == (80.5, "recorded")
    # no sidecar of this engine: the longest of the model's other builds on this backend
    assert schedule.build_cost(tmp_path / "static-b1.fp16.static.json") == (120.0, "recorded")
    assert schedule.build_cost(tmp_path / "never-built" / "dynamic.fp16.dynamic.json") == (0.0, "no earlier build")


def _jobs(text):
    """rule name, wildcards and the lines of every job a dry run prints."""
    jobs = []
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", text):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if head:
            model = re.search(r"model=([\w-]+)", block)
            jobs.append((head.group(1), model.group(1) if model else None, block))
    return jobs


def _compile_sweep(tmp_path):
    config = tiny_config(text=TEXT_MODEL, resnet=RESNET)
    config["sweep"].update(backends=["onnxruntime", "torch_compile_graph"], precisions=["fp16"])
    config["static_batch_sizes"] = []
    config["torch"] = {"profiles": ["small"], "precisions": ["fp16"]}
    config["onnxruntime"] = {"profiles": ["latency"], "precisions": ["fp32"]}
    config["sweep"]["precisions"] = ["fp32", "fp16"]
    workdir = copy_workflow(tmp_path, config)
    # an earlier build of the text model's engine took 500 s: its chain goes first
    engines = workdir / "results/text/engines/torch_compile_graph"
    engines.mkdir(parents=True)
    (engines / "dynamic.fp16.small.json").write_text(json.dumps({"build_seconds_total": 500.0}))
    return workdir


@pytest.mark.workflow
def test_the_costliest_compile_chain_gets_the_highest_priority_and_compiles_share_the_cores(tmp_path):
    workdir = _compile_sweep(tmp_path)
    proc = snakemake(workdir, "-n", "--cores", "8")
    out = proc.stdout + proc.stderr
    assert "text: its torch.compile build took 500 s last time" in out and "resnet: its" not in out
    priority = {}
    for rule, model, block in _jobs(proc.stdout):
        found = re.search(r"priority: ([\d.]+)", block)
        priority[(rule, model)] = float(found.group(1)) if found else 0.0
        if rule == "engine_torch":  # two compiles on 8 build cores (this machine keeps none for timing: no GPU)
            assert "threads: 4" in block and "compile=1" in block
    for rule in ("checkpoint", "reference", "engine_torch", "benchmark_torch"):
        assert priority[(rule, "text")] == 500.0
        assert priority[(rule, "resnet")] == 0  # never built: no estimate
    assert priority[("export", "text")] == 0 and priority[("engine_onnxruntime", "resnet")] == 0


@pytest.mark.workflow
def test_snakemake_starts_the_costliest_chain_first(tmp_path):
    """One core, two models: the checkpoint and reference of the model with the costlier compile run first,
    although the other sorts first by name."""
    workdir = _compile_sweep(tmp_path)
    proc = snakemake(workdir, "--cores", "1", "results/resnet/reference.npz", "results/text/reference.npz")
    order = [(rule, model) for rule, model, _ in _jobs(proc.stdout + proc.stderr) if rule in ("checkpoint", "reference")]
    assert order == [("checkpoint", "text"), ("reference", "text"), ("checkpoint", "resnet"), ("reference", "resnet")]
