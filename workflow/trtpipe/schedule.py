"""How a sweep shares the machine: which builds start first, how many torch.compile builds run at once and on how
many cores, and which cores are kept for GPU timings. Nothing here changes what a job builds or measures, so
none of it is in a rule's params (a new machine or --cores reruns nothing).

On the H200 a sweep of seven real architectures spent its wall time on one chain: six torch.compile builds
started together beside everything else, each with one Inductor worker, took 48-323 s, and every torch timing
waited for the last of them (434 s in all; docs/gpu/sweep_time/). So:

- The costliest compile starts first: the engine job, and the checkpoint and reference jobs it needs, get a
  Snakemake priority equal to the build's expected seconds. An earlier build's recorded seconds (its sidecar)
  are the estimate when there is one; otherwise the model's size in layers (leaf modules, counted on the meta
  device, so nothing is allocated), which is what Inductor's time grows with (its graph and kernel count),
  unlike parameters or FLOPs (VGG has many parameters and few layers).
- The compiles share the build cores: each gets `threads` cores and as many Inductor compile workers, and the
  `compile` resource bounds how many run at once (cores // threads).
- GPU timings keep `scheduling.timing_cores` cores of their own: every other job is confined to the rest (CPU
  affinity, trtpipe.machine), so a GPU timing need not wait for builds to finish.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .spec import ModelSpec

log = logging.getLogger(__name__)

# Seconds of torch.compile per leaf module, for ordering builds that have never run (an earlier build's recorded
# seconds win); measured on the H200 (docs/gpu/sweep_time/): only the order of estimates matters.
SECONDS_PER_LAYER = 0.3
MIN_COMPILE_THREADS = 2  # Inductor's main process plus one worker: fewer is the serial compile that took 323 s


def recorded_build_seconds(engine_dir: str | Path, stem: str | None = None) -> float | None:
    """An earlier build's seconds from its sidecar: this engine's, else the longest of the folder's engines."""
    folder = Path(engine_dir)
    paths = [folder / f"{stem}.json"] if stem else []
    if not (paths and paths[0].exists()):
        paths = sorted(folder.glob("*.json"))
    seconds = []
    for path in paths:
        try:
            value = json.loads(path.read_text()).get("build_seconds_total")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, (int, float)):
            seconds.append(float(value))
    return max(seconds) if seconds else None


def layer_count(spec: ModelSpec) -> int | None:
    """Leaf modules of the factory's model built on the meta device (no memory, no weights), leaving out those
    that do nothing at inference (dropout, identity); None when it cannot be built that way (a TorchScript or
    exported checkpoint, a factory that needs real tensors)."""
    if not spec.factory:
        return None
    try:
        import torch

        from .models import resolve_factory

        with torch.device("meta"):
            model = resolve_factory(spec.factory)(**spec.factory_kwargs)
        idle = (torch.nn.Dropout, torch.nn.Identity)
        return sum(1 for m in model.modules() if not any(True for _ in m.children()) and not isinstance(m, idle))
    except Exception as exc:  # an estimate only: a factory that cannot build on meta gets none
        log.info("model %s: no layer count for scheduling (%s)", spec.name, exc)
        return None


def build_cost(spec: ModelSpec, engine_dir: str | Path, stem: str | None = None) -> tuple[float, str]:
    """(expected seconds of a torch.compile build, where the figure comes from)."""
    recorded = recorded_build_seconds(engine_dir, stem)
    if recorded is not None:
        return recorded, "recorded"
    layers = layer_count(spec)
    if layers is not None:
        return layers * SECONDS_PER_LAYER, f"{layers} layers"
    return 0.0, "unknown"


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
