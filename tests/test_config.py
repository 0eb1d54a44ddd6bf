import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import TEXT_MODEL, tiny_config
from trtpipe.config import PRESET_PROFILES, load_file, validate
from trtpipe.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_default_config_is_valid_and_fills_defaults():
    sweep = load_file(REPO / "config.yaml")
    assert set(sweep.models) == {"tiny_resnet", "tiny_sr", "tiny_unet", "tiny_text", "digits_cnn"}
    assert sweep.samples("digits_cnn")["path"] == "data/digits/samples.npz"  # the first report judges real data
    assert sweep.export["opset"] == 18 and sweep.simplify["tool"] == "onnxsim"
    assert sweep.tolerance("fp32") == {"atol": 1e-4, "rtol": 1e-3}
    assert [p.name for p in sweep.profiles_for("tiny_sr")] == ["latency", "dynamic"]


def test_presets_exist_without_being_configured():
    sweep = validate({"models": {"m": copy.deepcopy(TEXT_MODEL)}})
    for name, p in PRESET_PROFILES.items():
        assert sweep.profile(name).to_dict() == {"name": name, **p}


def test_targets_and_batches_follow_profiles():
    sweep = validate(tiny_config())
    targets = {(t.variant.name, t.profile) for t in sweep.engine_targets("tiny_text")}
    assert targets == {("static-b1", "static"), ("static-b2", "static"), ("dynamic", "latency"), ("dynamic", "small")}
    assert sweep.bench_batches("tiny_text", sweep.profile("small")) == [1, 2]
    assert sweep.bench_batches("tiny_text", sweep.profile("offline")) == [128]  # opt is always benchmarked
    assert sweep.reference_batches("tiny_text") == [1, 2, 3, 5]  # 1 and 3, the traced 5, the static 1 and 2


def test_a_backend_can_be_kept_to_some_profiles():
    raw = tiny_config()
    raw["sweep"]["backends"] = ["onnxruntime", "torch_eager"]
    raw["onnxruntime"] = {"profiles": ["latency"]}  # a slow CPU backend kept small
    raw["torch"] = {"profiles": ["static", "small"]}
    sweep = validate(raw)
    targets = {(t.backend, t.variant.name, t.profile) for t in sweep.engine_targets("tiny_text")}
    assert targets == {("onnxruntime", "dynamic", "latency"), ("torch_eager", "static-b1", "static"),
                       ("torch_eager", "static-b2", "static"), ("torch_eager", "dynamic", "small")}
    raw["onnxruntime"] = {"profiles": ["nightly"]}
    assert "onnxruntime.profiles names 'nightly'" in _error(raw)


def _error(raw) -> str:
    with pytest.raises(ConfigError) as info:
        validate(raw, source="my.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["models"]["tiny_text"]["inputs"][0].update(dtype="float23"),
         ["my.yaml", "models.tiny_text.inputs[0].dtype", "'float23'", "fix: use one of float32"]),
        (lambda c: c.update(batchsizes=[1]), ["batchsizes is not a known key", "fix: remove it or correct its spelling"]),
        (lambda c: c["profiles"].update(bad={"min": 8, "opt": 4, "max": 32}), ["profiles.bad", "min <= opt <= max", "fix:"]),
        (lambda c: c["sweep"].update(profiles=["latency", "nightly"]), ["'nightly'", "fix: use one of"]),
        (lambda c: c["models"]["tiny_text"]["inputs"][0].pop("range"), ["input_ids", "int64 but has no range", "fix: add range"]),
        (lambda c: c["models"]["tiny_text"]["inputs"][0]["dynamic"].update({3: {"min": 1, "max": 2}}),
         ["dynamic names axis 3", "fix: number axes of the full tensor"]),
        (lambda c: c["models"]["tiny_text"]["inputs"][1]["dynamic"][1].update(max=32),
         ["reuses the dimension name 'seq'", "fix:"]),
        (lambda c: c["models"]["tiny_text"].pop("factory"), ["neither factory nor checkpoint", "fix: add factory"]),
        (lambda c: c.update(batch_sizes=[0]), ["batch_sizes[0] = 0 is out of range", "fix: use a value >= 1"]),
        (lambda c: c["models"]["tiny_text"].pop("inputs"), ["missing the required key 'inputs'"]),
        (lambda c: c["models"].update({"bad.name": c["models"]["tiny_text"]}), ["'bad.name'", "fix:"]),
    ],
)
def test_mistakes_get_one_sentence_naming_key_value_and_fix(mutate, expected):
    raw = tiny_config()
    mutate(raw)
    message = _error(raw)
    assert "\n" not in message
    for part in expected:
        assert part in message, message


