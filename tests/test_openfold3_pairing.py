"""Species-paired MSAs for OpenFold3 complexes (issue 24): the align stage's UniProt search and
OpenFold3's own pairing of its rows.

Real jackhmmer on the shipped 20,000-sequence UniProt database (its headers are UniProt's:
``tr|ACC|NAME_SPECIES``) and the real OpenFold3 code in ``.venv-of3``. The heteromer is
data/complexes/heterodimer.fasta: ribosomal proteins S6 and S18 of Geobacter metallireducens,
whose homologues share species in the database. OpenFold3's ``MsaSampleProcessorInference``
(the inference MSA settings) pairs the rows; the paired rows are checked species by species
with OpenFold3's own Stockholm and UniProt-header parsers. The last test folds the heteromer
through ``eksfold run --preset of3-tiny`` (reduced configuration, UNTRAINED random weights)
and reads the paired rows of OpenFold3's own features from the unit record.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from eksfold.alignment.pairing import UNIPROT_HITS, databases_for
from eksfold.config import AlignConfig, DatabaseConfig, InferConfig, RunConfig
from eksfold.errors import ConfigError
from eksfold.models import get_backend
from eksfold.models.openfold3.environment import LIB, of3_env
from eksfold.models.openfold3.folder import MSA_NAMES, query_for
from eksfold.stages.align import AlignStage
from eksfold.target_files import read_targets

PROJECT = Path(__file__).resolve().parents[1]
HETERODIMER = PROJECT / "data" / "complexes" / "heterodimer.fasta"
S6, S18 = HETERODIMER.read_text().splitlines()[1].split(":")
# S18 of Chlorobium phaeovibrioides (UniProt A4SCJ7, in the database): a second heteromer that
# shares S6 with the first, and a homomer and a repeated chain of the same S6
OTHER_S18 = ("MKPMRQKPGRGQGNKSISNALASKKKVSKNQAVFFDYRDERKLKRFINDQGKMIPRRITGLSAKEQNLLTHSVKWARFL"
             "AVIPYVSDEYK")
COMPLEXES = f">s6-s18b\n{S6}:{OTHER_S18}\n>s6-dimer\n{S6}:{S6}\n>s6-s18-s18\n{S6}:{S18}:{S18}\n"

# OpenFold3's own MSA processing of each query, in .venv-of3: the paired row count
# (row_counts.n_rows_paired_subsampled, what its features give as num_paired_seqs - 1) and,
# per chain, the species each paired row can come from (its parsers on uniprot_hits.sto, or
# on uniprot_hits.a3m in MMseqs2 mode: tests/test_openfold3_pairing_mmseqs.py).
OF3_PAIRING = r"""
import json, sys
from pathlib import Path
from openfold3.core.config.msa_pipeline_configs import MsaSampleProcessorInputInference
from openfold3.core.data.io.sequence.msa import MSA_PARSER_REGISTRY
from openfold3.core.data.pipelines.sample_processing.msa import MsaSampleProcessorInference
from openfold3.core.data.primitives.sequence.msa import process_msa_pairing_metadata
from openfold3.projects.of3_all_atom.config.dataset_configs import InferenceDatasetConfigKwargs
from openfold3.projects.of3_all_atom.config.inference_query_format import Query

processor = MsaSampleProcessorInference(config=InferenceDatasetConfigKwargs().msa)
out = {}
for name, query in json.load(sys.stdin).items():
    q = Query.model_validate({"query_name": name, **query})
    msas = processor(input=MsaSampleProcessorInputInference.create_from_inference_query_entry(q))
    n = int(msas.row_counts.n_rows_paired_subsampled)
    species = {}
    for chain in q.chains:
        hits = [Path(p) for p in chain.main_msa_file_paths or [] if Path(p).stem == "uniprot_hits"]
        if not hits or n == 0:
            continue
        parsed = MSA_PARSER_REGISTRY[hits[0].suffix](hits[0].read_text())
        by_row = {}
        for row, sp in zip(parsed.msa[1:], process_msa_pairing_metadata(
                list(parsed.metadata))["species_id"]):
            by_row.setdefault("".join(row), set()).add(sp)
        for cid in chain.chain_ids:
            species[cid] = [sorted(by_row.get("".join(r), ()))
                            for r in msas.chain_id_to_paired_msa[cid].msa[:n]]
    out[name] = {"paired_rows": n, "species": species}
