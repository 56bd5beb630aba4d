"""jackhmmer vs MMseqs2 on the same real queries against databases of growing size.

The real 20,000 UniProt sequences are padded with residue-shuffled copies of themselves (same
composition and length distribution, no homology) to each size. Per size: jackhmmer per query
(AlphaFold2's settings, one iteration) and one MMseqs2 batch of all queries (per-query time =
batch time / queries). Per-query time vs size is fitted as a power law per tool and extrapolated
to UniRef90's size. Sensitivity on the real sequences: the fraction of jackhmmer's hits at
E <= 1e-3 that appear in MMseqs2's MSA, and the MSA depth and effective sequence count (Neff at
80 % identity) of both.
"""
from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

from eksfold.bench.align import load_comparison  # noqa: F401  (the committed figures' reader)
from eksfold.bench.common import fit_exponent

UNIREF90_SIZE = 150_000_000
EVALUE = 1e-3
EXAMPLES = "/usr/share/doc/mmseqs2/example-data/QUERY.fasta.gz"   # mmseqs2-examples


def pick_queries(cameo_fasta: str, query_fasta_gz: str, n: int, lengths=(80, 400)) -> dict[str, str]:
    """``n`` real queries, half CAMEO-92 targets and half mmseqs2-examples queries, spread over
    ``lengths`` (deterministic: evenly spaced in length order)."""
    import gzip

    from Bio import SeqIO

    def spread(records, k):
        pool = sorted((r for r in records if lengths[0] <= len(r.seq) <= lengths[1]),
                      key=lambda r: (len(r.seq), r.id))
        step = max(len(pool) // max(k, 1), 1)
        return pool[::step][:k]

    with gzip.open(query_fasta_gz, "rt") as fh:
        examples = spread(list(SeqIO.parse(fh, "fasta")), n - n // 2)
    cameo = spread(list(SeqIO.parse(cameo_fasta, "fasta")), n // 2)
    # Interleaved, so a capped subset (jackhmmer on the largest databases) has both kinds.
    named = [[(f"cameo{i}", r) for i, r in enumerate(cameo)],
             [(f"example{i}", r) for i, r in enumerate(examples)]]
    order = [pair for k in range(n) for group in named if k < len(group) for pair in [group[k]]]
    return {name: str(r.seq) for name, r in order}


def write_padded(real_fasta: str, out_fasta: Path, sizes: list[int], seed: int = 0,
                 chunk: int = 100_000) -> dict[int, Path]:
    """FASTA files of each size: the real sequences, then shuffled copies (``shufN`` names).

    The largest file is written once; smaller ones are its prefixes.
    """
    from Bio import SeqIO

    real = [(rec.description, str(rec.seq).encode()) for rec in SeqIO.parse(real_fasta, "fasta")]
    total, rng = max(sizes), np.random.default_rng(seed)
    offsets = {}
    with open(out_fasta, "wb") as fh:
        for i, (desc, seq) in enumerate(real):
            if i in sizes:
                offsets[i] = fh.tell()
            fh.write(b">" + desc.encode() + b"\n" + seq + b"\n")
        done = len(real)
        while done < total:
            idx = np.arange(done, min(done + chunk, total)) % len(real)
            seqs = [real[j][1] for j in idx]
            lens = np.fromiter((len(s) for s in seqs), int, len(seqs))
            flat = np.frombuffer(b"".join(seqs), dtype=np.uint8)
            # One argsort shuffles every sequence in the chunk within itself.
            order = np.argsort(np.repeat(np.arange(len(seqs)), lens) + rng.random(flat.size))
            shuffled, ends = flat[order].tobytes(), np.cumsum(lens)
            parts = []
            for k, (start, end) in enumerate(zip(ends - lens, ends)):
                if done + k in sizes:
                    offsets[done + k] = fh.tell() + sum(map(len, parts))
                parts.append(b">shuf%d\n" % (done + k) + shuffled[start:end] + b"\n")
            fh.write(b"".join(parts))
            done += len(seqs)
        offsets[total] = fh.tell()
    files = {}
    for size in sorted(sizes):
        path = out_fasta.with_name(f"{out_fasta.stem}_{size}.fasta")
        if size == total:
            out_fasta.replace(path)
        else:
            with open(out_fasta, "rb") as src:
                path.write_bytes(src.read(offsets[size]))
        files[size] = path
    return files


def accession(name: str) -> str:
    """The id both tools agree on: UniProt's accession from ``tr|ACC|NAME``, else the name."""
    parts = name.split("|")
    return parts[1] if len(parts) >= 3 else name.split()[0]


def neff(rows: list[str], identity: float = 0.8) -> float:
    """Effective sequence count: sum over rows of 1 / (rows >= ``identity`` identical to it),
    identity measured over the row's aligned (non-gap) query columns."""
    if not rows:
        return 0.0
    msa = np.frombuffer("".join(rows).encode(), dtype=np.uint8).reshape(len(rows), -1)
    gap = ord("-")
    aligned = np.maximum((msa != gap).sum(1), 1)
    counts = np.zeros(len(rows))
    for start in range(0, len(rows), 256):   # blocks bound memory for deep MSAs
        block = msa[start:start + 256]
        same = ((block[:, None, :] == msa[None, :, :]) & (block[:, None, :] != gap)).sum(-1)
        counts[start:start + 256] = (same / aligned[start:start + 256, None] >= identity).sum(1)
    return float((1.0 / counts).sum())


def jackhmmer_query(db: str, name: str, seq: str, work: Path, cpus: int) -> dict:
    """One jackhmmer search; its hits at E <= 1e-3 (full sequence) from the table output."""
    from Bio import SearchIO

    from eksfold.alignment.hmmer import Jackhmmer
    from eksfold.alignment.tools import run_tool

    query, sto, tbl = work / f"{name}.fasta", work / f"{name}.sto", work / f"{name}.tbl"
    query.write_text(f">{name}\n{seq}\n")
    jh = Jackhmmer(db, cpus=cpus, iterations=1, evalue=EVALUE, max_hits=10**6)
    cmd = jh.command(query, sto)
    run = run_tool("jackhmmer", cmd[:1] + ["--tblout", str(tbl)] + cmd[1:])
    hits = {accession(h.id) for res in SearchIO.parse(str(tbl), "hmmer3-tab") for h in res
            if h.evalue <= EVALUE}
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mb": run.peak_rss_mb,
            "hits": hits, "sto": sto}


def a3m_rows(path: Path) -> list[tuple[str, float, str]]:
    """(accession, E-value, aligned row) per hit of an MMseqs2 A3M (query excluded)."""
    from eksfold.models.openfold2.compat import prepare
    prepare()
    from openfold.data import parsers

    text = path.read_text()
    seqs, _ = parsers.parse_a3m(text)
    headers = [ln[1:].split("\t") for ln in text.splitlines() if ln.startswith(">")]
    return [(accession(h[0]), float(h[3]) if len(h) > 3 else math.nan, s)
            for h, s in zip(headers[1:], seqs[1:])]


def sto_rows(path: Path) -> list[str]:
    """Aligned rows (query columns) of a jackhmmer Stockholm file, query excluded."""
    from eksfold.models.openfold2.compat import prepare
    prepare()
    from openfold.data import parsers

    parsed = parsers.parse_stockholm(path.read_text())
    return list(parsed[0])[1:]


def fit_and_extrapolate(sizes, times, to: int = UNIREF90_SIZE) -> dict:
    """Power law ``t = c * size**k`` through the measured points, and its value at ``to``."""
    pts = [(s, t) for s, t in zip(sizes, times) if t and t > 0]
    k = fit_exponent([p[0] for p in pts], [p[1] for p in pts])
    if k is None:
        return {"exponent": None, "extrapolated_s": None}
    logc = np.mean([math.log(t) - k * math.log(s) for s, t in pts])
    out = {"exponent": round(k, 3), "coefficient": math.exp(logc),
           "extrapolated_s": round(math.exp(logc) * to ** k, 2)}
    if len(pts) >= 3:
        # The slope between the two largest sizes: fixed costs weigh less there, so this is
        # the more conservative extrapolation when the all-points fit bends.
        (s1, t1), (s2, t2) = sorted(pts)[-2:]
        k2 = math.log(t2 / t1) / math.log(s2 / s1)
        out.update(last_two_exponent=round(k2, 3), last_two_extrapolated_s=round(t2 * (to / s2) ** k2, 2))
    return out


def timed(fn, *args, **kw):
    started = time.perf_counter()
    out = fn(*args, **kw)
    return out, round(time.perf_counter() - started, 2)


def comparison_queries(df, targets_fasta: str) -> dict[str, str]:
    """The queries a committed comparison ``df`` was measured with, picked again (MMseqs2
    searched all of them at every size)."""
    return pick_queries(targets_fasta, EXAMPLES, df[df.tool == "mmseqs2"]["query"].nunique())


def warm_up(search, queries: dict[str, str], scratch) -> None:
    """Before a measured MMseqs2 search: its whole k-mer index read into the page cache (a
    one-query search touches only the pages its k-mers hit), then one unmeasured search of
    the first query, as a server that keeps the index in memory would run it."""
    from eksfold.bench.common import page_in

    page_in(f"{search.database}.idx")
    first = dict(list(queries.items())[:1])
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        search.search(first, {n: Path(tmp) / n for n in first}, work=tmp)


def indexed_prefix(scratch_dir, size: int) -> Path:
    """The padded MMseqs2 database of ``size`` sequences in ``scratch_dir``, which must have
    its k-mer index (built by ``python -m benchmarks.align``)."""
    prefix = Path(scratch_dir) / f"mm_{size}"
    if not Path(f"{prefix}.idx").exists():
        raise FileNotFoundError(f"{prefix}.idx: run `python -m benchmarks.align` first")
    return prefix
