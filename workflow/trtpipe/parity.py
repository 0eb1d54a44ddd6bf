"""Numerical parity against PyTorch, with Polygraphy's rule: an element fails only if it exceeds
both the absolute and the relative tolerance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def compare(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float, min_cosine: float | None = None) -> dict[str, Any]:
    """max abs/rel error, cosine similarity and pass/fail of one output.

    Shapes are compared before values. A NaN or Inf on either side fails its element: NaN never
    equals NaN, and a reference that is not finite is refused earlier (reference.py), so an
    artifact that returns NaN/Inf can never pass by agreeing with a broken PyTorch output.
    `min_cosine` (int8/fp8) adds a whole-tensor criterion: quantized outputs may drift elementwise
    while still pointing the same way.
    """
    if actual.shape != expected.shape:
        return {
            "max_abs_err": float("inf"), "max_rel_err": float("inf"), "cosine": float("nan"),
            "mismatch_fraction": 1.0, "passed": False,
            "note": f"shape {list(actual.shape)} != PyTorch {list(expected.shape)}",
        }
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.abs(a - e)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(abs_err == 0, 0.0, abs_err / np.abs(e))
    nonfinite = ~np.isfinite(a) | ~np.isfinite(e)  # NaN/Inf on either side always fails: NaN is never equal
    failing = ((abs_err > atol) & (rel_err > rtol)) | nonfinite
    finite_a, finite_e = np.where(nonfinite, 0.0, a).ravel(), np.where(nonfinite, 0.0, e).ravel()
    norm = np.linalg.norm(finite_a) * np.linalg.norm(finite_e)
    cosine = float(finite_a @ finite_e / norm) if norm > 0 else float(np.array_equal(finite_a, finite_e))
    if nonfinite.any():
        cosine = float("nan")
    passed = not failing.any()
    notes = []
    if nonfinite.any():
        notes.append(_nonfinite_note(a, e))
    if min_cosine is not None and not cosine >= min_cosine:  # NaN cosine fails too
        passed = False
        notes.append(f"cosine {cosine:.4f} < {min_cosine}")
    return {
        # max() propagates NaN: a NaN anywhere shows as nan, never as a small error
        "max_abs_err": float(np.max(abs_err)) if abs_err.size else 0.0,
        "max_rel_err": float(np.max(rel_err)) if rel_err.size else 0.0,
        "cosine": cosine,
        "mismatch_fraction": float(failing.mean()) if failing.size else 0.0,
        "passed": bool(passed),
        "note": "; ".join(notes),
    }


def _nonfinite_note(a: np.ndarray, e: np.ndarray) -> str:
    parts = []
    for label, arr in (("output", a), ("PyTorch", e)):
        nan, inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
        if nan or inf:
            parts.append(f"{label} has {nan} NaN and {inf} Inf of {arr.size} values")
    return "; ".join(parts)


def failure_clause(row: dict[str, Any]) -> str:
    """What a failing parity row means, as a clause: shapes first, then NaN/Inf, then values."""
    where = f"output {row['output']!r} at batch {row['batch']} ({row['case']})"
    note = row.get("note") or ""
    if note.startswith("shape "):
        got, want = note.removeprefix("shape ").split(" != PyTorch ")
        return f"{where} has shape {got} but PyTorch gives {want}"
    if "NaN" in note or "Inf" in note:
        return f"{where} is not finite where PyTorch is ({note})"
    return (f"{where} differs from PyTorch (max abs err {row['max_abs_err']:.3g}, max rel err {row['max_rel_err']:.3g}; "
            f"tolerance atol {row['atol']:g}, rtol {row['rtol']:g})")


SHAPE_CAUSE = (
    "likely cause: forward() creates a tensor of constant shape (torch.ones(2, 3), torch.zeros(2, ...)) or reads a "
    "size from x.shape as a Python int, which the export froze; fix: build it from the input (x.new_ones(x.size(0), 3), "
    "torch.ones_like(y)) or give it size 1 so that it broadcasts, then re-export"
)


ACCURACY_COLUMNS = [
    "model", "stage", "variant", "precision", "backend", "profile", "case", "batch", "output",
    "max_abs_err", "max_rel_err", "cosine", "mismatch_fraction", "atol", "rtol", "min_cosine", "passed", "note",
    # PyTorch's output is the same for every input (reference.input_independent): the row passes without proving anything
    "reference_constant",
    # rows on the model's own samples (trtpipe.evaluate): which data, how many held-out samples, the task metric's
    # score against its threshold, and what the row decides (tolerance, metric, or info: shown, not deciding)
    "data", "samples", "metric", "value", "threshold", "direction", "judged_by",
]


def parity_rows(
    labels: dict[str, Any],
    case: str,
    batch: int,
    names: list[str],
    actual: list[np.ndarray],
    expected: list[np.ndarray],
    tolerance: dict[str, float],
    reference_constant: Sequence[bool] = (),
) -> list[dict[str, Any]]:
    """One row per output; `reference_constant` (per expected output, Reference.constant_flags) marks the outputs
    whose PyTorch values are the same for every input."""
    rows = []
    min_cosine = tolerance.get("min_cosine")
    for i, (name, a, e) in enumerate(zip(names, actual, expected)):
        result = compare(np.asarray(a), np.asarray(e), tolerance["atol"], tolerance["rtol"], min_cosine)
        rows.append({**labels, "case": case, "batch": batch, "output": name, "atol": tolerance["atol"],
                     "rtol": tolerance["rtol"], "min_cosine": min_cosine, **result,
                     "reference_constant": bool(i < len(reference_constant) and reference_constant[i])})
    return rows


def write_rows(path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    from .io import write_csv

    write_csv(path, pd.DataFrame(rows, columns=ACCURACY_COLUMNS))


def first_failure(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in rows if not r["passed"]), None)
