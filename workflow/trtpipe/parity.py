"""Numerical parity against PyTorch, with Polygraphy's rule: an element fails only if it exceeds
both the absolute and the relative tolerance."""

from __future__ import annotations

from typing import Any

import numpy as np


def compare(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float, min_cosine: float | None = None) -> dict[str, Any]:
    """max abs/rel error, cosine similarity and pass/fail of one output.

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
    abs_err = np.abs(a - e)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(abs_err == 0, 0.0, abs_err / np.abs(e))
    nonfinite = ~np.isfinite(a) & np.isfinite(e)  # NaN/inf that PyTorch did not produce always fails
    failing = ((abs_err > atol) & (rel_err > rtol)) | nonfinite
    flat_a, flat_e = a.ravel(), e.ravel()
    norm = np.linalg.norm(flat_a) * np.linalg.norm(flat_e)
    cosine = float(flat_a @ flat_e / norm) if norm > 0 else float(np.array_equal(flat_a, flat_e))
    passed = not failing.any()
    note = ""
    if min_cosine is not None and cosine < min_cosine:
        passed, note = False, f"cosine {cosine:.4f} < {min_cosine}"
    return {
        "max_abs_err": float(np.nanmax(abs_err)) if abs_err.size else 0.0,
        "max_rel_err": float(np.nanmax(np.where(np.isfinite(rel_err), rel_err, np.inf))) if rel_err.size else 0.0,
        "cosine": cosine,
        "mismatch_fraction": float(failing.mean()) if failing.size else 0.0,
        "passed": bool(passed),
        "note": note,
    }


ACCURACY_COLUMNS = [
    "model", "stage", "variant", "precision", "backend", "profile", "case", "batch", "output",
    "max_abs_err", "max_rel_err", "cosine", "mismatch_fraction", "atol", "rtol", "min_cosine", "passed", "note",
]


def parity_rows(
    labels: dict[str, Any],
    case: str,
    batch: int,
    names: list[str],
    actual: list[np.ndarray],
    expected: list[np.ndarray],
    tolerance: dict[str, float],
) -> list[dict[str, Any]]:
    rows = []
    min_cosine = tolerance.get("min_cosine")
    for name, a, e in zip(names, actual, expected):
        result = compare(np.asarray(a), np.asarray(e), tolerance["atol"], tolerance["rtol"], min_cosine)
        rows.append({**labels, "case": case, "batch": batch, "output": name, "atol": tolerance["atol"],
                     "rtol": tolerance["rtol"], "min_cosine": min_cosine, **result})
    return rows


def write_rows(path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    from .io import write_csv

    write_csv(path, pd.DataFrame(rows, columns=ACCURACY_COLUMNS))


def first_failure(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in rows if not r["passed"]), None)
