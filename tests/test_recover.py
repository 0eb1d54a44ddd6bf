"""Issue 23: a sweep that always recovers (the report after a failure never passes for a finished summary), and the
bad inputs that still got a traceback or a wrong fix get one sentence. docs/failures.md lists each case; the
Snakemake runs here are real ones over a temporary copy of the workflow."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import SNAKEMAKE, TEXT_MODEL, copy_workflow, snakemake, tiny_config
from trtpipe import io
from trtpipe.cli import main as trtpipe_main
from trtpipe.config import NAME_MAX, check_yaml_syntax, load_file, validate
from trtpipe.errors import ConfigError

LATIN1 = "models:\n  caf\xe9:\n    factory: trtpipe.zoo:tiny_text\n".encode("latin-1")  # 0xe9 at offset 13, line 2


# --- the config: a byte that is not UTF-8 --------------------------------------------------------------------
def test_a_byte_that_is_not_utf8_is_named_with_its_offset_and_line(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_bytes(LATIN1)
    expected = (f"{path}: the byte at offset 13 (line 2, column 6) is 0xe9, which is not UTF-8 (invalid continuation byte); fix: save "
                f"the file as UTF-8 (text pasted from a Latin-1 or Windows-1252 file is the usual cause).")
    for check in (check_yaml_syntax, load_file):
        with pytest.raises(ConfigError) as info:
            check(path)
        assert str(info.value) == expected
    assert trtpipe_main(["validate-config", str(path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"trtpipe validate-config: error: {expected}"


# --- the config: baseline -------------------------------------------------------------------------------------
def test_a_baseline_that_is_not_a_finished_sweep_is_refused_with_the_config(tmp_path):
    missing = tmp_path / "old-results"
    with pytest.raises(ConfigError) as info:
        validate({**tiny_config(), "baseline": str(missing)})
    assert str(info.value) == (
        f"config.yaml: baseline = {str(missing)!r} does not exist (looked for {missing}); fix: give an earlier sweep's "
        f"results folder or its summary/benchmarks.csv, or remove the baseline key.")
    missing.mkdir()
    with pytest.raises(ConfigError, match=r"is a folder without summary/benchmarks.csv \(not a finished sweep's"):
        validate({**tiny_config(), "baseline": str(missing)})
    (missing / "summary").mkdir()
    (missing / "summary" / "benchmarks.csv").write_text("model\n")
    assert validate({**tiny_config(), "baseline": str(missing)}).baseline == str(missing)
    assert validate({**tiny_config(), "baseline": str(missing / "summary" / "benchmarks.csv")}).baseline


# --- long model names ---------------------------------------------------------------------------------------
def test_a_model_name_too_long_for_its_files_is_refused_and_a_long_one_that_fits_works(tmp_path):
    longest = NAME_MAX - len(".pareto.png")
    assert validate(tiny_config(**{"m" * longest: TEXT_MODEL}))
    with pytest.raises(ConfigError) as info:
        validate(tiny_config(**{"m" * (longest + 1): TEXT_MODEL}))
    assert str(info.value) == (
        f"config.yaml: models.{'m' * 30}... is a model name of {longest + 1} characters, and its plot's file name "
        f"(results/summary/plots/{{model}}.pareto.png) would pass the file system's limit of 255 bytes; fix: shorten "
        f"the name to at most {longest} characters.")
    # a file whose own name fits always gets a temporary file beside it (its name was 255 + 25 bytes before)
    target = tmp_path / ("m" * 240 + ".pareto.png")
    io.write_text(target, "plot")
    assert target.read_text() == "plot" and os.listdir(tmp_path) == [target.name]
    leftover = tmp_path / f".{io._temp_stem(target, '.tmp')}.{io._HOST}-9999999.abcdefgh.tmp"
    leftover.write_text("half")  # a killed job's (pid 9999999 does not run): removed by the next write
    io.write_text(target, "again")
    assert os.listdir(tmp_path) == [target.name] and len(leftover.name) <= NAME_MAX


# --- batch sizes nothing times ----------------------------------------------------------------------------------
def test_batch_sizes_outside_every_profile_are_said_at_dag_time():
    config = {**tiny_config(), "batch_sizes": [1, 2, 64], "static_batch_sizes": []}
    sweep = validate(config)
    assert sweep.unbenchmarked_batches("tiny_text") == [64]
    assert sweep.unbenchmarked_notes() == [
        "not benchmarked: batch size(s) 64 of tiny_text (batch_sizes) lie outside every profile it is built for "
        "(dynamic profiles: latency 1-1, small 1-4) and no static engine of that batch is built; fix: add a profile "
        "that holds them to sweep.profiles (or the model's profiles), list them in static_batch_sizes, or drop them "
        "from batch_sizes."]
    assert validate({**config, "static_batch_sizes": [64]}).unbenchmarked_notes() == []  # its own static engine
    assert validate(tiny_config()).unbenchmarked_notes() == []


# --- the sweep that stayed stuck after one failed rerun (real Snakemake runs) -------------------------------------
def small_config(**extra) -> dict:
    """One tiny model, one precision, one profile: five jobs and a summary."""
    return {**tiny_config(), "batch_sizes": [1], "static_batch_sizes": [], "sweep": {"profiles": ["latency"]}, **extra}


ENGINE = "results/tiny_text/engines/onnxruntime/dynamic.fp32.latency.onnx"
BENCH = "results/tiny_text/bench/onnxruntime/dynamic.fp32.latency.csv"


@pytest.mark.workflow
def test_a_sweep_broken_after_it_finished_recovers_on_the_next_runs(tmp_path):
    """Full sweep; an engine cut short by hand; the rerun fails on it and writes the report of what finished (to
    summary/partial/, not over the summary rule's outputs); the run after that rebuilds the engine, times it again and
    writes the full report. Before: "Nothing to be done" in every later run, the report saying FAILED for ever."""
    workdir = copy_workflow(tmp_path, small_config())
    snakemake(workdir, "--cores", "2")
    summary, partial = workdir / "results/summary", workdir / "results/summary/partial"
    assert (summary / "report.md").exists() and not partial.exists()
    engine = workdir / ENGINE
    size = engine.stat().st_size
    engine.write_bytes(engine.read_bytes()[: size // 2])  # a copy that stopped half way

    failed = snakemake(workdir, "--cores", "2", check=False)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    sentence = (f"{ENGINE} has {size // 2} bytes, but its build wrote {size} (its sidecar's engine_bytes): it was cut "
                f"short or altered after the build, so it was removed; fix: run the workflow again")
    assert f"tiny_text benchmark onnxruntime dynamic fp32 latency: {sentence}" in out, out[-3000:]
    report = (partial / "report.md").read_text()
    assert "## Failures" in report and sentence in report
    assert not engine.exists() and not (workdir / BENCH).exists()
    assert not [p for p in summary.iterdir() if p.is_file() and p.suffix in (".md", ".html", ".csv")]  # no stale summary
    assert "Nothing to be done" not in snakemake(workdir, "-n", "--cores", "2").stdout

    snakemake(workdir, "--cores", "2")
    assert engine.stat().st_size == size and (workdir / BENCH).exists()
    full = (summary / "report.md").read_text()
    assert "## Failures" not in full and "| tiny_text | ok |" in full and not partial.exists()
    assert "Nothing to be done" in snakemake(workdir, "-n", "--cores", "2").stdout

    engine.unlink()  # an engine deleted between runs is rebuilt and timed again, not listed from the old CSV
    rebuilt = snakemake(workdir, "--cores", "2")
    assert engine.exists() and "engine_onnxruntime" in rebuilt.stdout + rebuilt.stderr


@pytest.mark.workflow
def test_ctrl_c_prints_one_line_per_job_and_no_traceback(tmp_path):
    """Ctrl-C at a terminal sends SIGINT to Snakemake and its jobs (one process group). Before: each trtpipe job printed
    a 30-line KeyboardInterrupt traceback (torch's import frames). The next run redoes the interrupted job."""
    workdir = copy_workflow(tmp_path, small_config())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # as at a terminal: SIGINT at its default (a test run started in the background by a non-interactive shell
    # inherits it ignored, and Snakemake and its jobs would then run on, never told)
    proc = subprocess.Popen([*SNAKEMAKE, "--cores", "2"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = workdir / "results/tiny_text/logs/checkpoint.log"  # the first job's log: it is running
    deadline = time.monotonic() + 120
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # inside its imports (torch), where the traceback came from
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert out.count("interrupted (Ctrl-C); nothing was written") == 1, out
    assert "tiny_text checkpoint: did not finish (interrupted or killed)" in out
    assert not (workdir / "results/tiny_text/checkpoint.pt").exists() and not list(workdir.rglob("*.tmp"))


@pytest.mark.workflow
def test_a_config_byte_that_is_not_utf8_is_one_sentence_from_snakemake(tmp_path):
    """config.yaml is read by the Snakefile, which says file, offset, line and fix (before: a 48-line traceback ending
    in UnicodeDecodeError, naming no file). A --configfile is read by Snakemake itself before any workflow code runs;
    trtpipe validate-config names the byte there."""
    workdir = copy_workflow(tmp_path, small_config())
    (workdir / "config.yaml").write_bytes(LATIN1)
    proc = snakemake(workdir, "-n", "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out and "UnicodeDecodeError" not in out, out
    assert ("config.yaml: the byte at offset 13 (line 2, column 6) is 0xe9, which is not UTF-8 (invalid continuation "
            "byte); fix: save the file as UTF-8") in out


# --- models: a checkpoint that does not fit, factory_kwargs that do not fit -----------------------------------------
def _spec(factory, checkpoint=None, **kwargs):
    model = {"factory": factory, "inputs": [{"name": "x", "shape": [8]}], "factory_kwargs": kwargs}
    if checkpoint:
        model["checkpoint"] = str(checkpoint)
    return validate(tiny_config(m=model)).models["m"]


def test_a_checkpoint_that_does_not_fit_is_told_what_its_keys_show(repo_cwd, tmp_path):
    import torch

    from trtpipe.models import build_model
    from trtpipe.errors import TrtpipeError

    linear = build_model(_spec("tests/data/user_models.py:tiny_linear"), None)
    cases = {
        "other.pt": (build_model(_spec("tests/data/user_models.py:tiny_conv"), None).state_dict(),
                     "the keys name other layers: a checkpoint of another architecture, or of other factory settings; "
                     "fix: use the factory (and models.m.factory_kwargs) the checkpoint was saved from"),
        "parallel.pt": (torch.nn.DataParallel(linear).state_dict(),
                        "the keys are the model's with a prefix 'module.' the checkpoint has (left by DataParallel or "
                        "DistributedDataParallel); fix: strip it and re-save: "
                        "torch.save({k.removeprefix('module.'): v for k, v in state.items()}, path)"),
    }
    for name, (state, cause) in cases.items():
        torch.save(state, tmp_path / name)
        with pytest.raises(TrtpipeError) as info:
            build_model(_spec("tests/data/user_models.py:tiny_linear", tmp_path / name), tmp_path / name)
        assert cause in str(info.value), name
        assert ("DataParallel" in str(info.value)) == (name == "parallel.pt")


def test_a_factory_kwargs_typo_names_the_key_and_the_factorys_parameters(repo_cwd):
    from trtpipe.models import build_model
    from trtpipe.errors import TrtpipeError

    with pytest.raises(TrtpipeError) as info:
        build_model(_spec("trtpipe.zoo:tiny_text", vocab_sise=50), None)
    assert str(info.value) == (
        "model m: models.m.factory_kwargs = {'vocab_sise': 50} does not fit the factory trtpipe.zoo:tiny_text(vocab_size=1000, "
        "dim=32, heads=2, max_len=128, num_classes=4): got an unexpected keyword argument 'vocab_sise'; fix: correct or "
        "remove that key in factory_kwargs.")


def test_calibration_data_with_fewer_samples_than_the_batch_is_said(repo_cwd, tmp_path, caplog):
    import numpy as np

    from helpers import USER_MODEL
    from trtpipe.precision import calibration_inputs
    from trtpipe.report.sections import _calibration_text

    spec = validate(tiny_config(user=USER_MODEL)).models["user"]
    path = tmp_path / "calib.npz"
    np.savez(path, features=np.random.default_rng(0).normal(size=(10, 6)), category=np.arange(10) % 5)
    with caplog.at_level("WARNING"):
        arrays, source = calibration_inputs(spec, 16, str(path), 32, 0)
    assert arrays["features"].shape == (16, 6) and source["repeated_to"] == 16
    assert (f"model user: calibration data {path} has 10 sample(s), fewer than the static batch 16, so they are repeated "
            f"to fill one batch (the ranges come from 10 sample(s) only); fix: give at least 16 samples") in caplog.text
    assert _calibration_text(source) == f"{path} (10 samples, REPEATED to fill a batch of 16: fewer samples than the batch)"
    caplog.clear()
    _, enough = calibration_inputs(spec, 4, str(path), 32, 0)
    assert "repeated_to" not in enough and "fewer than the static batch" not in caplog.text


# --- the TorchScript exporter: a value frozen by the trace is the cause the check names ----------------------------
def test_a_value_frozen_by_the_trace_is_named_as_the_cause_of_the_failed_check(repo_cwd, tmp_path):
    """int(x.shape[0]) under export.exporter: torchscript: the tracer's warning was only in the export's log, and the
    check (another job) blamed a Reshape or a hard-coded batch. The dynamo export of the same model leaves no note."""
    from trtpipe.check import check_export
    from trtpipe.errors import DynamicExportError
    from trtpipe.export import export_onnx
    from trtpipe.reference import make_reference
    from trtpipe.spec import DYNAMIC

    sweep = validate(tiny_config(traced={"factory": "tests/data/user_models.py:traced_batch",
                                         "inputs": [{"name": "x", "shape": [3, 4, 4]}]}))
    spec = sweep.models["traced"]
    make_reference(spec, None, sweep.reference_batches("traced"), tmp_path / "t.npz")
    line = next(i for i, text in enumerate(Path("tests/data/user_models.py").read_text().splitlines(), 1)
                if "return self.fc(x.reshape(int(x.shape[0])" in text)
    for exporter in ("torchscript", "dynamo"):
        export_onnx(spec, None, DYNAMIC, tmp_path / f"{exporter}.onnx", exporter=exporter)
        with pytest.raises(DynamicExportError) as info:
            check_export(tmp_path / f"{exporter}.onnx", spec, tmp_path / "t.npz", DYNAMIC, {"atol": 1e-4, "rtol": 1e-3},
                         dummy_batch=5)
        named = (f"requested shape:{{5,-1}}; suspect: Reshape '/Reshape' to constant [5, -1] contains 5 (the traced batch); "
                 f"cause: the TorchScript trace froze a value at tests/data/user_models.py:{line} (Converting a tensor "
                 f"to a Python integer might cause the trace to be incorrect), so the graph keeps what it computed for "
                 f"the traced input; fix: compute it with tensor operations")
        assert (named in str(info.value)) == (exporter == "torchscript"), str(info.value)
        assert str(info.value).count("fix:") == 1 and ("usual cause" in str(info.value)) == (exporter == "dynamo")


def test_the_console_names_the_config_used_and_a_failed_summary(tmp_path, capsys):
    """A run whose summary job failed (everything else done) said "0 job(s) failed", and the suggested command named
    config.yaml whatever file the run used."""
    from trtpipe import failures

    sweep = validate({**small_config(), "results": str(tmp_path / "results")}, source="sweeps/gpu.yaml")
    log = tmp_path / "results/summary/summary.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-12-05 03:00:00,000 ERROR trtpipe: results/summary/plots/x.png: File name too long\n")
    failures.write_partial_report(sweep, python="/bin/false")  # the report itself cannot be written either
    err = capsys.readouterr().err
    assert "trtpipe: 1 job(s) failed or did not finish:" in err
    assert f"  summary: results/summary/plots/x.png: File name too long (log: {log})" in err
    assert f"then run: trtpipe summarize --config sweeps/gpu.yaml --out-dir {tmp_path / 'results/summary/partial'}" in err


def test_a_report_by_hand_of_an_unfinished_sweep_is_kept_out_of_the_summarys_folder(tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({**small_config(), "results": str(tmp_path / "results")}))
    summary = tmp_path / "results/summary"
    from trtpipe.layout import expected_jobs

    jobs = len(expected_jobs(load_file(config)))  # none has run: checkpoint to benchmark
    assert trtpipe_main(["summarize", "--config", str(config), "--out-dir", str(summary)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"trtpipe summarize: error: --out-dir {summary} is where the summary rule writes, and {jobs} job(s) of this sweep are "
        f"not done: Snakemake would take this report for a finished summary and not rerun them; fix: use --out-dir "
        f"{summary / 'partial'}.")
    assert not summary.exists()
