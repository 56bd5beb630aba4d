"""Complex inputs for the OpenFold3 back end: ColabFold A:B FASTA, OpenFold3 query JSON,
AlphaFold3 / AlphaFold Server jobs, and the refusals that name target, chain and value.
The ligand checks run the real RDKit and biotite CCD in .venv-of3 (mk/openfold3.mk)."""
from __future__ import annotations

import json

import pytest

from eksfold.errors import TargetError
from eksfold.models.openfold3.chemistry import check_targets
from eksfold.models.openfold3.complex import ComplexTarget, query_set
from eksfold.models.openfold3.environment import of3_python
from eksfold.models.openfold3.inputs import chain_ids, read_complex_file, read_complex_text

HBA = "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF"
HBB = "MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDL"



def af3_job(name, *sequences, **extra):
    return {"name": name, "dialect": "alphafold3", "version": 2, "modelSeeds": [1],
            "sequences": list(sequences), **extra}


def test_colabfold_colon_notation_gives_chains_a_b_and_groups_homomers():
    text = f">hb_tetramer haemoglobin\n{HBA}:{HBB}:\n{HBA}:{HBB}\n>mono\n{HBA}\n"
    tetramer, mono = read_complex_text(text, "hb.fasta")
    assert tetramer.id == "hb-tetramer" and tetramer.chain_ids == ["A", "C", "B", "D"]
    assert [(c.sequence, c.chain_ids) for c in tetramer.chains] == [(HBA, ("A", "C")),
                                                                     (HBB, ("B", "D"))]
    assert tetramer.polymer_residues == 2 * (len(HBA) + len(HBB))
    assert mono.to_query() == {"chains": [{"molecule_type": "protein", "chain_ids": ["A"],
                                           "sequence": HBA, "description": "mono"}]}


@pytest.mark.parametrize("text, chain, words", [
    (f">bad\n{HBA}:{HBB[:10]}1{HBB[11:]}\n", "B", ["'1'", "residue 11"]),
    (f">gap\n{HBA}::{HBB}\n", "B", ["empty chain"]),
    (f">pep\n{HBA}:ACGT\n", None, None),  # ColabFold chains are proteins: ACGT a peptide
])
def test_colabfold_refusals_name_target_and_chain(text, chain, words):
    errors = []
    targets = read_complex_text(text + f">ok\n{HBA}:{HBB}\n", "x.fasta", errors)
    assert [t.id for t in targets] == ([] if chain else [text[1:text.index("\n")]]) + ["ok"]
    if chain:
        (err,) = errors
        assert isinstance(err, TargetError) and err.target == text[1:text.index("\n")]
        assert err.chain == chain and all(w in str(err) for w in words), str(err)


def test_openfold3_query_json_round_trips_every_molecule_kind(tmp_path):
    data = {"seeds": [7, 8], "queries": {"Mixed Complex": {"chains": [
        {"molecule_type": "protein", "chain_ids": ["A", "B"], "sequence": HBA},
        {"molecule_type": "rna", "chain_ids": "C", "sequence": "acguacgu"},
        {"molecule_type": "dna", "chain_ids": ["D"], "sequence": "ACGTACGT"},
        {"molecule_type": "ligand", "chain_ids": ["E"], "smiles": "CC(=O)Oc1ccccc1C(=O)O"},
        {"molecule_type": "ligand", "chain_ids": ["F"], "ccd_codes": "atp"},
        {"molecule_type": "ligand", "chain_ids": ["G"], "ccd_codes": ["MG"]}]}}}
    path = tmp_path / "q.json"
    path.write_text(json.dumps(data))
    (target,) = read_complex_file(path)
    assert target.id == "mixed-complex" and target.seeds == (7, 8)
    assert [c.molecule_type for c in target.chains] == ["protein", "rna", "dna", "ligand",
                                                        "ligand", "ligand"]
    assert target.chains[1].sequence == "ACGUACGU" and target.chains[4].ccd_codes == ("ATP",)
    assert ComplexTarget.from_dict(json.loads(json.dumps(target.to_dict()))) == target
    out = query_set([target], [7, 8])
    assert out["seeds"] == [7, 8] and out["queries"]["mixed-complex"]["chains"][3] == {
        "molecule_type": "ligand", "chain_ids": ["E"], "smiles": "CC(=O)Oc1ccccc1C(=O)O"}


