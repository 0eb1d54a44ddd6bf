"""What a sweep expected, what finished, and what failed with which sentence: the report of a sweep that did
not finish, and the notes on what a sweep will not build at all.

A failed job leaves no output (Snakemake deletes it) but keeps its log, and the trtpipe CLI writes its one
sentence into that log as an ERROR line. So what failed, and why, can be read back after the run from the
expected jobs of the config alone: their outputs, their logs, and what they need. The Snakefile's
`onerror:` handler does that once the run has failed (`write_partial_report`), and so does
`trtpipe summarize --config config.yaml --out-dir results/summary/partial` by hand. The report is the summary rule's
own, built from the same SummaryInputs (of the jobs that finished), plus a Failures section.

This module is light on purpose (no pandas, no torch at import): the Snakefile imports it.
The jobs and their paths are the layout's (trtpipe.layout), which the rules take their paths from;
tests/test_workflow.py checks them against Snakemake's own dry run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends.registry import skip_reason
from .layout import Job, Layout, expected_jobs
from .summary_inputs import SummaryInputs


# The CLI's log format (cli.py): "2026-11-23 19:55:30,046 ERROR trtpipe: <the sentence>"
LOG_ERROR = re.compile(r"^\d{4}-\d\d-\d\d [\d:,.]+ ERROR [\w.]+: (.+)$")


def reason_from_log(path: str | Path) -> str | None:
    """The job's one sentence from its log (Snakemake deletes a job's log before it runs, so a log holds one run)."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [m.group(1) for line in lines if (m := LOG_ERROR.match(line))]
    if not errors:
        return None
    if errors[-1].startswith("unexpected failure"):
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        return f"unexpected failure ({last[:300]}); the trace is in the log"
    return errors[-1]


@dataclass
class Outcome:
    job: Job
    status: str  # done, failed, unfinished (a log without an error: interrupted or killed), not run, removed (an
    # output removed after it finished by a job that needs it and failed on it: that failure is the one reported)
    reason: str = ""
    blocked: bool = False  # not run because a job it (indirectly) needs failed or was cut off


def outcomes(sweep) -> list[Outcome]:
    """Each expected job's outcome, judged from the files alone.

    A job is done when its outputs exist, everything it needs is done, and its outputs are not older than
    what it read (so a stale output left from an earlier run, below a stage that failed now, is not
    reported as a result)."""
    jobs = expected_jobs(sweep)
    by_key = {j.key: j for j in jobs}
    # A job whose log says it failed after every job it needs had run: it ran, even where an input of it is gone now
    # (a benchmark removes an engine cut short after its build, so that the next run rebuilds it).
    failed_after = {j.key for j in jobs if os.path.exists(j.log) and reason_from_log(j.log) is not None
                    and all(os.path.getmtime(j.log) >= _mtime(by_key[n].log) for n in j.needs if n in by_key)}
    removed_by = {n: j for j in jobs if j.key in failed_after for n in j.needs}  # key -> the failed job that needs it
    done: dict[str, float] = {}  # key -> oldest output mtime
    result = []
    for job in jobs:  # stage order: what a job needs comes before it
        mtimes = [os.path.getmtime(o) for o in job.outputs if os.path.exists(o)]
        complete = len(mtimes) == len(job.outputs)
        missing_need = next((n for n in job.needs if n in by_key and n not in done), None)
        newest_need = max((_newest(by_key[n]) for n in job.needs if n in by_key), default=0.0)
        if complete and missing_need is None and min(mtimes) >= newest_need:
            done[job.key] = min(mtimes)
            result.append(Outcome(job, "done"))
        elif missing_need is not None and job.key in failed_after:
            result.append(Outcome(job, "failed", reason_from_log(job.log) or ""))
        elif not complete and mtimes and job.key in removed_by and reason_from_log(job.log) is None:
            user = removed_by[job.key]
            result.append(Outcome(job, "removed", f"an output was removed after it finished, by {user.stage} "
                                                  f"{user.artifact} (see its failure)"))
        elif missing_need is not None:  # it cannot have run: what it reads is missing
            need = by_key[missing_need]
            blocker = next((o for o in result if o.job.key == missing_need), None)
            blocked = blocker is not None and (blocker.status in ("failed", "unfinished") or blocker.blocked)
            result.append(Outcome(job, "not run", f"needs {need.stage} {need.artifact}".rstrip(), blocked))
        elif (reason := reason_from_log(job.log)) is not None:
            result.append(Outcome(job, "failed", reason))
        elif not complete and os.path.exists(job.log):
            result.append(Outcome(job, "unfinished", "did not finish (interrupted or killed): its log ends without an error"))
        else:
            result.append(Outcome(job, "not run", "the run stopped before it"))
    return result


