# Stage 2: ONNX export (one static graph per batch size, one dynamic graph), and stage 3: the check
# that proves each export matches PyTorch and that the dynamic one really is dynamic.


rule export:
    input:
        checkpoint_input,
    output:
        L.export.onnx,
    params:
        spec=model_json,
        checkpoint=lambda w: checkpoint_path(w.model),
        exporter=SWEEP.export["exporter"],
        opset=SWEEP.export["opset"],
        dummy_batch=SWEEP.export["dummy_batch"],
        code=lambda w: code("trtpipe.export", model=w.model),
    log:
        L.export.log,
    conda:
        "../../envs/torch.yaml"
    shell:
        "trtpipe export --model-spec {params.spec:q} --checkpoint {params.checkpoint:q} --variant {wildcards.variant}"
        " --exporter {params.exporter} --opset {params.opset} --dummy-batch {params.dummy_batch}"
        " --out {output} --log {log}"


rule check_export:
    input:
        onnx=L.export.onnx,
        reference=L.reference.reference,
    output:
        accuracy=L.check_export.accuracy,
        report=L.check_export.report,
    params:
        spec=model_json,
        tolerance=tolerance_json(),
        dummy_batch=SWEEP.export["dummy_batch"],
        code=code("trtpipe.check"),
    log:
        L.check_export.log,
    conda:
        "../../envs/onnx.yaml"
    shell:
        "trtpipe check-export --model-spec {params.spec:q} --onnx {input.onnx} --reference {input.reference}"
        " --variant {wildcards.variant} --tolerance {params.tolerance:q} --dummy-batch {params.dummy_batch}"
        " --accuracy-out {output.accuracy} --report-out {output.report} --log {log}"
