"""Target files recognised by content: AlphaFold3/OpenFold3 JSON jobs, PDB and mmCIF structures,
Stockholm and a3m alignments; other formats refused by name with what to do instead. Real
files: the shipped CAMEO references, an mmCIF gemmi writes from them, jackhmmer's own
Stockholm output for HMMER's tutorial query."""
import json
import subprocess
from pathlib import Path

import gemmi
import pytest

from eksfold.errors import TargetError
from eksfold.target_files import read_targets
from s3_server import two_chain_mmcif

PROJECT = Path(__file__).resolve().parents[1]
REFS = PROJECT / "data" / "demo" / "structures"


def seqres(path: Path) -> str:
    """The sequence of the demo FASTA for a reference (`7wj0.A.pdb` -> 7WJ0 chain A)."""
    pdb, chain = path.name.split(".")[:2]
    text = (PROJECT / "data" / "demo" / "targets.fasta").read_text().splitlines()
    i = next(i for i, line in enumerate(text) if f"pdbid: {pdb.upper()} | chain: {chain}" in line)
    return text[i + 1]


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_pdb_file_gives_its_protein_chains(tmp_path):
    # a copy under a name that says nothing: recognised by content
    src = REFS / "7wj0.A.pdb"
    path = write(tmp_path, "model.txt", src.read_text())
    (target,) = read_targets(path)
    assert target.id == "model-a"
    st = gemmi.read_structure(str(src))
    assert target.sequence == gemmi.one_letter_code(st[0]["A"].get_polymer().extract_sequence())


def test_mmcif_with_two_chains_gives_two_targets_named_file_chain(tmp_path):
    text = two_chain_mmcif({"A": REFS / "7wj0.A.pdb", "B": REFS / "7vrf.A.pdb"}, "pair")
    targets = read_targets(write(tmp_path, "pair.cif", text))
    assert [t.id for t in targets] == ["pair-a", "pair-b"]
    assert targets[1].length == len(gemmi.read_structure(str(REFS / "7vrf.A.pdb"))[0][0])


def test_pdb_with_seqres_uses_the_full_sequence(tmp_path):
    """Observed residues may be fewer than the SEQRES (7vp6.D: 46 of 67 modelled)."""
    st = gemmi.read_structure(str(REFS / "7vp6.D.pdb"))
    st.setup_entities()
    full = seqres(REFS / "7vp6.D.pdb")
    st.entities[0].full_sequence = [gemmi.expand_one_letter(c, gemmi.ResidueKind.AA)
                                    for c in full]
    path = tmp_path / "7vp6.pdb"
    st.write_pdb(str(path))
    assert "SEQRES" in path.read_text()
    (target,) = read_targets(path)
    assert target.sequence == full and target.length == 67


def test_stockholm_gives_the_query(tmp_path, globins):
    query, database = globins
    sto = tmp_path / "hbb.sto"
    subprocess.run(["jackhmmer", "-N", "1", "-o", "/dev/null", "-A", str(sto), str(query),
                    str(database)], check=True)
    copy = write(tmp_path, "hits", sto.read_text())     # no suffix: content decides
    (target,) = read_targets(copy)
    expected = "".join(query.read_text().splitlines()[1:]).replace(" ", "")
    assert target.id == "hits" and target.sequence == expected


def test_colabfold_a3m_without_its_suffix(tmp_path):
    path = write(tmp_path, "msa", "#38\t1\n>101\nGSSCTPGTTFRNRCNTCRCGSNGRSASCTLMACPPGSY\n"
                                  ">hit\nGSSCTPGATFRNRCNTCRCGSNGRSASCTLMACPPGSY\n")
    (target,) = read_targets(path)
    assert target.id == "msa" and target.length == 38


def test_alphafold3_job_protein_chains_and_refused_kinds(tmp_path):
    job = {"name": "complex1", "modelSeeds": [1], "dialect": "alphafold3", "version": 2,
           "sequences": [{"protein": {"id": ["A", "B"], "sequence": seqres(REFS / "7wj0.A.pdb")}},
                         {"protein": {"id": "C", "sequence": seqres(REFS / "7y0i.A.pdb")}},
                         {"dna": {"id": "D", "sequence": "GATTACA"}},
                         {"ligand": {"id": "E", "ccdCodes": ["ATP"]}}]}
    errors = []
    targets = read_targets(write(tmp_path, "job.json", json.dumps(job)), errors=errors)
    assert [t.id for t in targets] == ["complex1-a", "complex1-b", "complex1-c"]
    assert targets[2].length == 56
    problems = sorted(str(e) for e in errors)
    assert len(problems) == 2
    assert "job 'complex1', chain D: a DNA entry" in problems[0]
    assert "job 'complex1', chain E: a ligand entry" in problems[1]
    assert all("protein chains only" in p for p in problems)


