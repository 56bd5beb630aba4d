"""Accuracy of a predicted structure against an experimental reference, on Cα atoms.

Residues are matched by a global alignment of the two chains' *sequences*, because references
use author numbering and miss residues while predictions are numbered 1..L (reading chains —
PDB or mmCIF, through gemmi — and matching residues: :mod:`eksfold.structures`). The scores
(TM-score with the TM-score program's search, GDT-TS, lDDT-Cα, RMSD) are computed in
:mod:`eksfold.superposition`; the names of both modules stay importable from here.

>>> from eksfold.metrics import compare_structures
>>> compare_structures("unrelaxed.pdb", "7skh.B.pdb")  # doctest: +SKIP
{'tm_score': 0.91, 'gdt_ts': 0.85, 'lddt_ca': 0.88, 'rmsd': 1.3, 'n_aligned': 218, ...}
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .structure_io import transform_text
# Re-exported, so `from eksfold.metrics import read_chain, kabsch, ...` keeps working.
from .structures import (  # noqa: F401
    THREE_TO_ONE, Chain, StructureError, _pdb_text, align_sequences, alignment_strings,
    read_chain)
from .superposition import (  # noqa: F401
    GDT_CUTOFFS, LDDT_THRESHOLDS, _close_pairs, _distances, _fragment_lengths, kabsch, lddt_ca,
    rmsd, tm_d0, tm_search)

__all__ = ["ACCURACY_COLUMNS", "Comparison", "compare_chains", "compare_structures", "superpose",
           "transform_pdb",
           # re-exported from structures and superposition
           "THREE_TO_ONE", "Chain", "StructureError", "align_sequences", "alignment_strings",
           "read_chain", "GDT_CUTOFFS", "LDDT_THRESHOLDS", "kabsch", "lddt_ca", "rmsd", "tm_d0",
           "tm_search"]


@dataclass(frozen=True)
class Comparison:
    """Scores of a model against a reference plus what is needed to superpose them.

    ``rotation`` and ``translation`` map model coordinates onto the reference with the
    TM-score superposition: ``x @ rotation.T + translation``. ``pairs`` holds
    ``(model_index, reference_index)`` of the sequence-matched residues.
    """

    tm_score: float
    gdt_ts: float
    lddt_ca: float
    rmsd: float
    n_aligned: int
    seq_identity: float
    pairs: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    def as_dict(self) -> dict:
        """The scalar scores, keyed like the summary-table columns."""
        return {"tm_score": self.tm_score, "gdt_ts": self.gdt_ts, "lddt_ca": self.lddt_ca,
                "rmsd": self.rmsd, "n_aligned": self.n_aligned,
                "seq_identity": self.seq_identity}


def compare_chains(model: Chain, reference: Chain) -> Comparison:
    """Score a model chain against a reference chain (residues matched by sequence)."""
    pairs = align_sequences(model.sequence, reference.sequence)
    x, y = model.ca[pairs[:, 0]], reference.ca[pairs[:, 1]]
    l_ref = len(reference.sequence)
    tm, rot, trans, gdt = tm_search(x, y, l_ref)
    same = sum(model.sequence[i] == reference.sequence[j] for i, j in pairs)
    return Comparison(
        tm_score=tm, gdt_ts=gdt, lddt_ca=lddt_ca(model.ca, reference.ca, pairs),
        rmsd=rmsd(x, y) if len(pairs) >= 3 else float("nan"), n_aligned=len(pairs),
        seq_identity=same / len(pairs) if len(pairs) else 0.0,
        pairs=pairs, rotation=rot, translation=trans)


def compare_structures(model_pdb, reference_pdb, model_chain: str | None = None,
                       reference_chain: str | None = None) -> dict:
    """Accuracy of a predicted model against an experimental reference.

    Parameters
    ----------
    model_pdb, reference_pdb : str, bytes or path-like
        PDB or mmCIF paths (``.gz`` too) or their text.
    model_chain, reference_chain : str, optional
        Chain identifiers; default the first chain of each file.

    Returns
    -------
    dict
        ``tm_score`` (normalised by the reference length), ``gdt_ts``, ``lddt_ca`` (all in
        0..1), ``rmsd`` (Å, matched Cα), ``n_aligned``, ``seq_identity``.
    """
    model = read_chain(model_pdb, model_chain)
    reference = read_chain(reference_pdb, reference_chain)
    return compare_chains(model, reference).as_dict()


def transform_pdb(pdb, rotation: np.ndarray, translation: np.ndarray) -> str:
    """Every atom of a structure moved by ``x @ rotation.T + translation`` (through gemmi).

    Returns text in the input's format (PDB or mmCIF).
    """
    return transform_text(pdb, rotation, translation)


def superpose(model_pdb, reference_pdb, model_chain: str | None = None,
              reference_chain: str | None = None) -> str:
    """The model's PDB text moved onto the reference by the TM-score superposition.

    For display (:mod:`eksfold.views`): all atoms of the model are transformed, so the
    well-predicted core lies on the reference even when a domain or tail is misplaced.
    """
    text = _pdb_text(model_pdb)  # read once: predictions come from the run store as text
    result = compare_chains(read_chain(text, model_chain),
                            read_chain(reference_pdb, reference_chain))
    return transform_pdb(text, result.rotation, result.translation)


ACCURACY_COLUMNS = ("tm_score", "gdt_ts", "lddt_ca", "rmsd", "n_aligned", "seq_identity")
