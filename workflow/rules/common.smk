# Input functions, target lists and the command prefix shared by every rule file.
import dataclasses
import json
import os
import re
import shlex
import sys

from snakemake.settings.types import DeploymentMethod

from trtpipe import codehash, schedule
from trtpipe.backends import registry
from trtpipe.layout import PRECISIONS, REDUCED_PRECISIONS, Layout, engine_source_stage, quantized, stem, timed_engine_profile
from trtpipe.quantize import ORT_PATTERN as ORT_PRECISION
from trtpipe.spec import Variant
from trtpipe.summary_inputs import SummaryInputs

# Every output and log path comes from the layout (trtpipe/layout.py): L.<stage>.<output> is its template with
# Snakemake's wildcards in it. The failure read-back and `trtpipe compare` ask the same layout.
L = Layout(SWEEP.results)
PACKAGE_DIR = str(Path(workflow.basedir) / "workflow")

# Every rule calls `trtpipe <stage> ...`, the same command a user can type. The shell prefix defines it
# as a function running this checkout's package: with the conda env's python under --sdm conda,
# otherwise with the interpreter running Snakemake (its virtualenv need not be activated). The
# prefix is not part of the rules' shell text, so a checkout or venv in another place reruns nothing.
_PYTHON = "python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method else sys.executable
def _scheduled_cores():
    try:
        return workflow.cores or 1
    except WorkflowError:  # --report and --lint run without --cores
        return 1


# Scheduling (trtpipe/schedule.py): none of it is in params, so a change reruns nothing. A sweep that times on a
# GPU keeps scheduling.timing_cores of this machine's cores for those timings; every other job is confined to
# the rest (trtpipe.machine.confine, told through TRTPIPE_TIMING_CORES in the shell prefix).
GPU_TIMINGS = any(registry.get(b).needs_gpu(SWEEP.backend_options(b)) for b in SWEEP.backends)
_MACHINE_CORES = len(os.sched_getaffinity(0))
TIMING_CORES = SWEEP.scheduling["timing_cores"] if GPU_TIMINGS and _MACHINE_CORES > SWEEP.scheduling["timing_cores"] + 1 else 0

_PREFIX = (
    'set -euo pipefail; export PYTHONPATH=@PKG@${PYTHONPATH:+:$PYTHONPATH} @TIMING@=@CORES@; trtpipe() { @PYTHON@ -m trtpipe "$@"; }; '
    .replace("@PKG@", shlex.quote(PACKAGE_DIR))
    .replace("@PYTHON@", shlex.quote(_PYTHON))
    .replace("@TIMING@", schedule.TIMING_CORES_ENV)
    .replace("@CORES@", str(TIMING_CORES))
)
shell.prefix(_PREFIX.replace("{", "{{").replace("}", "}}"))  # braces survive Snakemake's formatting


# A CPU benchmark times on every core Snakemake schedules (even when --cores exceeds the machine's; the
# backend itself uses the CPUs that exist). Nothing runs beside any timing: every job holds the machine
# shared and a timing takes it alone (trtpipe/machine.py), so a GPU benchmark needs one core for loading.
BENCH_THREADS = _scheduled_cores()


wildcard_constraints:
    model="|".join(map(re.escape, SWEEP.models)) or "NO_MODEL",
    variant=Variant.PATTERN,
    precision="|".join([*PRECISIONS, ORT_PRECISION]),
    profile=r"[A-Za-z0-9_]+",


