"""MMseqs2 alignment mode (issue 12): the real `mmseqs` binary on both database layouts built by
`make test-setup` (tools/build_mmseqs_db.py), A3Ms read by OpenFold's own parser and data
pipeline, per-target errors inside a batch, and the MSA cache on a local root and on S3."""
from __future__ import annotations

import shutil
import time
from types import SimpleNamespace
from pathlib import Path

import pytest
from conftest import PROJECT, require

from eksfold.alignment.cache import MSACache, database_identity
from eksfold.alignment.mmseqs import OUTPUTS, MMseqs2Search
from eksfold.errors import ConfigError
from eksfold.target_files import read_fasta
from eksfold.targets import Target
from s3_server import s3_bucket_uri

DB_DIR = PROJECT / "data" / "db" / "mmseqs"
# Lighter than ColabFold's defaults (-s 8, 3 iterations) so the file stays quick on 2 shared
# cores; every command and file path is the same.
FAST = {"sensitivity": 5.7, "iterations": 2, "cpus": 2}
UNIREF, ENV = OUTPUTS["uniref"], OUTPUTS["env"]


def db_prefix(name: str) -> Path:
    require(Path(f"{DB_DIR / name}.dbtype"), "MMseqs2 database (make test-setup)")
    return DB_DIR / name


@pytest.fixture(scope="module")
def queries() -> dict[str, str]:
    """Two UniProt members of the database (each must at least find itself), one short real
    CAMEO target, and a second target id with the same sequence as the first."""
    from Bio import SeqIO
    db = SeqIO.parse(require(PROJECT / "data" / "db" / "uniprot20k.fasta", "sequence database"), "fasta")
    members = [t for t in (Target(r.id, str(r.seq)) for r in db) if 120 <= t.length <= 200][:2]
    cameo = min(read_fasta(PROJECT / "data" / "cameo92" / "targets.fasta"), key=lambda t: t.length)
    return {"member-a": members[0].sequence, "member-b": members[1].sequence,
            "cameo": cameo.sequence, "member-a-again": members[0].sequence}


