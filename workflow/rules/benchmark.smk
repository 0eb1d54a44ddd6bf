# Stage 6: time every engine at each configured batch inside its profile (always including opt).
# A benchmark owns the machine: the `bench` resource (limited to 1 by profiles/default) keeps two
# timings apart, and taking every core keeps other jobs off the CPU while it measures.


rule benchmark_onnxruntime:
    input:
        engine=f"{R}/{{model}}/engines/onnxruntime/{{variant}}.{{precision}}.{{profile}}.onnx",
        sidecar=f"{R}/{{model}}/engines/onnxruntime/{{variant}}.{{precision}}.{{profile}}.json",
    output:
        f"{R}/{{model}}/bench/onnxruntime/{{variant}}.{{precision}}.{{profile}}.csv",
    params:
        spec=model_json,
        batches=bench_batches,
        settings=as_json(SWEEP.benchmark),
        intra_op_threads=SWEEP.onnxruntime["intra_op_threads"],
        code=code("trtpipe.benchmark", "trtpipe.backends.onnxruntime"),
    threads: BENCH_THREADS
    resources:
        bench=1,
    log:
        f"{R}/{{model}}/logs/bench.onnxruntime.{{variant}}.{{precision}}.{{profile}}.log",
    conda:
        "../../envs/onnx.yaml"
    shell:
        "trtpipe benchmark --model-spec {params.spec:q} --engine {input.engine} --sidecar {input.sidecar}"
        " --batches {params.batches} --settings {params.settings:q}"
        " --threads {threads} --intra-op-threads {params.intra_op_threads}"
        " --out {output} --log {log}"
