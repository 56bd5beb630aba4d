"""The Store interface: a few primitives per back end, everything else derived here.

Paths are '/'-separated and relative to the root. Writes are atomic: a reader sees either the
previous object or the complete new one, never a part. Callers never branch on the back end:
:meth:`Store.staged` gives a local folder with a unit's inputs, :meth:`Store.scratch` a private
work folder that is removed afterwards (inside a local run root, so nothing is written outside).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..errors import StorageError


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

    def clean_partial(self, rel: str, name: str = "") -> None:
        """Remove what an interrupted write left under ``rel`` (local roots leave ``*.tmp``
        files after a kill -9; object stores leave nothing visible); ``name``: only the
        leftovers of writes to ``rel/name``."""

    # -- conditional writes (leases) ---------------------------------------------------
    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Write ``rel`` only if it does not exist (atomically); False if it does."""
        raise NotImplementedError

    def read_with_version(self, rel: str) -> tuple[bytes, str] | None:
        """(content, version) of ``rel``, or None; the version changes with every write."""
        raise NotImplementedError

    def replace_if(self, rel: str, data: bytes, version: str) -> bool:
        """Replace ``rel`` only if it is still at ``version`` (compare-and-swap)."""
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

    @contextmanager
    def staged(self, rel: str):
        """A local folder holding the files under ``rel``, for reading (a temporary copy
        unless the store is local)."""
        with self.scratch("staged") as tmp:
            self.download_dir(rel, tmp)
            yield tmp

    def scratch_base(self) -> Path:
        """Where :meth:`scratch` folders go: ``$EKSFOLD_SCRATCH`` or the temporary folder."""
        return Path(os.environ.get("EKSFOLD_SCRATCH") or tempfile.gettempdir())

    @contextmanager
    def scratch(self, prefix: str = "work"):
        """A private, empty local folder, removed on exit."""
        base = self.scratch_base()
        base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=base))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def download_dir(self, rel: str, local_dir: str | os.PathLike) -> list[Path]:
        """Copy every object under ``rel/`` into ``local_dir``; returns local paths."""
        prefix = rel.rstrip("/") + "/"
        out = []
        for key in self.list(prefix):
            dest = Path(local_dir) / key[len(prefix):]
            self.get_file(key, dest)
            out.append(dest)
        return out


