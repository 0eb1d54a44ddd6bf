"""Where every artifact of a sweep lives, and which jobs a sweep expects: the one place that knows.

The rules (workflow/rules/*.smk) take their output and log paths from here, with Snakemake's wildcards
left in (`L.simplify.onnx` is "results/{model}/onnx/{variant}.sim.onnx"); the failure read-back
(trtpipe.failures) walks `expected_jobs`, whose paths are the same templates filled in; `trtpipe compare`
finds a sweep's raw timings through `Layout.bench_paths`. A path is written once (PyPSA-Eur's path
provider idea), so the rules and the read-back cannot drift apart.

Light on purpose (no pandas, no torch): the Snakefile imports it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from .backends import registry
from .spec import Variant

COMBINED = "combined"  # the profile name of an engine holding every profile of the dynamic variant
FP32_ONNX_PRECISIONS = ("fp32", "tf32")  # built from the simplified ONNX itself (tf32 is a way to run fp32)
REDUCED_PRECISIONS = ("fp16", "bf16", "int8", "fp8")  # each has its own precision ONNX, as has every int8-ort-* (quantize.py)
PRECISIONS = FP32_ONNX_PRECISIONS + REDUCED_PRECISIONS
STEM = "{variant}.{precision}.{profile}"  # an engine's and its benchmark's file stem


def quantized(precision: str) -> bool:
    """Whether a precision ONNX is calibrated: int8, fp8 (ModelOpt) and every int8-ort-* (onnxruntime.quantization)."""
    return precision in ("int8", "fp8") or precision.startswith("int8-ort-")


def stem(variant: Variant | str, precision: str, profile: str) -> str:
    return STEM.format(variant=variant, precision=precision, profile=profile)


class _KeepMissing(dict):
    """format_map mapping that leaves unknown fields as Snakemake wildcards."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: str, wildcards: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _KeepMissing({k: str(v) for k, v in wildcards.items()}))


@dataclass(frozen=True)
class Stage:
    """One rule's named outputs and its log, as templates under the results folder. An attribute named after an
    output is its template (wildcards left in); `paths(**wildcards)` fills them."""

    name: str
    outputs_: dict[str, str]
    log_: str
    filled: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, output: str) -> str:
        outputs = self.__dict__.get("outputs_", {})
        if output not in outputs:
            raise AttributeError(f"stage {self.__dict__.get('name')!r} has no output {output!r}")
        return _fill(outputs[output], self.filled)

    @property
    def log(self) -> str:
        return _fill(self.log_, self.filled)

    def partial(self, **wildcards: Any) -> "Stage":
        """The same stage with some wildcards filled (e.g. an engine family's suffix)."""
        return Stage(self.name, self.outputs_, self.log_, {**self.filled, **wildcards})

    def paths(self, **wildcards: Any) -> dict[str, str]:
        return {name: _fill(t, {**self.filled, **wildcards}) for name, t in self.outputs_.items()}

    def log_path(self, **wildcards: Any) -> str:
        return _fill(self.log_, {**self.filled, **wildcards})


