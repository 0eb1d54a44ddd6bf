"""What makes a backend's engines invalid on another machine, computed cheaply at DAG time for the engine
rules' params, so that Snakemake rebuilds engines when the library version or the device changes."""

from __future__ import annotations

import functools


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
