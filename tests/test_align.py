
import pytest

from eksfold.alignment.hmmer import Jackhmmer
from eksfold.alignment.msa import msa_depth, read_msa_sequences, truncate_stockholm
from eksfold.stages.align import align_target
from eksfold.config import AlignConfig, DatabaseConfig
from eksfold.errors import ConfigError, ToolError
from eksfold.target_files import read_fasta


def test_jackhmmer_finds_the_globin_family(globins, tmp_path):
    query, db = globins
    out = tmp_path / "hits.sto"
    run = Jackhmmer(str(db), cpus=1).run(query, out)
    seqs = read_msa_sequences(out)
    # HMMER's tutorial: HBB_HUMAN against globins45 hits every globin.
    assert len(seqs) >= 40
    assert run.wall_s > 0 and run.peak_rss_mb > 1
    assert len({len(s) for s in seqs.values()}) == 1  # one alignment, equal row lengths


def test_max_hits_truncates_the_stockholm_file(globins, tmp_path):
    query, db = globins
    out = tmp_path / "hits.sto"
    Jackhmmer(str(db), cpus=1, max_hits=5).run(query, out)
    assert len(read_msa_sequences(out)) == 5
    assert out.read_text().rstrip().endswith("//")


def test_align_target_on_the_real_database_writes_openfold_layout(small_db, tmp_path):
    # A UniProt sequence of the database itself must find at least itself.
    lines = small_db.read_text().split(">", 3)[1]
    header, seq = lines.split("\n", 1)
    fasta = tmp_path / "q.fasta"
    fasta.write_text(f">q\n{seq.replace(chr(10), '')[:300]}\n")
    (target,) = read_fasta(fasta)
    metrics = align_target(target, DatabaseConfig(uniref90=str(small_db)), AlignConfig(cpus=2), tmp_path / "aln")
    files = sorted(p.name for p in (tmp_path / "aln").iterdir())
    assert files == ["uniref90_hits.sto"]
    assert metrics["msa_depth"] >= 2 and metrics["msa_depth"] == msa_depth(tmp_path / "aln")
    assert metrics["tools"][0]["tool"] == "jackhmmer" and metrics["cpu_s"] >= 0


def test_tool_failure_carries_exit_code_and_stderr(tmp_path, globins):
    bad_db = tmp_path / "not_fasta.fa"
    bad_db.write_text("this is not a sequence file\n")
    with pytest.raises(ToolError) as err:
        Jackhmmer(str(bad_db), cpus=1).run(globins[0], tmp_path / "o.sto")
    assert err.value.exit_code != 0 and err.value.stderr_tail


def test_missing_database_and_no_database_are_config_errors(tmp_path, cameo_fasta):
    with pytest.raises(ConfigError, match="not found"):
        Jackhmmer(str(tmp_path / "missing.fasta"))
    target = read_fasta(cameo_fasta)[0]
    with pytest.raises(ConfigError, match="no sequence database"):
        align_target(target, DatabaseConfig(), AlignConfig(), tmp_path)


def test_msa_depth_deduplicates_rows_across_files(tmp_path):
    (tmp_path / "a.a3m").write_text(">q\nMKV\n>h1\nMKaV\n>h2\nMRV\n")
    (tmp_path / "b.sto").write_text("# STOCKHOLM 1.0\nq MKV\nh9 MRV\n//\n")
    assert msa_depth(tmp_path) == 2  # MKV (h1 without its insertion) and MRV


def test_truncate_keeps_query_and_annotations(tmp_path):
    sto = tmp_path / "x.sto"
    sto.write_text("# STOCKHOLM 1.0\n#=GS a DE x\n#=GS b DE y\na MK\nb MR\nc MV\n#=GC RF xx\n//\n")
    truncate_stockholm(sto, 2)
    text = sto.read_text()
    assert "c MV" not in text and "a MK" in text and "#=GC RF" in text


