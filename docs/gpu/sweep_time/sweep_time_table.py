"""The per-engine table of docs/gpu/sweep_time/engines.csv from unpacked sweeps of config/gpu-sweep-time.yaml
(scripts/gpu_sweep_time.sh packs each as <phase>.tar.gz): for each phase, every torch.compile engine's build and
compile seconds and graphs (sidecar), and its benchmark's Inductor cache misses and compute medians (CSV).

    python3 docs/gpu/sweep_time/sweep_time_table.py docs/gpu/sweep_time/engines.csv before=results-st-before \\
        after=alone/results-st-after beside=after/results-st-after
"""

import glob
import json
import sys

import pandas as pd


def engines(phase: str, results: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(f"{results}/*/engines/torch_compile_graph/*.json")):
        sidecar = json.load(open(path))
        model = sidecar["model"]
        row = {"phase": phase, "model": model, "engine_build_s": round(sidecar["build_seconds_total"], 1),
               "compile_s": round(sidecar["compile_seconds"], 1), "graphs_compiled": sidecar["graphs_compiled"]}
        bench = glob.glob(f"{results}/{model}/bench/torch_compile_graph/*.csv")
        if bench:
            frame = pd.read_csv(bench[0])
            row.update(bench_inductor_misses=int(frame.inductor_cache_misses.max()), bench_graphs=int(frame.graphs_compiled.max()),
                       **{f"b{int(r.batch)}_compute_ms": round(r.compute_ms_median, 3) for r in frame.itertuples()})
        rows.append(row)
    return rows


def main(out: str, *phases: str) -> int:
    rows = [row for item in phases for row in engines(*item.split("=", 1))]
    frame = pd.DataFrame(rows)
    frame.to_csv(out, index=False)
    print(frame.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
