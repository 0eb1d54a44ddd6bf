"""Load and validate the sweep configuration.

Schema errors and semantic errors both become one ConfigError sentence: the file, the key, the
value and the fix. The resulting `Sweep` answers every question the Snakefile asks (targets,
profiles, batch sizes), so the rules themselves carry no logic.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import defaults
from .backends import registry
from .errors import ConfigError, TrtpipeError
from .layout import COMBINED, FP32_ONNX_PRECISIONS, Layout, quantized, stem as file_stem
from .spec import BATCH_DIM, INTEGER_DTYPES, ModelSpec, Profile, Variant

PRESET_PROFILES = defaults.value("profiles")  # the schema's default: latency, dynamic, offline
RESERVED_PROFILE_NAMES = ("static", COMBINED)


@dataclass(frozen=True)
class EngineTarget:
    model: str
    backend: str
    variant: Variant
    precision: str
    profile: str  # a profile name, "static", or "combined" (several profiles in one engine)

    @property
    def stem(self) -> str:
        return file_stem(self.variant, self.precision, self.profile)


@dataclass(frozen=True)
class BenchTarget:
    engine: EngineTarget
    profile: str  # the profile timed: the engine's own, or one of a combined engine's

    @property
    def stem(self) -> str:
        return file_stem(self.engine.variant, self.engine.precision, self.profile)


class Sweep:
    """The validated configuration with defaults filled in."""

    def __init__(self, raw: dict[str, Any], source: str = "config.yaml"):
        self.source = source
        self.raw = raw
        self.results = raw["results"]
        self.seed = raw["seed"]
        self.batch_sizes = sorted(raw["batch_sizes"])
        self.profiles = {**PRESET_PROFILES, **raw["profiles"]}  # a user's profiles beside the presets
        self.backends = list(raw["sweep"]["backends"])
        self.precisions = list(raw["sweep"]["precisions"])
        self.precision = raw["precision"]
        self.quantize = raw["quantize"]
        self.export = raw["export"]
        self.simplify = raw["simplify"]
        self.peak_tflops = raw["peak_tflops"]
        self.objectives = raw["objectives"]  # {model: {p99_latency_ms, min_throughput}}
        self.traffic = raw["traffic"]  # {model: {batch: {size: weight}}}
        self.baseline = raw.get("baseline")  # an earlier sweep: checked to exist by validate()
        self.compare = raw["compare"]
        self._static_batch_sizes = raw.get("static_batch_sizes")
        self.benchmark = raw["benchmark"]
        self.scheduling = raw["scheduling"]
        # A tolerance key given replaces that key of the precision's default, not the whole default.
        self.tolerances = {p: {**t, **raw["tolerances"].get(p, {})} for p, t in defaults.section("tolerances").items()}
        self.models: dict[str, ModelSpec] = {}
        self._model_raw = raw["models"]
        for name, m in sorted(raw["models"].items()):
            self.models[name] = ModelSpec.from_dict({**m, "name": name, "seed": self.seed})

    # --- per-model views -------------------------------------------------------------------
    def batch_sizes_for(self, model: str) -> list[int]:
        return sorted(self._model_raw[model].get("batch_sizes") or self.batch_sizes)

    def profiles_for(self, model: str) -> list[Profile]:
        names = self._model_raw[model].get("profiles") or self.raw["sweep"]["profiles"]
        return [self.profile(n) for n in names]

    def profile(self, name: str) -> Profile:
        p = self.profiles[name]
        return Profile(name, p["min"], p["opt"], p["max"])

    def static_batch_sizes_for(self, model: str) -> list[int]:
        for value in (self._model_raw[model].get("static_batch_sizes"), self._static_batch_sizes):
            if value is not None:
                return sorted(value)
        return self.batch_sizes_for(model)

    def variants(self, model: str) -> list[Variant]:
        return [Variant.static(b) for b in self.static_batch_sizes_for(model)] + [Variant(None)]

    def precisions_for(self, model: str) -> list[str]:
        return list(self._model_raw[model].get("precisions") or self.precisions)

    def calibration_data(self, model: str) -> str | None:
        return self._model_raw[model].get("calibration_data")

    # --- the model's own samples and task metric (trtpipe.samples, trtpipe.metrics, trtpipe.evaluate) --------------
    def samples(self, model: str) -> dict[str, Any] | None:
        return self._model_raw[model].get("samples")

    def metric(self, model: str):
        from .metrics import Metric

        return Metric.from_config(self._model_raw[model].get("metric"))

    def accept(self, model: str) -> dict[str, Any]:
        """The thresholds that judge reduced precisions on the samples: the config's, else the built-in metric's."""
        given = self._model_raw[model].get("accept")
        if given is not None:
            return dict(given)
        metric = self.metric(model)
        return metric.default_accept() if metric is not None and self.samples(model) else {}

    def samples_calibration(self, model: str) -> int:
        """Samples put aside to calibrate int8/fp8/int8-ort-*: only where such a precision is built and no calibration_data."""
        s = self.samples(model)
        if not s or self.calibration_data(model) or not any(quantized(p) for p in self.precision_onnx_needed(model)):
            return 0
        return int(s["calibration"])

    def calibration_file(self, model: str) -> str | None:
        """The file int8/fp8 calibrate on: calibration_data, else the calibration part of the samples, else none."""
        if self.calibration_data(model):
            return self.calibration_data(model)
        return Layout(self.results).data_reference.paths(model=model)["calibration"] if self.samples_calibration(model) else None

    def quantize_accept(self, model: str) -> dict[str, Any]:
        """The thresholds the sensitivity ranking, the search and the pick judge by: those of the model's metric (its
        accept, else the metric's defaults), else quantize.accept (agreement with the fp32 model)."""
        metric = self.metric(model)
        if metric is None:
            return dict(self.quantize["accept"])
        return self.accept(model) or metric.default_accept()

    def backend_builds(self, backend: str, precision: str) -> bool:
        """Whether a backend builds a precision: it can run it (int8 by a quantizer it runs, trtpipe.quantize), and its
        own `precisions` setting allows it (search candidates count as allowed with any int8-ort-* precision)."""
        allowed = self.backend_options(backend).get("precisions")
        if not registry.get(backend).builds(precision):
            return False
        return (allowed is None or precision in allowed
                or (precision.endswith("-mixed") and any(a.startswith("int8-ort-") for a in allowed)))

    def backend_precisions(self, backend: str) -> tuple[str, ...]:
        """The plain precisions a backend builds: what it can run, narrowed by its own `precisions` setting."""
        return tuple(p for p in registry.get(backend).precisions if self.backend_builds(backend, p))

    def skipped_targets(self, model: str) -> list[tuple[str, str]]:
        """(backend, precision) pairs not built because the backend cannot (or is told not to) run them."""
        return [(b, p) for b in self.backends for p in self.precisions_for(model) if not self.backend_builds(b, p)]

    def candidates(self, model: str) -> list[str]:
        """The mixed-precision search's candidates for a model (dynamic variant only), within quantize.search;
        none when no backend of the sweep runs onnxruntime.quantization's int8."""
        from .quantize import candidates

        return [c for c in candidates(self.quantize) if any(self.backend_builds(b, c) for b in self.backends)]

    def variant_precisions(self, model: str, variant: Variant) -> list[str]:
        """The sweep's precisions for the model, and on its dynamic variant the search's candidates."""
        extra = self.candidates(model) if variant.is_dynamic else []
        return self.precisions_for(model) + [c for c in extra if c not in self.precisions_for(model)]

    def precision_onnx_needed(self, model: str, variant: Variant | None = None) -> list[str]:
        """Reduced precisions an ONNX backend of the sweep will build for this model (variant)."""
        variant = variant or Variant(None)
        return [p for p in self.variant_precisions(model, variant) if p not in FP32_ONNX_PRECISIONS
                and any(self.backend_builds(b, p) for b in self.backends if registry.get(b).source == registry.ONNX_SOURCE)]

    def reduced_onnx(self, model: str) -> list[tuple[Variant, str]]:
        """(variant, precision) of every precision ONNX the sweep makes for a model."""
        return [(v, p) for v in self.variants(model) for p in self.precision_onnx_needed(model, v)]

    def needs_sensitivity(self, model: str) -> bool:
        """A sensitivity ranking is made for models with an onnxruntime.quantization precision (the search needs it)."""
        return bool(self.candidates(model)) or (
            self.quantize["sensitivity"] and any(p.startswith("int8-ort-") for _, p in self.reduced_onnx(model)))

    def backend_profiles(self, backend: str, model: str) -> list[Profile]:
        """The model's profiles, narrowed by the backend's own `profiles` setting (e.g. a slow CPU
        backend kept to `latency` while the GPU backends sweep to batch 256)."""
        allowed = self.backend_options(backend).get("profiles")
        return [p for p in self.profiles_for(model) if allowed is None or p.name in allowed]

    def backend_static_batches(self, backend: str, model: str) -> list[int]:
        allowed = self.backend_options(backend).get("profiles")
        return self.static_batch_sizes_for(model) if allowed is None or "static" in allowed else []

    def engine_targets(self, model: str) -> list[EngineTarget]:
        targets = []
        for backend in self.backends:
            for precision in self.variant_precisions(model, Variant(None)):
                if not self.backend_builds(backend, precision):
                    continue
                if precision in self.precisions_for(model):  # search candidates are dynamic only
                    for b in self.backend_static_batches(backend, model):
                        targets.append(EngineTarget(model, backend, Variant.static(b), precision, "static"))
                profiles = self.backend_profiles(backend, model)
                if self.combines_profiles(backend) and profiles:
                    targets.append(EngineTarget(model, backend, Variant(None), precision, COMBINED))
                elif not self.combines_profiles(backend):
                    targets += [EngineTarget(model, backend, Variant(None), precision, p.name) for p in profiles]
        return targets

    def bench_targets(self, model: str) -> list[BenchTarget]:
        return [BenchTarget(t, p.name) if t.profile == COMBINED else BenchTarget(t, t.profile)
                for t in self.engine_targets(model)
                for p in (self.backend_profiles(t.backend, model) if t.profile == COMBINED else [None])]

    def combines_profiles(self, backend: str) -> bool:
        return registry.get(backend).combines_profiles(self.backend_options(backend))

    def engine_profiles(self, model: str, backend: str, variant: Variant, profile: str) -> list[Profile]:
        """The profiles an engine holds: a static variant's fixed one, one profile, or all of a combined engine."""
        if profile == COMBINED:
            return self.backend_profiles(backend, model)
        return [self.engine_profile(variant, profile)]

    def engine_profile(self, variant: Variant, profile: str) -> Profile:
        """The profile a benchmark times."""
        return self.profile(profile) if variant.is_dynamic else Profile.static(variant.batch)

    def backend_options(self, backend: str) -> dict[str, Any]:
        """The backend's config section (defaults filled), or none."""
        section = registry.get(backend).section
        return self.raw[section] if section else {}

    def bench_batches(self, model: str, profile: Profile) -> list[int]:
        """Every configured batch inside the profile, always including opt."""
        inside = {b for b in self.batch_sizes_for(model) if profile.contains_batch(b)}
        return sorted(inside | {profile.opt})

    def unbenchmarked_batches(self, model: str) -> list[int]:
        """Configured batch sizes no benchmark of the model times: above every dynamic profile's max (or below its
        min) and without a static engine of their own."""
        timed = {b for t in self.bench_targets(model)
                 for b in self.bench_batches(model, self.engine_profile(t.engine.variant, t.profile))}
        return [b for b in self.batch_sizes_for(model) if b not in timed]

    def unbenchmarked_notes(self) -> list[str]:
        """One line per model with configured batch sizes that nothing times; printed at DAG time by the Snakefile."""
        notes = []
        for model in self.models:
            missed = self.unbenchmarked_batches(model)
            if missed and self.bench_targets(model):
                profiles = {t.profile for t in self.bench_targets(model) if t.engine.variant.is_dynamic}
                ranges = ", ".join(f"{p} {self.profile(p).min}-{self.profile(p).max}" for p in sorted(profiles)) or "none"
                notes.append(f"not benchmarked: batch size(s) {', '.join(map(str, missed))} of {model} (batch_sizes) "
                             f"lie outside every profile it is built for (dynamic profiles: {ranges}) and no static engine "
                             f"of that batch is built; fix: add a profile that holds them to sweep.profiles (or the "
                             f"model's profiles), list them in static_batch_sizes, or drop them from batch_sizes.")
        return notes

    def reference_batches(self, model: str) -> list[int]:
        """The traced dummy batch, batches away from it, and every static variant's batch."""
        extra = {*self.export["parity_batches"], self.export["dummy_batch"]}
        return sorted(extra | set(self.static_batch_sizes_for(model)))

    def tolerance(self, precision: str) -> dict[str, float]:
        """Per numeric precision: every int8 recipe shares int8's."""
        from .quantize import base_precision

        return self.tolerances[precision if precision in self.tolerances else base_precision(precision)]


