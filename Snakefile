# trtpipe: PyTorch checkpoints -> ONNX (static + dynamic) -> simplified ONNX -> per-profile engines
# -> benchmark CSVs -> summary report. Rules are thin: each calls `python -m trtpipe <stage>`;
# all logic lives in workflow/trtpipe and is unit-tested without Snakemake.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from trtpipe import config as trtpipe_config  # noqa: E402  (needs the sys.path line above)
from trtpipe.errors import ConfigError  # noqa: E402


# config.yaml is the default sweep; `--configfile other.yaml` replaces it rather than being merged into
# it (Snakemake would otherwise add the default's models to every other sweep).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"



try:
    SWEEP = trtpipe_config.validate(config, source=", ".join(map(str, workflow.configfiles)) or "config")
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None


include: "workflow/rules/common.smk"
include: "workflow/rules/checkpoint.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/simplify.smk"
include: "workflow/rules/precision.smk"
include: "workflow/rules/engines.smk"
include: "workflow/rules/benchmark.smk"
include: "workflow/rules/summary.smk"


rule all:
    input:
        SUMMARY_FILES,
    default_target: True


onsuccess:
    print(f"\ntrtpipe: done. Report: {Path(SWEEP.results, 'summary', 'report.html').resolve()}")
