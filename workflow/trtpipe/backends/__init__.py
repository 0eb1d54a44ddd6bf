"""Inference backends. Each module has the same two roles:

- build(onnx_path, engine_path, spec, profile, shapes, precision, options) -> sidecar dict
- load(engine_path, sidecar) -> a Runner with run(feeds) and timed_step(feeds)

Nothing outside this package imports a backend library (onnxruntime, tensorrt) directly.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {"onnxruntime": "trtpipe.backends.onnxruntime"}

# Precisions each backend builds engines for. ONNX Runtime's CPU provider has fp16 and int8
# (QDQ -> QLinear) kernels, but no bf16 kernels and runs fp8 Q/DQ only as simulated fp32.
PRECISIONS = {
    "onnxruntime": ("fp32", "fp16", "int8"),
}


def get(name: str) -> ModuleType:
    if name not in MODULES:
        from ..errors import TrtpipeError

        raise TrtpipeError(f"backend {name!r} is unknown; fix: use one of {', '.join(sorted(MODULES))}.")
    return importlib.import_module(MODULES[name])
