# Stage 6: time every engine at each configured batch inside its profile (always including opt).
# A benchmark owns the machine: the `bench` resource (limited to 1 by profiles/default) keeps two
# timings apart, and taking every core keeps other jobs off the CPU while it measures. A combined
# TensorRT engine is timed once per profile, each with its own execution context.


rule benchmark_onnxruntime:
    input:
        engine=lambda w: engine_file(w, "onnxruntime"),
        sidecar=lambda w: engine_file(w, "onnxruntime", sidecar=True),
    output:
        f"{R}/{{model}}/bench/onnxruntime/{{variant}}.{{precision}}.{{profile}}.csv",
    params:
        spec=model_json,
        batches=bench_batches,
        settings=as_json(SWEEP.benchmark),
        options=as_json(SWEEP.onnxruntime),
        intra_op_threads=SWEEP.onnxruntime["intra_op_threads"],
        code=code("trtpipe.benchmark", "trtpipe.backends.onnxruntime"),
    threads: BENCH_THREADS
    resources:
        bench=1,
    log:
        f"{R}/{{model}}/logs/bench.onnxruntime.{{variant}}.{{precision}}.{{profile}}.log",
    group:
        lambda w: engine_group(w, "onnxruntime")
    conda:
        "../../envs/onnx.yaml"
    shell:
        "trtpipe benchmark --model-spec {params.spec:q} --engine {input.engine} --sidecar {input.sidecar}"
        " --profile {wildcards.profile} --batches {params.batches} --settings {params.settings:q}"
        " --backend-options {params.options:q} --threads {threads} --intra-op-threads {params.intra_op_threads}"
        " --out {output} --log {log}"


use rule benchmark_onnxruntime as benchmark_tensorrt with:
    input:
        engine=lambda w: engine_file(w, "tensorrt"),
        sidecar=lambda w: engine_file(w, "tensorrt", sidecar=True),
    output:
        f"{R}/{{model}}/bench/tensorrt/{{variant}}.{{precision}}.{{profile}}.csv",
    params:
        options=as_json(SWEEP.tensorrt),
        intra_op_threads=0,
        code=code("trtpipe.benchmark", "trtpipe.backends.tensorrt"),
    log:
        f"{R}/{{model}}/logs/bench.tensorrt.{{variant}}.{{precision}}.{{profile}}.log",
    group:
        lambda w: engine_group(w, "tensorrt")
    conda:
        "../../envs/tensorrt.yaml"
    resources:
        bench=1,
        gpu=1,


use rule benchmark_onnxruntime as benchmark_torch with:
    input:
        engine=lambda w: engine_file(w, w.backend),
        sidecar=lambda w: engine_file(w, w.backend, sidecar=True),
    output:
        f"{R}/{{model}}/bench/{{backend}}/{{variant}}.{{precision}}.{{profile}}.csv",
    wildcard_constraints:
        backend="torch_[a-z_]+",
    params:
        options=as_json(SWEEP.torch),
        intra_op_threads=0,
        code=code("trtpipe.benchmark", "trtpipe.backends.pytorch", "trtpipe.models"),
    log:
        f"{R}/{{model}}/logs/bench.{{backend}}.{{variant}}.{{precision}}.{{profile}}.log",
    group:
        lambda w: engine_group(w, w.backend)
    conda:
        "../../envs/torch.yaml"
    resources:
        bench=1,
        gpu=TORCH_GPUS,
