import pytest

from eksfold.errors import TargetError
from eksfold.targets import MAX_ID_LENGTH, parse_fasta, read_fasta, select

SEQ = "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMF"
K8S_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def test_cameo92_ids_are_unique_safe_and_carry_pdb_chain(cameo_fasta):
    targets = read_fasta(cameo_fasta)
    assert len(targets) == 92
    ids = [t.id for t in targets]
    assert len(set(ids)) == 92
    import re
    assert all(re.match(K8S_LABEL, i) and len(i) <= MAX_ID_LENGTH for i in ids)
    first = targets[0]
    assert (first.id, first.pdb_id, first.chain) == ("7elf-C".lower(), "7elf", "C")
    assert first.length == 302 and set(first.sequence) <= set("ACDEFGHIKLMNPQRSTVWY")


def test_uniprot_style_headers_are_not_mangled_like_openfold_tags():
    targets = parse_fasta(f">sp|P69905|HBA_HUMAN Hemoglobin\n{SEQ}\n>sp|P68871|HBB_HUMAN\n{SEQ}K\n")
    assert [t.id for t in targets] == ["sp-p69905-hba-human", "sp-p68871-hbb-human"]
    assert targets[0].description.startswith("sp|P69905")


def test_colliding_slugs_get_distinct_stable_suffixes():
    text = f">A_1\n{SEQ}\n>a-1\n{SEQ}W\n"
    first = [t.id for t in parse_fasta(text)]
    assert len(set(first)) == 2 and all(i.startswith("a-1-") for i in first)
    assert first == [t.id for t in parse_fasta(text)]  # stable across parses


def test_multiline_sequences_lowercase_and_stop_codon_are_normalised():
    (t,) = parse_fasta(f">x\n{SEQ[:10].lower()}\n{SEQ[10:]}*\n")
    assert t.sequence == SEQ


@pytest.mark.parametrize("record, problem", [
    (f">bad\n{SEQ}1J\n", "invalid residue letters '1'"),
    (">empty\n\n", "empty sequence"),
    (">short\nMKV\n", "shorter than"),
])
def test_invalid_records_name_the_target_and_problem(record, problem):
    with pytest.raises(TargetError) as err:
        parse_fasta(record)
    assert problem in str(err.value) and err.value.target in ("bad", "empty", "short")


def test_errors_list_collects_bad_records_and_keeps_good_ones():
    errors = []
    targets = parse_fasta(f">good\n{SEQ}\n>bad\n{SEQ}@@\n>good2\n{SEQ}\n", errors=errors)
    assert [t.id for t in targets] == ["good", "good2"]
    assert len(errors) == 1 and errors[0].target == "bad"


def test_sequence_before_header_and_missing_file_are_clear(tmp_path):
    with pytest.raises(TargetError, match="before the first '>'"):
        parse_fasta(f"{SEQ}\n>x\n{SEQ}\n")
    with pytest.raises(TargetError, match="not found"):
        read_fasta(tmp_path / "nope.fasta")


def test_select_by_ids_shortest_limit_and_unknown_id(cameo_fasta):
    targets = read_fasta(cameo_fasta)
    shortest = select(targets, shortest=True, limit=3)
    assert [t.length for t in shortest] == sorted(t.length for t in targets)[:3]
    assert [t.id for t in select(targets, ids=["7elf-c"])] == ["7elf-c"]
    with pytest.raises(TargetError, match="not in the target set"):
        select(targets, ids=["nope"])
