"""Targets: FASTA parsing, validation and stable ids.

A target id must be safe as a file name, an S3 key segment and a Kubernetes label value
(lowercase RFC 1123: ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63 characters). OpenFold's
own rule (header cut at the first non-word character) turns ``sp|P69905|HBA_HUMAN`` into
``sp`` and collides; here the whole first token is kept as a slug, CAMEO headers become
``<pdbid>-<chain>``, and colliding slugs get a short hash of their full header.

>>> [t.id for t in parse_fasta(">sp|P69905|HBA_HUMAN\\nMVLS\\n>x y\\nMKV\\n")]
['sp-p69905-hba-human', 'x']
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import TargetError

AMINO_ACIDS = set("ACDEFGHIKLMNPQRSTVWY")
# Letters OpenFold maps to unknown (X) or to a standard residue; accepted with a warning-free
# mapping because the feature pipeline handles them (B->D/N ambiguity is kept as X).
AMBIGUOUS = set("XBZUOJ")
MAX_ID_LENGTH = 48  # leaves room for suffixes in Kubernetes object names (63 max)
MIN_LENGTH = 16     # shorter chains are peptides: OpenFold's structure module is unreliable

_CAMEO = re.compile(r"pdbid:\s*(?P<pdb>\w{4})\s*\|\s*chain:\s*(?P<chain>\w+)", re.I)
_SLUG_BAD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Target:
    """One protein chain to fold."""

    id: str
    sequence: str
    description: str = ""
    pdb_id: str | None = None
    chain: str | None = None

    @property
    def length(self) -> int:
        return len(self.sequence)

    def to_dict(self) -> dict:
        return {**asdict(self), "length": self.length}

    @classmethod
    def from_dict(cls, data: dict) -> "Target":
        return cls(**{k: data.get(k) for k in ("id", "sequence", "description", "pdb_id", "chain")})

    def fasta(self) -> str:
        return f">{self.id} {self.description}".rstrip() + "\n" + self.sequence + "\n"


def slugify(text: str) -> str:
    """Lowercase, runs of other characters to '-', trimmed to MAX_ID_LENGTH."""
    slug = _SLUG_BAD.sub("-", text.lower()).strip("-")
    return slug[:MAX_ID_LENGTH].rstrip("-")


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def _parse_records(text: str, source: str) -> list[tuple[str, str]]:
    records, header, seq = [], None, []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            if header is not None:
                records.append((header, "".join(seq)))
            header, seq = line[1:].strip(), []
        elif header is None:
            raise TargetError(source, f"line {lineno}: sequence data before the first '>' header")
        else:
            seq.append(line)
    if header is not None:
        records.append((header, "".join(seq)))
    return records


def validate_sequence(target_id: str, sequence: str) -> str:
    """Return the normalised (uppercase, no gaps/whitespace) sequence or raise TargetError."""
    seq = re.sub(r"\s", "", sequence).upper().rstrip("*")
    if not seq:
        raise TargetError(target_id, "empty sequence")
    bad = sorted(set(seq) - AMINO_ACIDS - AMBIGUOUS)
    if bad:
        raise TargetError(target_id, f"invalid residue letters {''.join(bad)!r} (protein sequences only)")
    if len(seq) < MIN_LENGTH:
        raise TargetError(target_id, f"sequence of {len(seq)} residues is shorter than {MIN_LENGTH}")
    return seq


def _base_id(header: str) -> tuple[str, str | None, str | None]:
    match = _CAMEO.search(header)
    if match:
        pdb, chain = match["pdb"].lower(), match["chain"]
        return slugify(f"{pdb}-{chain}"), pdb, chain
    token = header.split()[0] if header.split() else ""
    return slugify(token), None, None


def parse_fasta(text: str, source: str = "<fasta>", errors: list | None = None) -> list[Target]:
    """Parse FASTA text into validated targets with unique, stable ids.

    Invalid records raise :class:`TargetError`, unless ``errors`` is a list: then each error is
    appended to it and the record skipped, so one bad target does not stop the others.
    """
    parsed = []
    for index, (header, raw_seq) in enumerate(_parse_records(text, source), 1):
        base, pdb, chain = _base_id(header)
        label = base or f"record {index}"
        try:
            if not base:
                raise TargetError(f"record {index}", "header has no usable name")
            parsed.append((header, base, pdb, chain, validate_sequence(label, raw_seq)))
        except TargetError as exc:
            if errors is None:
                raise
            errors.append(exc)
    counts: dict[str, int] = {}
    for _, base, *_ in parsed:
        counts[base] = counts.get(base, 0) + 1
    targets, seen = [], set()
    for header, base, pdb, chain, seq in parsed:
        tid = base if counts[base] == 1 else f"{base[:MAX_ID_LENGTH - 7]}-{_short_hash(header + seq)}"
        if tid in seen:  # identical header and sequence twice: same target, keep the first
            continue
        seen.add(tid)
        targets.append(Target(tid, seq, header, pdb, chain))
    if not targets and not errors:
        raise TargetError(source, "no FASTA records found")
    return targets


def read_fasta(path: str | Path, errors: list | None = None) -> list[Target]:
    """Read and validate a FASTA file (see :func:`parse_fasta`)."""
    path = Path(path)
    if not path.is_file():
        raise TargetError(str(path), "FASTA file not found")
    return parse_fasta(path.read_text(), source=str(path), errors=errors)


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
