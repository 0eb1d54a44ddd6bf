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

# How far apart the samples of an output may be and still count as "the same for every input": 1e-6 of its largest
# value, so that an output that merely varies little is not flagged, plus 1e-6 absolute, 100x below fp32's parity atol,
# so that an output that is ~0 everywhere is (seeded torchvision MobileNetV3-Large: logits of 1e-9 for every image).
CONSTANT_RTOL, CONSTANT_ATOL = 1e-6, 1e-6


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
        from .causes import hardcoded_batch_error

        tried = sorted({c["batch"] for c in cases})
        hardcoded = hardcoded_batch_error(model, spec, set(tried), failures[0],
                                          f"every batch this sweep runs ({', '.join(map(str, tried))})")
        raise hardcoded or failures[0]
    refuse_nonfinite(spec, model, checkpoint, cases, arrays, output_names)
    refuse_batch_mismatch(spec, cases, arrays, output_names)
    constant = input_independent(spec, cases, arrays, output_names)
    for name, seen in constant.items():
        log.warning(
            "model %s: PyTorch's output %r is the same for all %d seeded random samples (at most %.3g apart, largest "
            "magnitude %.3g: a zero-initialised head, or seeded weights?), so every parity check of it passes whatever "
            "an artifact does with its input; fix: give trained weights (models.%s.checkpoint, or the factory's "
            "pretrained weights through models.%s.factory_kwargs).",
            spec.name, name, seen["samples"], seen["spread"], seen["scale"], spec.name, spec.name)
    if flops_path is not None:
        from .io import write_json

        flops = count_flops(model, spec)
        # how the checkpoint was loaded, where its factory loaded it (trtpipe.hf: what transformers ignored or missed)
        flops["loading"] = getattr(model, "trtpipe_loading", None)
        log.info("%s FLOPs per sample at %s", f"{flops['flops_per_sample']:,}" if flops["flops_per_sample"] else "no", flops["counted_at"])
        write_json(flops_path, flops)
    meta = {"model": spec.name, "cases": cases, "inputs": spec.input_names, "outputs": output_names,
            "input_independent": constant,
            "torch": torch.__version__, "checkpoint": str(checkpoint) if checkpoint else None}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def refuse_nonfinite(spec: ModelSpec, model, checkpoint: str | None, cases: list[dict[str, Any]],
                     arrays: dict[str, np.ndarray], output_names: list[str]) -> None:
    """A reference holding NaN/Inf would make every later parity check meaningless (NaN is never equal,
    so every stage would fail for a reason that is PyTorch's): say so here, once, with the output."""
    for case in cases:
        if case.get("error"):
            continue
        for name in output_names:
            out = arrays[f"{case['id']}/output/{name}"]
            if not np.issubdtype(out.dtype, np.floating) or np.isfinite(out).all():
                continue
            nan, inf = int(np.isnan(out).sum()), int(np.isinf(out).sum())
            bad = ", ".join(f"{n} {k}" for n, k in ((nan, "NaN"), (inf, "Inf")) if n)
            seeded = spec.checkpoint is None  # the weights are trtpipe's own seeded ones: no checkpoint to blame
            source = ("trtpipe's seeded weights" + (f" ({checkpoint})" if checkpoint else "") if seeded
                      else f"checkpoint {checkpoint}")
            suspect = ("forward() (an operation that gives NaN/Inf on these weights and inputs: log, sqrt or division of "
                       "values near 0, an overflow, a NaN constant)" if seeded else
                       "the checkpoint (a diverged training run, a wrong file)")
            inputs = {k.rsplit("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{case['id']}/input/")}
            raise TrtpipeError(
                f"model {spec.name}: PyTorch itself returns {bad} of {out.size} values in output {name!r} at batch "
                f"{case['batch']} ({case['id']}) for seeded random inputs ({_ranges(spec, inputs)}) with {source}"
                f"{_nonfinite_weights(model)}, so nothing can be checked against it; fix: check {suspect} "
                f"and the input ranges (models.{spec.name}.inputs[].range: "
                f"log/sqrt/division of values the model never sees in practice)."
            )


def _ranges(spec: ModelSpec, inputs: dict[str, np.ndarray]) -> str:
    parts = []
    for inp in spec.inputs:
        arr = inputs[inp.name]
        if inp.range is not None:
            what = f"in [{inp.range[0]:g}, {inp.range[1]:g})"
        elif np.issubdtype(arr.dtype, np.floating):
            what = "standard normal"
        else:
            what = str(arr.dtype)
        parts.append(f"{inp.name} {'x'.join(map(str, arr.shape))} {what}")
    return ", ".join(parts)


def _nonfinite_weights(model) -> str:
    """' (parameter 'fc.weight' holds NaN/Inf)' where the weights themselves are broken."""
    try:
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
                return f" (its parameter {name!r} itself holds NaN/Inf)"
    except Exception:  # TorchScript/exported programs: no state_dict to look into
        pass
    return ""


