"""The PyTorch backends. Eager mode runs on the CPU here for real; the GPU modes run where a GPU exists
(marked `gpu`, skipped with the reason elsewhere; scripts/gpu_run.sh runs them on the lent H100/H200)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import subprocess
import sys

from helpers import SR_MODEL, TEXT_MODEL, tiny_config
from trtpipe import gpu as gpu_module
from trtpipe.benchmark import benchmark_engine
from trtpipe.config import validate
from trtpipe.engine import build_engine
from trtpipe.backends.pytorch import read_engine, write_engine
from trtpipe.errors import BackendUnavailable, DynamicExportError, ProfileError
from trtpipe.models import write_seeded_checkpoint
from trtpipe.reference import make_reference
from trtpipe.timing import TimingSettings
from trtpipe.spec import DYNAMIC

REPO = Path(__file__).resolve().parents[1]
HARDCODED = {"factory": "tests/data/user_models.py:hardcoded_batch", "inputs": [{"name": "x", "shape": [3, 4, 4]}]}
LOOP = {"factory": "tests/data/user_models.py:per_sample_loop", "inputs": [{"name": "x", "shape": [3, 4, 4]}]}
SETTINGS = TimingSettings(warmup_s=0.01, min_duration_s=0.05, min_iterations=5)
NO_GPU = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, repo_cwd):
    root = tmp_path_factory.mktemp("torch")
    config = tiny_config(tiny_sr=SR_MODEL, tiny_text=TEXT_MODEL, hardcoded=HARDCODED, loop=LOOP)
    config["export"] = {"dummy_batch": 2}  # the batch the hard-coded model runs at
    sweep = validate(config)
    for name, spec in sweep.models.items():
        write_seeded_checkpoint(spec, root / f"{name}.pt")
        make_reference(spec, str(root / f"{name}.pt"), sweep.reference_batches(name), root / f"{name}.npz", root / f"{name}.flops.json")
    return sweep, root


def _engine(sweep, root, backend, model, precision, profile, options, tmp_path):
    engine = tmp_path / f"{backend}.{precision}.torch"
    rows = build_engine(backend, root / f"{model}.pt", engine, engine.with_suffix(".json"), sweep.models[model], DYNAMIC,
                        precision, [sweep.profile(profile)], options, root / f"{model}.npz", sweep.tolerance(precision))
    return engine, rows


def test_flops_are_counted_once_per_model(setup):
    sweep, root = setup
    flops = json.loads((root / "tiny_sr.flops.json").read_text())
    conv_macs = (3 * 8 * 25 + 8 * 4 * 9 + 4 * 12 * 9) * 8 * 8  # the three convolutions at 8x8, per sample
    assert flops["flops_per_sample"] == 2 * conv_macs and flops["counted_at"] == "batch 1, low_res 1x3x8x8"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_eager_on_the_cpu_matches_pytorch_and_times(setup, tmp_path, precision):
    sweep, root = setup
    options = {"device": "cpu", "channels_last": True}
    engine, rows = _engine(sweep, root, "torch_eager", "tiny_sr", precision, "small", options, tmp_path)
    config, compiled = read_engine(engine)
    assert compiled is None  # eager: nothing compiled to carry
    assert config["precision"] == precision and config["dynamic_axes"] and not config["compiled"]
    assert {r["case"] for r in rows} >= {"b1-dmin", "b1-dmax"} and all(r["passed"] for r in rows)
    if precision == "bf16":
        assert max(r["max_abs_err"] for r in rows) > 1e-4  # really bf16, not fp32 relabelled
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_sr"], [1, 4], SETTINGS, 2,
                             backend_options=options)
    assert list(frame["batch"]) == [1, 4] and (frame["latency_ms_median"] > 0).all()
    assert frame["backend"].eq("torch_eager").all() and not frame["transfers_included"].any()
    with pytest.raises(ProfileError, match="outside profile 'small'"):
        benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_sr"], [8], SETTINGS, 1, backend_options=options)


def test_integer_inputs_stay_integers(setup, tmp_path):
    sweep, root = setup
    _, rows = _engine(sweep, root, "torch_eager", "tiny_text", "bf16", "small", {"device": "cpu"}, tmp_path)
    assert all(r["passed"] for r in rows)


def test_graph_modes_need_a_gpu_when_the_device_is_cpu(setup, tmp_path):
    sweep, root = setup
    for backend in ("torch_compile_graph", "torch_eager_graph"):
        with pytest.raises(BackendUnavailable, match=f"{backend} needs a CUDA GPU here"):
            _engine(sweep, root, backend, "tiny_sr", "fp32", "small", {"device": "cpu"}, tmp_path)


def _benchmark_in_a_new_process(sweep, engine, batches):
    """`trtpipe benchmark` as the workflow runs it: a process that compiled nothing before."""
    out = engine.with_suffix(".csv")
    subprocess.run([sys.executable, "-m", "trtpipe", "benchmark", "--model-spec", sweep.models["tiny_text"].to_json(),
                    "--backend", "torch_compile", "--engine", str(engine), "--sidecar", str(engine.with_suffix(".json")),
                    "--batches", ",".join(map(str, batches)), "--settings", json.dumps(SETTINGS.__dict__),
                    "--backend-options", json.dumps({"device": "cpu"}), "--out", str(out)],
                   check=True, env={**os.environ, "PYTHONPATH": str(REPO / "workflow")}, cwd=REPO)
    import pandas as pd

    return pd.read_csv(out, keep_default_na=False)


def test_compiled_once_in_the_engine_job_and_only_loaded_by_the_benchmark(setup, tmp_path, monkeypatch):
    """torch.compile on the CPU: the engine job compiles over the profile (1..4: one graph for 2..4, one for 1),
    the benchmark job in a fresh process loads that code (no Inductor cache miss) and compiles no more graphs."""
    import torch._inductor.config as inductor_config

    sweep, root = setup
    # Snakemake jobs of one thread, the engine job here and the benchmark in its own process: C++ kernels are
    # compiled for torch's thread count, which the build sets from the job's
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(inductor_config, "compile_threads", None)  # Inductor's own choice: every core (restored after)
    options = {"device": "cpu", "cache_dir": str(tmp_path / "cache")}
    saved = torch.get_num_threads()
    try:
        engine, rows = _engine(sweep, root, "torch_compile", "tiny_text", "fp32", "small", options, tmp_path)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(saved)  # the build set this process's to the job's
    assert all(r["passed"] for r in rows) and {r["batch"] for r in rows} == {1, 2, 3}
    assert inductor_config.compile_threads == 1 and threads == 1  # the job's one core, no pool of compile workers
    sidecar = json.loads(engine.with_suffix(".json").read_text())
    config, compiled = read_engine(engine)
    assert config["dynamic_axes"] == {"input_ids": {"0": [1, 4], "1": [4, 16]}, "attention_mask": {"0": [1, 4], "1": [4, 16]}}
    assert sidecar["graphs_compiled"] == 2 and compiled and sidecar["compiled_bytes"] == len(compiled)
    assert 0 < sidecar["compile_seconds"] <= sidecar["build_seconds_total"]

    frame = _benchmark_in_a_new_process(sweep, engine, [1, 3, 4])
    assert list(frame["graphs_compiled"]) == [2, 2, 2] and list(frame["inductor_cache_misses"]) == [0, 0, 0]
    assert (frame["compile_s"] > 0).all() and frame["warnings"].eq("").all(), frame["warnings"].tolist()
    assert frame["engine_build_s"].eq(sidecar["build_seconds_total"]).all()


def test_a_benchmark_that_compiles_says_so_in_its_rows(setup, tmp_path):
    """An engine without its compiled code and without its dynamic axes (as engines were before they were
    compiled once): loading compiles from scratch, and batch 3 (not a shape it was warmed at) compiles again."""
    sweep, root = setup
    options = {"device": "cpu", "cache_dir": str(tmp_path / "cache")}
    engine, _ = _engine(sweep, root, "torch_compile", "tiny_text", "fp32", "small", options, tmp_path)
    config, _ = read_engine(engine)
    write_engine(engine, {**config, "dynamic_axes": {}})
    sidecar = json.loads(engine.with_suffix(".json").read_text())  # as built so: its size is the one recorded
    engine.with_suffix(".json").write_text(json.dumps({**sidecar, "engine_bytes": engine.stat().st_size}))
    frame = _benchmark_in_a_new_process(sweep, engine, [3])
    (warnings,) = frame["warnings"]
    assert frame["inductor_cache_misses"][0] > 0 and "compiled here:" in warnings
    assert "recompiled: 1 graph(s) compiled while timing this batch" in warnings, warnings


def test_a_hard_coded_batch_is_refused_before_the_torch_path_builds(setup, tmp_path):
    """x.view(2, -1): the ONNX check's sentence (axis, batch, cause, fix), from the reference, for every torch mode."""
    sweep, root = setup
    for backend in ("torch_eager", "torch_compile"):
        with pytest.raises(DynamicExportError) as info:
            _engine(sweep, root, backend, "hardcoded", "fp32", "small", {"device": "cpu"}, tmp_path)
        message = str(info.value)
        assert message.startswith(f"{tmp_path / backend}.fp32.torch: axis 0 (batch) is hard-coded in the model — "
                                  f"PyTorch's forward() runs at batch 2 (b2) but fails at batch 1 (b1): RuntimeError: ")
        assert "x.view(2, -1)" in message and "fix: derive it from the tensor" in message and "\n" not in message
    assert not list(tmp_path.glob("*.torch*"))  # nothing half-built left behind


