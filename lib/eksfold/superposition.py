"""Superposition and Cα scores of matched coordinates: Kabsch, the TM-score search, GDT, lDDT.

Pure numpy on ``(n, 3)`` arrays of residues already matched (see :mod:`eksfold.structures`);
:mod:`eksfold.metrics` reads structures and calls these.

- **TM-score** normalised by the reference length, found with the TM-score program's search
  (Zhang & Skolnick 2004): Kabsch superpositions seeded on fragments of the aligned pairs
  (lengths L, L/2, L/4, ... 4, every start), each refined iteratively on the pairs closer than
  ``d0_search + 1``; the best score over all superpositions tried.
- **GDT-TS**: mean over 1, 2, 4, 8 Å of the largest fraction of reference residues within
  that distance, over the superpositions of the same search (as the TM-score program does).
- **lDDT-Cα**: superposition-free; reference Cα pairs closer than 15 Å whose distance the
  model preserves within 0.5, 1, 2, 4 Å (pooled over pairs; unmatched residues count as lost).
- **RMSD** of the matched Cα after one optimal (Kabsch) superposition of all matched pairs.
"""
from __future__ import annotations

import numpy as np

GDT_CUTOFFS = (1.0, 2.0, 4.0, 8.0)
LDDT_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)


def kabsch(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None):
    """Optimal rotations and translations mapping ``x`` onto ``y`` (least squares).

    Parameters
    ----------
    x, y : numpy.ndarray
        ``(n, 3)`` paired coordinates.
    weights : numpy.ndarray, optional
        ``(n,)`` or a batch ``(s, n)`` of non-negative weights (masks); default all ones.

    Returns
    -------
    rotation, translation : numpy.ndarray
        ``(3, 3)`` and ``(3,)`` (or ``(s, 3, 3)`` and ``(s, 3)`` for a batch) such that
        ``x @ rotation.T + translation`` best fits ``y``.
    """
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    single = w.ndim == 1
    w = np.atleast_2d(w)
    wsum = w.sum(1, keepdims=True)
    w = np.where(wsum > 0, w, 1.0)  # an empty mask would divide by zero: fall back to all
    wsum = w.sum(1, keepdims=True)
    cx, cy = w @ x / wsum, w @ y / wsum
    h = np.einsum("sn,ni,nj->sij", w, x, y) - wsum[:, :, None] * cx[:, :, None] * cy[:, None, :]
    u, _, vt = np.linalg.svd(h)
    v, ut = vt.transpose(0, 2, 1), u.transpose(0, 2, 1)
    sign = np.where(np.linalg.det(v @ ut) < 0, -1.0, 1.0)  # forbid reflections
    v[:, :, 2] *= sign[:, None]
    rot = v @ ut
    trans = cy - np.einsum("sij,sj->si", rot, cx)
    return (rot[0], trans[0]) if single else (rot, trans)


def tm_d0(length: int) -> float:
    """TM-score distance scale d0 for a normalisation length (0.5 Å floor, as TM-score)."""
    return max(0.5, 1.24 * np.cbrt(length - 15) - 1.8) if length > 21 else 0.5


def _fragment_lengths(n: int) -> list:
    """Seed fragment lengths n, n/2, n/4, ... down to 4 (at most 6), as TM-score."""
    shortest, lengths = min(4, n), []
    for i in range(5):
        length = n // 2 ** i
        if length <= shortest:
            return lengths + [shortest]
        lengths.append(length)
    return lengths + [shortest]


def _distances(x, y, rot, trans):
    """Per-pair distances after each of a batch of superpositions: ``(s, n)``."""
    moved = np.einsum("sij,nj->sni", rot, x) + trans[:, None, :]
    return np.linalg.norm(moved - y[None], axis=2)


def _close_pairs(dist, d):
    """Pairs closer than d; d grows by 0.5 Å until at least 3 qualify (as TM-score)."""
    cut = dist < d
    if dist.shape[1] > 3:
        few = cut.sum(1) < 3
        if few.any():
            third = np.partition(dist[few], 2, axis=1)[:, 2]
            relaxed = d + 0.5 * (np.floor((third - d) / 0.5) + 1)
            cut[few] = dist[few] < relaxed[:, None]
    return cut


