"""Atomic file writes: a temp file in the same folder, flushed to disk, then renamed over the target."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, IO


def make_folder(path: str | Path) -> Path:
    """``path`` created with its parents (an existing folder is fine); a WriteError naming it when it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from .errors import WriteError

        raise WriteError(f"cannot create the folder {path}: {exc.strerror or exc}", where=str(path),
                         fix="choose a folder you can write to (out_dir=...)") from exc
    return path


def atomic_write(path: str | Path, write: Callable[[IO], None], mode: str = "wb") -> Path:
    """Call ``write(fh)`` on a temp file next to ``path``, then rename it to ``path``.

    A crash or exception mid-write never leaves a truncated ``path`` (the temp file is removed).
    """
    path = Path(path)
    try:
        make_folder(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # named by the file asked for, not by the temp file beside it
        from .errors import WriteError

        raise WriteError(f"cannot write {path}: {getattr(exc, 'what', None) or exc.strerror or exc}",
                         where=str(path), fix="choose a path in a folder you can write to") from exc
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
