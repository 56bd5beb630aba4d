"""Structure files in and out, through gemmi: PDB and mmCIF, plain, gzip or bzip2.

Every structure eksfold reads (predictions from the run store as text, references as files,
files users bring) goes through :func:`load_structure`, so PDB-style and MD-style PDB files
(left-justified atom names, blank chain column, segment ids), mmCIF and compressed files are
handled by one maintained parser. :func:`to_mmcif` writes a prediction as mmCIF with pLDDT in
``B_iso_or_equiv`` and an ``_ma_qa_metric`` pLDDT block, as the AlphaFold Database distributes
models; :func:`transform_text` moves every atom of a structure by a superposition.

>>> from eksfold.structure_io import to_mmcif
>>> cif = to_mmcif(open("unrelaxed.pdb").read())                      # doctest: +SKIP
"""
from __future__ import annotations

import bz2
import gzip
import os
from pathlib import Path

import gemmi
import numpy as np

from .errors import EksfoldError


class StructureError(EksfoldError, ValueError):
    """A structure file (or one chain of it) cannot be read or has nothing usable.

    ``source`` names the file (or ``<PDB text>``), ``chain`` the chain asked for (or None).
    A ``ValueError`` too, so callers written for the old reader keep catching it.
    """

    def __init__(self, source: str, problem: str, chain: str | None = None):
        self.source, self.problem, self.chain = source, problem, chain
        where = f"{source}, chain {chain!r}" if chain is not None else source
        super().__init__(f"{where}: {problem}")


