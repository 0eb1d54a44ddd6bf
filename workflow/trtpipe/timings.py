"""The per-iteration timings kept beside each benchmark CSV.

A CSV row keeps percentiles only, and two sweeps cannot be compared honestly from percentiles: a
significance test and a confidence interval need every timed iteration. This file keeps them,
compactly (float32, compressed), one array per batch and metric, so `trtpipe compare` can test them.

Layout inside the .npz: one array per (batch, metric), named ``b{batch}/{metric}``, e.g. ``b4/latency_ms``,
``b4/compute_ms``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import numpy as np

from .io import atomic_path

TIMINGS_SUFFIX = ".timings.npz"
_KEY = re.compile(r"^b(?P<batch>[1-9][0-9]*)/(?P<metric>[A-Za-z_][A-Za-z0-9_]*)$")

PerBatchTimings = dict[int, dict[str, np.ndarray]]


def timings_path(csv_path: str | os.PathLike) -> Path:
    """Where the raw timings of a benchmark CSV live: same folder and stem, suffix .timings.npz."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.stem + TIMINGS_SUFFIX)


def write_timings(path: str | os.PathLike, per_batch: Mapping[int, Mapping[str, np.ndarray]]) -> None:
    """Write {batch: {metric: per-iteration values}} atomically, as float32.

    float32 keeps 7 significant digits, far finer than any timer's resolution, at half the size.
    """
    arrays = {}
    for batch, metrics in per_batch.items():
        batch = int(batch)
        if batch < 1:
            raise ValueError(f"{path}: batch {batch} must be >= 1")
        for metric, values in metrics.items():
            key = f"b{batch}/{metric}"
            if not _KEY.match(key):
                raise ValueError(f"{path}: metric name {metric!r} must be an identifier, e.g. latency_ms")
            arrays[key] = np.asarray(values, dtype=np.float32).ravel()
    with atomic_path(path) as tmp:
        # A file object, not a name: np.savez appends .npz to a name, which would miss the temporary file.
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def read_timings(path: str | os.PathLike) -> PerBatchTimings:
    """Read what write_timings wrote; ValueError when the file holds anything else."""
    out: PerBatchTimings = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            match = _KEY.match(key)
            if not match:
                raise ValueError(f"{path}: unexpected array {key!r}; a timings file holds b<batch>/<metric> arrays only")
            out.setdefault(int(match["batch"]), {})[match["metric"]] = data[key]
    return out
