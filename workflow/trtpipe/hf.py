"""Hugging Face transformers models as trtpipe factories: the architecture from a config.json (or a dict),
the weights from the checkpoint the config names (`model.safetensors`, as `save_pretrained` writes it).

    models:
      bert_tiny:
        factory: trtpipe.hf:from_config
        factory_kwargs: {config: models/bert-tiny/config.json}
        checkpoint: models/bert-tiny/model.safetensors
        outputs: [last_hidden_state, pooler_output]
        inputs:
          - {name: input_ids, shape: [32], dtype: int64, range: [0, 1000], dynamic: {1: {min: 8, max: 128, name: seq}}}
          - {name: attention_mask, shape: [32], dtype: int64, range: [1, 2], dynamic: {1: {min: 8, max: 128, name: seq}}}

Nothing is downloaded: the config and the weights are local files. The model is built with
`transformers.<architecture>(config)` (the first of config.json's `architectures`, else AutoModel), so
the state_dict keys match what `save_pretrained` wrote for that class. Its forward() returns a
ModelOutput (a dict of tensors); trtpipe names the outputs after its keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import TrtpipeError


def from_config(config: str | dict[str, Any], architecture: str | None = None, attn_implementation: str = "eager",
                **overrides: Any):
    """A transformers model from a config.json path or a config dict (e.g. a tiny BertConfig's fields).

    `architecture` overrides config.json's `architectures[0]` (e.g. "BertModel" for the encoder alone);
    `attn_implementation` defaults to "eager" (plain matmul + softmax), which every exporter and ONNX
    backend handles; "sdpa" is what transformers picks by default on a GPU.
    """
    try:
        import transformers
    except ImportError as exc:
        raise TrtpipeError(
            "factory trtpipe.hf:from_config needs the transformers package; fix: pip install transformers "
            "(the version in envs/requirements.txt)."
        ) from exc
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.exists():
            raise TrtpipeError(f"factory trtpipe.hf:from_config: config {config} not found; fix: give the path of the "
                               f"model's config.json relative to where snakemake runs.")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise TrtpipeError(f"factory trtpipe.hf:from_config: {config} is not valid JSON (line {exc.lineno}: "
                               f"{exc.msg}); fix: correct the file.") from exc
    else:
        data = dict(config)
    data.update(overrides)
    model_type = data.get("model_type")
    if not model_type:
        raise TrtpipeError("factory trtpipe.hf:from_config: the config has no model_type; fix: add it (e.g. "
                           "\"model_type\": \"bert\"), as save_pretrained writes it.")
    cfg = transformers.AutoConfig.for_model(**data)
    name = architecture or (data.get("architectures") or [None])[0]
    if name is None:
        model = transformers.AutoModel.from_config(cfg, attn_implementation=attn_implementation)
    else:
        cls = getattr(transformers, name, None)
        if cls is None:
            raise TrtpipeError(f"factory trtpipe.hf:from_config: transformers {transformers.__version__} has no class "
                               f"{name!r}; fix: set factory_kwargs.architecture to one it has (e.g. AutoModel).")
        cfg._attn_implementation = attn_implementation
        model = cls(cfg)
    return model.eval()


TINY_BERT = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 1000, "hidden_size": 32,
             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128}


def write_tiny_bert(out_dir: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """A tiny random BERT encoder as save_pretrained writes it (config.json + model.safetensors), for the
    example config and the tests: nothing can be downloaded there. Returns the folder."""
    import torch
    import transformers

    config = transformers.BertConfig(**{k: v for k, v in {**TINY_BERT, **overrides}.items() if k != "model_type"})
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = transformers.BertModel(config)
    out = Path(out_dir)
    model.save_pretrained(out)  # safe_serialization: model.safetensors
    return out
