"""Build one engine per (variant, precision, profile, backend), write its sidecar, check its parity."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from .backends import registry
from .backends.base import BuildRequest
from .check import refuse_not_dynamic
from .errors import ParityError, TrtpipeError
from .io import atomic_path, write_json
from .parity import failure_clause, first_failure, parity_rows
from .reference import Reference
from .spec import ModelSpec, Profile, Variant

log = logging.getLogger(__name__)


def build_engine(
    backend_name: str,
    source: str | Path,
    engine_path: str | Path,
    sidecar_path: str | Path,
    spec: ModelSpec,
    variant: Variant,
    precision: str,
    profiles: list[Profile],
    options: dict[str, Any],
    reference_path: str | Path,
    tolerance: dict[str, float],
) -> list[dict[str, Any]]:
    """Returns the engine's parity rows.

    An fp32 engine that disagrees with PyTorch is a bug somewhere: ParityError. A reduced-precision
    engine that misses its tolerance is a result: its rows say failed and the report excludes it.
    """
    backend = registry.get(backend_name)
    if precision not in backend.precisions:
        raise TrtpipeError(f"{engine_path}: {backend.library} ({backend.name}) builds {', '.join(backend.precisions)}, not "
                           f"{precision}; fix: drop {precision} for {backend.name} or use a backend that runs it.")
    if variant.is_dynamic and backend.source == registry.CHECKPOINT_SOURCE:
        refuse_not_dynamic(reference_path, spec, engine_path)
    module = backend.implementation()
    options = backend.with_defaults(options)
    start = time.perf_counter()
    with atomic_path(engine_path) as tmp:
        request = BuildRequest(backend, Path(source), tmp, spec, variant, precision, tuple(profiles), options,
                               Path(engine_path))
        fields = module.build(request)
        sidecar = {
            "model": spec.name, "variant": variant.name, "precision": precision, "backend": backend.name,
            "source": str(source),
            "profiles": [p.sidecar_entry(spec, variant) for p in profiles],
            **module.Runner.machine_identity(options),
            **fields,
            "build_seconds_total": time.perf_counter() - start,
            "engine_bytes": os.path.getsize(tmp),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        rows = []
        for profile in profiles:
            rows += engine_parity(module, tmp, sidecar, spec, variant, precision, profile, reference_path, tolerance,
                                  engine_path, options)
        failed = first_failure(rows)
        if failed and precision != "fp32":
            log.warning("%s misses its %s tolerance at %s (max abs err %.3g, cosine %.4f): recorded as failed",
                        engine_path, precision, failed["case"], failed["max_abs_err"], failed["cosine"])
        elif failed:
            raise ParityError(
                f"{engine_path}: {failure_clause(failed)}; fix: compare with the simplify stage's accuracy rows to find "
                f"the stage that diverges."
            )
        write_json(sidecar_path, sidecar)
    log.info("built %s (%d bytes) in %.2fs", engine_path, sidecar["engine_bytes"], sidecar["build_seconds_total"])
    return rows


def engine_parity(module, engine_file, sidecar, spec, variant: Variant, precision, profile, reference_path, tolerance,
                  shown_as, options) -> list[dict[str, Any]]:
    runner = module.Runner(engine_file, sidecar, profile=profile.name, options=options)
    reference = Reference(reference_path)
    dims = ("opt", "min", "max") if variant.is_dynamic else ("opt",)
    labels = {"model": spec.name, "stage": "engine", "variant": variant.name, "precision": precision,
              "backend": sidecar["backend"], "profile": profile.name}
    rows: list[dict[str, Any]] = []
    for case in reference.cases_within(profile.min, profile.opt, profile.max, dims):
        outputs = runner.run(case.inputs)
        rows += parity_rows(labels, case.id, case.batch, runner.output_names, outputs, case.outputs, tolerance,
                            reference.constant_flags)
        log.info("engine parity %s on %s: max abs err %.3g", shown_as, case.id,
                 max(r["max_abs_err"] for r in rows[-len(outputs):]))
    return rows

