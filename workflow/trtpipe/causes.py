"""What a failure at one size usually means, and its fix: one wording for the export, the reference and the ONNX
checks alike."""

from __future__ import annotations

from .errors import DynamicExportError, TrtpipeError
from .spec import ModelSpec

CAUSE_AND_FIX = (
    "usual cause: forward() hard-codes that size (x.view(2, -1), a reshape to constants, or a Python int read "
    "from x.shape and frozen by tracing); fix: derive it from the tensor (x.flatten(1), x.view(x.size(0), -1), "
    "x.reshape(-1, ...)) and re-export"
)
# The cause named in a failure fits what the check saw: a Reshape (or PyTorch's own reshape error) points at
# x.view(2, -1); an elementwise op that cannot broadcast points at a tensor of constant shape made in forward().
RESHAPE_CAUSE = CAUSE_AND_FIX
BROADCAST_CAUSE = (
    "usual cause: forward() combines the input with a tensor of constant shape (torch.ones(2, 3), torch.zeros(2, ...), "
    "a buffer holding the traced size) and no reshape is involved; fix: build that tensor from the input "
    "(x.new_ones(x.size(0), 3), torch.ones_like(y)) or give it size 1 on that axis so that it broadcasts, and re-export"
)
RESHAPE_OPS = {"Reshape", "Flatten", "View"}
BROADCAST_OPS = {"Add", "Sub", "Mul", "Div", "Pow", "Where", "Expand", "Max", "Min", "Mod", "Equal", "Less", "Greater",
                 "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "BitShift", "PRelu", "Sum", "Mean", "Concat"}


def cause_and_fix(op_type: str | None = None, pytorch_error: str | None = None, suspects: list[str] = ()) -> str:
    """The usual cause and fix for what the check saw (the failing ONNX op, PyTorch's own error, Reshape suspects)."""
    error = pytorch_error or ""
    if suspects or op_type in RESHAPE_OPS or "mat1 and mat2" in error or "is invalid for input of size" in error:
        return RESHAPE_CAUSE
    if op_type in BROADCAST_OPS or "must match the size of tensor" in error or "broadcast" in error:
        return BROADCAST_CAUSE
    return CAUSE_AND_FIX


def hardcoded_batch_error(model, spec: ModelSpec, failed: set[int], exc: TrtpipeError, where: str
                          ) -> DynamicExportError | None:
    """PyTorch's forward() failed at the batches `failed`: if it runs at another batch, its batch is hard-coded
    (x.view(2, -1)), and that, not the input shape, is what to say; None when it runs at none of them either."""
    from .inputs import random_inputs
    from .models import run_model

    for batch in (1, 2, 3, 4, 8):
        if batch in failed:
            continue
        try:
            run_model(model, spec, random_inputs(spec, batch, "opt", spec.seed, stream="export"))
        except TrtpipeError:
            continue
        cause = exc.__cause__ or exc
        error = f"{type(cause).__name__}: {str(cause).splitlines()[0][:300]}"
        return DynamicExportError(
            f"model {spec.name}: axis 0 (batch) is hard-coded in the model — PyTorch's forward() runs at batch {batch} "
            f"but fails at {where} with {error}; {cause_and_fix(None, error)}.")
    return None
