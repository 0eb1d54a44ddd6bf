"""Check an exported ONNX against PyTorch, and prove that a dynamic export really is dynamic.

For the dynamic variant: every declared axis must be symbolic in the graph, and the graph must
reproduce PyTorch (shapes and values) at batch sizes other than the one it was traced with, and at
the min/max of every dynamic non-batch axis. A model that hard-codes its batch (`x.view(2, -1)`)
fails here with the axis, the batch, the usual cause and the fix, not later in an engine.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from .causes import RESHAPE_CAUSE, cause_and_fix
from .errors import DynamicExportError, ParityError
from .inputs import describe
from .parity import SHAPE_CAUSE, failure_clause, first_failure, parity_rows
from .reference import Reference
from .spec import ModelSpec, Variant

log = logging.getLogger(__name__)

SPECIALISED_CAUSE = (
    "usual cause: forward() ties that axis to a constant, e.g. a reshape to constants (x.view(2, -1)), a tensor of "
    "constant shape combined with the input (x + torch.ones(2, 3)) or a Python int read from x.shape (the export log "
    "names the constraint the exporter found); fix: derive such sizes from the tensor (x.size(0), torch.ones_like) and "
    "re-export"
)
def _ort_detail(exc) -> str:
    """'ONNX Runtime failed in node 'x' (Reshape): <ONNX Runtime's own words>', without its C++ source path and
    function signature."""
    where = f"ONNX Runtime failed in node {exc.node!r} ({exc.op_type})" if exc.node else "ONNX Runtime failed"
    text = str(exc.__cause__ or exc).split("Status Message: ", 1)[-1].splitlines()[0]
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"/onnxruntime_src/\S+:\d+ (?:[\w:&<>*, ]+?\([^)]*\)(?: const)? )?", "", text)
    return f"{where}: {text[:240]}"


def graph_dims(graph) -> dict[str, list[int | str]]:
    """Input name -> dims (int when fixed, the symbol when dynamic, '?' when unnamed)."""
    out = {}
    for value in graph.graph.input:
        dims = []
        for d in value.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
        out[value.name] = dims
    return out


def suspicious_reshapes(graph, sizes: dict[int, str]) -> list[str]:
    """Reshape nodes whose constant target shape contains a traced dynamic size (e.g. the dummy batch)."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in graph.graph.initializer}
    for node in graph.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attr.t)
    found = []
    for node in graph.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        target = [int(v) for v in np.asarray(constants[node.input[1]]).ravel()]
        hits = [f"{v} ({sizes[v]})" for v in target if v in sizes]
        if hits:
            found.append(f"Reshape {node.name or node.output[0]!r} to constant {target} contains {', '.join(hits)}")
    return found


def _where(case, spec: ModelSpec) -> tuple[str, str]:
    """(which axes the case varies, where): ('axis 0 (batch)', 'batch 3') or the dynamic non-batch axes."""
    if case.dims == "opt":
        return "axis 0 (batch)", f"batch {case.batch}"
    names = ", ".join(f"axis {d.axis} ({d.name})" for i in spec.inputs for d in i.dynamic)
    return names, f"batch {case.batch} with {names} at their {case.dims}"


def hard_coded_in_model(shown_as, spec: ModelSpec, case, runs_at: str, suspects: list[str] = ()) -> DynamicExportError:
    """PyTorch's own forward() fails at `case` (the reference recorded it) but runs at `runs_at`."""
    axes, where = _where(case, spec)
    suspect = f"; suspect: {'; '.join(suspects)}" if suspects else ""
    return DynamicExportError(
        f"{shown_as}: {axes} is hard-coded in the model — PyTorch's forward() runs at {runs_at} but fails at {where} "
        f"({case.id}): {case.error}{suspect}; {cause_and_fix(None, case.error, suspects)}."
    )


def refuse_not_dynamic(reference_path: str | Path, spec: ModelSpec, shown_as: str | Path) -> None:
    """For a dynamic engine built from the checkpoint (no ONNX check ran for it), before it compiles: the
    reference's verdict, in the ONNX check's sentence."""
    cases = Reference(reference_path).cases(include_failed=True)
    failed = next((c for c in cases if c.error), None)
    if failed is not None:
        ran = next(c for c in cases if not c.error)  # the reference stage refuses a model that runs nowhere
        raise hard_coded_in_model(shown_as, spec, failed, f"batch {ran.batch} ({ran.id})")


TRACE_FROZE = "trtpipe.trace_froze"  # ONNX metadata the export leaves: where the TorchScript trace froze a value


