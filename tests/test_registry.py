"""The backend registry is the one place that knows what a backend is: a new backend, options included, is one
module plus one registry entry, and nothing else in the package or the workflow changes."""

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import REPO, TEXT_MODEL, copy_workflow, snakemake, tiny_config

TOY_MODULE = '''"""A toy backend for the registry test: its engine is the ONNX itself, run by ONNX's reference evaluator
`runs_per_call` times per timed call (its one option)."""

import shutil

import numpy as np
import onnx

from .base import Runner as BaseRunner, cpu_description


def build(request):
    shutil.copyfile(request.source, request.engine_path)
    return {"build_seconds": 0.0, "evaluator": "onnx.reference", "runs_per_call": request.options["runs_per_call"]}


class Runner(BaseRunner):
    @classmethod
    def machine_identity(cls, options):
        from ..sysinfo import cpu_name

        return {"backend_version": onnx.__version__, "device": cpu_name()}

    def load(self):
        from onnx.reference import ReferenceEvaluator

        self.evaluator = ReferenceEvaluator(self.engine_path)
        self.output_names = list(self.evaluator.output_names)

    def run_impl(self, feeds):
        return [np.asarray(o) for o in self.evaluator.run(None, feeds)]

    def benchmark_impl(self, feed_sets, settings, batch):
        from ..timing import measure, summarize

        runs = self.options["runs_per_call"]
        steps = [lambda feeds=feeds: [self.evaluator.run(None, feeds) for _ in range(runs)] for feeds in feed_sets]
        return summarize(measure(steps, settings), batch, settings.cv_threshold)

    def describe_impl(self):
        return cpu_description(1)
'''

TOY_OPTIONS = "runs_per_call: {type: integer, minimum: 1, default: 1, description: evaluator runs per timed call}\n"
TOY_ENTRY = '''
register(Backend(
    name="toy_reference", module="trtpipe.backends.toy", rule="toy", engine_suffix="ref.onnx", precisions=("fp32",),
    source=ONNX_SOURCE, gpu=False, library="ONNX reference evaluator", dag_identity=_cpu_identity("onnx"),
    section="toy", options=''' + repr(TOY_OPTIONS) + ''',
))
'''


@pytest.mark.workflow
def test_a_toy_backend_is_one_module_and_one_registry_entry(tmp_path):
    config = tiny_config(tiny_text=TEXT_MODEL)
    config["sweep"] = {"profiles": ["small"], "backends": ["onnxruntime", "toy_reference"]}
    config["static_batch_sizes"] = []
    config["toy"] = {"runs_per_call": 2}  # its option, validated by the schema its registry entry brings
    workdir = copy_workflow(tmp_path / "wf", config)
    backends_dir = workdir / "workflow" / "trtpipe" / "backends"
    (backends_dir / "toy.py").write_text(TOY_MODULE)
    with open(backends_dir / "registry.py", "a") as registry:
        registry.write(TOY_ENTRY)

    snakemake(workdir, "--cores", "2")

    results = workdir / "results"
    engine = results / "tiny_text" / "engines" / "toy_reference" / "dynamic.fp32.small.ref.onnx"
    assert engine.exists() and engine.with_name("dynamic.fp32.small.json").exists()
    assert json.loads(engine.with_name("dynamic.fp32.small.json").read_text())["runs_per_call"] == 2
    bench = pd.read_csv(results / "summary" / "benchmarks.csv")
    toy = bench[bench["backend"] == "toy_reference"]
    assert sorted(toy["batch"]) == [1, 2]  # the batch_sizes inside profile small (1..4), opt 2 included and (toy["latency_ms_median"] > 0).all()
    assert set(toy["backend_version"]) == {__import__("onnx").__version__}
    accuracy = pd.read_csv(results / "summary" / "accuracy.csv")
    toy_acc = accuracy[(accuracy["stage"] == "engine") & (accuracy["backend"] == "toy_reference")]
    assert len(toy_acc) > 0 and toy_acc["passed"].all()  # the reference evaluator matches PyTorch at fp32
    assert "toy_reference" in (results / "summary" / "report.md").read_text()
    # The new backend got its own rules; the log names them.
    log = sorted((workdir / ".snakemake" / "log").glob("*.log"))[-1].read_text()
    assert "rule engine_toy:" in log and "rule benchmark_toy:" in log


def test_an_unknown_backend_is_refused_with_the_registry_names():
    from trtpipe.config import validate
    from trtpipe.errors import ConfigError

    config = tiny_config(tiny_text=TEXT_MODEL)
    config["sweep"]["backends"] = ["onnxruntme"]
    with pytest.raises(ConfigError, match=r"sweep.backends\[0\] = 'onnxruntme' is not allowed; fix: use one of .*onnxruntime"):
        validate(config)


