"""Targets: the :class:`Target` record, stable ids and sequence validation.

Reading files (FASTA, a3m, CSV/TSV, compressed, directories: ``read_fasta``, ``parse_fasta``)
lives in :mod:`eksfold.target_files`, which imports this module; this module turns the raw records a reader yields into validated
targets with unique ids.

A target id must be safe as a file name, an S3 key segment and a Kubernetes label value
(lowercase RFC 1123: ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63 characters). OpenFold's
own rule (header cut at the first non-word character) turns ``sp|P69905|HBA_HUMAN`` into
``sp`` and collides; here the whole first token is kept as a slug and CAMEO headers become
``<pdbid>-<chain>``. Two different records whose ids coincide (the same name twice with
different sequences, or names that only differ in what the slug removes) are refused: silently
renaming one would make results impossible to match back to the input.

>>> from eksfold.target_files import parse_fasta
>>> [t.id for t in parse_fasta(">sp|P69905|HBA_HUMAN\\nMVLSPADKTNVKAAWGKV\\n>x y\\nMKVAAWGKVGAHAGEYG\\n")]
['sp-p69905-hba-human', 'x']
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from .errors import TargetError

AMINO_ACIDS = set("ACDEFGHIKLMNPQRSTVWY")
# Letters OpenFold maps to unknown (X) or to a standard residue; accepted because the feature
# pipeline handles them (B/Z ambiguity, U selenocysteine, O pyrrolysine, J Leu/Ile).
AMBIGUOUS = set("XBZUOJ")
NUCLEOTIDES = set("ACGTUN")
MAX_ID_LENGTH = 48     # leaves room for suffixes in Kubernetes object names (63 max)
MIN_LENGTH = 16        # shorter chains are peptides: OpenFold's structure module is unreliable
MAX_LENGTH = 100_000   # without a memory-aware limit: longer than any known protein (titin 35k)
NUCLEOTIDE_FRACTION = 0.9  # share of A/C/G/T/U/N above which a "protein" is really DNA/RNA

_CAMEO = re.compile(r"pdbid:\s*(?P<pdb>\w{4})\s*\|\s*chain:\s*(?P<chain>\w+)", re.I)
_SLUG_BAD = re.compile(r"[^a-z0-9]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Target:
    """One protein chain to fold, or a complex (``complex`` set).

    A complex (proteins, RNA, DNA, ligands: issue 24) keeps its chains in ``complex``, the
    record of :class:`eksfold.models.openfold3.complex.ComplexTarget` (``to_dict``) plus
    ``tokens``; its ``sequence`` is the polymer chains in ColabFold's ``A:B`` notation (for
    people and the summary) and its ``length`` the token count, which is what time and memory
    grow with for a complex model.
    """

    id: str
    sequence: str
    description: str = ""
    pdb_id: str | None = None
    chain: str | None = None
    complex: dict | None = field(default=None, compare=False, hash=False)

    @property
    def length(self) -> int:
        if self.complex is not None:
            return int(self.complex.get("tokens") or len(self.sequence.replace(":", "")))
        return len(self.sequence)

    @property
    def chains(self) -> int:
        """Chains (copies counted): 1 for a single chain."""
        if self.complex is None:
            return 1
        return sum(len(c["chain_ids"]) for c in self.complex["chains"])

    def to_dict(self) -> dict:
        out = {**asdict(self), "length": self.length}
        if self.complex is None:
            del out["complex"]   # single-chain records stay as they were
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Target":
        return cls(**{k: data.get(k) for k in ("id", "sequence", "description", "pdb_id",
                                               "chain", "complex")})

    def fasta(self) -> str:
        return f">{self.id} {self.description}".rstrip() + "\n" + self.sequence + "\n"


@dataclass(frozen=True)
class Record:
    """One raw record as a reader found it, before validation.

    ``length`` is the number of sequence characters seen when a reader stopped keeping them
    (a record longer than any limit is not held in memory); ``name`` overrides the header as
    the source of the id (a3m files are named by their file, as ColabFold does).
    """

    header: str
    sequence: str
    source: str
    line: int
    length: int | None = None
    name: str | None = None
    problem: str | None = None  # found by the reader (e.g. a complex in a CSV row)
    complex: dict | None = None  # a complex target, validated by its reader (Target.complex)

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}"


class RecordBuilder:
    """A reader's record in the making: keeps about ``limit`` sequence characters, counts the rest."""

    def __init__(self, header: str, source: str, line: int, limit: int):
        self.header, self.source, self.line, self.limit = header, source, line, limit
        self.parts: list[str] = []
        self.kept = self.seen = 0

    def add(self, text: str) -> None:
        text = "".join(text.split())
        self.seen += len(text)
        if self.kept <= self.limit:
            self.parts.append(text)
            self.kept += len(text)

    def record(self, name: str | None = None, problem: str | None = None) -> Record:
        length = self.seen if self.seen > self.limit + 1 else None  # +1: a final '*'
        return Record(self.header.strip(), "".join(self.parts), self.source, self.line,
                      length, name, problem)


def slugify(text: str) -> str:
    """Lowercase, runs of other characters to '-', trimmed to MAX_ID_LENGTH."""
    slug = _SLUG_BAD.sub("-", text.lower()).strip("-")
    return slug[:MAX_ID_LENGTH].rstrip("-")


def _letters(chars) -> str:
    return ", ".join(repr(c) for c in sorted(chars))


