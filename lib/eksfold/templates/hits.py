"""Template hit files: reading them into OpenFold's ``TemplateHit`` and summarising the best.

``pdb70_hits.hhr`` (HHsearch) is read with OpenFold's own ``parsers.parse_hhr``, as its data
pipeline reads it. ``hmm_output.sto`` (hmmsearch ``-A``) has no reader in OpenFold 0.0.1 (its
hmmsearch route arrived with multimer support later), so it is read with Biopython's Stockholm
parser and turned into the same ``TemplateHit`` the way AlphaFold 2.3 does: the HMM was built
with one match state per query residue (:mod:`.search`), so match column *i* is query residue
*i*; residues in insert columns belong to the template segment but are not aligned. hmmsearch
has no HHsearch-style summed probability: ``sum_probs`` is 0 for every hit, which keeps
hmmsearch's own ranking through OpenFold's (stable) sort by ``sum_probs``.

A file that cannot be read is a :class:`~eksfold.errors.TargetError` naming the target, the
file and the problem.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import TargetError

HHR = "pdb70_hits.hhr"
HMM_STO = "hmm_output.sto"
# files a template route writes; OpenFold 0.0.1 would read a .sto as an MSA, so they are
# never handed to its data pipeline as alignments (see .featurize)
HIT_FILES = (HHR, HMM_STO)


def hit_files(alignment_dir: str | Path, route: str) -> list[Path]:
    """The hit files a route reads: every ``*.hhr`` (as OpenFold does) or ``hmm_output.sto``."""
    folder = Path(alignment_dir)
    if route == "hhsearch":
        return sorted(folder.glob("*.hhr"))
    path = folder / HMM_STO
    return [path] if path.is_file() else []


def read_hits(target_id: str, query: str, path: Path) -> list:
    """The hits of one file as OpenFold ``TemplateHit`` objects (TargetError if malformed)."""
    text = path.read_text(errors="replace")
    try:
        hits = _read_hhr(text) if path.suffix == ".hhr" else _read_hmmsearch(text, query)
    except TargetError:
        raise
    except Exception as exc:   # parse_hhr raises RuntimeError/ValueError/AssertionError
        raise TargetError(target_id, f"template hits {path.name} are malformed: "
                                     f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    if text.strip() and path.suffix == ".hhr" and not hits and "No Hit" not in text:
        raise TargetError(target_id, f"template hits {path.name} are malformed: not HHsearch "
                                     "output (no hit table)")
    return hits


def read_all(target_id: str, query: str, alignment_dir: str | Path, route: str) -> dict:
    """``{file name: [TemplateHit]}`` for a route, as OpenFold's pipeline groups them."""
    return {p.name: read_hits(target_id, query, p) for p in hit_files(alignment_dir, route)}


def _read_hhr(text: str) -> list:
    from openfold.data import parsers

    return list(parsers.parse_hhr(text))


def _read_hmmsearch(text: str, query: str) -> list:
    import io

    from Bio import AlignIO
    from openfold.data import parsers

    if not any(line.strip() and not line.startswith(("#", "//")) for line in text.splitlines()):
        return []                           # no included hits
    alignment = AlignIO.read(io.StringIO(text), "stockholm")
    rf = alignment.column_annotations.get("reference_annotation")
    if not rf:
        raise ValueError("no '#=GC RF' line: not hmmsearch -A output")
    width = sum(c not in ".-" for c in rf)
    if width != len(query):
        raise ValueError(f"the profile has {width} match states, the query {len(query)} "
                         "residues (hits of another query?)")
    hits = []
    for rank, record in enumerate(alignment, 1):
        if "mol:protein" not in record.description:
            continue                        # pdb_seqres also lists nucleic acid chains
        start = record.annotations.get("start", 1)
        counter, seq, indices = start - 1, [], []
        for column, residue in zip(rf, str(record.seq)):
            matched = column not in ".-"
            if residue in "-.":
                if matched:
                    seq.append("-")
                    indices.append(-1)
                continue
            seq.append(residue.upper())
            if matched:
                indices.append(counter)
            counter += 1
        name = record.annotations.get("accession") or record.id.split("/")[0]
        hits.append(parsers.TemplateHit(
            index=rank, name=name, aligned_cols=sum(i >= 0 for i in indices), sum_probs=0.0,
            query=query, hit_sequence="".join(seq), indices_query=list(range(len(query))),
            indices_hit=indices))
    return hits


def describe(hit, query: str) -> dict:
    """Identity and coverage of a hit over the query (the summary's top-hit columns), from the
    query-to-template residue mapping OpenFold's featuriser builds for it."""
    from openfold.data import templates

    mapping = templates._build_query_to_hit_index_mapping(
        hit.query, hit.hit_sequence, hit.indices_hit, hit.indices_query, query)
    segment = hit.hit_sequence.replace("-", "")
    same = sum(1 for q, t in mapping.items() if t < len(segment) and query[q] == segment[t])
    return {"id": hit.name.split()[0],
            "identity": round(same / len(mapping), 3) if mapping else 0.0,
            "coverage": round(len(mapping) / len(query), 3),
            "aligned_cols": hit.aligned_cols, "sum_probs": hit.sum_probs}
