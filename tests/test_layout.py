"""The sweep's layout (trtpipe.layout) and the summary's inputs (trtpipe.summary_inputs): the report written after
a failure is the summary rule's report over the same finished results, plus Failures; the package has no import
cycles."""

import ast
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import TEXT_MODEL, tiny_config
from trtpipe import failures
from trtpipe.benchmark import bench_columns
from trtpipe.config import validate
from trtpipe.layout import Layout, expected_jobs
from trtpipe.parity import ACCURACY_COLUMNS
from trtpipe.report.summary import write_summary
from trtpipe.summary_inputs import SummaryInputs
from trtpipe.timings import write_timings

PACKAGE = Path(__file__).resolve().parents[1] / "workflow" / "trtpipe"


def _finish(job, sweep) -> None:
    """Write a finished job's outputs in the forms the stages write them (numbers made up, shapes real)."""
    for name, path in job.named_outputs:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if job.stage == "benchmark" and name == "csv":
            backend, variant, precision, profile = job.artifact.split()
            p = sweep.engine_profile(next(v for v in sweep.variants(job.model) if str(v) == variant), profile)
            rows = [{c: None for c in bench_columns()} | {
                "model": job.model, "backend": backend, "variant": variant, "precision": precision, "profile": profile,
                "profile_min": p.min, "profile_opt": p.opt, "profile_max": p.max, "batch": b, "device": "cpu",
                "git_rev": "x", "latency_ms_median": 1.0 + b, "latency_ms_p90": 1.1 + b, "latency_ms_p99": 1.2 + b,
                "throughput_samples_s": 1000.0 * b / (1.0 + b), "iterations": 50, "cv": 0.01, "unstable": False,
            } for b in sweep.bench_batches(job.model, p)]
            pd.DataFrame(rows).to_csv(path, index=False)
        elif job.stage == "benchmark":
            batches = sweep.bench_batches(job.model, sweep.engine_profile(
                next(v for v in sweep.variants(job.model) if str(v) == job.artifact.split()[1]), job.artifact.split()[3]))
            write_timings(path, {b: {"latency_ms": 1.0 + b + np.linspace(0, 0.01, 50)} for b in batches})
        elif name == "accuracy":
            parts = job.artifact.split()
            backend, variant, precision, profile = parts if job.stage == "engine" else ("", parts[0], "fp32", "")
            if job.stage == "precision":
                precision = parts[1]
            pd.DataFrame([{c: None for c in ACCURACY_COLUMNS} | {
                "model": job.model, "stage": job.stage.replace("check_", ""), "variant": variant, "precision": precision,
                "backend": backend, "profile": profile, "case": "b1", "batch": 1, "output": "logits", "max_abs_err": 1e-6,
                "max_rel_err": 1e-5, "cosine": 1.0, "atol": 1e-4, "rtol": 1e-3, "passed": True}]).to_csv(path, index=False)
        elif job.stage == "simplify" and name == "stats":
            path.write_text(json.dumps({"model": job.model, "variant": job.artifact, "tool": "onnxsim", "nodes_before": 9,
                                        "nodes_after": 7, "suspicious_reshapes": []}))
        elif name == "flops":
            path.write_text(json.dumps({"model": job.model, "flops_per_sample": 1e6}))
        else:
            path.write_text("x")


def _headings(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("#")]


