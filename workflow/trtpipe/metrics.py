"""Task metrics: how close an artifact's outputs are to PyTorch's on the same samples, in the terms a user deploys
the model for, and a verdict against the user's thresholds (`accept`).

    scores = metrics.score(task, actual, expected, inputs=inputs, labels=labels)   # {"top1_agreement": 0.99, ...}
    rows = metrics.verdict(scores, accept)                                          # one row per threshold

`actual` and `expected` map output names to arrays with samples on axis 0 (the artifact's and PyTorch's). A task is
one of the built-ins (TASKS) or a user hook `path/to/file.py:function` called as
`function(actual, expected, inputs, labels) -> {name: number}`. Every score is higher-is-better unless `accept`
gives it as `{max: value}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import TrtpipeError

# Built-in tasks and the scores each returns (the scores against labels only where the samples carry labels).
TASKS: dict[str, tuple[str, ...]] = {
    "classification": ("top1_agreement", "top5_overlap"),
    "embeddings": ("cosine", "min_cosine", "rank_correlation"),
    "dense": ("pixel_agreement", "miou"),
    "psnr": ("psnr",),
}
LABEL_SCORES: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "accuracy_delta"),
    "dense": ("pixel_accuracy",),
}
# What reduced precisions must keep when the config gives no `accept` for a built-in task.
DEFAULT_ACCEPT: dict[str, dict[str, float]] = {
    "classification": {"top1_agreement": 0.99},
    "embeddings": {"cosine": 0.99, "rank_correlation": 0.95},
    "dense": {"pixel_agreement": 0.99},
    "psnr": {"psnr": 40.0},
}


@dataclass(frozen=True)
class Metric:
    """What a model's `metric` config says: the task (a built-in or a user hook), the output it reads, and for
    embeddings the input holding the attention mask."""

    task: str
    output: str | None = None  # default: the model's first output
    mask_input: str | None = "attention_mask"

    @property
    def is_hook(self) -> bool:
        return self.task not in TASKS

    @classmethod
    def from_config(cls, value: str | dict[str, Any] | None) -> "Metric | None":
        if value is None:
            return None
        if isinstance(value, str):
            return cls(value)
        return cls(value["task"], value.get("output"), value.get("mask_input", "attention_mask"))

    def names(self, labelled: bool) -> tuple[str, ...] | None:
        """The scores a built-in returns (None for a hook: known once it runs)."""
        if self.is_hook:
            return None
        return TASKS[self.task] + (LABEL_SCORES.get(self.task, ()) if labelled else ())

    def default_accept(self) -> dict[str, float]:
        return dict(DEFAULT_ACCEPT.get(self.task, {}))


def score(metric: Metric, actual: dict[str, np.ndarray], expected: dict[str, np.ndarray],
          inputs: dict[str, np.ndarray] | None = None, labels: np.ndarray | None = None,
          shown_as: str = "metric") -> dict[str, float]:
    """Named scores of `actual` against `expected` (PyTorch) on the same samples; with `labels`, the task's own
    score too. A hook that raises or returns no numbers ends here with one sentence."""
    inputs = inputs or {}
    if metric.is_hook:
        return _run_hook(metric.task, actual, expected, inputs, labels, shown_as)
    name = metric.output or next(iter(expected))
    if name not in expected or name not in actual:
        raise TrtpipeError(f"{shown_as}: metric.output = {name!r} is not an output (outputs: {', '.join(expected)}); "
                           f"fix: name one of them.")
    a, e = np.asarray(actual[name], dtype=np.float64), np.asarray(expected[name], dtype=np.float64)
    if a.shape != e.shape:
        raise TrtpipeError(f"{shown_as}: output {name!r} has shape {list(a.shape)} but PyTorch gives {list(e.shape)}, so "
                           f"the {metric.task} metric cannot compare them; fix: see the parity rows of this artifact.")
    if metric.task == "classification":
        return classification(a, e, labels)
    if metric.task == "embeddings":
        mask = inputs.get(metric.mask_input) if metric.mask_input else None
        return embeddings(a, e, mask)
    if metric.task == "dense":
        return dense(a, e, labels)
    return {"psnr": psnr(a, e)}


def classification(actual: np.ndarray, expected: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """top-1 agreement with PyTorch, mean overlap of the top-5 classes (top-k for fewer than 5 classes), and with
    labels the artifact's accuracy and its difference to PyTorch's (negative: the artifact is worse)."""
    a, e = actual.reshape(len(actual), -1), expected.reshape(len(expected), -1)
    k = min(5, a.shape[1])
    top_a, top_e = np.argsort(-a, axis=1, kind="stable")[:, :k], np.argsort(-e, axis=1, kind="stable")[:, :k]
    overlap = [len(set(x) & set(y)) / k for x, y in zip(top_a, top_e)]
    out = {"top1_agreement": float(np.mean(top_a[:, 0] == top_e[:, 0])), "top5_overlap": float(np.mean(overlap))}
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        out["accuracy"] = float(np.mean(top_a[:, 0] == labels))
        out["accuracy_delta"] = out["accuracy"] - float(np.mean(top_e[:, 0] == labels))
    return out


def mean_pool(hidden: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Mask-aware mean over the token axis (axis 1), as sentence encoders pool; a 2-D output is already pooled."""
    if hidden.ndim == 2:
        return hidden
    if mask is None:
        return hidden.mean(axis=1)
    m = np.asarray(mask, dtype=np.float64).reshape(hidden.shape[0], hidden.shape[1], *([1] * (hidden.ndim - 2)))
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def embeddings(actual: np.ndarray, expected: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Cosine of each sample's pooled embedding to PyTorch's (mean and worst), and the Spearman rank correlation of
    all pairwise similarities between samples (does the artifact rank sentence pairs as PyTorch does?)."""
    from scipy.stats import spearmanr

    ua, ue = _unit(mean_pool(actual, mask)), _unit(mean_pool(expected, mask))
    cos = (ua * ue).sum(axis=1)
    out = {"cosine": float(cos.mean()), "min_cosine": float(cos.min())}
    upper = np.triu_indices(len(ua), k=1)
    if len(upper[0]) >= 2:
        out["rank_correlation"] = float(spearmanr((ua @ ua.T)[upper], (ue @ ue.T)[upper]).statistic)
    else:
        out["rank_correlation"] = float("nan")  # fewer than three samples: no ranking to compare
    return out


def dense(actual: np.ndarray, expected: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """Per-pixel class (argmax over axis 1, the channels) agreement with PyTorch, and the mean IoU of the two label
    maps over the classes either one predicts; with labels, the artifact's pixel accuracy."""
    pa, pe = actual.argmax(axis=1), expected.argmax(axis=1)
    ious = []
    for c in np.union1d(np.unique(pa), np.unique(pe)):
        inter, union = np.sum((pa == c) & (pe == c)), np.sum((pa == c) | (pe == c))
        ious.append(inter / union)
    out = {"pixel_agreement": float(np.mean(pa == pe)), "miou": float(np.mean(ious))}
    if labels is not None:
        out["pixel_accuracy"] = float(np.mean(pa == np.asarray(labels).reshape(pa.shape)))
    return out


def psnr(actual: np.ndarray, expected: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, the peak being the range PyTorch's output spans (inf when identical)."""
    mse = float(np.mean((actual - expected) ** 2))
    peak = float(expected.max() - expected.min()) or 1.0
    return float("inf") if mse == 0 else 10.0 * np.log10(peak ** 2 / mse)


def load_hook(ref: str, shown_as: str = "metric") -> Callable[..., Any]:
    from .factories import resolve_factory

    try:
        return resolve_factory(ref)
    except TrtpipeError as exc:
        raise TrtpipeError(str(exc).replace(f"factory {ref!r}", f"{shown_as} {ref!r}").replace(
            "a function that returns an nn.Module", "a function that returns {name: number}")) from None


def _run_hook(ref: str, actual, expected, inputs, labels, shown_as: str) -> dict[str, float]:
    fn = load_hook(ref, shown_as)
    try:
        result = fn(actual, expected, inputs, labels)
    except Exception as exc:
        raise TrtpipeError(f"{shown_as}: metric {ref} raised {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                           f"; fix: make it return {{name: number}} for (actual, expected, inputs, labels).") from exc
    if not isinstance(result, dict) or not result:
        raise TrtpipeError(f"{shown_as}: metric {ref} returned {type(result).__name__} {str(result)[:80]!r}, not a "
                           f"non-empty {{name: number}}; fix: return a dict of named numbers.")
    out = {}
    for key, value in result.items():
        try:
            out[str(key)] = float(np.asarray(value).item())
        except (TypeError, ValueError):
            raise TrtpipeError(f"{shown_as}: metric {ref} returned {key!r} = {str(value)[:80]!r}, which is not a number; "
                               f"fix: return numbers only.") from None
    return out


def thresholds(accept: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """{metric: ("min"|"max", value)} from `accept` (a number is a minimum; {max: x} an upper bound)."""
    out = {}
    for name, value in sorted(accept.items()):
        if isinstance(value, dict):
            op = "max" if "max" in value else "min"
            out[name] = (op, float(value[op]))
        else:
            out[name] = ("min", float(value))
    return out


def verdict(scores: dict[str, float], accept: dict[str, Any], shown_as: str = "metric") -> list[dict[str, Any]]:
    """One row per score: {metric, value, threshold, direction, passed}; scores without a threshold pass (shown for
    information). A threshold naming a score the metric did not return is a user error."""
    limits = thresholds(accept)
    unknown = sorted(set(limits) - set(scores))
    if unknown:
        raise TrtpipeError(f"{shown_as}: accept names {unknown[0]!r}, which the metric does not return (it returns "
                           f"{', '.join(scores)}); fix: use one of those names in accept.")
    rows = []
    for name, value in scores.items():
        op, limit = limits.get(name, ("min", float("nan")))
        passed = bool(np.isnan(limit) or (value >= limit if op == "min" else value <= limit))
        rows.append({"metric": name, "value": value, "threshold": limit, "direction": op, "passed": passed})
    return rows


def shortfall(scores: dict[str, float], accept: dict[str, Any]) -> float:
    """How far the scores miss their thresholds, in each score's own units (0: every one met; a NaN score misses by
    inf, as `verdict` fails it); thresholds naming a score not in `scores` do not count here."""
    misses = [0.0]
    for name, (op, limit) in thresholds(accept).items():
        if name in scores:
            value = scores[name]
            misses.append(math.inf if np.isnan(value) else (limit - value if op == "min" else value - limit))
    return max(misses)


def margin_used(scores: dict[str, float], perfect: dict[str, float], accept: dict[str, Any]) -> float:
    """The largest share of a threshold's margin the scores use up: 0 where a score equals `perfect` (the reference
    scored against itself), 1 at the threshold, above 1 past it. A sensitivity measure comparable across scores of
    different units. Where the margin is not a finite positive number (psnr of identical outputs is inf), the miss
    relative to the threshold stands in. Without thresholds, every score counts with threshold 0."""
    limits = thresholds(accept) or {name: ("min", 0.0) for name in scores}
    shares = []
    for name, (op, limit) in limits.items():
        if name not in scores:
            continue
        value, best = scores[name], perfect.get(name, math.nan)
        if np.isnan(value):
            shares.append(math.inf)
            continue
        gap, room = (best - value, best - limit) if op == "min" else (value - best, limit - best)
        if not (math.isfinite(room) and room > 0):
            gap, room = (limit - value if op == "min" else value - limit), abs(limit) or 1.0
        shares.append(gap / room)
    return max(shares, default=0.0)


def passed(scores: dict[str, float], accept: dict[str, Any]) -> bool:
    """Whether every thresholded score meets its threshold."""
    return all(r["passed"] for r in verdict(scores, accept))