def check_export(
    onnx_path: str | Path,
    spec: ModelSpec,
    reference_path: str | Path,
    variant: Variant,
    tolerance: dict[str, float],
    dummy_batch: int,
    shown_as: str | Path | None = None,
    stage: str = "export",
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Returns (accuracy rows, report); raises DynamicExportError / ParityError with one sentence.

    `shown_as` names the artifact in messages when `onnx_path` is a temporary file.
    """
    import onnx

    from .ort_session import RunFailure

    graph = onnx.load(str(onnx_path))
    try:
        return _check_export(graph, onnx_path, spec, reference_path, variant, tolerance, dummy_batch, shown_as, stage)
    except (DynamicExportError, ParityError, RunFailure) as exc:
        frozen = next((p.value for p in graph.metadata_props if p.key == TRACE_FROZE), None)
        if frozen is None:
            raise
        text = str(exc)
        cut = min((i for i in (text.find(m) for m in ("; usual cause", "; fix:", ". fix:", ". The values differ")) if i > 0),
                  default=len(text.rstrip(".")))
        message = (f"{text[:cut]}; cause: the TorchScript trace froze a value at {frozen}, so the graph keeps what it "
                   f"computed for the traced input; fix: compute it with tensor operations (x.flatten(1), x.size(0) "
                   f"inside torch ops, torch.where), or export with export.exporter: dynamo.")
        raise (RunFailure(message, exc.node, exc.op_type) if isinstance(exc, RunFailure) else type(exc)(message)) from exc


def _check_export(graph, onnx_path, spec: ModelSpec, reference_path, variant: Variant, tolerance, dummy_batch: int,
                  shown_as, stage: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from .ort_session import RunFailure, run_session, session

    sess = session(str(onnx_path), level="basic")
    onnx_path = str(shown_as or onnx_path)
    dims = graph_dims(graph)
    missing = [n for n in spec.input_names if n not in dims]
    if missing:
        raise DynamicExportError(
            f"{onnx_path}: the graph has no input {missing[0]!r} (it has {', '.join(dims)}); fix: make "
            f"models.{spec.name}.inputs name forward()'s arguments, then re-export."
        )
    dynamic = variant.is_dynamic
    traced_sizes = {dummy_batch: "the traced batch"}
    for inp in spec.inputs:
        for d in inp.dynamic:
            traced_sizes.setdefault(inp.shape[d.axis - 1], f"the traced {d.name}")
    # Reshapes to constants holding a traced size are only suspects: the cases below decide. If the graph runs
    # and matches PyTorch at other batches and dims, a constant that happens to equal the traced size (a window
    # or head count of 2 in a model traced at batch 2) is explained away and not reported.
    suspects = suspicious_reshapes(graph, traced_sizes) if dynamic else []

    if dynamic:
        for inp in spec.inputs:
            for axis, name in inp.dim_names().items():
                value = dims[inp.name][axis]
                if isinstance(value, int):
                    raise DynamicExportError(
                        f"{onnx_path}: input {inp.name!r} axis {axis} ({name}) is fixed to {value} in the exported graph, "
                        f"so this export is not dynamic; {SPECIALISED_CAUSE if not suspects else RESHAPE_CAUSE}"
                        f"{'; suspect: ' + '; '.join(suspects) if suspects else ''}."
                    )

    reference = Reference(reference_path)
    if dynamic:
        cases = reference.cases(include_failed=True)
    else:
        cases = reference.cases_for_batch(variant.batch)
    names = [o.name for o in sess.get_outputs()]
    labels = {"model": spec.name, "stage": stage, "variant": variant.name, "precision": "fp32",
              "backend": "onnxruntime", "profile": ""}
    rows: list[dict[str, Any]] = []
    for case in cases:
        axes, where = _where(case, spec)
        suspect = f"; suspect: {'; '.join(suspects)}" if suspects else ""
        try:
            outputs = run_session(sess, case.inputs, f"{where} ({describe(case.inputs)})")
        except RunFailure as exc:
            if not dynamic:
                raise RunFailure(f"{onnx_path}: {exc}", exc.node, exc.op_type) from exc
            also = "; PyTorch's forward() fails there too" if case.error else ""
            raise DynamicExportError(
                f"{onnx_path}: {axes} is hard-coded — the graph traced at batch {dummy_batch} does not run at {where} "
                f"({case.id}): {_ort_detail(exc)}{also}{suspect}; "
                f"{cause_and_fix(exc.op_type, case.error, suspects)}."
            ) from exc
        if case.error:
            raise hard_coded_in_model(onnx_path, spec, case, f"the traced batch {dummy_batch}", suspects)
        for name, got, want in zip(names, outputs, case.outputs):
            if got.shape != want.shape:
                axis = next((i for i, (a, b) in enumerate(zip(got.shape, want.shape)) if a != b), 0)
                if not dynamic:
                    raise ParityError(
                        f"{onnx_path}: output {name!r} at batch {case.batch} ({case.id}) has shape {list(got.shape)} but "
                        f"PyTorch gives {list(want.shape)}; {SHAPE_CAUSE}."
                    )
                raise DynamicExportError(
                    f"{onnx_path}: output {name!r} at {where} ({case.id}) has shape {list(got.shape)} but PyTorch "
                    f"gives {list(want.shape)}: its axis {axis} does not follow the input{suspect}; "
                    f"{RESHAPE_CAUSE if suspects else SHAPE_CAUSE}."
                )
        rows += parity_rows(labels, case.id, case.batch, names, outputs, case.outputs, tolerance, reference.constant_flags)
        log.info("%s parity %s: max abs err %.3g", stage, case.id, max(r["max_abs_err"] for r in rows[-len(names):]))
    failed = first_failure(rows)
    if failed:
        cls = DynamicExportError if dynamic and failed["case"] != f"b{dummy_batch}" else ParityError
        if "NaN" in failed["note"] or "Inf" in failed["note"]:
            extra = (" fix: look for ops that export to something that overflows or divides by zero (a custom "
                     "normalisation, log/sqrt of a difference, an eps dropped by the exporter).")
        elif cls is DynamicExportError:
            extra = f" The values differ away from the traced batch{suspect}: {cause_and_fix(suspects=suspects)}."
        else:
            extra = " fix: check for ops that export differently (custom autograd functions, in-place ops on inputs)."
        raise cls(f"{onnx_path}: {failure_clause(failed)}.{extra}")
    if suspects:
        log.info("%d Reshape constant(s) equal a traced size, explained away: the graph matches PyTorch at %s "
                 "(first: %s)", len(suspects), ", ".join(c.id for c in cases), suspects[0])
        suspects = []
    report = {"onnx": onnx_path, "variant": variant.name, "input_dims": dims, "cases": [c.id for c in cases],
              "suspicious_reshapes": suspects, "nodes": len(graph.graph.node)}
    return rows, report
