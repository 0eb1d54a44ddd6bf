"""Hugging Face transformers models as users have them: a config.json and a model.safetensors (written here by
save_pretrained; nothing can be downloaded), built by trtpipe.hf:from_config, with integer token ids and an
attention mask whose sequence axis is dynamic."""

import os

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import FAST_BENCHMARK
from helpers import REPO, copy_workflow, dry_run_jobs, snakemake
from trtpipe.config import validate
from trtpipe.errors import TrtpipeError
from trtpipe.hf import TINY_BERT, from_config, write_tiny_bert
from trtpipe.models import build_model, run_model

SEQ = {"min": 4, "max": 16, "name": "seq"}


def bert_model(folder: str) -> dict:
    return {
        "factory": "trtpipe.hf:from_config",
        "factory_kwargs": {"config": f"{folder}/config.json"},
        "checkpoint": f"{folder}/model.safetensors",
        "outputs": ["last_hidden_state", "pooler_output"],
        "inputs": [
            {"name": "input_ids", "shape": [8], "dtype": "int64", "range": [0, TINY_BERT["vocab_size"]], "dynamic": {1: SEQ}},
            {"name": "attention_mask", "shape": [8], "dtype": "int64", "range": [0, 2], "dynamic": {1: SEQ}},
        ],
    }


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("hf") / "bert-tiny", seed=3)


def test_from_config_takes_a_path_or_a_dict_and_loads_the_safetensors_weights(bert_dir):
    import transformers

    saved = transformers.BertModel.from_pretrained(str(bert_dir)).eval()
    spec = validate({"models": {"bert": bert_model(str(bert_dir))}}).models["bert"]
    model = build_model(spec, spec.checkpoint)
    assert type(model).__name__ == "BertModel"
    for name, tensor in saved.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    ids = np.random.default_rng(0).integers(0, 1000, (2, 8))
    names, outputs = run_model(model, spec, {"input_ids": ids, "attention_mask": np.ones((2, 8), np.int64)})
    assert names == ["last_hidden_state", "pooler_output"] and outputs[0].shape == (2, 8, 32)
    from_dict = from_config(dict(TINY_BERT))  # a tiny BertConfig's fields, no file
    assert from_dict.config.hidden_size == 32 and from_dict.config._attn_implementation == "eager"


def test_a_missing_config_is_one_sentence(tmp_path):
    with pytest.raises(TrtpipeError, match=r"config .*nope/config.json not found; fix: give the path of the model's config.json"):
        from_config(str(tmp_path / "nope/config.json"))


def _spec_for(folder, checkpoint="model.safetensors", **kwargs):
    model = bert_model(str(folder))
    model["checkpoint"] = f"{folder}/{checkpoint}"
    model["factory_kwargs"].update(kwargs)
    return validate({"models": {"bert": model}}).models["bert"]


def test_a_legacy_buffer_key_is_ignored_as_transformers_ignores_it_and_said(tmp_path, caplog):
    """transformers 4.x saved BERT's `embeddings.position_ids` buffer; 5.x has no such key and its loader ignores it
    (_keys_to_ignore_on_load_unexpected), where a strict load_state_dict failed every job of the model."""
    from safetensors.torch import load_file, save_file

    folder = write_tiny_bert(tmp_path / "legacy", seed=1)
    state = load_file(str(folder / "model.safetensors"))
    state["embeddings.position_ids"] = torch.arange(TINY_BERT["max_position_embeddings"])[None]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with caplog.at_level("WARNING"):
        model = build_model(_spec_for(folder), str(folder / "model.safetensors"))
    assert model.trtpipe_loading["ignored"] == ["embeddings.position_ids"] and model.trtpipe_loading["missing"] == []
    assert "from_pretrained(local_files_only=True)" in model.trtpipe_loading["loader"]
    assert "1 key(s) that BertModel does not use, ignored as transformers ignores them: embeddings.position_ids" in caplog.text
    for name, tensor in state.items():
        if name != "embeddings.position_ids":
            assert torch.equal(model.state_dict()[name], tensor), name


def test_a_task_head_checkpoint_loads_into_the_base_architecture(tmp_path):
    import transformers

    folder = write_tiny_bert(tmp_path / "cls", seed=2, architecture="BertForSequenceClassification", num_labels=3)
    saved = transformers.BertForSequenceClassification.from_pretrained(str(folder))
    model = build_model(_spec_for(folder, architecture="BertModel"), str(folder / "model.safetensors"))
    assert type(model).__name__ == "BertModel"
    assert model.trtpipe_loading["ignored"] == ["classifier.bias", "classifier.weight"]
    for name, tensor in saved.bert.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_a_sharded_checkpoint_loads_from_its_index_and_a_missing_shard_is_one_sentence(tmp_path):
    import transformers

    folder = write_tiny_bert(tmp_path / "sharded", seed=4, max_shard_size="30KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and not (folder / "model.safetensors").exists()
    saved = transformers.BertModel.from_pretrained(str(folder))
    spec = _spec_for(folder, "model.safetensors.index.json")
    model = build_model(spec, spec.checkpoint)
    assert model.trtpipe_loading["ignored"] == [] and model.trtpipe_loading["missing"] == []
    for name, tensor in saved.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    shards[-1].unlink()
    with pytest.raises(TrtpipeError, match=rf"shard {shards[-1].name} \(of {len(shards)}\) is not beside the index; fix"):
        build_model(spec, spec.checkpoint)


@pytest.mark.workflow
def test_a_transformers_encoder_runs_every_stage_on_the_cpu(tmp_path):
    """config.json + model.safetensors through reference, export, check, simplify, fp16, ONNX Runtime engines and
    benchmarks, with a dynamic sequence axis on both integer inputs; config/hf-bert.yaml is the same pattern."""
    example = yaml.safe_load((REPO / "config/hf-bert.yaml").read_text())
    assert example["models"]["bert_tiny"]["factory"] == "trtpipe.hf:from_config"
    config = {
        "batch_sizes": [1, 2], "static_batch_sizes": [], "benchmark": FAST_BENCHMARK,
        "profiles": {"small": {"min": 1, "opt": 2, "max": 4}},
        "sweep": {"profiles": ["small"], "precisions": ["fp32", "fp16"]},
        "models": {"bert": bert_model("models/bert-tiny")},
    }
    workdir = copy_workflow(tmp_path, config)
    write_tiny_bert(workdir / "models/bert-tiny")
    snakemake(workdir, "--cores", "2")
    results = workdir / "results"
    accuracy = pd.read_csv(results / "summary/accuracy.csv")
    assert accuracy["passed"].all() and set(accuracy["stage"]) == {"export", "simplify", "precision", "engine"}
    assert {"b1-dmin", "b1-dmax"} <= set(accuracy[accuracy["stage"] == "engine"]["case"])  # seq 4 and 16
    assert set(accuracy["output"]) == {"last_hidden_state", "pooler_output"}
    bench = pd.read_csv(results / "summary/benchmarks.csv")
    assert sorted(zip(bench["precision"], bench["batch"])) == [("fp16", 1), ("fp16", 2), ("fp32", 1), ("fp32", 2)]
    assert (bench["latency_ms_median"] > 0).all()
    import onnx

    graph = onnx.load(str(results / "bert/onnx/dynamic.sim.onnx")).graph
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.input}
    assert dims == {"input_ids": ["batch", "seq"], "attention_mask": ["batch", "seq"]}
    assert dry_run_jobs(workdir) == {}
    assert not list(results.rglob("*.tmp")) and os.path.exists(results / "summary/report.html")
