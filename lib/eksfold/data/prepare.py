"""Download and unpack the databases of an alignment mode (resumable, idempotent).

Each database ends with ``<dest>/<name>/.done``; a rerun skips finished databases and resumes
an interrupted download. The layout is :mod:`eksfold.data.databases`'s.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, StorageError
from .databases import DATABASES, Database, Source, manifest
from .progress import transfer_bar
from .transfer import fetch


@dataclass
class Prepared:
    name: str
    path: Path
    skipped: bool
    seconds: float
    bytes_downloaded: int = 0


def prepare_databases(mode: str, dest: str | os.PathLike, *, mirror: str | None = None,
                      only: list[str] | None = None, progress: bool | None = None,
                      keep_archives: bool = False, workers: int = 8) -> list[Prepared]:
    """Download and unpack the databases of ``mode`` into ``dest`` (resumable, idempotent).

    Each database ends with ``<dest>/<name>/.done``; a rerun skips finished databases and
    resumes an interrupted download. ``mirror`` reads from your copy instead of the public
    sources (see the module docstring); ``only`` restricts to some database names (any of the
    catalogue's, in the mode or not: ``only=["uniprot"]`` adds pairing to a reduced set).
    In mode ``colabfold`` (MMseqs2) the uniprot FASTA also gets its MMseqs2 database.
    """
    dest = Path(dest).expanduser()
    dbs = [db for db in manifest(mode) if not only or db.name in only]
    dbs += [DATABASES[name] for name in only or () if name in DATABASES and DATABASES[name]
            not in dbs]
    if only and len(dbs) != len(set(only)):
        raise ConfigError(f"{sorted(set(only) - {d.name for d in dbs})}: not in mode {mode!r} "
                          "nor in the database catalogue")
    mirror = mirror or os.environ.get("EKSFOLD_DB_MIRROR") or None
    done = [_prepare(db, dest, mirror, progress, keep_archives, workers) for db in dbs]
    if mode == "colabfold" and "uniprot" in {db.name for db in dbs}:
        _uniprot_mmseqs(dest / DATABASES["uniprot"].path)   # skipped when built
    return done


def _uniprot_mmseqs(fasta: Path) -> None:
    """The uniprot FASTA's MMseqs2 database, where MMseqs2-mode pairing looks for it."""
    from ..alignment.mmseqs_db import build_plain
    from ..alignment.uniprot_mmseqs import expected_database

    build_plain(fasta, expected_database(fasta))


def _prepare(db: Database, dest: Path, mirror, progress, keep_archives, workers) -> Prepared:
    start = time.perf_counter()
    folder = dest / db.path.split("/", 1)[0]
    # mgnify and mgnify_2018_12 share a folder: each version gets its own marker
    done = folder / (".done" if folder.name == db.name else f".done.{db.name}")
    if done.exists():
        return Prepared(db.name, dest / db.path, True, 0.0)
    folder.mkdir(parents=True, exist_ok=True)
    moved = 0
    for src in db.sources:
        url = _mirrored(db, src, mirror)
        if src.unpack == "mmcif":
            moved += _mmcif_tree(url, folder / "mmcif_files", progress, workers)
            continue
        if src.unpack in ("gunzip", "unzstd") and (folder / _unpacked(src)).exists():
            continue   # unpacked by an interrupted attempt (written whole, then renamed)
        result = fetch(url, folder / src.filename, progress=progress, desc=f"{db.name} {src.filename}")
        moved += result.transferred
        if src.unpack == "gunzip":
            _gunzip(result.path, folder / src.filename.removesuffix(".gz"))
        elif src.unpack == "unzstd":   # AlphaFold3's databases (rfam)
            _unzstd(result.path, folder / _unpacked(src))
        elif src.unpack == "untar":
            _untar(result.path, folder)
        if src.unpack != "none" and not keep_archives:
            result.path.unlink()
            Path(str(result.path) + ".sha256").unlink(missing_ok=True)
    if db.concat:   # uniprot: TrEMBL then Swiss-Prot in one FASTA, as AlphaFold makes it
        _concatenate([folder / s.filename.removesuffix(".gz") for s in db.sources], dest / db.path)
    if db.tool == "mmseqs2":   # ColabFold's exprofile TSVs -> an indexed, expandable database
        _mmseqs_prepare(dest / db.path)
    if not (dest / db.path).exists() and not list(folder.glob(Path(db.path).name + "*")):
        raise StorageError(str(folder), f"{db.name}: unpacked, but {db.path} is not there",
                           "the source's layout differs from the expected one")
    done.write_text(json.dumps({"database": db.name, "sources": [_mirrored(db, s, mirror)
                                                                 for s in db.sources],
                                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    return Prepared(db.name, dest / db.path, False, time.perf_counter() - start, moved)


def _mmseqs_prepare(prefix: Path) -> None:
    from ..alignment.mmseqs_db import index_commands
    from ..alignment.tools import run_tool

    source = prefix.with_name(prefix.name.removesuffix("_db"))
    run_tool("mmseqs tsv2exprofiledb", ["mmseqs", "tsv2exprofiledb", str(source), str(prefix)])
    for argv in index_commands(prefix, "colabfold", prefix.parent / "tmp"):
        run_tool(f"mmseqs {argv[1]}", argv)


def _concatenate(parts: list[Path], out: Path) -> None:
    """``parts`` one after the other into ``out`` (written whole, then renamed); parts removed."""
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 24)
    os.replace(tmp, out)
    for part in parts:
        part.unlink()


def _mirrored(db: Database, src: Source, mirror: str | None) -> str:
    if not mirror:
        return src.url
    base = f"{mirror.rstrip('/')}/{db.path.split('/', 1)[0]}"
    return f"{base}/mmCIF/" if src.unpack == "mmcif" else f"{base}/{src.filename}"


def _unpacked(src: Source) -> str:
    return src.filename.removesuffix(".gz").removesuffix(".zst")


def _unzstd(archive: Path, out: Path) -> None:
    """zstd's own decompressor (Debian ``zstd``); written whole, then renamed."""
    if not shutil.which("zstd"):
        raise StorageError(str(archive), "zstd is not installed", "apt-get install zstd")
    tmp = out.with_name(f".{out.name}.tmp")
    proc = subprocess.run(["zstd", "-d", "-q", "-f", "-o", str(tmp), str(archive)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise StorageError(str(archive), f"zstd failed: {proc.stderr.strip()[-500:]}")
    os.replace(tmp, out)


def _gunzip(archive: Path, out: Path, pigz: bool = True) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    if pigz and shutil.which("pigz"):
        with open(tmp, "wb") as fh:
            subprocess.run(["pigz", "-dc", str(archive)], stdout=fh, check=True)
    else:
        with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, out)


def _untar(archive: Path, folder: Path) -> None:
    if shutil.which("tar"):
        compress = ["--use-compress-program=pigz"] if shutil.which("pigz") else ["-z"]
        proc = subprocess.run(["tar", *compress, "-xf", str(archive), "-C", str(folder),
                               "--no-same-owner"], capture_output=True, text=True)
        if proc.returncode:
            raise StorageError(str(archive), f"tar failed: {proc.stderr.strip()[-500:]}")
        return
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")


def _mmcif_tree(url: str, out: Path, progress, workers: int) -> int:
    """Mirror a ``divided/mmCIF`` tree of ``*.cif.gz`` into ``out/<id>.cif`` (resumable per file)."""
    out.mkdir(parents=True, exist_ok=True)
    if url.startswith("rsync://"):
        raw = out.parent / "raw"
        raw.mkdir(exist_ok=True)
        proc = subprocess.run(["rsync", "--recursive", "--links", "--perms", "--times",
                               "--compress", "--delete", url, str(raw) + "/"])
        if proc.returncode:
            raise StorageError(url, f"rsync exited with code {proc.returncode}",
                               "check network access to rsync.rcsb.org port 33444, or use a mirror")
        files = [(p, p.name) for p in raw.rglob("*.cif.gz")]
        for path, name in files:
            _gunzip(path, out / name.removesuffix(".gz"), pigz=False)
        shutil.rmtree(raw)
        return sum(p.stat().st_size for p in out.iterdir())
    from ..storage import open_store
    store = open_store(url.rstrip("/"))
    keys = [k for k in store.list() if k.endswith((".cif.gz", ".cif"))]
    todo = [k for k in keys if not (out / k.rsplit("/", 1)[-1].removesuffix(".gz")).exists()]
    bar = transfer_bar(len(keys), "pdb_mmcif", initial=len(keys) - len(todo), progress=progress,
                       unit="file")
    scratch = out.parent / ".mmcif_download"
    scratch.mkdir(exist_ok=True)

    def one(key: str) -> int:
        name = key.rsplit("/", 1)[-1]
        local = scratch / name
        store.get_file(key, local)
        size = local.stat().st_size
        if name.endswith(".gz"):
            _gunzip(local, out / name.removesuffix(".gz"), pigz=False)
            local.unlink()
        else:
            os.replace(local, out / name)
        bar(1)
        return size

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            moved = sum(pool.map(one, todo))
    finally:
        bar.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return moved
