"""Experimental reference structures of PDB chains, for accuracy analysis.

Targets that name a PDB entry and chain (the CAMEO sets: ``| pdbid: 7ELF | chain: C``) are
compared with the experimental structure. :func:`fetch_reference` downloads the entry from
the PDB, extracts the chain (first model, amino-acid residues, heavy atoms, author numbering)
and writes ``<dir>/<pdb>.<chain>.pdb`` — the naming of ``shared/data/cameo2022_refs``.

The source is a URL template with ``{pdb}`` (lower case), ``{PDB}`` (upper case) and ``{mid}``
(the middle two characters, as in the PDB's ``divided`` tree); ``.gz`` files are unpacked.
Defaults to RCSB; ``$EKSFOLD_PDB_URL`` or ``base_url`` changes it, for example to the public
snapshot bucket ``s3://pdbsnapshots/<YYYYMMDD>/pub/pdb/data/structures/divided/mmCIF/{mid}/{pdb}.cif.gz``.
"""
from __future__ import annotations

import gzip
import io
import os
import tempfile
from pathlib import Path

from ..errors import EksfoldError, StorageError
from .transfer import fetch

RCSB_URL = "https://files.rcsb.org/download/{PDB}.cif"
PDBSNAPSHOTS_URL = ("s3://pdbsnapshots/{date}/pub/pdb/data/structures/divided/mmCIF/"
                    "{mid}/{pdb}.cif.gz")


class ReferenceError(EksfoldError):
    """A reference structure cannot be made (entry or chain missing, unparsable file)."""


def reference_url(pdb_id: str, base_url: str | None = None) -> str:
    template = base_url or os.environ.get("EKSFOLD_PDB_URL") or RCSB_URL
    pdb = pdb_id.strip().lower()
    return template.format(pdb=pdb, PDB=pdb.upper(), mid=pdb[1:3])


def reference_path(dest_dir: str | os.PathLike, pdb_id: str, chain: str) -> Path:
    return Path(dest_dir) / f"{pdb_id.strip().lower()}.{chain.strip()}.pdb"


def fetch_reference(pdb_id: str, chain: str, dest_dir: str | os.PathLike, *,
                    base_url: str | None = None, progress: bool | None = False,
                    overwrite: bool = False) -> Path:
    """Download ``pdb_id``, extract ``chain`` and write ``<dest_dir>/<pdb>.<chain>.pdb``.

    An existing output is kept unless ``overwrite``. Raises ``FileNotFoundError`` when the
    entry is not at the source and :class:`ReferenceError` when it has no such chain.
    """
    out = reference_path(dest_dir, pdb_id, chain)
    if out.exists() and not overwrite:
        return out
    url = reference_url(pdb_id, base_url)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".ref-") as tmp:
        local = Path(tmp) / url.rsplit("/", 1)[-1]
        fetch(url, local, progress=progress)
        text = _read_text(local)
    extract_chain(text, chain, out, fmt=_format(local.name, text), name=pdb_id.lower())
    return out


def fetch_references(targets, dest_dir: str | os.PathLike, *, base_url: str | None = None,
                     progress: bool | None = None) -> dict[str, Path | Exception]:
    """Fetch the references of every target with a ``pdb_id`` and ``chain``.

    ``targets`` are :class:`eksfold.targets.Target` objects (or ``(pdb_id, chain)`` pairs).
    Returns ``{"<pdb>.<chain>": path or the error}``: one missing entry does not stop the rest.
    """
    from .progress import transfer_bar
    pairs = []
    for t in targets:
        pdb, chain = (t if isinstance(t, tuple) else (t.pdb_id, t.chain))
        if pdb and chain:
            pairs.append((pdb.lower(), chain))
    results: dict[str, Path | Exception] = {}
    bar = transfer_bar(len(pairs), "references", progress=progress, unit="structure")
    try:
        for pdb, chain in dict.fromkeys(pairs):
            try:
                results[f"{pdb}.{chain}"] = fetch_reference(pdb, chain, dest_dir, base_url=base_url)
            except (FileNotFoundError, ReferenceError, StorageError) as exc:
                results[f"{pdb}.{chain}"] = exc
            bar(1)
    finally:
        bar.close()
    return results


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _format(name: str, text: str) -> str:
    name = name.removesuffix(".gz")
    if name.endswith((".cif", ".mmcif")) or text.lstrip().startswith("data_"):
        return "cif"
    return "pdb"


def extract_chain(text: str, chain: str, out: str | os.PathLike, fmt: str = "cif",
                  name: str = "ref") -> Path:
    """Write one chain of a structure (mmCIF or PDB text) as a PDB file.

    Keeps the first model, standard and modified amino-acid residues (no waters or ligands),
    heavy atoms, the first alternate location, and the author residue numbering. mmCIF chains
    are the author chain ids (``auth_asym_id``), as in CAMEO and the PDB's own PDB-format files.
    """
    import warnings

    from Bio.PDB import MMCIFParser, PDBIO, PDBParser, Select
    from Bio.PDB.PDBExceptions import PDBConstructionWarning
    from Bio.PDB.Polypeptide import is_aa

    parser = MMCIFParser(QUIET=True) if fmt == "cif" else PDBParser(QUIET=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PDBConstructionWarning)
            structure = parser.get_structure(name, io.StringIO(text))
    except Exception as exc:  # Biopython raises assorted errors on malformed files
        raise ReferenceError(f"{name}: cannot parse structure ({type(exc).__name__}: {exc})") from exc
    models = list(structure)
    if not models:
        raise ReferenceError(f"{name}: no models in the structure file")
    model = models[0]
    if chain not in model:
        raise ReferenceError(f"{name}: no chain {chain!r}; chains are {[c.id for c in model]}")
    if len(chain) > 1:
        raise ReferenceError(f"{name}: chain id {chain!r} does not fit the PDB format (1 character)")

    class _Chain(Select):
        def accept_chain(self, c):
            return c.id == chain

        def accept_residue(self, residue):
            return residue.id[0] == " " or (residue.id[0].startswith("H_")
                                            and is_aa(residue, standard=False))

        def accept_atom(self, atom):
            return atom.element != "H" and (not atom.is_disordered() or atom.get_altloc() in (" ", "A"))

    out = Path(out)
    pdbio = PDBIO()
    pdbio.set_structure(model)
    tmp = out.with_name(f".{out.name}.tmp")
    pdbio.save(str(tmp), _Chain())
    if not any(line.startswith("ATOM") for line in tmp.read_text().splitlines()):
        tmp.unlink()
        raise ReferenceError(f"{name}: chain {chain!r} has no amino-acid residues")
    os.replace(tmp, out)
    return out
