"""Run roots on the local filesystem (or a shared POSIX mount such as FSx for Lustre)."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import StorageError
from .atomic import atomic_copy, atomic_write, shared_mode
from .base import Store, _check_rel

HINT_FULL = ("free space on the run root's file system, then run the same command again: "
             "committed units are kept and only the rest run")


@contextmanager
def _space(path: Path):
    """A full disk (or quota) becomes one clear, retryable error naming the run root's file;
    the atomic write has already removed its temporary, so nothing committed is touched."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise StorageError(str(path), "no space left on the device", HINT_FULL,
                           retryable=True) from exc


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
        with _space(self._path(rel)):
            atomic_write(self._path(rel), data)

    def put_file(self, local: str | os.PathLike, rel: str) -> None:
        with _space(self._path(rel)):
            atomic_copy(local, self._path(rel))

    @contextmanager
    def staged(self, rel: str):
        yield self._path(rel)   # already local: read in place

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        dest = self._path(rel)
        with _space(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
            shared_mode(fd)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.link(tmp, dest)    # atomic and exclusive: the whole content, or EEXIST
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)

    def read_with_version(self, rel: str) -> tuple[bytes, str] | None:
        path = self._path(rel)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                return fh.read(), f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
        except FileNotFoundError:
            return None

    def replace_if(self, rel: str, data: bytes, version: str) -> bool:
        dest = self._path(rel)
        lock = dest.with_name(dest.name + ".lock")
        try:   # a lock held for microseconds; one left by a crash is stale after 10 s
            if time.time() - lock.stat().st_mtime > 10:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        try:
            current = self.read_with_version(rel)
            if current is None or current[1] != version:
                return False
            with _space(dest):
                atomic_write(dest, data)
            return True
        finally:
            lock.unlink(missing_ok=True)

    def clean_partial(self, rel: str, name: str = "") -> None:
        start = self._path(rel)
        if start.is_dir():
            for tmp in start.rglob(f".{name}*.tmp" if name else ".*.tmp"):
                tmp.unlink(missing_ok=True)

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