def _mtime(path: str) -> float:
    return os.path.getmtime(path) if os.path.exists(path) else 0.0


def _newest(job: Job) -> float:
    return max((os.path.getmtime(o) for o in job.outputs if os.path.exists(o)), default=0.0)


def failure_rows(results: list[Outcome]) -> list[dict[str, Any]]:
    """Rows of the report's Failures table: every failed or unfinished job, then per model the jobs not run."""
    rows = [{"model": o.job.model, "stage": o.job.stage, "engine": o.job.artifact, "reason": o.reason, "log": o.job.log}
            for o in results if o.status in ("failed", "unfinished")]
    not_run: dict[tuple[str, bool], list[Outcome]] = {}
    for o in results:
        if o.status == "not run":
            not_run.setdefault((o.job.model, o.blocked), []).append(o)
    for (model, blocked), items in sorted(not_run.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        stages = list(dict.fromkeys(o.job.stage for o in items))
        rows.append({
            "model": model, "stage": ", ".join(stages), "engine": f"{len(items)} job(s)",
            "reason": "not run: they need an output of a job that did not finish" if blocked else
                      "not run: the run stopped before them (or they failed before writing a log: see Snakemake's log)",
            "log": "",
        })
    return rows


def finished_inputs(sweep, results: list[Outcome]) -> SummaryInputs:
    """The summary rule's inputs among what is done, with the failure rows."""
    return SummaryInputs.from_sweep(sweep, jobs=[o.job for o in results if o.status == "done"],
                                    failures=failure_rows(results))


def summarize_sweep(sweep, out_dir: str | Path) -> list[dict[str, Any]]:
    """The report over whatever finished, with a Failures section; returns the failure rows."""
    from .report.summary import write_summary  # pandas and the report: not at the Snakefile's import

    inputs = finished_inputs(sweep, outcomes(sweep))
    write_summary(inputs, out_dir)
    return inputs.failures


# The report after a failure lives in its own folder, never among the summary rule's outputs: Snakemake would take
# those for a finished summary, and then a missing input of it for an intermediate file it need not remake (the
# sweep stayed stuck, "Nothing to be done", after one failed rerun). The summary rule removes the folder once it
# has written the full report.
PARTIAL_DIR = "partial"


def partial_dir(summary_dir: str | Path) -> Path:
    return Path(summary_dir) / PARTIAL_DIR


def summary_outputs(sweep) -> list[Path]:
    """The summary rule's outputs (the layout's, with the comparison's whether or not there is a baseline)."""
    layout = Layout(sweep.results)
    plots = [p.format(model=m) for m in sweep.models for p in (layout.plot, layout.pareto_plot)]
    return [Path(p) for p in (*layout.summary.paths().values(), *layout.compare.paths().values(), *plots)]


def refuse_summary_dir(sweep, out_dir: str | Path) -> None:
    """`trtpipe summarize --config` by hand: a report of a sweep that did not finish must not land among the summary
    rule's outputs either (see PARTIAL_DIR)."""
    from .errors import TrtpipeError

    summary = Path(Layout(sweep.results).summary_dir)
    if Path(out_dir).resolve() != summary.resolve():
        return
    unfinished = [o for o in outcomes(sweep) if o.status != "done"]
    if unfinished:
        raise TrtpipeError(f"--out-dir {out_dir} is where the summary rule writes, and {len(unfinished)} job(s) of this "
                           f"sweep are not done: Snakemake would take this report for a finished summary and not "
                           f"rerun them; fix: use --out-dir {partial_dir(summary)}.")


def write_partial_report(sweep, snakemake_log: str | None = None, python: str = sys.executable) -> None:
    """See _write_partial_report; never raises: Snakemake's own failure report and exit status come first."""
    try:
        _write_partial_report(sweep, snakemake_log, python)
    except Exception as exc:  # noqa: BLE001 - an onerror handler must not mask the run's own error
        print(f"trtpipe: the report of what finished could not be written ({type(exc).__name__}: {exc}); fix: run "
              f"trtpipe summarize --config {_config_file(sweep)} --out-dir {partial_dir(Layout(sweep.results).summary_dir)}",
              file=sys.stderr)


def _config_file(sweep) -> str:
    """The config file the sweep was read from, as a command line names it."""
    return sweep.source if sweep.source and "," not in sweep.source else "config.yaml"


def _write_partial_report(sweep, snakemake_log: str | None, python: str) -> None:
    """Snakefile `onerror:`: list what failed on the console and write the report over what finished.

    The report goes to results/summary/partial/. A full summary left by an earlier run no longer describes the
    files (a job failed that it counted as done, or that it did not know): it is removed, so that the next run
    runs the summary rule and with it every job it needs, the failed ones included."""
    results = outcomes(sweep)
    rows = failure_rows(results)
    failed = [r for r in rows if r["log"]]
    layout = Layout(sweep.results)
    out_dir = partial_dir(layout.summary_dir)
    summary_log = Path(layout.summary.log)  # the summary job's own failure (its inputs all done)
    summary_failed = reason_from_log(summary_log) if not failed else None
    print(f"\ntrtpipe: {len(failed) + bool(summary_failed)} job(s) failed or did not finish:", file=sys.stderr)
    for r in failed:
        label = " ".join(x for x in (r["model"], r["stage"], r["engine"]) if x)
        print(f"  {label}: {r['reason']} (log: {r['log']})", file=sys.stderr)
    for r in rows:
        if not r["log"]:
            print(f"  {r['model']}: {r['engine']} {r['reason']}", file=sys.stderr)
    if summary_failed:
        print(f"  summary: {summary_failed} (log: {summary_log})", file=sys.stderr)
    for path in summary_outputs(sweep):
        path.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = out_dir / ".partial-config.json"
    config.write_text(json.dumps(sweep.raw, default=str))
    package = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": package + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}
    proc = subprocess.run([python, "-m", "trtpipe", "summarize", "--config", str(config), "--out-dir", str(out_dir),
                           "--log", str(out_dir / "summary.log")], env=env, capture_output=True, text=True)
    config.unlink(missing_ok=True)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"trtpipe: the report of what finished could not be written ({detail}); fix: see {out_dir / 'summary.log'}, "
              f"then run: trtpipe summarize --config {_config_file(sweep)} --out-dir {out_dir}", file=sys.stderr)
        return
    print(f"trtpipe: report of what finished, with a Failures section: {(out_dir / 'report.html').resolve()} (the next "
          f"run retries what failed and writes the full report to {Path(layout.summary_dir).resolve()})",
          file=sys.stderr)


# --- what a sweep will not build -------------------------------------------------------------------
def skipped_notes(sweep) -> list[str]:
    """One line per (backend, precision) the config asks for but will not build, with why and what then
    still exists; printed once at DAG time by the Snakefile."""
    by_pair: dict[tuple[str, str], list[str]] = {}
    for m in sweep.models:
        for backend, precision in sweep.skipped_targets(m):
            by_pair.setdefault((backend, precision), []).append(m)
    notes = []
    for (backend, precision), models in sorted(by_pair.items()):
        onnx_made = [m for m in models if precision in sweep.precision_onnx_needed(m)]
        builders = [b for b in sweep.backends if precision in sweep.backend_precisions(b)]
        also = (f"; the {precision} precision ONNX is still made for {', '.join(builders)}" if onnx_made else
                f"; nothing {precision} is built at all (no backend of the sweep runs it): add tensorrt or a torch_* "
                f"backend to sweep.backends, or drop {precision} from the precisions" if not builders else "")
        notes.append(f"not built: {precision} engines on {backend} for {', '.join(models)} "
                     f"({skip_reason(backend, precision)}){also}.")
    return notes
