"""eksfold.structures / structure_io on real files from the field, read through gemmi.

Corpus (every file is tried; counts are printed with ``-s``):

- CAMEO 2022 references: ``data/cameo2022/structures`` and ``tests/data/structures`` (in the
  repository) and the 183 of ``shared/data/cameo2022_refs`` (beside the clone, also in CI),
  checked against the observed sequences published with them; gzip, bzip2 and gemmi-written
  mmCIF copies of them read back identically.
- MDAnalysis's test structures from PyPI (``mdanalysistests`` sdist, unpacked by
  ``make test-setup``, mk/structures.mk): MD-package PDB files (CHARMM-style left-justified atom
  names, blank chain column, segment ids; GROMACS/OPLS files), the PDB's own mmCIF with the
  PDB-format files of the same entries, NMR ensembles, gzip files — each checked against
  Biopython's independent reader; MD pairs scored against the ``TMscore`` program.
- The ``pdbsnapshots`` mmCIF entry of the local S3 server, fetched by eksfold's download code.
"""
import bz2
import gzip
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from eksfold import metrics, structures
from eksfold.structure_io import StructureError, to_mmcif, transform_text, write_text

REPO = Path(__file__).resolve().parents[1]
TESTS_DATA = REPO / "tests" / "data" / "structures"
SHARED_REFS = REPO.parent / "shared" / "data" / "cameo2022_refs"
MDA = REPO / ".setup" / "mdanalysistests" / "data"
CAMEO_LOCAL = (sorted(TESTS_DATA.glob("*.pdb"))
               + sorted((REPO / "data/cameo2022/structures").glob("*.pdb")))
# Protonation/disulfide states written by force fields, as the oracle below reads them.
MD_NAMES = {"HSD": "H", "HSE": "H", "HSP": "H", "HID": "H", "HIE": "H", "HIP": "H", "CYX": "C"}


def need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} missing at {path}: run `make test-setup` (or check shared/)")
    return path


def mda_files():
    need(MDA / "adk_open.pdb", "MDAnalysis test structures (mdanalysistests)")
    return sorted(p for p in MDA.rglob("*") if p.is_file())


def observed_sequences():
    text = need(SHARED_REFS / "cameo2022_observed.fasta", "CAMEO 2022 references").read_text()
    return dict(re.findall(r">(\S+)[^\n]*\n([A-Z]+)", text))


def test_cameo_references_read_with_their_observed_sequences():
    """All 203 CAMEO reference files read; the 183 shared ones match their published sequences
    except where that DERIVED list counts a residue the file has no Cα for (7rup.A: Ser576 has
    no CA) or a residue the file lacks (7n6h.A: no residue 442 in the file)."""
    observed = observed_sequences()
    shared = sorted(need(SHARED_REFS / "structures", "CAMEO 2022 references").glob("*.pdb"))
    assert len(shared) == 183 and len(CAMEO_LOCAL) == 20
    for path in shared + CAMEO_LOCAL:
        chain = structures.read_chain(path)
        key = path.name.removesuffix(".pdb")
        assert chain.chain_id == key.split(".")[1]
        assert len(chain.resids) == len(set(chain.resids)) == len(chain.ca) == len(chain.bfactors)
        if path.parent == SHARED_REFS / "structures" and key not in ("7rup.A", "7n6h.A"):
            assert chain.sequence == observed[key], key
    assert len(structures.read_chain(SHARED_REFS / "structures/7n6h.A.pdb").sequence) == 432
    assert len(observed["7n6h.A"]) == 433
    print(f"\nCAMEO corpus: {len(shared) + len(CAMEO_LOCAL)} files tried, all read")


