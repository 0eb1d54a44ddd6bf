"""PyTorch -> ONNX: one static graph per batch size and one dynamic graph.

The dynamic export declares the batch axis and every configured non-batch axis dynamic
(`Dim.AUTO` for the dynamo exporter, `dynamic_axes` for the TorchScript one). A model that
hard-codes a size still exports; the check stage (check.py) then proves whether it is really dynamic.
"""

from __future__ import annotations

import logging
import re
import traceback
from pathlib import Path

from .errors import TrtpipeError
from .inputs import describe, random_inputs
from .io import atomic_path
from .spec import ModelSpec, Variant

log = logging.getLogger(__name__)


def export_onnx(
    spec: ModelSpec,
    checkpoint: str | None,
    variant: Variant,
    out_path: str | Path,
    exporter: str = "dynamo",
    opset: int = 18,
    dummy_batch: int = 2,
) -> None:
    import onnx
    import torch

    from .models import build_model, checkpoint_kind, ordered_input_names, run_model

    model = build_model(spec, checkpoint)
    dynamic = variant.is_dynamic
    batch = dummy_batch if dynamic else variant.batch
    kind = checkpoint_kind(checkpoint) if checkpoint else "state_dict"
    if kind == "torchscript" and exporter != "torchscript":
        log.info("TorchScript checkpoint: using the TorchScript exporter (the dynamo exporter cannot read ScriptModules)")
        exporter = "torchscript"
    if kind == "pt2" and exporter != "dynamo":
        log.info("torch.export checkpoint: using the dynamo exporter")
        exporter = "dynamo"

    order = ordered_input_names(model, spec)
    by_name = {i.name: i for i in spec.inputs}
    inputs = random_inputs(spec, batch, "opt", spec.seed, stream="export")
    args = tuple(torch.from_numpy(inputs[n]) for n in order)
    output_names, outputs = run_model(model, spec, inputs)  # a model that cannot run here fails in one sentence
    log.info("exporting %s (%s) with the %s exporter at opset %d on %s", spec.name, variant, exporter, opset, describe(inputs))

    with atomic_path(out_path) as tmp:
        try:
            if exporter == "dynamo":
                dynamic_shapes = None
                if dynamic:
                    auto = torch.export.Dim.AUTO
                    dynamic_shapes = {n: {axis: auto for axis in by_name[n].dim_names()} for n in order}
                torch.onnx.export(
                    model, args, str(tmp), input_names=order, output_names=output_names, opset_version=opset,
                    dynamo=True, dynamic_shapes=dynamic_shapes, external_data=False,
                )
            else:
                dynamic_axes = None
                if dynamic:
                    dynamic_axes = {n: by_name[n].dim_names() for n in order}
                    for name, out in zip(output_names, outputs):
                        if out.ndim and out.shape[0] == batch:
                            dynamic_axes[name] = {0: "batch"}
                torch.onnx.export(
                    model, args, str(tmp), input_names=order, output_names=output_names, opset_version=opset,
                    dynamo=False, dynamic_axes=dynamic_axes, do_constant_folding=True,
                )
        except TrtpipeError:
            raise
        except Exception as exc:
            log.error("export failed:\n%s", traceback.format_exc())
            raise TrtpipeError(_export_failure(spec, variant, exporter, opset, exc)) from exc
        graph = onnx.load(str(tmp))
        if dynamic:
            _name_dynamic_dims(graph, spec, order)
        onnx.checker.check_model(graph)
        onnx.save(graph, str(tmp))
    log.info("wrote %s (%d nodes)", out_path, len(graph.graph.node))


def _export_failure(spec: ModelSpec, variant: Variant, exporter: str, opset: int, exc: Exception) -> str:
    text = str(exc)
    op = re.search(r"(aten::\w+|aten\.\w+(?:\.\w+)?|\w+::\w+)", text)
    unsupported = re.search(r"not supported|No decompositions|no symbolic|Unsupported|DispatchError|not implemented", text, re.I)
    if op and unsupported:
        other = "torchscript" if exporter == "dynamo" else "dynamo"
        return (
            f"model {spec.name}: ONNX export ({variant}) failed: operator {op.group(1)} cannot be converted by the "
            f"{exporter} exporter at opset {opset}; fix: set export.opset higher, try export.exporter: {other}, "
            f"or replace the operator in the model."
        )
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return (
        f"model {spec.name}: ONNX export ({variant}) with the {exporter} exporter failed ({type(exc).__name__}: "
        f"{first[:300]}); fix: see the log for the trace, or try the other export.exporter."
    )


def _name_dynamic_dims(graph, spec: ModelSpec, order: list[str]) -> None:
    """Give the exporter's symbols (s77, 2*s53) our names (batch, 2*height) throughout the graph."""
    renames: dict[str, str] = {}
    by_name = {i.name: i for i in spec.inputs}
    for value in graph.graph.input:
        if value.name not in by_name:
            continue
        dims = value.type.tensor_type.shape.dim
        for axis, name in by_name[value.name].dim_names().items():
            if axis < len(dims):
                param = dims[axis].dim_param
                if param and param != name and re.fullmatch(r"[A-Za-z_]\w*", param):
                    renames.setdefault(param, name)
                elif not param:
                    log.warning("input %r axis %d (%s) was exported with the fixed size %d: the model hard-codes it; "
                                "the dynamic check will fail", value.name, axis, name, dims[axis].dim_value)
    if not renames:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, renames)) + r")\b")
    for value in [*graph.graph.input, *graph.graph.output, *graph.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = pattern.sub(lambda m: renames[m.group(1)], dim.dim_param)