print(json.dumps(out))
"""


def stage(db, cache=None, preset="of3-tiny", uniprot="same", msa_mode="jackhmmer"):
    databases = DatabaseConfig(uniref90=str(db), uniprot=str(db) if uniprot == "same" else uniprot)
    config = RunConfig(databases=databases, infer=InferConfig(preset=preset),
                       align=AlignConfig(cache=str(cache) if cache else None, msa_mode=msa_mode))
    st = AlignStage(SimpleNamespace(config=config))
    st.open()
    return st


def of3_pairing(of3, queries: dict, work: Path) -> dict:
    proc = subprocess.run([of3, "-c", OF3_PAIRING], input=json.dumps(queries),
                          capture_output=True, text=True, env=of3_env(work), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def aligned(small_db, tmp_path_factory):
    """The heteromer, then (same MSA cache) a second heteromer sharing S6, S6's homomer and
    S6:S18:S18 (a repeated chain)."""
    base = tmp_path_factory.mktemp("pairing")
    (base / "more.fasta").write_text(COMPLEXES)
    targets = (read_targets(str(HETERODIMER), complexes=True)
               + read_targets(str(base / "more.fasta"), complexes=True))
    st = stage(small_db, base / "cache")
    metrics = {t.id: st.run_unit(t, None, base / t.id) for t in targets}
    return base, {t.id: t for t in targets}, metrics


def test_each_chain_of_a_heteromer_gets_its_uniprot_hits_with_shared_species(aligned, small_db):
    base, _, metrics = aligned
    m = metrics["s6-s18"]
    assert m["pairing"] == {"paired": True, "source": "uniprot", "database": str(small_db),
                            "chains": 2}
    assert m["uniprot_hits"]["A"] > 10 and m["uniprot_hits"]["B"] > 5
    assert not m["chains"]["A"]["uniprot_cache_hit"]
    species = {}
    for chain in ("A", "B"):
        path = base / "s6-s18" / f"chain_{chain}" / UNIPROT_HITS
        names = [line.split()[0] for line in path.read_text().splitlines()
                 if line.strip() and not line.startswith(("#", "//"))]
        # UniProt names as OpenFold3 reads species from them: tr|ACC|ACC_SPECIES/start-end
        species[chain] = {n.split("|")[2].split("_")[1].split("/")[0] for n in names[1:]}
    assert "GEOMG" in species["A"] & species["B"]     # the query's own species, and others
    assert len(species["A"] & species["B"]) >= 3
    # the unpaired MSAs are what they were: uniprot hits are not among the cached MSA files
    assert sorted(p.name for p in (base / "s6-s18" / "chain_A").iterdir()) == [
        UNIPROT_HITS, "uniref90_hits.sto"]
    assert MSA_NAMES[UNIPROT_HITS] == UNIPROT_HITS


def assert_openfold3_pairs_by_species(aligned, of3, tmp_path, msa_name: str) -> None:
    """OpenFold3's own MSA processing pairs the heteromer s6-s18 by species from its chains'
    UniProt hits (jackhmmer or MMseqs2: ``msa_name`` is the chains' own MSA file, linked into
    a copy without the hits), not a homomer, and a repeated chain shares its entity's rows."""
    base, targets, _ = aligned
    queries = {tid: query_for(targets[tid], base / tid, tmp_path / "staging" / tid)[0]
               for tid in ("s6-s18", "s6-dimer", "s6-s18-s18")}
    # the same heteromer without the UniProt hits: nothing to pair
    bare = tmp_path / "bare"
    for chain in ("A", "B"):
        (bare / f"chain_{chain}").mkdir(parents=True)
        (bare / f"chain_{chain}" / msa_name).symlink_to(
            base / "s6-s18" / f"chain_{chain}" / msa_name)
    queries["unpaired"] = query_for(targets["s6-s18"], bare, tmp_path / "staging" / "bare")[0]
    result = of3_pairing(of3, queries, tmp_path / "w")
    paired = result["s6-s18"]
    assert paired["paired_rows"] >= 3, paired
    # every paired row: chain A's and chain B's UniProt rows come from one species, as
    # OpenFold3's own parsers read them
    rows = list(zip(paired["species"]["A"], paired["species"]["B"]))
    assert len(rows) == paired["paired_rows"]
    assert all(set(a) & set(b) for a, b in rows), rows
    assert ["GEOMG"] in paired["species"]["A"]
    assert result["unpaired"]["paired_rows"] == 0
    assert result["s6-dimer"]["paired_rows"] == 0            # a homomer: OpenFold3 never pairs
    # a repeated chain shares its entity's paired rows; the heteromer still pairs
    assert result["s6-s18-s18"]["paired_rows"] == paired["paired_rows"]
    assert result["s6-s18-s18"]["species"]["B"] == result["s6-s18-s18"]["species"]["C"]


def test_openfold3_pairs_the_heteromer_by_species(aligned, of3, tmp_path):
    assert_openfold3_pairs_by_species(aligned, of3, tmp_path, "uniref90_hits.sto")