def test_alphafold3_jobs_and_alphafold_server_jobs():
    af3 = af3_job("Prot+ATP+Mg", {"protein": {"id": ["A", "B"], "sequence": HBA,
                                               "unpairedMsa": None}},
                  {"dna": {"id": "C", "sequence": "GATTACA"}},
                  {"ligand": {"id": "D", "ccdCodes": ["ATP"]}},
                  {"ligand": {"id": "E", "ccdCodes": ["MG"]}})
    server = {"name": "server job", "modelSeeds": ["3"], "sequences": [
        {"proteinChain": {"sequence": HBA, "count": 2}},
        {"rnaSequence": {"sequence": "ACGU", "count": 1}},
        {"ligand": {"ligand": "CCD_ATP", "count": 1}}, {"ion": {"ion": "ZN", "count": 2}}]}
    one, two = read_complex_text(json.dumps([af3, {**server, "dialect": "alphafoldserver"}]))
    assert one.id == "prot-atp-mg" and one.seeds == (1,) and one.chain_ids == list("ABCDE")
    assert two.seeds == (3,) and two.chain_ids == list("ABCDEF")
    assert [(c.molecule_type, c.ccd_codes) for c in two.chains[2:]] == [
        ("ligand", ("ATP",)), ("ligand", ("ZN",))]
    assert two.chains[3].chain_ids == ("E", "F")


@pytest.mark.parametrize("job, chain, words", [
    (af3_job("x", {"protein": {"id": "A", "sequence": HBA}},
             {"protein": {"id": "A", "sequence": HBB}}), "A", ["used twice"]),
    (af3_job("x", {"protein": {"id": "A", "sequence": HBA,
                               "modifications": [{"ptmType": "SEP", "ptmPosition": 3}]}}),
     "A", ["modifications"]),
    (af3_job("x", {"protein": {"id": "A", "sequence": HBA, "unpairedMsa": ">q\nMV\n"}}),
     "A", ["unpairedMsa"]),
    (af3_job("x", {"rna": {"id": "R", "sequence": "ACGT"}}), "R", ["'T'", "rna"]),
    (af3_job("x", {"ligand": {"id": "L", "ccdCodes": ["ATP"]}}), None, ["no protein"]),
    (af3_job("x", {"protein": {"id": "A", "sequence": HBA}},
             {"ligand": {"id": "L", "smiles": "CCO", "ccdCodes": ["ATP"]}}), "L",
     ["exactly one"]),
    (af3_job("x", {"protein": {"id": "A", "sequence": HBA}},
             {"ligand": {"id": "L", "ccdCodes": ["AT P"]}}), "L", ["'AT P'"]),
    (af3_job("x", {"protein": {"id": "A!", "sequence": HBA}}), "A!", ["chain id"]),
    (af3_job("x", {"glycan": {"id": "G"}}), "G", ["'glycan'"]),
    (af3_job("x", {"protein": {"id": "A", "sequence": HBA}}, bondedAtomPairs=[[1, 2]]), None,
     ["bondedAtomPairs"]),
])
def test_alphafold3_refusals_name_target_chain_and_value(job, chain, words):
    errors = []
    good = af3_job("good", {"protein": {"id": "A", "sequence": HBA}})
    targets = read_complex_text(json.dumps([job, good]), "jobs.json", errors)
    assert [t.id for t in targets] == ["good"]
    (err,) = errors
    assert err.target == "x" and err.chain == chain, str(err)
    assert all(w in str(err) for w in words), str(err)


