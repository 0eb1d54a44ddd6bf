"""Seeded random inputs: never zeros, valid for integer inputs, reproducible from (seed, case)."""

from __future__ import annotations

import zlib

import numpy as np

from .spec import ModelSpec

NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32, "bool": np.bool_}


def random_inputs(spec: ModelSpec, batch: int, dims: str = "opt", seed: int = 0, stream: str = "") -> dict[str, np.ndarray]:
    """One set of inputs at `batch`, non-batch dims at `dims` (min/opt/max).

    `stream` separates independent uses (reference cases, benchmark sets) of the same seed.
    """
    rng = np.random.default_rng([seed, zlib.crc32(f"{stream}/{batch}/{dims}".encode())])
    out = {}
    for inp in spec.inputs:
        shape = inp.full_shape(batch, dims)
        if inp.dtype == "bool":
            out[inp.name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif inp.dtype in ("int64", "int32"):
            low, high = inp.range
            out[inp.name] = rng.integers(int(low), int(high), size=shape).astype(NUMPY_DTYPES[inp.dtype])
        elif inp.range is not None:
            out[inp.name] = rng.uniform(inp.range[0], inp.range[1], size=shape).astype(NUMPY_DTYPES[inp.dtype])
        else:
            out[inp.name] = rng.standard_normal(size=shape).astype(NUMPY_DTYPES[inp.dtype])
    return out


def describe(inputs: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{n} {'x'.join(map(str, a.shape))}" for n, a in inputs.items())
