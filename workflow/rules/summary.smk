# Stage 7: the summary CSVs, plots and report; the outputs are also registered for `snakemake --report`.


rule summary:
    input:
        bench=BENCH_FILES,
        accuracy=ACCURACY_FILES,
        stats=SIMPLIFY_STATS,
    output:
        benchmarks=report(f"{R}/summary/benchmarks.csv", category="Summary", caption="../report/benchmarks.rst"),
        accuracy=report(f"{R}/summary/accuracy.csv", category="Summary", caption="../report/accuracy.rst"),
        markdown=f"{R}/summary/report.md",
        html=report(f"{R}/summary/report.html", category="Summary", caption="../report/report.rst"),
        plots=[report(p, category="Plots", caption="../report/plot.rst") for p in PLOTS],
    params:
        out_dir=lambda w, output: os.path.dirname(output.benchmarks),
        code=code("trtpipe.report"),
    log:
        f"{R}/summary/summary.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "trtpipe summarize --bench {input.bench} --accuracy {input.accuracy} --simplify-stats {input.stats}"
        " --out-dir {params.out_dir} --log {log}"
