#!/usr/bin/env bash
# The GPU proof of the PyTorch backends and the shared timing harness, in stages:
#   scripts/gpu_run.sh check      GPU tests (tests/test_torch_backend.py, the harness's tests)
#   scripts/gpu_run.sh fidelity   scripts/harness_fidelity.py: harness vs hand-written CUDA-event loop vs do_bench
#   scripts/gpu_run.sh gap        docs/gpu/scripts/compile_gap_probe.py: pipeline vs fidelity-script compile, one variable at a time
#   scripts/gpu_run.sh sweep      the real pipeline on config/gpu-torchvision.yaml (ResNet-50, ViT-B/16)
#   scripts/gpu_run.sh ort_check  onnxruntime-gpu's providers, and the ONNX Runtime GPU backend's GPU tests
#   scripts/gpu_run.sh ort_sweep  the pipeline on config/gpu-onnxruntime.yaml (CONFIG= picks another config)
#   scripts/gpu_run.sh ort_fidelity  scripts/harness_fidelity.py on the ONNX Runtime CUDA engines of ort_sweep (ORT_ENGINES=glob)
#   scripts/gpu_run.sh ort_probe  scripts/ort_cuda_probe.py: the CUDA EP's options one at a time (ResNet-50 fp32/fp16)
#   scripts/gpu_run.sh ref_scale  the size of each model's reference outputs in RESULTS (what fp16 tolerances face)
#   scripts/gpu_run.sh beside     scripts/beside_compile_fidelity.py: torch timings alone vs beside confined compiles,
#                                 on the engines BESIDE_ENGINES (glob) of the models BESIDE_MODELS
#   scripts/gpu_run.sh identity   the machine: GPU, driver, CPU, library versions (-> $OUT/machine.txt)
# SET="key.sub=value ..." sets config values of a sweep (YAML values), e.g. SET="scheduling.timing_cores=0".
# SWEEP_LIMIT_S stops the sweep early (Snakemake cleans up; a rerun resumes where it stopped).
# PRIORITIZE (rule names or files, space-separated) goes to Snakemake's --prioritize: what a stopped sweep must have.
# WORKFLOW=dir runs the Snakefile (and package) in dir instead, e.g. an older revision unpacked with
# `git archive REV Snakefile workflow envs profiles | tar x -C dir` for a before/after comparison;
# RESULTS and TORCH_CACHE then keep its results and TorchInductor cache apart.
# Results go to $OUT (default gpu-out/). On the lent H100/H200 (no network) the pip packages that
# machine lacks travel as wheels in .whl/ (see docs/gpu/README.md); elsewhere `make setup` is enough.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
# The wheels that machine lacks (onnxruntime-gpu is 255 MB) arrive in pieces under /tmp/wheel-parts, one per
# device call (docs/gpu/onnxruntime/README.md); they go to /tmp/site, ahead of the machine's own packages
# (its CPU onnxruntime among them) on PYTHONPATH. Without pieces, .whl/ holds the small ones.
if ls /tmp/wheel-parts/chunk.* >/dev/null 2>&1 && [ ! -d /tmp/site/onnxruntime ]; then
  cat /tmp/wheel-parts/chunk.* | tar x -C /tmp/wheel-parts && \
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/wheel-parts/*.whl || exit 1
fi
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site
if ! python3 -c "import snakemake, jsonschema, onnxslim" 2>/dev/null; then
  # into python3's own environment: pip then adds only what is missing beside its torch
  python3 -m pip install -q --no-index --find-links .whl snakemake==9.27.1 jsonschema onnxslim || exit 1
fi
export PYTHONUNBUFFERED=1 PYTHONPATH=workflow${PYTHONPATH:+:$PYTHONPATH}
status=0
for stage in "$@"; do
  echo "=== $stage $(date -u +%H:%M:%S)"
  case $stage in
    check)
      nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv | tee "$OUT/gpu.txt"
      python3 -c "import torch, torchvision, onnxruntime, snakemake; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__, 'onnxruntime', onnxruntime.__version__, 'snakemake', snakemake.__version__)" | tee -a "$OUT/gpu.txt"
      python3 -m pytest -q -p no:cacheprovider tests/test_torch_backend.py tests/test_gpu_harness.py || status=1 ;;
    fidelity)
      python3 scripts/harness_fidelity.py --out "$OUT/harness_fidelity.csv" || status=1 ;;
    gap)
      python3 docs/gpu/scripts/compile_gap_probe.py --out "$OUT/compile_gap.csv" || status=1 ;;
    ort_check)
      python3 -c "import torch, onnxruntime as ort; print('onnxruntime', ort.__version__, ort.get_available_providers())" | tee -a "$OUT/gpu.txt"
      python3 -m pytest -q -p no:cacheprovider -m "not workflow" tests/test_ort_gpu.py || status=1 ;;
    ort_fidelity)
      python3 scripts/harness_fidelity.py --out "$OUT/harness_fidelity_onnxruntime.csv" \
        --ort-engines "${ORT_ENGINES:-results-gpu-ort/resnet50/engines/onnxruntime_cuda/static-b*.fp16.static.onnx}" || status=1 ;;
    ref_scale)
      # How large each model's reference outputs are (what an fp16 atol is measured against), per case
      python3 - "$OUT/reference_scale.csv" ${RESULTS:-results-gpu-ort}/*/reference.npz <<'PY' || status=1
