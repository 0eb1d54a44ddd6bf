"""What every backend shares: the build request, and a runner base that does the checks every backend needs
once — the engine's profile from its sidecar, the refusal of a foreign engine, inputs inside the profile —
so a backend implements only loading, running and timing (after Polygraphy's backend/base/runner.py: one
public `infer` that checks, subclasses implementing `*_impl`)."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EngineMismatch, ProfileError
from ..spec import ModelSpec, Profile, Shape, Variant, check_shapes_in_profile
from .registry import Backend, get


@dataclass(frozen=True)
class BuildRequest:
    """Everything a backend's build() needs; `engine_path` is a temporary file moved into place on success."""

    backend: Backend
    source: Path  # the (precision) ONNX, or the checkpoint
    engine_path: Path
    spec: ModelSpec
    variant: Variant
    precision: str
    profiles: tuple[Profile, ...]  # one per engine, or several where the backend combines them
    options: dict[str, Any]  # the backend's config section, defaults filled
    final_path: Path | None = None  # where the engine goes: how messages name it

    @property
    def shown_as(self) -> Path:
        return self.final_path or self.engine_path

    def shapes(self, profile: Profile) -> dict[str, tuple[Shape, Shape, Shape]]:
        return profile.shapes(self.spec, self.variant)


@dataclass(frozen=True)
class EngineProfile:
    """One profile of a built engine, as its sidecar records it."""

    profile: Profile
    index: int  # its position in the engine (TensorRT: the optimization profile index)
    ranges: dict[str, tuple[Shape, Shape, Shape]]

    @property
    def name(self) -> str:
        return self.profile.name


def engine_profile(sidecar: dict[str, Any], name: str | None, engine_path: str | Path) -> EngineProfile:
    """The sidecar's profile called `name` (default: the engine's first)."""
    names = [p["name"] for p in sidecar["profiles"]]
    name = name or names[0]
    if name not in names:
        raise ProfileError(f"{engine_path} has no profile {name!r} (it has {', '.join(names)}); fix: pick one of those.")
    index = names.index(name)
    entry = sidecar["profiles"][index]
    ranges = {n: tuple(tuple(int(d) for d in s) for s in v) for n, v in entry["shapes"].items()}
    return EngineProfile(Profile.from_dict(entry), index, ranges)


def refuse_foreign_engine(engine_path, sidecar: dict, here: dict, library: str) -> None:
    """An engine is only valid with the library version and on the device that built it (its sidecar says
    which): anywhere else — another GPU model or node type on a cluster, an upgraded library — say so in one
    sentence rather than time it."""
    built = {k: sidecar.get(k) for k in here}
    if built == here:
        return

    def where(d):
        cc = f" (cc {d['compute_capability']})" if d.get("compute_capability") else ""
        # other keys that differ (the TensorRT an ONNX Runtime EP-context engine was built with) are named too
        extra = "".join(f", {k.replace('_', ' ')} {d.get(k)}" for k in here
                        if k not in ("backend_version", "device", "compute_capability") and built.get(k) != here.get(k))
        return f"{library} {d['backend_version']}{extra} on {d['device']}{cc}"

    raise EngineMismatch(f"{engine_path} was built for {where(built)}, but this machine has {where(here)}; fix: rebuild "
                         f"the engine here (delete it and rerun), never time a foreign engine.")


def refuse_altered_engine(engine_path, sidecar: dict) -> None:
    """An engine whose size is not the one its build recorded was cut short or altered since (a copy that stopped,
    a full disk, a hand edit): it is removed, so that the next run rebuilds it (Snakemake cannot see the change, and
    would otherwise fail on it in every run), and the job fails with one sentence. A change that keeps the size is
    not caught (a digest of a multi-GB engine at every load costs more than it is worth)."""
    built = sidecar.get("engine_bytes")
    size = os.path.getsize(engine_path) if os.path.exists(engine_path) else None
    if built is None or size is None or size == built:
        return
    os.remove(engine_path)
    raise EngineMismatch(f"{engine_path} has {size} bytes, but its build wrote {built} (its sidecar's engine_bytes): it was "
                         f"cut short or altered after the build, so it was removed; fix: run the workflow again, which "
                         f"rebuilds it (or, by hand, rebuild it with trtpipe build-engine).")


