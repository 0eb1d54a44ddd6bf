"""How a sweep shares the machine: which builds start first, how many torch.compile builds run at once and on how
many cores, and whether GPU timings keep cores of their own. Nothing here changes what a job builds or measures,
so none of it is in a rule's params (a new machine or --cores reruns nothing).

Measured on the H200 (docs/gpu/sweep_time/, seven real architectures and a hard-coded batch): one Inductor
worker per compile made swin_t's build the critical path (147 s of a 238 s sweep); two workers each brought it
to 105-114 s and the sweep to 219 s with every timing alone.

- The costliest compile starts first: the engine job, and the checkpoint and reference jobs it needs, get a
  Snakemake priority equal to the build's expected seconds, an earlier build's recorded seconds (its sidecar;
  none on a first sweep). A model's size in layers was tried as an estimate and dropped: counting them on the
  meta device added 15 s to the sweep's start, and it ranked swin_t (110 layers, 90-133 s of compile) below
  mnasnet1_0 (140 layers, 44-49 s).
- The compiles share the build cores: each gets `threads` cores and as many Inductor compile workers, and the
  `compile` resource bounds how many run at once (cores // threads).
- GPU timings may keep `scheduling.timing_cores` cores of their own (off by default): every other job is then
  confined to the rest (CPU affinity, trtpipe.machine), so a GPU timing need not wait for builds. On the H200 the
  same timing beside confined compiles read 20-89% slower in 4 of 6 cases, so by default timings wait for a
  quiet machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MIN_COMPILE_THREADS = 2  # one Inductor worker compiles serially: swin_t's build took 147 s with one, 105-114 s with two


def recorded_build_seconds(sidecar: str | Path) -> float | None:
    """An earlier build's seconds from its sidecar: this engine's, else the longest of its folder's engines (the
    model's other builds on this backend)."""
    sidecar = Path(sidecar)
    paths = [sidecar] if sidecar.exists() else sorted(sidecar.parent.glob("*.json"))
    seconds = []
    for path in paths:
        try:
            value = json.loads(path.read_text()).get("build_seconds_total")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, (int, float)):
            seconds.append(float(value))
    return max(seconds) if seconds else None


def build_cost(sidecar: str | Path) -> tuple[float, str]:
    """(expected seconds of a torch.compile build, where the figure comes from): an earlier build's, or none."""
    recorded = recorded_build_seconds(sidecar)
    return (recorded, "recorded") if recorded is not None else (0.0, "no earlier build")


def build_cores(cores: int, timing_cores: int) -> int:
    """The cores builds and other work run on: the rest once timing cores are kept (at least one)."""
    return max(1, cores - timing_cores)


def compile_threads(cores: int, compiles: int, configured: int = 0) -> int:
    """Cores (and Inductor compile workers) of each torch.compile build: the configured number, or an equal share
    of the build cores among the sweep's compiles, at least MIN_COMPILE_THREADS, never more than the cores."""
    if configured:
        return max(1, min(configured, cores))
    return max(1, min(cores, max(MIN_COMPILE_THREADS, cores // max(1, compiles))))


def compile_slots(cores: int, threads: int) -> int:
    """How many torch.compile builds run at once: as many as the build cores hold at `threads` each."""
    return max(1, cores // max(1, threads))


def timing_cores_of(allowed: list[int], timing_cores: int) -> tuple[list[int], list[int]]:
    """(cores for everything else, cores kept for GPU timings) out of the cores this process may use: the last
    `timing_cores` of them are kept, unless that would leave nothing else."""
    allowed = sorted(allowed)
    if timing_cores <= 0 or timing_cores >= len(allowed):
        return allowed, []
    return allowed[:-timing_cores], allowed[-timing_cores:]


TIMING_CORES_ENV = "TRTPIPE_TIMING_CORES"  # set by the workflow for every job of a sweep that times on a GPU


def configured_timing_cores() -> int:
    try:
        return max(0, int(os.environ.get(TIMING_CORES_ENV, "0")))
    except ValueError:
        return 0
