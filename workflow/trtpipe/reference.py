"""PyTorch reference inputs and outputs: what every later stage is compared against.

One .npz per model holds several cases (batch sizes at the opt dims, plus min/max dims where
non-batch axes are dynamic). Engines whose profile admits none of the batches get a case tiled
along the batch axis; that relies on samples being independent, which the dynamic check verifies
across batch sizes before any engine is built.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .inputs import describe, random_inputs
from .errors import TrtpipeError
from .io import atomic_path
from .spec import ModelSpec

log = logging.getLogger(__name__)


def reference_cases(spec: ModelSpec, batches: list[int]) -> list[dict[str, Any]]:
    """Reference cases: every batch at opt dims, plus min and max dims where non-batch axes vary."""
    cases = [{"id": f"b{b}", "batch": b, "dims": "opt"} for b in batches]
    if spec.has_dynamic_dims:
        cases += [{"id": "b1-dmin", "batch": 1, "dims": "min"}, {"id": "b1-dmax", "batch": 1, "dims": "max"}]
    return cases


def count_flops(model, spec: ModelSpec) -> dict[str, Any]:
    """FLOPs of one sample at the opt dims (PyTorch's flop counter: matmuls and convolutions, 2 per MAC)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .models import ordered_input_names

    inputs = random_inputs(spec, 1, "opt", spec.seed, stream="flops")
    args = [torch.from_numpy(inputs[n]) for n in ordered_input_names(model, spec)]
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(*args)
        flops = int(counter.get_total_flops())
    except Exception as exc:  # some module types escape the counter; the report then shows no efficiency
        log.warning("could not count FLOPs (%s: %s)", type(exc).__name__, str(exc).splitlines()[0][:200])
        flops = None
    return {"model": spec.name, "flops_per_sample": flops, "counted_at": f"batch 1, {describe(inputs)}",
            "tool": f"torch.utils.flop_counter (torch {torch.__version__})"}


def make_reference(spec: ModelSpec, checkpoint: str | None, batches: list[int], out_path: str | Path,
                   flops_path: str | Path | None = None) -> None:
    import torch

    from .models import build_model, ordered_input_names, run_model

    model = build_model(spec, checkpoint)
    ordered_input_names(model, spec)  # fail early on an input name forward() does not take
    arrays: dict[str, np.ndarray] = {}
    cases = reference_cases(spec, batches)
    output_names: list[str] = []
    failures: list[TrtpipeError] = []
    for case in cases:
        inputs = random_inputs(spec, case["batch"], case["dims"], spec.seed, stream=f"reference/{case['id']}")
        for name, arr in inputs.items():
            arrays[f"{case['id']}/input/{name}"] = arr
        try:
            output_names, outputs = run_model(model, spec, inputs)
        except TrtpipeError as exc:
            # A forward() that runs at some batches only hard-codes its batch: recorded here, reported by
            # the dynamic check with the axis, the batch and the fix. Failing everywhere is a config error.
            cause = exc.__cause__ or exc
            case["error"] = f"{type(cause).__name__}: {str(cause).splitlines()[0][:300]}"
            failures.append(exc)
            log.warning("reference %s: %s", case["id"], exc)
            continue
        for name, arr in zip(output_names, outputs):
            arrays[f"{case['id']}/output/{name}"] = arr
        log.info("reference %s: %s -> %s", case["id"], describe(inputs),
                 ", ".join(f"{n} {'x'.join(map(str, a.shape))}" for n, a in zip(output_names, outputs)))
    if len(failures) == len(cases):
        raise failures[0]
    if flops_path is not None:
        from .io import write_json

        flops = count_flops(model, spec)
        log.info("%s FLOPs per sample at %s", f"{flops['flops_per_sample']:,}" if flops["flops_per_sample"] else "no", flops["counted_at"])
        write_json(flops_path, flops)
    meta = {"model": spec.name, "cases": cases, "inputs": spec.input_names, "outputs": output_names,
            "torch": torch.__version__, "checkpoint": str(checkpoint) if checkpoint else None}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


@dataclass
class Case:
    id: str
    batch: int
    dims: str
    inputs: dict[str, np.ndarray]
    outputs: list[np.ndarray]  # empty when PyTorch failed on this case
    error: str | None = None  # PyTorch's failure on this case, if any


class Reference:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        with np.load(self.path, allow_pickle=False) as data:
            self._arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(self._arrays["meta"]))
        self.output_names: list[str] = meta["outputs"]
        self.input_names: list[str] = meta["inputs"]
        self._cases = meta["cases"]

    @property
    def case_ids(self) -> list[str]:
        return [c["id"] for c in self._cases]

    def case(self, case_id: str) -> Case:
        c = next(c for c in self._cases if c["id"] == case_id)
        error = c.get("error")
        return Case(
            c["id"], c["batch"], c["dims"],
            {n: self._arrays[f"{case_id}/input/{n}"] for n in self.input_names},
            [] if error else [self._arrays[f"{case_id}/output/{n}"] for n in self.output_names],
            error,
        )

    def cases(self, include_failed: bool = False) -> list[Case]:
        cases = [self.case(i) for i in self.case_ids]
        return cases if include_failed else [c for c in cases if c.error is None]

    def cases_for_batch(self, batch: int) -> list[Case]:
        return [c for c in self.cases(include_failed=True) if c.batch == batch and c.dims == "opt"]

    def cases_within(self, batch_min: int, batch_opt: int, batch_max: int, dims: tuple[str, ...] = ("opt", "min", "max")) -> list[Case]:
        """Cases brought into a batch range: kept if they fit, else tiled to opt or cut to max.

        One case per resulting (batch, dims), preferring the case with the most distinct samples.
        """
        chosen: dict[tuple[int, str], Case] = {}
        for case in sorted(self.cases(), key=lambda c: -c.batch):
            if case.dims not in dims:
                continue
            target = case.batch if batch_min <= case.batch <= batch_max else (batch_max if case.batch > batch_max else batch_opt)
            key = (target, case.dims)
            if key not in chosen:
                chosen[key] = case if target == case.batch else _resize_batch(case, target)
        return [chosen[k] for k in sorted(chosen)]


def _resize_batch(case: Case, batch: int) -> Case:
    index = np.arange(batch) % case.batch
    return Case(
        f"{case.id}->b{batch}", batch, case.dims,
        {n: a[index] for n, a in case.inputs.items()},
        [o[index] if o.ndim and o.shape[0] == case.batch else o for o in case.outputs],
    )