# --- loading -----------------------------------------------------------------------------------
def load_file(path: str | Path) -> Sweep:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found; fix: pass an existing config file (e.g. config.yaml).")
    return validate(read_yaml(path) or {}, source=str(path))


def validate(raw: dict[str, Any], source: str = "config.yaml") -> Sweep:
    """Fill defaults, check the schema, then the semantics; raise ConfigError with one sentence."""
    import jsonschema

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a `models` key; fix: see config.yaml.")
    data = copy.deepcopy(raw)
    schema = config_schema()
    validator_cls = _with_defaults(jsonschema.Draft202012Validator)
    validator = validator_cls(schema)
    errors = list(validator.iter_errors(data))
    if errors:
        raise ConfigError(_describe(jsonschema.exceptions.best_match(errors), source, schema))
    _check_semantics(data, source)
    return Sweep(data, source)


def config_schema() -> dict[str, Any]:
    """The config's JSON schema: the schema file with the registry's backend names and each backend's section (its
    options) spliced in."""
    out = defaults.schema()
    properties = out["properties"]
    properties["sweep"]["properties"]["backends"]["items"] = {"enum": sorted(registry.BACKENDS)}
    for section, section_schema in registry.sections().items():
        if section in properties:
            raise ConfigError(f"{defaults.SCHEMA_PATH}: the backend section {section!r} is also a key of the schema file; "
                              f"fix: give the backend's section another name.")
        properties[section] = section_schema
    return out


