#!/usr/bin/env bash
# The GPU proof of the PyTorch backends and the shared timing harness, in stages:
#   scripts/gpu_run.sh check      GPU tests (tests/test_torch_backend.py, the harness's tests)
#   scripts/gpu_run.sh fidelity   scripts/harness_fidelity.py: harness vs hand-written CUDA-event loop vs do_bench
#   scripts/gpu_run.sh gap        scripts/compile_gap_probe.py: pipeline vs fidelity-script compile, one variable at a time
#   scripts/gpu_run.sh sweep      the real pipeline on config/gpu-torchvision.yaml (ResNet-50, ViT-B/16)
# SWEEP_LIMIT_S stops the sweep early (Snakemake cleans up; a rerun resumes where it stopped).
# Results go to $OUT (default gpu-out/). On the lent H100/H200 (no network) the pip packages that
# machine lacks travel as wheels in .whl/ (see docs/gpu/README.md); elsewhere `make setup` is enough.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
if ! python3 -c "import snakemake, jsonschema, onnxslim" 2>/dev/null; then
  # into python3's own environment: pip then adds only what is missing beside its torch
  python3 -m pip install -q --no-index --find-links .whl snakemake==9.27.1 jsonschema onnxslim || exit 1
fi
export PYTHONUNBUFFERED=1 PYTHONPATH=workflow
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
      python3 scripts/compile_gap_probe.py --out "$OUT/compile_gap.csv" || status=1 ;;
    sweep)
      # MODELS / BACKENDS / TORCH_PROFILES (comma-separated) narrow config/gpu-torchvision.yaml, so a
      # sweep too long for one sitting runs in parts; `trtpipe summarize` joins the parts' CSVs.
      config=/tmp/trtpipe-gpu-sweep.yaml
      python3 - "$config" <<'PY' || exit 1
import os, sys, yaml
config = yaml.safe_load(open("config/gpu-torchvision.yaml"))
pick = lambda var: [v for v in os.environ.get(var, "").split(",") if v]
if pick("MODELS"):
    config["models"] = {m: config["models"][m] for m in pick("MODELS")}
if pick("BACKENDS"):
    config["sweep"]["backends"] = pick("BACKENDS")
if pick("TORCH_PROFILES"):
    config["torch"]["profiles"] = pick("TORCH_PROFILES")
yaml.safe_dump(config, open(sys.argv[1], "w"), sort_keys=False)
PY
      start=$(date +%s)
      timeout "${SWEEP_LIMIT_S:-86400}" python3 -m snakemake --configfile "$config" --cores 16 --resources gpu=1 --keep-going || status=1
      echo "sweep wall time: $(( $(date +%s) - start )) s (MODELS=${MODELS:-all} BACKENDS=${BACKENDS:-all} TORCH_PROFILES=${TORCH_PROFILES:-all})" | tee -a "$OUT/sweep_time.txt"
      cp results-gpu/summary/report.html "$OUT/" 2>/dev/null
      tar czf "$OUT/sweep-results.tar.gz" results-gpu/summary results-gpu/*/bench results-gpu/*/accuracy \
        results-gpu/*/onnx/*.json results-gpu/*/flops.json results-gpu/*/logs results-gpu/*/engines/*/*.json 2>/dev/null ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
exit $status
