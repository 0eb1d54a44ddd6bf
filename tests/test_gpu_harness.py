"""The GPU timing harness's own logic, on the fake device (host clock): what it times, in which order,
and the warnings it derives. Its fidelity on a real GPU is measured by scripts/harness_fidelity.py."""

import sys
from pathlib import Path

import numpy as np
import pytest

from trtpipe.gpu import GpuMeasurement, GpuStep, measure_gpu, summarize_gpu
from trtpipe.timing import TimingSettings

sys.path.insert(0, str(Path(__file__).resolve().parent / "doubles"))
import fake_cuda  # noqa: E402


def test_each_iteration_uploads_computes_downloads_in_order_and_rotates_sets():
    device = fake_cuda.Device()
    stream = device.stream()
    log = []
    steps = [GpuStep(upload=lambda k=k: log.append(("up", k)), compute=lambda k=k: log.append(("run", k)),
                     download=lambda k=k: log.append(("down", k))) for k in range(2)]
    m = measure_gpu(device, stream, steps, TimingSettings(warmup_s=0, min_duration_s=0, min_iterations=4), transfers=True)
    priming = [("up", 0), ("run", 0), ("up", 1), ("run", 1)]  # inputs in place, lazy initialisation done
    assert log[:4] == priming
    timed = log[4 + 3:]  # after one warm-up iteration
    assert timed == [(kind, k) for k in (0, 1, 0, 1) for kind in ("up", "run", "down")]
    assert len(m.compute_ms) == 4 and (m.latency_ms == m.h2d_ms + m.compute_ms + m.d2h_ms).all()


def test_without_transfers_only_compute_is_timed_and_graphs_replay_compute():
    device = fake_cuda.Device()
    calls = {"up": 0, "run": 0, "down": 0}
    step = GpuStep(upload=lambda: calls.__setitem__("up", calls["up"] + 1),
                   compute=lambda: calls.__setitem__("run", calls["run"] + 1),
                   download=lambda: calls.__setitem__("down", calls["down"] + 1))
    m = measure_gpu(device, device.stream(), [step], TimingSettings(warmup_s=0, min_duration_s=0, min_iterations=5),
                    transfers=False, cuda_graph=True)
    assert calls == {"up": 1, "run": 1 + 1 + 5, "down": 0}  # priming + warm-up + timed, via graph replay
    assert (m.latency_ms == m.compute_ms).all() and m.cuda_graph and not m.transfers


@pytest.mark.parametrize("graph", [False, True])
def test_all_work_is_enqueued_on_the_timed_stream_which_is_set_once_outside_the_timed_loop(graph):
    device = fake_cuda.Device()
    stream = device.stream()
    on_stream = []
    record = lambda: on_stream.append(fake_cuda.CURRENT[0] is stream)  # noqa: E731
    step = GpuStep(upload=record, compute=record, download=record)
    measure_gpu(device, stream, [step], TimingSettings(warmup_s=0, min_duration_s=0, min_iterations=20), cuda_graph=graph)
    assert on_stream and all(on_stream)
    assert device.stream_switches == 1  # entering a stream context per call cost ~15 us of timed host time (H100)
    assert fake_cuda.CURRENT[0] is None  # and the caller's stream is restored


def _m(compute, h2d=0.01, d2h=0.01, enqueue=0.001, transfers=True, graph=False):
    n = len(compute)
    full = lambda v: np.full(n, v)  # noqa: E731
    c = np.asarray(compute, float)
    lat = c + h2d + d2h if transfers else c
    return GpuMeasurement(lat, full(h2d), c, full(d2h), full(enqueue), wall_s=float(lat.sum()) / 1e3, warmup_iterations=1,
                          transfers=transfers, cuda_graph=graph)


def test_trtexec_style_warnings():
    stable = summarize_gpu(_m([1.0, 1.0, 1.0, 1.0]), batch=8, cv_threshold=0.025)
    assert stable["warnings"] == "" and not stable["unstable"] and stable["compute_ms_median"] == 1.0
    launch = summarize_gpu(_m([0.1] * 4, enqueue=0.09), batch=1, cv_threshold=0.025)
    assert "launch-bound" in launch["warnings"] and "try CUDA graphs" in launch["warnings"]
    assert "launch-bound" not in summarize_gpu(_m([0.1] * 4, enqueue=0.09, graph=True), 1, 0.025)["warnings"]
    copies = summarize_gpu(_m([0.5] * 4, h2d=0.4, d2h=0.2), batch=1, cv_threshold=0.025)
    assert "transfer-bound" in copies["warnings"]
    noisy = summarize_gpu(_m([1.0, 1.2, 0.8, 1.1]), batch=1, cv_threshold=0.025)
    assert noisy["unstable"] and "unstable: compute cv" in noisy["warnings"]
    assert noisy["compute_cv"] == pytest.approx(np.std([1.0, 1.2, 0.8, 1.1], ddof=1) / 1.025)
