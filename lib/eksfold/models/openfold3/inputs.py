"""Complex inputs: ColabFold ``A:B`` FASTA, OpenFold3 query JSON, AlphaFold3 JSON jobs.

Each reader turns a file's text into :class:`~.complex.ComplexTarget` records. A bad target
(or a bad chain in it) raises :class:`~.complex.ComplexInputError` naming the target, chain and
value, unless ``errors`` is a list: then the error is appended and the other targets go on, as
:func:`eksfold.targets.assign_ids` does for single chains.

- ColabFold FASTA: ``>name`` then chains separated by ``:``; every chain is a protein (as in
  ColabFold), ids A, B, C... in order. A record without ``:`` is a one-chain complex.
- OpenFold3 query JSON: ``{"seeds": [...], "queries": {name: {"chains": [...]}}}``.
- AlphaFold3 jobs (``"dialect": "alphafold3"``, one job or a list): ``sequences`` of
  ``protein``/``rna``/``dna``/``ligand`` entries (``ccdCodes`` or ``smiles``), ``modelSeeds``;
  AlphaFold Server jobs (``"dialect": "alphafoldserver"``: ``proteinChain``, ``rnaSequence``,
  ``dnaSequence``, ``ligand: "CCD_ATP"``, ``ion: "MG"``, each with a ``count``).

Features no reader maps yet (residue modifications, bonded atom pairs, user CCDs, inline MSAs
and templates) are refused by name, never dropped.
"""
from __future__ import annotations

import io
import json
import string
from pathlib import Path

from .complex import (PASSTHROUGH, ComplexInputError, ComplexTarget, make_chain,
                      make_target)

CHAIN_LETTERS = string.ascii_uppercase + string.ascii_lowercase + string.digits
_AF3_KINDS = ("protein", "rna", "dna", "ligand")
_AF3_IGNORED_EMPTY = ("unpairedMsa", "pairedMsa", "templates", "unpairedMsaPath",
                      "pairedMsaPath")
_SERVER_KINDS = {"proteinChain": "protein", "rnaSequence": "rna", "dnaSequence": "dna"}


