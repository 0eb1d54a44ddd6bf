"""What the summary reads: one value, built from the sweep in one place, for the summary rule and for the report
written after a failure alike, so the two reports cannot differ but for the Failures section.

The summary rule passes it to `trtpipe summarize` as command-line arguments (`to_args`), the CLI reads it back
(`add_arguments`, `from_args`), and the failure path (trtpipe.failures) builds it from the jobs that finished.
A report section that needs a new input adds a field here (and says in `from_sweep` where its value comes from).

Light on purpose (no pandas): the Snakefile imports it.
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from .layout import Job, expected_jobs, summary_files

FILE_FIELDS = ("bench", "accuracy", "simplify_stats", "precision_stats", "flops", "sensitivity")  # --bench a.csv b.csv ...
JSON_FIELDS = ("skipped", "peaks", "objectives", "traffic", "compare_settings", "models", "accept")  # --objectives '{...}'


@dataclass(frozen=True)
class SummaryInputs:
    bench: tuple[str, ...] = ()  # benchmark CSVs
    accuracy: tuple[str, ...] = ()  # parity CSVs of every stage
    simplify_stats: tuple[str, ...] = ()
    precision_stats: tuple[str, ...] = ()
    flops: tuple[str, ...] = ()  # the reference stage's flops.json per model
    sensitivity: tuple[str, ...] = ()  # the sensitivity stage's rankings (JSON) per model
    accept: dict[str, dict[str, float]] = field(default_factory=dict)  # {model: {metric: threshold}} of the pick
    skipped: dict[str, list[list[str]]] = field(default_factory=dict)  # {model: [[backend, precision], ...]} not built
    peaks: dict[str, float] = field(default_factory=dict)  # peak TFLOP/s per precision, over the datasheet table
    objectives: dict[str, dict[str, float]] = field(default_factory=dict)  # {model: {p99_latency_ms, min_throughput}}
    traffic: dict[str, dict] = field(default_factory=dict)  # {model: {"batch": {size: weight}}}
    baseline: str | None = None  # an earlier sweep to compare against
    compare_settings: dict[str, float] = field(default_factory=dict)
    models: list[str] | None = None  # every model of the sweep (None: the models the files name)
    # Rows of trtpipe.failures.failure_rows from a run that did not finish; None: the files given are all there is
    failures: list[dict[str, Any]] | None = None
    # the raw timings of the benchmarks: read by the comparison against a baseline, not by the report itself
    timings: tuple[str, ...] = ()

    @classmethod
    def from_sweep(cls, sweep, jobs: list[Job] | None = None, failures: list[dict[str, Any]] | None = None
                   ) -> "SummaryInputs":
        """The sweep's summary inputs: every expected job's, or those of `jobs` (the ones that finished)."""
        files = summary_files(expected_jobs(sweep) if jobs is None else jobs)
        return cls(
            **{f: tuple(files[f]) for f in FILE_FIELDS},
            skipped={m: [list(t) for t in sweep.skipped_targets(m)] for m in sweep.models},
            peaks=dict(sweep.peak_tflops), objectives=dict(sweep.objectives), traffic=dict(sweep.traffic),
            baseline=sweep.baseline, compare_settings=dict(sweep.compare) if sweep.baseline else {},
            models=list(sweep.models), failures=failures, accept={m: sweep.quantize_accept(m) for m in sweep.models},
            timings=tuple(files["timings"]) if sweep.baseline else (),
        )

    def input_files(self) -> dict[str, list[str]]:
        """The files the summary rule waits for, by kind."""
        return {f: list(getattr(self, f)) for f in (*FILE_FIELDS, "timings")}

    def to_args(self) -> str:
        """`trtpipe summarize`'s arguments, shell-quoted, deterministic (Snakemake params)."""
        args: list[str] = []
        for f in FILE_FIELDS:
            args += [_flag(f), *getattr(self, f)]
        for f in JSON_FIELDS:
            value = getattr(self, f)
            if value is not None:
                args += [_flag(f), json.dumps(value, sort_keys=True, separators=(",", ":"))]
        if self.baseline:
            args += [_flag("baseline"), self.baseline]
        return shlex.join(args)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`trtpipe summarize`'s options for every field the summary rule passes."""
    helps = {
        "bench": "benchmark CSVs", "accuracy": "parity CSVs", "simplify_stats": "simplify stage stats (JSON)",
        "precision_stats": "precision stage stats (JSON)", "flops": "flops.json files of the reference stage",
        "sensitivity": "sensitivity rankings (JSON) of the sensitivity stage",
        "accept": 'JSON {model: {metric: threshold}} the pick must meet',
        "skipped": 'JSON {model: [[backend, precision], ...]} of engines not built',
        "peaks": "JSON peak TFLOP/s per precision, overriding the datasheet table",
        "objectives": 'JSON {model: {"p99_latency_ms": ..., "min_throughput": ...}}',
        "traffic": 'JSON {model: {"batch": {size: weight}}}', "compare_settings": 'JSON {"alpha": ..., "min_effect": ...}',
        "models": "JSON list of every model of the sweep (default: the models the files name)",
    }
    for f in FILE_FIELDS:
        parser.add_argument(_flag(f), nargs="*", default=[], help=helps[f])
    for f in JSON_FIELDS:
        parser.add_argument(_flag(f), type=json.loads, default=None, help=helps[f])
    parser.add_argument("--baseline", help="an earlier sweep (results folder or summary/benchmarks.csv) to compare against")


def from_args(args: argparse.Namespace) -> SummaryInputs:
    given = {f: tuple(getattr(args, f)) for f in FILE_FIELDS}
    given.update({f: getattr(args, f) for f in JSON_FIELDS if getattr(args, f) is not None})
    return SummaryInputs(**given, baseline=args.baseline)


__all__ = ["SummaryInputs", "add_arguments", "from_args"]
