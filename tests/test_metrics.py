"""eksfold.metrics against independent implementations on real CAMEO structures.

References: Debian's ``TMalign`` in alignment-guided mode (``-I``, our sequence alignment) and
``TMscore`` (same program family, residues matched by number, so we renumber by our alignment),
and the PyPI ``tmtools`` (TM-align bindings) with and without a given alignment.

Agreement measured when this was written (2026-11; Debian tm-align 20190822+dfsg-2, tmtools
0.3.0) on 46 pairs of /work/shared/data/cameo2022_refs (16 homologous pairs, 30 random ones;
``PAIRS`` below are among them), our sequence alignment given to each tool:

- TM-score vs ``TMalign -I`` (normalised by the reference, Chain_2): max |diff| 5.4e-6
  (TMalign prints 5 decimals); vs ``TMscore``: 5e-5 (4 decimals); vs ``tmtools`` with the
  alignment: 6e-15.
- GDT-TS vs ``TMscore``: max |diff| 5e-5. RMSD vs ``TMscore``: 5e-4 A (3 decimals printed),
  vs ``TMalign``: 4.6e-3 A (2 decimals printed).
- 10 rotated, noisy (0.7 A), residue-removed and renumbered copies vs the original: TM-score
  vs ``tmtools`` with its own structural alignment: 1.2e-15 (it finds the same matching).

The tests assert tolerances a little wider than the printed precision.
"""
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tmtools

from eksfold import metrics

DATA = Path(__file__).parent / "data" / "structures"
# (model, reference): same protein, homologues, identical sequence different range, unrelated
PAIRS = [("7rup.A", "7ruq.A"), ("7tgi.B", "7th2.C"), ("7skj.A", "7rpn.A"),
         ("7vp3.C", "7vp6.D"), ("7rup.A", "7tgi.B")]


def pdb(name):
    return DATA / f"{name}.pdb"


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def perturbed_copy(text, rng, noise=0.7, keep=None):
    """PDB text rotated, shifted, with Gaussian noise; optionally keep only the residues with
    indices in `keep` (residue order) and renumber them 1..n like a prediction."""
    rot, shift = random_rotation(rng), rng.normal(scale=20.0, size=3)
    lines, index, last, number = [], -1, None, 0
    for line in text.splitlines():
        if line[:6] != "ATOM  ":
            continue
        if line[22:27] != last:
            last, index = line[22:27], index + 1
            number += keep is None or index in keep
        if keep is not None and index not in keep:
            continue
        xyz = np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])])
        x, y, z = xyz @ rot.T + shift + rng.normal(scale=noise, size=3)
        lines.append(f"{line[:22]}{number:4d}    {x:8.3f}{y:8.3f}{z:8.3f}{line[54:]}")
    return "\n".join(lines) + "\nEND\n"


def run_tmalign(model_path, ref_path, seq_model, seq_ref, pairs, tmp_path):
    aln = tmp_path / "aln.fasta"
    a, b = metrics.alignment_strings(seq_model, seq_ref, pairs)
    aln.write_text(f">model\n{a}\n>reference\n{b}\n")
    out = subprocess.run(["TMalign", str(model_path), str(ref_path), "-I", str(aln)],
                         capture_output=True, text=True, check=True).stdout
    tm = float(re.search(r"TM-score= ([\d.]+) \(if normalized by length of Chain_2", out)[1])
    return {"tm_score": tm, "rmsd": float(re.search(r"RMSD=\s*([\d.]+)", out)[1]),
            "n_aligned": int(re.search(r"Aligned length=\s*(\d+)", out)[1])}


