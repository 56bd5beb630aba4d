"""Reading protein chains and matching their residues.

:func:`read_chain` reads the Cα trace of one chain (first model, first altloc, author
numbering) from PDB or mmCIF — files, gzip/bzip2 files or text — through gemmi
(:mod:`eksfold.structure_io`); MD-style PDB files with a blank chain column are split by
segment id. :func:`align_sequences` matches the residues of two chains by a global alignment
of their *sequences* (Biopython's ``PairwiseAligner``), because references use author
numbering and miss residues while predictions are numbered 1..L. Scoring lives in
:mod:`eksfold.metrics`.

>>> from eksfold.structures import align_sequences, read_chain
>>> model, ref = read_chain("unrelaxed.pdb"), read_chain("7skh.B.cif.gz")  # doctest: +SKIP
>>> pairs = align_sequences(model.sequence, ref.sequence)  # (model_index, ref_index) rows
"""
from __future__ import annotations

from dataclasses import dataclass

import gemmi
import numpy as np

from .structure_io import StructureError, load_structure, source_text, to_mmcif

__all__ = ["THREE_TO_ONE", "MD_RESIDUES", "Chain", "StructureError", "read_chain",
           "residue_letter", "align_sequences", "alignment_strings", "to_mmcif"]

THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E",
    "GLY": "G", "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F",
    "PRO": "P", "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
    "MSE": "M", "SEC": "C", "PYL": "K", "UNK": "X",
}
# Protonation and disulfide states that force fields write as residue names (CHARMM, AMBER,
# GROMOS); they are not in the PDB's chemical component table that gemmi tabulates.
MD_RESIDUES = {
    "HSD": "H", "HSE": "H", "HSP": "H", "HID": "H", "HIE": "H", "HIP": "H", "HIH": "H",
    "HISA": "H", "HISB": "H", "HISD": "H", "HISE": "H", "HISH": "H", "HIS1": "H", "HIS2": "H",
    "CYX": "C", "CYM": "C", "CYS2": "C", "CYSH": "C", "ASH": "D", "ASPH": "D", "GLH": "E",
    "GLUH": "E", "LYN": "K", "LSN": "K", "LYSH": "K", "ARGN": "R",
}


@dataclass(frozen=True)
class Chain:
    """Cα trace of one protein chain.

    Attributes
    ----------
    sequence : str
        One-letter codes of the residues that have a Cα atom, in file order (``X`` for
        unknown or modified residues gemmi does not tabulate; MSE reads as ``M``).
    ca : numpy.ndarray
        ``(n, 3)`` Cα coordinates.
    resids : tuple of str
        Author residue number plus insertion code, e.g. ``"1607"`` or ``"52A"``.
    bfactors : numpy.ndarray
        ``(n,)`` Cα B-factors (the per-residue pLDDT in OpenFold predictions).
    chain_id : str
        Author chain id; the segment id for MD files whose chain column is blank.
    """

    sequence: str
    ca: np.ndarray
    resids: tuple
    bfactors: np.ndarray
    chain_id: str


def _pdb_text(pdb) -> str:
    """Text of a path or of PDB/mmCIF text (kept for old callers)."""
    return source_text(pdb)[0]


def residue_letter(residue: gemmi.Residue) -> str | None:
    """One-letter code of an amino-acid residue, ``X`` if unknown, None if not one.

    Amino acids are what the PDB's component table (as tabulated by gemmi) says they are,
    plus force-field names; an untabulated residue with a peptide backbone (N, CA, C) is a
    modified amino acid. Atom names alone are not enough: calcium is also named CA.
    """
    name = residue.name.upper()
    if name in MD_RESIDUES:
        return MD_RESIDUES[name]
    info = gemmi.find_tabulated_residue(name)
    if info is not None and info.found():
        if not info.is_amino_acid():
            return None
        code = info.one_letter_code.upper()
        return code if code.isalpha() else "X"
    backbone = {atom.name for atom in residue}
    return "X" if {"N", "CA", "C"} <= backbone else None


def _chain_groups(model: gemmi.Model, pdb_format: bool):
    """``(chain_id, residues)`` per chain, in file order.

    A blank chain id is split by segment id (MD files). GROMOS-style 4-letter residue names
    (``LYSH``) spill into column 21, which gemmi reads as a 2-character chain id (``HA``):
    such residues go back to their chain (``A``) at their place in the file (PDB format only:
    mmCIF has real 2-character chain ids).
    """
    groups: dict[str, list] = {}
    moved = set()
    for chain in model:
        for residue in chain:
            cid = chain.name.strip() or residue.segment.strip()
            if (pdb_format and len(chain.name) == 2
                    and (residue.name + chain.name[0]).upper() in MD_RESIDUES):
                cid = chain.name[1]
                moved.add(cid)
            groups.setdefault(cid, []).append(residue)
    for cid in moved:  # atom serials give the file order back
        groups[cid].sort(key=lambda r: r[0].serial)
    return groups.items()