import csv, sys
import numpy as np
from trtpipe.reference import Reference
with open(sys.argv[1], "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["reference", "case", "output", "max_abs", "std"])
    for path in sys.argv[2:]:
        ref = Reference(path)
        for case in ref.cases():
            for name, value in zip(ref.output_names, case.outputs):
                out.writerow([path, case.id, name, float(np.abs(value).max()), float(value.std())])
PY
      cat "$OUT/reference_scale.csv" ;;
    identity)
      { nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,memory.total --format=csv
        echo "cores: $(nproc), $(lscpu | sed -n 's/^Model name: *//p'), kernel $(uname -r)"
        python3 -c "import torch, torchvision, timm, transformers, onnx, onnxruntime, snakemake; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'transformers', transformers.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers(), 'snakemake', snakemake.__version__)"
      } 2>&1 | tee "$OUT/machine.txt" ;;
    beside)
      python3 scripts/beside_compile_fidelity.py --out "$OUT/beside_compile.csv" --engines "$BESIDE_ENGINES" \
        --models "$BESIDE_MODELS" ${BESIDE_ARGS:-} || status=1 ;;
    ort_probe)
      python3 scripts/ort_cuda_probe.py --out "$OUT/ort_cuda_probe.csv" || status=1 ;;
    sweep|ort_sweep)
      # MODELS / BACKENDS / PRECISIONS / PROFILES / STATIC / TORCH_PROFILES (comma-separated) narrow the config, so a sweep too long for one
      # sitting runs in parts; `trtpipe summarize` joins the parts' CSVs.
      default_config=config/gpu-torchvision.yaml
      [ "$stage" = ort_sweep ] && default_config=config/gpu-onnxruntime.yaml
      config=$(mktemp /tmp/trtpipe-gpu-sweep.XXXXXX.yaml)  # its own: two sweeps side by side must not share it
      CONFIG=${CONFIG:-$default_config} python3 - "$config" <<'PY' || exit 1
import os, sys, yaml
config = yaml.safe_load(open(os.environ["CONFIG"]))
pick = lambda var: [v for v in os.environ.get(var, "").split(",") if v]
if pick("MODELS"):
    config["models"] = {m: config["models"][m] for m in pick("MODELS")}
if pick("BACKENDS"):
    config["sweep"]["backends"] = pick("BACKENDS")
if pick("TORCH_PROFILES"):
    config["torch"]["profiles"] = pick("TORCH_PROFILES")
if pick("TORCH_PRECISIONS"):
    config["torch"]["precisions"] = pick("TORCH_PRECISIONS")
if pick("PRECISIONS"):
    config["sweep"]["precisions"] = pick("PRECISIONS")
if pick("PROFILES"):
    config["sweep"]["profiles"] = pick("PROFILES")
if os.environ.get("STATIC") is not None:
    config["static_batch_sizes"] = [int(b) for b in pick("STATIC")]
if os.environ.get("RESULTS"):
    config["results"] = os.environ["RESULTS"]
if os.environ.get("TORCH_CACHE"):
    config.setdefault("torch", {})["cache_dir"] = os.environ["TORCH_CACHE"]
for item in os.environ.get("SET", "").split():
    key, _, value = item.partition("=")
    *parents, leaf = key.split(".")
    node = config
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = yaml.safe_load(value)
yaml.safe_dump(config, open(sys.argv[1], "w"), sort_keys=False)
PY
      start=$(date +%s)
      timeout -s INT -k 30 "${SWEEP_LIMIT_S:-86400}" python3 -m snakemake --snakefile "${WORKFLOW:-.}/Snakefile" --configfile "$config" \
        --cores 16 --resources gpu=1 --keep-going ${PRIORITIZE:+--prioritize $PRIORITIZE} || status=1
      echo "sweep wall time: $(( $(date +%s) - start )) s (CONFIG=${CONFIG:-$default_config} WORKFLOW=${WORKFLOW:-.} MODELS=${MODELS:-all} BACKENDS=${BACKENDS:-all} TORCH_PROFILES=${TORCH_PROFILES:-all} SET=${SET:-})" | tee -a "$OUT/sweep_time.txt"
      results=$(python3 -c "import yaml; print(yaml.safe_load(open('$config'))['results'])")
      cp "$results/summary/report.html" "$OUT/${results}.report.html" 2>/dev/null
      tar czf "$OUT/${results}.tar.gz" "$results"/summary "$results"/*/bench "$results"/*/accuracy \
        "$results"/*/onnx/*.json "$results"/*/flops.json "$results"/*/logs "$results"/*/engines/*/*.json \
        .snakemake/log 2>/dev/null ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
exit $status
