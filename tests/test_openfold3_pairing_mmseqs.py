"""Species-paired MSAs for OpenFold3 complexes in MMseqs2 mode (issue 24): each distinct chain of
a heteromer searched with the real ``mmseqs`` against the MMseqs2 database of the uniprot FASTA
(data/db/mmseqs/uniprot20k, which ``make test-setup`` builds from data/db/uniprot20k.fasta),
written as ``uniprot_hits.a3m`` with UniProt's row names, and paired by OpenFold3's own MSA
processing (``.venv-of3``). The complexes and OpenFold3's pairing probe are the jackhmmer
tests' (tests/test_openfold3_pairing.py). The last test folds the heteromer through
``eksfold run --msa mmseqs2 --preset of3-tiny`` (reduced configuration, UNTRAINED random
weights) and reads the paired rows of OpenFold3's own features from the unit record.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from eksfold.alignment.mmseqs import db_exists
from eksfold.alignment.pairing import UNIPROT_HITS, UNIPROT_HITS_A3M, plan
from eksfold.alignment.uniprot_mmseqs import UNIPROT_NAME, expected_database
from eksfold.config import AlignConfig, DatabaseConfig, InferConfig, RunConfig
from eksfold.errors import ConfigError
from eksfold.models.openfold3.environment import LIB
from eksfold.models.openfold3.folder import MSA_NAMES, query_for
from eksfold.stages.align import AlignStage
from eksfold.target_files import read_targets
from test_openfold3_pairing import (COMPLEXES, HETERODIMER, S6, S18,
                                    assert_homomers_and_repeated_chains_searched_once,
                                    assert_openfold3_pairs_by_species, of3_pairing)

PROJECT = Path(__file__).resolve().parents[1]
MMSEQS_DB = PROJECT / "data" / "db" / "mmseqs" / "uniprot20k"   # the plain layout
FAST = {"mmseqs_iterations": 1}   # the per-chain MSAs; the UniProt search is one pass anyway


@pytest.fixture(scope="module")
def mmseqs_db(small_db):
    if not db_exists(MMSEQS_DB):
        pytest.fail(f"{MMSEQS_DB} missing: run `make test-setup` (tools/build_mmseqs_db.py)")
    assert expected_database(small_db) == MMSEQS_DB   # where pairing looks for the FASTA's DB
    return MMSEQS_DB


def stage(db, cache=None, uniprot="same", msa_mode="mmseqs2", **align):
    databases = DatabaseConfig(uniref90=str(db), uniprot=str(db) if uniprot == "same" else uniprot)
    config = RunConfig(databases=databases, infer=InferConfig(preset="of3-tiny"),
                       align=AlignConfig(cache=str(cache) if cache else None, msa_mode=msa_mode,
                                         mmseqs_db=str(MMSEQS_DB), **FAST, **align))
    st = AlignStage(SimpleNamespace(config=config))
    st.open()
    return st


def names(path: Path) -> list[str]:
    return [line[1:] for line in path.read_text().splitlines() if line.startswith(">")]


@pytest.fixture(scope="module")
def aligned(small_db, mmseqs_db, tmp_path_factory):
    """The heteromer, then (same MSA cache) a second heteromer sharing S6, S6's homomer and
    S6:S18:S18 (a repeated chain), all in MMseqs2 mode."""
    base = tmp_path_factory.mktemp("pairing-mmseqs")
    (base / "more.fasta").write_text(COMPLEXES)
    targets = (read_targets(str(HETERODIMER), complexes=True)
               + read_targets(str(base / "more.fasta"), complexes=True))
    st = stage(small_db, base / "cache")
    metrics = {t.id: st.run_unit(t, None, base / t.id) for t in targets}
    return base, {t.id: t for t in targets}, metrics


def test_each_chain_of_a_heteromer_gets_uniprot_named_mmseqs_hits(aligned, mmseqs_db):
    base, _, metrics = aligned
    m = metrics["s6-s18"]
    assert m["mode"] == "mmseqs2"
    assert m["pairing"] == {"paired": True, "source": "uniprot", "database": str(mmseqs_db),
                            "chains": 2}
    assert m["uniprot_hits"]["A"] > 10 and m["uniprot_hits"]["B"] > 5
    assert not m["chains"]["A"]["uniprot_cache_hit"]
    species = {}
    for chain in ("A", "B"):
        folder = base / "s6-s18" / f"chain_{chain}"
        # the unpaired MSA is MMseqs2's; the UniProt hits beside it, never a Stockholm file
        assert sorted(p.name for p in folder.iterdir()) == [UNIPROT_HITS_A3M, "uniref_mmseqs.a3m"]
        rows = names(folder / UNIPROT_HITS_A3M)
        assert len(rows) - 1 == m["uniprot_hits"][chain]
        # every hit named db|ACC|NAME_SPECIES/start-end, as OpenFold3 splits it
        assert all(re.fullmatch(r"[^/]+/\d+-\d+", r) and UNIPROT_NAME.match(r.split("/")[0])
                   for r in rows[1:]), rows[:5]
        species[chain] = {r.split("|")[2].split("_")[1].split("/")[0] for r in rows[1:]}
    assert "GEOMG" in species["A"] & species["B"]     # the query's own species, and others
    assert len(species["A"] & species["B"]) >= 3
    assert MSA_NAMES[UNIPROT_HITS_A3M] == UNIPROT_HITS_A3M


def test_openfold3_pairs_the_mmseqs_hits_by_species(aligned, of3, tmp_path):
    assert_openfold3_pairs_by_species(aligned, of3, tmp_path, "uniref_mmseqs.a3m")


def test_homomers_get_no_uniprot_search_and_repeated_chains_come_from_the_cache(aligned):
    assert_homomers_and_repeated_chains_searched_once(aligned, UNIPROT_HITS_A3M)
    base = aligned[0]
    assert (base / "s6-s18b" / "chain_A" / UNIPROT_HITS_A3M).read_text() == (
        base / "s6-s18" / "chain_A" / UNIPROT_HITS_A3M).read_text()


def test_the_cache_keeps_the_modes_apart(aligned, small_db, tmp_path):
    """The same sequences, cache and FASTA in jackhmmer mode: neither the MSAs nor the UniProt
    hits of MMseqs2 mode are reused (the cache key has the mode)."""
    base, targets, _ = aligned
    m = stage(small_db, base / "cache", msa_mode="jackhmmer").run_unit(
        targets["s6-s18"], None, tmp_path / "jh")
    assert m["mode"] == "jackhmmer" and m["pairing"]["database"] == str(small_db)
    assert not any(c["cache_hit"] or c["uniprot_cache_hit"] for c in m["chains"].values())
    assert sorted(p.name for p in (tmp_path / "jh" / "chain_A").iterdir()) == [
        UNIPROT_HITS, "uniref90_hits.sto"]


def test_missing_mmseqs_database_is_a_clear_error_and_createdb_builds_it(small_db, tmp_path):
    fasta = tmp_path / "dbs" / "uniprot.fasta"
    fasta.parent.mkdir()
    # a few UniProt records of the stand-in and two that are not UniProt's
    records = small_db.read_text().split("\n>")[1:40]
    fasta.write_text(">" + "\n>".join(records) + "\n>UniRef90_X0 no species\nMKVLAAGIVG\n"
                     f">my_own-chain\n{S6}\n")
    with pytest.raises(ConfigError, match=re.escape(f"no {tmp_path}/dbs/mmseqs/uniprot.dbtype")):
        stage(small_db, uniprot=str(fasta))
    # the command the error names
    proc = subprocess.run([sys.executable, "-m", "eksfold.alignment.mmseqs_db", "createdb",
                           str(fasta), str(expected_database(fasta))],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    st = stage(small_db, uniprot=str(fasta))
    assert st.pairing.active and st.pairing.database == str(tmp_path / "dbs/mmseqs/uniprot")
    # the prefix itself is a uniprot database too in MMseqs2 mode; jackhmmer mode refuses it
    assert stage(small_db, uniprot=st.pairing.database).pairing.database == st.pairing.database
    with pytest.raises(ConfigError, match="is an MMseqs2 database"):
        stage(small_db, uniprot=st.pairing.database, msa_mode="jackhmmer")
    # S6 finds itself under a name that is not UniProt's: that row is dropped, not paired
    [target] = read_targets(str(HETERODIMER), complexes=True)
    m = st.run_unit(target, None, tmp_path / "out")
    rows = names(tmp_path / "out" / "chain_A" / UNIPROT_HITS_A3M)
    assert m["chains"]["A"]["uniprot_dropped_rows"] >= 1
    assert all(UNIPROT_NAME.match(r.split("/")[0]) for r in rows[1:])
    assert not any("my_own" in r for r in rows)


def test_no_uniprot_database_is_a_stated_unpaired_fallback(small_db, tmp_path):
    [target] = read_targets(str(HETERODIMER), complexes=True)
    m = stage(small_db, uniprot=None).run_unit(target, None, tmp_path / "none")
    assert m["pairing"] == {"paired": False,
                            "reason": "no uniprot database configured (--uniprot): unpaired MSAs"}
    assert not (tmp_path / "none" / "chain_A" / UNIPROT_HITS_A3M).exists()
    config = RunConfig(databases=DatabaseConfig(uniprot=str(small_db)),
                       infer=InferConfig(preset="of3-tiny"), align=AlignConfig(msa_mode="mmseqs2"))
    assert plan(config).active and plan(config).database == str(MMSEQS_DB)


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_the_folded_heteromer_has_paired_rows_in_mmseqs2_mode(of3, small_db, mmseqs_db,
                                                               tmp_path, of3_cache):
    """`eksfold run --msa mmseqs2` with the default databases ($EKSFOLD_DATABASE: the uniprot
    role is the stand-in FASTA, its MMseqs2 database beside it); OpenFold3's features of the
    fold hold the paired rows its MSA processing makes from the align stage's files. The
    chains are the jackhmmer test's fragments (125 tokens)."""
    env = dict(os.environ, EKSFOLD_CACHE=str(of3_cache(tmp_path / "cache")),
               EKSFOLD_DATABASE=str(small_db))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LIB), env.get("PYTHONPATH")) if p)
    root, fasta = tmp_path / "run", tmp_path / "fragments.fasta"
    fasta.write_text(f">s6-s18\n{S6[:60]}:{S18[30:95]}\n")
    proc = subprocess.run([sys.executable, "-m", "eksfold.cli", "run", str(fasta),
                           "--root", str(root), "--preset", "of3-tiny", "--weights", "random:3",
                           "--device", "cpu", "--stages", "align,infer", "--msa", "mmseqs2",
                           "--mmseqs-db", str(mmseqs_db), "--mmseqs-iterations", "1"],
                          capture_output=True, text=True, env=env, timeout=2800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from eksfold.run import Run

    run = Run.open(str(root))
    align = run.record("align", "s6-s18").metrics
    assert align["mode"] == "mmseqs2" and align["pairing"]["paired"]
    assert align["pairing"]["database"] == str(mmseqs_db)
    infer = run.record("infer", "s6-s18").metrics
    assert infer["msas"]["A"]["files"] == [UNIPROT_HITS_A3M, "mmseqs_colabfold.a3m"]
    query, _ = query_for(run.target("s6-s18"), run.store.local_path("targets/s6-s18/align"),
                         tmp_path / "st")
    expected = of3_pairing(of3, {"s6-s18": query}, tmp_path / "w")["s6-s18"]["paired_rows"]
    assert infer["paired_msa_rows"] == expected > 0
    assert infer["msa_rows"] > infer["paired_msa_rows"]
