"""The MSA cache: finished alignments stored by (sequence, mode, database), reused by any run.

An entry lives under ``ROOT/<sha[:2]>/<sha256(sequence)>/<mode>/<db key>/``: the alignment files
first, then ``entry.json`` (file names, sizes, sha256 of each, the database identity) written
last and atomically. A reader trusts only entries whose ``entry.json`` exists and whose files
match it, so an interrupted ``put`` is never used. The root is any :func:`eksfold.storage.open_store`
root: a local directory, an FSx path or ``s3://bucket/prefix``.

    cache = MSACache("s3://my-bucket/msa-cache")
    ident = database_identity("/fsx/db/uniref30_2302_db")
    if not cache.get(seq, "mmseqs2", ident, align_dir):
        ...search...
        cache.put(seq, "mmseqs2", ident, align_dir)
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from ..errors import EksfoldError
from ..storage import open_store
from .mmseqs_db import database_files

ENTRY = "entry.json"
MSA_SUFFIXES = (".a3m", ".sto", ".hhr")


def sequence_key(sequence: str) -> str:
    return hashlib.sha256(sequence.strip().upper().encode()).hexdigest()


def database_identity(*paths: str | os.PathLike, **extra) -> dict:
    """What identifies a database's content cheaply: per file path, size and mtime.

    ``paths`` are FASTA files or MMseqs2 database prefixes (all files of the prefix count).
    Hashing a 100 GB database per run is too slow, so size+mtime stand in for the content; pass
    ``sha256=...`` (e.g. from the database manifest) in ``extra`` when it is known.
    """
    files = {}
    for path in paths:
        path = Path(path)
        found = [path] if path.is_file() else database_files(path)
        if not found:
            raise EksfoldError(f"database {path} not found (cannot identify it for the MSA cache)")
        for p in found:
            st = p.stat()
            files[str(p.resolve())] = [st.st_size, st.st_mtime_ns]
    return {"files": files, **extra}


def identity_key(db_identity: dict | str) -> str:
    text = db_identity if isinstance(db_identity, str) else json.dumps(db_identity, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class MSACache:
    """Alignment folders keyed by sequence, alignment mode and database identity."""

    def __init__(self, root: str | os.PathLike):
        self.root = str(root)
        self.store = open_store(self.root)

    def prefix(self, sequence: str, mode: str, db_identity: dict | str) -> str:
        sha = sequence_key(sequence)
        return f"{sha[:2]}/{sha}/{mode}/{identity_key(db_identity)}"

    def entry(self, sequence: str, mode: str, db_identity: dict | str) -> dict | None:
        """The committed entry's description, or None."""
        try:
            return json.loads(self.store.read_bytes(f"{self.prefix(sequence, mode, db_identity)}/{ENTRY}"))
        except FileNotFoundError:
            return None

    def get(self, sequence: str, mode: str, db_identity: dict | str, dest_dir: str | os.PathLike) -> bool:
        """Restore a cached alignment into ``dest_dir``; False when there is no usable entry.

        Every file is checked against the entry's sha256 before it is put in place, so a
        corrupted object is a miss rather than a wrong MSA.
        """
        entry = self.entry(sequence, mode, db_identity)
        if entry is None:
            return False
        prefix, dest = self.prefix(sequence, mode, db_identity), Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        staged = []
        try:
            for name, meta in entry["files"].items():
                tmp = dest / f".{name}.cache-tmp"
                self.store.get_file(f"{prefix}/{name}", tmp)
                staged.append((tmp, dest / name))
                if tmp.stat().st_size != meta["size"] or _sha256(tmp) != meta["sha256"]:
                    raise ValueError(f"{name} does not match the cache entry")
        except (FileNotFoundError, ValueError):
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            return False
        for tmp, final in staged:
            os.replace(tmp, final)
        return True

    def put(self, sequence: str, mode: str, db_identity: dict | str, src_dir: str | os.PathLike,
            names: list[str] | None = None) -> str:
        """Store the MSA files of ``src_dir`` (default: every .a3m/.sto/.hhr); return the prefix.

        Files are uploaded first and ``entry.json`` last, so readers see all or nothing.
        """
        src = Path(src_dir)
        names = sorted(names or [p.name for p in src.iterdir() if p.suffix in MSA_SUFFIXES])
        if not names:
            raise EksfoldError(f"nothing to cache in {src}: no alignment files")
        prefix = self.prefix(sequence, mode, db_identity)
        files = {}
        for name in names:
            path = src / name
            self.store.put_file(path, f"{prefix}/{name}")
            files[name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        entry = {"sequence_sha256": sequence_key(sequence), "length": len(sequence.strip()),
                 "mode": mode, "database": db_identity, "files": files,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.store.write_bytes(f"{prefix}/{ENTRY}", json.dumps(entry, indent=1).encode())
        return self.store.uri(prefix)
