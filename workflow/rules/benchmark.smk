# Stage 6: time every engine at each configured batch inside its profile (always including opt).
# A timing owns the machine: every trtpipe job holds it shared and a timing waits to hold it alone
# (trtpipe/machine.py). A CPU benchmark also takes every core and the one `bench` unit; a GPU benchmark
# one core and no unit, so several load their engines at once. A combined engine is timed once per
# profile, each with its own execution context. One rule per family of backends, like the engine rules.

for _family, _members in registry.rules().items():
    _first = _members[0]

    rule:
        name:
            f"benchmark_{_family}"
        input:
            engine=lambda w: timed_engine(w)["engine"],
            sidecar=lambda w: timed_engine(w)["sidecar"],
        output:
            csv=L.benchmark.csv,
            timings=L.benchmark.timings,  # per-iteration timings for `trtpipe compare`
        wildcard_constraints:
            backend="|".join(re.escape(b.name) for b in _members),
        params:
            spec=model_json,
            batches=bench_batches,
            settings=as_json(SWEEP.benchmark),
            options=lambda w: as_json(backend_options(w.backend)),
            code=family_code("trtpipe.benchmark", _members),
        threads: bench_threads
        priority: engine_priority
        resources:
            bench=bench_units,
            gpu=bench_gpu_units,
        log:
            L.benchmark.log,
        group:
            engine_group
        conda:
            f"../../envs/{_first.env_file}"
        shell:
            "trtpipe benchmark --backend {wildcards.backend} --model-spec {params.spec:q} --engine {input.engine}"
            " --sidecar {input.sidecar} --profile {wildcards.profile} --batches {params.batches}"
            " --settings {params.settings:q} --backend-options {params.options:q} --threads {threads}"
            " --out {output.csv} --timings-out {output.timings} --log {log}"