def as_json(value):
    """Deterministic JSON for params: Snakemake reruns a job when its params text changes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def model_json(w):
    return SWEEP.models[w.model].to_json()


def factory_json(w):
    """What a seeded checkpoint depends on: factory, its kwargs, the seed and the inputs (its BatchNorm statistics are
    measured on seeded inputs), not the outputs."""
    return dataclasses.replace(SWEEP.models[w.model], outputs=()).to_json()


def factory_modules(model):
    """Package modules and files that define a model, so editing them reruns its chain."""
    spec = SWEEP.models[model]
    if not spec.factory:
        return (), ()
    target = spec.factory.rpartition(":")[0]
    if target.endswith(".py") or "/" in target:
        return (), (target,)
    return ((target,) if target.split(".")[0] == "trtpipe" else ()), ()


def code(*modules, model=None):
    """Digest of the package code a rule runs (see trtpipe/codehash.py)."""
    if model is None:
        return codehash.digest(*modules)
    extra_modules, extra_files = factory_modules(model)
    return codehash.digest(*modules, *extra_modules, extra_files=extra_files)


def checkpoint_path(model):
    return L.checkpoint_path(SWEEP.models[model])


def checkpoint_input(w):
    # A missing user checkpoint is left out of the DAG so that its job, not the whole sweep, fails
    # with one clear sentence; the other models still finish under --keep-going.
    path = checkpoint_path(w.model)
    return [path] if SWEEP.models[w.model].checkpoint is None or os.path.exists(path) else []


def tolerance_json(precision="fp32"):
    return as_json(SWEEP.tolerance(precision))


def engine_source(w):
    """What an engine is built from: the (precision) ONNX, or the checkpoint."""
    if engine_source_stage(w.backend, w.precision) == "checkpoint":
        return checkpoint_path(w.model)
    return L.engine_onnx(w.model, w.variant, w.precision)


def engine_source_input(w):
    if engine_source_stage(w.backend, w.precision) == "checkpoint":
        return checkpoint_input(w)
    return [engine_source(w)]


def backend_options(backend):
    return SWEEP.backend_options(backend)


def gpu_units(w):
    """GPU jobs take one unit of the `gpu` resource (a torch backend on `device: cpu` none)."""
    return int(registry.get(w.backend).needs_gpu(backend_options(w.backend)))


def bench_threads(w):
    return 1 if gpu_units(w) else BENCH_THREADS


def engine_threads(w):
    """torch.compile on the CPU writes C++ kernels for a thread count: its engine job compiles on the cores its
    benchmark will time on, or the benchmark compiles again. A torch.compile build for the GPU gets COMPILE_THREADS
    cores, one Inductor compile worker each. Other builds take one core."""
    backend = registry.get(w.backend)
    if backend.builds_on_bench_cores(backend_options(w.backend)):
        return BENCH_THREADS
    return COMPILE_THREADS if backend.compiles else 1


def compile_units(w):
    """torch.compile builds take one unit of the `compile` resource (at most COMPILE_SLOTS run at once)."""
    return int(registry.get(w.backend).compiles)


def _compile_cost(model):
    """(expected seconds, source) of the model's costliest torch.compile build in this sweep (trtpipe.schedule)."""
    if model not in _COSTS:
        targets = [t for t in ENGINE_TARGETS if t.model == model and registry.get(t.backend).compiles]
        costs = [schedule.build_cost(L.engine_paths(model, t.backend, t.variant, t.precision, t.profile)["sidecar"])
                 for t in targets]
        _COSTS[model] = max(costs, default=(0.0, ""))
        if _COSTS[model][1] == "recorded" and workflow.is_main_process:
            print(f"trtpipe: {model}: its torch.compile build took {_COSTS[model][0]:.0f} s last time; the costliest "
                  f"start first", file=sys.stderr)
    return _COSTS[model]


_COSTS = {}


def chain_priority(w):
    """A model's checkpoint and reference jobs lead to its torch.compile builds: they get the costliest build's
    expected seconds as their priority, so the longest chain starts first (only in the process that schedules)."""
    return round(_compile_cost(w.model)[0], 1) if workflow.is_main_process else 0


def engine_priority(w):
    """A torch.compile build, and the benchmark timing it, get its expected seconds; other engines none."""
    if not (workflow.is_main_process and registry.get(w.backend).compiles):
        return 0
    sidecar = L.engine_paths(w.model, w.backend, w.variant, w.precision, w.profile)["sidecar"]
    return round(schedule.build_cost(sidecar)[0], 1)


