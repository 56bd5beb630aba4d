"""Checksums of downloads: SHA-256, S3 ETags (single-part MD5 or multipart MD5-of-MD5s), and
the ``<file>.sha256`` sidecar (``sha256sum`` format) that marks a verified file."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20


class _Hashes:
    """SHA-256 plus the MD5 an ETag needs (whole file, or per part of a multipart upload)."""

    def __init__(self, part_size: int | None, md5: bool = True):
        self.sha, self.md5 = hashlib.sha256(), (hashlib.md5() if md5 else None)
        self.part_size, self.part_md5s, self._part, self._in_part = part_size, [], hashlib.md5(), 0

    def update(self, data: bytes) -> None:
        self.sha.update(data)
        if self.md5 is not None:
            self.md5.update(data)
        if not self.part_size:
            return
        view = memoryview(data)
        while view:
            take = min(len(view), self.part_size - self._in_part)
            self._part.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self.part_size:
                self.part_md5s.append(self._part.digest())
                self._part, self._in_part = hashlib.md5(), 0

    def etag(self, parts: int) -> str:
        digests = self.part_md5s + ([self._part.digest()] if self._in_part else [])
        if len(digests) != parts:
            return "?"
        return hashlib.md5(b"".join(digests)).hexdigest() + f"-{parts}"


def _hash_file(path: Path, hashes: _Hashes) -> None:
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            hashes.update(block)


def sha256_file(path: str | os.PathLike) -> str:
    hashes = _Hashes(None, md5=False)
    _hash_file(Path(path), hashes)
    return hashes.sha.hexdigest()


def read_sidecar(path: Path) -> str | None:
    side = Path(str(path) + ".sha256")
    try:
        return side.read_text().split()[0].lower()
    except (OSError, IndexError):
        return None


def _write_sidecar(path: Path, digest: str) -> None:
    Path(str(path) + ".sha256").write_text(f"{digest}  {path.name}\n")


def is_verified(dest: Path, sha256: str | None = None, full: bool = False) -> bool:
    """``dest`` and its ``.sha256`` sidecar exist and agree with ``sha256``.

    The file is rehashed when ``full`` is set or when it is newer than its sidecar (changed
    after verification, or copied without keeping times).
    """
    recorded = read_sidecar(dest)
    if not dest.is_file() or recorded is None:
        return False
    if sha256 and recorded != sha256.lower():
        return False
    if full or Path(str(dest) + ".sha256").stat().st_mtime < dest.stat().st_mtime:
        return sha256_file(dest) == recorded
    return True
