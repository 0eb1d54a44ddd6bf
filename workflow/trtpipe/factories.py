"""The user's code a config names (`package.module:function` or `path/to/file.py:function`): a model factory or a
metric. Light on purpose (no torch): the evaluation jobs that call a user's metric run without PyTorch."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import TrtpipeError


def resolve_factory(ref: str) -> Callable[..., Any]:
    """`package.module:function` or `path/to/file.py:function` -> the callable."""
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.exists():
            raise TrtpipeError(f"factory {ref!r}: file {target} not found; fix: give a path relative to where snakemake runs.")
        name = f"trtpipe_user_{path.stem}_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))  # let the file import its neighbours
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise TrtpipeError(
                f"factory {ref!r}: cannot import module {target!r} ({exc}); fix: install the package or correct the name."
            ) from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise TrtpipeError(f"factory {ref!r}: {target} has no callable {attr!r}; fix: name a function that returns an nn.Module.")
    return fn
