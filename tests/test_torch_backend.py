"""The PyTorch backends. Eager mode runs on the CPU here for real; the GPU modes run where a GPU exists
(marked `gpu`, skipped with the reason elsewhere; scripts/gpu_run.sh runs them on the lent H100/H200)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import SR_MODEL, TEXT_MODEL, tiny_config
from trtpipe import gpu as gpu_module
from trtpipe.benchmark import benchmark_engine
from trtpipe.config import validate
from trtpipe.engine import build_engine
from trtpipe.errors import BackendUnavailable, ProfileError
from trtpipe.models import write_seeded_checkpoint
from trtpipe.reference import make_reference
from trtpipe.timing import TimingSettings
from trtpipe.spec import DYNAMIC

REPO = Path(__file__).resolve().parents[1]
SETTINGS = TimingSettings(warmup_s=0.01, min_duration_s=0.05, min_iterations=5)
NO_GPU = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, repo_cwd):
    root = tmp_path_factory.mktemp("torch")
    sweep = validate(tiny_config(tiny_sr=SR_MODEL, tiny_text=TEXT_MODEL))
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
    config = json.loads(engine.read_text())
    assert config["precision"] == precision and config["dynamic"] and not config["compiled"]
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


def test_compile_and_graph_modes_need_a_gpu_when_the_device_is_cpu(setup, tmp_path):
    sweep, root = setup
    for backend in ("torch_compile_graph", "torch_eager_graph"):
        with pytest.raises(BackendUnavailable, match=f"{backend} needs a CUDA GPU here"):
            _engine(sweep, root, backend, "tiny_sr", "fp32", "small", {"device": "cpu"}, tmp_path)


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