def chain_ids(count: int, start: int = 0) -> list[str]:
    """A, B, ..., Z, a, ..., z, 0..9, then two letters (AA, AB, ...)."""
    out = []
    for i in range(start, start + count):
        if i < len(CHAIN_LETTERS):
            out.append(CHAIN_LETTERS[i])
        else:
            j = i - len(CHAIN_LETTERS)
            out.append(string.ascii_uppercase[j // 26 % 26] + string.ascii_uppercase[j % 26])
    return out


def _collect(make, label: str, errors: list | None):
    try:
        return make()
    except ComplexInputError as exc:
        if errors is None:
            raise
        errors.append(exc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A field of the wrong shape (a number for a list, ...): still name the target.
        err = ComplexInputError(label, None, f"malformed entry: {type(exc).__name__}: {exc}")
        if errors is None:
            raise err from exc
        errors.append(err)
    return None


def _unique(targets: list[ComplexTarget], errors: list | None) -> list[ComplexTarget]:
    out: dict[str, ComplexTarget] = {}
    for t in targets:
        if t.id in out:
            err = ComplexInputError(t.id, None, f"{t.source}: target id {t.id!r} (from "
                                    f"{t.name!r}) already used by {out[t.id].name!r}")
            if errors is None:
                raise err
            errors.append(err)
            continue
        out[t.id] = t
    return list(out.values())


def parse_colabfold_fasta(text: str, source: str = "<fasta>",
                          errors: list | None = None) -> list[ComplexTarget]:
    """``>name`` + ``SEQ_A:SEQ_B[:...]`` records (Biopython's FASTA parser)."""
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    targets = []
    for index, (header, seq) in enumerate(SimpleFastaParser(io.StringIO(text)), 1):
        name = header.split()[0] if header.split() else f"record-{index}"
        where = f"{source} record {index}"

        def make(name=name, header=header, seq=seq, where=where):
            parts = seq.split(":")
            ids = chain_ids(len(parts))
            chains = []
            for cid, part in zip(ids, parts):
                if not part.strip():
                    raise ComplexInputError(name, cid, f"{where}: empty chain (a ':' with "
                                                       "nothing on one side)")
                chains.append(make_chain(name, "protein", [cid], sequence=part,
                                         description=header))
            return make_target(name, chains, source=where)

        targets.append(_collect(make, name, errors))
    return _unique([t for t in targets if t], errors)


def parse_openfold3_json(data: dict, source: str = "<json>",
                         errors: list | None = None) -> list[ComplexTarget]:
    """An OpenFold3 query set; its top-level ``seeds`` apply to every query."""
    if not isinstance(data.get("queries"), dict):
        raise ComplexInputError(source, None, "an OpenFold3 query JSON needs a 'queries' "
                                              "object")
    seeds = data.get("seeds") or ()
    known = {"molecule_type", "chain_ids", "sequence", "smiles", "ccd_codes", "description",
             *PASSTHROUGH}
    targets = []
    for name, query in data["queries"].items():
        def make(name=name, query=query):
            chains = []
            for i, entry in enumerate(query.get("chains") or [], 1):
                label = ",".join(map(str, entry.get("chain_ids") or [])) or f"#{i}"
                extra = sorted(set(entry) - known)
                if extra:
                    raise ComplexInputError(name, label, f"field(s) {', '.join(extra)} not "
                                                         "supported yet")
                chains.append(make_chain(
                    name, entry.get("molecule_type", "?"), entry.get("chain_ids"),
                    sequence=entry.get("sequence"), smiles=entry.get("smiles"),
                    ccd_codes=entry.get("ccd_codes"), description=entry.get("description") or "",
                    files={k: entry[k] for k in PASSTHROUGH if k in entry}))
            unsupported = sorted(set(query) - {"chains", "query_name"})
            if unsupported:
                raise ComplexInputError(name, None, f"query field(s) {', '.join(unsupported)} "
                                                    "not supported yet")
            return make_target(name, chains, seeds, f"{source} query {name!r}")

        targets.append(_collect(make, str(name), errors))
    return _unique([t for t in targets if t], errors)


def _af3_job(job: dict, source: str) -> ComplexTarget:
    name = job.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ComplexInputError(source, None, "AlphaFold3 job without a 'name'")
    for key in ("bondedAtomPairs", "userCCD", "userCCDPath"):
        if job.get(key):
            raise ComplexInputError(name, None, f"'{key}' is not supported yet")
    chains = []
    for i, entry in enumerate(job.get("sequences") or [], 1):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ComplexInputError(name, f"#{i}", "each 'sequences' entry holds one of "
                                                   f"{', '.join(_AF3_KINDS)}")
        (kind, body), = entry.items()
        ids = body.get("id") if isinstance(body, dict) else None
        label = ",".join(ids) if isinstance(ids, list) else str(ids or f"#{i}")
        if kind not in _AF3_KINDS:
            raise ComplexInputError(name, label, f"entry kind {kind!r} is not one of "
                                                 f"{', '.join(_AF3_KINDS)}")
        if body.get("modifications"):
            raise ComplexInputError(name, label, "residue 'modifications' are not supported "
                                                 "yet")
        for key in _AF3_IGNORED_EMPTY:
            if body.get(key):  # null / "" / [] only: inline MSAs and templates are future work
                raise ComplexInputError(name, label, f"'{key}' given inline is not supported "
                                                     "yet (alignments come from the align stage)")
        chains.append(make_chain(name, kind, ids, sequence=body.get("sequence"),
                                 smiles=body.get("smiles"), ccd_codes=body.get("ccdCodes"),
                                 description=body.get("description") or ""))
    seeds = job.get("modelSeeds") or ()
    if isinstance(seeds, int):
        seeds = [seeds]
    return make_target(name, chains, seeds, source)


def _server_job(job: dict, source: str) -> ComplexTarget:
    name = job.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ComplexInputError(source, None, "AlphaFold Server job without a 'name'")
    chains, used = [], 0
    for i, entry in enumerate(job.get("sequences") or [], 1):
        (kind, body), = entry.items()
        count = int(body.get("count", 1))
        if count < 1:
            raise ComplexInputError(name, f"#{i}", f"count {count} is less than 1")
        ids = chain_ids(count, used)
        used += count
        label = ",".join(ids)
        if kind in _SERVER_KINDS:
            if body.get("modifications") or body.get("glycans"):
                raise ComplexInputError(name, label, "modifications/glycans are not supported "
                                                     "yet")
            chains.append(make_chain(name, _SERVER_KINDS[kind], ids,
                                     sequence=body.get("sequence")))
        elif kind in ("ligand", "ion"):
            code = str(body.get(kind, ""))
            code = code[4:] if code.startswith("CCD_") else code
            chains.append(make_chain(name, "ligand", ids, ccd_codes=[code]))
        else:
            raise ComplexInputError(name, label, f"entry kind {kind!r} is not supported")
    seeds = job.get("modelSeeds") or ()
    return make_target(name, chains, [int(s) for s in seeds], source)


def parse_alphafold3_json(data, source: str = "<json>",
                          errors: list | None = None) -> list[ComplexTarget]:
    """One AlphaFold3 job or a list of jobs (AlphaFold3 or AlphaFold Server dialect)."""
    jobs = data if isinstance(data, list) else [data]
    targets = []
    for index, job in enumerate(jobs, 1):
        where = f"{source} job {index}"
        if not isinstance(job, dict):
            targets.append(_collect(lambda: (_ for _ in ()).throw(
                ComplexInputError(where, None, "a job must be a JSON object")), where, errors))
            continue
        dialect = job.get("dialect", "alphafold3" if "version" in job else "alphafoldserver")
        label = str(job.get("name") or where)
        if dialect == "alphafold3":
            targets.append(_collect(lambda: _af3_job(job, where), label, errors))
        elif dialect == "alphafoldserver":
            targets.append(_collect(lambda: _server_job(job, where), label, errors))
        else:
            err = ComplexInputError(label, None, f"unknown dialect {dialect!r}")
            targets.append(_collect(lambda: (_ for _ in ()).throw(err), label, errors))
    return _unique([t for t in targets if t], errors)


def read_complex_text(text: str, source: str = "<input>",
                      errors: list | None = None) -> list[ComplexTarget]:
    """Recognise the format from the content: JSON (OpenFold3 if it has ``queries``, else
    AlphaFold3) or FASTA."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ComplexInputError(source, None, f"not valid JSON: {exc}") from exc
        if isinstance(data, dict) and "queries" in data:
            return parse_openfold3_json(data, source, errors)
        return parse_alphafold3_json(data, source, errors)
    if stripped.startswith(">"):
        return parse_colabfold_fasta(text, source, errors)
    raise ComplexInputError(source, None, "neither JSON nor FASTA (no '{', '[' or '>' at the "
                                          "start)")


def read_complex_file(path: str | Path, errors: list | None = None) -> list[ComplexTarget]:
    path = Path(path)
    return read_complex_text(path.read_text(), str(path), errors)
