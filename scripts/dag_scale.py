"""How long does Snakemake take to build the DAG of a large sweep? Writes an N-model config (copies of
the default config's zoo models) and times `snakemake -n` on it.

Usage: .venv/bin/python scripts/dag_scale.py --models 100 [--slurm]
(--slurm: through the SLURM profile, as a cluster sweep is planned: executor plugin, engine groups.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--slurm", action="store_true", help="dry-run with --workflow-profile profiles/slurm")
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    zoo = sorted(config["models"])
    copies = {f"m{i:03d}": zoo[i % len(zoo)] for i in range(args.models)}  # copy -> the zoo model it copies
    # Per-model settings (a budget, a traffic mix) follow each model to its copies: they name models by name.
    for key in ("objectives", "traffic"):
        config[key] = {copy: config[key][model] for copy, model in copies.items() if model in config.get(key, {})}
    config["models"] = {copy: config["models"][model] for copy, model in copies.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        proc = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "-n", "--cores", "4",
                               "--configfile", str(path), "--directory", tmp, "--snakefile", str(REPO / "Snakefile"),
                               *(["--workflow-profile", str(REPO / "profiles/slurm")] if args.slurm else [])],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
    jobs = next((line.split()[-1] for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("total")), "?")
    how = " with the SLURM profile" if args.slurm else ""
    print(f"{args.models} models: {jobs} jobs, dry run{how} {seconds:.1f} s (rc {proc.returncode})")
    if proc.returncode:
        print(proc.stderr[-2000:])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
