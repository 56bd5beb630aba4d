"""The openfold3 family without folding: its registration and answers, complex targets read
through eksfold's target readers (ColabFold A:B, AlphaFold3/OpenFold3 JSON), ligand checks and
token counts in .venv-of3, the OpenFold2 refusal of a complex, the align stage on a complex
(real jackhmmer, each distinct chain once, the MSA cache across targets), and the query a
fold sends. The folds themselves: tests/test_openfold3_pipeline.py (slow)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from eksfold.config import AlignConfig, DatabaseConfig
from eksfold.errors import ConfigError
from eksfold.models import family_of, get_backend
from eksfold.models.openfold3.environment import of3_env
from eksfold.models.openfold3.folder import MSA_NAMES, query_for
from eksfold.pipeline import load_targets_for_run
from eksfold.stages.align import align_target
from eksfold.target_files import read_text

SEQ_A = "MKTAYIAKQRQISFVKSHFSRQLEERLG"
SEQ_B = "GSHMLEDPVDAFQRLLKEAW"


def test_the_family_and_its_presets():
    assert family_of("of3") == family_of("of3-tiny") == "openfold3"
    of3 = get_backend("of3-tiny")
    assert of3.takes_complexes and of3.memory_grows_with == "tokens"
    assert of3.configuration == "reduced" and get_backend("of3").configuration == "full"
    # OpenFold3's own presets (tests/test_openfold3_memory.py); as built is no rung
    assert [s.name for s in of3.ladder()] == ["predict", "lma"] and of3.default_setting == "predict"
    assert of3.as_built_setting == "openfold3"
    assert of3.inputs().msas[0] == "uniref90" and of3.inputs().paired_msas
    # trained with templates: on by default (where template databases are configured), read
    # from hmmsearch's hits (tests/test_openfold3_templates.py)
    assert of3.inputs().template_hits == ("pdb_seqres",) and of3.template_routes == ("hmmsearch",)
    assert of3.inputs(templates=False).template_hits == ()
    with pytest.raises(ConfigError, match="no option presets"):
        get_backend("of3+long")
    full = get_backend("of3")
    # FACTS: 160 s at 51 tokens (full, 1 sample); more tokens cost more; the GPU far less
    assert full.predicted_seconds(51) == pytest.approx(160 * 5 ** 0.5, rel=1e-6)
    assert full.predicted_seconds(400) > full.predicted_seconds(100) > of3.predicted_seconds(100)
    assert full.gpu_seconds(186) == pytest.approx(2.9) and full.gpu_seconds(1869) < 80
    assert of3.resources(300) == (4, 16, 1) and of3.resources(3000) == (8, 64, 1)


def test_complexes_are_read_as_one_target_for_openfold3_and_split_for_openfold2(tmp_path):
    fasta = f">mono\n{SEQ_A}\n>dimer\n{SEQ_A}:{SEQ_B}\n>bad\n{SEQ_A}:MK1\n"
    errors = []
    complexes = read_text(fasta, "in.fasta", errors, complexes=True)
    by_id = {t.id: t for t in complexes}
    assert by_id["mono"].complex is None and by_id["mono"].length == len(SEQ_A)
    dimer = by_id["dimer"]
    assert dimer.chains == 2 and dimer.sequence == f"{SEQ_A}:{SEQ_B}"
    assert [c["chain_ids"] for c in dimer.complex["chains"]] == [["A"], ["B"]]
    assert len(errors) == 1 and "chain B" in str(errors[0]) and "'1'" in str(errors[0])
    # an AlphaFold2 preset: the A:B record named for what it is
    errors = []
    read_text(fasta, "in.fasta", errors)
    assert any("a complex of 2 chains" in str(e) and "of3" in str(e) for e in errors)
    assert "is a complex" in get_backend("tiny").refuse(dimer)
    assert get_backend("of3-tiny").refuse(dimer) is None


def test_json_jobs_ligands_and_tokens(tmp_path, of3):
    jobs = [{"name": "homo", "dialect": "alphafold3", "version": 2,
             "sequences": [{"protein": {"id": ["A", "B"], "sequence": SEQ_A}}]},
            {"name": "pep-atp", "dialect": "alphafold3", "version": 2, "modelSeeds": [7],
             "sequences": [{"protein": {"id": "A", "sequence": SEQ_B}},
                           {"rna": {"id": "R", "sequence": "ACGU"}},
                           {"ligand": {"id": ["L", "M"], "ccdCodes": ["ATP"]}},
                           {"ligand": {"id": "N", "ccdCodes": ["MG"]}}]},
            {"name": "bad-ccd", "dialect": "alphafold3", "version": 2,
             "sequences": [{"protein": {"id": "A", "sequence": SEQ_B}},
                           {"ligand": {"id": "L", "ccdCodes": ["ZZZZZ"]}}]}]
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))
    targets, rejected, _ = load_targets_for_run(str(path), backend=get_backend("of3-tiny"))
    by_id = {t.id: t for t in targets}
    assert set(by_id) == {"homo", "pep-atp"}
    assert by_id["homo"].chains == 2 and by_id["homo"].length == 2 * len(SEQ_A)
    # tokens: residues and nucleotides, plus heavy atoms (ATP 31, twice; Mg 1)
    assert by_id["pep-atp"].length == len(SEQ_B) + 4 + 2 * 31 + 1
    assert by_id["pep-atp"].complex["seeds"] == [7]
    (bad,) = rejected
    assert bad.target == "bad-ccd" and "chain L" in str(bad) and "'ZZZZZ'" in str(bad)
    # the same file for an AlphaFold2 preset: protein chains, other kinds refused by name
    targets, rejected, _ = load_targets_for_run(str(path), backend=get_backend("tiny"))
    assert [t.id for t in targets] == ["homo-a", "homo-b", "pep-atp-a", "bad-ccd-a"]
    assert any("chain L: a ligand entry" in str(e) for e in rejected)


def test_the_align_stage_aligns_each_distinct_chain_once(tmp_path, small_db):
    fasta = f">dimer\n{SEQ_A}:{SEQ_B}\n>homo\n{SEQ_A}:{SEQ_A}\n"
    dimer, homo = read_text(fasta, "in.fasta", complexes=True)
    assert [c["chain_ids"] for c in homo.complex["chains"]] == [["A", "B"]]   # one entity
    config = AlignConfig(cache=str(tmp_path / "cache"))
    dbs = DatabaseConfig(uniref90=str(small_db))
    first = align_target(dimer, dbs, config, tmp_path / "dimer")
    assert first["aligned_chains"] == 2 and first["cache_hits"] == 0
    assert (tmp_path / "dimer" / "chain_A" / "uniref90_hits.sto").is_file()
    assert (tmp_path / "dimer" / "chain_B" / "uniref90_hits.sto").is_file()
    second = align_target(homo, dbs, config, tmp_path / "homo")
    assert second["aligned_chains"] == 1 and second["cache_hits"] == 1   # SEQ_A seen before
    # the query a fold sends: each protein entity's MSAs under OpenFold3's names
    query, used = query_for(dimer, tmp_path / "dimer", tmp_path / "staging")
    for chain in query["chains"]:
        (path,) = chain["main_msa_file_paths"]
        assert Path(path).name == "uniref90_hits.sto" and Path(path).resolve().is_file()
    assert used["A"]["files"] == ["uniref90_hits.sto"]


def test_msa_names_are_ones_openfold3_reads(of3):
    """Every name MSA_NAMES gives a file is one OpenFold3's MSA parser keeps."""
    code = ("import json; from openfold3.projects.of3_all_atom.config.dataset_config_components "
            "import MSASettings; print(json.dumps(sorted(MSASettings().max_seq_counts)))")
    out = subprocess.run([of3, "-c", code], capture_output=True, text=True, env=of3_env(),
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    known = set(json.loads(out.stdout))
    assert {name.rsplit(".", 1)[0] for name in MSA_NAMES.values()} <= known
