"""RNA MSAs for OpenFold3 complexes (issue 24): the ``rfam`` role, nhmmer, OpenFold3's reading.

Real nhmmer/hmmbuild/hmmalign (HMMER 3) against the Rfam seed stand-in `make setup` builds
(mk/rna.mk: infernal's shipped Rfam seed alignments, unaligned) and the real OpenFold3 code in
``.venv-of3``. The complex is a small protein (ribosomal protein S6 of Geobacter
metallireducens, data/complexes/heterodimer.fasta, its first 60 residues) with a tRNA
(RF00005 seed member CP001399.1/1433538-1433611) as a homodimer entity (chains B and C) and a
DNA chain, which gets no MSA. OpenFold3's own MSA processing (``MsaSampleProcessorInference``)
must see the hits as the RNA chains' main MSA rows; the last test folds it through
``eksfold run --preset of3-tiny`` (reduced configuration, UNTRAINED random weights) and reads
the rows OpenFold3 featurised per chain from the unit record.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from eksfold.alignment.nhmmer import RFAM_HITS, Nhmmer, a3m_rows
from eksfold.alignment.rfam_standin import standin_records
from eksfold.alignment.rna import databases_for
from eksfold.config import AlignConfig, DatabaseConfig, InferConfig, RunConfig
from eksfold.errors import ConfigError
from eksfold.models import get_backend
from eksfold.models.openfold3.environment import LIB, of3_env
from eksfold.models.openfold3.folder import MSA_NAMES, query_for
from eksfold.stages.align import AlignStage
from eksfold.target_files import read_targets

PROJECT = Path(__file__).resolve().parents[1]
S6 = (PROJECT / "data" / "complexes" / "heterodimer.fasta").read_text().splitlines()[1].split(":")[0]
TRNA_NAME = "CP001399.1/1433538-1433611"
VAULT_NAME = "AAVX01043580.1/1126-1028"

# OpenFold3's own MSA processing of each query (in .venv-of3): per chain, the rows of its main
# (unpaired) MSA and its query row as OpenFold3 parsed them
OF3_MSAS = r"""
import json, sys
from openfold3.core.config.msa_pipeline_configs import MsaSampleProcessorInputInference
from openfold3.core.data.pipelines.sample_processing.msa import MsaSampleProcessorInference
from openfold3.projects.of3_all_atom.config.dataset_configs import InferenceDatasetConfigKwargs
from openfold3.projects.of3_all_atom.config.inference_query_format import Query

processor = MsaSampleProcessorInference(config=InferenceDatasetConfigKwargs().msa)
out = {}
for name, query in json.load(sys.stdin).items():
    q = Query.model_validate({"query_name": name, **query})
    msas = processor(input=MsaSampleProcessorInputInference.create_from_inference_query_entry(q))
    out[name] = {cid: {"rows": int(m.msa.shape[0]), "query": "".join(m.msa[0])}
                 for cid, m in msas.chain_id_to_main_msa.items()}
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def rfam_db() -> Path:
    """The Rfam seed stand-in `make setup` builds (mk/rna.mk); $EKSFOLD_RFAM_DB points elsewhere
    (a worktree's own build). Missing: fails with the set-up hint (no skip)."""
    path = Path(os.environ.get("EKSFOLD_RFAM_DB") or PROJECT / "data" / "db" / "rfam_standin.fasta")
    if not path.is_file():
        pytest.fail(f"RNA stand-in database missing at {path}: run `make setup` first")
    return path


@pytest.fixture(scope="module")
def rna(rfam_db) -> dict:
    from Bio import SeqIO

    return {r.id: str(r.seq) for r in SeqIO.parse(str(rfam_db), "fasta")}


def job(tmp: Path, name: str, chains: list[dict]) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps({"queries": {name: {"chains": chains}}}))
    return path


def complex_chains(rna_sequence: str) -> list[dict]:
    return [{"molecule_type": "protein", "chain_ids": ["A"], "sequence": S6[:60]},
            {"molecule_type": "rna", "chain_ids": ["B", "C"], "sequence": rna_sequence},
            {"molecule_type": "dna", "chain_ids": ["D"], "sequence": "ACGTTGCA"}]


