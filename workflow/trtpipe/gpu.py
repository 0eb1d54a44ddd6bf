"""The GPU side shared by the GPU backends (TensorRT, PyTorch): a small device layer over PyTorch's
CUDA API (no pycuda) and the timing harness.

The harness follows trtexec: warm up by time, then time iterations until both a minimum duration
and a minimum count are reached, rotating over input sets. Each iteration first lets the step bind
its buffers (host work outside every timed region), then records CUDA events around host-to-device
copies, compute and device-to-host copies separately, and the host time spent enqueuing the compute;
compute may be replayed from a CUDA graph. One inference is in flight at a time (each iteration waits
for its last event); trtexec keeps two per stream, so it can hide host gaps between inferences that
ours shows. A CUDA graph that cannot be captured falls back to plain launches, as trtexec does, and
the row says so.

`TRTPIPE_TEST_DEVICE` (tests only) names a module whose `Device` class stands in for the CUDA
device, so the TensorRT backend can be exercised against a test double on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .errors import BackendUnavailable
from .timing import Measurement, TimingSettings, summarize

log = logging.getLogger(__name__)


class CudaDevice:
    """One CUDA device through PyTorch: streams, buffers, pinned host memory, events, graphs."""

    def __init__(self, index: int = 0):
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailable(
                "no CUDA GPU is visible on this machine (torch.cuda.is_available() is False); fix: run GPU backends on a "
                "GPU box, or drop them from sweep.backends — the CPU backends are unaffected."
            )
        self.torch = torch
        self.index = index
        self.device = torch.device("cuda", index)
        torch.cuda.set_device(self.device)

    @functools.cached_property
    def info(self) -> dict[str, Any]:
        props = self.torch.cuda.get_device_properties(self.device)
        info = {"name": props.name, "compute_capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1), "cuda_runtime": self.torch.version.cuda or ""}
        info.update(nvml_info(self.index))
        return info

    def stream(self):
        return _TorchStream(self.torch.cuda.Stream(device=self.device))

    def empty(self, shape: Sequence[int], dtype: np.dtype):
        return _TorchBuffer(self.torch.empty(tuple(shape), dtype=_torch_dtype(self.torch, dtype), device=self.device))

    def pinned(self, array: np.ndarray):
        host = self.torch.from_numpy(np.ascontiguousarray(array)).pin_memory()
        return _TorchBuffer(host)

    def pinned_empty(self, shape: Sequence[int], dtype: np.dtype):
        return _TorchBuffer(self.torch.empty(tuple(shape), dtype=_torch_dtype(self.torch, dtype), pin_memory=True))

    def copy(self, dst, src, stream) -> None:
        """Enqueue a copy on `stream`, which must be the current stream (`use(stream)`, entered once by the
        harness and the runners): entering a stream context per copy cost ~15 us of host time inside the
        timed H2D/D2H regions, the cost the harness already removed from compute."""
        dst.raw.copy_(src.raw, non_blocking=True)

    def event(self):
        return _TorchEvent(self.torch.cuda.Event(enable_timing=True))

    def capture(self, fn: Callable[[], None], stream):
        """A CUDA graph of `fn` as enqueued on `stream`; replaying it repeats the same work. Captured in
        thread-local mode, as trtexec does (cudaStreamCaptureModeThreadLocal, samples/common/sampleDevice.h),
        so CUDA calls of other threads cannot invalidate it; a failed capture raises (the harness falls back)."""
        graph = self.torch.cuda.CUDAGraph()
        with self.torch.cuda.graph(graph, stream=stream.raw, capture_error_mode="thread_local"):
            fn()
        return graph

    def use(self, stream):
        return self.torch.cuda.stream(stream.raw)


class _TorchStream:
    def __init__(self, raw):
        self.raw = raw
        self.handle = raw.cuda_stream

    def synchronize(self) -> None:
        self.raw.synchronize()


class _TorchBuffer:
    def __init__(self, raw):
        self.raw = raw
        self.ptr = raw.data_ptr()
        self.shape = tuple(raw.shape)
        self.nbytes = raw.numel() * raw.element_size()

    def numpy(self) -> np.ndarray:
        return self.raw.cpu().numpy() if self.raw.is_cuda else self.raw.numpy()


class _TorchEvent:
    def __init__(self, raw):
        self.raw = raw

    def record(self, stream) -> None:
        self.raw.record(stream.raw)

    def synchronize(self) -> None:
        self.raw.synchronize()

    def elapsed_ms(self, end: "_TorchEvent") -> float:
        return self.raw.elapsed_time(end.raw)


def _torch_dtype(torch, dtype: np.dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16, np.dtype(np.int64): torch.int64,
            np.dtype(np.int32): torch.int32, np.dtype(np.int8): torch.int8, np.dtype(np.uint8): torch.uint8,
            np.dtype(np.bool_): torch.bool, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def get_device(index: int = 0):
    override = os.environ.get("TRTPIPE_TEST_DEVICE")
    if override:  # tests only: a stand-in device for machines without a GPU
        return importlib.import_module(override).Device(index)
    return CudaDevice(index)


def nvml_info(index: int = 0) -> dict[str, Any]:
    """Driver, clocks and power limit through NVML (nvidia-ml-py), where it is present."""
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        info = {
            "driver": pynvml.nvmlSystemGetDriverVersion(),
            "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "sm_clock_max_mhz": pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "mem_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "power_limit_w": pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000,
        }
        pynvml.nvmlShutdown()
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in info.items()}
    except Exception as exc:  # NVML errors are informational only
        log.info("NVML unavailable: %s", exc)
        return {}


def visible_gpu_identity() -> str:
    """'NVIDIA H100 80GB HBM3 (cc 9.0)' of the first visible GPU, cheaply (no CUDA context), for rule params."""
    override = os.environ.get("TRTPIPE_TEST_DEVICE")
    if override:
        info = importlib.import_module(override).Device(0).info
        return f"{info['name']} (cc {info['compute_capability']})"
    if not shutil.which("nvidia-smi"):
        return "no GPU"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip().splitlines()
    except (subprocess.SubprocessError, OSError):
        return "no GPU"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    first = int(visible.split(",")[0]) if visible.split(",")[0].isdigit() else 0
    if not out or first >= len(out):
        return "no GPU"
    name, cc = (part.strip() for part in out[first].split(","))
    return f"{name} (cc {cc})"


def _gpus() -> list[tuple[str, str]]:
    """(index, UUID) of the GPUs nvidia-smi shows, in PCI bus order."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [tuple(part.strip() for part in line.split(",")) for line in out.strip().splitlines() if "," in line]