def write_ca(chain, numbers, path):
    one_to_three = {v: k for k, v in metrics.THREE_TO_ONE.items() if k not in ("MSE", "SEC", "PYL")}
    with open(path, "w") as f:
        for k, (aa, (x, y, z), n) in enumerate(zip(chain.sequence, chain.ca, numbers)):
            f.write(f"ATOM  {k + 1:5d}  CA  {one_to_three[aa]} A{n:4d}    "
                    f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           C\n")
        f.write("END\n")


def run_tmscore(model, ref, pairs, tmp_path):
    """TMscore matches residues by number: give matched pairs the same numbers."""
    nm = [5000 + i for i in range(len(model.sequence))]
    nr = [7000 + i for i in range(len(ref.sequence))]
    for k, (i, j) in enumerate(pairs):
        nm[i] = nr[j] = k + 1
    write_ca(model, nm, tmp_path / "m.pdb")
    write_ca(ref, nr, tmp_path / "r.pdb")
    out = subprocess.run(["TMscore", str(tmp_path / "m.pdb"), str(tmp_path / "r.pdb")],
                         capture_output=True, text=True, check=True).stdout
    get = lambda pattern: float(re.search(pattern, out)[1])  # noqa: E731
    return {"tm_score": get(r"TM-score\s*=\s*([\d.]+)"), "gdt_ts": get(r"GDT-TS-score=\s*([\d.]+)"),
            "rmsd": get(r"RMSD of  the common residues=\s*([\d.]+)")}


@pytest.mark.parametrize("model,ref", PAIRS)
def test_agrees_with_tmalign_and_tmscore(model, ref, tmp_path):
    m, r = metrics.read_chain(pdb(model)), metrics.read_chain(pdb(ref))
    ours = metrics.compare_chains(m, r)
    tma = run_tmalign(pdb(model), pdb(ref), m.sequence, r.sequence, ours.pairs, tmp_path)
    assert ours.n_aligned == tma["n_aligned"]
    assert ours.tm_score == pytest.approx(tma["tm_score"], abs=2e-5)
    assert ours.rmsd == pytest.approx(tma["rmsd"], abs=1e-2)
    tms = run_tmscore(m, r, ours.pairs, tmp_path)
    assert ours.tm_score == pytest.approx(tms["tm_score"], abs=1e-4)
    assert ours.gdt_ts == pytest.approx(tms["gdt_ts"], abs=1e-4)
    assert ours.rmsd == pytest.approx(tms["rmsd"], abs=1e-3)
    a, b = metrics.alignment_strings(m.sequence, r.sequence, ours.pairs)
    tmt = tmtools.tm_align(m.ca, r.ca, m.sequence, r.sequence, [a, b])
    assert ours.tm_score == pytest.approx(tmt.tm_norm_chain2, abs=1e-6)


def test_score_ranges_follow_relatedness():
    same = metrics.compare_structures(pdb("7rup.A"), pdb("7ruq.A"))
    unrelated = metrics.compare_structures(pdb("7rup.A"), pdb("7tgi.B"))
    assert same["tm_score"] > 0.8 and same["lddt_ca"] > 0.7 and same["rmsd"] < 2
    assert unrelated["tm_score"] < 0.3 and unrelated["lddt_ca"] < 0.2


def test_rotated_noisy_copy_matches_tools(tmp_path):
    rng = np.random.default_rng(0)
    copy = tmp_path / "copy.pdb"
    copy.write_text(perturbed_copy(pdb("7skj.A").read_text(), rng))
    m, r = metrics.read_chain(copy), metrics.read_chain(pdb("7skj.A"))
    ours = metrics.compare_chains(m, r)
    assert ours.n_aligned == len(r.sequence) and ours.seq_identity == 1.0
    tma = run_tmalign(copy, pdb("7skj.A"), m.sequence, r.sequence, ours.pairs, tmp_path)
    assert ours.tm_score == pytest.approx(tma["tm_score"], abs=2e-5)
    structural = tmtools.tm_align(m.ca, r.ca, m.sequence, r.sequence)  # its own alignment
    assert ours.tm_score == pytest.approx(structural.tm_norm_chain2, abs=2e-3)
    assert 0.9 < ours.tm_score < 1 and 0.7 < ours.lddt_ca < 1
    assert ours.rmsd == pytest.approx(0.7 * np.sqrt(3), rel=0.05)  # 0.7 A per axis


def test_removed_and_renumbered_residues_are_matched_by_sequence(tmp_path):
    """A prediction-like copy: termini and an inner loop removed, numbered 1..n."""
    ref_chain = metrics.read_chain(pdb("7tgi.B"))
    n = len(ref_chain.sequence)
    keep = set(range(5, n - 3)) - set(range(40, 47))
    copy = tmp_path / "copy.pdb"
    copy.write_text(perturbed_copy(pdb("7tgi.B").read_text(), np.random.default_rng(1), keep=keep))
    m = metrics.read_chain(copy)
    assert m.resids[0] == "1" and len(m.sequence) == len(keep)
    ours = metrics.compare_chains(m, ref_chain)
    truth = np.array([(k, j) for k, j in enumerate(sorted(keep))])
    np.testing.assert_array_equal(ours.pairs, truth)
    assert ours.seq_identity == 1.0
    tma = run_tmalign(copy, pdb("7tgi.B"), m.sequence, ref_chain.sequence, truth, tmp_path)
    assert ours.tm_score == pytest.approx(tma["tm_score"], abs=2e-5)
    structural = tmtools.tm_align(m.ca, ref_chain.ca, m.sequence, ref_chain.sequence)
    assert ours.tm_score == pytest.approx(structural.tm_norm_chain2, abs=2e-3)
    # Normalised by the full reference: the 15 missing residues cap the score below 1.
    assert ours.tm_score < len(keep) / n


def naive_lddt(model_ca, ref_ca, pairs):
    """Loop version of lDDT-Ca: pooled over reference pairs closer than 15 A."""
    where = {j: i for i, j in pairs}
    kept = total = 0
    for a in range(len(ref_ca)):
        for b in range(len(ref_ca)):
            d = np.linalg.norm(ref_ca[a] - ref_ca[b])
            if a == b or d >= 15:
                continue
            total += 4
            if a in where and b in where:
                dm = np.linalg.norm(model_ca[where[a]] - model_ca[where[b]])
                kept += sum(abs(dm - d) < t for t in (0.5, 1, 2, 4))
    return kept / total


def test_lddt_ca():
    ref = metrics.read_chain(pdb("7tgi.B"))
    model = metrics.read_chain(pdb("7th2.C"))
    pairs = metrics.align_sequences(model.sequence, ref.sequence)
    score = metrics.lddt_ca(model.ca, ref.ca, pairs)
    assert score == pytest.approx(naive_lddt(model.ca, ref.ca, pairs), abs=1e-12)
    identity = np.stack([np.arange(len(ref.sequence))] * 2, axis=1)
    rot = random_rotation(np.random.default_rng(2))
    assert metrics.lddt_ca(ref.ca @ rot.T + 5.0, ref.ca, identity) == pytest.approx(1.0)
    assert metrics.lddt_ca(ref.ca, ref.ca, identity[10:]) < 1.0  # unmatched residues count


def test_superpose_moves_model_onto_reference(tmp_path):
    rng = np.random.default_rng(3)
    moved = perturbed_copy(pdb("7vp6.D").read_text(), rng, noise=0.0)
    text = metrics.superpose(moved, pdb("7vp6.D"))
    back, ref = metrics.read_chain(text), metrics.read_chain(pdb("7vp6.D"))
    assert np.abs(back.ca - ref.ca).max() < 2e-3  # PDB keeps 3 decimals
    assert text.count("\nATOM") + text.startswith("ATOM") == moved.count("ATOM  ")


def test_read_chain_details():
    chain = metrics.read_chain(pdb("7rup.A"))
    # 62 residues observed, but Ser576 has no C-alpha; altloc atoms are read once.
    assert len(chain.sequence) == 61 and chain.chain_id == "A"
    assert chain.resids[:2] == ("534", "535") and chain.sequence.startswith("QKWYYK")
    calcium = ("HETATM 2001 CA    CA A 301      10.000  10.000  10.000  1.00 20.00          CA\n"
               "ATOM      1  CA  GLY A   1       0.000   0.000   0.000  1.00 91.00           C\n"
               "ATOM      2  CA  ALA A   1A      3.800   0.000   0.000  1.00 42.00           C\n")
    small = metrics.read_chain(calcium)
    assert small.sequence == "GA" and small.resids == ("1", "1A")
    np.testing.assert_allclose(small.bfactors, [91, 42])
    with pytest.raises(ValueError):
        metrics.read_chain(calcium, chain="B")


def test_kabsch_and_helpers():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 3))
    rot = random_rotation(rng)
    r, t = metrics.kabsch(x, x @ rot.T + [1.0, 2.0, 3.0])
    np.testing.assert_allclose(r, rot, atol=1e-10)
    np.testing.assert_allclose(t, [1, 2, 3], atol=1e-10)
    assert metrics._fragment_lengths(250) == [250, 125, 62, 31, 15, 4]
    assert metrics._fragment_lengths(10) == [10, 5, 4]
    assert metrics._fragment_lengths(3) == [3]
    assert metrics.tm_d0(20) == 0.5 and metrics.tm_d0(100) == pytest.approx(3.6521, abs=1e-4)
    assert metrics.alignment_strings("ACDE", "CDF", np.array([[1, 0], [2, 1]])) == ("ACDE-", "-CD-F")