def test_alphafold_server_job_list(tmp_path):
    jobs = [{"name": "srv", "sequences": [
        {"proteinChain": {"sequence": seqres(REFS / "7wj0.A.pdb"), "count": 2}},
        {"rnaSequence": {"sequence": "ACGU", "count": 1}}]}]
    errors = []
    targets = read_targets(write(tmp_path, "server.json", json.dumps(jobs)), errors=errors)
    assert [t.id for t in targets] == ["srv-a", "srv-b"]
    assert len(errors) == 1 and "chain C: a RNA entry" in str(errors[0])


def test_openfold3_query_file(tmp_path):
    queries = {"queries": {
        "ubq": {"chains": [{"molecule_type": "protein", "chain_ids": ["A"],
                            "sequence": seqres(REFS / "7vp6.D.pdb")},
                           {"molecule_type": "ligand", "chain_ids": ["B"], "ccd_codes": "HEM"}]},
        "pair": {"chains": [{"molecule_type": "protein", "chain_ids": "A",
                             "sequence": seqres(REFS / "7y3k.A.pdb")}]}}}
    errors = []
    targets = read_targets(write(tmp_path, "q.json", json.dumps(queries)), errors=errors)
    assert [(t.id, t.length) for t in targets] == [("ubq-a", 67), ("pair-a", 79)]
    assert len(errors) == 1 and "job 'ubq', chain B: a ligand entry" in str(errors[0])


@pytest.mark.parametrize("name,text,says", [
    ("x.json", '{"title": "not a job"}', "a JSON document that is not an AlphaFold3/OpenFold3 job"),
    ("x.json", "[1, 2, 3]", "a JSON document that is not an AlphaFold3/OpenFold3 job"),
    ("x.gb", "LOCUS       AB000001   120 aa  linear\n", "a GenBank flat file"),
    ("x.txt", "CLUSTAL W (1.83) multiple sequence alignment\n\n", "a Clustal alignment"),
    ("x.fq", "@read1\nACGT\n+\nIIII\n", "a FASTQ file"),
    ("x.html", "<!DOCTYPE html><html><body>404</body></html>\n", "an HTML page"),
    ("x.dat", "ID   ALBU_HUMAN   Reviewed;   609 AA.\n", "an EMBL/UniProt flat file"),
    ("x.hmm", "HMMER3/f [3.3 | Nov 2019]\nNAME  x\n", "an HMMER profile"),
])
def test_other_formats_are_named_with_what_to_do(tmp_path, name, text, says):
    with pytest.raises(TargetError) as err:
        read_targets(write(tmp_path, name, text))
    assert says in str(err.value) and "not a list of targets" in str(err.value)
    assert name in str(err.value)


def test_structure_without_protein_and_broken_json_are_clear(tmp_path):
    with pytest.raises(TargetError, match=r"bad.json.*line \d+: not valid JSON"):
        read_targets(write(tmp_path, "bad.json", '{"queries": '))
    hoh = "HETATM    1  O   HOH A   1       0.000   0.000   0.000  1.00  0.00           O\nEND\n"
    with pytest.raises(TargetError, match="no protein chain"):
        read_targets(write(tmp_path, "water.pdb", hoh))


def test_bare_sequence_still_says_fasta_needs_a_header(tmp_path):
    with pytest.raises(TargetError, match="not FASTA \\(a bare sequence"):
        read_targets(write(tmp_path, "seq.txt", "MKVLAAGIVGLLLA\n"))


def test_directory_mixes_formats(tmp_path):
    (tmp_path / "d").mkdir()
    write(tmp_path / "d", "a.pdb", (REFS / "7wj0.A.pdb").read_text())
    write(tmp_path / "d", "b.fasta", ">b\nMKVLAAGIVGLLLAVVLSGCA\n")
    assert [t.id for t in read_targets(tmp_path / "d")] == ["a-a", "b"]
