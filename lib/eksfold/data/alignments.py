"""OpenFold's precomputed alignments for PDB chains (OpenProteinSet, ``s3://openfold/pdb/``).

The public bucket holds, for each PDB chain ``<pdbid>_<chain>`` (lower-case PDB id, author
chain), the MSAs and template hits OpenFold was trained with::

    s3://openfold/pdb/1abc_A/a3m/{bfd_uniclust_hits,mgnify_hits,uniref90_hits}.a3m
    s3://openfold/pdb/1abc_A/hhr/pdb70_hits.hhr

:func:`fetch_alignments` copies them, flattened, into an OpenFold alignment directory (the
layout the align stage writes: ``targets/<id>/align/``) so that stage can be skipped. It
returns ``None`` when the chain has no precomputed alignments.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..storage import open_store
from .progress import transfer_bar

ALIGNMENTS_URI = "s3://openfold/pdb"
ALIGNMENT_SUFFIXES = (".a3m", ".sto", ".hhr")


def chain_name(pdb_id: str, chain: str) -> str:
    """OpenProteinSet's directory name for a chain: ``"7ELF", "C"`` -> ``"7elf_C"``."""
    return f"{pdb_id.strip().lower()}_{chain.strip()}"


def fetch_alignments(pdb_id: str, chain: str, dest: str | os.PathLike, *,
                     source: str | None = None, progress: bool | None = None,
                     anon: bool | None = None) -> Path | None:
    """Download the precomputed alignments of ``pdb_id``/``chain`` into ``dest``.

    ``source`` is the base URI (default ``$EKSFOLD_ALIGNMENTS_URI`` or ``s3://openfold/pdb``;
    a local directory laid out the same way works too). Files from the ``a3m/`` and ``hhr/``
    folders land flat in ``dest``; structure files (``pdb/``, ``cif/``) are skipped.
    Returns ``dest`` or ``None`` when the bucket has nothing for this chain.
    """
    base = (source or os.environ.get("EKSFOLD_ALIGNMENTS_URI") or ALIGNMENTS_URI).rstrip("/")
    uri = f"{base}/{chain_name(pdb_id, chain)}"
    store = open_store(uri, **({"anon": anon} if anon is not None and "://" in uri else {}))
    keys = [k for k in store.list() if k.endswith(ALIGNMENT_SUFFIXES)]
    if not keys:
        return None
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    bar = transfer_bar(len(keys), f"alignments {chain_name(pdb_id, chain)}", progress=progress,
                       unit="file")
    try:
        for key in keys:
            store.get_file(key, dest / key.rsplit("/", 1)[-1])
            bar(1)
    finally:
        bar.close()
    return dest
