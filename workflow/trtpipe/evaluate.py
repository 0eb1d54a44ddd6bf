"""Accuracy on the user's own samples: PyTorch's outputs on the held-out samples (`data.npz`, written once per model),
then every artifact (export, simplified and precision ONNX, every engine) run on the same samples, compared with
PyTorch elementwise (parity rows) and by the model's task metric (metric rows, with the `accept` verdict).

These are jobs of their own, beside the stages: changing the samples, the metric or a threshold reruns them and the
summary, never an export or an engine build (only int8/fp8 calibration, where the samples calibrate, reruns).

How rows decide (`judged_by`): fp32 artifacts, and every artifact of a model without thresholds, are judged by the
elementwise tolerance on the data as well as on random inputs; reduced precisions of a model with thresholds by the
metric rows alone, with random-input parity kept only to catch gross errors (wrong shapes, NaN/Inf).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import metrics, samples
from .errors import TrtpipeError
from .io import atomic_path
from .parity import parity_rows
from .spec import ModelSpec, Profile, Variant

log = logging.getLogger(__name__)

DATA_CASE = "data"
CHUNK = 64  # samples per run where the graph admits any batch: bounded memory for large sample sets
JUDGED_BY = ("tolerance", "metric", "info")


# --- the PyTorch side --------------------------------------------------------------------------------------------
def make_data_reference(spec: ModelSpec, checkpoint: str | None, cfg: dict[str, Any], calibrate: int,
                        calibration_data: str | None, min_samples: int, out_path: str | Path,
                        calibration_out: str | Path | None = None) -> dict[str, Any]:
    """Load and split the samples, run PyTorch on the held-out ones, write data.npz (and calibration.npz)."""
    from .models import build_model, run_model

    loaded = samples.load(spec, cfg)
    exclude = None
    if calibration_data:
        from .precision import calibration_inputs

        exclude, _ = calibration_inputs(spec, None, calibration_data, 0, spec.seed)
        calibrate = 0
    if calibrate and calibrate >= len(loaded):
        raise TrtpipeError(f"model {spec.name}: samples {loaded.source} hold {len(loaded)} samples, and "
                           f"samples.calibration puts {calibrate} aside for int8/fp8 calibration, leaving none to "
                           f"evaluate on; fix: lower models.{spec.name}.samples.calibration or give more samples.")
    calib, held, split = samples.split(loaded, calibrate, spec.seed, exclude)
    if len(held) < min_samples:
        raise TrtpipeError(f"model {spec.name}: samples {loaded.source} leave {len(held)} held-out sample(s), fewer "
                           f"than the largest batch {min_samples}; fix: give at least {min_samples + calibrate} samples "
                           f"(or fewer for calibration, models.{spec.name}.samples.calibration).")
    model = build_model(spec, checkpoint)
    names: list[str] = []
    chunks: list[list[np.ndarray]] = []
    for start in range(0, len(held), CHUNK):
        part = {k: v[start:start + CHUNK] for k, v in held.inputs.items()}
        names, outs = run_model(model, spec, part)
        chunks.append(outs)
    outputs = [np.concatenate([c[i] for c in chunks]) for i in range(len(names))]
    meta = {"model": spec.name, "source": loaded.source, "kind": loaded.kind, "details": loaded.details,
            "split": split, "inputs": spec.input_names, "outputs": names, "labelled": held.labels is not None,
            "calibration_data": calibration_data}
    arrays = {f"input/{k}": v for k, v in held.inputs.items()}
    arrays.update({f"output/{n}": o for n, o in zip(names, outputs)})
    if held.labels is not None:
        arrays["labels"] = held.labels
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    if calibration_out is not None:
        write_calibration(calibration_out, calib, spec, meta)
    log.info("%s: PyTorch on %s -> %s", spec.name, samples.describe(meta),
             ", ".join(f"{n} {'x'.join(map(str, o.shape))}" for n, o in zip(names, outputs)))
    return meta


def write_calibration(path: str | Path, calib: samples.SampleSet | None, spec: ModelSpec, meta: dict[str, Any]) -> None:
    """The calibration part of the samples, as `calibration_data` is given (one array per input), and their labels;
    empty arrays when no int8/fp8 is built from the samples."""
    arrays = ({k: v for k, v in calib.inputs.items()} if calib is not None
              else {i: np.zeros((0,), np.float32) for i in spec.input_names})
    if calib is not None and calib.labels is not None:
        arrays[samples.CALIBRATION_LABELS] = calib.labels  # the search's accuracy scores need them
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


class DataReference:
    def __init__(self, path: str | Path):
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        self.meta: dict[str, Any] = json.loads(str(arrays.pop("meta")))
        self.inputs = {n: arrays[f"input/{n}"] for n in self.meta["inputs"]}
        self.outputs = {n: arrays[f"output/{n}"] for n in self.meta["outputs"]}
        self.labels = arrays.get("labels")

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    @property
    def described(self) -> str:
        return samples.describe(self.meta)


# --- running an artifact on the samples --------------------------------------------------------------------------
def run_in_batches(run: Callable[[dict[str, np.ndarray]], list[np.ndarray]], inputs: dict[str, np.ndarray],
                   lo: int, hi: int) -> list[np.ndarray]:
    """Every sample through `run` in batches the artifact admits (lo..hi); a last batch below lo is filled with
    repeated samples whose outputs are dropped."""
    n = len(next(iter(inputs.values())))
    size = max(lo, min(hi, CHUNK))
    parts: list[list[np.ndarray]] = []
    for start in range(0, n, size):
        index = np.arange(start, min(start + size, n))
        real = len(index)
        if real < lo:
            index = np.resize(index, lo)
        outs = run({k: np.ascontiguousarray(v[index]) for k, v in inputs.items()})
        parts.append([o[:real] if o.ndim and o.shape[0] == len(index) else o for o in outs])
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def fits_static(inputs: dict[str, np.ndarray], spec: ModelSpec) -> str | None:
    """Why samples cannot run through a static graph (its non-batch axes are pinned at the opt sizes), or None."""
    for inp in spec.inputs:
        want = tuple(inp.full_shape(1, "opt")[1:])
        got = tuple(inputs[inp.name].shape[1:])
        if got != want:
            return f"samples of {inp.name} have shape {list(got)}, the static graph takes {list(want)}"
    return None


def evaluate_outputs(labels: dict[str, Any], data: DataReference, names: list[str], outputs: list[np.ndarray],
                     metric: metrics.Metric | None, accept: dict[str, Any], tolerance: dict[str, float],
                     shown_as: str) -> list[dict[str, Any]]:
    """Parity rows (one per output) and metric rows (one per score) of one artifact's outputs on the samples."""
    precision = labels["precision"]
    judged = accept and precision not in ("fp32", "tf32")
    where = {"data": data.described, "samples": len(data)}
    expected = [data.outputs[n] for n in data.meta["outputs"]]
    rows = parity_rows(labels, DATA_CASE, len(data), names, outputs, expected, tolerance)
    for r in rows:
        r.update(where, judged_by="info" if judged and not gross(r) else "tolerance")
    if metric is not None:
        actual = dict(zip(data.meta["outputs"], outputs))
        scores = metrics.score(metric, actual, data.outputs, data.inputs, data.labels, shown_as)
        for v in metrics.verdict(scores, accept, shown_as):
            rows.append({**labels, "case": DATA_CASE, "batch": len(data), "output": metric.output or names[0],
                         **where, **v, "judged_by": "metric" if v["metric"] in accept else "info"})
        log.info("%s on %s: %s", shown_as, data.described,
                 ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
    return rows


def gross(row: dict[str, Any]) -> bool:
    """A parity row no metric can excuse: wrong shape, or NaN/Inf where PyTorch is finite."""
    note = str(row.get("note") or "")
    return not row.get("passed", True) and (note.startswith("shape ") or "NaN" in note or "Inf" in note)


def pytorch_rows(spec: ModelSpec, data: DataReference, metric: metrics.Metric | None) -> list[dict[str, Any]]:
    """PyTorch's own task score against the labels (where the samples have labels): the bar every artifact is read
    against."""
    if metric is None or data.labels is None:
        return []
    scores = metrics.score(metric, data.outputs, data.outputs, data.inputs, data.labels, f"model {spec.name}")
    labels = {"model": spec.name, "stage": "pytorch", "variant": "", "precision": "fp32", "backend": "torch",
              "profile": ""}
    return [{**labels, "case": DATA_CASE, "batch": len(data), "output": metric.output or data.meta["outputs"][0],
             "data": data.described, "samples": len(data), **v, "judged_by": "info"}
            for v in metrics.verdict({k: v for k, v in scores.items() if k in metrics.LABEL_SCORES.get(metric.task, ())
                                      and not k.endswith("_delta")}, {})]


def evaluate_onnx(spec: ModelSpec, variant: Variant, artifacts: list[tuple[str, str, str]], data_path: str | Path,
                  metric: metrics.Metric | None, accept: dict[str, Any], tolerances: dict[str, dict[str, float]]
                  ) -> list[dict[str, Any]]:
    """Rows of each (stage, precision, onnx path) of one variant on the samples."""
    from .ort_session import OnnxEvaluator

    data = DataReference(data_path)
    rows = pytorch_rows(spec, data, metric) if variant.is_dynamic else []
    why = None if variant.is_dynamic else fits_static(data.inputs, spec)
    for stage, precision, path in artifacts:
        labels = {"model": spec.name, "stage": stage, "variant": variant.name, "precision": precision,
                  "backend": "onnxruntime", "profile": ""}
        if why:
            rows.append({**labels, "case": DATA_CASE, "note": f"not evaluated on the samples: {why}", "passed": True,
                         "judged_by": "info", "data": data.described, "samples": len(data)})
            continue
        evaluator = OnnxEvaluator(path)
        lo, hi = (1, CHUNK) if variant.is_dynamic else (variant.batch, variant.batch)
        outputs = run_in_batches(evaluator, data.inputs, lo, hi)
        rows += evaluate_outputs(labels, data, evaluator.output_names, outputs, metric, accept,
                                 tolerances.get(precision, tolerances["fp32"]), f"{path}")
    return rows


def evaluate_engine(backend_name: str, engine_path: str | Path, sidecar_path: str | Path, spec: ModelSpec,
                    variant: Variant, precision: str, profiles: list[Profile], options: dict[str, Any],
                    data_path: str | Path, metric: metrics.Metric | None, accept: dict[str, Any],
                    tolerance: dict[str, float]) -> list[dict[str, Any]]:
    """Rows of one engine on the samples, for every profile it holds."""
    from .backends import registry

    sidecar = json.loads(Path(sidecar_path).read_text())
    module = registry.get(backend_name).implementation()
    data = DataReference(data_path)
    why = None if variant.is_dynamic else fits_static(data.inputs, spec)
    rows: list[dict[str, Any]] = []
    for profile in profiles:
        labels = {"model": spec.name, "stage": "engine", "variant": variant.name, "precision": precision,
                  "backend": backend_name, "profile": profile.name}
        if why:
            rows.append({**labels, "case": DATA_CASE, "note": f"not evaluated on the samples: {why}", "passed": True,
                         "judged_by": "info", "data": data.described, "samples": len(data)})
            continue
        runner = module.Runner(engine_path, sidecar, profile=profile.name, options=options)
        outputs = run_in_batches(runner.run, data.inputs, profile.min, profile.max)
        rows += evaluate_outputs(labels, data, runner.output_names, outputs, metric, accept, tolerance,
                                 f"{engine_path} ({profile.name})")
    return rows


def check_accept(metric: metrics.Metric | None, accept: dict[str, Any], labelled: bool | None, shown_as: str) -> None:
    """A threshold naming a score the built-in metric never returns, before any job runs."""
    if not accept:
        return
    if metric is None:
        raise TrtpipeError(f"{shown_as}.accept gives thresholds but the model has no samples and metric; fix: add "
                           f"samples and metric, or remove accept.")
    names = metric.names(labelled if labelled is not None else True)
    if names is None:
        return  # a hook's names are known when it runs: checked in the job
    unknown = sorted(set(accept) - set(names))
    if unknown:
        raise TrtpipeError(f"{shown_as}.accept names {unknown[0]!r}, which the {metric.task} metric does not return; "
                           f"fix: use one of {', '.join(names)}.")


def artifact_verdicts(accuracy) -> "Any":
    """Per artifact (model, stage, variant, precision, backend, profile): whether it passed, on the rule above.
    `accuracy` holds every stage's rows (random-input parity, data parity, metric rows)."""
    import pandas as pd

    keys = ["model", "stage", "variant", "precision", "backend", "profile"]
    if accuracy.empty:
        return pd.DataFrame(columns=keys + ["passed", "judged_on"])
    acc = accuracy.copy()
    for col in ("judged_by", "metric", "note", "case"):  # rows written before data verdicts have none of these
        if col not in acc:
            acc[col] = np.nan
    acc["profile"] = acc["profile"].fillna("")
    acc["variant"] = acc["variant"].fillna("")
    out = []
    for key, rows in acc.groupby(keys, sort=True, dropna=False):
        metric_rows = rows[rows["judged_by"] == "metric"]
        judged = rows["judged_by"].fillna("tolerance")
        if not metric_rows.empty:
            random_rows = rows[rows["judged_by"].isna()]
            gross_rows = [gross(r) for r in random_rows.to_dict("records")]
            counted = rows[judged.isin(["tolerance", "metric"]) & rows["judged_by"].notna()]
            ok = bool(counted["passed"].astype(bool).all()) and not any(gross_rows)
            if key[3] in ("fp32", "tf32"):
                ok = ok and bool(random_rows["passed"].astype(bool).all())
            on = "metric"
        else:
            ok = bool(rows[judged.isin(["tolerance", "metric"])]["passed"].astype(bool).all())
            on = "data" if (rows["case"] == DATA_CASE).any() else "random"
        out.append({**dict(zip(keys, key)), "passed": ok, "judged_on": on})
    return pd.DataFrame(out)


# --- what the report shows -----------------------------------------------------------------------------------------
def data_table(accuracy, model: str):
    """Per artifact of `model` judged on the samples: every score, the verdict and why. Empty without samples."""
    import pandas as pd

    if "metric" not in accuracy:
        return pd.DataFrame()
    rows = accuracy[(accuracy["model"] == model) & accuracy["metric"].notna() & (accuracy["stage"] != "pytorch")]
    if rows.empty:
        return pd.DataFrame()
    verdicts = artifact_verdicts(accuracy[accuracy["model"] == model])
    keys = ["stage", "backend", "variant", "precision", "profile"]
    out = []
    for key, group in rows.fillna({"profile": "", "variant": ""}).groupby(keys, sort=False):
        entry = dict(zip(keys, key))
        for r in group.to_dict("records"):
            entry[r["metric"]] = f"{r['value']:.4f}"
        judged = verdicts[(verdicts[keys].astype(str) == pd.Series(dict(zip(keys, map(str, key))))).all(axis=1)]
        ok = bool(judged["passed"].all()) if not judged.empty else True
        misses = [f"{r['metric']} {r['value']:.4f} {'<' if r['direction'] == 'min' else '>'} {r['threshold']:g}"
                  for r in group.to_dict("records") if r["judged_by"] == "metric" and not r["passed"]]
        entry["verdict"] = "pass" if ok else "FAIL" + (f" ({'; '.join(misses)})" if misses else " (parity)")
        out.append(entry)
    order = {"export": 0, "simplify": 1, "precision": 2, "engine": 3}
    return pd.DataFrame(out).sort_values(["stage", "precision", "backend", "variant", "profile"],
                                         key=lambda c: c.map(order) if c.name == "stage" else c).reset_index(drop=True)


def data_summary(accuracy, model: str) -> str | None:
    """One sentence: which data, how many held out, the thresholds, and PyTorch's own task score."""
    if "metric" not in accuracy:
        return None
    rows = accuracy[(accuracy["model"] == model) & accuracy["metric"].notna()]
    if rows.empty:
        return None
    data = rows["data"].dropna().iloc[0]
    limits = rows[rows["judged_by"] == "metric"].drop_duplicates("metric")
    thresholds = ", ".join(f"{r['metric']} {'>=' if r['direction'] == 'min' else '<='} {r['threshold']:g}"
                           for r in limits.to_dict("records")) or "none (elementwise tolerances decide)"
    torch_rows = rows[rows["stage"] == "pytorch"]
    own = "; ".join(f"PyTorch's {r['metric']} {r['value']:.4f}" for r in torch_rows.to_dict("records"))
    return (f"Judged on {data}. Thresholds for reduced precisions: {thresholds}." + (f" {own} against the labels." if own else ""))


def judged_on_random(accuracy, models: list[str]) -> list[str]:
    """Models whose accuracy verdicts rest on seeded random inputs only (no samples)."""
    with_data = set(accuracy.loc[accuracy["case"] == DATA_CASE, "model"]) if "case" in accuracy else set()
    return [m for m in models if m not in with_data]