@pytest.mark.parametrize("name", ["7tgi.B", "7rup.A", "7vp3.C"])
def test_compressed_and_mmcif_copies_read_identically(name, tmp_path):
    path = TESTS_DATA / f"{name}.pdb"
    original = structures.read_chain(path)
    (tmp_path / "a.pdb.gz").write_bytes(gzip.compress(path.read_bytes()))
    (tmp_path / "a.ent.bz2").write_bytes(bz2.compress(path.read_bytes()))
    import gemmi
    cif = write_text(gemmi.read_structure(str(path)), "cif")
    (tmp_path / "a.cif.gz").write_bytes(gzip.compress(cif.encode()))
    for copy in (tmp_path / "a.pdb.gz", tmp_path / "a.ent.bz2", cif, tmp_path / "a.cif.gz"):
        back = structures.read_chain(copy, original.chain_id)
        assert back.sequence == original.sequence and back.resids == original.resids
        np.testing.assert_allclose(back.ca, original.ca, atol=1e-3)
        np.testing.assert_allclose(back.bfactors, original.bfactors, atol=1e-2)


def test_gromos_four_letter_residue_names():
    """GROMOS's LYSH spills into column 21 (gemmi: chain "HA"); it stays residue 4 of chain A in
    PDB files, while a real 2-character chain "HA" of an mmCIF file stays a chain of its own."""
    import gemmi

    path = MDA / "gromos11/gromos11_traj_vac.pdb.gz"
    assert "LYSHA   4" in gzip.decompress(path.read_bytes()).decode()
    chain = structures.read_chain(path)
    assert chain.sequence == "VYRKQ" and chain.resids == ("1", "2", "3", "4", "5")
    structure = gemmi.read_structure(str(TESTS_DATA / "7rup.A.pdb"))
    structure[0][0].name = "HA"  # 7rup.A has lysines
    cif = write_text(structure, "cif")
    ha = structures.read_chain(cif)
    assert ha.chain_id == "HA"
    assert ha.sequence == structures.read_chain(TESTS_DATA / "7rup.A.pdb").sequence


def test_mmcif_chain_by_label_asym_id():
    """An mmCIF chain is found by its author id, else by its label_asym_id."""
    import gemmi

    structure = gemmi.read_structure(str(TESTS_DATA / "7tgi.B.pdb"))
    structure.setup_entities()  # gemmi names the polymer's label_asym_id "Bxp"
    cif = write_text(structure, "cif")
    assert "Bxp" in cif
    by_label, by_author = structures.read_chain(cif, "Bxp"), structures.read_chain(cif, "B")
    assert by_label.sequence == by_author.sequence and by_label.chain_id == "Bxp"


def oracle(path: Path):
    """Biopython's reading of the same file: the first model's first chain (split by segment id
    when the chain column is blank) with amino-acid residues that have a CA, as
    ``(chain_id, {resid: letter})``; None if there is none."""
    import warnings

    from Bio.Data.PDBData import protein_letters_3to1_extended as three_to_one
    from Bio.PDB import MMCIFParser, PDBParser

    is_cif = ".cif" in path.name
    opener = gzip.open if path.suffix == ".gz" else open
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with opener(path, "rt") as handle:
                parser = MMCIFParser(QUIET=True) if is_cif else PDBParser(QUIET=True)
                model = next(iter(parser.get_structure("x", handle)))
        except Exception:  # Biopython refuses it as well: no protein for the oracle either
            return None
    groups = {}
    for chain in model:
        for residue in chain:
            name = residue.get_resname().strip().upper()
            letter = MD_NAMES.get(name) or three_to_one.get(name)
            if letter and "CA" in residue:
                key = chain.id if chain.id.strip() else residue.segid.strip()
                resid = f"{residue.id[1]}{residue.id[2].strip()}"
                groups.setdefault(key, {})[resid] = letter
    return next(iter(groups.items()), None)


# Where gemmi and Biopython disagree, measured on this corpus (each asserted as it is):
KNOWN = {
    # Two MODEL 1 records: gemmi refuses the file (Biopython and TMscore read it).
    "incomplete.pdb": "refused",
}


