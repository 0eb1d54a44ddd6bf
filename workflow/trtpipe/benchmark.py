"""Benchmark one engine at every requested batch size inside its profile; one CSV row per batch."""

from __future__ import annotations

import json
import logging
import math
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from . import machine
from .backends import registry
from .errors import ProfileError, TrtpipeError
from .gpu import DEVICE_COLUMNS, GPU_COLUMNS
from .inputs import random_inputs
from .io import read_json
from .spec import ModelSpec
from .sysinfo import git_rev
from .timing import STAT_COLUMNS, TimingSettings

log = logging.getLogger(__name__)

PROVENANCE_COLUMNS = [
    "model", "variant", "precision", "backend", "profile", "profile_min", "profile_opt", "profile_max", "batch",
    "input_shapes", "device", "backend_version", "threads", "transfers_included", "cuda_graph", "input_sets",
    "git_rev", "timestamp",
]


# Memory per engine: peak device memory while it was timed (NaN where it cannot be seen; see backends/base.py Runner.device_memory),
# the engine file's size (the sidecar's engine_bytes), and the benchmark process's peak resident host memory.
MEMORY_COLUMNS = ["device_mem_peak_bytes", "engine_bytes", "host_rss_peak_bytes"]
# What the engine cost to build (the sidecar's build_seconds_total: torch.compile's compilation included).
BUILD_COLUMNS = ["engine_build_s"]


def bench_columns() -> list[str]:
    """One schema for every row: columns a backend does not fill (GPU columns of a CPU row) are empty."""
    extra = [c for b in registry.BACKENDS.values() for c in b.extra_columns]
    return PROVENANCE_COLUMNS + STAT_COLUMNS + GPU_COLUMNS + list(dict.fromkeys(extra)) + DEVICE_COLUMNS + MEMORY_COLUMNS + BUILD_COLUMNS


def host_rss_peak_bytes() -> int:
    """The peak resident set of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def benchmark_engine(
    engine_path: str | Path,
    sidecar_path: str | Path,
    spec: ModelSpec,
    batches: list[int],
    settings: TimingSettings,
    input_sets: int,
    threads: int = 0,
    profile_name: str | None = None,
    backend_options: dict | None = None,
    backend_name: str | None = None,
    timings: dict | None = None,
) -> pd.DataFrame:
    """One row per batch; with `timings` given, also fills it with {batch: {metric: per-iteration array}}."""
    sidecar = read_json(sidecar_path)
    if backend_name and sidecar["backend"] != backend_name:
        raise TrtpipeError(f"{sidecar_path} describes a {sidecar['backend']} engine, not {backend_name}; fix: benchmark it "
                           f"with --backend {sidecar['backend']}.")
    backend = registry.get(sidecar["backend"])
    runner = backend.implementation().Runner(engine_path, sidecar, profile=profile_name, threads=threads,
                                             options=backend_options)
    profile = runner.profile.profile
    outside = [b for b in batches if not profile.contains_batch(b)]
    if outside:
        raise ProfileError(
            f"{engine_path}: batch {outside[0]} is outside profile {profile.name!r} (batch {profile.min}..{profile.max}); "
            f"fix: benchmark batches inside the profile or add a profile that covers it."
        )
    info = runner.describe()
    inputs = {batch: [random_inputs(spec, batch, "opt", spec.seed, stream=f"bench/{k}") for k in range(input_sets)]
              for batch in batches}
    # loading was beside other jobs; a timing is not, except a GPU timing beside work kept off its cores
    with machine.alone(gpu=backend.needs_gpu(runner.options)):
        measured = []
        for batch in batches:
            with runner.device_memory() as memory:
                measured.append((runner.benchmark(inputs[batch], settings, batch), memory["bytes"]))
    rows = []
    for batch, (stats, memory_bytes) in zip(batches, measured):
        sets = inputs[batch]
        samples = stats.pop("_samples", {})  # per-iteration arrays: not CSV columns
        if timings is not None:
            timings[batch] = samples
        rows.append({
            "model": spec.name, "variant": sidecar["variant"], "precision": sidecar["precision"],
            "backend": sidecar["backend"], "profile": profile.name, "profile_min": profile.min,
            "profile_opt": profile.opt, "profile_max": profile.max, "batch": batch,
            "input_shapes": json.dumps({n: list(a.shape) for n, a in sets[0].items()}, sort_keys=True),
            **info, "input_sets": input_sets, "git_rev": git_rev(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **stats,
            "device_mem_peak_bytes": memory_bytes, "engine_bytes": sidecar.get("engine_bytes", math.nan),
            "host_rss_peak_bytes": host_rss_peak_bytes(),
            "engine_build_s": sidecar.get("build_seconds_total", math.nan),
        })
        log.info("batch %d: %d iterations in %.2fs, median %.3f ms, p99 %.3f ms, %.1f samples/s, cv %.1f%%%s",
                 batch, stats["iterations"], stats["duration_s"], stats["latency_ms_median"], stats["latency_ms_p99"],
                 stats["throughput_samples_s"], 100 * stats["cv"], " (unstable)" if stats["unstable"] else "")
    return pd.DataFrame(rows, columns=bench_columns())
