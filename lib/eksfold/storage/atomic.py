"""Atomic file writes: a temporary file in the destination's folder, then one rename.

A reader (another worker, a rerun after ``kill -9``) sees the old file or the complete new one,
never a part; a temporary left behind by a crash ends in ``.tmp`` and is never listed as a
result (:meth:`eksfold.storage.LocalStore.list` skips it).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

# mkstemp creates 0600 files; results are shared (JupyterHub users, Pods of another uid on
# FSx), so a committed file gets the mode an ordinary open() would give it under this umask.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def shared_mode(fd_or_path) -> None:
    """Give a temporary file the mode a plainly created file would have."""
    if isinstance(fd_or_path, int):
        os.fchmod(fd_or_path, FILE_MODE)
    else:
        os.chmod(fd_or_path, FILE_MODE)


@contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path beside ``dest``; on success it is renamed to ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    shared_mode(fd)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(dest: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``dest`` atomically (fsync'd before the rename)."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy ``src`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
