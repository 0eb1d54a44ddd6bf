"""Can a GPU timing run beside torch.compile builds confined to other cores, and still read what it reads alone?

The pipeline's own harness (the torch runner's benchmark on a sweep's torch.compile + CUDA graph engines) times
each engine at each batch, in interleaved rounds, two ways:
  - alone: the compile workers stopped (SIGSTOP to their process groups: no CPU or GPU work of theirs);
  - beside: the compile workers running.
The compile workers are real torch.compile builds as an engine job makes them: torchvision models on the GPU in
fp16, the batch marked dynamic, run at 4, 1 and 32 (Inductor compiles, autotunes and runs kernels), each round
with a fresh Inductor and Triton cache so that they keep compiling, `--workers` of them at `--compile-threads`
Inductor workers each, all confined (CPU affinity) to the cores not kept for timing. The timing process runs on
the kept cores (`--timing-cores`, the last cores of the machine), as trtpipe.machine confines a sweep's jobs.
The criterion (--tolerance, 3%): the median over rounds of the beside timing against the alone one.

    PYTHONPATH=workflow python3 scripts/beside_compile_fidelity.py --out beside.csv \
        --engines 'results-x/*/engines/torch_compile_graph/dynamic.fp16.dynamic.torch' --models resnext50_32x4d,mnasnet1_0,swin_t

Exit status 1 if any row differs by more than the tolerance. The busy share of the build cores and of the timing
cores during the beside windows is in the CSV, to show the workers were compiling while the timing ran.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

WORKER_MODELS = ("regnet_y_800mf", "googlenet", "mnasnet1_0", "resnext50_32x4d", "shufflenet_v2_x1_0", "efficientnet_b0")


def compile_worker(models: list[str], threads: int) -> None:
    """Compile the models over and over, each time from empty caches, as an engine job compiles (GPU, fp16)."""
    import torch
    import torchvision

    for round_ in range(10**6):
        name = models[round_ % len(models)]
        with tempfile.TemporaryDirectory(prefix="beside-inductor-") as cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            os.environ["TRITON_CACHE_DIR"] = os.path.join(cache, "triton")
            import torch._inductor.config as inductor_config

            inductor_config.compile_threads = threads
            torch._dynamo.reset()
            model = getattr(torchvision.models, name)().eval().cuda().half().to(memory_format=torch.channels_last)
            compiled = torch.compile(model)
            start = time.perf_counter()
            with torch.inference_mode():
                for batch in (4, 1, 32):
                    x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.float16)
                    if batch > 1:
                        torch._dynamo.mark_dynamic(x, 0, min=2, max=32)
                    compiled(x.contiguous(memory_format=torch.channels_last))
            torch.cuda.synchronize()
            print(f"worker {os.getpid()}: compiled {name} in {time.perf_counter() - start:.1f} s", flush=True)


def cpu_busy() -> dict[int, tuple[int, int]]:
    """Per core: (busy jiffies, total jiffies) from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            name, *values = line.split()
            v = list(map(int, values))
            idle = v[3] + v[4]
            out[int(name[3:])] = (sum(v) - idle, sum(v))
    return out


def busy_share(before, after, cores) -> float:
    busy = sum(after[c][0] - before[c][0] for c in cores)
    total = sum(after[c][1] - before[c][1] for c in cores)
    return busy / total if total else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--engines", required=True, help="glob of torch engines (with sidecars) from a sweep")
    parser.add_argument("--models", required=True, help="comma-separated models of those engines to time")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-duration", type=float, default=1.0, help="seconds each timing lasts at least")
    parser.add_argument("--workers", type=int, default=0, help="compile workers (0: build cores // compile threads)")
    parser.add_argument("--compile-threads", type=int, default=2)
    parser.add_argument("--timing-cores", type=int, default=1)
    parser.add_argument("--tolerance", type=float, default=0.03)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run as a compile worker of these models
    args = parser.parse_args()
    if args.worker:
        compile_worker(args.worker.split(","), args.compile_threads)
        return 0

    from trtpipe.schedule import timing_cores_of

    build, timing = timing_cores_of(sorted(os.sched_getaffinity(0)), args.timing_cores)
    if not timing:
        print("this machine has too few cores to keep any for timing", file=sys.stderr)
        return 2
    workers = args.workers or max(1, len(build) // args.compile_threads)
    procs = []
    for i in range(workers):
        models = list(WORKER_MODELS[i % len(WORKER_MODELS):] + WORKER_MODELS[:i % len(WORKER_MODELS)])
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--out", "-", "--engines", "-", "--models", "-", "--worker", ",".join(models),
             "--compile-threads", str(args.compile_threads)],
            preexec_fn=lambda: os.sched_setaffinity(0, build), start_new_session=True))
    os.sched_setaffinity(0, timing)  # this process, and every thread it starts from now on, on the kept cores

    def signal_workers(sig):
        for p in procs:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass

    try:
        return measure(args, build, timing, workers, signal_workers)
    finally:
        signal_workers(signal.SIGCONT)
        signal_workers(signal.SIGKILL)