def test_a_batch_that_torch_compile_fixes_is_refused_with_the_same_sentence(setup, tmp_path):
    """A Python loop over the batch runs at every batch in PyTorch; torch.compile, told the batch is dynamic,
    unrolls it and finds the batch fixed."""
    sweep, root = setup
    with pytest.raises(DynamicExportError) as info:
        _engine(sweep, root, "torch_compile", "loop", "fp32", "small", {"device": "cpu", "cache_dir": str(tmp_path)}, tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path}/torch_compile.fp32.torch: input 'x' axis 0 (batch) is fixed to 2 when "
                              f"torch.compile traces forward() at batch 2"), message
    assert "so this model is not dynamic" in message and "fix: derive such sizes from the tensor" in message
    assert not list(tmp_path.glob("*.torch*"))


def _claim_as_another_job(queue):
    """A second GPU job: its own process, started with Snakemake's environment (not the first job's)."""
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    with gpu_module.claim_gpu() as index:
        queue.put((index, os.environ["CUDA_VISIBLE_DEVICES"]))


def test_each_gpu_job_claims_its_own_gpu(monkeypatch, tmp_path):
    import multiprocessing

    monkeypatch.delenv("TRTPIPE_TEST_DEVICE", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("TRTPIPE_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(gpu_module, "_gpus", lambda: [("0", "GPU-aaa"), ("1", "GPU-bbb")])
    fork = multiprocessing.get_context("fork")  # the child keeps the patched GPU list
    with gpu_module.claim_gpu() as first:
        assert first == "0" and os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-aaa"
        queue = fork.Queue()
        child = fork.Process(target=_claim_as_another_job, args=(queue,))
        child.start()
        assert queue.get(timeout=30) == ("1", "GPU-bbb")  # a job running at the same time gets the other GPU
        child.join(timeout=30)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # restored when the job's claim ends
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # a scheduler (SLURM, say) allowed only GPU 1
    with gpu_module.claim_gpu() as only:
        assert only == "1" and os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-bbb"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"


def _claim_in_a_child(queue, shared):
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    with gpu_module.claim_gpu(poll_s=0.1, shared=shared) as index:
        queue.put(("claimed", index))


def test_builds_that_time_nothing_share_the_gpu_but_never_with_a_timing(monkeypatch, tmp_path):
    """torch.compile and ONNX Runtime CUDA engine jobs claim the GPU shared: two at once; a timing (exclusive) waits for them."""
    import multiprocessing
    import queue as queue_module

    from trtpipe.backends import registry

    assert registry.get("torch_compile_graph").build_shares_gpu({"compile_mode": "default"})
    assert not registry.get("torch_compile_graph").build_shares_gpu({"compile_mode": "max-autotune"})
    assert not registry.get("tensorrt").build_shares_gpu({}) and not registry.get("onnxruntime_tensorrt").build_shares_gpu({})
    assert registry.get("onnxruntime_cuda").build_shares_gpu({}) and registry.get("onnxruntime_cuda_graph").build_shares_gpu({})
    assert registry.get("torch_compile").builds_on_bench_cores({"device": "cpu"})  # C++ kernels for a thread count
    assert not registry.get("torch_compile").builds_on_bench_cores({"device": "cuda"})
    assert not registry.get("torch_eager").builds_on_bench_cores({"device": "cpu"})
    monkeypatch.delenv("TRTPIPE_TEST_DEVICE", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("TRTPIPE_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(gpu_module, "_gpus", lambda: [("0", "GPU-aaa")])
    fork = multiprocessing.get_context("fork")
    with gpu_module.claim_gpu(shared=True):
        shared_q, exclusive_q = fork.Queue(), fork.Queue()
        other_build = fork.Process(target=_claim_in_a_child, args=(shared_q, True))
        timing = fork.Process(target=_claim_in_a_child, args=(exclusive_q, False))
        other_build.start()
        assert shared_q.get(timeout=30) == ("claimed", "0")  # a second build runs beside the first
        other_build.join(timeout=30)
        timing.start()
        with pytest.raises(queue_module.Empty):
            exclusive_q.get(timeout=1.5)  # the timing waits while a build holds the GPU
    assert exclusive_q.get(timeout=30) == ("claimed", "0")  # and gets it once the build is done
    timing.join(timeout=30)


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU, reason="needs a CUDA GPU (this machine has none; see scripts/gpu_run.sh)")
@pytest.mark.parametrize("backend", ["torch_eager", "torch_compile", "torch_eager_graph", "torch_compile_graph"])
def test_gpu_modes_match_pytorch_and_time_with_cuda_events(setup, tmp_path, backend):
    sweep, root = setup
    options = {"device": "cuda", "include_transfers": True, "cache_dir": str(tmp_path / "cache")}
    engine, rows = _engine(sweep, root, backend, "tiny_sr", "fp16", "small", options, tmp_path)
    assert all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]
    frame = benchmark_engine(engine, engine.with_suffix(".json"), sweep.models["tiny_sr"], [1, 4], SETTINGS, 2,
                             backend_options=options)
    assert (frame["compute_ms_median"] > 0).all() and frame["transfers_included"].all()
    assert frame["cuda_graph"].eq(backend.endswith("_graph")).all()
    assert np.isfinite(frame["sm_clock_mhz"]).all() or frame["driver"].eq("").all()