def test_alignment_whose_query_is_not_the_target_is_refused(tmp_path):
    from eksfold.alignment.msa import check_alignments
    from eksfold.errors import TargetError
    from eksfold.target_files import parse_fasta

    (target,) = parse_fasta(">x\nMKTAYIAKQRQISFVKSHFSRQ\n")
    (tmp_path / "ok.a3m").write_text(">x\nMKTAYIAKQRQISFVKSHFSRQ\n>h\nMKTAYaIAKQRQISFVKSHF--\n")
    check_alignments(target, tmp_path)
    (tmp_path / "bad.sto").write_text("# STOCKHOLM 1.0\nq MKTAY\n//\n")
    with pytest.raises(TargetError, match="bad.sto: first row is not the target sequence"):
        check_alignments(target, tmp_path)


def test_precomputed_alignments_are_reused_only_when_they_match(small_db, tmp_path):
    from eksfold.targets import Target

    # A directory laid out like s3://openfold/pdb/<pdbid>_<chain>/ (the S3 path of the same
    # fetcher is tested against the local S3 server in test_data.py).
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEV"
    bucket = tmp_path / "pdb"
    (bucket / "1abc_A" / "a3m").mkdir(parents=True)
    (bucket / "1abc_A" / "a3m" / "uniref90_hits.a3m").write_text(f">q\n{seq}\n>h\n{seq[:-2]}--\n")
    (bucket / "2xyz_B" / "a3m").mkdir(parents=True)
    (bucket / "2xyz_B" / "a3m" / "uniref90_hits.a3m").write_text(">q\nMKTAYIAKQ\n")
    config = AlignConfig(cpus=1, use_precomputed=True, precomputed_source=str(bucket))
    dbs = DatabaseConfig(uniref90=str(small_db))
    reused = align_target(Target("t1", seq, pdb_id="1abc", chain="A"), dbs, config, tmp_path / "a")
    assert reused["precomputed"] == "1abc_A" and reused["msa_depth"] == 2
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["uniref90_hits.a3m"]
    # Mismatching query row (SEQRES differs from the target): fall back to jackhmmer.
    fresh = align_target(Target("t2", seq, pdb_id="2xyz", chain="B"), dbs, config, tmp_path / "b")
    assert "precomputed" not in fresh and fresh["tools"][0]["tool"] == "jackhmmer"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["uniref90_hits.sto"]
    # No precomputed chain at all: align.
    none = align_target(Target("t3", seq, pdb_id="9zzz", chain="A"), dbs, config, tmp_path / "c")
    assert none["tools"][0]["tool"] == "jackhmmer"


@pytest.fixture(scope="session")
def hh_db():
    from conftest import PROJECT, require

    return str(require(PROJECT / "data" / "db" / "hhsuite" / "uniprot150_cs219.ffdata",
                       "HH-suite test database")).removesuffix("_cs219.ffdata")


def test_hhblits_on_a_real_hhsuite_database_writes_the_bfd_a3m(small_db, hh_db, tmp_path):
    from eksfold.alignment.msa import check_alignments
    from eksfold.targets import Target

    # A sequence of the HH-suite database itself: hhblits must find it and write an A3M
    # whose first row is the query, beside jackhmmer's Stockholm file.
    record = small_db.read_text().split(">")[3]
    seq = "".join(record.split("\n", 1)[1].split())
    target = Target("q", seq)
    metrics = align_target(target, DatabaseConfig(uniref90=str(small_db), bfd=hh_db), AlignConfig(cpus=2),
                           tmp_path / "aln")
    assert sorted(p.name for p in (tmp_path / "aln").iterdir()) == ["bfd_uniclust_hits.a3m", "uniref90_hits.sto"]
    assert [t["tool"] for t in metrics["tools"]] == ["jackhmmer", "hhblits"]
    check_alignments(target, tmp_path / "aln")  # both MSAs start with the target's sequence
    assert metrics["tools"][1]["wall_s"] > 0 and metrics["tools"][1]["peak_rss_mb"] > 1


def test_missing_hhsuite_database_is_a_config_error(tmp_path):
    from eksfold.alignment.hhsuite import HHblits

    with pytest.raises(ConfigError, match="expected .*_cs219.ffdata"):
        HHblits([str(tmp_path / "nope")])
