"""Content digests of the package code a stage runs, for Snakemake's params.

Snakemake reruns a job when its params change, but it cannot see into the package a shell rule
calls. Each rule therefore carries a digest of its stage module and everything that module imports
from this package (found statically, lazy imports included), so editing one stage reruns that stage
and what follows it, and nothing else.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name


def module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    is_package = path.name == "__init__.py"
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import x` names modules
    return {name for name in found if name.split(".")[0] == PACKAGE}


@functools.lru_cache(maxsize=None)
def closure(module: str) -> tuple[Path, ...]:
    """The files of `module` and of every package module it imports, transitively."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None or name in seen:
            continue
        seen[name] = path
        # a submodule import also runs its parent packages' __init__
        parents = [".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))]
        todo.extend(parents)
        todo.extend(_imports(path, name))
    return tuple(sorted(set(seen.values())))


def digest(*modules: str, extra_files: tuple[str | Path, ...] = ()) -> str:
    """A short digest over the closures of `modules` plus `extra_files` (e.g. a user's factory file)."""
    h = hashlib.sha256()
    files = sorted({p for m in modules for p in closure(m)})
    for path in files:
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(path.read_bytes())
    for extra in extra_files:
        p = Path(extra)
        h.update(str(extra).encode())
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    return h.hexdigest()[:16]