def _with_defaults(validator_class):
    """A validator that fills `default` values as it validates (the jsonschema FAQ recipe)."""
    from jsonschema import validators

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def _key_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error, source: str, schema: dict[str, Any]) -> str:
    key = _key_path(error.absolute_path)
    value = error.instance
    kind = error.validator
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(known)) if isinstance(value, dict) else []
        bad = extra[0] if extra else "?"
        where = f"{key}." if key != "(top level)" else ""
        hint = f" (known keys: {', '.join(known)})" if known else ""
        return f"{source}: {where}{bad} is not a known key{hint}; fix: remove it or correct its spelling."
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{source}: {key} is missing the required key {missing!r}; fix: add it."
    if kind == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"{source}: {key} = {value!r} is not allowed; fix: use one of {allowed}."
    if kind == "type":
        return f"{source}: {key} = {value!r} is not of type {error.validator_value}; fix: give a {error.validator_value}."
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        return f"{source}: {key} = {value!r} is out of range; fix: use a value {op} {error.validator_value}."
    if kind == "pattern":
        return f"{source}: {key} = {value!r} has the wrong form; fix: match the pattern {error.validator_value}."
    if kind in ("minItems", "minProperties"):
        return f"{source}: {key} is empty; fix: give at least {error.validator_value} entr{'y' if error.validator_value == 1 else 'ies'}."
    if kind == "uniqueItems":
        return f"{source}: {key} = {value!r} has duplicates; fix: list each value once."
    if kind == "propertyNames":
        return f"{source}: {key} has a key {value!r} that is not allowed; fix: use letters, digits, '_' or '-' only."
    return f"{source}: {key} = {value!r}: {error.message}; fix: see workflow/schemas/config.schema.yaml."


