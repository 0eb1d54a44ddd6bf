"""Atomic file writes, so that no half-written artifact survives a failed or interrupted job."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    `suffix` is for tools that choose a format by file name (it should still end in .tmp-like
    names where possible, so a leftover from a killed job is recognisable as one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{_temp_stem(path, suffix)}.{_HOST}-{os.getpid()}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes it private (0600); an artifact gets the mode of any new file
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_HOST = socket.gethostname().split(".")[0].replace("-", "_") or "host"
NAME_MAX = 255  # bytes per file name (Linux, macOS)
_RANDOM = 8  # the characters tempfile.mkstemp adds
_PID = 7  # the most digits of a Linux process id (pid_max is at most 2**22)


def _temp_stem(path: Path, suffix: str) -> str:
    """The artifact's name as its temporary file's names start, cut (with a digest of the whole name, so that two
    artifacts never share it) where the full name would pass NAME_MAX: an artifact whose own name fits always gets a
    temporary file (a 240-character model name gave a plot's temporary file a name too long to create)."""
    room = NAME_MAX - len(f"..{_HOST}-.".encode()) - _PID - _RANDOM - len(suffix.encode())
    name = path.name
    if len(name.encode()) <= room:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return name.encode()[: room - len(digest) - 1].decode(errors="ignore") + "~" + digest


def _remove_leftovers(path: Path, suffix: str) -> None:
    """A job killed with SIGKILL (out of memory, a cluster's time limit) cannot remove its temporary file; the next
    write of the same artifact does, where the file names this host and a process that no longer runs (a file
    shared across jobs, like a timing cache, may be being written by a live one)."""
    stem = _temp_stem(path, suffix)
    pattern = re.compile(rf"\.{re.escape(stem)}\.{re.escape(_HOST)}-(\d+)\..*{re.escape(suffix)}$")
    for leftover in path.parent.glob(f".{glob.escape(stem)}.*"):
        m = pattern.match(leftover.name)
        if m and not _alive(int(m.group(1))):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