class _Search:
    """Best TM-score (and GDT counts) over every superposition tried, TM-score style.

    The search runs all seed fragments of one length as a batch, so the per-fragment
    iteration of the TM-score program becomes array operations; fragments whose pair set
    stops changing drop out of the batch, exactly where TM-score's loop would break.
    """

    def __init__(self, x, y, l_norm, max_iter=20):
        self.x, self.y, self.max_iter = x, y, max_iter
        self.l_norm, self.d0 = l_norm, tm_d0(l_norm)
        self.d0_search = min(8.0, max(4.5, self.d0))
        self.tm, self.rot, self.trans = -1.0, np.eye(3), np.zeros(3)
        self.gdt_counts = np.zeros(len(GDT_CUTOFFS), dtype=int)

    def _track(self, rot, trans):
        dist = _distances(self.x, self.y, rot, trans)
        tm = (1.0 / (1.0 + (dist / self.d0) ** 2)).sum(1) / self.l_norm
        best = int(np.argmax(tm))
        if tm[best] > self.tm:
            self.tm, self.rot, self.trans = float(tm[best]), rot[best], trans[best]
        counts = [(dist <= c).sum(1).max() for c in GDT_CUTOFFS]
        self.gdt_counts = np.maximum(self.gdt_counts, counts)
        return dist

    def run(self):
        n = len(self.x)
        idx = np.arange(n)
        for length in _fragment_lengths(n):
            starts = np.arange(n - length + 1)
            mask = (idx >= starts[:, None]) & (idx < starts[:, None] + length)
            dist = self._track(*kabsch(self.x, self.y, mask))
            cut = _close_pairs(dist, self.d0_search - 1)
            for _ in range(self.max_iter):
                dist = self._track(*kabsch(self.x, self.y, cut))
                new = _close_pairs(dist, self.d0_search + 1)
                moving = (new != cut).any(1)
                if not moving.any():
                    break
                cut = new[moving]
        return self


def tm_search(x: np.ndarray, y: np.ndarray, l_norm: int, max_iter: int = 20):
    """TM-score of matched coordinates with the TM-score program's superposition search.

    Parameters
    ----------
    x, y : numpy.ndarray
        ``(n, 3)`` coordinates of matched residues (model, reference).
    l_norm : int
        Normalisation length (the reference length).
    max_iter : int
        Refinement iterations per seed (20, as in TM-align).

    Returns
    -------
    tm_score : float
    rotation, translation : numpy.ndarray
        The best superposition, ``x @ rotation.T + translation``.
    gdt_ts : float
        GDT-TS over the same superpositions, normalised by ``l_norm``.
    """
    if len(x) == 0:
        return 0.0, np.eye(3), np.zeros(3), 0.0
    search = _Search(np.asarray(x, float), np.asarray(y, float), l_norm, max_iter).run()
    return search.tm, search.rot, search.trans, float(search.gdt_counts.mean() / l_norm)


def lddt_ca(model_ca: np.ndarray, ref_ca: np.ndarray, pairs: np.ndarray,
            cutoff: float = 15.0, thresholds=LDDT_THRESHOLDS) -> float:
    """Global lDDT on Cα atoms (no superposition).

    Every reference pair ``(i, j)``, ``i != j``, closer than ``cutoff`` is scored by the
    fraction of ``thresholds`` within which the model keeps its distance; the result is the
    mean over all such pairs. Reference residues without a matched model residue count as
    not preserved.
    """
    mapped = np.full_like(ref_ca, np.nan, dtype=float)
    mapped[pairs[:, 1]] = model_ca[pairs[:, 0]]
    d_ref = np.linalg.norm(ref_ca[:, None] - ref_ca[None], axis=2)
    d_mod = np.linalg.norm(mapped[:, None] - mapped[None], axis=2)
    scored = (d_ref < cutoff) & ~np.eye(len(ref_ca), dtype=bool)
    with np.errstate(invalid="ignore"):  # NaN (unmatched) compares False: not preserved
        diff = np.abs(d_mod - d_ref)[scored]
        kept = sum((diff < t).sum() for t in thresholds)
    return float(kept / (len(thresholds) * scored.sum())) if scored.any() else 0.0


def rmsd(x: np.ndarray, y: np.ndarray) -> float:
    """Root-mean-square deviation after the optimal superposition of ``x`` onto ``y``."""
    rot, trans = kabsch(x, y)
    return float(np.sqrt(np.mean(np.sum((x @ rot.T + trans - y) ** 2, axis=1))))
