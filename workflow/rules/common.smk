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
from trtpipe.config import COMBINED
from trtpipe.spec import Variant
from trtpipe.timings import timings_path

R = SWEEP.results
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
    precision="fp32|tf32|fp16|bf16|int8|fp8",
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
    return SWEEP.models[model].checkpoint or f"{R}/{model}/checkpoint.pt"


def checkpoint_input(w):
    # A missing user checkpoint is left out of the DAG so that its job, not the whole sweep, fails
    # with one clear sentence; the other models still finish under --keep-going.
    path = checkpoint_path(w.model)
    return [path] if SWEEP.models[w.model].checkpoint is None or os.path.exists(path) else []


def tolerance_json(precision="fp32"):
    return as_json(SWEEP.tolerance(precision))


def onnx_for_engine(w):
    suffix = "" if w.precision in ("fp32", "tf32") else f".{w.precision}"  # tf32 is a way to run the fp32 ONNX
    return f"{R}/{w.model}/onnx/{w.variant}.sim{suffix}.onnx"


def engine_source(w):
    """What an engine is built from: the (precision) ONNX, or the checkpoint."""
    if registry.get(w.backend).source == registry.CHECKPOINT_SOURCE:
        return checkpoint_path(w.model)
    return onnx_for_engine(w)


def engine_source_input(w):
    if registry.get(w.backend).source == registry.CHECKPOINT_SOURCE:
        return checkpoint_input(w)
    return [onnx_for_engine(w)]


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
        costs = [schedule.build_cost(f"{R}/{model}/engines/{t.backend}", t.stem) for t in targets]
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
    return round(schedule.build_cost(f"{R}/{w.model}/engines/{w.backend}", f"{w.variant}.{w.precision}.{w.profile}")[0], 1)


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
    # Only int8/fp8 read it; a missing file is left out of the DAG so that its job fails with one sentence.
    path = SWEEP.calibration_data(w.model)
    return [path] if path and w.precision in ("int8", "fp8") and os.path.exists(path) else []


def calibration_arg(w):
    path = SWEEP.calibration_data(w.model)
    return f"--calibration-data {shlex.quote(path)}" if path and w.precision in ("int8", "fp8") else ""


def engine_profiles_json(w):
    return as_json([p.to_dict() for p in SWEEP.engine_profiles(w.model, w.backend, Variant.parse(w.variant), w.profile)])


def engine_file(w, sidecar=False):
    """The engine a benchmark times: its own, or the combined engine holding its profile."""
    combined = w.variant == "dynamic" and SWEEP.combines_profiles(w.backend)
    stem = f"{w.variant}.{w.precision}.{COMBINED if combined else w.profile}"
    return f"{R}/{w.model}/engines/{w.backend}/{stem}.{'json' if sidecar else registry.get(w.backend).engine_suffix}"


def engine_group(w):
    """On a cluster an engine is built and timed in one job, on one node: an engine is only valid on the device
    and with the library version that built it. (Snakemake ignores groups when it runs jobs itself.)"""
    stem = os.path.basename(engine_file(w)).rsplit(".", 1)[0]
    return f"engine-{w.model}-{w.backend}-{stem}"


def bench_batches(w):
    profile = SWEEP.engine_profile(Variant.parse(w.variant), w.profile)
    return ",".join(map(str, SWEEP.bench_batches(w.model, profile)))


def family_code(stage_module, family):
    """Digest of the stage and of every module the family's backends run."""
    modules = sorted({b.module for b in family})
    extra = ("trtpipe.models",) if any(b.source == registry.CHECKPOINT_SOURCE for b in family) else ()
    return code(stage_module, *modules, *extra)


def engine_stem(t):
    return f"{R}/{t.model}/engines/{t.backend}/{t.stem}"


ENGINE_TARGETS = [t for m in SWEEP.models for t in SWEEP.engine_targets(m)]
# torch.compile builds for the GPU share the build cores (those not kept for timings): COMPILE_THREADS cores each,
# at most COMPILE_SLOTS at once unless `--resources compile=N` says otherwise.
_GPU_COMPILES = sum(1 for t in ENGINE_TARGETS if registry.get(t.backend).compiles
                    and not registry.get(t.backend).builds_on_bench_cores(SWEEP.backend_options(t.backend)))
BUILD_CORES = schedule.build_cores(_scheduled_cores(), TIMING_CORES)
COMPILE_THREADS = schedule.compile_threads(BUILD_CORES, _GPU_COMPILES, SWEEP.scheduling["compile_threads"])
COMPILE_SLOTS = schedule.compile_slots(BUILD_CORES, COMPILE_THREADS)
if "compile" not in workflow.global_resources:
    workflow.global_resources["compile"] = COMPILE_SLOTS
BENCH_FILES = [f"{R}/{t.engine.model}/bench/{t.engine.backend}/{t.stem}.csv" for m in SWEEP.models for t in SWEEP.bench_targets(m)]
REDUCED = [(m, v, p) for m in SWEEP.models for v in SWEEP.variants(m) for p in SWEEP.precision_onnx_needed(m)]
ACCURACY_FILES = (
    [f"{R}/{m}/accuracy/{stage}.{v}.csv" for m in SWEEP.models for v in SWEEP.variants(m) for stage in ("export", "simplify")]
    + [f"{R}/{m}/accuracy/precision.{v}.{p}.csv" for m, v, p in REDUCED]
    + [f"{R}/{t.model}/accuracy/engine.{t.backend}.{t.stem}.csv" for t in ENGINE_TARGETS]
)
SIMPLIFY_STATS = [f"{R}/{m}/onnx/{v}.sim.json" for m in SWEEP.models for v in SWEEP.variants(m)]
PRECISION_STATS = [f"{R}/{m}/onnx/{v}.sim.{p}.json" for m, v, p in REDUCED]
FLOPS_FILES = [f"{R}/{m}/flops.json" for m in SWEEP.models]
TIMINGS_FILES = [str(timings_path(p)) for p in BENCH_FILES]
PLOTS = [f"{R}/summary/plots/{m}.png" for m in SWEEP.models]
PARETO_PLOTS = [f"{R}/summary/plots/{m}.pareto.png" for m in SWEEP.models]
# With a baseline, the summary compares this sweep against it (trtpipe compare's rule, from the raw timings).
COMPARE_FILES = [f"{R}/summary/compare.md", f"{R}/summary/compare.csv"] if SWEEP.baseline else []
SUMMARY_FILES = ([f"{R}/summary/{name}" for name in ("benchmarks.csv", "accuracy.csv", "report.md", "report.html")]
                 + PLOTS + PARETO_PLOTS + COMPARE_FILES)