def measure(args, build, timing, workers, signal_workers) -> int:
    import numpy as np
    import pandas as pd
    import torch

    from trtpipe.backends.registry import get
    from trtpipe.inputs import random_inputs
    from trtpipe.timing import TimingSettings

    wanted = args.models.split(",")
    engines = {Path(p).parts[-4]: p for p in sorted(glob.glob(args.engines))}
    missing = [m for m in wanted if m not in engines]
    if missing:
        print(f"no engine for {missing} in {args.engines}", file=sys.stderr)
        return 2
    settings = TimingSettings(warmup_s=0.2, min_duration_s=args.min_duration, min_iterations=50)
    batches = [int(b) for b in args.batches.split(",")]
    runners = {}
    signal_workers(signal.SIGSTOP)  # load alone (the engines trace once)
    for model in wanted:
        path = engines[model]
        sidecar = json.loads(Path(path).with_suffix(".json").read_text())
        runner = get(sidecar["backend"]).implementation().Runner(path, sidecar)
        spec = runner.spec
        feeds = {b: [random_inputs(spec, b, "opt", spec.seed, stream=f"bench/{k}") for k in range(4)] for b in batches}
        runners[model] = (runner, feeds)
    signal_workers(signal.SIGCONT)
    time.sleep(15)  # the workers get into their first compiles
    samples = {(m, b, how): [] for m in wanted for b in batches for how in ("alone", "beside")}
    busy = {(m, b): [] for m in wanted for b in batches}
    for round_ in range(args.rounds):
        for model in wanted:
            runner, feeds = runners[model]
            for batch in batches:
                order = ("alone", "beside") if round_ % 2 == 0 else ("beside", "alone")
                for how in order:
                    signal_workers(signal.SIGSTOP if how == "alone" else signal.SIGCONT)
                    time.sleep(0.5)
                    before = cpu_busy()
                    stats = runner.benchmark(feeds[batch], settings, batch)
                    after = cpu_busy()
                    samples[(model, batch, how)].append((stats["compute_ms_median"], stats["latency_ms_median"]))
                    if how == "beside":
                        busy[(model, batch)].append((busy_share(before, after, build), busy_share(before, after, timing)))
                signal_workers(signal.SIGCONT)
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    rows = []
    for model in wanted:
        for batch in batches:
            row = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "model": model, "batch": batch,
                   "engine": engines[model], "rounds": args.rounds, "compile_workers": workers,
                   "compile_threads": args.compile_threads, "build_cores": len(build), "timing_cores": len(timing)}
            for how in ("alone", "beside"):
                compute = [c for c, _ in samples[(model, batch, how)]]
                latency = [lat for _, lat in samples[(model, batch, how)]]
                row[f"{how}_compute_ms"] = statistics.median(compute)
                row[f"{how}_latency_ms"] = statistics.median(latency)
                row[f"{how}_round_spread"] = (max(compute) - min(compute)) / statistics.median(compute)
            row["beside_vs_alone_compute"] = row["beside_compute_ms"] / row["alone_compute_ms"] - 1
            row["beside_vs_alone_latency"] = row["beside_latency_ms"] / row["alone_latency_ms"] - 1
            row["build_cores_busy_beside"] = float(np.median([b for b, _ in busy[(model, batch)]]))
            row["timing_cores_busy_beside"] = float(np.median([t for _, t in busy[(model, batch)]]))
            row["within_tolerance"] = max(abs(row["beside_vs_alone_compute"]), abs(row["beside_vs_alone_latency"])) <= args.tolerance
            rows.append(row)
            print(f"{model:18s} b{batch:<3d} compute alone {row['alone_compute_ms']:.4f} beside {row['beside_compute_ms']:.4f} "
                  f"({row['beside_vs_alone_compute']:+.1%}); latency alone {row['alone_latency_ms']:.4f} beside "
                  f"{row['beside_latency_ms']:.4f} ({row['beside_vs_alone_latency']:+.1%}); build cores busy "
                  f"{row['build_cores_busy_beside']:.0%}, timing cores {row['timing_cores_busy_beside']:.0%}", flush=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out, index=False)
    return 0 if frame["within_tolerance"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
