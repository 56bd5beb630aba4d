"""Target files that are not FASTA, recognised by their contents (:func:`sniff`).

- AlphaFold3 jobs (``{"name", "sequences": [{"protein": {"id", "sequence"}}, ...]}``, one job
  or a list; AlphaFold Server's ``proteinChain`` entries too) and OpenFold3 query files
  (``{"queries": {name: {"chains": [{"molecule_type", "chain_ids", "sequence"}]}}}``), parsed
  by :mod:`eksfold.models.openfold3.inputs`: for a preset that folds complexes one target per
  job (``Target.complex``); otherwise one target per protein chain, ``<job>-<chain>``, and a
  DNA, RNA or ligand entry is refused by name (job, chain, kind) while the job's protein
  chains go on.
- PDB and mmCIF structures (read with gemmi): one target per protein chain of the first model,
  ``<file>-<chain>``, with the chain's full sequence (SEQRES / entity_poly_seq) when the file
  has one, else its modelled residues.
- Stockholm alignments (read with Biopython): the query, i.e. the first sequence, gaps removed,
  named after the file (as a3m files are).

Anything else that is not FASTA or a table is named for what it looks like (:func:`looks_like`)
with what to do instead.
"""
from __future__ import annotations

import io
import json
import re
from typing import Iterator

from .errors import TargetError
from .targets import Record

# What a first line says about a file: (pattern, kind). Kinds with a reader are read;
# the others are refused by :func:`refusal`.
_FIRST_LINE = (
    (re.compile(r"^\s*[\[{]"), "json"),
    (re.compile(r"^# STOCKHOLM"), "stockholm"),
    (re.compile(r"^data_"), "mmcif"),
    (re.compile(r"^(HEADER|OBSLTE|TITLE |SPLIT |CAVEAT|COMPND|SOURCE|KEYWDS|EXPDTA|NUMMDL|"
                r"MDLTYP|AUTHOR|REVDAT|SPRSDE|JRNL  |REMARK|DBREF |SEQADV|SEQRES|MODRES|"
                r"HET   |HELIX |SHEET |SSBOND|LINK  |CRYST1|ORIGX|SCALE|MTRIX|MODEL |ATOM  |"
                r"HETATM)"), "pdb"),
    (re.compile(r"^LOCUS\s"), "genbank"),
    (re.compile(r"^ID   \S"), "embl"),
    (re.compile(r"^CLUSTAL|^MUSCLE \(|^PROBCONS"), "clustal"),
    (re.compile(r"^HMMER[23]"), "hmm"),
    (re.compile(r"^@<TRIPOS>"), "mol2"),
    (re.compile(r"^PFRMAT"), "casp"),
    (re.compile(r"^\s*<\?xml", re.I), "xml"),
    (re.compile(r"^\s*<(!doctype html|html)", re.I), "html"),
    (re.compile(r"^@\S"), "fastq"),
    (re.compile(r"^#(\d+,?)+\t(\d+,?)+\s*$"), "a3m"),   # ColabFold's a3m first line
)
DESCRIPTIONS = {
    "genbank": ("a GenBank flat file", "export the protein sequences as FASTA"),
    "embl": ("an EMBL/UniProt flat file", "export the protein sequences as FASTA"),
    "clustal": ("a Clustal alignment", "give its query as FASTA, or the alignment as a3m "
                                       "or Stockholm"),
    "hmm": ("an HMMER profile", "give the sequences as FASTA"),
    "mol2": ("a Tripos MOL2 small-molecule file", "eksfold folds proteins: give FASTA"),
    "casp": ("a CASP prediction (TS/AL) file", "give the target sequences as FASTA"),
    "xml": ("an XML document", "export the sequences as FASTA"),
    "html": ("an HTML page (a download that saved the web page?)", "download the FASTA itself"),
    "fastq": ("a FASTQ file of sequencing reads", "give protein sequences as FASTA"),
    "json": ("a JSON document that is not an AlphaFold3/OpenFold3 job",
             "give an AlphaFold3 job ({\"name\", \"sequences\": [...]}), an OpenFold3 query "
             "file ({\"queries\": {...}}) or FASTA"),
}


def sniff(first_line: str) -> str | None:
    """The kind of file a first (non-blank) line announces, or None (FASTA/table/unknown)."""
    for pattern, kind in _FIRST_LINE:
        if pattern.match(first_line):
            return kind
    return None


def refusal(source: str, kind: str) -> TargetError:
    what, instead = DESCRIPTIONS[kind]
    return TargetError(source, f"this is {what}, not a list of targets: {instead}")


def readers():
    """``{kind: reader(text, source, stem)}`` for the kinds that hold targets."""
    return {"json": read_json_job, "pdb": read_structure, "mmcif": read_structure,
            "stockholm": read_stockholm}


# -- AlphaFold3 / OpenFold3 jobs ------------------------------------------------------------
# One parser for both formats: eksfold.models.openfold3.inputs (validated chain by chain).
# With ``complexes`` (a preset whose family folds complexes) every job or query is one complex
# target; otherwise each protein chain is a target of its own and other kinds are refused.
_KIND_NAMES = {"protein": "protein", "rna": "RNA", "dna": "DNA", "ligand": "ligand"}