def test_score_run_scores_predictions_that_have_references(tmp_path):
    from eksfold.config import RunConfig
    from eksfold.run import Run
    from eksfold.targets import Target

    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "7tgi.B.pdb").write_text(pdb("7tgi.B").read_text())
    seq = metrics.read_chain(pdb("7tgi.B")).sequence
    targets = [Target("t1", seq, pdb_id="7TGI", chain="B"),       # prediction + reference
               Target("t2", seq, pdb_id="7ZZZ", chain="A"),       # no reference file
               Target("t3", seq)]                                 # no PDB entry named
    run = Run.create(str(tmp_path / "run"), targets, RunConfig())
    prediction = perturbed_copy(pdb("7tgi.B").read_text(), np.random.default_rng(5), noise=0.3)
    for tid in ("t1", "t2", "t3"):
        run.store.write_text(f"targets/{tid}/infer/unrelaxed.pdb", prediction)
    from eksfold.results import score_run
    table = score_run(Run.open(str(tmp_path / "run")), refs)
    assert list(table.target) == ["t1"]
    assert list(table.columns) == ["target", *metrics.ACCURACY_COLUMNS]
    assert table.tm_score[0] > 0.95 and table.n_aligned[0] == len(seq)


def test_scores_do_not_depend_on_the_file_format(tmp_path):
    """Model as mmCIF text (as unrelaxed.cif), reference as gzip PDB: the same scores."""
    import gzip

    from eksfold.structures import to_mmcif

    for model, ref in PAIRS[:2]:
        plain = metrics.compare_structures(pdb(model), pdb(ref))
        gz = tmp_path / f"{ref}.pdb.gz"
        gz.write_bytes(gzip.compress(pdb(ref).read_bytes()))
        other = metrics.compare_structures(to_mmcif(pdb(model).read_text()), gz)
        assert other == pytest.approx(plain, abs=1e-6)