def test_cameo_references_agree_with_biopython():
    """The same 203 CAMEO files, residue by residue (number, insertion code, one-letter code)
    against Biopython's reader."""
    shared = sorted(need(SHARED_REFS / "structures", "CAMEO 2022 references").glob("*.pdb"))
    inserted = set()
    for path in shared + CAMEO_LOCAL:
        chain, (cid, want) = structures.read_chain(path), oracle(path)
        assert chain.chain_id == cid and dict(zip(chain.resids, chain.sequence)) == want, path
        inserted |= {f"{path.name} {r}" for r in chain.resids if not r.lstrip("-").isdigit()}
    # Insertion codes (antibody numbering) are residues of their own.
    assert {"7u04.H.pdb 52A", "7u04.H.pdb 82C", "7zgm.A.pdb 86B"} <= inserted


def test_md_package_and_pdb_files_from_pypi():
    """Every structure file MDAnalysis ships is tried: those with protein read as Biopython reads
    them (plus residues that only gemmi's table knows as amino acids), the others fail with a
    StructureError naming the file (waters, lipids, ligands, nucleic acids, toy residues, a tar
    archive named .pdb.gz, a MODEL without ENDMDL)."""
    files, read, refused, seen_known, extra = mda_files(), [], [], {}, {}
    for path in files:
        rel, expected = path.relative_to(MDA).as_posix(), oracle(path)
        try:
            chain = structures.read_chain(path)
        except StructureError as exc:
            assert str(path) in str(exc)
            refused.append(rel)
            if expected is not None and rel in KNOWN:
                seen_known[rel] = "refused"
            elif expected is not None:  # Biopython calls a lone atom named CA an amino acid
                assert rel == "nucl_res.pdb" and list(expected[1].values()) == ["S"], rel  # SEN
            continue
        read.append(rel)
        assert expected is not None, rel
        cid, want = expected
        got = dict(zip(chain.resids, chain.sequence))
        assert chain.chain_id == cid, rel
        missing = sorted(set(want) - set(got))
        if missing:
            seen_known[rel] = f"lacks {' '.join(missing)}"
        extra.update({f"{rel} {r}": got[r] for r in set(got) - set(want)})
        assert all(got[r] == want[r] for r in set(want) & set(got) if want[r] != "X"), rel
    assert seen_known == KNOWN
    # Modified residues in gemmi's component table but not in Biopython's (ornithine, VWW).
    assert extra == {"namd_cgenff.pdb 9": "X", "mmcif/multimodel_warning.cif.gz 210": "X"}, extra
    assert len(read) == 99 and {"adk_open.pdb", "mmcif/1BD2.cif.gz", "nmr_neopetrosiamide.pdb"} \
        <= set(read)
    print(f"\nMDAnalysis corpus: {len(files)} files tried, {len(read)} read, "
          f"{len(refused)} refused with a StructureError: {', '.join(refused)}")


def test_md_style_file_details():
    """adk_open.pdb (CHARMM): `CA  ` left-justified, blank chain column, segment id 4AKE, HSD."""
    line = next(x for x in (MDA / "adk_open.pdb").read_text().splitlines() if " CA " in x[11:17])
    assert line[12:16] == "CA  " and line[21] == " " and line[72:76] == "4AKE"
    chain = structures.read_chain(MDA / "adk_open.pdb")
    assert chain.chain_id == "4AKE" and len(chain.sequence) == 214
    assert "X" not in chain.sequence and chain.sequence.startswith("MRIILLGAPGAGKGTQ")
    assert structures.read_chain(MDA / "adk_open.pdb", "4AKE").sequence == chain.sequence
    with pytest.raises(StructureError, match=r"adk_open\.pdb, chain 'A': no such chain .*4AKE"):
        structures.read_chain(MDA / "adk_open.pdb", "A")


