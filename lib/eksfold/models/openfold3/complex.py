"""The complex target: chains of proteins, RNA, DNA and ligands, validated per chain.

One record for every input format (:mod:`.inputs`), and the one place that writes OpenFold3's
query. Identical polymer chains form one entity with several chain ids (a homodimer is one
entry with ``chain_ids ["A", "B"]``, as OpenFold3's query format and AlphaFold3's jobs say it),
so later stages can align each distinct sequence once.

Checks here need no chemistry toolkit (letters, ids, shapes); whether a SMILES string parses or
a CCD code exists is checked in ``.venv-of3`` by :mod:`.chemistry`. Every refusal is a
:class:`ComplexInputError` naming the target, the chain and the offending value.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ...errors import TargetError
from ...targets import AMINO_ACIDS, MAX_LENGTH, slugify

MOLECULE_TYPES = ("protein", "rna", "dna", "ligand")
ALPHABETS = {"protein": AMINO_ACIDS | {"X"}, "rna": set("ACGUN"), "dna": set("ACGTN")}
# Input fields OpenFold3 reads from files we pass through unchanged (precomputed MSAs and
# templates); anything else in a chain is refused rather than silently dropped.
PASSTHROUGH = ("main_msa_file_paths", "paired_msa_file_paths", "template_alignment_file_path",
               "template_entry_chain_ids", "template_cif_paths", "template_cif_chain_ids")
_CHAIN_ID = re.compile(r"^[A-Za-z0-9]{1,4}$")
_CCD_CODE = re.compile(r"^[A-Z0-9]{1,5}$")
_SPACE = re.compile(r"\s+")


class ComplexInputError(TargetError):
    """One chain of one complex target is unusable; the message names target, chain, value."""

    def __init__(self, target: str, chain: str | None, problem: str):
        self.chain = chain
        super().__init__(target, f"chain {chain}: {problem}" if chain else problem)


@dataclass(frozen=True)
class ComplexChain:
    """One entity: a molecule and the chain ids it occupies (two ids = two copies)."""

    molecule_type: str
    chain_ids: tuple[str, ...]
    sequence: str | None = None
    smiles: str | None = None
    ccd_codes: tuple[str, ...] | None = None
    description: str = ""
    files: dict = field(default_factory=dict)  # PASSTHROUGH fields, as given

    @property
    def label(self) -> str:
        return ",".join(self.chain_ids)

    def to_query(self) -> dict:
        out: dict = {"molecule_type": self.molecule_type, "chain_ids": list(self.chain_ids)}
        for key in ("sequence", "smiles"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.ccd_codes is not None:
            out["ccd_codes"] = list(self.ccd_codes)
        if self.description:
            out["description"] = self.description
        return {**out, **self.files}


@dataclass(frozen=True)
class ComplexTarget:
    """A complex to predict: a safe id, its entities in input order, optional model seeds."""

    id: str
    chains: tuple[ComplexChain, ...]
    seeds: tuple[int, ...] = ()
    name: str = ""
    source: str = ""

    @property
    def chain_ids(self) -> list[str]:
        return [cid for chain in self.chains for cid in chain.chain_ids]

    @property
    def polymer_residues(self) -> int:
        """Residues over all polymer copies: OpenFold3's token count without the ligands."""
        return sum(len(c.sequence) * len(c.chain_ids) for c in self.chains if c.sequence)

    def ligands(self) -> list[tuple[str, str, str]]:
        """``(chain label, kind, value)`` for every SMILES and CCD code, for :mod:`.chemistry`."""
        out = []
        for chain in self.chains:
            if chain.smiles is not None:
                out.append((chain.label, "smiles", chain.smiles))
            for code in chain.ccd_codes or ():
                out.append((chain.label, "ccd", code))
        return out

    def to_query(self) -> dict:
        """This target as one OpenFold3 query (``{"chains": [...]}``)."""
        return {"chains": [c.to_query() for c in self.chains]}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ComplexTarget":
        chains = tuple(ComplexChain(**{**c, "chain_ids": tuple(c["chain_ids"]),
                                        "ccd_codes": (tuple(c["ccd_codes"])
                                                      if c.get("ccd_codes") is not None
                                                      else None)})
                       for c in data["chains"])
        return cls(data["id"], chains, tuple(data.get("seeds") or ()), data.get("name", ""),
                   data.get("source", ""))


def query_set(targets: list[ComplexTarget], seeds: list[int] | None = None) -> dict:
    """An OpenFold3 query JSON for several targets (keys are the target ids)."""
    out: dict = {"queries": {t.id: t.to_query() for t in targets}}
    if seeds:
        out["seeds"] = list(seeds)
    return out