def bench_units(w):
    """CPU benchmarks run one at a time (each takes every core); GPU benchmarks load side by side and wait
    for the machine only to time (trtpipe.machine.alone)."""
    return 1 - gpu_units(w)


def bench_gpu_units(w):
    """Here a GPU benchmark's claim is shared until it times: no unit. On a cluster the unit is what asks the
    scheduler for the GPU of the engine's job (engine_group), so it stays; a dry run cannot tell the two apart
    and shows the unit."""
    return gpu_units(w) if workflow.non_local_exec_or_dryrun else 0


def build_gpu_units(w):
    """Engine builds that time no kernels (torch.compile) share the GPU: no unit; their GPU claim is shared."""
    backend = registry.get(w.backend)
    return 0 if backend.build_shares_gpu(backend_options(w.backend)) else gpu_units(w)


def backend_identity(w):
    backend = registry.get(w.backend)
    return as_json(backend.dag_identity(backend_options(backend.name)))


def calibration_input(w):
    # int8, fp8 and int8-ort-* calibrate on calibration_data or the calibration part of the model's samples (the
    # data_reference rule's output); a missing file is left out of the DAG so that its job fails with one sentence.
    # The sensitivity ranking calibrates like int8-ort-qdq.
    path = SWEEP.calibration_file(w.model)
    made = not SWEEP.calibration_data(w.model)
    return [path] if path and quantized(getattr(w, "precision", "int8-ort-qdq")) and (made or os.path.exists(path)) else []


def calibration_arg(w):
    path = SWEEP.calibration_file(w.model)
    quantizes = quantized(getattr(w, "precision", "int8-ort-qdq"))
    return f"--calibration-data {shlex.quote(path)}" if path and quantizes else ""


def sensitivity_input(w):
    """A search candidate keeps the nodes the sensitivity ranking names in float."""
    return [L.sensitivity.paths(model=w.model)["json"]] if w.precision.endswith("-mixed") else []


def quantize_json(model, precision, thresholds=None):
    """The quantize settings a precision depends on. The model's metric and thresholds only where they decide what is
    made (a search candidate's nodes kept in float; the sensitivity ranking, `thresholds=True`): elsewhere they only
    judge, in the evaluation jobs and the report, so a changed threshold rebuilds no engine."""
    thresholds = precision.endswith("-mixed") if thresholds is None else thresholds
    if precision.startswith("int8-ort-"):
        keep = {k: v for k, v in SWEEP.quantize.items() if k not in ("search", "quantizers", "per_channel",
                                                                     "calibration_methods", "sensitivity", "accept")}
    else:
        keep = {k: SWEEP.quantize[k] for k in ("calibration_share", "evaluation_samples")}
    judge = {"accept": SWEEP.quantize_accept(model), "metric": metric_dict(model)} if thresholds else {}
    return as_json({**keep, **judge})


def samples_input(w):
    """The sample files a model's data reference reads (each image of a folder; the tokenizer of text), so that
    editing one reruns it; missing ones are left out so that the job fails with one sentence."""
    s = SWEEP.samples(w.model) or {}
    path = s.get("path")
    files = []
    if path and os.path.isdir(path):
        files = sorted(str(p) for p in Path(path).rglob("*") if p.is_file())
    elif path and os.path.exists(path):
        files = [path]
    if s.get("tokenizer") and os.path.exists(s["tokenizer"]):
        files.append(s["tokenizer"])
    return files


def metric_dict(model):
    metric = SWEEP.metric(model)
    return dataclasses.asdict(metric) if metric else None


def metric_json(w):
    return as_json(metric_dict(w.model))