def test_duplicate_target_ids_and_unknown_formats_are_refused():
    errors = []
    jobs = [af3_job("Dimer 1", {"protein": {"id": "A", "sequence": HBA}}),
            af3_job("dimer-1", {"protein": {"id": "A", "sequence": HBB}})]
    assert [t.name for t in read_complex_text(json.dumps(jobs), "j.json", errors)] == ["Dimer 1"]
    assert "already used by 'Dimer 1'" in str(errors[0])
    with pytest.raises(TargetError, match="neither JSON nor FASTA"):
        read_complex_text("MKV\n", "x.txt")
    with pytest.raises(TargetError, match="not valid JSON"):
        read_complex_text("{oops", "x.json")


def test_ligand_chemistry_is_checked_by_rdkit_and_the_ccd_in_of3_env(of3):
    jobs = [af3_job(f"lig-{i}", {"protein": {"id": "A", "sequence": HBA}},
                    {"ligand": {"id": "L", **lig}})
            for i, lig in enumerate([{"smiles": "CC(=O)Oc1ccccc1C(=O)O"},   # aspirin
                                     {"ccdCodes": ["ATP"]}, {"ccdCodes": ["MG"]},
                                     {"smiles": "C1CC(("},                  # unclosed
                                     {"smiles": "c1cccc1"},                 # not kekulisable
                                     {"ccdCodes": ["ZZZZZ"]}])]
    errors = []
    targets = check_targets(read_complex_text(json.dumps(jobs)), errors, python=of3)
    assert [t.id for t in targets] == ["lig-0", "lig-1", "lig-2"]
    assert [(e.target, e.chain) for e in errors] == [("lig-3", "L"), ("lig-4", "L"),
                                                     ("lig-5", "L")]
    assert "invalid SMILES 'C1CC(('" in str(errors[0]) and "'c1cccc1'" in str(errors[1])
    assert "unknown CCD code 'ZZZZZ'" in str(errors[2])
    with pytest.raises(TargetError, match="lig-5.*chain L.*ZZZZZ"):
        check_targets(read_complex_text(json.dumps(jobs[5:])), python=of3)


def test_chain_ids_run_past_the_alphabet():
    ids = chain_ids(64)
    assert ids[:3] == ["A", "B", "C"] and ids[26] == "a" and ids[62:] == ["AA", "AB"]
    assert len(set(ids)) == 64


def test_missing_of3_environment_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EKSFOLD_OF3_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(ImportError, match="make test-setup"):
        of3_python()


def test_every_input_kind_gives_a_query_openfold3_itself_accepts(of3):
    """Our OpenFold3 query, from each format, parsed by OpenFold3's own pydantic models."""
    fasta = read_complex_text(f">colab\n{HBA}:{HBB}:{HBA}\n")
    af3 = read_complex_text(json.dumps(af3_job("af3", {"protein": {"id": ["A", "B"],
                                                                   "sequence": HBA}},
                                               {"rna": {"id": "R", "sequence": "ACGU"}},
                                               {"dna": {"id": "D", "sequence": "ACGT"}},
                                               {"ligand": {"id": "L", "smiles": "CCO"}},
                                               {"ligand": {"id": "M", "ccdCodes": ["MG"]}})))
    data = query_set(fasta + af3, [1, 2])
    code = ("import json, sys\n"
            "from openfold3.projects.of3_all_atom.config.inference_query_format import "
            "InferenceQuerySet\n"
            "qs = InferenceQuerySet.model_validate(json.load(sys.stdin))\n"
            "print(json.dumps({n: [(c.molecule_type.name, c.chain_ids) for c in q.chains]"
            " for n, q in qs.queries.items()}))\n")
    from eksfold.models.openfold3.environment import run_in_of3
    parsed = json.loads(run_in_of3(["-c", code], json.dumps(data), python=of3).splitlines()[-1])
    assert parsed == {"colab": [["PROTEIN", ["A", "C"]], ["PROTEIN", ["B"]]],
                      "af3": [["PROTEIN", ["A", "B"]], ["RNA", ["R"]], ["DNA", ["D"]],
                              ["LIGAND", ["L"]], ["LIGAND", ["M"]]]}