@pytest.mark.parametrize("name", ["7rup.A", "7oju.A", "7pkw.A"])
def test_altlocs_of_real_references_read_the_first_conformer(name):
    """CAMEO references with alternative Cα positions: altloc A, once (Biopython's atoms)."""
    from Bio.PDB import PDBParser

    path = need(SHARED_REFS / "structures" / f"{name}.pdb", "CAMEO 2022 references")
    residues = {f"{r.id[1]}{r.id[2].strip()}": r
                for r in PDBParser(QUIET=True).get_structure(name, path).get_residues()}
    chain, disordered = structures.read_chain(path), 0
    for resid, xyz in zip(chain.resids, chain.ca):
        atom = residues[resid]["CA"]
        if atom.is_disordered():
            disordered += 1
            np.testing.assert_allclose(xyz, atom.child_dict["A"].coord, atol=1e-3)
        else:
            np.testing.assert_allclose(xyz, atom.coord, atol=1e-3)
    assert disordered >= 1


def test_nmr_ensemble_reads_the_first_model():
    """nmr_neopetrosiamide.pdb: many MODELs; the Cα of model 1, as Biopython reads them."""
    from Bio.PDB import PDBParser

    path = MDA / "nmr_neopetrosiamide.pdb"
    models = list(PDBParser(QUIET=True).get_structure("nmr", path))
    assert len(models) > 1
    ca = [[r["CA"].coord for r in m.get_residues() if "CA" in r] for m in models[:2]]
    chain = structures.read_chain(path)
    np.testing.assert_allclose(chain.ca, ca[0], atol=1e-3)
    assert np.abs(chain.ca - np.array(ca[1])).max() > 0.1


def test_pdb_mmcif_and_pdb_format_of_the_same_entries_agree():
    """The PDB's own mmCIF vs its PDB-format file, every protein chain: author chain ids and
    author numbering (with insertion codes), not label_seq_id, which differs in several."""
    import gemmi

    relabelled = 0
    for entry in ("1BD2", "3KPR", "3PWP"):
        cif = MDA / f"mmcif/{entry}.cif.gz"
        for chain in gemmi.read_structure(str(cif))[0]:
            if not len(chain.get_polymer()):
                continue
            a = structures.read_chain(cif, chain.name)
            b = structures.read_chain(MDA / f"mmcif/{entry}.pdb.gz", chain.name)
            assert a.sequence == b.sequence and a.resids == b.resids, (entry, chain.name)
            np.testing.assert_allclose(a.ca, b.ca, atol=1e-3)
            labels = [str(r.label_seq) for r in chain.get_polymer() if r.find_atom("CA", "*")]
            relabelled += labels != list(a.resids)
    assert relabelled >= 5


def tmscore(a: Path, b: Path, tmp_path) -> dict:
    """The TMscore program on the raw files (it matches residues by number)."""
    plain = []
    for k, path in enumerate((a, b)):
        plain.append(tmp_path / f"{k}.pdb")
        plain[-1].write_bytes(gzip.decompress(path.read_bytes()) if path.suffix == ".gz"
                              else path.read_bytes())
    out = subprocess.run(["TMscore", *map(str, plain)], capture_output=True, text=True,
                         check=True).stdout
    get = lambda pattern: float(re.search(pattern, out)[1])  # noqa: E731
    return {"tm_score": get(r"TM-score\s*=\s*([\d.]+)"), "gdt_ts": get(r"GDT-TS-score=\s*([\d.]+)"),
            "rmsd": get(r"RMSD of  the common residues=\s*([\d.]+)"),
            "n": get(r"Number of residues in common=\s*(\d+)")}


# (model, reference): open vs closed adenylate kinase (CHARMM, segid 4AKE), the CHARMM file vs
# an OPLS-AA solvated system (GROMACS style, no segid), a solvated vs dried cobrotoxin.
MD_PAIRS = [("adk_open.pdb", "adk_closed.pdb"), ("adk_oplsaa.pdb", "adk_open.pdb"),
            ("cobrotoxin.pdb", "cobrotoxin_dry_neutral_0.pdb")]