@pytest.fixture(scope="module")
def plain_run(queries, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    search = MMseqs2Search(str(db_prefix("uniprot20k")), layout="plain", **FAST)
    dirs = {t: out / t for t in queries}
    return search, dirs, search.search(queries, dirs)


@pytest.fixture(scope="module")
def colabfold_run(queries, tmp_path_factory):
    out = tmp_path_factory.mktemp("cf")
    db = str(db_prefix("uniprot20k_cf"))
    # The test database serves as both UniRef30 and the environmental database: the layout and
    # every command are ColabFold's; only the content is small.
    search = MMseqs2Search(db, layout="colabfold", env_database=db, **FAST)
    some = {t: queries[t] for t in ("member-a", "cameo")}
    dirs = {t: out / t for t in some}
    return search, dirs, search.search(some, dirs)


def parse_a3m(path: Path):
    from eksfold.models.openfold2.compat import prepare
    prepare()
    from openfold.data import parsers
    sequences, deletion_matrix = parsers.parse_a3m(path.read_text())   # OpenFold 0.0.1: a tuple
    return SimpleNamespace(sequences=sequences, deletion_matrix=deletion_matrix)


def test_plain_layout_one_invocation_for_the_whole_batch(plain_run, queries):
    search, dirs, results = plain_run
    assert set(results) == set(queries)
    assert all(r["status"] == "ok" for r in results.values()), results
    steps = [s["tool"] for s in results["cameo"]["steps"]]
    # Identical chains are searched once: 3 distinct sequences, one createdb, one search.
    assert steps.count("mmseqs search") == 1 and steps.count("mmseqs createdb") == 1
    assert results["cameo"]["batch_size"] == 4
    for tid in queries:
        assert sorted(p.name for p in dirs[tid].iterdir()) == [UNIREF]
    assert (dirs["member-a"] / UNIREF).read_text().split("\n", 1)[1] == \
           (dirs["member-a-again"] / UNIREF).read_text().split("\n", 1)[1]


def test_plain_a3m_is_read_by_openfolds_parser(plain_run, queries):
    _, dirs, results = plain_run
    for tid in ("member-a", "member-b", "cameo"):
        msa = parse_a3m(dirs[tid] / UNIREF)
        assert msa.sequences[0] == queries[tid]                 # query first, ungapped
        assert {len(row) for row in msa.sequences} == {len(queries[tid])}  # gapped to the query
        assert len(msa.deletion_matrix) == len(msa.sequences)
    # A database member finds itself and its homologues.
    assert results["member-a"]["msa_depth"] > 1
    assert any(row == queries["member-a"] for row in parse_a3m(dirs["member-a"] / UNIREF).sequences[1:])


def test_colabfold_layout_writes_uniref_and_env_msas(colabfold_run, queries):
    search, dirs, results = colabfold_run
    assert all(r["status"] == "ok" for r in results.values()), results
    steps = [s["tool"] for s in results["member-a"]["steps"]]
    for step in ("search_uniref", "expandaln_uniref", "align_uniref", "filterresult_uniref",
                 "result2msa_uniref", "search_env", "expandaln_env", "result2msa_env"):
        assert f"mmseqs {step}" in steps
    for tid in dirs:
        assert sorted(p.name for p in dirs[tid].iterdir()) == [ENV, UNIREF]
        for name in (UNIREF, ENV):
            msa = parse_a3m(dirs[tid] / name)
            assert msa.sequences[0] == queries[tid]
            assert {len(row) for row in msa.sequences} == {len(queries[tid])}
    # Expansion reached cluster members: the member query's own sequence is in its MSA.
    rows = parse_a3m(dirs["member-a"] / UNIREF).sequences
    assert len(rows) > 1 and queries["member-a"] in rows[1:]
    assert results["member-a"]["settings"]["sensitivity"] == 5.7
    assert MMseqs2Search(search.database, layout="colabfold").sensitivity == 8.0  # the default


def test_mmseqs_folder_folds_through_the_unchanged_inference_stage(plain_run, queries, tmp_path):
    from eksfold.alignment.msa import msa_depth
    from eksfold.config import InferConfig
    from eksfold.models.openfold2.folder import infer_target, make_features
    from eksfold.models.openfold2.presets import build_openfold_config, get_preset

    _, dirs, _ = plain_run
    target = Target("cameo", queries["cameo"])   # the shortest target keeps this quick
    raw, _ = make_features(target, dirs["cameo"], build_openfold_config(get_preset("tiny")))
    assert raw["msa"].shape == (msa_depth(dirs["cameo"]), target.length)
    metrics = infer_target(target, dirs["cameo"], InferConfig(preset="tiny"), tmp_path / "infer")
    assert (tmp_path / "infer" / "unrelaxed.pdb").is_file() and metrics["untrained"]


def test_empty_and_malformed_results_fail_only_their_target(plain_run, queries, tmp_path):
    search, dirs, _ = plain_run
    real = (dirs["member-a"] / UNIREF).read_text()     # a real mmseqs2 A3M, then damaged copies
    (tmp_path / "good.a3m").write_text(real)
    (tmp_path / "empty.a3m").write_text("")
    lines = real.splitlines()
    (tmp_path / "cut.a3m").write_text("\n".join([lines[0], lines[1][:-5]] + lines[2:]) + "\n")
    (tmp_path / "ragged.a3m").write_text("\n".join(lines[:3] + [lines[3][:-5]] + lines[4:]) + "\n")
    (tmp_path / "text.a3m").write_text("Segmentation fault\n")
    batch = {"batch_size": 6, "batch_wall_s": 1.0, "batch_cpu_s": 1.0, "steps": []}
    seq = queries["member-a"]
    got = {name: search.collect(f"t-{name}", seq, {UNIREF: tmp_path / f"{name}.a3m" if name != "missing"
                                                   else None}, tmp_path / "out" / name, batch)
           for name in ("good", "empty", "cut", "ragged", "text", "missing")}
    assert got["good"]["status"] == "ok" and (tmp_path / "out" / "good" / UNIREF).is_file()
    expected = {"empty": "empty", "cut": "first row", "ragged": "match columns",
                "text": "not A3M", "missing": "empty"}
    for name, words in expected.items():
        assert got[name]["status"] == "failed", name
        assert f"'t-{name}'" in got[name]["error"] and words in got[name]["error"], got[name]
        assert not (tmp_path / "out" / name).exists()


def test_bad_database_or_layout_is_a_clear_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        MMseqs2Search(str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="layout"):
        MMseqs2Search(str(db_prefix("uniprot20k")), layout="hhblits")
    with pytest.raises(ConfigError, match="uniprot20k_seq"):   # a plain DB is not that layout
        MMseqs2Search(str(db_prefix("uniprot20k")), layout="colabfold")


def _round_trip(root, plain_run, queries, tmp_path):
    _, dirs, _ = plain_run
    cache = MSACache(root)
    ident = database_identity(db_prefix("uniprot20k"))
    seq = queries["cameo"]
    assert not cache.get(seq, "mmseqs2", ident, tmp_path / "miss")
    cache.put(seq, "mmseqs2", ident, dirs["cameo"])
    started = time.perf_counter()
    assert cache.get(seq, "mmseqs2", ident, tmp_path / "hit")
    took = time.perf_counter() - started
    assert (tmp_path / "hit" / UNIREF).read_bytes() == (dirs["cameo"] / UNIREF).read_bytes()
    # Another mode or another database content is another entry.
    assert not cache.get(seq, "jackhmmer", ident, tmp_path / "other")
    assert not cache.get(seq, "mmseqs2", {**ident, "sha256": "x"}, tmp_path / "other")
    return cache, ident, took


def test_cache_round_trip_on_a_local_root(plain_run, queries, tmp_path):
    cache, ident, took = _round_trip(tmp_path / "cache", plain_run, queries, tmp_path)
    assert took < 1.0
    seq = queries["cameo"]
    # A partial entry (files without entry.json) is never used; a corrupted file is a miss.
    entry_path = cache.store.local_path(cache.prefix(seq, "mmseqs2", ident)) / "entry.json"
    saved = entry_path.read_bytes()
    entry_path.unlink()
    assert not cache.get(seq, "mmseqs2", ident, tmp_path / "partial")
    entry_path.write_bytes(saved)
    (entry_path.parent / UNIREF).write_text(">x\nAAA\n")
    shutil.rmtree(tmp_path / "hit")
    assert not cache.get(seq, "mmseqs2", ident, tmp_path / "hit")
    assert not (tmp_path / "hit" / UNIREF).exists()


@pytest.mark.s3
def test_cache_round_trip_on_s3(s3_env, plain_run, queries, tmp_path):
    root = s3_bucket_uri(s3_env, "msa-cache")
    cache, ident, _ = _round_trip(root, plain_run, queries, tmp_path)
    assert any(k.endswith("/entry.json") for k in cache.store.list())


def test_benchmark_padding_keeps_composition_and_neff_counts_clusters(tmp_path):
    from collections import Counter

    from Bio import SeqIO

    from benchmarks.align.compare import neff, write_padded

    real = tmp_path / "real.fasta"
    real.write_text(">tr|A1|X one\nMKVLAAGIVG\n>tr|B2|Y two\nWWPPCCDDEEFF\n")
    files = write_padded(str(real), tmp_path / "pad.fasta", [2, 5], seed=1, chunk=2)
    small, big = (list(SeqIO.parse(files[n], "fasta")) for n in (2, 5))
    assert [r.id for r in small] == ["tr|A1|X", "tr|B2|Y"] and len(big) == 5
    assert [r.id for r in big[2:]] == ["shuf2", "shuf3", "shuf4"]
    for copy, source in zip(big[2:], [big[0], big[1], big[0]]):   # cycled residue shuffles
        assert Counter(str(copy.seq)) == Counter(str(source.seq)) and copy.seq != source.seq
    assert neff(["ACDEFGHIKL"] * 4) == pytest.approx(1.0)              # one cluster
    # The fragment is 100 % identical over its own columns to the full row (weight 1/2), the
    # full row only 50 % over its columns to the fragment (weight 1): 1 + 1 + 1/2.
    assert neff(["ACDEFGHIKL", "WWWWWWWWWW", "ACDEF-----"]) == pytest.approx(2.5)


def test_batch_split_recovers_per_batch_and_per_query_costs():
    """The benchmark's batch split (logic, not timings): near-copies keep lengths and are
    distinct; a table made from known F(N) + Q g(N) gives F, g and the ratio back."""
    import pandas as pd

    from benchmarks.align.batch import add_to_summary, extend_queries, split_costs

    base = {"a": "MKTAYIAKQRQISFVKSHFSRQ", "b": "GSHMLEDPVDAFQ"}
    batch = extend_queries(base, 9)
    assert len(batch) == 9 and len(set(batch.values())) == 9
    assert list(batch)[:2] == ["a", "b"]
    assert sorted({len(s) for s in batch.values()}) == [13, 22]
    F = {20_000: 0.4, 200_000: 0.8, 2_000_000: 1.6}          # per batch, grows as N^0.3
    g = {n: 1e-6 * n for n in F}                              # per query, linear in N
    rows = [{"db_size": n, "batch": q, "batch_cpu_s": F[n] + q * g[n]}
            for n in F for q in (8, 32, 96)]
    split = split_costs(pd.DataFrame(rows)).set_index("db_size")
    for n in F:
        assert split.loc[n, "per_batch_s"] == pytest.approx(F[n], abs=1e-3)
        assert split.loc[n, "per_query_s"] == pytest.approx(g[n], rel=1e-3)
    summary = {"fits": {"jackhmmer": {"extrapolated_s": 1500.0, "last_two_extrapolated_s": 1500.0}}}
    add_to_summary(summary, pd.DataFrame(rows), 96)
    at = summary["batch_model"]["per_query_at_batch_s"]       # g(150 M) = 150 s, F/96 small
    assert 150 < at < 151
    assert summary["speedup_at_uniref90_batch"]["marginal_all_points"] == pytest.approx(10.0, abs=0.1)


def test_stage_split_reads_mmseqs2s_own_log(queries, tmp_path):
    """The real search at -v 3: every iteration's prefilter and align found with its hit
    counts; the parts are fitted apart (prefilter ~ N, alignments capped: flat)."""
    import pandas as pd

    from benchmarks.align.stages import add_to_summary, measure

    some = {t: queries[t] for t in ("member-a", "member-b")}
    rows = measure(str(db_prefix("uniprot20k")), 20_000, 5.7, some, tmp_path, cpus=1)
    modules = [(r["module"], r["iteration"]) for r in rows]
    assert modules[:3] == [("prefilter", 0), ("align", 0), ("result2profile", 0)]
    assert [m for m in modules if m[0] == "align"] == [("align", i) for i in range(3)]
    first = rows[0]
    assert first["passed_per_query"] >= 1 and rows[1]["alignments"] >= len(some)
    assert all(r["wall_s"] >= 0 and r["search_cpu_s"] > 0 for r in rows)
    # the model, from a table with known parts: prefilter 1e-6 s per sequence; alignments
    # saturating at the cap (3 iterations x 10,000) at 1e-4 s each
    aln = {1_000_000: 10_000, 2_000_000: 20_000, 4_000_000: 30_000}
    known = [{"db_size": n, "module": m, "iteration": 0, "queries": 1, "alignments": aln[n],
              "wall_s": {"prefilter": 1e-6 * n, "align": 1e-4 * aln[n],
                         "result2profile": 1e-6 * aln[n]}[m]}
             for n in aln for m in ("prefilter", "align", "result2profile")]
    # the cap counts iterations from the table: a third (empty) align row per size
    known += [{"db_size": n, "module": "align", "iteration": 2, "queries": 1, "alignments": 0,
               "wall_s": 0.0} for n in aln]
    cpu = {n: sum(r["wall_s"] for r in known if r["db_size"] == n) for n in aln}
    cpu[4_000_000] /= 1.5          # the largest search waited on reads: flagged
    known = [{**r, "search_cpu_s": cpu[r["db_size"]]} for r in known]
    summary = {"fits": {"jackhmmer": {"extrapolated_s": 1530.0, "last_two_extrapolated_s": 3060.0}}}
    add_to_summary(summary, pd.DataFrame(known))
    parts, model = summary["stages"], summary["speedup_at_uniref90_stages"]
    assert parts["prefilter"]["fit"]["exponent"] == pytest.approx(1.0, abs=1e-3)
    assert parts["align"]["alignments_cap_per_query"] == 30_000
    # prefilter 150 s + align 30,000 x 1e-4 s + result2profile 0.03 s x 150 M / 4 M, per query
    assert model["mmseqs2_s"]["total"] == pytest.approx(150 + 3 + 1.125, abs=0.01)
    assert model["conservative"] == pytest.approx(1530 / 154.125, abs=0.05)   # smaller jackhmmer
    assert model["last_two"] == pytest.approx(3060 / 154.125, abs=0.05)
    assert parts["waited_on_reads"] == [4_000_000] and "4000000" in model["warning"]
    assert parts["wall_over_cpu"][2_000_000] == pytest.approx(1.0)


def test_a_larger_database_size_is_merged_into_a_committed_comparison(tmp_path):
    """`python -m benchmarks.align` on two tiny sizes, then `--add-sizes` one larger: the real tools
    run only at the new size, its padded database extends the smaller ones, and the table,
    fits and batch split cover all three sizes."""
    import json

    import pandas as pd
    from Bio import SeqIO

    from benchmarks.align.sizes import compare_benchmark
    from benchmarks.align.grow import add_sizes

    real = tmp_path / "real.fasta"
    src = SeqIO.parse(require(PROJECT / "data" / "db" / "uniprot20k.fasta", "sequence database"), "fasta")
    SeqIO.write([r for _, r in zip(range(300), src)], real, "fasta")
    scratch, out = tmp_path / "scratch", tmp_path / "out"
    df, summary, batches = compare_benchmark(str(real), [300, 600], 2, str(scratch), [5.7],
                                             cpus=1, batch_sizes=[2, 4], log=lambda *_: None)
    out.mkdir()
    df.to_csv(out / "align.csv", index=False)
    batches.to_csv(out / "align-batch.csv", index=False)
    (out / "align.json").write_text(json.dumps({**summary, "command": "first"}))
    before = df[df.db_size == 600].copy()

    merged = add_sizes(str(out), str(scratch), str(real), [1200], cpus=1, command="second",
                       log=lambda *_: None)
    small, big = (list(SeqIO.parse(scratch / f"pad_{n}.fasta", "fasta")) for n in (600, 1200))
    assert [str(r.seq) for r in big[:600]] == [str(r.seq) for r in small]    # nested
    table = pd.read_csv(out / "align.csv")
    assert sorted(table.db_size.unique()) == [300, 600, 1200]
    pd.testing.assert_frame_equal(table[table.db_size == 600].reset_index(drop=True),
                                  before.reset_index(drop=True), check_dtype=False)
    new = table[table.db_size == 1200]
    assert set(new.tool) == {"jackhmmer", "mmseqs2"} and (new.cpu_s > 0).all()
    assert sorted(pd.read_csv(out / "align-batch.csv").query("db_size == 1200").batch) == [2, 4]
    for tool in ("jackhmmer", "mmseqs2 -s 5.7"):
        assert sorted(map(int, merged["per_query_s"][tool])) == [300, 600, 1200]
        assert "last_two_exponent" in merged["fits"][tool]
    assert merged["command"] == "first; then: second"
    assert (out / "align.png").stat().st_size > 0


def test_repeated_turns_give_one_ratio_per_repeat():
    """The repeats' model (logic, not timings): both linear scans as straight lines through
    the two sizes, alignments capped; a second, drifted repeat gives its own ratio."""
    import pandas as pd

    from benchmarks.align.repeats import linear_at, summarise

    assert linear_at(1, 1.0, 2, 2.0, 10) == pytest.approx(10.0)
    rows = []
    for rep, drift in ((0, 1.0), (1, 1.2)):                   # repeat 1: MMseqs2 20 % slower
        for n in (2_000_000, 4_000_000):
            rows += [{"repeat": rep, "db_size": n, "tool": "jackhmmer", "cpu_s": 4e-6 * n}] * 2
            aln = 10_000 if n == 2_000_000 else 15_000
            for module, wall in (("prefilter", 2e-7 * n * drift), ("align", 1e-4 * aln),
                                 ("result2profile", 0.0)):
                rows.append({"repeat": rep, "db_size": n, "tool": "mmseqs2", "module": module,
                             "iteration": 0, "queries": 1, "wall_s": wall,
                             "alignments": aln if module == "align" else None,
                             "search_cpu_s": 2e-7 * n * drift + 1e-4 * aln})
            rows.append({"repeat": rep, "db_size": n, "tool": "mmseqs2", "module": "align",
                         "iteration": 2, "queries": 1, "wall_s": 0.0, "alignments": 0,
                         "search_cpu_s": 2e-7 * n * drift + 1e-4 * aln})
    out = summarise(pd.DataFrame(rows), 150_000_000)
    first, second = out["per_repeat"]
    # jackhmmer 600 s; MMseqs2 prefilter 30 s (36 s drifted) + 30,000 alignments x 1e-4 s
    assert first["jackhmmer_at_s"] == pytest.approx(600.0)
    assert first["mmseqs2_at_s"]["align"] == pytest.approx(3.0)
    assert first["ratio"] == pytest.approx(600 / 33, abs=0.05)
    assert second["ratio"] == pytest.approx(600 / 39, abs=0.05)
    assert out["ratio_min"] == second["ratio"] and out["ratio_max"] == first["ratio"]
    assert first["waited_on_reads"] == []


def test_the_research_benchmark_runs_from_a_checkout(worker_env):
    """benchmarks/ is not installed: its command line answers from the project root."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "benchmarks.align", "--help"], cwd=PROJECT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--add-sizes" in res.stdout and "--repeats" in res.stdout
