"""A stand-in for trtpipe.gpu.CudaDevice on machines without a GPU (selected by TRTPIPE_TEST_DEVICE=fake_cuda).

"Device memory" is host memory whose addresses are registered in MEMORY, pinned host memory is registered
in HOST, so the TensorRT double can resolve the pointers handed to set_tensor_address, tell device from
host memory (shape-tensor inputs must be host memory) and reject any pointer it was not given. Allocations
are 256-byte aligned, as TensorRT requires of tensor addresses (NvInferRuntime.h release/11.0:4378) and as
PyTorch's caching allocator provides. Events read the host clock. Copies are strict about size and dtype,
as cudaMemcpy of a wrong size would corrupt memory, and about their stream: like `Tensor.copy_`, a copy is
enqueued on the *current* stream, so one made outside `use(stream)` would land on the default stream,
outside what the harness times — the fake refuses it.

TRACE records, in order, event records and (from the TensorRT double) binding and enqueue calls, so
tests can check what lies inside a timed region.
"""

from __future__ import annotations

import contextlib
import itertools
import time

import numpy as np

MEMORY: dict[int, np.ndarray] = {}  # address -> buffer, for every "device" allocation
HOST: dict[int, np.ndarray] = {}  # address -> buffer, for every pinned host allocation
STREAMS: set[int] = set()
TRACE: list[tuple] = []  # ("record", event id) / ("capture_begin",) / ... and the double's calls
CAPTURING: list = [None]  # the stream being captured into a CUDA graph, or None
ALIGNMENT = 256
_handles = itertools.count(0x5000)


def _aligned(nbytes: int) -> np.ndarray:
    raw = np.zeros(max(nbytes, 1) + ALIGNMENT, np.uint8)
    offset = (-raw.ctypes.data) % ALIGNMENT
    return raw[offset:offset + max(nbytes, 1)]


class Buffer:
    def __init__(self, array: np.ndarray, device: bool):
        self.array = array
        self.ptr = array.ctypes.data
        self.shape = tuple(array.shape)
        self.nbytes = array.nbytes
        self.device = device
        (MEMORY if device else HOST)[self.ptr] = array

    def numpy(self) -> np.ndarray:
        return self.array


def _allocate(shape, dtype, device: bool, fill: np.ndarray | None = None) -> Buffer:
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):  # torch.empty raises for a negative size, as numpy does
        raise RuntimeError(f"Trying to create tensor with negative dimension: {shape}")
    count = int(np.prod(shape, dtype=np.int64))
    array = _aligned(count * dtype.itemsize)[:count * dtype.itemsize].view(dtype).reshape(shape)
    if fill is not None:
        np.copyto(array, fill)
    return Buffer(array, device)


class Stream:
    def __init__(self):
        self.handle = next(_handles)
        STREAMS.add(self.handle)

    def synchronize(self) -> None:
        pass


class Event:
    def __init__(self):
        self.t = None

    def record(self, stream: Stream) -> None:
        assert stream.handle in STREAMS, "event recorded on an unknown stream"
        self.t = time.perf_counter()
        TRACE.append(("record", id(self)))

    def synchronize(self) -> None:
        assert self.t is not None, "synchronize on an event never recorded"

    def elapsed_ms(self, end: "Event") -> float:
        assert self.t is not None and end.t is not None, "elapsed time between events not both recorded"
        return (end.t - self.t) * 1e3


CURRENT: list = [None]  # the stream work is enqueued on (torch.cuda.stream(...) sets it; None: the default stream)


class Graph:
    def __init__(self, fn, stream):
        self.fn = fn
        self.stream = stream

    def replay(self) -> None:
        # CUDA graphs replay on the current stream, whatever stream they were captured on.
        assert CURRENT[0] is self.stream, "graph replayed on another stream than the one the harness times"
        self.fn()


class Device:
    def __init__(self, index: int = 0):
        self.index = index
        self.stream_switches = 0  # times use() was entered: the harness should not pay for it inside the timed loop
        self.captures = 0
        self.info = {"name": "Fake GPU (tests)", "compute_capability": "9.0", "memory_gib": 1.0, "cuda_runtime": "fake",
                     "driver": "fake-driver", "sm_clock_mhz": 1000}

    def stream(self) -> Stream:
        return Stream()

    def empty(self, shape, dtype) -> Buffer:
        return _allocate(shape, dtype, device=True)

    def pinned(self, array: np.ndarray) -> Buffer:
        array = np.ascontiguousarray(array)
        return _allocate(array.shape, array.dtype, device=False, fill=array)

    def pinned_empty(self, shape, dtype) -> Buffer:
        return _allocate(shape, dtype, device=False)

    def copy(self, dst: Buffer, src: Buffer, stream: Stream) -> None:
        assert stream.handle in STREAMS, "copy on an unknown stream"
        assert CURRENT[0] is stream, ("copy enqueued outside use(stream): it would run on the current (default) stream, "
                                      "not the one given")
        if dst.array.shape != src.array.shape or dst.array.dtype != src.array.dtype:
            raise RuntimeError(f"copy of {src.array.dtype}{src.array.shape} into {dst.array.dtype}{dst.array.shape}")
        np.copyto(dst.array, src.array)

    def event(self) -> Event:
        return Event()

    def capture(self, fn, stream: Stream) -> Graph:
        """Runs `fn` once in capture mode (the TensorRT double sees CAPTURING), as a real capture records it; an
        exception inside the capture propagates, as torch.cuda.graph's does."""
        assert CURRENT[0] is stream, "capture on another stream than the current one"
        self.captures += 1
        CAPTURING[0] = stream
        TRACE.append(("capture_begin",))
        try:
            fn()
        finally:
            CAPTURING[0] = None
            TRACE.append(("capture_end",))
        return Graph(fn, stream)

    @contextlib.contextmanager
    def use(self, stream: Stream):
        self.stream_switches += 1
        previous, CURRENT[0] = CURRENT[0], stream
        try:
            yield
        finally:
            CURRENT[0] = previous
