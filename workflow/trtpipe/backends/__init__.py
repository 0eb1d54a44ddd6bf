"""Inference backends. Each backend module (onnxruntime, tensorrt) has the same parts:

- identity() -> what makes its engines invalid elsewhere (library version, device), for the sidecar
- build(onnx_path, engine_path, spec, profiles, shapes, precision, options) -> the sidecar's backend fields
- load(engine_path, sidecar, threads, profile, options) -> a Runner with run(feeds),
  benchmark(feed_sets, settings, batch) and describe()

ort_session.py is not a backend: it runs ONNX files on the CPU for the parity checks of every stage.
Nothing outside this package imports a backend library (onnxruntime, tensorrt) directly.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {"onnxruntime": "trtpipe.backends.onnxruntime", "tensorrt": "trtpipe.backends.tensorrt"}

# Precisions each backend builds engines for. ONNX Runtime's CPU provider has fp16 and int8
# (QDQ -> QLinear) kernels, but no bf16 kernels and runs fp8 Q/DQ only as simulated fp32.
PRECISIONS = {
    "onnxruntime": ("fp32", "fp16", "int8"),
    "tensorrt": ("fp32", "fp16", "bf16", "int8", "fp8"),
}


def get(name: str) -> ModuleType:
    if name not in MODULES:
        from ..errors import TrtpipeError

        raise TrtpipeError(f"backend {name!r} is unknown; fix: use one of {', '.join(sorted(MODULES))}.")
    return importlib.import_module(MODULES[name])
