"""The timing harness, after trtexec: warm up by time, then measure until both a minimum duration and
a minimum count are reached, rotating over several input sets; report percentiles, throughput and
the coefficient of variation, and flag unstable runs instead of hiding them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .defaults import value

log = logging.getLogger(__name__)


def _default(key: str):
    return value("benchmark", key)


@dataclass(frozen=True)
class TimingSettings:
    """The config's `benchmark` section; unset fields take the schema's defaults."""

    warmup_s: float = _default("warmup_s")
    min_duration_s: float = _default("min_duration_s")
    min_iterations: int = _default("min_iterations")
    max_iterations: int = _default("max_iterations")
    cv_threshold: float = _default("cv_threshold")

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "TimingSettings":
        return cls(**{k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg})


@dataclass
class Measurement:
    latencies_ms: np.ndarray  # one entry per timed iteration
    wall_s: float  # wall-clock time of the timed loop, loop overhead included
    warmup_iterations: int


def measure(steps: Sequence[Callable[[], Any]], settings: TimingSettings,
            clock: Callable[[], float] = time.perf_counter) -> Measurement:
    """Time `steps` (one per input set, used in rotation) with the host clock."""
    if not steps:
        raise ValueError("measure() needs at least one step")
    n_sets = len(steps)
    warmup = 0
    start = clock()
    while True:  # at least one warm-up call, even with warmup_s = 0
        steps[warmup % n_sets]()
        warmup += 1
        if clock() - start >= settings.warmup_s:
            break
    latencies = []
    loop_start = clock()
    i = 0
    while True:
        t0 = clock()
        steps[i % n_sets]()
        t1 = clock()
        latencies.append((t1 - t0) * 1e3)
        i += 1
        elapsed = t1 - loop_start
        if (elapsed >= settings.min_duration_s and i >= settings.min_iterations) or i >= settings.max_iterations:
            break
    return Measurement(np.asarray(latencies), clock() - loop_start, warmup)


STAT_COLUMNS = [
    "latency_ms_min", "latency_ms_mean", "latency_ms_median", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99",
    "latency_ms_max", "latency_ms_std", "cv", "unstable", "iterations", "warmup_iterations", "duration_s",
    "throughput_qps", "throughput_samples_s",
]


def summarize(m: Measurement, batch: int, cv_threshold: float) -> dict[str, Any]:
    lat = m.latencies_ms
    mean = float(lat.mean())
    std = float(lat.std(ddof=1)) if lat.size > 1 else 0.0
    cv = std / mean if mean > 0 else 0.0
    return {
        "latency_ms_min": float(lat.min()),
        "latency_ms_mean": mean,
        "latency_ms_median": float(np.percentile(lat, 50)),
        "latency_ms_p90": float(np.percentile(lat, 90)),
        "latency_ms_p95": float(np.percentile(lat, 95)),
        "latency_ms_p99": float(np.percentile(lat, 99)),
        "latency_ms_max": float(lat.max()),
        "latency_ms_std": std,
        "cv": cv,
        "unstable": bool(cv > cv_threshold),
        "iterations": int(lat.size),
        "warmup_iterations": m.warmup_iterations,
        "duration_s": m.wall_s,
        # trtexec's "throughput" counts a batch as one query; samples/s is what users compare.
        "throughput_qps": lat.size / m.wall_s,
        "throughput_samples_s": lat.size * batch / m.wall_s,
        # Not a CSV column: the per-iteration arrays, popped by benchmark_engine into the .timings.npz
        # beside the CSV (trtpipe/timings.py) so `trtpipe compare` can test them.
        "_samples": {"latency_ms": lat},
    }
