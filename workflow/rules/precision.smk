# Stage 4b: reduced precision in the ONNX itself (strongly typed, as TensorRT 11 requires):
# fp16/bf16 through ModelOpt AutoCast, int8/fp8 through ModelOpt PTQ (Q/DQ nodes), each checked
# against PyTorch. fp32 engines read the simplified ONNX directly.


rule precision:
    input:
        onnx=f"{R}/{{model}}/onnx/{{variant}}.sim.onnx",
        reference=f"{R}/{{model}}/reference.npz",
        calibration=calibration_input,
    output:
        onnx=f"{R}/{{model}}/onnx/{{variant}}.sim.{{precision}}.onnx",
        accuracy=f"{R}/{{model}}/accuracy/precision.{{variant}}.{{precision}}.csv",
        stats=f"{R}/{{model}}/onnx/{{variant}}.sim.{{precision}}.json",
    wildcard_constraints:
        precision="fp16|bf16|int8|fp8",
    params:
        spec=model_json,
        options=as_json(SWEEP.precision),
        calibration=lambda w: calibration_arg(w),
        tolerance=lambda w: tolerance_json(w.precision),
        code=code("trtpipe.precision"),
    log:
        f"{R}/{{model}}/logs/precision.{{variant}}.{{precision}}.log",
    conda:
        "../../envs/precision.yaml"
    shell:
        "trtpipe precision --model-spec {params.spec:q} --onnx {input.onnx} --variant {wildcards.variant}"
        " --precision {wildcards.precision} --options {params.options:q} {params.calibration}"
        " --reference {input.reference} --tolerance {params.tolerance:q} --out {output.onnx}"
        " --accuracy-out {output.accuracy} --stats-out {output.stats} --log {log}"