def read_json_job(text: str, source: str, stem: str, complexes: bool = False) -> Iterator[Record]:
    from .models.openfold3.inputs import parse_alphafold3_json, parse_openfold3_json

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetError(source, f"line {exc.lineno}: not valid JSON ({exc.msg})") from None
    problems: list = []
    if isinstance(doc, dict) and isinstance(doc.get("queries"), dict):
        found = parse_openfold3_json(doc, source, problems)
    elif isinstance(doc, dict) and isinstance(doc.get("sequences"), list):
        found = parse_alphafold3_json({"name": stem, **doc}, source, problems)
    elif (isinstance(doc, list) and doc
          and all(isinstance(j, dict) and isinstance(j.get("sequences"), list) for j in doc)):
        found = parse_alphafold3_json([{"name": f"{stem}-{i}", **j} for i, j in enumerate(doc, 1)],
                                      source, problems)
    else:
        raise refusal(source, "json")
    for err in problems:   # a bad job or chain: named, the other jobs go on
        yield Record(err.target, "", source, 0, name=err.target, problem=err.problem)
    for target in found:
        yield from (complex_records(target, source) if complexes
                    else chain_records(target, source))


def _plain(target) -> dict:
    """The complex record as the run root stores it (JSON: lists, not tuples), so a target
    read here equals the same target loaded by a worker."""
    return json.loads(json.dumps(target.to_dict()))


def complex_records(target, source: str) -> Iterator[Record]:
    """One record for a whole complex (``Target.complex``)."""
    polymer = ":".join(c.sequence for c in target.chains if c.sequence
                       for _ in c.chain_ids)
    yield Record(target.name or target.id, polymer, source, 0, name=target.id,
                 complex=_plain(target))


def chain_records(target, source: str) -> Iterator[Record]:
    """One record per protein chain, ``<job>-<chain>``; other kinds refused by name."""
    for chain in target.chains:
        for cid in chain.chain_ids:
            label = f"{target.name or target.id}-{cid}"
            if chain.molecule_type != "protein":
                yield Record(label, "", source, 0, name=label, problem=(
                    f"job {target.name!r}, chain {cid}: a {_KIND_NAMES[chain.molecule_type]} "
                    "entry; this preset folds protein chains only (an OpenFold3 preset, of3, "
                    "folds the whole complex)"))
            else:
                yield Record(label, chain.sequence, source, 0, name=label)


def colabfold_complex(rec: Record) -> Record:
    """A FASTA record in ColabFold's ``A:B`` notation as a complex record (chains A, B, ...);
    a bad chain becomes the record's problem, named."""
    from .models.openfold3.complex import ComplexInputError
    from .models.openfold3.inputs import parse_colabfold_fasta

    errors: list = []
    try:
        found = parse_colabfold_fasta(f">{rec.header}\n{rec.sequence}\n", rec.where, errors)
    except ComplexInputError as exc:
        errors.append(exc)
        found = []
    if errors or not found:
        err = errors[0] if errors else None
        return Record(rec.header, rec.sequence, rec.source, rec.line, rec.length, rec.name,
                      problem=err.problem if err else "no chains")
    target = found[0]
    return Record(rec.header, rec.sequence.upper(), rec.source, rec.line, name=target.id,
                  complex=_plain(target))


# -- structures ---------------------------------------------------------------------------
def _one_letter(names) -> str:
    import gemmi

    letters = []
    for name in names:
        info = gemmi.find_tabulated_residue(name.split(",")[0])
        code = info.one_letter_code.upper() if info is not None else " "
        letters.append(code if code.strip() else "X")
    return "".join(letters)


def read_structure(text: str, source: str, stem: str) -> Iterator[Record]:
    """One record per protein chain of the first model: ``<file>-<chain>``."""
    import gemmi

    try:
        if text.lstrip().startswith("data_"):
            st = gemmi.make_structure_from_block(gemmi.cif.read_string(text)[0])
        else:
            st = gemmi.read_pdb_string(text)
        st.setup_entities()
    except (RuntimeError, ValueError, IndexError) as exc:
        raise TargetError(source, f"cannot read the structure: {exc}") from None
    if len(st) == 0:
        raise TargetError(source, "a structure file with no model (no ATOM records)")
    found = False
    for chain in st[0]:
        polymer = chain.get_polymer()
        if len(polymer) == 0:
            continue          # waters and ligands only
        label = f"{stem}-{chain.name}"
        kind = polymer.check_polymer_type()
        if kind not in (gemmi.PolymerType.PeptideL, gemmi.PolymerType.PeptideD):
            yield Record(label, "", source, 0, name=label,
                         problem=f"chain {chain.name} is {kind.name} (not a protein chain)")
            continue
        entity = st.get_entity_of(polymer)
        names = list(entity.full_sequence) if entity is not None and entity.full_sequence \
            else list(polymer.extract_sequence())
        found = True
        yield Record(label, _one_letter(names), source, 0, name=label)
    if not found:
        raise TargetError(source, "a structure file with no protein chain")


# -- Stockholm ------------------------------------------------------------------------------
def read_stockholm(text: str, source: str, stem: str) -> Iterator[Record]:
    """The query (first sequence) of a Stockholm alignment, named after the file."""
    from Bio import AlignIO

    try:
        alignment = next(AlignIO.parse(io.StringIO(text), "stockholm"))
    except (StopIteration, ValueError) as exc:
        raise TargetError(source, f"cannot read the Stockholm alignment: {exc}") from None
    query = alignment[0]
    sequence = re.sub(r"[-.]", "", str(query.seq)).upper()
    yield Record(query.id, sequence, source, 0, name=stem)
