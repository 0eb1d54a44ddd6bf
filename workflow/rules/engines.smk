# Stage 5: one engine per (variant, precision, profile) and backend, with its sidecar JSON and its
# parity against PyTorch. Static variants get a fixed profile at their batch ("static"); a backend that
# combines profiles (tensorrt.combine_profiles) puts every profile of the dynamic variant in one engine
# ("combined"). One rule per family of backends in the registry (trtpipe/backends/__init__.py): engine_onnxruntime,
# engine_tensorrt, engine_torch, ... Params carry the backend's version and the device: an engine is only
# valid where it was built.

for _family, _members in registry.rules().items():
    _first = _members[0]
    _out = L.engine.partial(suffix=_first.engine_suffix)

    rule:
        name:
            f"engine_{_family}"
        input:
            source=engine_source_input,
            reference=L.reference.reference,
        output:
            engine=_out.engine,
            sidecar=_out.sidecar,
            accuracy=_out.accuracy,
        wildcard_constraints:
            backend="|".join(re.escape(b.name) for b in _members),
        params:
            source=engine_source,
            spec=model_json,
            profiles=engine_profiles_json,
            options=lambda w: as_json(backend_options(w.backend)),
            identity=backend_identity,
            tolerance=lambda w: tolerance_json(w.precision),
            code=family_code("trtpipe.engine", _members),
        log:
            _out.log,
        group:
            engine_group
        threads: engine_threads
        priority: engine_priority
        resources:
            gpu=build_gpu_units,
            compile=compile_units,
        conda:
            f"../../envs/{_first.env_file}"
        shell:
            "trtpipe build-engine --backend {wildcards.backend} --model-spec {params.spec:q} --source {params.source}"
            " --variant {wildcards.variant} --precision {wildcards.precision} --profiles {params.profiles:q}"
            " --options {params.options:q} --reference {input.reference} --tolerance {params.tolerance:q}"
            " --engine-out {output.engine} --sidecar-out {output.sidecar} --accuracy-out {output.accuracy} --log {log}"