def _decompress(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    return data


def _is_text(source) -> bool:
    """Old callers pass PDB text as ``str``: anything with a newline is taken as text."""
    return isinstance(source, (bytes, bytearray)) or (isinstance(source, str) and "\n" in source)


def source_text(source) -> tuple[str, str]:
    """``(text, name)`` of a path, PDB/mmCIF text or (compressed) bytes.

    ``name`` is the path for files and ``<PDB text>`` / ``<mmCIF text>`` for text, used in
    error messages.
    """
    if _is_text(source):
        data, name = source, None
    else:
        name = os.fspath(source)
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise StructureError(name, f"cannot read file ({exc.strerror or exc})") from exc
    if isinstance(data, (bytes, bytearray)):
        try:
            data = _decompress(bytes(data)).decode("utf-8", errors="replace")
        except (OSError, EOFError, ValueError) as exc:
            raise StructureError(name or "<bytes>", f"corrupt compressed data ({exc})") from exc
    fmt = "mmCIF" if is_mmcif(data) else "PDB"
    return data, name or f"<{fmt} text>"


def is_mmcif(text: str) -> bool:
    """mmCIF starts with a ``data_`` block header (after comments and blank lines)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.lower().startswith("data_")
    return False


def load_structure(source, *, keep_altlocs: bool = False) -> tuple[gemmi.Structure, str]:
    """Parse a structure with gemmi; returns ``(structure, name)``.

    Parameters
    ----------
    source : str, bytes or path-like
        A PDB or mmCIF file (optionally ``.gz``/``.bz2``, detected by content), or its text.
    keep_altlocs : bool
        Keep alternative conformations; by default only the first is kept (gemmi's
        ``remove_alternative_conformations``, which also drops point-mutation alternatives).

    Raises
    ------
    StructureError
        If gemmi cannot parse it or it holds no model.
    """
    text, name = source_text(source)
    try:
        if is_mmcif(text):
            # Author chain ids and author residue numbers, like the PDB format and CAMEO.
            structure = gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
        else:
            structure = gemmi.read_pdb_string(text)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise StructureError(name, f"gemmi cannot parse it ({exc})") from exc
    if len(structure) == 0 or not any(len(chain) for chain in structure[0]):
        raise StructureError(name, "no atoms in any model (is this a PDB or mmCIF file?)")
    structure.merge_chain_parts()
    if not keep_altlocs:
        structure.remove_alternative_conformations()
    return structure, name


def write_text(structure: gemmi.Structure, fmt: str = "pdb") -> str:
    """Structure as PDB (``fmt="pdb"``) or mmCIF (``"cif"``) text."""
    if fmt == "cif":
        return structure.make_mmcif_document().as_string()
    options = gemmi.PdbWriteOptions()
    options.preserve_serial = True  # keep the input's atom serials (CONECT, users' notes)
    return structure.make_pdb_string(options)


def transform_text(source, rotation: np.ndarray, translation: np.ndarray,
                   fmt: str | None = None) -> str:
    """Every atom (all models, all altlocs) moved by ``x @ rotation.T + translation``.

    Returns text in the input's format unless ``fmt`` (``"pdb"`` or ``"cif"``) is given.
    """
    text, _ = source_text(source)
    structure, _ = load_structure(text, keep_altlocs=True)
    transform = gemmi.Transform(gemmi.Mat33(np.asarray(rotation, float).tolist()),
                                gemmi.Vec3(*np.asarray(translation, float).tolist()))
    for model in structure:
        model.transform_pos_and_adp(transform)
    return write_text(structure, fmt or ("cif" if is_mmcif(text) else "pdb"))


def _plddt_block(block: gemmi.cif.Block, structure: gemmi.Structure) -> None:
    """Per-residue and global pLDDT in ModelCIF's ``_ma_qa_metric`` categories (as AFDB)."""
    rows, model = [], structure[0]
    for chain in model:
        for residue in chain.get_polymer():  # not waters or ligands
            atom = residue.find_atom("CA", "*") or residue[0]
            rows.append((residue.subchain or chain.name, residue.name,
                         str(residue.label_seq or residue.seqid.num), atom.b_iso))
    if not rows:
        return
    block.set_mmcif_category("_ma_qa_metric.", {
        "id": ["1", "2"], "mode": ["global", "local"], "name": ["pLDDT", "pLDDT"],
        "type": ["pLDDT", "pLDDT"]})
    block.set_mmcif_category("_ma_qa_metric_global.", {
        "metric_id": ["1"], "metric_value": [f"{np.mean([r[3] for r in rows]):.2f}"],
        "model_id": ["1"], "ordinal_id": ["1"]})
    block.set_mmcif_category("_ma_qa_metric_local.", {
        "label_asym_id": [r[0] for r in rows], "label_comp_id": [r[1] for r in rows],
        "label_seq_id": [r[2] for r in rows], "metric_id": ["2"] * len(rows),
        "metric_value": [f"{r[3]:.2f}" for r in rows], "model_id": ["1"] * len(rows),
        "ordinal_id": [str(k + 1) for k in range(len(rows))]})


def _afdb_ids(structure: gemmi.Structure) -> None:
    """Entity ids 1, 2, ... and label_asym_id = chain id for polymers, as AFDB files have
    (gemmi names them after the chain: entity ``A``, subchain ``Axp``), and the modelled
    residues as the entity's sequence when the input has no SEQRES."""
    names, sequences = {}, {}  # polymer subchain -> chain id, residue names
    for chain in structure[0]:
        polymer = chain.get_polymer()
        if len(polymer) and polymer[0].subchain not in names:
            names[polymer[0].subchain] = chain.name
            sequences[polymer[0].subchain] = [r.name for r in polymer]
    if len(set(names.values())) < len(names):
        return  # two polymers in one chain: keep gemmi's unique names
    for k, entity in enumerate(structure.entities, start=1):
        entity.name = str(k)
        subchains = list(entity.subchains)
        if not entity.full_sequence and subchains and subchains[0] in sequences:
            # A prediction models every residue: its sequence is the full one (label_seq_id).
            entity.full_sequence = sequences[subchains[0]]
        entity.subchains = [names.get(sub, sub) for sub in subchains]
    for model in structure:
        for chain in model:
            for residue in chain:
                residue.subchain = names.get(residue.subchain, residue.subchain)


def to_mmcif(pdb_text: str, name: str = "prediction") -> str:
    """A predicted structure (PDB text, pLDDT in B-factors) as mmCIF text.

    pLDDT stays in ``_atom_site.B_iso_or_equiv`` (what viewers colour by) and is also written
    per residue and globally in ``_ma_qa_metric_local`` / ``_ma_qa_metric_global``. The
    result reads back with :func:`eksfold.structures.read_chain` to the same Cα trace.
    """
    structure, _ = load_structure(pdb_text, keep_altlocs=True)
    structure.name = name
    structure.setup_entities()   # entity, label_asym_id and label_seq_id for mmCIF
    _afdb_ids(structure)
    structure.assign_label_seq_id(force=True)
    block = structure.make_mmcif_block()
    for row in block.find("_entity_poly.", ["entity_id", "pdbx_seq_one_letter_code"]):
        entity = structure.get_entity(row.str(0))
        if entity is not None and entity.full_sequence:
            row[1] = gemmi.one_letter_code(list(entity.full_sequence))
    _plddt_block(block, structure)
    doc = gemmi.cif.Document()
    doc.add_copied_block(block)
    return doc.as_string()
