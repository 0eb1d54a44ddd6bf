# Stage 7: the summary CSVs, plots and report; the outputs are also registered for `snakemake --report`.


rule summary:
    input:
        bench=BENCH_FILES,
        accuracy=ACCURACY_FILES + DATA_ACCURACY_FILES,
        stats=SIMPLIFY_STATS,
        precision_stats=PRECISION_STATS,
        flops=FLOPS_FILES,
        # the raw timings only matter when comparing against a baseline
        timings=TIMINGS_FILES if SWEEP.baseline else [],
    output:
        benchmarks=report(f"{R}/summary/benchmarks.csv", category="Summary", caption="../report/benchmarks.rst"),
        accuracy=report(f"{R}/summary/accuracy.csv", category="Summary", caption="../report/accuracy.rst"),
        markdown=f"{R}/summary/report.md",
        html=report(f"{R}/summary/report.html", category="Summary", caption="../report/report.rst"),
        plots=[report(p, category="Plots", caption="../report/plot.rst") for p in PLOTS],
        pareto=[report(p, category="Plots", caption="../report/plot.rst") for p in PARETO_PLOTS],
        compare=COMPARE_FILES,
    params:
        out_dir=lambda w, output: os.path.dirname(output.benchmarks),
        skipped=as_json({m: SWEEP.skipped_targets(m) for m in SWEEP.models}),
        peaks=as_json(SWEEP.peak_tflops),
        objectives=as_json(SWEEP.objectives),
        traffic=as_json(SWEEP.traffic),
        baseline=(f"--baseline {shlex.quote(SWEEP.baseline)} --compare-settings {shlex.quote(as_json(SWEEP.compare))}"
                  if SWEEP.baseline else ""),
        code=code("trtpipe.report"),
    log:
        f"{R}/summary/summary.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "trtpipe summarize --bench {input.bench} --accuracy {input.accuracy} --simplify-stats {input.stats}"
        " --precision-stats {input.precision_stats} --skipped {params.skipped:q} --flops {input.flops}"
        " --peaks {params.peaks:q} --objectives {params.objectives:q} --traffic {params.traffic:q} {params.baseline}"
        " --out-dir {params.out_dir} --log {log}"
