"""Why did the pipeline's torch.compile + CUDA graph ResNet-50 (batch 128) time faster than
scripts/harness_fidelity.py's? One variable at a time, same process, same GPU, the shared harness:

  fidelity      the fidelity script's set-up (no TF32 flags touched, one input set, no transfers)
  tf32_off      + TF32 switched off for cuDNN and matmuls, as the torch runner does for fp16
  transfers     + host-to-device/device-to-host copies around each call (include_transfers)
  input_sets    + four rotated input sets, each with its own graph (the pipeline's benchmark)
  runner        trtpipe's own torch runner (torch_compile_graph, static batch 128) on the same checkpoint

Usage: PYTHONPATH=workflow python3 docs/gpu/scripts/compile_gap_probe.py --out gap.csv
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "workflow"))
from trtpipe.gpu import GpuStep, get_device, measure_gpu  # noqa: E402
from trtpipe.timing import TimingSettings  # noqa: E402

BATCH = 128
SETTINGS = TimingSettings(warmup_s=0.5, min_duration_s=1.0, min_iterations=50)


def steps_for(net, sets: int):
    steps = []
    for k in range(sets):
        host = torch.randn(BATCH, 3, 224, 224, generator=torch.Generator().manual_seed(k)).half()
        host = host.contiguous(memory_format=torch.channels_last).pin_memory()
        dev = torch.empty_like(host, device="cuda")
        dev.copy_(host)
        out = {}

        def compute(dev=dev, out=out):
            with torch.inference_mode():
                out["y"] = net(dev)

        def download(out=out):
            out["y"].cpu()

        steps.append(GpuStep(lambda dev=dev, host=host: dev.copy_(host, non_blocking=True), compute, download))
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import pandas as pd
    import torchvision

    device = get_device()
    stream = device.stream()
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval().to("cuda", torch.float16).to(memory_format=torch.channels_last)
    rows = []

    def record(name, m):
        rows.append({"variant": name, "compute_ms_median": float(np.median(m.compute_ms)),
                     "latency_ms_median": float(np.median(m.latency_ms)), "iterations": len(m.compute_ms),
                     "device": torch.cuda.get_device_name(), "torch": torch.__version__})
        print(f"{name:12s} compute {rows[-1]['compute_ms_median']:.3f} ms  latency {rows[-1]['latency_ms_median']:.3f} ms", flush=True)

    for rep in range(2):  # twice, to see the run-to-run spread
        torch._dynamo.reset()  # a fresh compile for every variant, not a cached one
        net = torch.compile(model, dynamic=False)
        with torch.cuda.stream(stream.raw):
            record(f"fidelity/{rep}", measure_gpu(device, stream, steps_for(net, 1), SETTINGS, False, True))
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            torch._dynamo.reset()
            net = torch.compile(model, dynamic=False)
            record(f"tf32_off/{rep}", measure_gpu(device, stream, steps_for(net, 1), SETTINGS, False, True))
            record(f"transfers/{rep}", measure_gpu(device, stream, steps_for(net, 1), SETTINGS, True, True))
            record(f"input_sets/{rep}", measure_gpu(device, stream, steps_for(net, 4), SETTINGS, True, True))
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True

    # trtpipe's runner, on a seeded checkpoint, exactly as the benchmark rule calls it
    from trtpipe.benchmark import benchmark_engine
    from trtpipe.config import validate
    from trtpipe.engine import build_engine
    from trtpipe.spec import Variant
    from trtpipe.models import write_seeded_checkpoint
    from trtpipe.reference import make_reference

    sweep = validate({"static_batch_sizes": [BATCH], "batch_sizes": [BATCH], "models": {"resnet50": {
        "factory": "torchvision.models:resnet50", "inputs": [{"name": "x", "shape": [3, 224, 224]}]}}})
    spec = sweep.models["resnet50"]
    tmp = Path(tempfile.mkdtemp())
    write_seeded_checkpoint(spec, tmp / "ckpt.pt")
    make_reference(spec, str(tmp / "ckpt.pt"), [BATCH], tmp / "ref.npz")
    options = {"device": "cuda", "channels_last": True, "include_transfers": True, "cache_dir": str(tmp / "cache")}
    engine = tmp / "engine.torch"
    variant = Variant.static(BATCH)
    build_engine("torch_compile_graph", tmp / "ckpt.pt", engine, tmp / "engine.json", spec, variant, "fp16",
                 sweep.engine_profiles("resnet50", "torch_compile_graph", variant, "static"), options, tmp / "ref.npz",
                 sweep.tolerance("fp16"))
    for rep in range(2):
        frame = benchmark_engine(engine, tmp / "engine.json", spec, [BATCH], SETTINGS, 4, backend_options=options)
        rows.append({"variant": f"runner/{rep}", "compute_ms_median": float(frame["compute_ms_median"][0]),
                     "latency_ms_median": float(frame["latency_ms_median"][0]), "iterations": int(frame["iterations"][0]),
                     "device": torch.cuda.get_device_name(), "torch": torch.__version__})
        print(f"runner/{rep}     compute {rows[-1]['compute_ms_median']:.3f} ms  latency {rows[-1]['latency_ms_median']:.3f} ms", flush=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