def _trace(residues, chain_id: str) -> Chain | None:
    seq, xyz, resids, bfac, seen = [], [], [], [], set()
    for residue in residues:
        letter = residue_letter(residue)
        atom = residue.find_atom("CA", "*") if letter else None
        resid = f"{residue.seqid.num}{residue.seqid.icode.strip()}"
        if atom is None or resid in seen:  # `seen`: one residue per number (microheterogeneity)
            continue
        seen.add(resid)
        seq.append(letter)
        xyz.append(atom.pos.tolist())
        resids.append(resid)
        bfac.append(atom.b_iso)
    if not seq:
        return None
    return Chain("".join(seq), np.array(xyz, dtype=float), tuple(resids),
                 np.array(bfac, dtype=float), chain_id)


def read_chain(pdb, chain: str | None = None) -> Chain:
    """Read the Cα trace of one chain from a PDB or mmCIF structure.

    Parameters
    ----------
    pdb : str, bytes or path-like
        Path of a PDB/mmCIF file (``.gz``/``.bz2`` too), or its text.
    chain : str, optional
        Author chain id (a segment id where the chain column is blank; an mmCIF
        ``label_asym_id`` also works when no author chain has that id). Default: the first
        chain with amino-acid residues.

    Returns
    -------
    Chain

    Raises
    ------
    StructureError
        (a ``ValueError``) naming the file and chain when the file cannot be parsed, the
        chain does not exist, or it has no amino-acid residue with a Cα atom.
    """
    structure, name = load_structure(pdb)
    pdb_format = structure.input_format == gemmi.CoorFormat.Pdb
    groups = list(_chain_groups(structure[0], pdb_format))
    names = [cid or "(blank)" for cid, _ in groups]
    if chain is None:
        for cid, residues in groups:
            found = _trace(residues, cid)
            if found is not None:
                return found
        raise StructureError(name, "no amino-acid residues with a C-alpha atom in any chain "
                             f"(chains: {', '.join(names)})")
    selected = [residues for cid, residues in groups if cid == chain]
    if not selected:  # mmCIF label_asym_id (gemmi's subchain) as a fallback
        selected = [[r for _, rs in groups for r in rs if r.subchain == chain]]
        if not selected[0]:
            raise StructureError(name, f"no such chain (chains: {', '.join(names)})", chain)
    found = _trace([r for residues in selected for r in residues], chain)
    if found is None:
        raise StructureError(name, "no amino-acid residues with a C-alpha atom", chain)
    return found


def align_sequences(seq_a: str, seq_b: str) -> np.ndarray:
    """Match residues of two sequences by a global alignment (BLOSUM62, gaps -11/-1).

    End gaps are free because references commonly miss terminal residues (tags, disorder).

    Returns
    -------
    numpy.ndarray
        ``(k, 2)`` integer array of ``(index_in_a, index_in_b)`` for aligned positions.
    """
    from Bio.Align import PairwiseAligner, substitution_matrices

    matrix = substitution_matrices.load("BLOSUM62")
    aligner = PairwiseAligner(mode="global", substitution_matrix=matrix,
                              open_gap_score=-11, extend_gap_score=-1)
    aligner.end_gap_score = 0.0
    clean = [''.join(c if c in matrix.alphabet else "X" for c in s) for s in (seq_a, seq_b)]
    alignment = aligner.align(*clean)[0]
    pairs = [(i, j) for (a0, a1), (b0, b1) in zip(*alignment.aligned)
             for i, j in zip(range(a0, a1), range(b0, b1))]
    return np.array(pairs, dtype=int).reshape(-1, 2)


def alignment_strings(seq_a: str, seq_b: str, pairs: np.ndarray) -> tuple:
    """Gapped strings of a residue matching, e.g. for display or TM-align's ``-I`` FASTA.

    >>> alignment_strings("ACDE", "CDF", np.array([[1, 0], [2, 1]]))
    ('ACDE-', '-CD-F')
    """
    a, b, i, j = [], [], 0, 0
    for pi, pj in list(pairs) + [(len(seq_a), len(seq_b))]:
        a.append(seq_a[i:pi] + "-" * (pj - j))  # unmatched runs: a's first, then b's
        b.append("-" * (pi - i) + seq_b[j:pj])
        if pi < len(seq_a):
            a.append(seq_a[pi])
            b.append(seq_b[pj])
        i, j = pi + 1, pj + 1
    return "".join(a), "".join(b)
