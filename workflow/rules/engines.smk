# Stage 5: one engine per (variant, precision, profile) and backend, with its sidecar JSON and its
# parity against PyTorch. Static variants get a fixed profile at their batch ("static").


rule engine_onnxruntime:
    input:
        onnx=onnx_for_engine,
        reference=f"{R}/{{model}}/reference.npz",
    output:
        engine=f"{R}/{{model}}/engines/onnxruntime/{{variant}}.{{precision}}.{{profile}}.onnx",
        sidecar=f"{R}/{{model}}/engines/onnxruntime/{{variant}}.{{precision}}.{{profile}}.json",
        accuracy=f"{R}/{{model}}/accuracy/engine.onnxruntime.{{variant}}.{{precision}}.{{profile}}.csv",
    params:
        spec=model_json,
        profile=engine_profile_json,
        options=as_json(SWEEP.onnxruntime),
        tolerance=lambda w: tolerance_json(w.precision),
        code=code("trtpipe.engine", "trtpipe.backends.onnxruntime"),
    log:
        f"{R}/{{model}}/logs/engine.onnxruntime.{{variant}}.{{precision}}.{{profile}}.log",
    conda:
        "../../envs/onnx.yaml"
    shell:
        "trtpipe build-engine --backend onnxruntime --model-spec {params.spec:q} --onnx {input.onnx}"
        " --variant {wildcards.variant} --precision {wildcards.precision} --profile {params.profile:q}"
        " --options {params.options:q} --reference {input.reference} --tolerance {params.tolerance:q}"
        " --engine-out {output.engine} --sidecar-out {output.sidecar} --accuracy-out {output.accuracy} --log {log}"
