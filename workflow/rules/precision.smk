# Stage 4b: reduced precision in the ONNX itself (strongly typed, as TensorRT 11 requires):
# fp16/bf16 through ModelOpt AutoCast, int8/fp8 through ModelOpt PTQ (Q/DQ nodes), int8-ort-* through
# onnxruntime.quantization (for ONNX Runtime's CPU provider), each checked against PyTorch and scored on
# evaluation samples. fp32 engines read the simplified ONNX directly. The sensitivity ranking orders the
# quantizable nodes for the mixed-precision search.


rule precision:
    input:
        onnx=L.simplify.onnx,
        reference=L.reference.reference,
        calibration=calibration_input,
        sensitivity=sensitivity_input,
        metric=lambda w: metric_input(w) if w.precision.endswith("-mixed") else [],
    output:
        onnx=L.precision.onnx,
        accuracy=L.precision.accuracy,
        stats=L.precision.stats,
    wildcard_constraints:
        precision="|".join(REDUCED_PRECISIONS) + "|" + ORT_PRECISION,
    params:
        spec=model_json,
        options=as_json(SWEEP.precision),
        quantize=lambda w: quantize_json(w.model, w.precision),
        calibration=lambda w: calibration_arg(w),
        sensitivity=lambda w: f"--sensitivity {sensitivity_input(w)[0]}" if sensitivity_input(w) else "",
        tolerance=lambda w: tolerance_json(w.precision),
        code=code("trtpipe.precision"),
    log:
        L.precision.log,
    conda:
        "../../envs/precision.yaml"
    shell:
        "trtpipe precision --model-spec {params.spec:q} --onnx {input.onnx} --variant {wildcards.variant}"
        " --precision {wildcards.precision} --options {params.options:q} --quantize-options {params.quantize:q}"
        " {params.calibration} {params.sensitivity}"
        " --reference {input.reference} --tolerance {params.tolerance:q} --out {output.onnx}"
        " --accuracy-out {output.accuracy} --stats-out {output.stats} --log {log}"


rule sensitivity:
    input:
        onnx=L.simplify.partial(variant="dynamic").onnx,
        calibration=calibration_input,
        metric=metric_input,
    output:
        json=L.sensitivity.json,
        csv=L.sensitivity.csv,
    params:
        spec=model_json,
        options=as_json(SWEEP.precision),
        quantize=lambda w: quantize_json(w.model, "int8-ort-qdq", thresholds=True),
        calibration=lambda w: calibration_arg(w),
        code=code("trtpipe.precision"),
    log:
        L.sensitivity.log,
    conda:
        "../../envs/precision.yaml"
    shell:
        "trtpipe sensitivity --model-spec {params.spec:q} --onnx {input.onnx} --variant dynamic"
        " --options {params.options:q} --quantize-options {params.quantize:q} {params.calibration}"
        " --out {output.json} --csv-out {output.csv} --log {log}"
