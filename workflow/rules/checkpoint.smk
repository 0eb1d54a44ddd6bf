# Stage 1: a deterministic checkpoint for factory models without one, and the PyTorch reference
# inputs/outputs every later parity check compares against.


rule checkpoint:
    output:
        L.checkpoint.checkpoint,
    params:
        spec=factory_json,
        code=lambda w: code("trtpipe.models", model=w.model),
    log:
        L.checkpoint.log,
    priority: chain_priority
    conda:
        "../../envs/torch.yaml"
    shell:
        "trtpipe checkpoint --model-spec {params.spec:q} --out {output} --log {log}"


rule reference:
    input:
        checkpoint_input,
    output:
        reference=L.reference.reference,
        flops=L.reference.flops,
    params:
        spec=model_json,
        checkpoint=lambda w: checkpoint_path(w.model),
        batches=lambda w: ",".join(map(str, SWEEP.reference_batches(w.model))),
        code=lambda w: code("trtpipe.reference", "trtpipe.models", model=w.model),
    log:
        L.reference.log,
    priority: chain_priority
    conda:
        "../../envs/torch.yaml"
    shell:
        "trtpipe reference --model-spec {params.spec:q} --checkpoint {params.checkpoint:q}"
        " --batches {params.batches} --out {output.reference} --flops-out {output.flops} --log {log}"
