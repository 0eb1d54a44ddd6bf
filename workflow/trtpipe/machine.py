"""The host as a reader–writer lock: every trtpipe command works under a shared hold of the machine, and a
timing takes it exclusively, so nothing of a sweep runs beside a measurement while everything else (exports,
engine builds, a benchmark's own loading and tracing) runs side by side.

Snakemake's resources cannot say this: a benchmark that claimed every core for its whole run kept the
machine idle while it imported, built its model and loaded compiled code (3-18 s of 28-40 s per torch
benchmark on the H100, docs/gpu/compile_once/). Now only the timing itself is alone.

A timing that only waited for a moment with no work running starved: on the H100, overlapping exports and
builds never left the machine idle, and timings waited up to 815 s while waiting benchmarks held 15 of 16 job slots
(docs/gpu/compile_once/README.md). So a timing waits politely for PATIENCE_S, then closes a turnstile that every new
job passes on its way in: new work waits, the work running finishes, and the timings waiting by then run
one after another before the turnstile opens again.

The locks are flock(2) locks on files in TRTPIPE_GPU_LOCK_DIR (default: the temporary directory), beside
the GPU locks of trtpipe.gpu.claim_gpu, so they hold across Snakemake runs and hand-run commands of the
same host, and a crashed job's locks go with its process. Order, to stay deadlock-free: turnstile, host
lock, GPU lock; a timing lets go of the host and GPU locks before it waits.

Timings beside confined builds: when the workflow keeps cores for GPU timings (`scheduling.timing_cores`, passed
to every job as TRTPIPE_TIMING_CORES), every job that times nothing on the CPU runs on the other cores (CPU
affinity, inherited by its thread pools and Inductor's compile workers), torch.compile builds use the GPU without
a claim (compiling is CPU work), and a GPU timing takes only its GPU and the cores kept for it: it runs beside
that work instead of waiting for the machine to be quiet. Work that may run on every core (a CPU benchmark while
it loads, a command run by hand) holds `wide.lock` shared, which such a timing takes exclusively. CPU timings
still hold the whole machine. It is off by default: on the H200, torch timings beside seven confined compiles read
20-89% slower than alone in 4 of 6 cases (docs/gpu/sweep_time/), far outside 3%.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path

from .schedule import configured_timing_cores, timing_cores_of

log = logging.getLogger(__name__)

PATIENCE_S = 30.0  # how long a timing lets new work start before it makes new work wait
POLL_S = 0.1

# What this process holds: "host", the open host lock while it works under a shared hold; "wide", the open
# wide lock while it may run on the timing cores; "gpu" and "gpu_shared", its GPU claim (trtpipe.gpu.claim_gpu
# records it here).
_HOLD: dict[str, int] = {}
_CORES: dict[str, list[int]] = {}  # "all": the cores this process was started with, "timing": those kept for timings


def lock_dir() -> Path:
    path = Path(os.environ.get("TRTPIPE_GPU_LOCK_DIR", tempfile.gettempdir())) / "trtpipe-gpu-locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _open(name: str) -> int:
    return os.open(lock_dir() / name, os.O_RDWR | os.O_CREAT, 0o666)


def _try(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def job_cores() -> int:
    """The cores this job owns. Snakemake hands every job its `threads` in OMP_NUM_THREADS (torch reads it; ONNX
    Runtime's and Inductor's own pools do not, so trtpipe passes it on); outside a workflow, every core this
    process may run on. With sixteen one-core jobs each running pools as wide as the 16-core H100 box, a sweep's
    export checks took 2.5x and its simplifications 1.5x as long (median; docs/gpu/onnxruntime/README.md, fourth
    session)."""
    allowed = len(os.sched_getaffinity(0))
    try:
        owned = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        owned = 0
    return min(owned, allowed) if owned > 0 else allowed


def record_gpu_claim(fd: int | None, shared: bool = False) -> None:
    """trtpipe.gpu.claim_gpu: the GPU lock this process holds (None: none), for alone() to convert."""
    if fd is None:
        _HOLD.pop("gpu", None)
    else:
        _HOLD.update(gpu=fd, gpu_shared=int(shared))


def confine() -> list[int]:
    """Run this process (and the threads and processes it starts from now on) on the cores not kept for GPU
    timings; returns the cores kept (none when the workflow keeps none)."""
    allowed = sorted(os.sched_getaffinity(0))
    others, kept = timing_cores_of(allowed, configured_timing_cores())
    _CORES.update(all=allowed, timing=kept)
    if kept:
        os.sched_setaffinity(0, others)
        log.info("running on cores %s; cores %s are kept for GPU timings", _ranges(others), _ranges(kept))
    return kept


def kept_cores() -> list[int]:
    """The cores kept for GPU timings while this process runs confined off them (confine()); none otherwise."""
    return list(_CORES.get("timing", []))


def _ranges(cores: list[int]) -> str:
    return ",".join(str(c) for c in cores) if len(cores) < 4 else f"{cores[0]}-{cores[-1]}"


@contextlib.contextmanager
def working(confined: bool = True):
    """Hold the machine shared for this command: beside other work, never beside a timing, and not past a
    timing that has waited long enough (the turnstile). `confined`: off the cores kept for GPU timings (when the
    workflow keeps any); otherwise this command holds the wide lock too, so no GPU timing runs beside it."""
    turnstile, fd = _open("turnstile.lock"), _open("host.lock")
    wide = None
    if not (confined and confine()):
        wide = _open("wide.lock")
    try:
        start, waited = time.monotonic(), False
        for lock in (turnstile, fd):
            if not _try(lock, fcntl.LOCK_SH):
                if not waited:
                    log.info("a trtpipe timing holds this machine or waits for it; waiting for it to finish")
                waited = True
                fcntl.flock(lock, fcntl.LOCK_SH)
            if lock == turnstile:
                fcntl.flock(turnstile, fcntl.LOCK_UN)  # passed: the turnstile only stops jobs on their way in
        if wide is not None:
            fcntl.flock(wide, fcntl.LOCK_SH)  # a GPU timing beside confined work holds it only while it times
            _HOLD["wide"] = wide
        if waited:
            log.info("waited %.1f s for timings to finish", time.monotonic() - start)
        _HOLD["host"] = fd
        yield
    finally:
        _HOLD.pop("host", None)
        _HOLD.pop("wide", None)
        fcntl.flock(fd, fcntl.LOCK_UN)  # not only close(): a forked child (a compile worker) may share the descriptor
        os.close(fd)
        os.close(turnstile)
        if wide is not None:
            fcntl.flock(wide, fcntl.LOCK_UN)
            os.close(wide)


def _take_alone(fd: int, patience_s: float) -> float:
    """Hold `fd` (the host lock) exclusively: first only when no work is running, then, after `patience_s`,
    with the turnstile closed to new work. Returns the seconds waited."""
    start = time.monotonic()
    if _try(fd, fcntl.LOCK_EX):
        return 0.0
    log.info("waiting for the other trtpipe jobs on this machine to finish before timing")
    while time.monotonic() - start < patience_s:
        time.sleep(POLL_S)
        if _try(fd, fcntl.LOCK_EX):
            return time.monotonic() - start
    turnstile = _open("turnstile.lock")
    try:
        fcntl.flock(turnstile, fcntl.LOCK_EX)  # behind any other timing that closed it first
        log.info("new work on this machine now waits until the running jobs finish and this timing is done")
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(turnstile)  # open again for the timing waiting next, then for new work
    return time.monotonic() - start


@contextlib.contextmanager
def alone(patience_s: float = PATIENCE_S, gpu: bool = False):
    """The machine to this process alone for a timing: wait until every other trtpipe job on the host has let go,
    keep new ones waiting until the block ends, then return to this process's earlier holds. Its GPU claim is let
    go while waiting (a GPU build holding the host shared may need that GPU to finish) and taken exclusively once
    the host is ours. Yields the seconds spent waiting.

    `gpu`: a timing on this process's GPU. Where the workflow keeps cores for GPU timings (confine()), it runs on
    those beside confined work instead: it waits only for its GPU (other timings, and work that claimed it) and
    for work that may run on every core."""
    if gpu and _CORES.get("timing") and _HOLD.get("gpu") is not None:
        with _beside(_CORES["timing"]) as waited:
            yield waited
        return
    own, gpu_lock, wide = _HOLD.get("host"), _HOLD.get("gpu"), _HOLD.get("wide")
    if wide is not None:
        fcntl.flock(wide, fcntl.LOCK_UN)  # a GPU timing beside confined work may be waiting for it
    fd = own if own is not None else _open("host.lock")
    if gpu_lock is not None:
        fcntl.flock(gpu_lock, fcntl.LOCK_UN)
    if own is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)  # two timings must never wait on each other's shared holds
    waited = _take_alone(fd, patience_s)
    log.info("timing alone on this machine (waited %.1f s for other jobs)", waited)
    try:
        if gpu_lock is not None:
            fcntl.flock(gpu_lock, fcntl.LOCK_EX)  # free: every GPU claim is held under the host lock
        yield waited
    finally:
        # Let go of both before taking either back: a timing waiting next may take the host between the two
        # steps, and it must find our GPU claim released, or each would wait on the other.
        if gpu_lock is not None:
            fcntl.flock(gpu_lock, fcntl.LOCK_UN)
        fcntl.flock(fd, fcntl.LOCK_UN)
        if own is None:
            os.close(fd)
        else:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if wide is not None:
                fcntl.flock(wide, fcntl.LOCK_SH)
            if gpu_lock is not None:
                fcntl.flock(gpu_lock, fcntl.LOCK_SH if _HOLD.get("gpu_shared") else fcntl.LOCK_EX)


@contextlib.contextmanager
def _beside(cores: list[int]):
    """A GPU timing beside confined work: this process's GPU exclusively, no work that may run on every core, and
    the calling thread (the one that launches the GPU work) on the cores kept for timings. The host lock stays
    held shared, so CPU timings still wait for it."""
    gpu_lock, start = _HOLD["gpu"], time.monotonic()
    wide = _open("wide.lock")
    fcntl.flock(gpu_lock, fcntl.LOCK_UN)  # let a timing waiting for this GPU in; take it back exclusively below
    try:
        if not _try(wide, fcntl.LOCK_EX):
            log.info("waiting for jobs that may run on the timing cores to finish")
            fcntl.flock(wide, fcntl.LOCK_EX)
        fcntl.flock(gpu_lock, fcntl.LOCK_EX)
        waited = time.monotonic() - start
        log.info("timing on cores %s beside confined work (waited %.1f s for its GPU)", _ranges(cores), waited)
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cores)
        try:
            yield waited
        finally:
            os.sched_setaffinity(0, before)
    finally:
        fcntl.flock(gpu_lock, fcntl.LOCK_UN)  # both let go before the shared claim is taken back (see alone())
        fcntl.flock(wide, fcntl.LOCK_UN)
        os.close(wide)
        fcntl.flock(gpu_lock, fcntl.LOCK_SH if _HOLD.get("gpu_shared") else fcntl.LOCK_EX)
