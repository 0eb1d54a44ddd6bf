"""The host as a reader–writer lock: every trtpipe command works under a shared hold of the machine, and a
timing takes it exclusively, so nothing of a sweep runs beside a measurement while everything else (exports,
engine builds, a benchmark's own loading and tracing) runs side by side.

Snakemake's resources cannot say this: a benchmark that claimed every core for its whole run kept the
machine idle while it imported, built its model and loaded compiled code (3-18 s of 28-40 s per torch
benchmark on the H100, docs/gpu/compile_once/). Now only the timing itself is alone.

The locks are flock(2) locks on files in TRTPIPE_GPU_LOCK_DIR (default: the temporary directory), beside
the GPU locks of trtpipe.gpu.claim_gpu, so they hold across Snakemake runs and hand-run commands of the
same host, and a crashed job's lock goes with its process. Order, to stay deadlock-free: the host lock
before a GPU lock; a timing lets go of both before it waits, and takes the host lock first.
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

# What this process holds: "host", the open host lock while it works under a shared hold; "gpu" and
# "gpu_shared", its GPU claim (trtpipe.gpu.claim_gpu records it here).
_HOLD: dict[str, int] = {}


def lock_dir() -> Path:
    path = Path(os.environ.get("TRTPIPE_GPU_LOCK_DIR", tempfile.gettempdir())) / "trtpipe-gpu-locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _lock(fd: int, mode: int, waiting: str) -> float:
    """flock `fd` in `mode`, logging `waiting` once when it has to wait; returns the seconds waited."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return 0.0
    except BlockingIOError:
        log.info("%s", waiting)
    start = time.monotonic()
    fcntl.flock(fd, mode)
    return time.monotonic() - start


def record_gpu_claim(fd: int | None, shared: bool = False) -> None:
    """trtpipe.gpu.claim_gpu: the GPU lock this process holds (None: none), for alone() to convert."""
    if fd is None:
        _HOLD.pop("gpu", None)
    else:
        _HOLD.update(gpu=fd, gpu_shared=int(shared))


@contextlib.contextmanager
def working():
    """Hold the machine shared for this command: beside other work, never beside a timing."""
    fd = os.open(lock_dir() / "host.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        waited = _lock(fd, fcntl.LOCK_SH, "a trtpipe timing holds this machine; waiting for it to finish")
        if waited:
            log.info("waited %.1f s for a timing to finish", waited)
        _HOLD["host"] = fd
        yield
    finally:
        _HOLD.pop("host", None)
        fcntl.flock(fd, fcntl.LOCK_UN)  # not only close(): a forked child (a compile worker) may share the descriptor
        os.close(fd)


@contextlib.contextmanager
def alone():
    """The machine to this process alone for a timing: wait until every other trtpipe job on the host has let go,
    keep new ones waiting until the block ends, then return to this process's earlier holds. Its GPU claim is let
    go while waiting (a GPU build holding the host shared may need that GPU to finish) and taken exclusively once
    the host is ours. Yields the seconds spent waiting."""
    own, gpu_lock = _HOLD.get("host"), _HOLD.get("gpu")
    fd = own if own is not None else os.open(lock_dir() / "host.lock", os.O_RDWR | os.O_CREAT, 0o666)
    if gpu_lock is not None:
        fcntl.flock(gpu_lock, fcntl.LOCK_UN)
    # Converting our own shared hold lets go of it first (flock(2)), so two timings never wait on each other.
    waited = _lock(fd, fcntl.LOCK_EX, "waiting for the other trtpipe jobs on this machine to finish before timing")
    log.info("timing alone on this machine (waited %.1f s for other jobs)", waited)
    try:
        if gpu_lock is not None:
            fcntl.flock(gpu_lock, fcntl.LOCK_EX)  # free: every GPU claim is held under the host lock
        yield waited
    finally:
        if gpu_lock is not None:
            fcntl.flock(gpu_lock, fcntl.LOCK_SH if _HOLD.get("gpu_shared") else fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_SH if own is not None else fcntl.LOCK_UN)
        if own is None:
            os.close(fd)