def make_chain(target: str, molecule_type: str, chain_ids, *, sequence=None, smiles=None,
               ccd_codes=None, description: str = "", files: dict | None = None,
               max_length: int | None = None) -> ComplexChain:
    """A validated :class:`ComplexChain`; :class:`ComplexInputError` names what is wrong."""
    ids = [chain_ids] if isinstance(chain_ids, str) else list(chain_ids or [])
    label = ",".join(str(i) for i in ids) or "?"

    def fail(problem: str):
        raise ComplexInputError(target, label, problem)

    if not ids:
        fail("no chain id")
    for cid in ids:
        if not isinstance(cid, str) or not _CHAIN_ID.match(cid):
            fail(f"chain id {cid!r} is not 1-4 letters or digits")
    kind = str(molecule_type).lower()
    if kind not in MOLECULE_TYPES:
        fail(f"molecule type {molecule_type!r} is not one of {', '.join(MOLECULE_TYPES)}")
    given = [k for k, v in (("sequence", sequence), ("smiles", smiles),
                            ("ccd_codes", ccd_codes)) if v is not None]
    if kind in ALPHABETS:
        if given != ["sequence"]:
            fail(f"a {kind} chain needs a sequence (and no smiles/ccd_codes), got "
                 f"{', '.join(given) or 'none'}")
        if not isinstance(sequence, str):
            fail(f"sequence {sequence!r} is not text")
        seq = _SPACE.sub("", sequence).upper()
        if not seq:
            fail(f"empty {kind} sequence")
        bad = sorted(set(seq) - ALPHABETS[kind])
        if bad:
            first = min(seq.index(c) for c in bad) + 1
            fail(f"invalid {kind} letters {', '.join(map(repr, bad))} (first at residue "
                 f"{first}) in {seq[:30]!r}{'...' if len(seq) > 30 else ''}; allowed: "
                 f"{''.join(sorted(ALPHABETS[kind]))}")
        limit = max_length or MAX_LENGTH
        if len(seq) > limit:
            fail(f"{kind} sequence of {len(seq)} residues is longer than {limit}")
        return ComplexChain(kind, tuple(ids), sequence=seq, description=description,
                            files=dict(files or {}))
    if len(given) != 1 or given[0] == "sequence":
        fail(f"a ligand needs exactly one of smiles or ccd_codes, got "
             f"{', '.join(given) or 'none'}")
    if smiles is not None:
        if not isinstance(smiles, str) or not smiles.strip() or _SPACE.search(smiles.strip()):
            fail(f"SMILES {smiles!r} is empty or contains whitespace")
        return ComplexChain(kind, tuple(ids), smiles=smiles.strip(), description=description,
                            files=dict(files or {}))
    codes = [ccd_codes] if isinstance(ccd_codes, str) else list(ccd_codes)
    if not codes:
        fail("empty list of CCD codes")
    for code in codes:
        if not isinstance(code, str) or not _CCD_CODE.match(code.strip().upper()):
            fail(f"CCD code {code!r} is not 1-5 letters or digits")
    return ComplexChain(kind, tuple(ids), ccd_codes=tuple(c.strip().upper() for c in codes),
                        description=description, files=dict(files or {}))


def make_target(name: str, chains: list[ComplexChain], seeds=(), source: str = "",
                target_id: str | None = None) -> ComplexTarget:
    """Group identical polymer chains into entities, check ids; :class:`ComplexInputError`."""
    tid = target_id or slugify(str(name))
    if not tid:
        raise ComplexInputError(str(name) or "?", None, f"{source}: name {name!r} has no "
                                "usable letters or digits")
    if not chains:
        raise ComplexInputError(tid, None, f"{source}: no chains")
    seen: dict[str, str] = {}
    for chain in chains:
        for cid in chain.chain_ids:
            if cid in seen:
                raise ComplexInputError(tid, cid, f"chain id {cid!r} used twice")
            seen[cid] = chain.molecule_type
    if not any(c.molecule_type in ALPHABETS for c in chains):
        raise ComplexInputError(tid, None, "no protein, RNA or DNA chain: OpenFold3 folds "
                                           "ligands only together with a polymer")
    merged: list[ComplexChain] = []
    for chain in chains:
        twin = next((m for m in merged if chain.sequence and not chain.files and not m.files
                     and (m.molecule_type, m.sequence) == (chain.molecule_type, chain.sequence)),
                    None)
        if twin is None:
            merged.append(chain)
        else:
            merged[merged.index(twin)] = ComplexChain(
                twin.molecule_type, twin.chain_ids + chain.chain_ids, sequence=twin.sequence,
                description=twin.description)
    try:
        seeds = tuple(int(s) for s in seeds or ())
    except (TypeError, ValueError):
        raise ComplexInputError(tid, None, f"model seeds {seeds!r} are not integers") from None
    return ComplexTarget(tid, tuple(merged), seeds, str(name), source)
