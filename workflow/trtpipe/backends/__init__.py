"""Inference backends. Each backend module (onnxruntime, tensorrt) has the same parts:

- identity(options) -> what makes its engines invalid elsewhere (library version, device), for the sidecar
- build(source, engine_path, spec, profiles, shapes, precision, options) -> the sidecar's backend fields
  (source: the precision ONNX for onnxruntime/tensorrt, the checkpoint for the torch backends)
- load(engine_path, sidecar, threads, profile, options) -> a Runner with run(feeds),
  benchmark(feed_sets, settings, batch) and describe()

ort_session.py is not a backend: it runs ONNX files on the CPU for the parity checks of every stage.
Nothing outside this package imports a backend library (onnxruntime, tensorrt) directly.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {
    "onnxruntime": "trtpipe.backends.onnxruntime",
    "tensorrt": "trtpipe.backends.tensorrt",
    # PyTorch, one name per mode (see backends/pytorch.py)
    "torch_eager": "trtpipe.backends.pytorch",
    "torch_compile": "trtpipe.backends.pytorch",
    "torch_eager_graph": "trtpipe.backends.pytorch",
    "torch_compile_graph": "trtpipe.backends.pytorch",
}
TORCH_BACKENDS = tuple(name for name, module in MODULES.items() if module.endswith(".pytorch"))
GPU_BACKENDS = ("tensorrt", *TORCH_BACKENDS)  # torch_eager can also run on the CPU (torch.device: cpu)
ONNX_BACKENDS = ("onnxruntime", "tensorrt")  # engines built from the (precision) ONNX; torch runs the checkpoint

# Precisions each backend builds engines for. ONNX Runtime's CPU provider has fp16 and int8
# (QDQ -> QLinear) kernels, but no bf16 kernels and runs fp8 Q/DQ only as simulated fp32.
PRECISIONS = {
    "onnxruntime": ("fp32", "fp16", "int8"),
    "tensorrt": ("fp32", "fp16", "bf16", "int8", "fp8"),
    **{name: ("fp32", "tf32", "fp16", "bf16") for name in TORCH_BACKENDS},
}


def get(name: str) -> ModuleType:
    if name not in MODULES:
        from ..errors import TrtpipeError

        raise TrtpipeError(f"backend {name!r} is unknown; fix: use one of {', '.join(sorted(MODULES))}.")
    return importlib.import_module(MODULES[name])