def test_outside_the_backends_package_no_code_compares_backend_names():
    """The issue's own check: `grep -rnE 'backend ==|== "tensorrt"|== "onnxruntime"|startswith\\("torch' workflow`."""
    proc = subprocess.run(["grep", "-rnE", r'backend ==|== "tensorrt"|== "onnxruntime"|startswith\("torch', "workflow",
                           "--include=*.py", "--include=*.smk"], cwd=REPO, capture_output=True, text=True)
    outside = [line for line in proc.stdout.splitlines() if not line.startswith("workflow/trtpipe/backends/")]
    assert outside == []


def test_the_readme_config_table_states_the_schema_defaults():
    """Defaults live in the schema; the README's table must say the same (one key, one default per row)."""
    from trtpipe.config import config_schema

    schema = config_schema()["properties"]
    rows = re.findall(r"^\| `([a-z_]+(?:\.[a-z_]+)?)` \| `([^`|]+)` \|", (REPO / "README.md").read_text(), flags=re.M)
    checked = 0
    for key, stated in rows:
        section, _, name = key.partition(".")
        node = schema[section]["properties"][name] if name else schema[section]
        if "default" not in node:
            continue
        assert yaml.safe_load(stated) == node["default"], f"README says {key} defaults to {stated}, the schema {node['default']}"
        checked += 1
    assert checked >= 30


def test_every_family_shares_suffix_env_section_and_source():
    from trtpipe.backends import registry

    families = registry.rules()
    assert set(families) == {"onnxruntime", "tensorrt", "torch", "onnxruntime_cuda", "onnxruntime_tensorrt"}
    assert [b.name for b in families["torch"]] == ["torch_eager", "torch_compile", "torch_eager_graph", "torch_compile_graph"]
    assert Path(REPO / "envs" / families["tensorrt"][0].conda_env).exists()


def test_a_backend_name_registered_twice_is_refused():
    from trtpipe.backends import registry
    from trtpipe.errors import TrtpipeError

    before = dict(registry.BACKENDS)
    with pytest.raises(TrtpipeError, match=r"backend 'onnxruntime' is registered twice .*; fix: give the new backend"):
        registry.register(registry.get("onnxruntime"))
    assert registry.BACKENDS == before
    options_nowhere = dataclasses.replace(registry.get("onnxruntime"), name="homeless", section=None)
    with pytest.raises(TrtpipeError, match=r"backend 'homeless' declares options but no config section"):
        registry.register(options_nowhere)
    assert registry.BACKENDS == before


@pytest.fixture
def toy_registered(monkeypatch):
    """The toy's registry entry, in this process (the workflow test above appends it to a copy of registry.py)."""
    from trtpipe.backends import registry

    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))
    namespace = {name: getattr(registry, name) for name in ("register", "Backend", "ONNX_SOURCE", "_cpu_identity")}
    exec(TOY_ENTRY, namespace)
    return registry.get("toy_reference")


def test_a_backends_options_are_spliced_into_the_config_schema_with_their_defaults(toy_registered):
    from trtpipe.config import config_schema, validate
    from trtpipe.errors import ConfigError

    assert toy_registered.env_file == "onnx.yaml"  # no env named: the one of the ONNX it reads
    config = tiny_config(tiny_text=TEXT_MODEL)
    config["sweep"]["backends"] = ["toy_reference"]
    assert "toy_reference" in config_schema()["properties"]["sweep"]["properties"]["backends"]["items"]["enum"]
    assert validate(config).backend_options("toy_reference") == {"runs_per_call": 1}
    config["toy"] = {"runs_per_call": 3, "precisions": ["fp32"]}
    assert validate(config).backend_options("toy_reference") == {"runs_per_call": 3, "precisions": ["fp32"]}
    config["toy"] = {"runs_per_call": 0}
    with pytest.raises(ConfigError, match=r"toy.runs_per_call = 0 is out of range; fix: use a value >= 1"):
        validate(config)
    config["toy"] = {"runs_per_cal": 2}
    with pytest.raises(ConfigError, match=r"toy.runs_per_cal is not a known key \(known keys: precisions, profiles, "
                                          r"runs_per_call\)"):
        validate(config)


def test_every_backend_has_its_env_file_and_its_section_in_the_schema():
    from trtpipe.backends import registry
    from trtpipe.config import config_schema

    properties = config_schema()["properties"]
    for backend in registry.BACKENDS.values():
        assert (REPO / "envs" / backend.env_file).is_file(), backend.name
        assert properties[backend.section]["properties"].keys() >= {"precisions", "profiles"}, backend.name
