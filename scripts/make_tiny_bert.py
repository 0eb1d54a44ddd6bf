"""Write a tiny random BERT encoder (config.json + model.safetensors, as save_pretrained writes them) to
models/bert-tiny/, so that config/hf-bert.yaml runs offline:

    .venv/bin/python scripts/make_tiny_bert.py
    .venv/bin/snakemake --cores 4 --configfile config/hf-bert.yaml

For a real model, point the config at a downloaded snapshot's config.json and model.safetensors instead.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from trtpipe.hf import write_tiny_bert  # noqa: E402

if __name__ == "__main__":
    out = write_tiny_bert(sys.argv[1] if len(sys.argv) > 1 else "models/bert-tiny")
    print(f"wrote {out / 'config.json'} and {out / 'model.safetensors'}")
