"""The GPU timing harness's own logic, on the fake device (host clock): what it times, in which order,
and the warnings it derives. Its fidelity on a real GPU is measured by scripts/harness_fidelity.py."""

import contextlib
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from trtpipe.gpu import CudaDevice, GpuMeasurement, GpuStep, measure_gpu, summarize_gpu
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
    # priming + the plain enqueue before the capture (trtexec's order) + the capture (recording runs the host code
    # once) + warm-up + timed, via graph replay
    assert calls == {"up": 1, "run": 1 + 1 + 1 + 1 + 5, "down": 0}
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


def test_binding_runs_before_each_iterations_first_event():
    """Issue 12 F4: a step's prepare (TensorRT: shapes, addresses) is host work outside every timed region."""
    device = fake_cuda.Device()
    fake_cuda.TRACE.clear()
    step = GpuStep(upload=lambda: fake_cuda.TRACE.append(("up",)), compute=lambda: fake_cuda.TRACE.append(("run",)),
                   download=lambda: None, prepare=lambda: fake_cuda.TRACE.append(("prepare",)))
    measure_gpu(device, device.stream(), [step], TimingSettings(warmup_s=0, min_duration_s=0, min_iterations=3))
    trace = [t[0] for t in fake_cuda.TRACE]
    assert trace[:3] == ["prepare", "up", "run"]  # priming
    iterations = trace[3:]
    assert iterations == ["prepare", "record", "up", "record", "run", "record", "record"] * 4  # warm-up + 3 timed


class _StubTorch:
    """Just enough of torch.cuda for CudaDevice's stream, event, copy and capture paths, counting stream contexts."""

    def __init__(self):
        self.stream_contexts = 0
        self.current = "default"
        self.copies_on = []
        self.graph_modes = []
        self.fail_capture = False
        torch = self

        class Event:
            def __init__(self, enable_timing=False):
                pass

            def record(self, stream):
                pass

            def synchronize(self):
                pass

            def elapsed_time(self, end):
                return 0.01

        @contextlib.contextmanager
        def stream(raw):
            torch.stream_contexts += 1
            previous, torch.current = torch.current, raw
            try:
                yield
            finally:
                torch.current = previous

        @contextlib.contextmanager
        def graph(g, stream=None, capture_error_mode="global"):
            torch.graph_modes.append(capture_error_mode)
            yield
            if torch.fail_capture:
                raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

        self.cuda = SimpleNamespace(Event=Event, stream=stream, graph=graph,
                                    CUDAGraph=lambda: SimpleNamespace(replay=lambda: None))


class _StubTensor:
    def __init__(self, torch):
        self.torch = torch

    def copy_(self, src, non_blocking=False):
        self.torch.copies_on.append(self.torch.current)


def _cuda_device(torch):
    device = CudaDevice.__new__(CudaDevice)  # no GPU here: the real class over a stub torch
    device.torch, device.index, device.device = torch, 0, "cuda:0"
    return device


def test_copies_in_the_timed_loop_enter_no_stream_context():
    """Issue 12 F8: CudaDevice.copy entered a stream context per copy, inside the timed H2D/D2H regions (the
    ~15 us per call the harness had removed from compute). The harness sets the stream once; copies use it."""
    torch = _StubTorch()
    device = _cuda_device(torch)
    stream = SimpleNamespace(raw="timed-stream", handle=1, synchronize=lambda: None)
    dst, src = (SimpleNamespace(raw=_StubTensor(torch)) for _ in range(2))
    step = GpuStep(upload=lambda: device.copy(dst, src, stream), compute=lambda: None,
                   download=lambda: device.copy(src, dst, stream))
    m = measure_gpu(device, stream, [step], TimingSettings(warmup_s=0, min_duration_s=0, min_iterations=10))
    assert len(m.compute_ms) == 10 and len(torch.copies_on) == 1 + 2 * 11
    assert torch.stream_contexts == 1  # measure_gpu's own, once
    assert set(torch.copies_on) == {"timed-stream"}  # every copy still went to the timed stream


def test_a_failed_capture_falls_back_to_plain_launches_and_says_so():
    """Issue 12 F7: trtexec falls back to plain launches when a capture fails; the harness does too, captures
    thread-locally as trtexec does, and the measurement says it ran without a graph."""
    torch = _StubTorch()
    torch.fail_capture = True
    device = _cuda_device(torch)
    stream = SimpleNamespace(raw="timed-stream", handle=1, synchronize=lambda: None)
    runs = []
    step = GpuStep(upload=lambda: None, compute=lambda: runs.append(1), download=lambda: None)
    m = measure_gpu(device, stream, [step], TimingSettings(warmup_s=0, min_duration_s=0, min_iterations=5),
                    transfers=False, cuda_graph=True)
    assert torch.graph_modes == ["thread_local"]
    # priming, the plain enqueue before the capture, the failed capture, warm-up, timed: all plain
    assert not m.cuda_graph and len(runs) == 1 + 1 + 1 + 1 + 5
    stats = summarize_gpu(m, batch=1, cv_threshold=0.5)
    assert stats["cuda_graph"] is False and "CUDA graph capture failed (CUDA error: operation not permitted" in stats["warnings"]
