"""The sequence databases each alignment mode needs, and the step that downloads and unpacks them.

The manifest follows AlphaFold's ``scripts/download_*.sh`` (the sources OpenFold uses too);
sizes are approximate, from AlphaFold's README ("Genetic databases", v2.3 and CASP14 versions).

========== ======================================================= ==========
mode       databases                                               download
========== ======================================================= ==========
reduced    uniref90, mgnify, small_bfd, pdb70, pdb_mmcif           ~173 GB
full       uniref90, mgnify, bfd, uniref30, pdb70, pdb_mmcif       ~488 GB
casp14     uniref90, mgnify_2018_12, bfd, uniclust30, pdb70, ...   ~435 GB
========== ======================================================= ==========

Layout under the destination (``/fsx/db`` on the cluster; the same as ``cluster/data-prep``)::

    uniref90/uniref90.fasta              mgnify/mgy_clusters_2022_05.fa
    small_bfd/bfd-first_non_consensus_sequences.fasta
    bfd/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt_{a3m,hhm,cs219}.ff{data,index}
    uniref30/UniRef30_2021_03_*          pdb70/pdb70_*
    pdb_mmcif/mmcif_files/*.cif          pdb_mmcif/obsolete.dat
    <db>/.done                           written last; a rerun skips that database

``mirror`` replaces the public sources by your own copy (``s3://bucket/prefix`` or a URL):
``<mirror>/<db>/<file name of the source>``, and for pdb_mmcif ``<mirror>/pdb_mmcif/mmCIF/``
(the RCSB ``divided/mmCIF`` tree of ``<id>.cif.gz``) plus ``<mirror>/pdb_mmcif/obsolete.dat``.
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
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, StorageError
from .progress import transfer_bar
from .transfer import fetch

GCS = "https://storage.googleapis.com/alphafold-databases"


@dataclass(frozen=True)
class Source:
    """One file (or file tree) to download; ``unpack`` is gunzip|untar|none|mmcif."""

    url: str
    unpack: str
    download_gb: float

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Database:
    """A sequence/structure database: where it comes from and what tools are pointed at."""

    name: str
    tool: str                   # jackhmmer | hhblits | hhsearch | templates
    path: str                   # relative to the db root: a file, an HH-suite prefix or a dir
    size_gb: float              # unpacked, approximate
    sources: tuple[Source, ...] = field(default_factory=tuple)
    note: str = ""
    role: str | None = None     # the eksfold.config.DatabaseConfig field it fills (None: templates)

    @property
    def download_gb(self) -> float:
        return round(sum(s.download_gb for s in self.sources), 1)


DATABASES: dict[str, Database] = {db.name: db for db in (
    Database("uniref90", "jackhmmer", "uniref90/uniref90.fasta", 67, (Source(
        "https://ftp.ebi.ac.uk/pub/databases/uniprot/uniref/uniref90/uniref90.fasta.gz",
        "gunzip", 34),), "current UniProt release; changes monthly", role="uniref90"),
    Database("mgnify", "jackhmmer", "mgnify/mgy_clusters_2022_05.fa", 120, (Source(
        f"{GCS}/v2.3/mgy_clusters_2022_05.fa.gz", "gunzip", 67),), role="mgnify"),
    Database("mgnify_2018_12", "jackhmmer", "mgnify/mgy_clusters_2018_12.fa", 64, (Source(
        f"{GCS}/casp14_versions/mgy_clusters_2018_12.fa.gz", "gunzip", 32.9),),
        "the version OpenFold was trained with", role="mgnify"),
    Database("small_bfd", "jackhmmer", "small_bfd/bfd-first_non_consensus_sequences.fasta", 17,
             (Source(f"{GCS}/reduced_dbs/bfd-first_non_consensus_sequences.fasta.gz",
                     "gunzip", 9.6),), role="small_bfd"),
    Database("bfd", "hhblits", "bfd/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt",
             1800, (Source(f"{GCS}/casp14_versions/"
                           "bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt.tar.gz",
                           "untar", 271.6),), role="bfd"),
    Database("uniref30", "hhblits", "uniref30/UniRef30_2021_03", 206, (Source(
        f"{GCS}/v2.3/UniRef30_2021_03.tar.gz", "untar", 52.5),),
        "successor of uniclust30 (AlphaFold >= 2.3)", role="uniclust30"),
    Database("uniclust30", "hhblits", "uniclust30/uniclust30_2018_08/uniclust30_2018_08", 86, (
        Source(f"{GCS}/casp14_versions/uniclust30_2018_08_hhsuite.tar.gz", "untar", 24.9),),
        "the version OpenFold was trained with", role="uniclust30"),
    Database("pdb70", "hhsearch", "pdb70/pdb70", 56, (Source(
        "https://wwwuser.gwdg.de/~compbiol/data/hhsuite/databases/hhsuite_dbs/old-releases/"
        "pdb70_from_mmcif_200401.tar.gz", "untar", 19.5),), role="pdb70"),
    Database("pdb_mmcif", "templates", "pdb_mmcif/mmcif_files", 238, (
        Source("rsync://rsync.rcsb.org:33444/ftp_data/structures/divided/mmCIF/", "mmcif", 43),
        Source("https://files.wwpdb.org/pub/pdb/data/status/obsolete.dat", "none", 0.0)),
        "about 200,000 files; also in the public bucket s3://pdbsnapshots/<date>/pub/pdb/data/"
        "structures/divided/mmCIF/ (use it as pdb_mmcif's mirror)"),
)}

MODES: dict[str, tuple[str, ...]] = {
    "reduced": ("uniref90", "mgnify", "small_bfd", "pdb70", "pdb_mmcif"),
    "full": ("uniref90", "mgnify", "bfd", "uniref30", "pdb70", "pdb_mmcif"),
    "casp14": ("uniref90", "mgnify_2018_12", "bfd", "uniclust30", "pdb70", "pdb_mmcif"),
}


def manifest(mode: str = "reduced") -> list[Database]:
    """The databases of an alignment mode (``reduced``, ``full``, ``casp14``)."""
    if mode not in MODES:
        raise ConfigError(f"unknown database mode {mode!r}; known: {', '.join(MODES)}")
    return [DATABASES[name] for name in MODES[mode]]


def database_paths(mode: str, root: str | os.PathLike) -> dict[str, Path]:
    """What the aligners are pointed at, by database name, for a db root such as ``/fsx/db``."""
    return {db.name: Path(root) / db.path for db in manifest(mode)}


def database_config(mode: str, root: str | os.PathLike):
    """An :class:`eksfold.config.DatabaseConfig` for ``mode`` under ``root``: each database
    fills the field its ``role`` names (pdb_mmcif feeds templates, which the align stage does
    not build)."""
    from ..config import DatabaseConfig
    return DatabaseConfig(**{db.role: str(Path(root) / db.path) for db in manifest(mode)
                             if db.role})


def describe(mode: str = "reduced") -> str:
    """A table of a mode's databases: name, tool, download and unpacked sizes."""
    rows = [f"{'database':<16}{'tool':<11}{'download':>10}{'unpacked':>10}  path"]
    for db in manifest(mode):
        rows.append(f"{db.name:<16}{db.tool:<11}{db.download_gb:>8.1f}GB{db.size_gb:>8.0f}GB  {db.path}")
    dl = sum(db.download_gb for db in manifest(mode))
    size = sum(db.size_gb for db in manifest(mode))
    rows.append(f"{'total':<27}{dl:>8.1f}GB{size:>8.0f}GB")
    return "\n".join(rows)


