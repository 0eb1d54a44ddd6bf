# Accuracy on the model's own samples (models.NAME.samples): PyTorch on the held-out samples, then every artifact
# (export, simplified and precision ONNX, each engine) on the same samples, with the task metric and its verdict.
# Jobs of their own: changing the samples, the metric or a threshold reruns these and the summary, not an export or
# an engine (int8/fp8 calibrated on part of the samples rerun too: their calibration set changed).


rule data_reference:
    input:
        checkpoint_input,
        samples=samples_input,
        calibration_data=lambda w: [p for p in [SWEEP.calibration_data(w.model)] if p and os.path.exists(p)],
    output:
        data=L.data_reference.data,
        calibration=L.data_reference.calibration,
    params:
        spec=model_json,
        checkpoint=lambda w: checkpoint_path(w.model),
        samples=lambda w: as_json(SWEEP.samples(w.model)),
        calibrate=lambda w: SWEEP.samples_calibration(w.model),
        calibration=lambda w: (f"--calibration-data {shlex.quote(SWEEP.calibration_data(w.model))}"
                               if SWEEP.calibration_data(w.model) else ""),
        min_samples=lambda w: max(SWEEP.static_batch_sizes_for(w.model), default=1),
        code=lambda w: code("trtpipe.evaluate", "trtpipe.samples", "trtpipe.models", model=w.model),
    log:
        L.data_reference.log,
    conda:
        "../../envs/torch.yaml"
    shell:
        "trtpipe data-reference --model-spec {params.spec:q} --checkpoint {params.checkpoint:q}"
        " --samples {params.samples:q} --calibrate {params.calibrate} {params.calibration}"
        " --min-samples {params.min_samples} --out {output.data} --calibration-out {output.calibration} --log {log}"


rule evaluate_onnx:
    input:
        onnx=lambda w: [path for _, _, path in onnx_artifacts(w)],
        data=L.data_reference.data,
        metric=metric_input,
    output:
        L.evaluate_onnx.accuracy,
    params:
        spec=model_json,
        artifacts=lambda w: as_json(onnx_artifacts(w)),
        metric=metric_json,
        accept=lambda w: as_json(SWEEP.accept(w.model)),
        tolerances=as_json(SWEEP.tolerances),
        code=code("trtpipe.evaluate", "trtpipe.metrics"),
    log:
        L.evaluate_onnx.log,
    conda:
        "../../envs/onnx.yaml"
    shell:
        "trtpipe evaluate-onnx --model-spec {params.spec:q} --variant {wildcards.variant} --artifacts {params.artifacts:q}"
        " --data {input.data} --metric {params.metric:q} --accept {params.accept:q} --tolerances {params.tolerances:q}"
        " --out {output} --log {log}"


for _family, _members in registry.rules().items():
    _first = _members[0]

    rule:
        name:
            f"evaluate_{_family}"
        input:
            engine=lambda w: timed_engine(w)["engine"],
            sidecar=lambda w: timed_engine(w)["sidecar"],
            data=L.data_reference.data,
            metric=metric_input,
        output:
            L.evaluate_engine.accuracy,
        wildcard_constraints:
            backend="|".join(re.escape(b.name) for b in _members),
        params:
            spec=model_json,
            profiles=engine_profiles_json,
            options=lambda w: as_json(backend_options(w.backend)),
            metric=metric_json,
            accept=lambda w: as_json(SWEEP.accept(w.model)),
            tolerance=lambda w: tolerance_json(w.precision),
            code=family_code("trtpipe.evaluate", _members),
        log:
            L.evaluate_engine.log,
        group:
            engine_group
        resources:
            gpu=gpu_units,
        conda:
            f"../../envs/{_first.env_file}"
        shell:
            "trtpipe evaluate-engine --backend {wildcards.backend} --model-spec {params.spec:q} --engine {input.engine}"
            " --sidecar {input.sidecar} --variant {wildcards.variant} --precision {wildcards.precision}"
            " --profiles {params.profiles:q} --options {params.options:q} --data {input.data} --metric {params.metric:q}"
            " --accept {params.accept:q} --tolerance {params.tolerance:q} --out {output} --log {log}"
