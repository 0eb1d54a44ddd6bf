# Stage 4: simplify each checked export (onnxsim, falling back to onnxslim) and check it again.


rule simplify:
    input:
        onnx=L.export.onnx,
        checked=L.check_export.report,  # no simplify before the export passed its check
        reference=L.reference.reference,
    output:
        onnx=L.simplify.onnx,
        accuracy=L.simplify.accuracy,
        stats=L.simplify.stats,
    params:
        spec=model_json,
        tool=SWEEP.simplify["tool"],
        tolerance=tolerance_json(),
        dummy_batch=SWEEP.export["dummy_batch"],
        code=code("trtpipe.simplify"),
    log:
        L.simplify.log,
    conda:
        "../../envs/onnx.yaml"
    shell:
        "trtpipe simplify --model-spec {params.spec:q} --onnx {input.onnx} --reference {input.reference}"
        " --variant {wildcards.variant} --tool {params.tool} --tolerance {params.tolerance:q}"
        " --dummy-batch {params.dummy_batch} --out {output.onnx} --accuracy-out {output.accuracy}"
        " --stats-out {output.stats} --log {log}"