class Layout:
    """The artifact paths of one results folder."""

    def __init__(self, results: str | Any):
        self.results = str(results)
        r = self.results + "/{model}"
        logs = r + "/logs"
        self.checkpoint = Stage("checkpoint", {"checkpoint": f"{r}/checkpoint.pt"}, f"{logs}/checkpoint.log")
        self.reference = Stage("reference", {"reference": f"{r}/reference.npz", "flops": f"{r}/flops.json"},
                               f"{logs}/reference.log")
        self.export = Stage("export", {"onnx": f"{r}/onnx/{{variant}}.onnx"}, f"{logs}/export.{{variant}}.log")
        self.check_export = Stage("check_export", {"accuracy": f"{r}/accuracy/export.{{variant}}.csv",
                                                   "report": f"{r}/onnx/{{variant}}.check.json"},
                                  f"{logs}/check_export.{{variant}}.log")
        self.simplify = Stage("simplify", {"onnx": f"{r}/onnx/{{variant}}.sim.onnx",
                                           "accuracy": f"{r}/accuracy/simplify.{{variant}}.csv",
                                           "stats": f"{r}/onnx/{{variant}}.sim.json"}, f"{logs}/simplify.{{variant}}.log")
        self.precision = Stage("precision", {"onnx": f"{r}/onnx/{{variant}}.sim.{{precision}}.onnx",
                                             "accuracy": f"{r}/accuracy/precision.{{variant}}.{{precision}}.csv",
                                             "stats": f"{r}/onnx/{{variant}}.sim.{{precision}}.json"},
                               f"{logs}/precision.{{variant}}.{{precision}}.log")
        self.engine = Stage("engine", {"engine": f"{r}/engines/{{backend}}/{STEM}.{{suffix}}",
                                       "sidecar": f"{r}/engines/{{backend}}/{STEM}.json",
                                       "accuracy": f"{r}/accuracy/engine.{{backend}}.{STEM}.csv"},
                            f"{logs}/engine.{{backend}}.{STEM}.log")
        self.sensitivity = Stage("sensitivity", {"json": f"{r}/quantize/sensitivity.json",
                                                 "csv": f"{r}/quantize/sensitivity.csv"}, f"{logs}/sensitivity.log")
        self.benchmark = Stage("benchmark", {"csv": f"{r}/bench/{{backend}}/{STEM}.csv",
                                             "timings": f"{r}/bench/{{backend}}/{STEM}.timings.npz"},
                               f"{logs}/bench.{{backend}}.{STEM}.log")
        # the model's own samples (trtpipe.evaluate): PyTorch on the held-out part, every artifact judged on it
        self.data_reference = Stage("data_reference", {"data": f"{r}/data.npz", "calibration": f"{r}/calibration.npz"},
                                    f"{logs}/data_reference.log")
        self.evaluate_onnx = Stage("evaluate_onnx", {"accuracy": f"{r}/accuracy/data.onnx.{{variant}}.csv"},
                                   f"{logs}/evaluate_onnx.{{variant}}.log")
        self.evaluate_engine = Stage("evaluate_engine", {"accuracy": f"{r}/accuracy/data.engine.{{backend}}.{STEM}.csv"},
                                     f"{logs}/evaluate_engine.{{backend}}.{STEM}.log")
        summary = self.results + "/summary"
        self.summary_dir = summary
        self.summary = Stage("summary", {"benchmarks": f"{summary}/benchmarks.csv", "accuracy": f"{summary}/accuracy.csv",
                                         "markdown": f"{summary}/report.md", "html": f"{summary}/report.html"},
                             f"{summary}/summary.log")
        self.plot = f"{summary}/plots/{{model}}.png"
        self.pareto_plot = f"{summary}/plots/{{model}}.pareto.png"
        self.compare = Stage("compare", {"markdown": f"{summary}/compare.md", "csv": f"{summary}/compare.csv"}, "")

    # --- what an engine is built from, and which engine a benchmark times -----------------------------
    def checkpoint_path(self, spec) -> str:
        """The user's checkpoint, or the seeded one the checkpoint rule writes."""
        return spec.checkpoint or self.checkpoint.paths(model=spec.name)["checkpoint"]

    def engine_onnx(self, model: str, variant: Variant | str, precision: str) -> str:
        """The ONNX an engine of this precision is built from: the simplified one, or its precision ONNX."""
        if precision in FP32_ONNX_PRECISIONS:
            return self.simplify.paths(model=model, variant=variant)["onnx"]
        return self.precision.paths(model=model, variant=variant, precision=precision)["onnx"]

    def engine_paths(self, model: str, backend: str, variant: Variant | str, precision: str, profile: str) -> dict[str, str]:
        return self.engine.paths(model=model, backend=backend, variant=variant, precision=precision, profile=profile,
                                 suffix=registry.get(backend).engine_suffix)

    def bench_paths(self, model: str, backend: str, variant: Variant | str, precision: str, profile: str) -> dict[str, str]:
        return self.benchmark.paths(model=model, backend=backend, variant=variant, precision=precision, profile=profile)


def engine_source_stage(backend: str, precision: str) -> str:
    """Which stage's output an engine is built from: the checkpoint, the simplified ONNX, or the precision ONNX."""
    if registry.get(backend).source == registry.CHECKPOINT_SOURCE:
        return "checkpoint"
    return "simplify" if precision in FP32_ONNX_PRECISIONS else "precision"


def timed_engine_profile(sweep, backend: str, variant: Variant | str, profile: str) -> str:
    """The profile name of the engine a benchmark of `profile` times: its own, or the combined engine holding it."""
    combined = Variant.parse(str(variant)).is_dynamic and sweep.combines_profiles(backend)
    return COMBINED if combined else profile


# --- the jobs a sweep expects ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    model: str
    stage: str  # checkpoint, reference, export, check_export, simplify, sensitivity, precision, engine, benchmark,
    # data_reference, evaluate_onnx, evaluate_engine
    artifact: str  # what it makes: a variant, "variant precision", or "backend variant precision profile"
    named_outputs: tuple[tuple[str, str], ...]  # (the rule's output name, path)
    log: str
    needs: tuple[str, ...] = ()  # keys of the jobs whose outputs it reads

    @property
    def key(self) -> str:
        return f"{self.model}|{self.stage}|{self.artifact}"

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(path for _, path in self.named_outputs)

    def output(self, name: str) -> str:
        return dict(self.named_outputs)[name]


def _job(stage: Stage, model: str, artifact: str, needs: tuple[str, ...] = (), **wildcards: Any) -> Job:
    outputs = stage.paths(model=model, **wildcards)
    return Job(model, stage.name, artifact, tuple(outputs.items()), stage.log_path(model=model, **wildcards), needs)


