# Stage 7: the summary CSVs, plots and report; the outputs are also registered for `snakemake --report`.


rule summary:
    input:
        # every file SummaryInputs names (the raw timings only with a baseline to compare against)
        **SUMMARY_INPUTS.input_files(),
    output:
        benchmarks=report(L.summary.benchmarks, category="Summary", caption="../report/benchmarks.rst"),
        accuracy=report(L.summary.accuracy, category="Summary", caption="../report/accuracy.rst"),
        markdown=L.summary.markdown,
        html=report(L.summary.html, category="Summary", caption="../report/report.rst"),
        plots=[report(p, category="Plots", caption="../report/plot.rst") for p in PLOTS],
        pareto=[report(p, category="Plots", caption="../report/plot.rst") for p in PARETO_PLOTS],
        compare=COMPARE_FILES,
    params:
        out_dir=lambda w, output: os.path.dirname(output.benchmarks),
        inputs=SUMMARY_INPUTS.to_args(),  # the same SummaryInputs, as `trtpipe summarize` reads it back
        code=code("trtpipe.report.summary"),
    log:
        L.summary.log,
    conda:
        "../../envs/report.yaml"
    shell:
        "trtpipe summarize {params.inputs} --out-dir {params.out_dir} --log {log}"