def _check_semantics(data: dict[str, Any], source: str) -> None:
    for key in ("objectives", "traffic"):
        unknown = sorted(set(data[key]) - set(data["models"]))
        if unknown:
            raise ConfigError(f"{source}: {key}.{unknown[0]} names no model; fix: use one of {', '.join(sorted(data['models']))}.")
    for model, traffic in data["traffic"].items():
        from .decide import batch_histogram

        try:
            batch_histogram(traffic)
        except ValueError as exc:
            raise ConfigError(f"{source}: traffic.{model}.batch: {exc}; fix: give at least one batch a positive weight.") from None
    profiles = {**PRESET_PROFILES, **data["profiles"]}
    for name in data["profiles"]:
        if name in RESERVED_PROFILE_NAMES:
            raise ConfigError(f"{source}: profiles.{name} uses a reserved name; fix: call it something other than "
                              f"{' or '.join(RESERVED_PROFILE_NAMES)}.")
    for name, p in data["profiles"].items():
        if not p["min"] <= p["opt"] <= p["max"]:
            raise ConfigError(
                f"{source}: profiles.{name} = min {p['min']}, opt {p['opt']}, max {p['max']} breaks min <= opt <= max; "
                f"fix: order the three batch sizes."
            )
    for name in data["sweep"]["profiles"]:
        if name not in profiles:
            raise ConfigError(
                f"{source}: sweep.profiles names {name!r}, which is not a profile; fix: use one of "
                f"{', '.join(sorted(profiles))} or define it under profiles."
            )
    for backend in sorted({b.section for b in registry.BACKENDS.values() if b.section}):
        for name in data[backend].get("profiles", []):
            if name != "static" and name not in profiles:
                raise ConfigError(
                    f"{source}: {backend}.profiles names {name!r}, which is not a profile; fix: use static or one of "
                    f"{', '.join(sorted(profiles))}."
                )
    for model, m in data["models"].items():
        where = f"models.{model}"
        for name in m.get("profiles", []):
            if name not in profiles:
                raise ConfigError(
                    f"{source}: {where}.profiles names {name!r}, which is not a profile; fix: use one of "
                    f"{', '.join(sorted(profiles))} or define it under profiles."
                )
        if not m.get("factory") and not m.get("checkpoint"):
            raise ConfigError(
                f"{source}: {where} has neither factory nor checkpoint; fix: add factory: 'package.module:function' "
                f"(and optionally checkpoint: path/to/state_dict.pt)."
            )
        if not m.get("factory") and not str(m["checkpoint"]).endswith((".pt2", ".ts", ".jit", ".torchscript", ".pt", ".pth")):
            raise ConfigError(
                f"{source}: {where}.checkpoint = {m['checkpoint']!r} is not a TorchScript or .pt2 file and there is no "
                f"factory to load a state_dict into; fix: add factory: 'package.module:function'."
            )
        seen: dict[str, tuple[int, int, int]] = {}
        names = [i["name"] for i in m["inputs"]]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f"{source}: {where}.inputs names {dup!r} twice; fix: give every input its own name.")
        for k, inp in enumerate(m["inputs"]):
            iw = f"{where}.inputs[{k}] ({inp['name']})"
            if inp["dtype"] in INTEGER_DTYPES and "range" not in inp:
                raise ConfigError(
                    f"{source}: {iw} is {inp['dtype']} but has no range; fix: add range: [low, high) so random inputs "
                    f"are valid (e.g. [0, vocab_size] for token ids)."
                )
            if "range" in inp and not inp["range"][0] < inp["range"][1]:
                raise ConfigError(f"{source}: {iw}.range = {inp['range']} is empty; fix: use [low, high) with low < high.")
            for axis_s, d in inp.get("dynamic", {}).items():
                axis = int(axis_s)
                if axis > len(inp["shape"]):
                    raise ConfigError(
                        f"{source}: {iw}.dynamic names axis {axis}, but the input has axes 0 (batch) to {len(inp['shape'])}; "
                        f"fix: number axes of the full tensor, batch being 0."
                    )
                opt = inp["shape"][axis - 1]
                if not d["min"] <= opt <= d["max"]:
                    raise ConfigError(
                        f"{source}: {iw}.dynamic.{axis} = min {d['min']}, max {d['max']} does not contain shape[{axis - 1}] = "
                        f"{opt}, the opt size; fix: widen the range or change the shape."
                    )
                dim = d.get("name") or f"{inp['name']}_dim{axis}"
                if dim == BATCH_DIM:
                    raise ConfigError(f"{source}: {iw}.dynamic.{axis}.name = 'batch' is reserved for axis 0; fix: rename it.")
                if dim in seen and seen[dim] != (d["min"], opt, d["max"]):
                    raise ConfigError(
                        f"{source}: {iw}.dynamic.{axis} reuses the dimension name {dim!r} with another range; "
                        f"fix: give shared dimensions the same min, size and max."
                    )
                seen[dim] = (d["min"], opt, d["max"])
        for b in m.get("batch_sizes", []):
            if b == 0:
                raise ConfigError(f"{source}: {where}.batch_sizes contains 0; fix: use batch sizes >= 1.")
        _check_metric(m, where, source)
    _check_model_names(data, source)
    _check_baseline(data.get("baseline"), source)


