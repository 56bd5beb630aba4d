"""Resumable, verified downloads from ``s3://``, ``http(s)://`` or local sources.

:func:`fetch` downloads into ``<dest>.part`` and resumes an interrupted transfer with a Range
GET from the part's size (S3 requests carry ``If-Match: <etag>`` so a changed object restarts
the download instead of splicing two versions). When the bytes are all there it checks the size,
the S3 ETag (single-part MD5 or multipart MD5-of-MD5s) and the SHA-256 (a known value, or a
``<source>.sha256`` sidecar published next to the object), renames the part into place and
writes ``<dest>.sha256`` (``sha256sum`` format). A later call finds that sidecar and skips.
"""
from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError

from ..errors import StorageError
from .progress import transfer_bar
from .checksums import CHUNK, _Hashes, _hash_file, _write_sidecar, is_verified, read_sidecar, sha256_file  # noqa: F401
from .sources import Changed, open_source

# Errors after which a broken stream is resumed from the bytes already written.
_TRANSIENT = (BotoCoreError, ConnectionError, TimeoutError, http.client.HTTPException)


class IntegrityError(StorageError):
    """Downloaded bytes do not match the expected size, ETag or checksum."""


@dataclass
class FetchResult:
    path: Path
    size: int
    sha256: str
    skipped: bool = False       # already present and verified: nothing transferred
    resumed_from: int = 0       # bytes found in <dest>.part when the call started
    transferred: int = 0        # bytes received by this call
    reconnects: int = 0         # broken streams resumed within this call
    seconds: float = 0.0


# -- fetch -------------------------------------------------------------------------------
def fetch(source: str, dest: str | os.PathLike, *, sha256: str | None = None,
          size: int | None = None, anon: bool | None = None, progress: bool | None = None,
          max_reconnects: int = 5, verify_existing: bool = False,
          desc: str | None = None) -> FetchResult:
    """Download ``source`` to ``dest``, resuming a previous partial download.

    Parameters
    ----------
    source : ``s3://bucket/key``, ``http(s)://...`` or a local path
    dest : the local file to create
    sha256, size : expected values; when ``sha256`` is None a ``<source>.sha256`` sidecar is used
        if the source publishes one
    anon : unsigned S3 requests (default: ``EKSFOLD_S3_UNSIGNED`` or a known public bucket)
    max_reconnects : broken streams resumed within this call before giving up (the part file is
        kept either way, so a later call resumes)
    verify_existing : rehash an already-present file instead of trusting its sidecar
    """
    dest = Path(dest).expanduser()
    if is_verified(dest, sha256, full=verify_existing):
        return FetchResult(dest, dest.stat().st_size, read_sidecar(dest), skipped=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):  # one writer per file, also across pods on a shared (flock) volume
        if is_verified(dest, sha256):  # another process finished it while we waited
            return FetchResult(dest, dest.stat().st_size, read_sidecar(dest), skipped=True)
        return _fetch(str(source), dest, sha256, size, anon, progress, max_reconnects, desc)


