"""Run-root storage: one small interface for local directories and object stores.

A run root is a local path or a URI such as ``s3://bucket/prefix``. :func:`open_store`
returns a :class:`Store` whose paths are '/'-separated and relative to the root. Writes are
atomic: a reader sees either the previous object or the complete new one, never a part.

>>> store = open_store("runs/demo")          # doctest: +SKIP
>>> store.write_json("manifest.json", {"a": 1})   # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from .errors import StorageError
from .plugins import load_registered

# scheme -> ("module:Class", install hint); imported lazily so boto3 is optional.
_REGISTRY: dict[str, tuple[str, str]] = {}


def register_store(scheme: str, target: str, hint: str = "") -> None:
    """Register a Store class (``"module:Class"``) for URIs ``scheme://...``."""
    _REGISTRY[scheme] = (target, hint)


def split_scheme(root: str) -> tuple[str, str]:
    """``"s3://b/p"`` -> ``("s3", "b/p")``; a plain path -> ``("file", path)``."""
    root = str(root)
    if "://" in root:
        scheme, rest = root.split("://", 1)
        return scheme.lower(), rest
    return "file", root


def open_store(root: str | os.PathLike) -> "Store":
    """Return the Store for a run root (local path or registered URI scheme)."""
    scheme, rest = split_scheme(str(root))
    if scheme == "file":
        return LocalStore(rest)
    if scheme not in _REGISTRY:
        raise StorageError(str(root), f"unsupported scheme {scheme!r}",
                           f"known: file, {', '.join(sorted(_REGISTRY))}")
    return load_registered(*_REGISTRY[scheme])(str(root))


def _check_rel(rel: str) -> str:
    """Refuse paths that would escape the run root."""
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts:
        raise StorageError(rel, "path must be relative to the run root and must not contain '..'")
    return str(path)


class Store:
    """Base class: subclasses implement the primitives, the rest is derived."""

    root: str

    # -- primitives ---------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def list(self, prefix: str = "") -> list[str]:
        """Relative paths of all files under ``prefix`` (recursive), sorted."""
        raise NotImplementedError

    def delete(self, rel: str) -> None:
        raise NotImplementedError

    def put_file(self, local: str | os.PathLike, rel: str) -> None:
        self.write_bytes(rel, Path(local).read_bytes())

    def get_file(self, rel: str, local: str | os.PathLike) -> None:
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        Path(local).write_bytes(self.read_bytes(rel))

    def local_path(self, rel: str = "") -> Path | None:
        """A filesystem path for ``rel`` when the store is local, else None."""
        return None

    def uri(self, rel: str = "") -> str:
        return self.root.rstrip("/") + ("/" + _check_rel(rel) if rel else "")

    # -- derived ------------------------------------------------------------------------
    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def read_json(self, rel: str):
        return json.loads(self.read_bytes(rel))

    def write_json(self, rel: str, obj) -> None:
        self.write_bytes(rel, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())

    def upload_dir(self, local_dir: str | os.PathLike, rel: str) -> list[str]:
        """Copy every file under ``local_dir`` to ``rel/``; returns the relative paths written."""
        written = []
        for path in sorted(Path(local_dir).rglob("*")):
            if path.is_file():
                dest = f"{rel.rstrip('/')}/{path.relative_to(local_dir).as_posix()}"
                self.put_file(path, dest)
                written.append(dest)
        return written

    def download_dir(self, rel: str, local_dir: str | os.PathLike) -> list[Path]:
        """Copy every object under ``rel/`` into ``local_dir``; returns local paths."""
        prefix = rel.rstrip("/") + "/"
        out = []
        for key in self.list(prefix):
            dest = Path(local_dir) / key[len(prefix):]
            self.get_file(key, dest)
            out.append(dest)
        return out


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
        dest = self._path(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # temp file in the same directory, then rename: atomic on POSIX filesystems.
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, local: str | os.PathLike, rel: str) -> None:
        dest = self._path(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

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


register_store("s3", "eksfold.storage_s3:S3Store", "S3 run roots need boto3: run `make setup`")
