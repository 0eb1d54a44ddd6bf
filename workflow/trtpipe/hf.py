"""Hugging Face transformers models as trtpipe factories: the architecture from a config.json (or a dict),
the weights from the checkpoint beside it (`model.safetensors` as `save_pretrained` writes it, or the
`model.safetensors.index.json` of a sharded checkpoint).

    models:
      bert_tiny:
        factory: trtpipe.hf:from_config
        factory_kwargs: {config: models/bert-tiny/config.json}
        checkpoint: models/bert-tiny/model.safetensors
        outputs: [last_hidden_state, pooler_output]
        inputs:
          - {name: input_ids, shape: [32], dtype: int64, range: [0, 1000], dynamic: {1: {min: 8, max: 128, name: seq}}}
          - {name: attention_mask, shape: [32], dtype: int64, range: [1, 2], dynamic: {1: {min: 8, max: 128, name: seq}}}

Nothing is downloaded: the config and the weights are local files. The class is the first of config.json's
`architectures` (else AutoModel; `architecture` overrides it), and the checkpoint is loaded the way transformers loads
it: `from_pretrained` on its folder with `local_files_only=True` (load_checkpoint below), not a strict
`load_state_dict`. So buffers older versions saved (`embeddings.position_ids`) are ignored, a task-head checkpoint
loads into its base architecture, and sharded checkpoints load; what was ignored or missing is logged and reported.
Its forward() returns a ModelOutput (a dict of tensors); trtpipe names the outputs after its keys.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import TrtpipeError

log = logging.getLogger(__name__)

# The weight files from_pretrained looks for in a folder, in its order.
WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _transformers():
    try:
        import transformers
    except ImportError as exc:
        raise TrtpipeError(
            "factory trtpipe.hf:from_config needs the transformers package; fix: pip install transformers "
            "(the version in envs/requirements.txt)."
        ) from exc
    return transformers


def _config_data(config: str | dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
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
    if not data.get("model_type"):
        raise TrtpipeError("factory trtpipe.hf:from_config: the config has no model_type; fix: add it (e.g. "
                           "\"model_type\": \"bert\"), as save_pretrained writes it.")
    return data


def _model_class(transformers, data: dict[str, Any], architecture: str | None):
    name = architecture or (data.get("architectures") or [None])[0]
    if name is None:
        return transformers.AutoModel
    cls = getattr(transformers, name, None)
    if cls is None:
        raise TrtpipeError(f"factory trtpipe.hf:from_config: transformers {transformers.__version__} has no class "
                           f"{name!r}; fix: set factory_kwargs.architecture to one it has (e.g. AutoModel).")
    return cls


def from_config(config: str | dict[str, Any], architecture: str | None = None, attn_implementation: str = "eager",
                **overrides: Any):
    """A transformers model from a config.json path or a config dict (e.g. a tiny BertConfig's fields), with its
    initial weights (a checkpoint is loaded by load_checkpoint).

    `architecture` overrides config.json's `architectures[0]` (e.g. "BertModel" for the encoder alone);
    `attn_implementation` defaults to "eager" (plain matmul + softmax), which every exporter and ONNX
    backend handles; "sdpa" is what transformers picks by default on a GPU.
    """
    transformers = _transformers()
    data = _config_data(config, overrides)
    cfg = transformers.AutoConfig.for_model(**data)
    cls = _model_class(transformers, data, architecture)
    if cls is transformers.AutoModel:
        return transformers.AutoModel.from_config(cfg, attn_implementation=attn_implementation).eval()
    cfg._attn_implementation = attn_implementation
    return cls(cfg).eval()


def load_checkpoint(checkpoint: str | Path, config: str | dict[str, Any], architecture: str | None = None,
                    attn_implementation: str = "eager", **overrides: Any):
    """The model loaded the way transformers loads it: `from_pretrained(folder, local_files_only=True)`, which ignores
    buffers older versions saved (`embeddings.position_ids`), maps a task-head checkpoint onto the base architecture,
    follows sharded checkpoints and re-ties tied weights. What it left unused or could not fill is logged and kept on
    the model as `trtpipe_loading` (the reference stage puts it in the report)."""
    transformers = _transformers()
    data = _config_data(config, overrides)
    cfg = transformers.AutoConfig.for_model(**data)
    cfg._attn_implementation = attn_implementation
    cls = _model_class(transformers, data, architecture)
    path = Path(checkpoint)
    if path.name.endswith(".index.json"):
        _check_shards(path)
    with tempfile.TemporaryDirectory(prefix="trtpipe-hf-") as tmp:
        folder = path.parent
        if path.name not in WEIGHT_NAMES:  # a renamed weights file: shown to from_pretrained under its usual name
            folder = Path(tmp)
            os.symlink(path.resolve(), folder / ("model.safetensors" if path.suffix == ".safetensors" else "pytorch_model.bin"))
        kwargs: dict[str, Any] = {"config": cfg, "local_files_only": True, "output_loading_info": True}
        if cls is not transformers.AutoModel:
            kwargs["attn_implementation"] = attn_implementation
        try:
            model, info = cls.from_pretrained(str(folder), **kwargs)
        except Exception as exc:
            raise TrtpipeError(f"checkpoint {checkpoint}: transformers {transformers.__version__} cannot load it as "
                               f"{cls.__name__} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); fix: check that "
                               f"save_pretrained wrote it for this config (factory_kwargs.config) and architecture.") from exc
    keys = _checkpoint_keys(path)
    loading = {"loader": f"transformers {transformers.__version__} {cls.__name__}.from_pretrained(local_files_only=True)",
               "ignored": sorted(set(keys) - _used_keys(model, keys)),
               "missing": sorted(info.get("missing_keys") or ()),
               "mismatched": sorted(str(k) for k in info.get("mismatched_keys") or ())}
    if loading["ignored"]:
        log.warning("checkpoint %s: %d key(s) that %s does not use, ignored as transformers ignores them: %s", checkpoint,
                    len(loading["ignored"]), cls.__name__, _few(loading["ignored"]))
    if loading["missing"]:
        log.warning("checkpoint %s: %d weight(s) of %s are not in it and keep transformers' initial values: %s",
                    checkpoint, len(loading["missing"]), cls.__name__, _few(loading["missing"]))
    model.trtpipe_loading = loading
    return model.eval()


def _few(keys: list[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def _check_shards(index: Path) -> None:
    if not index.exists():
        return  # build_model says the checkpoint is missing
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TrtpipeError(f"checkpoint {index}: not a sharded-checkpoint index (no weight_map); fix: give the "
                           f"model.safetensors.index.json that save_pretrained wrote.") from exc
    absent = [s for s in shards if not (index.parent / s).exists()]
    if absent:
        raise TrtpipeError(f"checkpoint {index}: shard {absent[0]} (of {len(shards)}) is not beside the index; fix: copy "
                           f"every shard the index names into {index.parent}.")


def _checkpoint_keys(path: Path) -> list[str]:
    """The tensor names stored in the checkpoint (from the safetensors header or the index, not the tensors)."""
    if path.name.endswith(".index.json"):
        return list(json.loads(path.read_text())["weight_map"])
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return list(f.keys())
    import torch

    return list(torch.load(str(path), map_location="meta", weights_only=True))


def _used_keys(model, keys: list[str]) -> set[str]:
    """Checkpoint keys naming a tensor of the model, directly or across the base-model prefix ('bert.')."""
    own = set(model.state_dict())
    prefix = f"{model.base_model_prefix}." if getattr(model, "base_model_prefix", "") else None
    return {k for k in keys if k in own or (prefix and (k.removeprefix(prefix) in own or f"{prefix}{k}" in own))}


# trtpipe.models.build_model loads a checkpoint through the factory's own loader where the factory has one.
from_config.load_checkpoint = load_checkpoint


TINY_BERT = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 1000, "hidden_size": 32,
             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128}


def write_tiny_bert(out_dir: str | Path, seed: int = 0, architecture: str = "BertModel", max_shard_size: str | None = None,
                    **overrides: Any) -> Path:
    """A tiny random BERT (the encoder, or e.g. BertForSequenceClassification) as save_pretrained writes it
    (config.json + model.safetensors, or shards and their index with `max_shard_size`), for the example config and
    the tests: nothing can be downloaded there. Returns the folder."""
    import torch
    import transformers

    config = transformers.BertConfig(**{k: v for k, v in {**TINY_BERT, **overrides}.items() if k != "model_type"})
    config.architectures = [architecture]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = getattr(transformers, architecture)(config)
    out = Path(out_dir)
    model.save_pretrained(out, **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    return out