def refuse_batch_mismatch(spec: ModelSpec, cases: list[dict[str, Any]], arrays: dict[str, np.ndarray],
                          output_names: list[str]) -> None:
    """Every stage assumes an output's axis 0 is the batch. An output whose axis 0 is the batch at one batch
    and not at another (`self.fc(x) + torch.ones(2, 3)` returns batch 2 for batch 1) has it hard-coded: it
    would pass every later parity check at the batch it happens to fit, so it is refused here.

    An output whose axis 0 never moves with the batch (a constant, say) is left alone when PyTorch ran at
    every reference batch: it has no batch axis at all."""
    opt = [c for c in cases if c["dims"] == "opt"]  # same non-batch dims: only the batch differs
    ran = [c for c in opt if not c.get("error")]
    for name in output_names:
        seen = [(c, arrays[f"{c['id']}/output/{name}"].shape) for c in ran]
        seen = [(c, shape) for c, shape in seen if len(shape)]
        follows = [c for c, shape in seen if shape[0] == c["batch"]]
        breaks = [(c, shape) for c, shape in seen if shape[0] != c["batch"]]
        if not follows or not breaks:
            continue
        constant = len({shape for _, shape in seen}) == 1
        if constant and len(ran) == len(opt):
            log.warning("output %r has the same shape %s at every batch: it is treated as having no batch axis",
                        name, list(seen[0][1]))
            continue
        case, shape = breaks[0]
        good = follows[0]
        expected = [case["batch"], *shape[1:]]
        raise TrtpipeError(
            f"model {spec.name}: PyTorch returns output {name!r} with shape {list(shape)} for batch {case['batch']} "
            f"({case['id']}) where [{', '.join(map(str, expected))}] is expected (its axis 0 follows the batch at batch "
            f"{good['batch']}): the batch is hard-coded in forward(); likely cause: a tensor of constant shape created in "
            f"forward() (torch.ones(2, 3), torch.zeros(2, ...)) that broadcasts against the batch; fix: build it from the "
            f"input (x.new_ones(x.size(0), 3), torch.ones_like(y)) or give it size 1 on axis 0."
        )


def input_independent(spec: ModelSpec, cases: list[dict[str, Any]], arrays: dict[str, np.ndarray],
                      output_names: list[str]) -> dict[str, dict[str, float]]:
    """Outputs that PyTorch computes without looking at the input, each with what showed it (samples, the largest
    difference between them, the largest magnitude): parity against them proves nothing (seeded torchvision
    ViT-B/16 gives zero logits for every image).

    Rule: a floating output whose axis 0 follows the batch is input-independent when every sample, across the
    batch and across cases (their seeded inputs differ), is within CONSTANT_RTOL x its largest magnitude +
    CONSTANT_ATOL of every other; samples are compared per shape (min/max dims may change it), and only where their
    inputs differ. Integer outputs (a shape, an index) and outputs without a batch axis (a table, anchors) are
    constant by design and never flagged."""
    ran = [c for c in cases if not c.get("error")]
    found: dict[str, dict[str, float]] = {}
    for name in output_names:
        outs = [(c, arrays[f"{c['id']}/output/{name}"]) for c in ran]
        if not outs or not np.issubdtype(outs[0][1].dtype, np.floating):
            continue
        if any(o.ndim == 0 or o.size == 0 or o.shape[0] != c["batch"] for c, o in outs):
            continue
        groups: dict[tuple[int, ...], list[tuple[np.ndarray, list[np.ndarray]]]] = {}
        for c, o in outs:
            inputs = [arrays[f"{c['id']}/input/{n}"] for n in spec.input_names]
            for i in range(c["batch"]):
                groups.setdefault(o.shape[1:], []).append((o[i], [x[i] for x in inputs]))
        samples, spread, scale = 0, 0.0, 0.0
        for group in groups.values():
            first = group[0][1]
            if not any(any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(ins, first))
                       for _, ins in group[1:]):
                continue  # identical inputs say nothing
            lo, hi = group[0][0].astype(np.float64), group[0][0].astype(np.float64)
            for out, _ in group[1:]:  # elementwise min/max, one sample at a time: large outputs x many samples
                np.minimum(lo, out, out=lo)
                np.maximum(hi, out, out=hi)
            samples += len(group)
            spread = max(spread, float((hi - lo).max()))
            scale = max(scale, float(np.abs(lo).max()), float(np.abs(hi).max()))
        if samples and spread <= CONSTANT_RTOL * scale + CONSTANT_ATOL:
            found[name] = {"samples": samples, "spread": spread, "scale": scale}
    return found


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
        # output name -> {samples, spread, scale} for outputs that ignore the input (absent in older references)
        self.input_independent: dict[str, dict[str, float]] = meta.get("input_independent", {})
        self._cases = meta["cases"]

    @property
    def constant_flags(self) -> list[bool]:
        """Per output (in order): whether PyTorch gives the same values for every input (parity proves nothing)."""
        return [n in self.input_independent for n in self.output_names]

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
