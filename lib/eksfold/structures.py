"""Reading protein structures and matching their residues.

:func:`read_chain` reads the Cα trace of one chain of a PDB file (first model, first altloc)
into a :class:`Chain`; :func:`align_sequences` matches the residues of two chains by a global
alignment of their *sequences*, because references use author numbering and miss residues
while predictions are numbered 1..L. Scoring lives in :mod:`eksfold.metrics`.

>>> from eksfold.structures import align_sequences, read_chain
>>> model, ref = read_chain("unrelaxed.pdb"), read_chain("7skh.B.pdb")  # doctest: +SKIP
>>> pairs = align_sequences(model.sequence, ref.sequence)  # (model_index, ref_index) rows
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E",
    "GLY": "G", "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F",
    "PRO": "P", "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
    "MSE": "M", "SEC": "C", "PYL": "K", "UNK": "X",
}


@dataclass(frozen=True)
class Chain:
    """Cα trace of one protein chain.

    Attributes
    ----------
    sequence : str
        One-letter codes of the residues that have a Cα atom, in file order.
    ca : numpy.ndarray
        ``(n, 3)`` Cα coordinates.
    resids : tuple of str
        Author residue number plus insertion code, e.g. ``"1607"`` or ``"52A"``.
    bfactors : numpy.ndarray
        ``(n,)`` Cα B-factors (the per-residue pLDDT in OpenFold predictions).
    chain_id : str
    """

    sequence: str
    ca: np.ndarray
    resids: tuple
    bfactors: np.ndarray
    chain_id: str


def _pdb_text(pdb) -> str:
    """Accept a path or PDB text (anything with a newline is taken as text)."""
    if isinstance(pdb, str) and "\n" in pdb:
        return pdb
    return Path(pdb).read_text()


def _atom_lines(text: str):
    """ATOM/HETATM records of the first model only (NMR files carry many)."""
    for line in text.splitlines():
        record = line[:6]
        if record == "ENDMDL":
            return
        if record in ("ATOM  ", "HETATM"):
            yield line


def read_chain(pdb, chain: str | None = None) -> Chain:
    """Read the Cα trace of one chain from a PDB file.

    Parameters
    ----------
    pdb : str or path-like
        Path of a PDB file, or its text.
    chain : str, optional
        Chain identifier; default the first chain in the file.

    Returns
    -------
    Chain

    Raises
    ------
    ValueError
        If the chain has no amino-acid Cα atoms.
    """
    seq, xyz, resids, bfac = [], [], [], []
    seen = set()
    for line in _atom_lines(_pdb_text(pdb)):
        # " CA " is C-alpha, also in HETATM modified residues (read as X unless known);
        # calcium is written "CA  ".
        if line[12:16] != " CA ":
            continue
        resname = line[17:20].strip()
        chain = line[21] if chain is None else chain
        key = (line[22:26].strip(), line[26].strip())
        if line[21] != chain or key in seen:  # `seen`: keep the first altloc only
            continue
        seen.add(key)
        seq.append(THREE_TO_ONE.get(resname, "X"))
        xyz.append((float(line[30:38]), float(line[38:46]), float(line[46:54])))
        resids.append("".join(key))
        bfac.append(float(line[60:66]) if line[60:66].strip() else 0.0)
    if not seq:
        raise ValueError(f"no C-alpha atoms found for chain {chain!r}")
    return Chain("".join(seq), np.array(xyz, dtype=float), tuple(resids),
                 np.array(bfac, dtype=float), chain)


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
