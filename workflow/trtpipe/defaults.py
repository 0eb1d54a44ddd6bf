"""Every default lives in the config schema (workflow/schemas/config.schema.yaml). Code that needs one
(argparse, a backend's options, the timing settings) reads it from there, so a default is changed in one
place and the README table is checked against it (tests/test_config.py)."""

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
    """A copy of the schema (the backend names are spliced in where the config is validated: trtpipe.config)."""
    return copy.deepcopy(_schema())


def section(name: str) -> dict[str, Any]:
    """The defaults of one top-level section (e.g. `onnxruntime`, `benchmark`)."""
    props = _schema()["properties"][name].get("properties", {})
    return {key: copy.deepcopy(sub["default"]) for key, sub in props.items() if "default" in sub}


def value(section_name: str, key: str) -> Any:
    return section(section_name)[key]


def with_defaults(section_name: str | None, options: dict[str, Any] | None) -> dict[str, Any]:
    """A section's options with the schema's defaults under whatever was given (a command run by hand may give none)."""
    return {**(section(section_name) if section_name else {}), **(options or {})}