# The longest file name a model's name goes into: results/summary/plots/{model}.pareto.png (see
# workflow/rules/common.smk); temporary files beside it are bounded by io.atomic_path. Other paths hold the name as a
# folder (results/{model}/...), which is shorter.
LONGEST_MODEL_FILE = "{model}.pareto.png"
NAME_MAX = 255  # bytes per path component (Linux, macOS)


def _check_model_names(data: dict[str, Any], source: str) -> None:
    most = NAME_MAX - len(LONGEST_MODEL_FILE.format(model=""))
    for model in data["models"]:
        if len(model) > most:  # the schema allows ASCII letters, digits, '_' and '-' only: a byte each
            raise ConfigError(f"{source}: models.{model[:30]}... is a model name of {len(model)} characters, and its "
                              f"plot's file name (results/summary/plots/{LONGEST_MODEL_FILE}) would pass the file "
                              f"system's limit of {NAME_MAX} bytes; fix: shorten the name to at most {most} characters.")


def _check_baseline(baseline: str | None, source: str) -> None:
    """The sweep to compare against must exist before anything runs (the summary, last of all, reads it)."""
    if baseline is None:
        return
    path = Path(baseline)
    if path.is_file():
        return
    if path.is_dir() and (path / "summary" / "benchmarks.csv").is_file():
        return
    found = ("is a folder without summary/benchmarks.csv (not a finished sweep's results folder)" if path.is_dir() else
             f"does not exist (looked for {path.absolute()})")
    raise ConfigError(f"{source}: baseline = {baseline!r} {found}; fix: give an earlier sweep's results folder or its "
                      f"summary/benchmarks.csv, or remove the baseline key.")