def metric_input(w):
    """A user's metric file: editing it reruns the evaluation jobs, the sensitivity ranking and the search candidates."""
    metric = SWEEP.metric(w.model)
    path = metric.task.rpartition(":")[0] if metric and metric.is_hook else None
    return [path] if path and os.path.exists(path) else []


def onnx_artifacts(w):
    """(stage, precision, path) of every ONNX of a variant, judged on the samples."""
    m, v = w.model, w.variant
    return ([("export", "fp32", L.export.paths(model=m, variant=v)["onnx"]),
             ("simplify", "fp32", L.simplify.paths(model=m, variant=v)["onnx"])]
            + [("precision", p, L.precision.paths(model=m, variant=v, precision=p)["onnx"])
               for p in SWEEP.precision_onnx_needed(m, Variant.parse(v))])


def engine_profiles_json(w):
    return as_json([p.to_dict() for p in SWEEP.engine_profiles(w.model, w.backend, Variant.parse(w.variant), w.profile)])


def timed_engine(w):
    """The engine a benchmark times, and its sidecar: its own, or the combined engine holding its profile."""
    profile = timed_engine_profile(SWEEP, w.backend, w.variant, w.profile)
    return L.engine_paths(w.model, w.backend, w.variant, w.precision, profile)


def engine_group(w):
    """On a cluster an engine is built and timed in one job, on one node: an engine is only valid on the device
    and with the library version that built it. (Snakemake ignores groups when it runs jobs itself.)"""
    profile = timed_engine_profile(SWEEP, w.backend, w.variant, w.profile)
    return f"engine-{w.model}-{w.backend}-{stem(w.variant, w.precision, profile)}"


def bench_batches(w):
    profile = SWEEP.engine_profile(Variant.parse(w.variant), w.profile)
    return ",".join(map(str, SWEEP.bench_batches(w.model, profile)))


def family_code(stage_module, family):
    """Digest of the stage and of every module the family's backends run."""
    modules = sorted({b.module for b in family})
    extra = ("trtpipe.models",) if any(b.source == registry.CHECKPOINT_SOURCE for b in family) else ()
    return code(stage_module, *modules, *extra)


# What the summary reads, built from the sweep as the report written after a failure builds it.
SUMMARY_INPUTS = SummaryInputs.from_sweep(SWEEP)
ENGINE_TARGETS = [t for m in SWEEP.models for t in SWEEP.engine_targets(m)]
# The engines are deliverables too, asked for by the default target; so one deleted between runs is rebuilt, then timed again.
ENGINE_FILES = [L.engine_paths(t.model, t.backend, t.variant, t.precision, t.profile)["engine"] for t in ENGINE_TARGETS]
PLOTS = [L.plot.format(model=m) for m in SWEEP.models]
PARETO_PLOTS = [L.pareto_plot.format(model=m) for m in SWEEP.models]
# torch.compile builds for the GPU share the build cores (those not kept for timings): COMPILE_THREADS cores each,
# at most COMPILE_SLOTS at once unless `--resources compile=N` says otherwise.
_GPU_COMPILES = sum(1 for t in ENGINE_TARGETS if registry.get(t.backend).compiles
                    and not registry.get(t.backend).builds_on_bench_cores(SWEEP.backend_options(t.backend)))
BUILD_CORES = schedule.build_cores(_scheduled_cores(), TIMING_CORES)
COMPILE_THREADS = schedule.compile_threads(BUILD_CORES, _GPU_COMPILES, SWEEP.scheduling["compile_threads"])
COMPILE_SLOTS = schedule.compile_slots(BUILD_CORES, COMPILE_THREADS)
if "compile" not in workflow.global_resources:
    workflow.global_resources["compile"] = COMPILE_SLOTS
# With a baseline, the summary compares this sweep against it (trtpipe compare's rule, from the raw timings).
COMPARE_FILES = list(L.compare.paths().values()) if SWEEP.baseline else []
SUMMARY_FILES = list(L.summary.paths().values()) + PLOTS + PARETO_PLOTS + COMPARE_FILES