def test_the_report_after_a_failure_is_the_normal_report_plus_failures(tmp_path):
    """The same finished results of `good` through the summary rule's inputs and through the failure path (beside
    a model whose export failed): every section of the first is in the second, budget, traffic and baseline
    included, and the second adds Failures."""
    config = tiny_config(good=TEXT_MODEL)
    config.update(results=str(tmp_path / "results"), static_batch_sizes=[2], sweep={"profiles": ["latency", "small"]})
    good_only = validate(config)
    for job in expected_jobs(good_only):
        _finish(job, good_only)
    base = tmp_path / "base"  # an earlier sweep to compare against: these very results
    write_summary(SummaryInputs.from_sweep(good_only), base / "summary")
    shutil.copytree(tmp_path / "results" / "good", base / "good")

    config.update(objectives={"good": {"p99_latency_ms": 2.5}}, traffic={"good": {"batch": {1: 3, 2: 1}}},
                  baseline=str(base))
    normal = SummaryInputs.from_sweep(validate(config))
    write_summary(normal, tmp_path / "normal")

    config["models"]["bad"] = TEXT_MODEL
    both = validate(config)
    for job in expected_jobs(both):
        if job.model == "bad" and job.stage in ("checkpoint", "reference"):
            _finish(job, both)
    log = Path(next(j for j in expected_jobs(both) if j.key == "bad|export|dynamic").log)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("2026-12-05 03:00:00,000 ERROR trtpipe: model bad: ONNX export (dynamic) failed: it broke; fix: mend it.\n")
    rows = failures.summarize_sweep(both, tmp_path / "after_failure")

    assert rows and rows[0]["model"] == "bad" and rows[0]["stage"] == "export"
    normal_headings = _headings(tmp_path / "normal" / "report.md")
    failed_headings = _headings(tmp_path / "after_failure" / "report.md")
    for needed in ("### Within your budget", "### For your traffic", "## Against the baseline", "### Batch scaling",
                   "### Static vs dynamic at equal batch"):
        assert needed in normal_headings, needed
    assert [h for h in normal_headings if h not in failed_headings] == []
    assert [h for h in failed_headings if h not in normal_headings] == ["## Failures", "## Model bad"]
    report = (tmp_path / "after_failure" / "report.md").read_text()
    assert "No budget is configured for good" not in report
    # the good model's own part is the same text in both reports
    part = lambda text: text.split("## Model good")[1].split("## Model")[0]  # noqa: E731
    assert part(report) == part((tmp_path / "normal" / "report.md").read_text())


def test_the_summary_rule_passes_every_input_to_the_cli(tmp_path):
    """SummaryInputs -> the rule's arguments -> the CLI's parser -> the same SummaryInputs."""
    from trtpipe import summary_inputs
    from trtpipe.cli import build_parser

    (tmp_path / "base" / "summary").mkdir(parents=True)
    (tmp_path / "base" / "summary" / "benchmarks.csv").write_text("model\n")  # a baseline must exist
    config = tiny_config(good=TEXT_MODEL)
    config.update(results=str(tmp_path / "results"), objectives={"good": {"min_throughput": 10}},
                  traffic={"good": {"batch": {1: 1}}}, baseline=str(tmp_path / "base"), peak_tflops={"fp32": 1.5})
    inputs = SummaryInputs.from_sweep(validate(config))
    args = build_parser().parse_args(["summarize", *shlex.split(inputs.to_args()), "--out-dir", str(tmp_path)])
    back = summary_inputs.from_args(args)
    assert back.to_args() == inputs.to_args()  # JSON keys come back as strings, as they always did
    assert (back.objectives, back.baseline, back.peaks, back.models) == (inputs.objectives, inputs.baseline, {"fp32": 1.5}, ["good"])
    assert back.bench == inputs.bench and len(inputs.bench) > 0 and len(inputs.timings) == len(inputs.bench)


def test_the_rules_take_every_path_from_the_layout():
    """No rule file spells a results path: each comes from trtpipe.layout."""
    rules = Path(__file__).resolve().parents[1] / "workflow" / "rules"
    for smk in rules.glob("*.smk"):
        text = smk.read_text()
        assert "/onnx/" not in text and "/bench/" not in text and "/engines/" not in text and "/logs/" not in text, smk
    assert Layout("r").engine.partial(suffix="onnx").engine == "r/{model}/engines/{backend}/{variant}.{precision}.{profile}.onnx"


# --- import cycles ---------------------------------------------------------------------------------------------
def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> package modules it imports, at module level or inside functions alike."""
    modules = {".".join(("trtpipe", *f.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): f
               for f in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[module] |= {t for t in targets if t in modules and t != module and t != package}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph(PACKAGE)) == []


def test_the_cycle_check_sees_a_cycle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "trtpipe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("x = 1\ndef f():\n    from . import a\n")
    assert cycles(import_graph(pkg)) == [["trtpipe.a", "trtpipe.b"]]


def test_the_readme_names_every_engine_and_benchmark_rule_and_backend():
    from trtpipe.backends import registry

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[2] for line in readme.splitlines()
            if line.startswith("| 5 engines") or line.startswith("| 6 benchmark")}
    backends = {line.split("|")[2].strip(" `"): line.split("|")[1] for line in readme.split("### Backends")[1].splitlines()
                if line.startswith("| ") and "`" in line.split("|")[2]}
    for family, members in registry.rules().items():
        assert f"`engine_{family}`" in rows["5 engines"] and f"`benchmark_{family}`" in rows["6 benchmark"], family
        assert sorted(backends[family].replace(",", " ").split()) == sorted(b.name for b in members), family