# -- download and unpack -----------------------------------------------------------------
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
    sources (see the module docstring); ``only`` restricts to some database names.
    """
    dest = Path(dest).expanduser()
    dbs = [db for db in manifest(mode) if not only or db.name in only]
    if only and len(dbs) != len(set(only)):
        raise ConfigError(f"{sorted(set(only) - {d.name for d in dbs})} not in mode {mode!r}")
    mirror = mirror or os.environ.get("EKSFOLD_DB_MIRROR") or None
    return [_prepare(db, dest, mirror, progress, keep_archives, workers) for db in dbs]


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
        result = fetch(url, folder / src.filename, progress=progress, desc=f"{db.name} {src.filename}")
        moved += result.transferred
        if src.unpack == "gunzip":
            _gunzip(result.path, folder / src.filename.removesuffix(".gz"))
        elif src.unpack == "untar":
            _untar(result.path, folder)
        if src.unpack != "none" and not keep_archives:
            result.path.unlink()
            Path(str(result.path) + ".sha256").unlink(missing_ok=True)
    if not (dest / db.path).exists() and not list(folder.glob(Path(db.path).name + "*")):
        raise StorageError(str(folder), f"{db.name}: unpacked, but {db.path} is not there",
                           "the source's layout differs from the expected one")
    done.write_text(json.dumps({"database": db.name, "sources": [_mirrored(db, s, mirror)
                                                                 for s in db.sources],
                                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    return Prepared(db.name, dest / db.path, False, time.perf_counter() - start, moved)


def _mirrored(db: Database, src: Source, mirror: str | None) -> str:
    if not mirror:
        return src.url
    base = f"{mirror.rstrip('/')}/{db.path.split('/', 1)[0]}"
    return f"{base}/mmCIF/" if src.unpack == "mmcif" else f"{base}/{src.filename}"


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