@contextlib.contextmanager
def claim_gpu(poll_s: float = 1.0, shared: bool = False, side: bool = False):
    """Hold one GPU exclusively for this job (or `shared` with other shared holders) and narrow
    CUDA_VISIBLE_DEVICES to it. A shared claim is for work that times nothing (torch.compile's engine
    jobs, a benchmark loading its engine): side by side, but never while a job holds the GPU exclusively.

    Snakemake's `gpu` resource bounds how many GPU jobs run at once but never says which GPU each
    gets; this does, with one lock file per GPU (by UUID), so two jobs never time on the same GPU.
    Call it before anything initialises CUDA, and inside trtpipe.machine.working() (the host lock comes
    first). A benchmark claims shared and trtpipe.machine.alone() makes the claim exclusive for its timing.
    Candidates are the GPUs CUDA_VISIBLE_DEVICES already allows (indices in PCI order, or UUIDs), else all
    of them. TRTPIPE_GPU_LOCK_DIR moves the locks.

    `side`: a GPU for work that runs beside timings (a torch.compile build confined off the timing cores,
    trtpipe.machine): no lock at all, one of the allowed GPUs by process id, so such builds spread over the GPUs.
    """
    import fcntl

    from . import machine

    if os.environ.get("TRTPIPE_TEST_DEVICE"):
        yield None
        return
    gpus = _gpus()
    allowed = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if allowed:
        gpus = [g for g in gpus if g[0] in allowed or g[1] in allowed]
    if not gpus:
        yield None  # no GPU: the backend says so in one sentence
        return
    if side:
        index, uuid = gpus[os.getpid() % len(gpus)]
        with _visible(uuid):
            log.info("using GPU %s (%s) beside timings, without a claim", index, uuid)
            yield index
        return
    lock_dir = machine.lock_dir()
    waited = 0.0
    while True:
        for index, uuid in gpus:
            path = lock_dir / f"{uuid}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            log.info("claimed GPU %s (%s) for this job%s", index, uuid, " (shared until it times)" if shared else "")
            machine.record_gpu_claim(fd, shared)
            try:
                with _visible(uuid):
                    yield index
            finally:
                machine.record_gpu_claim(None)
                fcntl.flock(fd, fcntl.LOCK_UN)  # not only close(): a forked child may share the descriptor
                os.close(fd)
            return
        if waited % 30 < poll_s:
            log.info("every allowed GPU is held by another trtpipe job; waiting")
        time.sleep(poll_s)
        waited += poll_s


