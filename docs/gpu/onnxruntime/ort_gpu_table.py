"""The ONNX Runtime vs PyTorch table of docs/gpu/onnxruntime/README.md from a benchmarks.csv: median GPU compute (ms)
per model, precision and batch, static engines (the dynamic engine's row at that batch in brackets). Rows timed
before --mark-before (an ISO timestamp) get a dagger: in the fourth session those came from an earlier run.

    python3 docs/gpu/onnxruntime/ort_gpu_table.py docs/gpu/onnxruntime/benchmarks.csv --mark-before 2026-11-24T03:10
"""

import argparse

import pandas as pd

BACKENDS = ["onnxruntime_cuda", "onnxruntime_cuda_graph", "torch_compile_graph", "torch_eager"]


def cell(rows: pd.DataFrame, cut: str | None) -> str:
    if rows.empty:
        return "–"
    row = rows.iloc[0]
    mark = "†" if cut and row.timestamp < cut else ""
    return f"{row.compute_ms_median:.2f}{mark}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks")
    parser.add_argument("--mark-before")
    args = parser.parse_args()
    frame = pd.read_csv(args.benchmarks)
    print("| model | precision | batch | " + " | ".join(BACKENDS) + " |")
    print("|---|---|---|" + "---|" * len(BACKENDS))
    for (model, precision, batch), group in frame.groupby(["model", "precision", "batch"], sort=True):
        cells = []
        for backend in BACKENDS:
            mine = group[group.backend == backend]
            static, dynamic = mine[mine.variant != "dynamic"], mine[mine.variant == "dynamic"]
            cells.append(f"{cell(static, args.mark_before)} ({cell(dynamic, args.mark_before)})")
        print(f"| {model} | {precision} | {batch} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