def expected_jobs(sweep) -> list[Job]:
    """Every job the sweep's DAG holds, in the order the stages run; the paths are the rules' own templates."""
    layout = Layout(sweep.results)
    jobs: list[Job] = []
    for m, spec in sweep.models.items():
        seeded = spec.checkpoint is None
        ckpt = (f"{m}|checkpoint|",) if seeded else ()
        if seeded:
            jobs.append(_job(layout.checkpoint, m, ""))
        ref = f"{m}|reference|"
        jobs.append(_job(layout.reference, m, "", ckpt))
        data = f"{m}|data_reference|"
        if sweep.samples(m):
            jobs.append(_job(layout.data_reference, m, "", ckpt))
        calibrates = (data,) if sweep.samples_calibration(m) else ()  # int8/fp8/int8-ort-* calibrate on the samples
        sens = (f"{m}|sensitivity|",) if sweep.needs_sensitivity(m) else ()
        for variant in sweep.variants(m):
            v = str(variant)
            jobs.append(_job(layout.export, m, v, ckpt, variant=v))
            jobs.append(_job(layout.check_export, m, v, (f"{m}|export|{v}", ref), variant=v))
            jobs.append(_job(layout.simplify, m, v, (f"{m}|export|{v}", f"{m}|check_export|{v}", ref), variant=v))
            if variant.is_dynamic and sens:  # ranks the dynamic variant's nodes; after what it needs, as every job
                jobs.append(_job(layout.sensitivity, m, "", (f"{m}|simplify|{v}", *calibrates)))
            for p in sweep.precision_onnx_needed(m, variant):
                needs = (f"{m}|simplify|{v}", ref, *(calibrates if quantized(p) else ()),
                         *(sens if p.endswith("-mixed") else ()))
                jobs.append(_job(layout.precision, m, f"{v} {p}", needs, variant=v, precision=p))
        for t in sweep.engine_targets(m):
            v = str(t.variant)
            source = {"checkpoint": ckpt, "simplify": (f"{m}|simplify|{v}",),
                      "precision": (f"{m}|precision|{v} {t.precision}",)}[engine_source_stage(t.backend, t.precision)]
            jobs.append(_job(layout.engine, m, f"{t.backend} {v} {t.precision} {t.profile}", (*source, ref),
                             backend=t.backend, variant=v, precision=t.precision, profile=t.profile,
                             suffix=registry.get(t.backend).engine_suffix))
        if sweep.samples(m):
            for variant in sweep.variants(m):
                v = str(variant)
                onnx = (f"{m}|export|{v}", f"{m}|simplify|{v}",
                        *(f"{m}|precision|{v} {p}" for p in sweep.precision_onnx_needed(m, variant)))
                jobs.append(_job(layout.evaluate_onnx, m, v, (*onnx, data), variant=v))
            for t in sweep.engine_targets(m):
                artifact = f"{t.backend} {t.variant} {t.precision} {t.profile}"
                jobs.append(_job(layout.evaluate_engine, m, artifact, (f"{m}|engine|{artifact}", data), backend=t.backend,
                                 variant=t.variant, precision=t.precision, profile=t.profile))
        for b in sweep.bench_targets(m):
            t = b.engine
            jobs.append(_job(layout.benchmark, m, f"{t.backend} {t.variant} {t.precision} {b.profile}",
                             (f"{m}|engine|{t.backend} {t.variant} {t.precision} {t.profile}",),
                             backend=t.backend, variant=t.variant, precision=t.precision, profile=b.profile))
    return jobs


# The summary's file inputs: (stage, output name) -> SummaryInputs field
SUMMARY_FILE_INPUTS = {
    ("benchmark", "csv"): "bench",
    ("benchmark", "timings"): "timings",
    ("check_export", "accuracy"): "accuracy",
    ("simplify", "accuracy"): "accuracy",
    ("precision", "accuracy"): "accuracy",
    ("engine", "accuracy"): "accuracy",
    ("evaluate_onnx", "accuracy"): "accuracy",
    ("evaluate_engine", "accuracy"): "accuracy",
    ("simplify", "stats"): "simplify_stats",
    ("precision", "stats"): "precision_stats",
    ("reference", "flops"): "flops",
    ("sensitivity", "json"): "sensitivity",
}


# accuracy.csv lists the ONNX stages' rows first, then the precision ONNX's, then the engines', then those on the samples
_ACCURACY_ORDER = {"check_export": 0, "simplify": 0, "precision": 1, "engine": 2, "evaluate_onnx": 3, "evaluate_engine": 4}


def summary_files(jobs: list[Job]) -> dict[str, list[str]]:
    """The summary's file inputs among `jobs`, by SummaryInputs field, in job order (accuracy: by stage group)."""
    out: dict[str, list[str]] = {f: [] for f in dict.fromkeys(SUMMARY_FILE_INPUTS.values())}
    for job in sorted(jobs, key=lambda j: _ACCURACY_ORDER.get(j.stage, 0)):
        for name, path in job.named_outputs:
            kind = SUMMARY_FILE_INPUTS.get((job.stage, name))
            if kind:
                out[kind].append(path)
    return out