@contextlib.contextmanager
def _visible(uuid: str):
    """CUDA_VISIBLE_DEVICES narrowed to one GPU (by UUID) for the block."""
    saved = {k: os.environ.get(k) for k in ("CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES")}
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    os.environ["CUDA_VISIBLE_DEVICES"] = uuid
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- the timing harness --------------------------------------------------------------------------
@dataclass
class GpuStep:
    """One input set, ready to run: each callable enqueues its work on the harness's stream."""

    upload: Callable[[], None]  # host -> device copies of the inputs
    compute: Callable[[], None]  # the inference
    download: Callable[[], None]  # device -> host copies of the outputs
    prepare: Callable[[], None] = lambda: None  # host-side binding (shapes, addresses), before the start event


@dataclass
class GpuMeasurement:
    latency_ms: np.ndarray  # what one call costs: transfers + compute, or compute alone
    h2d_ms: np.ndarray
    compute_ms: np.ndarray
    d2h_ms: np.ndarray
    enqueue_ms: np.ndarray  # host time to enqueue the compute (launch overhead)
    wall_s: float
    warmup_iterations: int
    transfers: bool
    cuda_graph: bool  # compute was replayed from CUDA graphs (False after a failed capture)
    notes: tuple[str, ...] = ()  # what the harness changed, e.g. a failed CUDA graph capture


def measure_gpu(device, stream, steps: Sequence[GpuStep], settings: TimingSettings, transfers: bool = True,
                cuda_graph: bool = False, clock: Callable[[], float] = time.perf_counter) -> GpuMeasurement:
    """Time `steps` on `stream`. The steps enqueue on the current stream, which this sets to `stream` once, for
    the whole measurement: a graph replays on the current stream too, and entering a stream context inside the
    timed region cost about 15 us per call (+3.6% at ResNet-50 batch 1 against a hand loop, H100)."""
    if not steps:
        raise ValueError("measure_gpu() needs at least one step")
    with device.use(stream):
        return _measure_on_current_stream(device, stream, steps, settings, transfers, cuda_graph, clock)