def validate_sequence(target_id: str, sequence: str, max_length: int | None = None,
                      where: str = "", length: int | None = None) -> str:
    """Return the normalised (uppercase, no whitespace, no final ``*``) sequence.

    Raises :class:`TargetError` naming the problem: empty, nucleotide, letters that are no
    residue, too short, longer than ``max_length`` (default :data:`MAX_LENGTH`). ``length``
    is the true length when the caller kept only a prefix of a huge record.
    """
    def fail(problem: str):
        raise TargetError(target_id, f"{where}: {problem}" if where else problem)

    limit = max_length or MAX_LENGTH
    seq = _SPACE.sub("", sequence).upper()
    seq = seq[:-1] if seq.endswith("*") else seq  # translation stop, as many tools write
    if not seq:
        fail("empty sequence")
    acgt = sum(seq.count(c) for c in NUCLEOTIDES)
    if acgt >= NUCLEOTIDE_FRACTION * len(seq) and len(set(seq) & set("ACGTU")) >= 3:
        fail(f"looks like a nucleotide sequence ({100 * acgt // len(seq)}% A/C/G/T/U/N), not "
             "a protein: translate it first")
    bad = set(seq) - AMINO_ACIDS - AMBIGUOUS
    if ":" in bad:
        fail(f"a complex of {seq.count(':') + 1} chains in ColabFold's 'A:B' notation; this "
             "preset folds one protein chain: use an OpenFold3 preset (--preset of3) for "
             "complexes")
    if bad:
        first = min(seq.index(c) for c in bad) + 1
        fail(f"invalid residue letters {_letters(bad)} (first at residue {first}); protein "
             "one-letter codes only")
    if len(seq) < MIN_LENGTH:
        fail(f"sequence of {len(seq)} residues is shorter than {MIN_LENGTH}")
    if len(seq) > limit or (length or 0) > limit:
        fail(f"sequence of {'about ' if length else ''}{length or len(seq)} residues is longer "
             f"than {limit}, the longest any memory setting can fold")
    return seq


def base_id(header: str) -> tuple[str, str, str | None, str | None]:
    """``(slug, name, pdb_id, chain)`` of a header: the name is what the slug was made from."""
    match = _CAMEO.search(header)
    if match:
        pdb, chain = match["pdb"].lower(), match["chain"]
        return slugify(f"{pdb}-{chain}"), f"{pdb}_{chain}", pdb, chain
    token = header.split()[0] if header.split() else ""
    return slugify(token), token, None, None


def assign_ids(records, errors: list | None = None,
               max_length: int | None = None) -> list[Target]:
    """Validate raw :class:`Record` objects into targets with unique ids.

    An invalid record raises :class:`TargetError`, unless ``errors`` is a list: then the error
    is appended and the record skipped, so one bad target does not stop the others. A record
    repeated exactly (same name, same sequence) is kept once.
    """
    targets: list[Target] = []
    seen: dict[str, tuple[str, str, str]] = {}  # id -> (name, sequence, where)
    for index, rec in enumerate(records, 1):
        slug, name, pdb, chain = base_id(rec.name or rec.header)
        if rec.name:
            slug, name = slugify(rec.name), rec.name
        label = slug or f"record {index}"
        try:
            if rec.problem:
                raise TargetError(label, f"{rec.where}: {rec.problem}")
            if rec.complex is not None:   # checked chain by chain by its reader
                if slug in seen:
                    raise TargetError(slug, f"{rec.where}: target id {slug!r} used twice")
                seen[slug] = (name, rec.sequence, rec.where)
                targets.append(Target(slug, rec.sequence, rec.header, complex=rec.complex))
                continue
            seq = validate_sequence(label, rec.sequence, max_length, rec.where, rec.length)
            if not slug:
                raise TargetError(label, f"{rec.where}: header {rec.header[:60]!r} has no "
                                         "usable name (letters or digits)")
            if slug in seen:
                first_name, first_seq, first_where = seen[slug]
                if first_name == name and first_seq == seq:
                    continue
                if first_name == name:
                    raise TargetError(slug, f"{rec.where}: duplicate id {name!r} with a different "
                                            f"sequence than at {first_where}")
                raise TargetError(slug, f"{rec.where}: name {name!r} and {first_name!r} (at "
                                        f"{first_where}) both become id {slug!r} once made safe "
                                        "for files and Kubernetes; rename one")
        except TargetError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        seen[slug] = (name, seq, rec.where)
        targets.append(Target(slug, seq, rec.header, pdb, chain))
    return targets


def select(targets: list[Target], ids=None, limit: int | None = None,
           shortest: bool = False, max_length: int | None = None) -> list[Target]:
    """Subset a target list: by ids (in given order), by length, the N shortest, the first N."""
    if ids:
        by_id = {t.id: t for t in targets}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise TargetError(", ".join(missing), "not in the target set")
        targets = [by_id[i] for i in ids]
    if max_length:
        targets = [t for t in targets if t.length <= max_length]
    if shortest:
        targets = sorted(targets, key=lambda t: (t.length, t.id))
    return targets[:limit] if limit else targets


def dump_targets(targets: list[Target]) -> str:
    return json.dumps([t.to_dict() for t in targets], indent=1) + "\n"


def load_targets(text: str) -> list[Target]:
    return [Target.from_dict(d) for d in json.loads(text)]