@contextmanager
def _locked(dest: Path):
    """An exclusive ``flock`` on ``<dest>.lock``, removed on release.

    A waiter that wakes up holding a lock on a file already unlinked by the previous holder
    tries again on the new one, so unlinking cannot let two processes in at once.
    """
    path = Path(str(dest) + ".lock")
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process downloading {dest} ...", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _fetch(source, dest, sha256, size, anon, progress, max_reconnects, desc) -> FetchResult:
    start = time.perf_counter()
    if "://" not in source:
        return _copy_local(Path(source).expanduser(), dest, sha256, start)

    src = open_source(source, anon)
    remote_size, etag = src.head()
    if size is not None and remote_size is not None and size != remote_size:
        raise IntegrityError(source, f"size is {remote_size} bytes, expected {size}",
                             "the source holds a different file than the one pinned")
    total = remote_size if remote_size is not None else size
    expected = (sha256 or src.sidecar() or "").lower() or None
    parts = int(etag.strip('"').rsplit("-", 1)[1]) if etag and "-" in etag else 0
    part_size = src.part_size() if parts else None

    if dest.is_file() and total is not None and dest.stat().st_size == total:
        adopted = _adopt(source, dest, total, etag, parts, part_size, expected)
        if adopted:
            return adopted
    part = Path(str(dest) + ".part")
    state = Path(str(dest) + ".part.json")
    offset = part.stat().st_size if part.exists() else 0
    try:
        if json.loads(state.read_text()) != {"source": source, "etag": etag, "size": total}:
            offset = 0
    except (OSError, ValueError):
        offset = 0
    if total is not None and offset > total:
        offset = 0
    state.write_text(json.dumps({"source": source, "etag": etag, "size": total}))
    if offset == 0:
        part.write_bytes(b"")
    hashes = _Hashes(part_size, md5=not parts)
    _hash_file(part, hashes)
    result = FetchResult(dest, 0, "", resumed_from=offset)

    bar = transfer_bar(total, desc or dest.name, initial=offset, progress=progress)
    try:
        with open(part, "ab") as out:
            while total is None or offset < total:
                try:
                    body = src.open(offset, etag if source.startswith("s3://") else None)
                except Changed:
                    out.truncate(0)
                    out.seek(0)
                    offset, hashes = 0, _Hashes(part_size, md5=not parts)
                    result.resumed_from = 0
                    bar.reset()
                    body = src.open(0, None)
                try:
                    while block := body.read(CHUNK):
                        out.write(block)
                        hashes.update(block)
                        offset += len(block)
                        result.transferred += len(block)
                        bar(len(block))
                    if total is None:
                        total = offset
                except _TRANSIENT as exc:
                    out.flush()
                    if result.reconnects >= max_reconnects:
                        raise StorageError(
                            source, f"transfer interrupted after {offset} of {total} bytes "
                            f"({type(exc).__name__}: {exc})",
                            f"the partial file {part} is kept: run again to resume") from None
                    result.reconnects += 1
                    time.sleep(min(0.2 * 2 ** result.reconnects, 5))
                finally:
                    body.close()
    finally:
        bar.close(f", resumed from {result.resumed_from} B" if result.resumed_from else "")

    _verify(source, part, offset, total, etag, parts, hashes, expected, state)
    os.replace(part, dest)
    state.unlink(missing_ok=True)
    digest = hashes.sha.hexdigest()
    _write_sidecar(dest, digest)
    result.size, result.sha256 = offset, digest
    result.seconds = time.perf_counter() - start
    return result


def _adopt(source, dest, total, etag, parts, part_size, expected) -> FetchResult | None:
    """A file already at ``dest`` (no sidecar) that matches the source is kept as it is."""
    hashes = _Hashes(part_size, md5=not parts)
    _hash_file(dest, hashes)
    if not (etag or expected) or _problems(total, total, etag, parts, hashes, expected):
        return None
    _write_sidecar(dest, hashes.sha.hexdigest())
    return FetchResult(dest, total, hashes.sha.hexdigest(), skipped=True)


def _problems(offset, total, etag, parts, hashes, expected) -> list[str]:
    problems = []
    if total is not None and offset != total:
        problems.append(f"size {offset} != {total}")
    if etag and parts and hashes.part_size:
        got = hashes.etag(parts)
        if got != etag.strip('"'):
            problems.append(f"multipart ETag {got} != {etag.strip(chr(34))}")
    elif etag and not parts and len(etag.strip('"')) == 32 and hashes.md5 is not None:
        if hashes.md5.hexdigest() != etag.strip('"'):
            problems.append(f"MD5 {hashes.md5.hexdigest()} != ETag {etag.strip(chr(34))}")
    if expected and hashes.sha.hexdigest() != expected:
        problems.append(f"sha256 {hashes.sha.hexdigest()} != expected {expected}")
    return problems


def _verify(source, part, offset, total, etag, parts, hashes, expected, state) -> None:
    problems = _problems(offset, total, etag, parts, hashes, expected)
    if problems:
        part.unlink(missing_ok=True)
        state.unlink(missing_ok=True)
        raise IntegrityError(source, "downloaded data failed verification: " + "; ".join(problems),
                             "the partial file was removed; check the expected checksum or "
                             "download again")


def _copy_local(src: Path, dest: Path, sha256: str | None, start: float) -> FetchResult:
    if not src.is_file():
        raise FileNotFoundError(2, "no such file", str(src))
    tmp = Path(str(dest) + ".part")
    shutil.copyfile(src, tmp)
    digest = sha256_file(tmp)
    if sha256 and digest != sha256.lower():
        tmp.unlink()
        raise IntegrityError(str(src), f"sha256 {digest} != expected {sha256}")
    os.replace(tmp, dest)
    _write_sidecar(dest, digest)
    return FetchResult(dest, dest.stat().st_size, digest, transferred=dest.stat().st_size,
                       seconds=time.perf_counter() - start)
