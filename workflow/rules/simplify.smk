# Stage 4: simplify each checked export (onnxsim, falling back to onnxslim) and check it again.


rule simplify:
    input:
        onnx=f"{R}/{{model}}/onnx/{{variant}}.onnx",
        checked=f"{R}/{{model}}/onnx/{{variant}}.check.json",  # no simplify before the export passed its check
        reference=f"{R}/{{model}}/reference.npz",
    output:
        onnx=f"{R}/{{model}}/onnx/{{variant}}.sim.onnx",
        accuracy=f"{R}/{{model}}/accuracy/simplify.{{variant}}.csv",
        stats=f"{R}/{{model}}/onnx/{{variant}}.sim.json",
    params:
        spec=model_json,
        tool=SWEEP.simplify["tool"],
        tolerance=tolerance_json(),
        dummy_batch=SWEEP.export["dummy_batch"],
        code=code("trtpipe.simplify"),
    log:
        f"{R}/{{model}}/logs/simplify.{{variant}}.log",
    conda:
        "../../envs/onnx.yaml"
    shell:
        "trtpipe simplify --model-spec {params.spec:q} --onnx {input.onnx} --reference {input.reference}"
        " --variant {wildcards.variant} --tool {params.tool} --tolerance {params.tolerance:q}"
        " --dummy-batch {params.dummy_batch} --out {output.onnx} --accuracy-out {output.accuracy}"
        " --stats-out {output.stats} --log {log}"
