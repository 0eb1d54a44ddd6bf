# Stage 5: one engine per (variant, precision, profile) and backend, with its sidecar JSON and its
# parity against PyTorch. Static variants get a fixed profile at their batch ("static"); a TensorRT
# engine may hold every profile of the dynamic variant ("combined", tensorrt.combine_profiles).
# The torch backends' engines record a runtime configuration of the checkpoint (no ONNX).
# Params carry the backend's version and the device: an engine is only valid where it was built.


rule engine_onnxruntime:
    input:
        source=onnx_for_engine,
        reference=f"{R}/{{model}}/reference.npz",
    output:
        engine=f"{R}/{{model}}/engines/onnxruntime/{{variant}}.{{precision}}.{{profile}}.onnx",
        sidecar=f"{R}/{{model}}/engines/onnxruntime/{{variant}}.{{precision}}.{{profile}}.json",
        accuracy=f"{R}/{{model}}/accuracy/engine.onnxruntime.{{variant}}.{{precision}}.{{profile}}.csv",
    params:
        backend="onnxruntime",
        source=onnx_for_engine,
        spec=model_json,
        profiles=engine_profiles_json,
        options=as_json(SWEEP.onnxruntime),
        identity=as_json(params_identity("onnxruntime")),
        tolerance=lambda w: tolerance_json(w.precision),
        code=code("trtpipe.engine", "trtpipe.backends.onnxruntime"),
    log:
        f"{R}/{{model}}/logs/engine.onnxruntime.{{variant}}.{{precision}}.{{profile}}.log",
    group:
        lambda w: engine_group(w, "onnxruntime")
    conda:
        "../../envs/onnx.yaml"
    shell:
        "trtpipe build-engine --backend {params.backend} --model-spec {params.spec:q} --source {params.source}"
        " --variant {wildcards.variant} --precision {wildcards.precision} --profiles {params.profiles:q}"
        " --options {params.options:q} --reference {input.reference} --tolerance {params.tolerance:q}"
        " --engine-out {output.engine} --sidecar-out {output.sidecar} --accuracy-out {output.accuracy} --log {log}"


use rule engine_onnxruntime as engine_tensorrt with:
    output:
        engine=f"{R}/{{model}}/engines/tensorrt/{{variant}}.{{precision}}.{{profile}}.engine",
        sidecar=f"{R}/{{model}}/engines/tensorrt/{{variant}}.{{precision}}.{{profile}}.json",
        accuracy=f"{R}/{{model}}/accuracy/engine.tensorrt.{{variant}}.{{precision}}.{{profile}}.csv",
    params:
        backend="tensorrt",
        options=as_json(SWEEP.tensorrt),
        identity=as_json(params_identity("tensorrt")) if "tensorrt" in SWEEP.backends else "",
        code=code("trtpipe.engine", "trtpipe.backends.tensorrt"),
    log:
        f"{R}/{{model}}/logs/engine.tensorrt.{{variant}}.{{precision}}.{{profile}}.log",
    group:
        lambda w: engine_group(w, "tensorrt")
    conda:
        "../../envs/tensorrt.yaml"
    resources:
        gpu=1,


use rule engine_onnxruntime as engine_torch with:
    input:
        source=checkpoint_input,
        reference=f"{R}/{{model}}/reference.npz",
    output:
        engine=f"{R}/{{model}}/engines/{{backend}}/{{variant}}.{{precision}}.{{profile}}.torch",
        sidecar=f"{R}/{{model}}/engines/{{backend}}/{{variant}}.{{precision}}.{{profile}}.json",
        accuracy=f"{R}/{{model}}/accuracy/engine.{{backend}}.{{variant}}.{{precision}}.{{profile}}.csv",
    wildcard_constraints:
        backend="torch_[a-z_]+",
    params:
        backend=lambda w: w.backend,
        source=lambda w: checkpoint_path(w.model),
        options=as_json(SWEEP.torch),
        identity=lambda w: as_json(params_identity(w.backend, SWEEP.torch["device"])),
        code=code("trtpipe.engine", "trtpipe.backends.pytorch", "trtpipe.models"),
    log:
        f"{R}/{{model}}/logs/engine.{{backend}}.{{variant}}.{{precision}}.{{profile}}.log",
    group:
        lambda w: engine_group(w, w.backend)
    conda:
        "../../envs/torch.yaml"
    resources:
        gpu=TORCH_GPUS,
