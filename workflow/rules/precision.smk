# Stage 4b: reduced precision in the ONNX itself (strongly typed, as TensorRT 11 requires):
# fp16/bf16 through ModelOpt AutoCast, int8/fp8 through ModelOpt PTQ (Q/DQ nodes), each checked
# against PyTorch. fp32 engines read the simplified ONNX directly.


rule precision:
    input:
        onnx=L.simplify.onnx,
        reference=L.reference.reference,
        calibration=calibration_input,
    output:
        onnx=L.precision.onnx,
        accuracy=L.precision.accuracy,
        stats=L.precision.stats,
    wildcard_constraints:
        precision="|".join(REDUCED_PRECISIONS),
    params:
        spec=model_json,
        options=as_json(SWEEP.precision),
        calibration=lambda w: calibration_arg(w),
        tolerance=lambda w: tolerance_json(w.precision),
        code=code("trtpipe.precision"),
    log:
        L.precision.log,
    conda:
        "../../envs/precision.yaml"
    shell:
        "trtpipe precision --model-spec {params.spec:q} --onnx {input.onnx} --variant {wildcards.variant}"
        " --precision {wildcards.precision} --options {params.options:q} {params.calibration}"
        " --reference {input.reference} --tolerance {params.tolerance:q} --out {output.onnx}"
        " --accuracy-out {output.accuracy} --stats-out {output.stats} --log {log}"
