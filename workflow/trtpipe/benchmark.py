"""Benchmark one engine at every requested batch size inside its profile; one CSV row per batch."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from .backends import get as get_backend
from .engine import read_sidecar
from .errors import ProfileError
from .gpu import GPU_COLUMNS
from .inputs import random_inputs
from .spec import ModelSpec
from .sysinfo import git_rev
from .timing import STAT_COLUMNS, TimingSettings

log = logging.getLogger(__name__)

PROVENANCE_COLUMNS = [
    "model", "variant", "precision", "backend", "profile", "profile_min", "profile_opt", "profile_max", "batch",
    "input_shapes", "device", "backend_version", "threads", "transfers_included", "cuda_graph", "input_sets",
    "git_rev", "timestamp",
]
# GPU-only columns are empty (NaN) for CPU backends: one schema for every row.
BENCH_COLUMNS = PROVENANCE_COLUMNS + STAT_COLUMNS + GPU_COLUMNS + ["trtexec_compute_ms_median", "driver", "sm_clock_mhz"]


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
) -> pd.DataFrame:
    sidecar = read_sidecar(sidecar_path)
    module = get_backend(sidecar["backend"])
    profiles = {p["name"]: p for p in sidecar["profiles"]}
    profile = profiles[profile_name] if profile_name in profiles else sidecar["profiles"][0]
    if profile_name and profile_name not in profiles:
        raise ProfileError(f"{engine_path} has no profile {profile_name!r} (it has {', '.join(profiles)}); fix: pick one of those.")
    outside = [b for b in batches if not profile["min"] <= b <= profile["max"]]
    if outside:
        raise ProfileError(
            f"{engine_path}: batch {outside[0]} is outside profile {profile['name']!r} (batch {profile['min']}..{profile['max']}); "
            f"fix: benchmark batches inside the profile or add a profile that covers it."
        )
    runner = module.load(engine_path, sidecar, threads=threads, profile=profile["name"], options=backend_options or {})
    info = runner.describe()
    rows = []
    for batch in batches:
        sets = [random_inputs(spec, batch, "opt", spec.seed, stream=f"bench/{k}") for k in range(input_sets)]
        stats = runner.benchmark(sets, settings, batch)
        rows.append({
            "model": spec.name, "variant": sidecar["variant"], "precision": sidecar["precision"],
            "backend": sidecar["backend"], "profile": profile["name"], "profile_min": profile["min"],
            "profile_opt": profile["opt"], "profile_max": profile["max"], "batch": batch,
            "input_shapes": json.dumps({n: list(a.shape) for n, a in sets[0].items()}, sort_keys=True),
            **info, "input_sets": input_sets, "git_rev": git_rev(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **stats,
        })
        log.info("batch %d: %d iterations in %.2fs, median %.3f ms, p99 %.3f ms, %.1f samples/s, cv %.1f%%%s",
                 batch, stats["iterations"], stats["duration_s"], stats["latency_ms_median"], stats["latency_ms_p99"],
                 stats["throughput_samples_s"], 100 * stats["cv"], " (unstable)" if stats["unstable"] else "")
    return pd.DataFrame(rows, columns=BENCH_COLUMNS)


def read_all(paths: list[str | Path]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=BENCH_COLUMNS)