@pytest.mark.parametrize("model,ref", MD_PAIRS)
def test_compare_structures_agrees_with_tmscore_on_md_files(model, ref, tmp_path):
    mda_files()
    ours = metrics.compare_structures(MDA / model, MDA / ref)
    tms = tmscore(MDA / model, MDA / ref, tmp_path)
    assert ours["n_aligned"] == tms["n"] and ours["seq_identity"] == 1.0
    assert ours["tm_score"] == pytest.approx(tms["tm_score"], abs=1e-4)
    assert ours["gdt_ts"] == pytest.approx(tms["gdt_ts"], abs=1e-4)
    assert ours["rmsd"] == pytest.approx(tms["rmsd"], abs=1e-3)


@pytest.mark.s3
def test_mmcif_from_the_pdbsnapshots_bucket(s3_as, tmp_path):
    """The two-chain mmCIF entry of the local S3 server, fetched with eksfold's download code."""
    from eksfold.data.references import PDBSNAPSHOTS_URL, reference_url
    from eksfold.data.transfer import fetch

    s3_as("anon")
    url = reference_url("7RUP", PDBSNAPSHOTS_URL.replace("{date}", "20240101"))
    fetch(url, tmp_path / "7rup.cif.gz", progress=False)
    for chain_id, source in s3_as("anon").seed.chains.items():
        got = structures.read_chain(tmp_path / "7rup.cif.gz", chain_id)
        want = structures.read_chain(source)
        assert got.sequence == want.sequence and got.resids == want.resids
        np.testing.assert_allclose(got.ca, want.ca, atol=1e-3)


def test_to_mmcif_keeps_the_trace_and_plddt():
    text = (TESTS_DATA / "7th2.C.pdb").read_text()
    cif = to_mmcif(text, name="t1")
    assert cif.startswith("data_t1") and "_atom_site.B_iso_or_equiv" in cif
    before, after = structures.read_chain(text), structures.read_chain(cif)
    assert after.sequence == before.sequence and after.resids == before.resids
    np.testing.assert_allclose(after.ca, before.ca, atol=1e-3)
    np.testing.assert_allclose(after.bfactors, before.bfactors, atol=1e-2)
    import gemmi
    block = gemmi.cif.read_string(cif).sole_block()
    local = block.find("_ma_qa_metric_local.", ["label_seq_id", "metric_value"])
    assert len(local) == len(before.sequence)
    values = np.array([float(row[1]) for row in local])
    np.testing.assert_allclose(values, before.bfactors, atol=5e-3)
    mean = float(block.find_value("_ma_qa_metric_global.metric_value"))
    assert mean == pytest.approx(before.bfactors.mean(), abs=5e-3)
    # Entity 1, label_asym_id = chain id and label_seq_id 1..n with the sequence, as AFDB files.
    assert set(block.find_values("_atom_site.label_asym_id")) == {before.chain_id}
    assert set(block.find_values("_atom_site.label_entity_id")) == {"1"}
    assert block.find_value("_entity_poly.pdbx_seq_one_letter_code") == before.sequence
    assert [row[0] for row in local] == [str(k + 1) for k in range(len(before.sequence))]
    assert metrics.compare_structures(cif, text)["tm_score"] == pytest.approx(1.0)


def test_transform_keeps_format_and_moves_every_atom():
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    shift = np.array([1.0, -2.0, 3.0])
    cif = to_mmcif((TESTS_DATA / "7rup.A.pdb").read_text())
    moved = transform_text(cif, rot, shift)
    assert moved.startswith("data_")
    a, b = structures.read_chain(cif), structures.read_chain(moved)
    np.testing.assert_allclose(b.ca, a.ca @ rot.T + shift, atol=2e-3)
    md = transform_text(MDA / "adk_open.pdb", rot, shift)  # MD file written back as PDB
    np.testing.assert_allclose(structures.read_chain(md).ca,
                               structures.read_chain(MDA / "adk_open.pdb").ca @ rot.T + shift,
                               atol=2e-3)


