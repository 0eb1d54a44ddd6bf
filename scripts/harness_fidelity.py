"""Does trtpipe's GPU timing harness measure what independent timers measure?

For the same callable (torchvision ResNet-50, fp16, channels-last; eager, and torch.compile replayed
from a CUDA graph) at a launch-bound size (batch 1) and a compute-bound size (batch 128), compare the
harness's median GPU compute time (trtpipe.gpu.measure_gpu, transfers off) with
  - a hand-written CUDA-event loop: events around each call, waiting for each, median of the per-call
    times (the criterion);
  - the same calls queued back to back (per-call event times, and total time / calls): what a loop
    that never waits sees, where the host's launch time can leak into per-call times;
  - triton.testing.do_bench (median), which clears the L2 cache before each call and so reads a
    little high on small, cache-resident work; its figure is shown beside the others.
The criterion (--tolerance, 3%) is the harness against the hand loop.
The three timers run interleaved (harness, hand, do_bench, repeated `--rounds` times) so clock and
thermal drift hit them alike; the figures are the medians over rounds.

With --ort-engines (ONNX Runtime CUDA engines built by the pipeline), the callable is the runner's own
`run_with_iobinding` on the engine's session, bound to CUDA buffers, computing on the timing stream.

Usage (on a GPU machine; scripts/gpu_run.sh runs it on the lent H100/H200):
    PYTHONPATH=workflow python3 scripts/harness_fidelity.py --out docs/gpu/harness_fidelity.csv
    PYTHONPATH=workflow python3 scripts/harness_fidelity.py --out f.csv --ort-engines 'results-gpu-ort/resnet50/engines/onnxruntime_cuda/static-b*.fp16.static.onnx'
Exit status 1 if the harness and the hand loop differ by more than --tolerance anywhere.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
from trtpipe.gpu import GpuStep, get_device, measure_gpu  # noqa: E402
from trtpipe.timing import TimingSettings  # noqa: E402


def hand_synced(fn, stream, iterations: int) -> float:
    """Median of per-call CUDA-event times, waiting for each call: the harness's protocol, written plainly."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    with torch.cuda.stream(stream):
        for _ in range(10):
            fn()
        stream.synchronize()
        for _ in range(iterations):
            start.record(stream)
            fn()
            end.record(stream)
            end.synchronize()
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def hand_back_to_back(fn, stream, iterations: int) -> tuple[float, float]:
    """Calls queued back to back: (median of per-call event times, total time / calls)."""
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
    with torch.cuda.stream(stream):
        for _ in range(10):
            fn()
        stream.synchronize()
        for s, e in zip(starts, ends):
            s.record(stream)
            fn()
            e.record(stream)
    stream.synchronize()
    per_call = statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends))
    return per_call, starts[0].elapsed_time(ends[-1]) / iterations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="CSV of the figures")
    parser.add_argument("--batches", default="1,128")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=0.03)
    parser.add_argument("--ort-engines", help="glob of ONNX Runtime CUDA engines (with sidecars) to check instead")
    args = parser.parse_args()
    if args.ort_engines:
        return ort_fidelity(args)

    import pandas as pd
    import torchvision
    from triton.testing import do_bench

    torch.manual_seed(0)
    device = get_device()
    stream = device.stream()
    model = torchvision.models.resnet50().eval().to("cuda", torch.float16).to(memory_format=torch.channels_last)
    settings = TimingSettings(warmup_s=0.5, min_duration_s=1.0, min_iterations=50)
    rows = []
    for batch in map(int, args.batches.split(",")):
        gen = torch.Generator(device="cuda").manual_seed(batch)
        x = torch.randn(batch, 3, 224, 224, device="cuda", generator=gen, dtype=torch.float16)
        x = x.contiguous(memory_format=torch.channels_last)
        for mode in ("eager", "compile+graph"):
            # one static-shape compile per batch, as the pipeline's static engines do (a second batch through
            # the same compiled module would recompile it with a dynamic batch, a slower graph)
            net = model if mode == "eager" else torch.compile(model, dynamic=False)
            out = {}

            def forward():
                with torch.inference_mode():
                    out["y"] = net(x)

            with torch.cuda.stream(stream.raw):  # compile / warm up on the timing stream
                for _ in range(3):
                    forward()
            stream.synchronize()
            graphed = mode == "compile+graph"
            fn = device.capture(forward, stream).replay if graphed else forward  # for the other two timers
            step = GpuStep(upload=lambda: None, compute=forward, download=lambda: None)
            harness, harness_same, synced, b2b, total, bench = [], [], [], [], [], []
            for _ in range(args.rounds):  # the harness captures its own graph, as in the pipeline
                m = measure_gpu(device, stream, [step], settings, transfers=False, cuda_graph=graphed)
                harness.append(float(np.median(m.compute_ms)))
                # the harness again, on the very callable the other timers use (no capture of its own)
                same = measure_gpu(device, stream, [GpuStep(lambda: None, fn, lambda: None)], settings, transfers=False)
                harness_same.append(float(np.median(same.compute_ms)))
                n = max(50, len(m.compute_ms) // 4)
                synced.append(hand_synced(fn, stream.raw, n))
                per_call, mean = hand_back_to_back(fn, stream.raw, n)
                b2b.append(per_call)
                total.append(mean)
                with torch.cuda.stream(stream.raw):
                    bench.append(do_bench(fn, warmup=100, rep=500, return_mode="median"))
            row = {
                "device": torch.cuda.get_device_name(), "torch": torch.__version__, "model": "resnet50",
                "precision": "fp16", "channels_last": True, "mode": mode, "batch": batch,
                "harness_ms": statistics.median(harness), "harness_same_callable_ms": statistics.median(harness_same),
                "hand_loop_ms": statistics.median(synced),
                "back_to_back_per_call_ms": statistics.median(b2b), "back_to_back_mean_ms": statistics.median(total),
                "do_bench_ms": statistics.median(bench), "rounds": args.rounds,
                "harness_iterations_per_round": len(m.compute_ms),
                "harness_round_spread": (max(harness) - min(harness)) / statistics.median(harness),
            }
            row["harness_vs_hand"] = row["harness_ms"] / row["hand_loop_ms"] - 1
            row["harness_vs_do_bench"] = row["harness_ms"] / row["do_bench_ms"] - 1
            row["images_per_s"] = batch / row["harness_ms"] * 1e3
            row["within_tolerance"] = abs(row["harness_vs_hand"]) <= args.tolerance
            rows.append(row)
            print(f"{mode:14s} b{batch:<4d} harness {row['harness_ms']:.4f} ms  hand {row['hand_loop_ms']:.4f} ms "
                  f"({row['harness_vs_hand']:+.1%})  do_bench {row['do_bench_ms']:.4f} ms ({row['harness_vs_do_bench']:+.1%})  "
                  f"back-to-back per call {row['back_to_back_per_call_ms']:.4f} ms, mean {row['back_to_back_mean_ms']:.4f} ms  "
                  f"harness spread over rounds {row['harness_round_spread']:.1%}  harness on the same callable {row['harness_same_callable_ms']:.4f} ms", flush=True)
    frame = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    return 0 if frame["within_tolerance"].all() else 1


def compare_timers(label: dict, device, stream, fn, settings, rounds: int, tolerance: float) -> dict:
    """The harness (no capture of its own) against the hand loop and do_bench on one callable, interleaved."""
    from triton.testing import do_bench

    step = GpuStep(lambda: None, fn, lambda: None)
    harness, synced, bench = [], [], []
    for _ in range(rounds):
        m = measure_gpu(device, stream, [step], settings, transfers=False)
        harness.append(float(np.median(m.compute_ms)))
        synced.append(hand_synced(fn, stream.raw, max(50, len(m.compute_ms) // 4)))
        with torch.cuda.stream(stream.raw):
            bench.append(do_bench(fn, warmup=100, rep=500, return_mode="median"))
    row = {**label, "harness_ms": statistics.median(harness), "hand_loop_ms": statistics.median(synced),
           "do_bench_ms": statistics.median(bench), "rounds": rounds,
           "harness_round_spread": (max(harness) - min(harness)) / statistics.median(harness)}
    row["harness_vs_hand"] = row["harness_ms"] / row["hand_loop_ms"] - 1
    row["harness_vs_do_bench"] = row["harness_ms"] / row["do_bench_ms"] - 1
    row["within_tolerance"] = abs(row["harness_vs_hand"]) <= tolerance
    print(f"{label} harness {row['harness_ms']:.4f} ms  hand {row['hand_loop_ms']:.4f} ms ({row['harness_vs_hand']:+.1%})  "
          f"do_bench {row['do_bench_ms']:.4f} ms ({row['harness_vs_do_bench']:+.1%})", flush=True)
    return row


def ort_fidelity(args) -> int:
    """ONNX Runtime CUDA engines: the harness against a hand CUDA-event loop around run_with_iobinding."""
    import glob
    import json

    import pandas as pd

    from trtpipe.backends.registry import get

    settings = TimingSettings(warmup_s=0.5, min_duration_s=1.0, min_iterations=50)
    rows = []
    for path in sorted(glob.glob(args.ort_engines)):
        sidecar = json.loads(Path(path).with_name(Path(path).name.rsplit(".", 1)[0] + ".json").read_text())
        runner = get(sidecar["backend"]).implementation().Runner(path, sidecar)
        rng = np.random.default_rng(0)
        feeds = {n: rng.standard_normal(lo).astype(np.float32) for n, (lo, _, _) in runner.profile.ranges.items()}
        step, _ = runner._step(feeds)
        with torch.cuda.stream(runner.stream.raw):
            step.upload()
            for _ in range(3):
                step.compute()
        runner.stream.synchronize()
        label = {"device": torch.cuda.get_device_name(), "engine": path, "backend": sidecar["backend"],
                 "precision": sidecar["precision"], "batch": next(iter(runner.profile.ranges.values()))[0][0],
                 "onnxruntime": runner.identity()["backend_version"]}
        rows.append(compare_timers(label, runner.device, runner.stream, step.compute, settings, args.rounds, args.tolerance))
    if not rows:
        print(f"no engines match {args.ort_engines}")
        return 1
    frame = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    return 0 if frame["within_tolerance"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
