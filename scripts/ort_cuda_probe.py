"""Why ONNX Runtime's CUDA execution provider ran fp16 ResNet-50 3x slower than PyTorch eager, and why its fp32
engine at batch 128 missed parity: one provider option at a time on the same ONNX files and inputs.

For ResNet-50 (torchvision, seeded weights): an fp32 ONNX and an fp16 ONNX (the model cast with .half() before
export, so fp16 everywhere: no AutoCast casts), both with a dynamic batch. Each session gets the CUDA EP with
cudnn_conv_algo_search in (EXHAUSTIVE, HEURISTIC, DEFAULT) x prefer_nhwc in (0, 1), TF32 off; inputs and
outputs are bound to CUDA buffers (IOBinding), and each run is timed whole (ONNX Runtime synchronises at its
end). The output at the largest batch is compared with PyTorch's at the same precision (fp32: TF32 off).
PyTorch eager (channels-last, like trtpipe's torch backends) is timed the same way for contrast.

    PYTHONPATH=workflow python3 scripts/ort_cuda_probe.py --out probe.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, iterations: int) -> float:
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iterations * 1e3


def export(model, dtype, path: Path) -> None:
    import copy

    x = torch.randn(4, 3, 224, 224, dtype=dtype, device="cuda")
    batch = torch.export.Dim("batch", min=1, max=256)
    torch.onnx.export(copy.deepcopy(model).to("cuda", dtype=dtype), (x,), str(path), dynamo=True, input_names=["x"],
                      output_names=["logits"], dynamic_shapes={"x": {0: batch}}, opset_version=18)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--batches", default="1,32,128")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--workdir", default="/tmp/ort-probe")
    args = parser.parse_args()
    import onnxruntime as ort
    import torchvision

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    base = torchvision.models.resnet50().eval()
    rng = np.random.default_rng(0)
    inputs = {b: rng.standard_normal((b, 3, 224, 224)).astype(np.float32) for b in batches}
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rows = []
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        path = work / f"resnet50.{name}.onnx"
        if not path.exists():
            start = time.perf_counter()
            export(base, dtype, path)
            print(f"exported {path} in {time.perf_counter() - start:.1f}s", flush=True)
        import copy

        model = copy.deepcopy(base).to("cuda", dtype=dtype).to(memory_format=torch.channels_last)
        references = {}
        for b in batches:
            x = torch.from_numpy(inputs[b]).to("cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                references[b] = model(x).float().cpu().numpy()
                ms = timed(lambda: model(x), args.iterations)
            rows.append({"onnx": name, "runtime": "torch_eager", "algo_search": "", "prefer_nhwc": "", "batch": b,
                         "ms_per_run": round(ms, 4), "max_abs_err": 0.0, "error": ""})
            print(rows[-1], flush=True)
        for algo in ("EXHAUSTIVE", "HEURISTIC", "DEFAULT"):
            for nhwc in ("0", "1"):
                options = {"device_id": "0", "use_tf32": "0", "cudnn_conv_algo_search": algo, "prefer_nhwc": nhwc}
                so = ort.SessionOptions()
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                so.log_severity_level = 3
                try:
                    sess = ort.InferenceSession(str(path), so, providers=[("CUDAExecutionProvider", options)])
                except Exception as exc:  # e.g. an option this build does not know
                    rows.append({"onnx": name, "runtime": "onnxruntime_cuda", "algo_search": algo, "prefer_nhwc": nhwc,
                                 "batch": "", "ms_per_run": "", "max_abs_err": "", "error": str(exc).splitlines()[0][:200]})
                    print(rows[-1], flush=True)
                    continue
                for b in batches:
                    x = torch.from_numpy(inputs[b]).to("cuda", dtype=dtype).contiguous()
                    y = torch.empty((b, 1000), dtype=dtype, device="cuda")
                    binding = sess.io_binding()
                    np_dtype = np.float16 if dtype == torch.float16 else np.float32
                    binding.bind_input("x", "cuda", 0, np_dtype, list(x.shape), x.data_ptr())
                    binding.bind_output("logits", "cuda", 0, np_dtype, list(y.shape), y.data_ptr())
                    error = ""
                    try:
                        ms = timed(lambda: sess.run_with_iobinding(binding), args.iterations)
                        err = float(np.abs(y.float().cpu().numpy() - references[b]).max())
                    except Exception as exc:
                        ms, err, error = float("nan"), float("nan"), str(exc).splitlines()[0][:200]
                    rows.append({"onnx": name, "runtime": "onnxruntime_cuda", "algo_search": algo, "prefer_nhwc": nhwc,
                                 "batch": b, "ms_per_run": round(ms, 4), "max_abs_err": err, "error": error})
                    print(rows[-1], flush=True)
                sess = None  # frees its GPU memory before the next session
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