def stage(small_db, rfam, cache=None, preset="of3-tiny"):
    databases = DatabaseConfig(uniref90=str(small_db), rfam=str(rfam) if rfam else None)
    config = RunConfig(databases=databases, infer=InferConfig(preset=preset),
                       align=AlignConfig(cache=str(cache) if cache else None))
    st = AlignStage(SimpleNamespace(config=config))
    st.open()
    return st


def of3_msas(of3, queries: dict, work: Path) -> dict:
    proc = subprocess.run([of3, "-c", OF3_MSAS], input=json.dumps(queries), capture_output=True,
                          text=True, env=of3_env(work), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_standin_is_rfam_seed_sequences_unaligned_and_distinct(rfam_db, rna):
    """The set-up's FASTA is what the builder makes from infernal's Rfam seeds now."""
    built = standin_records()
    assert dict(built) == rna and len(rna) == len(built) > 1000
    assert len(set(rna.values())) == len(rna)                       # deduplicated
    assert all(set(seq) <= set("ACGUNRYKMSWBDHV") for seq in rna.values())   # no gaps, RNA
    assert TRNA_NAME in rna and VAULT_NAME in rna                    # ENA names as Rfam's


@pytest.fixture(scope="module")
def aligned(small_db, rfam_db, rna, tmp_path_factory):
    """The protein-tRNA complex twice (the second time from the MSA cache), then a second
    complex sharing the tRNA with a Vault RNA added."""
    base = tmp_path_factory.mktemp("rna")
    [first] = read_targets(str(job(base, "s6-trna", complex_chains(rna[TRNA_NAME]))),
                           complexes=True)
    chains = complex_chains(rna[TRNA_NAME])[:2] + [
        {"molecule_type": "rna", "chain_ids": ["E"], "sequence": rna[VAULT_NAME]}]
    [second] = read_targets(str(job(base, "s6-trna-vault", chains)), complexes=True)
    st = stage(small_db, rfam_db, base / "cache")
    metrics = {"first": st.run_unit(first, None, base / "first"),
               "again": st.run_unit(first, None, base / "again"),
               "second": st.run_unit(second, None, base / "second")}
    return base, {"s6-trna": first, "s6-trna-vault": second}, metrics


def test_each_rna_entity_gets_nhmmer_hits_realigned_to_its_query(aligned, rna, rfam_db):
    base, _, metrics = aligned
    m = metrics["first"]
    assert m["rna_msas"] == {"searched": True, "source": "rfam", "database": str(rfam_db),
                             "chains": 1}
    entity = m["chains"]["B,C"]                     # the homodimer entity, searched once
    assert entity["molecule_type"] == "rna" and not entity["rfam_cache_hit"]
    assert entity["rfam_hits"] > 5 and entity["rfam_rows"] == entity["rfam_hits"] + 1
    assert "D" not in m["chains"] and not (base / "first" / "chain_D").exists()   # DNA: none
    hits = base / "first" / "chain_B" / RFAM_HITS
    assert a3m_rows(hits) == entity["rfam_rows"]
    lines = hits.read_text().splitlines()
    names, rows = lines[0::2], lines[1::2]
    query = rna[TRNA_NAME]
    assert rows[0] == query                         # the query first, as OpenFold3 expects
    # every row has one column per query residue (insertions in lower case), each distinct
    matched = ["".join(c for c in r if not c.islower()) for r in rows]
    assert all(len(r) == len(query) for r in matched) and len(set(matched)) == len(matched)
    # hits are other tRNAs of the seed, named name/start-end as nhmmer writes them
    assert all(n.startswith(">") and "/" in n for n in names[1:])
    assert {n[1:].rsplit("/", 1)[0] for n in names[1:]} & (set(rna) - {TRNA_NAME})
    assert sorted(p.name for p in (base / "first" / "chain_B").iterdir()) == [
        RFAM_HITS, "rna_msa.json"]
    tool = m["tool_wall_s"]
    assert tool > 0 and m["cpu_s"] > 0 and MSA_NAMES[RFAM_HITS] == RFAM_HITS


def test_repeated_rna_chains_come_from_the_cache(aligned):
    _, _, metrics = aligned
    again = metrics["again"]["chains"]["B,C"]
    assert again["rfam_cache_hit"] and again["rfam_rows"] == metrics["first"]["chains"]["B,C"]["rfam_rows"]
    second = metrics["second"]["chains"]
    assert second["B,C"]["rfam_cache_hit"] and not second["E"]["rfam_cache_hit"]
    assert second["E"]["rfam_hits"] >= 1 and metrics["second"]["rna_msas"]["chains"] == 2


def test_openfold3_reads_the_hits_as_the_rna_chains_main_msa(aligned, of3, tmp_path):
    base, targets, metrics = aligned
    query, used = query_for(targets["s6-trna"], base / "first", tmp_path / "staging")
    assert used["B,C"] == {"molecule_type": "rna", "files": [RFAM_HITS], "not_read": [],
                           "rows": metrics["first"]["chains"]["B,C"]["rfam_rows"],
                           "cache_hit": False}
    dna = next(c for c in query["chains"] if c["molecule_type"] == "dna")
    assert "main_msa_file_paths" not in dna
    # the same complex without the RNA hits: OpenFold3 has no MSA for the RNA chains
    bare = tmp_path / "bare" / "chain_A"
    bare.mkdir(parents=True)
    (bare / "uniref90_hits.sto").symlink_to(base / "first" / "chain_A" / "uniref90_hits.sto")
    without, _ = query_for(targets["s6-trna"], bare.parent, tmp_path / "staging-bare")
    seen = of3_msas(of3, {"with": query, "without": without}, tmp_path / "w")
    rows = metrics["first"]["chains"]["B,C"]["rfam_rows"]
    for cid in ("B", "C"):
        assert seen["with"][cid] == {"rows": rows, "query": targets["s6-trna"].complex[
            "chains"][1]["sequence"]}
        assert cid not in seen["without"]
    assert seen["with"]["A"]["rows"] == seen["without"]["A"]["rows"] > 1
    assert "D" not in seen["with"]


def test_no_rfam_database_is_a_stated_fallback_and_a_missing_one_an_error(
        small_db, rfam_db, rna, tmp_path):
    [target] = read_targets(str(job(tmp_path, "s6-trna", complex_chains(rna[TRNA_NAME]))),
                            complexes=True)
    m = stage(small_db, None).run_unit(target, None, tmp_path / "none")
    assert m["rna_msas"] == {"searched": False, "reason": "no rfam database configured "
                                                          "(--rfam): RNA chains fold single-sequence"}
    assert "B,C" not in m["chains"] and not (tmp_path / "none" / "chain_B").exists()
    missing = tmp_path / "nowhere" / "rfam.fasta"
    with pytest.raises(ConfigError, match=f"rfam database {missing} not found"):
        stage(small_db, missing)
    # a family that reads no RNA MSAs: no rfam role in its run, no search, no record
    dbs = DatabaseConfig(uniref90=str(small_db), rfam=str(rfam_db))
    assert databases_for(get_backend("model_1_ptm"), dbs).rfam is None
    assert databases_for(get_backend("of3-tiny"), dbs).rfam == str(rfam_db)


def test_nhmmer_follows_alphafold3s_settings(rfam_db):
    tool = Nhmmer(str(rfam_db), cpus=2)
    cmd = tool.command(Path("q.fa"), Path("o.sto"), length=74)
    assert cmd[:1] == ["nhmmer"] and cmd[-2:] == ["q.fa", str(rfam_db)]
    for flag, value in (("-E", "0.001"), ("--incE", "0.001"), ("--F3", "1e-05"),
                        ("--cpu", "2"), ("-A", "o.sto")):
        assert cmd[cmd.index(flag) + 1] == value
    assert "--rna" in cmd and "--watson" in cmd
    short = tool.command(Path("q.fa"), Path("o.sto"), length=30)   # RNAcentral's short queries
    assert short[short.index("--F3") + 1] == "0.02"
    assert tool.max_sequences == 10_000


def test_rfam_is_in_the_catalogue_and_prepares_from_a_zstd_mirror(rfam_db, tmp_path):
    """AlphaFold3's Rfam FASTA (its fetch_databases.sh: <v3.0>/<name>.zst), unpacked with zstd
    from a local mirror laid out like the source."""
    from eksfold.data.databases import DATABASES, MODES, database_config
    from eksfold.data.prepare import prepare_databases

    db = DATABASES["rfam"]
    [src] = db.sources
    assert src.url == ("https://storage.googleapis.com/alphafold-databases/v3.0/"
                       "rfam_14_9_clust_seq_id_90_cov_80_rep_seq.fasta.zst")
    assert db.role == "rfam" and db.tool == "nhmmer" and db.size_gb > 0
    assert not any("rfam" in names for names in MODES.values())   # asked for by name
    mirror = tmp_path / "mirror" / "rfam"
    mirror.mkdir(parents=True)
    subprocess.run(["zstd", "-q", "-o", str(mirror / src.filename), str(rfam_db)], check=True)
    dest = tmp_path / "db"
    [done] = prepare_databases("reduced", dest, mirror=str(tmp_path / "mirror"), only=["rfam"],
                               progress=False)
    assert done.path == dest / db.path and done.path.read_bytes() == rfam_db.read_bytes()
    assert sorted(p.name for p in done.path.parent.iterdir()) == [".done", done.path.name]
    assert database_config("reduced", dest).rfam is None    # not part of a mode's set


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_the_folded_complex_has_the_rna_rows_in_openfold3s_features(of3, small_db, rfam_db,
                                                                    rna, tmp_path,
                                                                    of3_cache):
    """`eksfold run --rfam` (default uniref90: $EKSFOLD_DATABASE); OpenFold3's features of the
    fold hold, per RNA chain, the rows its MSA processing makes from the align stage's hits."""
    env = dict(os.environ, EKSFOLD_CACHE=str(of3_cache(tmp_path / "cache")),
               EKSFOLD_DATABASE=str(small_db))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LIB), env.get("PYTHONPATH")) if p)
    root = tmp_path / "run"
    # protein + a Vault RNA (60 + 99 tokens): their MSAs differ in depth, so the per-chain rows
    # of OpenFold3's features tell them apart
    chains = [complex_chains("")[0],
              {"molecule_type": "rna", "chain_ids": ["B"], "sequence": rna[VAULT_NAME]}]
    proc = subprocess.run([sys.executable, "-m", "eksfold.cli", "run",
                           str(job(tmp_path, "s6-vault", chains)), "--root", str(root),
                           "--preset", "of3-tiny", "--weights", "random:3", "--device", "cpu",
                           "--rfam", str(rfam_db), "--stages", "align,infer"],
                          capture_output=True, text=True, env=env, timeout=2800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from eksfold.run import Run

    run = Run.open(str(root))
    assert run.config.databases.rfam == str(rfam_db)
    align = run.record("align", "s6-vault").metrics
    rows = align["chains"]["B"]["rfam_rows"]
    assert align["rna_msas"]["searched"] and rows > 1
    infer = run.record("infer", "s6-vault").metrics
    assert infer["untrained"] and infer["msas"]["B"]["files"] == [RFAM_HITS]
    assert infer["msas"]["B"]["rows"] == rows and infer["msas"]["B"]["cache_hit"] is False
    target = run.target("s6-vault")
    query, _ = query_for(target, run.store.local_path("targets/s6-vault/align"), tmp_path / "st")
    expected = of3_msas(of3, {"s6-vault": query}, tmp_path / "w")["s6-vault"]
    assert expected["B"]["rows"] == rows and expected["A"]["rows"] != rows
    # the rows OpenFold3 featurised per chain (rows with residues at its tokens): its query row
    # on top of each chain's main MSA (which starts with the query again); the shallower chain
    # is padded to the deepest with all-gap rows
    per_chain = infer["msa_rows_per_chain"]
    assert per_chain == {"A": 1 + expected["A"]["rows"], "B": 1 + rows}
    assert infer["msa_rows"] == max(per_chain.values())


def test_the_default_databases_include_the_standin(small_db, rfam_db, monkeypatch):
    """`make setup` records the stand-in (site.json rfam_db, or $EKSFOLD_RFAM_DB): runs with
    the default databases search RNA chains; a path that is not there is no default."""
    from eksfold.config import default_databases

    monkeypatch.setenv("EKSFOLD_DATABASE", str(small_db))
    monkeypatch.setenv("EKSFOLD_RFAM_DB", str(rfam_db))
    assert default_databases().rfam == str(rfam_db)
    monkeypatch.setenv("EKSFOLD_RFAM_DB", str(rfam_db) + ".missing")
    assert default_databases().rfam is None
