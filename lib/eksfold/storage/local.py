"""Run roots on the local filesystem (or a shared POSIX mount such as FSx for Lustre)."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .atomic import atomic_copy, atomic_write
from .base import Store, _check_rel


class LocalStore(Store):
    """A run root on the local filesystem (or a shared POSIX mount such as FSx for Lustre)."""

    def __init__(self, root: str | os.PathLike):
        self.base = Path(root).expanduser().resolve()
        self.root = str(self.base)

    def _path(self, rel: str) -> Path:
        return self.base / _check_rel(rel) if rel else self.base

    def local_path(self, rel: str = "") -> Path:
        return self._path(rel)

    def exists(self, rel: str) -> bool:
        return self._path(rel).exists()

    def read_bytes(self, rel: str) -> bytes:
        return self._path(rel).read_bytes()

    def write_bytes(self, rel: str, data: bytes) -> None:
        atomic_write(self._path(rel), data)

    def put_file(self, local: str | os.PathLike, rel: str) -> None:
        atomic_copy(local, self._path(rel))

    @contextmanager
    def staged(self, rel: str):
        yield self._path(rel)   # already local: read in place

    def scratch_base(self) -> Path:
        return self._path(".scratch")   # inside the run root: a run writes nothing outside it

    def list(self, prefix: str = "") -> list[str]:
        start = self._path(prefix.rstrip("/")) if prefix else self.base
        if start.is_file():
            return [_check_rel(prefix)]
        if not start.is_dir():
            return []
        return sorted(p.relative_to(self.base).as_posix() for p in start.rglob("*")
                      if p.is_file() and not p.name.endswith(".tmp"))

    def delete(self, rel: str) -> None:
        path = self._path(rel)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


