"""A stand-in for trtpipe.gpu.CudaDevice on machines without a GPU (selected by TRTPIPE_TEST_DEVICE=fake_cuda).

"Device memory" is host memory whose addresses are registered in MEMORY, so the TensorRT double can
resolve the pointers handed to set_tensor_address and reject any it was not given. Events read the
host clock. Copies are strict about shape and dtype, as cudaMemcpy of a wrong size would corrupt.
"""

from __future__ import annotations

import contextlib
import itertools
import time

import numpy as np

MEMORY: dict[int, np.ndarray] = {}  # address -> buffer, for every "device" allocation
STREAMS: set[int] = set()
_handles = itertools.count(0x5000)


class Buffer:
    def __init__(self, array: np.ndarray, device: bool):
        self.array = array
        self.ptr = array.ctypes.data
        self.shape = tuple(array.shape)
        if device:
            MEMORY[self.ptr] = array

    def numpy(self) -> np.ndarray:
        return self.array


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
        self.info = {"name": "Fake GPU (tests)", "compute_capability": "9.0", "memory_gib": 1.0, "cuda_runtime": "fake",
                     "driver": "fake-driver", "sm_clock_mhz": 1000}

    def stream(self) -> Stream:
        return Stream()

    def empty(self, shape, dtype) -> Buffer:
        return Buffer(np.zeros(tuple(shape), dtype=dtype), device=True)

    def pinned(self, array: np.ndarray) -> Buffer:
        return Buffer(np.array(array, copy=True), device=False)

    def pinned_empty(self, shape, dtype) -> Buffer:
        return Buffer(np.zeros(tuple(shape), dtype=dtype), device=False)

    def copy(self, dst: Buffer, src: Buffer, stream: Stream) -> None:
        assert stream.handle in STREAMS, "copy on an unknown stream"
        if dst.array.shape != src.array.shape or dst.array.dtype != src.array.dtype:
            raise RuntimeError(f"copy of {src.array.dtype}{src.array.shape} into {dst.array.dtype}{dst.array.shape}")
        np.copyto(dst.array, src.array)

    def event(self) -> Event:
        return Event()

    def capture(self, fn, stream: Stream) -> Graph:
        return Graph(fn, stream)

    @contextlib.contextmanager
    def use(self, stream: Stream):
        self.stream_switches += 1
        previous, CURRENT[0] = CURRENT[0], stream
        try:
            yield
        finally:
            CURRENT[0] = previous