class Runner:
    """Loads one engine for one of its profiles. Subclasses implement machine_identity(), load(), run_impl(),
    benchmark_impl() and describe_impl(); the public methods check what every backend must check."""

    def __init__(self, engine_path: str | Path, sidecar: dict[str, Any], profile: str | None = None, threads: int = 0,
                 options: dict[str, Any] | None = None):
        self.backend = get(sidecar["backend"])
        self.engine_path = str(engine_path)
        self.sidecar = sidecar
        self.options = self.backend.with_defaults(options)
        self.threads = threads
        self.profile = engine_profile(sidecar, profile, engine_path)
        self.output_names: list[str] = []
        refuse_altered_engine(engine_path, sidecar)
        self.here = self.identity()  # once: a GPU backend's identity queries the device
        refuse_foreign_engine(engine_path, sidecar, self.here, self.backend.library)
        self.load()

    # --- what a backend implements ------------------------------------------------------------
    @classmethod
    def machine_identity(cls, options: dict[str, Any]) -> dict[str, str]:
        """The identity contract: what this machine would build with these options (defaults filled), as flat
        strings: `backend_version` and `device`, plus `compute_capability` on a GPU and whatever else makes an
        engine invalid elsewhere. build_engine writes it into every sidecar; before an engine is loaded, identity()
        is compared with the sidecar key by key (refuse_foreign_engine): one that differs makes the engine foreign.
        Called once per build and per load, so it may query the device; the registry's `dag_identity` is the cheap
        DAG-time counterpart that goes into the rules' params."""
        raise NotImplementedError

    def identity(self) -> dict[str, str]:
        """What this engine's sidecar must match here: machine_identity of the runner's options. A backend overrides
        it only to add what the loaded engine itself ties it to (the torch device it was built for, say)."""
        return self.machine_identity(self.options)

    def load(self) -> None:
        raise NotImplementedError

    def run_impl(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def benchmark_impl(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        raise NotImplementedError

    def describe_impl(self) -> dict[str, Any]:
        """device, threads, transfers_included, cuda_graph (and GPU columns) of the rows this runner times."""
        raise NotImplementedError

    # --- the shared checks --------------------------------------------------------------------
    def check(self, feeds: dict[str, np.ndarray]) -> None:
        """Refuse shapes outside the profile, as TensorRT's set_input_shape does, naming the range."""
        check_shapes_in_profile({n: a.shape for n, a in feeds.items()}, self.profile.ranges, self.engine_path,
                                self.profile.name)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.check(feeds)
        return self.run_impl(feeds)

    def benchmark(self, feed_sets: list[dict[str, np.ndarray]], settings, batch: int) -> dict[str, Any]:
        for feeds in feed_sets:
            self.check(feeds)
        return self.benchmark_impl(feed_sets, settings, batch)

    def describe(self) -> dict[str, Any]:
        return {"backend_version": self.here["backend_version"], **self.describe_impl()}

    @contextlib.contextmanager
    def device_memory(self):
        """Around a timing: yields a dict whose "bytes" holds the engine's peak device memory once the block ends.

        A backend may override this; the default covers today's backends without touching them:
        - an engine whose sidecar records device_memory_bytes (TensorRT): that (activations, scratch) plus its
          weights where the sidecar records them (weights_bytes); the harness's own I/O buffers are not counted;
        - ONNX Runtime on the GPU overrides it (NaN: its CUDA arena is invisible to PyTorch's counter);
        - other GPU runners (PyTorch): torch.cuda.max_memory_allocated over the timing, its peak reset before;
        - CPU runners: NaN (no device memory).
        """
        out = {"bytes": math.nan}
        if self.sidecar.get("device_memory_bytes") is not None:
            out["bytes"] = float(self.sidecar["device_memory_bytes"]) + float(self.sidecar.get("weights_bytes") or 0)
            yield out
            return
        torch = None
        if self.backend.needs_gpu(self.options):
            try:
                import torch
            except ImportError:
                torch = None
        if torch is None or not torch.cuda.is_available():
            yield out
            return
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        yield out
        torch.cuda.synchronize()
        out["bytes"] = float(torch.cuda.max_memory_allocated())


def cpu_description(threads: int, transfers_included: bool = True) -> dict[str, Any]:
    from ..sysinfo import cpu_name

    return {"device": cpu_name(), "threads": threads, "transfers_included": transfers_included, "cuda_graph": False}


def gpu_description(info: dict[str, Any], transfers_included: bool, cuda_graph: bool) -> dict[str, Any]:
    return {"device": f"{info['name']} (cc {info['compute_capability']})", "threads": 0,
            "transfers_included": transfers_included, "cuda_graph": cuda_graph, "driver": info.get("driver", ""),
            "sm_clock_mhz": info.get("sm_clock_mhz", float("nan"))}
