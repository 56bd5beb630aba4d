"""Target files as biologists have them (issue 14): what is read, what is refused and why."""
import bz2
import gzip
import lzma
import re
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eksfold import target_files
from eksfold.errors import TargetError
from eksfold.target_files import parse_fasta, read_fasta, read_targets
from eksfold.targets import (AMBIGUOUS, AMINO_ACIDS, MAX_ID_LENGTH, MIN_LENGTH, Target, select,
                             slugify)

SEQ = "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMF"
SEQ2 = "MKTAYIAKQRQISFVKSHFSRQ"
K8S_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MMSEQS_QUERIES = Path("/usr/share/doc/mmseqs2/example-data/QUERY.fasta.gz")   # mmseqs2-examples
DNA_FASTA = Path("/usr/share/doc/hmmer/tutorial/dna_target.fa")              # hmmer-doc


def write(tmp_path, name, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def pairs(targets):
    return [(t.id, t.sequence) for t in targets]


# -- the field's real files ------------------------------------------------------------------
def test_cameo92_ids_are_unique_safe_and_carry_pdb_chain(cameo_fasta):
    targets = read_fasta(cameo_fasta)
    assert len(targets) == 92
    ids = [t.id for t in targets]
    assert len(set(ids)) == 92
    assert all(re.match(K8S_LABEL, i) and len(i) <= MAX_ID_LENGTH for i in ids)
    first = targets[0]
    assert (first.id, first.pdb_id, first.chain) == ("7elf-c", "7elf", "C")
    assert first.length == 302 and set(first.sequence) <= AMINO_ACIDS


def test_gzipped_uniprot_queries_match_biopython():
    """mmseqs2's 500 UniProt queries, read compressed; Bio.SeqIO is the independent reference."""
    from Bio import SeqIO

    errors = []
    targets = read_targets(MMSEQS_QUERIES, errors=errors)
    with gzip.open(MMSEQS_QUERIES, "rt") as fh:
        reference = [(r.id, str(r.seq)) for r in SeqIO.parse(fh, "fasta")]
    assert len(reference) == 500 and len(targets) + len(errors) == 500
    by_id = {t.description.split()[0]: t.sequence for t in targets}
    assert {i: s for i, s in reference if i in by_id} == by_id
    assert all("shorter than" in e.problem for e in errors)  # the only refusal in the set


def test_hmmer_dna_tutorial_file_is_refused_as_nucleotide():
    with pytest.raises(TargetError, match="nucleotide sequence") as err:
        read_targets(DNA_FASTA)
    assert err.value.target == "humanchr1-frag" and "line 1" in err.value.problem


# -- accepted input kinds --------------------------------------------------------------------
FASTA = f">sp|P69905|HBA_HUMAN Hémoglobine\n{SEQ}\n>b\n{SEQ2}\n".encode()
EXPECTED = [("sp-p69905-hba-human", SEQ), ("b", SEQ2)]
ACCEPTED = {
    "plain": ("t.fasta", FASTA),
    "utf8-bom": ("t.fasta", b"\xef\xbb\xbf" + FASTA),
    "crlf": ("t.fa", FASTA.replace(b"\n", b"\r\n")),
    "cr-only": ("t.fa", FASTA.replace(b"\n", b"\r")),
    "latin1-header": ("t.fasta", FASTA.decode().encode("latin-1")),
    "utf16-bom": ("t.fasta", FASTA.decode().encode("utf-16")),
    "stop-lowercase-spaces-wrapped": ("t.faa", (
        f";old-style comment\n\n>sp|P69905|HBA_HUMAN x\n{SEQ[:10].lower()} {SEQ[10:20]}\t\n"
        f"  {SEQ[20:]}*\n\n>b\n{SEQ2.lower()}*\n").encode()),
    "gzip": ("t.fasta.gz", gzip.compress(FASTA)),
    "gzip-no-suffix": ("t.fasta", gzip.compress(FASTA)),
    "bzip2": ("t.fa.bz2", bz2.compress(FASTA)),
    "xz": ("t.fa.xz", lzma.compress(FASTA)),
    "colabfold-csv": ("q.csv", f"id,sequence\nsp|P69905|HBA_HUMAN,{SEQ}\nb,{SEQ2}\n".encode()),
    "csv-quoted-extra-column": ("q.csv", (f'name,Id,Sequence\nx,"sp|P69905|HBA_HUMAN","{SEQ}"\n'
                                          f'y,b,"{SEQ2}*"\n').encode()),
    "tsv": ("q.tsv", f"id\tsequence\nsp|P69905|HBA_HUMAN\t{SEQ}\nb\t{SEQ2}\n".encode()),
    "csv-by-content": ("queries", f"id,sequence\r\nsp|P69905|HBA_HUMAN,{SEQ}\r\nb,{SEQ2}\r\n"
                       .encode()),
    "unix-text-with-form-feed": ("t.txt", FASTA + b"\x0c\n"),
}


@pytest.mark.parametrize("kind", ACCEPTED)
def test_accepted_input_kinds(tmp_path, kind):
    name, data = ACCEPTED[kind]
    assert pairs(read_targets(write(tmp_path, name, data))) == EXPECTED


def test_latin1_header_keeps_its_accented_description(tmp_path):
    (t, _) = read_targets(write(tmp_path, "t.fa", ACCEPTED["latin1-header"][1]))
    assert t.description == "sp|P69905|HBA_HUMAN Hémoglobine"


def test_a3m_query_is_the_target_named_after_the_file(tmp_path):
    a3m = f"#22\t1\n>101\n{SEQ2}\n>hit1 e=1e-30\n{SEQ2[:5]}aa{SEQ2[5:20]}--\n>hit2\nZZ\n"
    (t,) = read_targets(write(tmp_path, "My_Query.a3m", a3m.encode()))
    assert (t.id, t.sequence, t.description) == ("my-query", SEQ2, "101")
    (g,) = read_targets(write(tmp_path, "other.a3m.gz", gzip.compress(a3m.encode())))
    assert (g.id, g.sequence) == ("other", SEQ2)


def test_directory_of_mixed_files_in_name_order(tmp_path):
    write(tmp_path, "a.fasta", f">one\n{SEQ}\n".encode())
    write(tmp_path, "b.a3m", f">q\n{SEQ2}\n>hit\n{SEQ2}\n".encode())
    write(tmp_path, "c.csv.gz", gzip.compress(f"id,sequence\nthree,{SEQ}W\n".encode()))
    write(tmp_path, ".hidden.fasta", b"garbage")
    write(tmp_path, "notes.md", b"# not a target file")
    assert pairs(read_targets(tmp_path)) == [("one", SEQ), ("b", SEQ2), ("three", SEQ + "W")]


def test_exact_repeats_are_one_target(tmp_path):
    assert pairs(parse_fasta(f">a\n{SEQ}\n>a other text\n{SEQ.lower()}*\n")) == [("a", SEQ)]


def test_lines_longer_than_a_piece_are_joined(tmp_path, monkeypatch):
    monkeypatch.setattr(target_files, "MAX_LINE_CHARS", 7)
    assert pairs(read_targets(write(tmp_path, "t.fa", FASTA.replace(b"\n", b"\r\n")))) == EXPECTED


# -- refusals: each names the file or record, the line and the problem ------------------------
REFUSED = {
    "binary": ("x.fasta", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.fasta",
               "line 2: non-text byte 0x1a"),
    "nul-bytes": ("x.fasta", f">a\n{SEQ}\x00\x00\n".encode(), "x.fasta", "line 2: non-text byte 0x00"),
    "zip": ("x.zip", b"PK\x03\x04\x14\x00\x00\x00", "x.zip", "a zip archive"),
    "truncated-gzip": ("x.fa.gz", gzip.compress(FASTA * 50)[:60], "x.fa.gz", "cannot read the gzip data"),
    "dna": ("x.fa", b">gene1\nATGGCTAGCTAGCTAGGATCGATCGTAGCTAGNNN\n", "gene1",
            "line 1: looks like a nucleotide sequence (100% A/C/G/T/U/N)"),
    "rna": ("x.fa", b">r\nAUGGCUAGCUAGCUAGGAUCGAUCGUAGCUAG\n", "r", "nucleotide"),
    "bad-letters": ("x.fa", f">bad\n{SEQ}1@-\n".encode(), "bad",
                    "line 1: invalid residue letters '-', '1', '@' (first at residue 35)"),
    "stop-inside": ("x.fa", f">s\n{SEQ}*{SEQ}\n".encode(), "s", "invalid residue letters '*'"),
    "empty-record": ("x.fa", f">good\n{SEQ}\n>empty\n\n>g2\n{SEQ2}\n".encode(), "empty",
                     "x.fa line 3: empty sequence"),
    "short": ("x.fa", b">short\nMKV\n", "short", f"sequence of 3 residues is shorter than {MIN_LENGTH}"),
    "duplicate-id": ("x.fa", f">a\n{SEQ}\n>a\n{SEQ2}\n".encode(), "a",
                     "line 3: duplicate id 'a' with a different sequence than at x.fa line 1"),
    "slug-collision": ("x.fa", f">A_1\n{SEQ}\n>a-1\n{SEQ2}\n".encode(), "a-1",
                       "name 'a-1' and 'A_1' (at x.fa line 1) both become id 'a-1'"),
    "no-usable-name": ("x.fa", f">||| \n{SEQ}\n".encode(), "record 1", "has no usable name"),
    "no-header": ("x.fa", f"{SEQ}\n>x\n{SEQ}\n".encode(), "x.fa",
                  "line 1: sequence data before the first '>' header"),
    "csv-without-columns": ("x.csv", f"name,seq\na,{SEQ}\n".encode(), "x.csv",
                            "needs columns 'id' and 'sequence'"),
    "csv-complex": ("x.csv", f"id,sequence\ncplx,{SEQ}:{SEQ2}\n".encode(), "cplx",
                    "x.csv line 2: ':' separates the chains of a complex"),
    "csv-short-row": ("x.csv", b"id,sequence\nlonely\n", "lonely", "1 columns, expected 2"),
    "empty-file": ("x.fa", b"", "x.fa", "no target records found"),
    "only-blank": ("x.fa", b"\r\n\n  \n", "x.fa", "no target records found"),
    "huge-header": ("x.fa", b">" + b"n" * 20_000 + b"\nMKV\n", "x.fa", "header longer than"),
}


@pytest.mark.parametrize("kind", REFUSED)
def test_refusals_name_the_record_and_the_problem(tmp_path, kind):
    name, data, target, problem = REFUSED[kind]
    with pytest.raises(TargetError) as err:
        read_targets(write(tmp_path, name, data))
    message = err.value.problem.replace(f"{tmp_path}/", "")
    assert err.value.target.endswith(target) and problem in message, str(err.value)


def test_too_long_for_every_memory_setting_is_refused_and_not_held(tmp_path):
    # 20 MB on one line, 1,000 allowed: the reader counts the record instead of keeping it
    path = write(tmp_path, "big.fa", b">titan\n" + b"ACDEFGHIKLMNPQRSTVWY" * 1_000_000 + b"\n")
    tracemalloc.start()
    with pytest.raises(TargetError, match="about 20000000 residues is longer than 1000") as err:
        read_targets(path, max_length=1000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert err.value.target == "titan" and peak < 8 * 2 ** 20, peak


def test_limits_on_records_and_bytes_are_stated(tmp_path, monkeypatch):
    path = write(tmp_path, "db.fa", "".join(f">s{i}\n{SEQ}\n" for i in range(20)).encode())
    monkeypatch.setattr(target_files, "MAX_RECORDS", 5)
    with pytest.raises(TargetError, match="more than 5 records: this looks like a sequence database"):
        read_targets(path)
    monkeypatch.setattr(target_files, "MAX_RECORDS", 50)
    monkeypatch.setattr(target_files, "MAX_INPUT_BYTES", 2 ** 30 // 2 ** 20 * 100)
    assert len(read_targets(path)) == 20
    monkeypatch.setattr(target_files, "MAX_INPUT_BYTES", 100)
    with pytest.raises(TargetError, match="MiB of text: split the input"):
        read_targets(path)


def test_missing_file_and_empty_directory(tmp_path):
    with pytest.raises(TargetError, match="not found"):
        read_fasta(tmp_path / "nope.fasta")
    write(tmp_path, "readme.md", b"x")
    with pytest.raises(TargetError, match="directory holds no target files"):
        read_targets(tmp_path)


def test_errors_list_keeps_good_records_and_every_problem(tmp_path):
    errors = []
    text = f">good\n{SEQ}\n>bad\n{SEQ}@@\n>dna\n{'ACGT' * 10}\n>good2\n{SEQ}\n"
    assert [t.id for t in parse_fasta(text, errors=errors)] == ["good", "good2"]
    assert [(e.target, e.problem.split(":")[0]) for e in errors] == [
        ("bad", "<fasta> line 3"), ("dna", "<fasta> line 5")]


def test_errors_list_drops_a_broken_file_of_a_directory_whole(tmp_path):
    write(tmp_path, "a.fa", f">a\n{SEQ}\n".encode())
    write(tmp_path, "b.fa", f">b\n{SEQ}\n".encode() + b"\x00garbage")
    errors = []
    assert [t.id for t in read_targets(tmp_path, errors=errors)] == ["a"]
    assert len(errors) == 1 and errors[0].target.endswith("b.fa") and "line 3" in errors[0].problem


def test_select_by_ids_shortest_limit_and_unknown_id(cameo_fasta):
    targets = read_fasta(cameo_fasta)
    shortest = select(targets, shortest=True, limit=3)
    assert [t.length for t in shortest] == sorted(t.length for t in targets)[:3]
    assert [t.id for t in select(targets, ids=["7elf-c"])] == ["7elf-c"]
    with pytest.raises(TargetError, match="not in the target set"):
        select(targets, ids=["nope"])


# -- properties --------------------------------------------------------------------------------
PROPS = settings(max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOKENS = [b">", b">x y", b">A_1", b">a-1", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\xff\xfe",
          b"id,sequence\n", b"id\tsequence\n", b",", b"\t", b":", b"*", b";", b"#", b" ",
          SEQ.encode(), SEQ2.lower().encode(), b"ACGTACGTACGTACGTAC", b"\xe9", b"\x00", b"\x93",
          b"\xc3\xa9", b"\x1f\x8b", b"BZh", b"PK\x03\x04", b"-", b"1"]
soup = st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join)
raw = st.one_of(st.binary(max_size=300), soup, soup.map(gzip.compress),
                soup.map(lambda b: gzip.compress(b)[: max(1, len(b) // 2)]))


@PROPS
@given(data=raw, name=st.sampled_from(["t.fasta", "t.a3m", "t.csv", "t.tsv", "t", "t.fa.gz"]),
       collect=st.booleans())
def test_any_bytes_give_targets_or_a_target_error(data, name, collect):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), name, data)
        errors = [] if collect else None
        try:
            targets = read_targets(path, errors=errors)
        except TargetError as exc:
            assert exc.problem and exc.target
            return
        for t in targets:
            assert re.match(K8S_LABEL, t.id) and MIN_LENGTH <= t.length
            assert set(t.sequence) <= AMINO_ACIDS | AMBIGUOUS
        assert len({t.id for t in targets}) == len(targets)
        assert all(isinstance(e, TargetError) for e in errors or [])


names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20)
sequences = st.text(st.sampled_from(sorted(AMINO_ACIDS - set("ACGTN"))), min_size=MIN_LENGTH,
                    max_size=300)


@PROPS
@given(records=st.dictionaries(names.map(str.lower), sequences, min_size=1, max_size=6),
       width=st.integers(1, 120), newline=st.sampled_from(["\n", "\r\n", "\r"]),
       bom=st.booleans(), lower=st.booleans(), stop=st.booleans(),
       form=st.sampled_from(["fasta", "fasta.gz", "csv", "tsv"]))
def test_a_valid_file_round_trips(records, width, newline, bom, lower, stop, form):
    targets = [Target(slugify(n), s) for n, s in records.items()]
    if len({t.id for t in targets}) < len(targets):
        return  # names that collide once made safe are refused (tested above)
    if form.startswith("fasta"):
        text = "".join(f">{t.id} some description{newline}" + newline.join(
            (t.sequence.lower() if lower else t.sequence)[i:i + width]
            for i in range(0, t.length, width)) + ("*" if stop else "") + newline
            for t in targets)
    else:
        sep = "," if form == "csv" else "\t"
        text = newline.join([f"id{sep}sequence"] + [f"{t.id}{sep}{t.sequence}" for t in targets])
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), f"t.{form}", gzip.compress(data) if form.endswith("gz") else data)
        assert pairs(read_targets(path)) == pairs(targets)
