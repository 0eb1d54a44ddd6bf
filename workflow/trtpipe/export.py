"""PyTorch -> ONNX: one static graph per batch size and one dynamic graph.

The dynamic export declares the batch axis and every configured non-batch axis dynamic
(`Dim.AUTO` for the dynamo exporter, `dynamic_axes` for the TorchScript one). A model that
hard-codes a size still exports; the check stage (check.py) then proves whether it is really dynamic.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
import warnings
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
    dummy_batch: int = 5,
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
    try:
        output_names, outputs = run_model(model, spec, inputs)  # a model that cannot run here fails in one sentence
    except TrtpipeError as exc:
        if dynamic:
            _refuse_hardcoded_batch(model, spec, batch, exc)
        raise
    log.info("exporting %s (%s) with the %s exporter at opset %d on %s", spec.name, variant, exporter, opset, describe(inputs))

    frozen: list[str] = []
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
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", torch.jit.TracerWarning)
                    torch.onnx.export(
                        model, args, str(tmp), input_names=order, output_names=output_names, opset_version=opset,
                        dynamo=False, dynamic_axes=dynamic_axes, do_constant_folding=True,
                    )
                frozen = _log_tracer_warnings(caught)
        except TrtpipeError:
            raise
        except Exception as exc:
            log.error("export failed:\n%s", plain(traceback.format_exc()))
            raise TrtpipeError(_export_failure(spec, variant, exporter, opset, exc)) from exc
        graph = onnx.load(str(tmp))
        if frozen:  # for the check, which fails later in another job: the likely cause
            from .check import TRACE_FROZE

            graph.metadata_props.add(key=TRACE_FROZE, value=frozen[0])
        if dynamic:
            _name_dynamic_dims(graph, spec, order)
        onnx.checker.check_model(graph)
        onnx.save(graph, str(tmp))
    log.info("wrote %s (%d nodes)", out_path, len(graph.graph.node))


def _refuse_hardcoded_batch(model, spec: ModelSpec, traced: int, exc: TrtpipeError) -> None:
    """forward() fails at the traced batch: if it runs at another batch, the batch is hard-coded (x.view(2, -1)
    traced at 5) and that, not the input shape, is what to say."""
    from .causes import hardcoded_batch_error

    error = hardcoded_batch_error(model, spec, {traced}, exc, f"the traced batch {traced} (export.dummy_batch)")
    if error is not None:
        raise error from exc


def _log_tracer_warnings(caught) -> list[str]:
    """The TorchScript exporter traces: a Python decision on a tensor is frozen for the example input. Say where;
    returns the places."""
    import torch

    frozen = []
    for w in caught:
        if issubclass(w.category, torch.jit.TracerWarning):
            where, message = f"{_shown(w.filename)}:{w.lineno}", str(w.message).splitlines()[0]
            log.warning("the trace froze a value at %s: %s", where, message)
            frozen.append(f"{where} ({message.split('. ')[0]})")
    return frozen


ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # terminal colour codes the exporter puts in its messages
DATA_DEPENDENT = re.compile(
    r"GuardOnDataDependentSymNode|DataDependentOutputException|data-dependent expression|data dependent", re.I)
FOLLOWING_CALL = re.compile(r'The following call raised this error:\s*\n\s*File "([^"]+)", line (\d+), in \w+\n\s*(.+)')


def plain(text: str) -> str:
    """Text without terminal escape codes."""
    return ANSI.sub("", text)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it (__cause__, else __context__), outermost first."""
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _library_file(path: str) -> bool:
    import sysconfig

    import torch

    roots = [str(Path(torch.__file__).parent), str(Path(__file__).parent), sysconfig.get_paths()["stdlib"]]
    return any(path.startswith(r) for r in roots) or "/onnxscript/" in path or "/onnx_ir/" in path or path.startswith("<")


def user_line(exc: BaseException) -> tuple[str, int, str] | None:
    """(file, line, code) of the user's code that raised, from torch.export's own pointer or the traceback."""
    for e in _chain(exc):
        m = FOLLOWING_CALL.search(plain(str(e)))
        if m:
            return _shown(m.group(1)), int(m.group(2)), m.group(3).strip()
    for e in reversed(_chain(exc)):  # the innermost exception's innermost frame outside torch and trtpipe
        for frame in reversed(traceback.extract_tb(e.__traceback__)):
            if not _library_file(frame.filename):
                return _shown(frame.filename), frame.lineno, (frame.line or "").strip()
    return None


def _shown(path: str) -> str:
    """A path as the user knows it: relative to where snakemake runs when inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _first_line(exc: BaseException) -> str:
    """The first informative line of an exception: past torch.onnx's banner to its exception summary."""
    text = plain(str(exc))
    summary = re.search(r"## Exception summary\s*\n\s*(?:<class '[\w.]+'>: )?(.+)", text)
    if summary:
        return summary.group(1).strip()
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)


def _export_failure(spec: ModelSpec, variant: Variant, exporter: str, opset: int, exc: Exception) -> str:
    chain = _chain(exc)
    text = "\n".join(plain(f"{type(e).__name__}: {e}") for e in chain)
    if DATA_DEPENDENT.search(text):
        where = user_line(exc)
        at = f" at {where[0]}:{where[1]} (`{where[2][:120]}`)" if where else ""
        return (
            f"model {spec.name}: ONNX export ({variant}) failed: forward() makes a Python decision from a tensor's "
            f"values{at}, and an exported graph records shapes, not values; fix: remove the branch, or write it as "
            f"tensor operations (torch.where(cond, a, b) computes both sides) or with torch.cond(pred, true_fn, "
            f"false_fn, operands); export.exporter: torchscript is no fix here, it would keep only the branch taken "
            f"for the example input."
        )
    op = re.search(r"(aten::\w+|aten\.\w+(?:\.\w+)?|\w+::\w+)", text)
    unsupported = re.search(r"not supported|No decompositions|no symbolic|Unsupported|DispatchError|not implemented", text, re.I)
    if op and unsupported:
        other = "torchscript" if exporter == "dynamo" else "dynamo"
        return (
            f"model {spec.name}: ONNX export ({variant}) failed: operator {op.group(1)} cannot be converted by the "
            f"{exporter} exporter at opset {opset}; fix: set export.opset higher, try export.exporter: {other}, "
            f"or replace the operator in the model."
        )
    root = chain[-1]
    where = user_line(exc)
    at = f" at {where[0]}:{where[1]} (`{where[2][:120]}`)" if where else ""
    other = "torchscript" if exporter == "dynamo" else "dynamo"
    return (
        f"model {spec.name}: ONNX export ({variant}) with the {exporter} exporter failed{at} ({type(root).__name__}: "
        f"{_first_line(root)[:300]}); fix: see the log for the trace, or try export.exporter: {other}."
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