def _check_metric(m: dict[str, Any], where: str, source: str) -> None:
    """metric without samples, a hook file that is not there, a threshold naming a score the metric never returns."""
    from .evaluate import check_accept
    from .metrics import Metric

    metric = Metric.from_config(m.get("metric"))
    if metric is not None and not m.get("samples"):
        raise ConfigError(f"{source}: {where}.metric is set but {where}.samples is not, and a metric needs samples to "
                          f"score; fix: add samples (an .npz, a folder of images or a text file).")
    if metric is not None and metric.is_hook and not Path(metric.task.rpartition(":")[0]).exists():
        raise ConfigError(f"{source}: {where}.metric = {metric.task!r}: file {metric.task.rpartition(':')[0]} not found; "
                          f"fix: give a path relative to where snakemake runs.")
    try:
        check_accept(metric, m.get("accept") or {}, bool((m.get("samples") or {}).get("labels")), f"{source}: {where}")
    except TrtpipeError as exc:
        raise ConfigError(str(exc)) from None


def check_yaml_syntax(path: str | Path) -> None:
    """Raise ConfigError naming the file and where it breaks: a byte that is not UTF-8, or a YAML syntax error
    (Snakemake's own messages for a config file that does not parse name neither); a missing file is left to the
    caller."""
    path = Path(path)
    if path.exists():
        read_yaml(path)


def read_yaml(path: Path) -> Any:
    """The parsed YAML of a config file, or ConfigError with the file, the line (and byte offset or column) and the fix."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{path}: the byte at offset {exc.start} (line {line}, column {column}) is 0x{data[exc.start]:02x}, which is "
                          f"not UTF-8 ({exc.reason}); fix: save the file as UTF-8 (text pasted from a Latin-1 or "
                          f"Windows-1252 file is the usual cause).") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        opened = f"; {context} at line {cmark.line + 1}" if context and cmark else ""
        raise ConfigError(f"{path}: not valid YAML{where} ({problem}{opened}); fix: correct the syntax there "
                          f"(`trtpipe validate-config {path}` checks the file by hand).") from None


__all__ = ["Sweep", "EngineTarget", "BenchTarget", "validate", "load_file", "PRESET_PROFILES"]
