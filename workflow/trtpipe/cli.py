"""`python -m trtpipe <stage> ...`: every Snakemake rule is one of these commands, and a user can run
any of them by hand.

Progress goes to the job's log (--log); a user error ends the command with one sentence on stderr
and exit status 2, so Snakemake's own output shows what to fix.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import summary_inputs
from .errors import TrtpipeError

log = logging.getLogger("trtpipe")


def _batches(text: str) -> list[int]:
    return sorted({int(b) for b in text.split(",") if b.strip()})


def _spec(args):
    from .spec import ModelSpec

    return ModelSpec.from_json(args.model_spec)


def cmd_validate_config(args) -> None:
    from .config import load_file

    sweep = load_file(args.config)
    print(f"{args.config}: valid; {len(sweep.models)} model(s): {', '.join(sweep.models)}")


def cmd_checkpoint(args) -> None:
    from .models import write_seeded_checkpoint

    spec = _spec(args)
    n = write_seeded_checkpoint(spec, args.out)
    log.info("wrote seeded checkpoint %s (%s parameters, seed %d)", args.out, f"{n:,}", spec.seed)


def cmd_reference(args) -> None:
    from .reference import make_reference

    make_reference(_spec(args), args.checkpoint, _batches(args.batches), args.out, args.flops_out)


def cmd_export(args) -> None:
    from .export import export_onnx

    export_onnx(_spec(args), args.checkpoint, _variant(args.variant), args.out, args.exporter, args.opset, args.dummy_batch)


def cmd_check_export(args) -> None:
    from .check import check_export
    from .io import write_json
    from .parity import write_rows

    rows, report = check_export(args.onnx, _spec(args), args.reference, _variant(args.variant), json.loads(args.tolerance), args.dummy_batch)
    write_rows(args.accuracy_out, rows)
    write_json(args.report_out, report)


def cmd_simplify(args) -> None:
    from .io import write_json
    from .parity import write_rows
    from .simplify import simplify

    rows, stats = simplify(args.onnx, args.out, _spec(args), args.reference, _variant(args.variant), args.tool,
                           json.loads(args.tolerance), args.dummy_batch)
    write_rows(args.accuracy_out, rows)
    write_json(args.stats_out, stats)


def cmd_precision(args) -> None:
    from .io import write_json
    from .parity import first_failure, write_rows
    from .precision import check_precision, convert

    spec = _spec(args)
    stats = convert(args.onnx, args.out, spec, _variant(args.variant), args.precision, json.loads(args.options), args.calibration_data,
                    json.loads(args.quantize_options), args.sensitivity)
    rows, runtime = check_precision(args.out, spec, args.reference, _variant(args.variant), args.precision, json.loads(args.tolerance))
    failed = first_failure(rows)
    stats.update(parity_runtime=runtime, passed=failed is None)
    if failed:
        stats["warnings"].append(
            f"{args.precision} fails its tolerance: output {failed['output']!r} at {failed['case']} has max abs err "
            f"{failed['max_abs_err']:.3g}, cosine {failed['cosine']:.4f} on seeded random inputs; it is excluded from the best "
            f"configuration unless the model's samples and thresholds judge it (Accuracy on your data)"
        )
        log.warning("%s", stats["warnings"][-1])
    write_rows(args.accuracy_out, rows)
    write_json(args.stats_out, stats)


def cmd_sensitivity(args) -> None:
    import pandas as pd

    from .io import write_csv, write_json
    from .precision import sensitivity_ranking

    result = sensitivity_ranking(args.onnx, _spec(args), _variant(args.variant), json.loads(args.options),
                                 json.loads(args.quantize_options), args.calibration_data)
    write_csv(args.csv_out, pd.DataFrame([{"model": result["model"], "variant": result["variant"], **r} for r in result["nodes"]]))
    write_json(args.out, result)


def cmd_build_engine(args) -> None:
    from .engine import build_engine
    from .parity import write_rows
    from .spec import Profile

    profiles = [Profile.from_dict(p) for p in json.loads(args.profiles)]
    rows = build_engine(
        args.backend, args.source, args.engine_out, args.sidecar_out, _spec(args), _variant(args.variant), args.precision,
        profiles, json.loads(args.options), args.reference, json.loads(args.tolerance),
    )
    write_rows(args.accuracy_out, rows)


def cmd_benchmark(args) -> None:
    from .benchmark import benchmark_engine
    from .defaults import with_defaults
    from .io import write_csv
    from .timing import TimingSettings
    from .timings import timings_path, write_timings

    settings = with_defaults("benchmark", json.loads(args.settings))
    # One thread per core the job owns and the machine has (a backend's own thread setting wins).
    threads = min(args.threads, len(os.sched_getaffinity(0)))
    timings: dict = {}
    frame = benchmark_engine(args.engine, args.sidecar, _spec(args), _batches(args.batches),
                             TimingSettings.from_config(settings), settings["input_sets"], threads,
                             args.profile, json.loads(args.backend_options), args.backend, timings=timings)
    write_csv(args.out, frame)
    write_timings(args.timings_out or timings_path(args.out), timings)  # atomic, like the CSV


def _metric(args):
    from .metrics import Metric

    value = json.loads(args.metric)
    return Metric(**value) if value else None


def cmd_data_reference(args) -> None:
    from .evaluate import make_data_reference

    make_data_reference(_spec(args), args.checkpoint, json.loads(args.samples), args.calibrate, args.calibration_data,
                        args.min_samples, args.out, args.calibration_out)


def cmd_evaluate_onnx(args) -> None:
    from .evaluate import evaluate_onnx
    from .parity import write_rows

    artifacts = [tuple(a) for a in json.loads(args.artifacts)]
    rows = evaluate_onnx(_spec(args), _variant(args.variant), artifacts, args.data, _metric(args),
                         json.loads(args.accept), json.loads(args.tolerances))
    write_rows(args.out, rows)


def cmd_evaluate_engine(args) -> None:
    from .evaluate import evaluate_engine
    from .parity import write_rows
    from .spec import Profile

    profiles = [Profile.from_dict(p) for p in json.loads(args.profiles)]
    rows = evaluate_engine(args.backend, args.engine, args.sidecar, _spec(args), _variant(args.variant), args.precision,
                           profiles, json.loads(args.options), args.data, _metric(args), json.loads(args.accept),
                           json.loads(args.tolerance))
    write_rows(args.out, rows)


def cmd_compare(args) -> int:
    from .compare import run

    return run(args)  # 1 when any row is a regression, else 0; input problems raise CompareInputError (status 2)


def cmd_summarize(args) -> None:
    if args.config:  # whatever finished of this config's sweep, with what failed (trtpipe/failures.py)
        from .config import load_file
        from .failures import refuse_summary_dir, summarize_sweep

        sweep = load_file(args.config)
        refuse_summary_dir(sweep, args.out_dir)
        summarize_sweep(sweep, args.out_dir)
    else:
        import shutil

        from .failures import partial_dir
        from .report.summary import write_summary
        from .summary_inputs import from_args

        write_summary(from_args(args), args.out_dir)
        shutil.rmtree(partial_dir(args.out_dir), ignore_errors=True)  # the report after a failure, now superseded
    print(f"report: {Path(args.out_dir) / 'report.html'}")


def _variant(text: str):
    from .spec import Variant

    try:
        return Variant.parse(text)
    except ValueError:
        raise TrtpipeError(f"--variant {text!r} is not a variant; fix: use static-bN (N a batch size) or dynamic.") from None


def _gpu_for(args):
    """GPU jobs (engine builds and benchmarks of GPU backends) claim a GPU of their own first: exclusively for a
    build that times kernels, shared for one that does not and for a benchmark, whose timing alone then takes
    the GPU (and the machine) to itself (trtpipe.machine.alone)."""
    import contextlib

    from . import machine
    from .gpu import claim_gpu

    if args.command not in ("build-engine", "benchmark", "evaluate-engine"):
        return contextlib.nullcontext()
    backend, options = _backend_of(args)
    if not backend.needs_gpu(options):
        return contextlib.nullcontext()
    build = args.command == "build-engine"
    # a confined compile runs beside GPU timings (trtpipe.machine): its GPU without a claim
    side = build and backend.compiles and backend.build_shares_gpu(options) and bool(machine.kept_cores())
    return claim_gpu(shared=not build or backend.build_shares_gpu(options), side=side)


def _backend_of(args):
    from .backends import registry

    backend = registry.get(args.backend)
    return backend, backend.with_defaults(json.loads(args.options if args.command != "benchmark" else args.backend_options))


def _confined(args) -> bool:
    """Whether this command keeps off the cores kept for GPU timings: everything but a CPU timing (it times on every
    core) and a build made for the cores that time it (torch.compile on the CPU)."""
    if args.command not in ("build-engine", "benchmark"):
        return True
    backend, options = _backend_of(args)
    if args.command == "benchmark":
        return backend.needs_gpu(options)
    return not backend.builds_on_bench_cores(options)


def build_parser() -> argparse.ArgumentParser:
    from .defaults import value as default

    parser = argparse.ArgumentParser(prog="trtpipe", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, fn, help_text, model=True, add_help=True):
        p = sub.add_parser(name, help=help_text, add_help=add_help)
        p.set_defaults(fn=fn)
        p.add_argument("--log", help="append progress to this file (default: stderr)")
        if model:
            p.add_argument("--model-spec", required=True, help="the model's spec as JSON (see trtpipe.spec.ModelSpec)")
        return p

    p = command("validate-config", cmd_validate_config, "validate a config file", model=False)
    p.add_argument("config")

    p = command("checkpoint", cmd_checkpoint, "write a deterministic seeded checkpoint for a factory model")
    p.add_argument("--out", required=True)

    p = command("reference", cmd_reference, "PyTorch reference inputs/outputs for every later parity check")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batches", required=True, help="comma-separated batch sizes")
    p.add_argument("--out", required=True)
    p.add_argument("--flops-out", help="also count the model's FLOPs per sample into this JSON")

    p = command("export", cmd_export, "export one ONNX variant (static-bN or dynamic)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--exporter", choices=["dynamo", "torchscript"], default=default("export", "exporter"))
    p.add_argument("--opset", type=int, default=default("export", "opset"))
    p.add_argument("--dummy-batch", type=int, default=default("export", "dummy_batch"))
    p.add_argument("--out", required=True)

    for name, fn, help_text in (
        ("check-export", cmd_check_export, "check an export against PyTorch; prove a dynamic export is dynamic"),
        ("simplify", cmd_simplify, "simplify an ONNX and check it against PyTorch"),
    ):
        p = command(name, fn, help_text)
        p.add_argument("--onnx", required=True)
        p.add_argument("--reference", required=True)
        p.add_argument("--variant", required=True)
        p.add_argument("--tolerance", required=True, help='JSON, e.g. {"atol": 1e-4, "rtol": 1e-3}')
        p.add_argument("--dummy-batch", type=int, default=default("export", "dummy_batch"))
        p.add_argument("--accuracy-out", required=True)
        if name == "check-export":
            p.add_argument("--report-out", required=True)
        else:
            p.add_argument("--tool", choices=["onnxsim", "onnxslim", "none"], default=default("simplify", "tool"))
            p.add_argument("--out", required=True)
            p.add_argument("--stats-out", required=True)

    p = command("precision", cmd_precision, "convert a simplified ONNX to fp16/bf16 (AutoCast) or int8/fp8 (Q/DQ PTQ)")
    p.add_argument("--onnx", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--precision", required=True,
                   help="fp16, bf16 (AutoCast), int8, fp8 (ModelOpt Q/DQ), int8-ort-... (onnxruntime.quantization)")
    p.add_argument("--options", default="{}", help="the config's precision settings as JSON")
    p.add_argument("--quantize-options", default="{}", help="the config's quantize settings as JSON")
    p.add_argument("--sensitivity", help="the sensitivity ranking (JSON) a -mixed precision keeps nodes in float by")
    p.add_argument("--calibration-data", help=".npz of real sample inputs: one part calibrates, the rest evaluates "
                                              "(else seeded random inputs)")
    p.add_argument("--reference", required=True)
    p.add_argument("--tolerance", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--accuracy-out", required=True)
    p.add_argument("--stats-out", required=True)

    p = command("sensitivity", cmd_sensitivity, "rank quantizable nodes by the metric's loss when each alone is int8")
    p.add_argument("--onnx", required=True, help="the fp32 (simplified) ONNX")
    p.add_argument("--variant", required=True)
    p.add_argument("--options", default="{}", help="the config's precision settings as JSON")
    p.add_argument("--quantize-options", default="{}",
                   help="the config's quantize settings as JSON, with the model's metric and accept (the judge)")
    p.add_argument("--calibration-data", help=".npz of real sample inputs (else seeded random inputs)")
    p.add_argument("--out", required=True, help="the ranking as JSON")
    p.add_argument("--csv-out", required=True, help="the ranking as CSV")

    p = command("build-engine", cmd_build_engine, "build one engine for a profile, with its sidecar and parity")
    p.add_argument("--backend", required=True, help="a backend of the registry (trtpipe/backends/__init__.py)")
    p.add_argument("--source", required=True, help="the (precision) ONNX, or the checkpoint for the torch backends")
    p.add_argument("--variant", required=True)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--profiles", required=True,
                   help='JSON list: [{"name": ..., "min": 1, "opt": 4, "max": 32}, ...]; several go into one engine where the '
                        'backend allows it')
    p.add_argument("--options", default="{}", help="the backend's config section as JSON (defaults: the schema's)")
    p.add_argument("--reference", required=True)
    p.add_argument("--tolerance", required=True)
    p.add_argument("--engine-out", required=True)
    p.add_argument("--sidecar-out", required=True)
    p.add_argument("--accuracy-out", required=True)

    p = command("benchmark", cmd_benchmark, "time an engine at batch sizes inside its profile")
    p.add_argument("--backend", required=True, help="the engine's backend")
    p.add_argument("--engine", required=True)
    p.add_argument("--sidecar", required=True)
    p.add_argument("--batches", required=True)
    p.add_argument("--settings", default="{}", help="benchmark settings as JSON (see config.yaml: benchmark)")
    p.add_argument("--threads", type=int, default=0, help="cores this job owns (0: the backend decides)")
    p.add_argument("--profile", help="which of the engine's profiles to time (default: its first)")
    p.add_argument("--backend-options", default="{}", help="the backend's config section as JSON")
    p.add_argument("--out", required=True)
    p.add_argument("--timings-out", help="per-iteration timings (.timings.npz); default beside --out")

    p = command("data-reference", cmd_data_reference, "PyTorch on the model's own samples (held out from calibration)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--samples", required=True, help="the model's samples config as JSON (path, labels, calibration, ...)")
    p.add_argument("--calibrate", type=int, default=0, help="samples put aside for int8/fp8 calibration")
    p.add_argument("--calibration-data", help="the user's calibration .npz: samples found in it are not evaluated on")
    p.add_argument("--min-samples", type=int, default=1, help="the largest static batch: fewer held-out samples is an error")
    p.add_argument("--out", required=True)
    p.add_argument("--calibration-out", help="the calibration part of the samples, as an .npz of inputs")

    for name, fn, help_text in (
        ("evaluate-onnx", cmd_evaluate_onnx, "run a variant's ONNX files on the samples: parity and the task metric"),
        ("evaluate-engine", cmd_evaluate_engine, "run an engine on the samples: parity and the task metric"),
    ):
        p = command(name, fn, help_text)
        p.add_argument("--variant", required=True)
        p.add_argument("--data", required=True, help="data.npz of the data-reference stage")
        p.add_argument("--metric", default="null", help='JSON {"task": ..., "output": ..., "mask_input": ...} or null')
        p.add_argument("--accept", default="{}", help='JSON {score: minimum or {"max": value}}')
        p.add_argument("--out", required=True)
        if name == "evaluate-onnx":
            p.add_argument("--artifacts", required=True, help='JSON [[stage, precision, onnx path], ...]')
            p.add_argument("--tolerances", required=True, help="JSON {precision: tolerance}")
        else:
            p.add_argument("--backend", required=True)
            p.add_argument("--engine", required=True)
            p.add_argument("--sidecar", required=True)
            p.add_argument("--precision", required=True)
            p.add_argument("--profiles", required=True)
            p.add_argument("--options", default="{}")
            p.add_argument("--tolerance", required=True)

    # compare's own arguments are declared once, in trtpipe.compare (which imports pandas: only when it runs, see main)
    command("compare", cmd_compare, "compare two sweeps row by row: regression, improvement or noise", model=False,
            add_help=False)

    p = command("summarize", cmd_summarize, "summary CSVs, plots and report", model=False)
    summary_inputs.add_arguments(p)
    p.add_argument("--config", help="summarise whatever finished of this config's sweep and list what failed "
                                     "(instead of the inputs above)")
    p.add_argument("--out-dir", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Ctrl-C (SIGINT) ends a command with one line, not a traceback: its outputs were never moved into place
    (io.atomic_path), and its log ends without an error, which the failure read-back calls "did not finish"."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        log.info("interrupted (SIGINT)")
        print(f"trtpipe {' '.join((sys.argv[1:] if argv is None else argv)[:1])}: interrupted (Ctrl-C); nothing was "
              f"written", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "compare":
        from .compare import add_arguments

        add_arguments(argparse.ArgumentParser(prog="trtpipe compare")).parse_args(rest, namespace=args)
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    handler: logging.Handler = logging.FileHandler(args.log) if args.log else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    log.info("trtpipe %s", " ".join(sys.argv[1:] if argv is None else argv))
    from . import machine

    try:
        with machine.working(_confined(args)), _gpu_for(args):  # beside other jobs, never beside a timing of theirs
            status = args.fn(args)
    except TrtpipeError as exc:
        if args.log:  # keep the job log complete; on stderr the sentence is printed once, below
            log.error("%s", exc)
        print(f"trtpipe {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        log.exception("unexpected failure")
        if args.log:
            print(f"trtpipe {args.command}: unexpected failure; the trace is in {args.log}", file=sys.stderr)
        return 1
    return status or 0  # only compare returns a status (1: a regression); the other commands return None


if __name__ == "__main__":
    sys.exit(main())