def assert_homomers_and_repeated_chains_searched_once(aligned, hits_name: str) -> None:
    """The aligned complexes (COMPLEXES) of either MSA mode: a homomer gets no UniProt search,
    a chain seen before gets its UniProt hits (``hits_name``) from the cache."""
    base, _, metrics = aligned
    homomer = metrics["s6-dimer"]
    assert homomer["aligned_chains"] == 1 and "uniprot_hits" not in homomer
    assert not homomer["pairing"]["paired"] and "homomer" in homomer["pairing"]["reason"]
    assert not (base / "s6-dimer" / "chain_A" / hits_name).exists()
    # S6 again in another heteromer: its UniProt hits come from the cache, the new S18 is searched
    other = metrics["s6-s18b"]["chains"]
    assert other["A"]["uniprot_cache_hit"] and not other["B"]["uniprot_cache_hit"]
    assert other["A"]["uniprot_hits"] == metrics["s6-s18"]["chains"]["A"]["uniprot_hits"]
    # S6:S18:S18: two entities, each aligned and searched once (the repeat is an entity's copy)
    trimer = metrics["s6-s18-s18"]
    assert set(trimer["chains"]) == {"A", "B,C"} and trimer["pairing"]["paired"]
    assert all(c["cache_hit"] and c["uniprot_cache_hit"] for c in trimer["chains"].values())
    assert trimer["cpu_s"] == 0


def test_homomers_and_repeated_chains_are_searched_once(aligned):
    assert_homomers_and_repeated_chains_searched_once(aligned, UNIPROT_HITS)


def test_the_uniprot_cache_key_includes_the_database(aligned, small_db, tmp_path):
    base, targets, _ = aligned
    copy = tmp_path / "uniprot-copy.fasta"
    copy.write_bytes(Path(small_db).read_bytes())
    st = stage(small_db, base / "cache", uniprot=str(copy))
    m = st.run_unit(targets["s6-s18"], None, tmp_path / "out")
    # the MSAs (uniref90) are cache hits; the UniProt hits of another database are searched
    assert all(c["cache_hit"] for c in m["chains"].values())
    assert not any(c["uniprot_cache_hit"] for c in m["chains"].values())
    assert m["pairing"]["database"] == str(copy)


def test_no_uniprot_database_is_a_stated_unpaired_fallback_and_a_missing_one_an_error(
        small_db, tmp_path):
    [target] = read_targets(str(HETERODIMER), complexes=True)
    m = stage(small_db, uniprot=None).run_unit(target, None, tmp_path / "none")
    assert m["pairing"] == {"paired": False,
                            "reason": "no uniprot database configured (--uniprot): unpaired MSAs"}
    assert not (tmp_path / "none" / "chain_A" / UNIPROT_HITS).exists()
    missing = tmp_path / "nowhere" / "uniprot.fasta"
    with pytest.raises(ConfigError, match=f"uniprot database {missing} not found"):
        stage(small_db, uniprot=str(missing))
    # a family that does not pair: no uniprot role in its run (nor in its manifest)
    dbs = DatabaseConfig(uniref90=str(small_db), uniprot=str(small_db))
    assert databases_for(get_backend("model_1_ptm"), dbs).uniprot is None
    assert databases_for(get_backend("of3-tiny"), dbs).uniprot == str(small_db)
    m = stage(small_db, preset="model_1_ptm").run_unit(target, None, tmp_path / "of2")
    assert "pairing" not in m and not (tmp_path / "of2" / "chain_A" / UNIPROT_HITS).exists()


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_the_folded_heteromer_has_paired_rows_in_openfold3s_features(of3, small_db, tmp_path,
                                                                     of3_cache):
    """`eksfold run` with the default databases ($EKSFOLD_DATABASE: uniref90 and uniprot both
    the stand-in, stated in the manifest); OpenFold3's features of the fold hold the paired
    rows its MSA processing makes from the align stage's files. The chains are S6's first 60
    and S18's residues 31-95 (125 tokens, not 224: the fold is the test's cost), whose
    homologues still share species in the database."""
    env = dict(os.environ, EKSFOLD_CACHE=str(of3_cache(tmp_path / "cache")),
               EKSFOLD_DATABASE=str(small_db))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LIB), env.get("PYTHONPATH")) if p)
    root, fasta = tmp_path / "run", tmp_path / "fragments.fasta"
    fasta.write_text(f">s6-s18\n{S6[:60]}:{S18[30:95]}\n")
    proc = subprocess.run([sys.executable, "-m", "eksfold.cli", "run", str(fasta),
                           "--root", str(root), "--preset", "of3-tiny", "--weights", "random:3",
                           "--device", "cpu", "--stages", "align,infer"],
                          capture_output=True, text=True, env=env, timeout=2800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from eksfold.run import Run

    run = Run.open(str(root))
    assert run.config.databases.uniprot == str(small_db)
    assert run.manifest["databases"]["uniprot"]["exists"]
    assert run.record("align", "s6-s18").metrics["pairing"]["paired"]
    infer = run.record("infer", "s6-s18").metrics
    assert infer["msas"]["A"]["files"] == [UNIPROT_HITS, "uniref90_hits.sto"]
    target = run.target("s6-s18")
    query, _ = query_for(target, run.store.local_path("targets/s6-s18/align"), tmp_path / "st")
    expected = of3_pairing(of3, {"s6-s18": query}, tmp_path / "w")["s6-s18"]["paired_rows"]
    assert infer["paired_msa_rows"] == expected > 0
    assert infer["msa_rows"] > infer["paired_msa_rows"]
