#!/usr/bin/env bash
# The GPU sweep's wall time before and after the scheduling change (docs/gpu/sweep_time/), in phases, each a
# call of scripts/gpu_run.sh on config/gpu-sweep-time.yaml with its own results folder and TorchInductor cache:
#   scripts/gpu_sweep_time.sh before   the workflow in $BEFORE (an older revision, unpacked with
#                                      `git archive 88c924b Snakefile workflow envs profiles | tar x -C DIR`)
#   scripts/gpu_sweep_time.sh after    this revision, from empty caches
#   scripts/gpu_sweep_time.sh beside   torch timings alone vs beside confined compiles, on the after sweep's engines
#   scripts/gpu_sweep_time.sh rerun    the after sweep again with one benchmark setting changed: no engine rebuilds
# Each phase's Snakemake log goes to $OUT/<phase>_sweep.log and its job timeline to $OUT/jobs_<phase>.csv
# (scripts/job_times.py). LIMIT (seconds) stops a sweep early.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export CONFIG=config/gpu-sweep-time.yaml OUT
status=0
sweep() {  # phase, results folder, TorchInductor cache, then more environment for gpu_run.sh
  local phase=$1 results=$2 cache=$3; shift 3
  env "$@" RESULTS="$results" TORCH_CACHE="$cache" SWEEP_LIMIT_S="${LIMIT:-540}" scripts/gpu_run.sh sweep \
    > "$OUT/${phase}_sweep.log" 2>&1 || status=1
  mv "$OUT/$results.tar.gz" "$OUT/$phase.tar.gz"; mv "$OUT/$results.report.html" "$OUT/$phase.report.html"
  python3 scripts/job_times.py "$OUT/${phase}_sweep.log" > "$OUT/jobs_${phase}.csv" || status=1
  grep "sweep wall time" "$OUT/${phase}_sweep.log"
}
for phase in "$@"; do
  echo "=== $phase $(date -u +%H:%M:%S)"
  case $phase in
    before) sweep before results-st-before torch_cache_before WORKFLOW="${BEFORE:?BEFORE=dir of the older workflow}" ;;
    after) sweep after results-st-after torch_cache_after ;;
    rerun) sweep rerun results-st-after torch_cache_after SET="benchmark.min_duration_s=0.5" ;;
    beside)
      BESIDE_ENGINES="${BESIDE_RESULTS:-results-st-after}/*/engines/torch_compile_graph/dynamic.fp16.dynamic.torch" \
        BESIDE_MODELS="${BESIDE_MODELS:-resnext50_32x4d,mnasnet1_0,swin_t}" BESIDE_ARGS="--rounds 4 --min-duration 0.5" \
        scripts/gpu_run.sh beside || status=1 ;;
    *) echo "unknown phase $phase"; exit 2 ;;
  esac
done
exit $status