def _measure_on_current_stream(device, stream, steps, settings, transfers, cuda_graph, clock) -> GpuMeasurement:
    computes = [s.compute for s in steps]
    notes: list[str] = []
    for s in steps:  # inputs in place before any capture or timing; lazy initialisation happens here
        s.prepare()
        s.upload()
        s.compute()
    stream.synchronize()
    if cuda_graph:
        try:
            graphs = []
            for s in steps:  # trtexec's order: one plain enqueue with the bindings it then captures, synchronize,
                s.prepare()  # capture ("Avoid capturing initialization calls": NVIDIA/TensorRT
                s.compute()  # samples/common/sampleInference.cpp, release/10.13:1261-1270, release/11.1:1338-1347)
                stream.synchronize()
                graphs.append(device.capture(s.compute, stream).replay)
            computes = graphs
        except Exception as exc:  # trtexec: "CUDA graph capture failed. The inference will be launched without ..."
            log.warning("CUDA graph capture failed (%s); timing plain launches instead", exc)
            notes.append(f"CUDA graph capture failed ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}); "
                         f"timed without a graph")
            cuda_graph = False
        stream.synchronize()
    events = [device.event() for _ in range(4)]
    n = len(steps)

    def iteration(k: int) -> tuple[float, float, float, float]:
        step, compute = steps[k % n], computes[k % n]
        e0, e1, e2, e3 = events
        step.prepare()  # binding is host work TensorRT does before its kernels: not timed, as trtexec does not
        e0.record(stream)
        if transfers:
            step.upload()
        e1.record(stream)
        t0 = clock()
        compute()
        enqueue = clock() - t0
        e2.record(stream)
        if transfers:
            step.download()
        e3.record(stream)
        e3.synchronize()
        return e0.elapsed_ms(e1), e1.elapsed_ms(e2), e2.elapsed_ms(e3), enqueue * 1e3

    warmup, start = 0, clock()
    while True:
        iteration(warmup)
        warmup += 1
        if clock() - start >= settings.warmup_s:
            break
    samples = []
    loop_start = clock()
    while True:
        samples.append(iteration(len(samples)))
        elapsed = clock() - loop_start
        if (elapsed >= settings.min_duration_s and len(samples) >= settings.min_iterations) or len(samples) >= settings.max_iterations:
            break
    wall = clock() - loop_start
    h2d, compute, d2h, enqueue = (np.asarray(col) for col in zip(*samples))
    latency = h2d + compute + d2h if transfers else compute
    return GpuMeasurement(latency, h2d, compute, d2h, enqueue, wall, warmup, transfers, cuda_graph, tuple(notes))


GPU_COLUMNS = ["h2d_ms_median", "compute_ms_median", "d2h_ms_median", "enqueue_ms_median", "compute_cv", "warnings"]
DEVICE_COLUMNS = ["driver", "sm_clock_mhz"]  # what the GPU ran at, from NVML
LAUNCH_BOUND = 0.8  # enqueue time at least this share of compute time: the host, not the GPU, sets the pace


def summarize_gpu(m: GpuMeasurement, batch: int, cv_threshold: float) -> dict[str, Any]:
    stats = summarize(Measurement(m.latency_ms, m.wall_s, m.warmup_iterations), batch, cv_threshold)
    stats["_samples"]["compute_ms"] = m.compute_ms  # what `trtpipe compare` prefers on GPU rows
    compute = float(np.median(m.compute_ms))
    compute_cv = float(m.compute_ms.std(ddof=1) / m.compute_ms.mean()) if m.compute_ms.size > 1 and m.compute_ms.mean() > 0 else 0.0
    h2d, d2h, enqueue = (float(np.median(a)) for a in (m.h2d_ms, m.d2h_ms, m.enqueue_ms))
    warnings = list(m.notes)
    if not m.cuda_graph and enqueue >= LAUNCH_BOUND * compute:
        warnings.append(f"launch-bound: enqueue {enqueue:.3f} ms vs GPU compute {compute:.3f} ms; try CUDA graphs")
    if m.transfers and h2d + d2h >= compute:
        warnings.append(f"transfer-bound: H2D+D2H {h2d + d2h:.3f} ms >= compute {compute:.3f} ms; the latency measures the copies")
    if compute_cv > cv_threshold:
        warnings.append(f"unstable: compute cv {compute_cv:.1%} > {cv_threshold:.1%}")
    # DESIGN: on the GPU, stability is judged on compute time (copies and the host add their own noise).
    stats.update(cuda_graph=m.cuda_graph, unstable=compute_cv > cv_threshold, h2d_ms_median=h2d, compute_ms_median=compute, d2h_ms_median=d2h,
                 enqueue_ms_median=enqueue, compute_cv=compute_cv, warnings="; ".join(warnings))
    return stats
