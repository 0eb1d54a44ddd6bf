# trtpipe: PyTorch checkpoints -> ONNX (static + dynamic) -> simplified ONNX -> per-profile engines
# -> benchmark CSVs -> summary report. Rules are thin: each calls `python -m trtpipe <stage>`;
# all logic lives in workflow/trtpipe and is unit-tested without Snakemake.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from trtpipe import config as trtpipe_config  # noqa: E402  (needs the sys.path line above)
from trtpipe.errors import ConfigError  # noqa: E402
from trtpipe import failures as trtpipe_failures  # noqa: E402


# config.yaml is the default sweep; `--configfile other.yaml` replaces it rather than being merged into
# it (Snakemake would otherwise add the default's models to every other sweep). Its YAML is parsed here
# first, so that a syntax error is reported with the file, line and column (Snakemake's own message names
# neither). A file given with --configfile is read by Snakemake before this Snakefile runs: for those,
# `trtpipe validate-config FILE` says where a syntax error is.
if not workflow.overwrite_configfiles:
    try:
        trtpipe_config.check_yaml_syntax("config.yaml")
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None

    configfile: "config.yaml"



try:
    SWEEP = trtpipe_config.validate(config, source=", ".join(map(str, workflow.configfiles)) or "config")
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None


# What the config asks for but no backend of the sweep will build (bf16 on ONNX Runtime's CPU provider, say) is
# said once, at DAG time, before anything runs; the report says it again. Jobs started by an executor parse
# this file too, hence the main-process check.
if workflow.is_main_process:
    for note in [*trtpipe_failures.skipped_notes(SWEEP), *SWEEP.unbenchmarked_notes()]:
        print(f"trtpipe: {note}", file=sys.stderr)


include: "workflow/rules/common.smk"
include: "workflow/rules/checkpoint.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/simplify.smk"
include: "workflow/rules/precision.smk"
include: "workflow/rules/engines.smk"
include: "workflow/rules/benchmark.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/summary.smk"


rule all:
    input:
        SUMMARY_FILES,
        ENGINE_FILES,
    default_target: True


onsuccess:
    print(f"\ntrtpipe: done. Report: {Path(L.summary.html).resolve()}")


# One failed job must not cost the report of everything else. Snakemake cannot run the summary rule once an
# input of it failed, but it calls `onerror` once the run has failed, after --keep-going has run all it could
# (and after a Ctrl-C). The handler lists the failures with their sentences and writes the report over what
# finished, with a Failures section (model, stage, engine, sentence, log), to results/summary/partial (never over the
# summary rule's own outputs, which would make Snakemake take the sweep as done); the run still exits non-zero. It reads the failures back from the files (the outputs and logs of the layout's expected jobs,
# trtpipe/failures.py) rather than from Snakemake's internals or extra per-job status files: a failed trtpipe
# job always leaves its sentence in its log, and `trtpipe summarize --config` does the same by hand.
onerror:
    trtpipe_failures.write_partial_report(SWEEP, log)
