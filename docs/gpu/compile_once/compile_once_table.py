"""The per-engine table of docs/gpu/compile_once/engines.csv, from an unpacked sweep of
config/gpu-compile-once.yaml (scripts/gpu_run.sh packs it as <results>.tar.gz): the engine job's build and
compile seconds and graphs (sidecar), and the benchmark job's load-and-trace seconds, graphs, Inductor cache
misses and compute medians (benchmark CSV).

    python3 docs/gpu/compile_once/compile_once_table.py results-c2-after docs/gpu/compile_once/engines.csv
"""

import glob
import json
import sys

import pandas as pd


def main(results: str, out: str) -> int:
    rows = []
    for path in sorted(glob.glob(f"{results}/*/engines/torch_compile_graph/*.json")):
        sidecar = json.load(open(path))
        model = sidecar["model"]
        bench = pd.read_csv(glob.glob(f"{results}/{model}/bench/torch_compile_graph/*.csv")[0])
        rows.append({
            "model": model, "engine_build_s": round(sidecar["build_seconds_total"], 1),
            "compile_s": round(sidecar["compile_seconds"], 1), "graphs_compiled": sidecar["graphs_compiled"],
            "inductor_misses_in_build": sidecar["inductor_cache"]["misses"],
            "compiled_MiB": round(sidecar["compiled_bytes"] / 2**20, 1), "bench_load_trace_s": round(bench.compile_s[0], 1),
            "bench_graphs": int(bench.graphs_compiled.max()), "bench_inductor_misses": int(bench.inductor_cache_misses.max()),
            **{f"b{int(r.batch)}_compute_ms": round(r.compute_ms_median, 3) for r in bench.itertuples()},
        })
    pd.DataFrame(rows).to_csv(out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
