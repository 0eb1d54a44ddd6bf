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
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

PATIENCE_S = 30.0  # how long a timing lets new work start before it makes new work wait
POLL_S = 0.1

# What this process holds: "host", the open host lock while it works under a shared hold; "gpu" and
# "gpu_shared", its GPU claim (trtpipe.gpu.claim_gpu records it here).
_HOLD: dict[str, int] = {}


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


@contextlib.contextmanager
def working():
    """Hold the machine shared for this command: beside other work, never beside a timing, and not past a
    timing that has waited long enough (the turnstile)."""
    turnstile, fd = _open("turnstile.lock"), _open("host.lock")
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
        if waited:
            log.info("waited %.1f s for timings to finish", time.monotonic() - start)
        _HOLD["host"] = fd
        yield
    finally:
        _HOLD.pop("host", None)
        fcntl.flock(fd, fcntl.LOCK_UN)  # not only close(): a forked child (a compile worker) may share the descriptor
        os.close(fd)
        os.close(turnstile)


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
def alone(patience_s: float = PATIENCE_S):
    """The machine to this process alone for a timing: wait until every other trtpipe job on the host has let go,
    keep new ones waiting until the block ends, then return to this process's earlier holds. Its GPU claim is let
    go while waiting (a GPU build holding the host shared may need that GPU to finish) and taken exclusively once
    the host is ours. Yields the seconds spent waiting."""
    own, gpu_lock = _HOLD.get("host"), _HOLD.get("gpu")
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
            if gpu_lock is not None:
                fcntl.flock(gpu_lock, fcntl.LOCK_SH if _HOLD.get("gpu_shared") else fcntl.LOCK_EX)
