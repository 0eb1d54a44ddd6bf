"""Every default lives in the config schema (workflow/schemas/config.schema.yaml): the profile presets, the
tolerances, the parity batches, the benchmark and compare settings. Code that needs one (argparse, the timing
settings, a Sweep) reads it from there, so a default is changed in one place and the README table is checked
against it (tests/test_config.py). A backend's options are its own (trtpipe/backends/registry.py); trtpipe.config
splices them into this schema, with the backend names, where a config is validated.

This module imports nothing of the package, so that any module may read a default."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def schema() -> dict[str, Any]:
    """A copy of the schema file (without the backends' sections and names: trtpipe.config.config_schema has them)."""
    return copy.deepcopy(_schema())


def defaults_of(node: dict[str, Any]) -> dict[str, Any]:
    """The defaults of an object schema's properties."""
    return {key: copy.deepcopy(sub["default"]) for key, sub in node.get("properties", {}).items() if "default" in sub}


def section(name: str) -> dict[str, Any]:
    """The defaults of one top-level section of the file (e.g. `benchmark`, `tolerances`)."""
    return defaults_of(_schema()["properties"][name])


def value(section_name: str, key: str | None = None) -> Any:
    """One default: a section's key, or a top-level key's own default (key None)."""
    if key is None:
        return copy.deepcopy(_schema()["properties"][section_name]["default"])
    return section(section_name)[key]


def with_defaults(section_name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """A section's settings with the schema's defaults under whatever was given (a command run by hand may give
    none)."""
    return {**section(section_name), **(options or {})}