def test_validate_config_cli_exits_nonzero_with_one_sentence(tmp_path):
    raw = tiny_config()
    raw["models"]["tiny_text"]["inputs"][0]["dtype"] = "float23"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-m", "trtpipe", "validate-config", str(path)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "workflow"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "float23" in line]
    assert len(errors) == 1 and errors[0] == proc.stderr.strip().splitlines()[-1]
    assert errors[0].startswith("trtpipe validate-config: error: ") and "fix:" in errors[0]


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"config.yaml: not valid YAML at line \d+"):
        load_file(path)


# --- defaults live in the schema, and the README says the same ---------------------------------------
def _readme_config_rows() -> list[tuple[list[str], str]]:
    """(keys, default cell) of each row of the README's configuration table."""
    rows = []
    for line in (REPO / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            rows.append((re.findall(r"`([^`]*)`", cells[0]), cells[1]))
    return rows


def _same(stated, default) -> bool:
    """YAML 1.1 reads 1e-4 as a string: numbers are compared as numbers."""
    if isinstance(default, dict):
        return isinstance(stated, dict) and stated.keys() == default.keys() and all(
            _same(stated[k], default[k]) for k in default)
    if isinstance(default, list):
        return isinstance(stated, list) and len(stated) == len(default) and all(map(_same, stated, default))
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            return float(stated) == float(default)
        except (TypeError, ValueError):
            return False
    return stated == default


def test_every_readme_config_row_states_the_schemas_default():
    """Every row of the README's configuration table names keys of the schema (the backends' sections spliced in);
    where the schema has a default, the row states it: tolerance rows, presets and backend options included."""
    from trtpipe.config import config_schema

    properties = config_schema()["properties"]
    rows = _readme_config_rows()
    checked = set()
    for keys, cell in rows:
        if len(keys) > 1:  # `onnxruntime.` / `tensorrt.` / `torch.precisions`, `.profiles`: the backends' shared keys
            for section in (k.rstrip(".").split(".")[0] for k in keys if not k.startswith(".")):
                assert {"precisions", "profiles"} <= properties[section]["properties"].keys(), section
            continue
        section, _, name = keys[0].partition(".")
        assert section in properties, f"README row {keys[0]} names no key of the schema"
        node = properties[section]
        if name == "NAME":  # profiles.NAME, models.NAME: user-named entries; the presets are the default
            if section == "profiles":
                stated = {n: dict(zip(("min", "opt", "max"), map(int, v.split("/"))))
                          for n, v in re.findall(r"`(\w+)` (\d+/\d+/\d+)", line_of(keys[0]))}
                assert stated == node["default"], f"README presets {stated}, the schema {node['default']}"
                checked.add(keys[0])
            continue
        if name:
            assert name in node["properties"], f"README row {keys[0]} names no key of the schema"
            node = node["properties"][name]
        if "default" not in node:
            continue
        value = re.fullmatch(r"`([^`]*)`", cell)
        assert value, f"README row {keys[0]}: the default {cell!r} is not one `value`"
        assert _same(yaml.safe_load(value.group(1)), node["default"]), \
            f"README says {keys[0]} defaults to {value.group(1)}, the schema {node['default']}"
        checked.add(keys[0])
    assert {f"tolerances.{p}" for p in ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")} <= checked
    assert {"profiles.NAME", "compare.alpha", "compare.confidence", "export.parity_batches",
            "tensorrt.workspace_gib", "torch.device"} <= checked
    assert len(checked) >= 45


def line_of(key: str) -> str:
    return next(line for line in (REPO / "README.md").read_text().splitlines() if line.startswith(f"| `{key}` |"))


def test_defaults_module_imports_nothing_of_the_package():
    import ast

    tree = ast.parse((REPO / "workflow" / "trtpipe" / "defaults.py").read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("trtpipe")] and all(
        n.level == 0 for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))


def test_a_tolerance_key_given_replaces_only_that_key_of_the_default():
    config = tiny_config(tiny_text=TEXT_MODEL)
    config["tolerances"] = {"int8": {"min_cosine": 0.95}}
    sweep = validate(config)
    assert sweep.tolerance("int8") == {"atol": 0.5, "rtol": 0.5, "min_cosine": 0.95}
    assert sweep.tolerance("fp16") == {"atol": 1e-2, "rtol": 1e-2}
