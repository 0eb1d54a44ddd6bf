"""What makes a backend's engines invalid on another machine, computed cheaply at DAG time for the engine
rules' params, so that Snakemake rebuilds engines when the library version or the device changes."""

from __future__ import annotations

import functools

from .errors import EngineMismatch


@functools.lru_cache(maxsize=None)
def params_identity(backend: str, device: str = "cuda") -> dict[str, str]:
    """What makes a backend's engines invalid elsewhere, cheaply, for the engine rule's params (Snakemake
    then rebuilds engines when the library version or the device changes). Never raises: a missing
    library is reported by the job itself."""
    import importlib.metadata

    from .sysinfo import cpu_name

    if backend == "onnxruntime":
        return {"onnxruntime": importlib.metadata.version("onnxruntime"), "device": cpu_name()}
    if backend.startswith("torch_"):
        from .gpu import visible_gpu_identity

        return {"torch": importlib.metadata.version("torch"), "device": cpu_name() if device == "cpu" else visible_gpu_identity()}
    from .gpu import visible_gpu_identity

    try:
        import tensorrt

        trt_version = tensorrt.__version__
    except Exception:  # absent, or present but broken (missing libnvinfer): the job says which, not the DAG
        trt_version = "not installed"
    return {"tensorrt": trt_version, "device": visible_gpu_identity()}


def refuse_foreign_engine(engine_path, sidecar: dict, here: dict, library: str) -> None:
    """An engine is only valid with the library version and on the device that built it (its sidecar says
    which): anywhere else — another GPU model or node type on a cluster, an upgraded library — say so in one
    sentence rather than time it."""
    built = {k: sidecar.get(k) for k in here}
    if built == here:
        return

    def where(d):
        cc = f" (cc {d['compute_capability']})" if "compute_capability" in d else ""
        return f"{library} {d['backend_version']} on {d['device']}{cc}"

    raise EngineMismatch(f"{engine_path} was built for {where(built)}, but this machine has {where(here)}; fix: rebuild "
                         f"the engine here (delete it and rerun), never time a foreign engine.")