def test_errors_name_the_file_and_chain(tmp_path):
    water = tmp_path / "water.pdb"
    water.write_text("HETATM    1  O   HOH A   1       0.000   0.000   0.000  1.00 10.00"
                     "           O\n")
    with pytest.raises(StructureError, match=r"water\.pdb: no amino-acid residues .*chains: A"):
        structures.read_chain(water)
    with pytest.raises(ValueError, match=r"7rup\.A\.pdb, chain 'Q': no such chain \(chains: A\)"):
        structures.read_chain(TESTS_DATA / "7rup.A.pdb", "Q")
    with pytest.raises(StructureError, match=r"missing\.pdb: cannot read file"):
        structures.read_chain(tmp_path / "missing.pdb")
    with pytest.raises(StructureError, match=r"<mmCIF text>: no atoms in any model"):
        structures.read_chain("data_x\nloop_\n_atom_site.id\n")
    (tmp_path / "broken.cif.gz").write_bytes(gzip.compress(b"data_x\n")[:12])
    with pytest.raises(StructureError, match=r"broken\.cif\.gz: corrupt compressed data"):
        structures.read_chain(tmp_path / "broken.cif.gz")


def test_altlocs_insertion_codes_models_and_modified_residues():
    """Small records in the PDB's own layout: the first altloc and model are read, MSE is M,
    a residue with an insertion code is its own residue, calcium is not a C-alpha."""
    atom = ("{rec:<6}{n:5d} {name:<4}{alt}{res} {ch}{num:>4}{ic}   {x:8.3f}{y:8.3f}   0.000"
            "  1.00{b:6.2f}          {el:>2}\n")
    rows = [("ATOM", " CA ", "A", "GLY", 1, " ", 0.0, 1.0, "C"),
            ("ATOM", " CA ", "B", "GLY", 1, " ", 9.0, 2.0, "C"),
            ("HETATM", " CA ", " ", "MSE", 2, " ", 3.8, 3.0, "C"),
            ("ATOM", " CA ", " ", "ALA", 2, "A", 7.6, 4.0, "C"),
            ("HETATM", "CA  ", " ", " CA", 301, " ", 20.0, 5.0, "CA")]
    model1 = "".join(atom.format(rec=r, n=k + 1, name=nm, alt=alt, res=res, ch="A", num=num, ic=ic,
                                 x=x, y=0.0, b=b, el=el)
                     for k, (r, nm, alt, res, num, ic, x, b, el) in enumerate(rows))
    model2 = model1.replace("   0.000   0.000  1.00", "  50.000   0.000  1.00")
    text = f"MODEL        1\n{model1}ENDMDL\nMODEL        2\n{model2}ENDMDL\nEND\n"
    chain = structures.read_chain(text)
    assert chain.sequence == "GMA" and chain.resids == ("1", "2", "2A")
    np.testing.assert_allclose(chain.ca[:, 0], [0.0, 3.8, 7.6])
    np.testing.assert_allclose(chain.ca[:, 1], 0.0)  # model 1, not model 2
    np.testing.assert_allclose(chain.bfactors, [1.0, 3.0, 4.0])


def test_to_mmcif_of_openfold_output():
    """What the inference stage writes: OpenFold's own ``protein.to_pdb`` text (PARENT record,
    TER, pLDDT as B-factors) becomes mmCIF with the same trace and pLDDT."""
    from eksfold.models.openfold2.compat import prepare

    prepare()
    from openfold.np import protein

    prediction = protein.from_pdb_string((TESTS_DATA / "7th2.C.pdb").read_text())
    pdb_text = protein.to_pdb(prediction)
    assert pdb_text.startswith("PARENT")
    before, after = structures.read_chain(pdb_text), structures.read_chain(to_mmcif(pdb_text))
    assert after.sequence == before.sequence and after.resids == before.resids
    np.testing.assert_allclose(after.ca, before.ca, atol=1e-3)
    np.testing.assert_allclose(after.bfactors, prediction.b_factors[:, 1], atol=1e-2)
