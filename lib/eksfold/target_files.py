"""Target files as biologists have them: format detection and streaming readers.

:func:`read_targets` takes a file or a directory and returns validated targets
(:func:`eksfold.targets.assign_ids`). It reads FASTA (any name; ``;`` comment lines skipped;
wrapped, any case, ``*`` stop, spaces), a3m (``.a3m``: the query only, named after the file as
in ColabFold), ColabFold CSV/TSV (``.csv``/``.tsv`` or a first line ``id,sequence``), gzip,
bzip2 or xz copies of these (by magic bytes) and directories of such files (by name, hidden
files skipped); in UTF-8 with or without a byte-order mark, UTF-16 with one, or cp1252 (a line
that is not UTF-8), with LF, CRLF or CR line ends. By content (:mod:`eksfold.target_formats`):
AlphaFold3/OpenFold3 JSON jobs, PDB and mmCIF structures (their protein chains, ``<file>-<chain>``)
and Stockholm or ColabFold a3m alignments (the query); files in other known formats are refused
by name (GenBank, Clustal, FASTQ, HTML, ...). Anything else is a
:class:`~eksfold.errors.TargetError` naming the file, line and problem.

FASTA is read by a streaming line reader here, not ``Bio.SeqIO``, because SeqIO reports no
line numbers for errors; tables use the standard ``csv``. Nothing is read whole: at most
:data:`MAX_RECORDS` records and :data:`MAX_INPUT_BYTES` of text per input, lines in pieces of
:data:`MAX_LINE_CHARS`, and a record over the length limit is counted, not kept.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import itertools
import lzma
import re
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from . import target_formats
from .errors import TargetError
from .targets import MAX_LENGTH, Record, RecordBuilder, Target, assign_ids

MAX_RECORDS = 50_000              # more is a sequence database, not a list of targets
MAX_INPUT_BYTES = 512 * 1024 ** 2  # of text after decompression (~2 min to scan at 4 MiB/s)
MAX_LINE_CHARS = 1024 ** 2        # longer lines are read in pieces (headers may not be longer)
MAX_HEADER_CHARS = 10_000
FILE_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fsa", ".seq", ".pep", ".txt", ".a3m",
                 ".csv", ".tsv", ".tab", ".json", ".pdb", ".ent", ".cif", ".mmcif", ".sto",
                 ".stockholm")
_COMPRESSED = {b"\x1f\x8b": ("gzip", lambda f: gzip.GzipFile(fileobj=f)),
               b"BZh": ("bzip2", bz2.BZ2File), b"\xfd7zXZ\x00": ("xz", lzma.LZMAFile)}
_ARCHIVES = {b"PK\x03\x04": "zip archive"}  # other binaries fail the text check
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # tab, CR, LF and form feed are text
_CONTROL_BYTES = re.compile(_CONTROL.pattern.encode())


def read_targets(path: str | Path, errors: list | None = None,
                 max_length: int | None = None, complexes: bool = False) -> list[Target]:
    """Targets of a file or directory, in file order (directories: by file name).

    ``errors``: collect problems there instead of raising; a file that cannot be read at all
    (binary, truncated) contributes no record. ``max_length``: the longest sequence any memory
    setting can fold (default :data:`eksfold.targets.MAX_LENGTH`). ``complexes``: the preset's
    family folds complexes (``ModelBackend.takes_complexes``): a FASTA record in ColabFold's
    ``A:B`` notation and an AlphaFold3/OpenFold3 job each become one complex target.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                       and _inner_name(p.name).suffix.lower() in FILE_SUFFIXES)
        if not files:
            raise TargetError(str(path), "directory holds no target files (" +
                              " ".join(FILE_SUFFIXES) + ", optionally .gz/.bz2/.xz)")
    elif path.is_file():
        files = [path]
    else:
        raise TargetError(str(path), "target file not found")
    return _read([(lambda f=f: open(f, "rb"), str(f), f.name) for f in files], str(path),
                 errors, max_length, complexes)


def read_text(text: str, source: str = "<fasta>", errors: list | None = None,
              max_length: int | None = None, complexes: bool = False) -> list[Target]:
    """Targets of FASTA (or CSV) text held in memory, as :func:`read_targets` reads files."""
    data = text.encode("utf-8", "surrogateescape")
    return _read([(lambda: io.BytesIO(data), source, source)], source, errors, max_length,
                 complexes)


def read_fasta(path: str | Path, errors: list | None = None) -> list[Target]:
    """Read and validate a target file or directory (any format :func:`read_targets` reads)."""
    return read_targets(path, errors=errors)


def parse_fasta(text: str, source: str = "<fasta>", errors: list | None = None,
                max_length: int | None = None) -> list[Target]:
    """Parse FASTA text into validated targets (see :func:`~eksfold.targets.assign_ids`)."""
    return read_text(text, source, errors=errors, max_length=max_length)


def _read(inputs, label: str, errors: list | None, max_length: int | None,
          complexes: bool = False) -> list[Target]:
    records: list[Record] = []
    for opener, source, name in inputs:
        found: list[Record] = []  # a file counts whole or not at all (binary, truncated)
        try:
            with opener() as raw:
                for rec in _stream_records(raw, source, name, max_length, complexes):
                    if len(records) + len(found) >= MAX_RECORDS:
                        raise TargetError(source, f"more than {MAX_RECORDS} records: this looks "
                                                  "like a sequence database, not a target list")
                    found.append(rec)
        except TargetError as exc:
            if errors is None:
                raise
            errors.append(exc)
        else:
            records += found
    if complexes:   # ColabFold's A:B notation: one complex, chains A, B, ...
        records = [target_formats.colabfold_complex(r)
                   if ":" in r.sequence and r.complex is None and not r.problem else r
                   for r in records]
    targets = assign_ids(records, errors, max_length)
    if not targets and not errors:
        raise TargetError(label, "no target records found")
    return targets


def _inner_name(name: str) -> Path:
    """``x.fasta.gz`` -> ``x.fasta``: the name that tells the format of the contents."""
    p = Path(name)
    return p.with_suffix("") if p.suffix.lower() in (".gz", ".bz2", ".xz") else p


def _stream_records(raw: BinaryIO, source: str, name: str,
                    max_length: int | None, complexes: bool = False) -> Iterator[Record]:
    """Records of one byte stream; any failure to read becomes a TargetError on ``source``."""
    buf = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    magic = buf.peek(8)[:8]
    archive = next((what for sig, what in _ARCHIVES.items() if magic.startswith(sig)), None)
    if archive:
        raise TargetError(source, f"a {archive}, not a text file of sequences (unpack it first)")
    kind = next((k for k in _COMPRESSED if magic.startswith(k)), None)
    stream = io.BufferedReader(_COMPRESSED[kind][1](buf)) if kind else buf
    inner = _inner_name(name)
    fmt, limit = inner.suffix.lower(), max_length or MAX_LENGTH
    try:
        lines = _lines(stream, source)
        if fmt == ".a3m":
            for rec in _fasta(_a3m_query(lines), source, limit):
                yield Record(rec.header, rec.sequence, rec.source, rec.line, rec.length,
                             inner.stem)
            return
        # Recognised by content (target_formats): JSON jobs, structures, Stockholm, a3m, and
        # the formats refused by name; FASTA and tables below.
        before, first = [], next(lines, None)
        while first is not None and not first[1].strip():
            before.append(first)
            first = next(lines, None)
        kind = target_formats.sniff(first[1]) if first else None
        lines = itertools.chain(before, [first] if first else [], lines)
        if kind == "a3m":
            for rec in _fasta(_a3m_query(lines), source, limit):
                yield Record(rec.header, rec.sequence, rec.source, rec.line, rec.length,
                             inner.stem)
            return
        if kind in target_formats.readers():
            extra = {"complexes": True} if complexes and kind == "json" else {}
            yield from target_formats.readers()[kind](_joined(lines), source, inner.stem,
                                                      **extra)
            return
        if kind is not None:
            raise target_formats.refusal(source, kind)
        head = first[1].lstrip().lower() if first else ""
        if fmt in (".csv", ".tsv", ".tab") or re.match(r"id\s*[,\t]", head):
            tab = fmt in (".tsv", ".tab") or (fmt != ".csv" and "\t" in head)
            yield from _table(lines, source, "\t" if tab else ",", limit)
        else:
            yield from _fasta(lines, source, limit)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, UnicodeError) as exc:
        what = f"{_COMPRESSED[kind][0]} data" if kind else "file"
        raise TargetError(source, f"cannot read the {what}: {exc}") from None


def _lines(stream, source: str) -> Iterator[tuple[int, str, bool]]:
    """``(line number, text without line end, continued)``; ``continued`` marks later pieces
    of a line longer than MAX_LINE_CHARS."""
    head = stream.peek(8192)[:8192]
    utf16 = head[:2] in (b"\xff\xfe", b"\xfe\xff")
    if not utf16:  # as git and file(1) decide: control bytes near the start mean binary
        before = _CONTROL_BYTES.split(head, maxsplit=1)[0]
        _check_text(head.decode("latin-1"), source,
                    before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1)
    # latin-1 maps each byte to one character, so universal newlines (CR, LF, CRLF) work
    # on raw bytes and each line is decoded afterwards: UTF-8 if it is, else cp1252.
    text = io.TextIOWrapper(stream, encoding="utf-16" if utf16 else "latin-1", newline=None)
    lineno = total = 0
    continued = False
    while piece := text.readline(MAX_LINE_CHARS):
        total += len(piece)
        if total > MAX_INPUT_BYTES:
            raise TargetError(source, f"more than {MAX_INPUT_BYTES / 1024 ** 2:g} MiB of text: "
                                      "split the input")
        complete, lineno = piece.endswith("\n"), lineno + (not continued)
        piece = piece.rstrip("\n")
        if not utf16:
            piece = _decode(piece.encode("latin-1"), source, lineno)
        if lineno == 1 and not continued:
            piece = piece.lstrip("\ufeff")  # UTF-8 byte-order mark
        _check_text(piece, source, lineno)
        yield lineno, piece, continued
        continued = not complete


def _joined(lines) -> str:
    """The text of ``lines`` (pieces of long lines rejoined), for whole-document formats."""
    out = []
    for _, text, continued in lines:
        out.append(text if continued or not out else "\n" + text)
    return "".join(out) + "\n"


def _check_text(text: str, source: str, lineno: int) -> None:
    bad = _CONTROL.search(text)
    if bad:
        raise TargetError(source, f"line {lineno}: non-text byte {ord(bad.group()):#04x}: "
                                  "not a text file of sequences (binary or corrupt?)")


def _decode(data: bytes, source: str, lineno: int) -> str:
    for encoding in ("utf-8", "cp1252"):  # cp1252: Windows/Latin-1 editors, accented headers
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    raise TargetError(source, f"line {lineno}: bytes that are neither UTF-8 nor Latin-1 text "
                              "(binary file?)")


def _fasta(lines, source: str, limit: int) -> Iterator[Record]:
    current, in_header = None, False
    for lineno, text, continued in lines:
        if continued and current is not None:
            if in_header:  # a header longer than one piece
                current.header += text
            else:
                current.add(text)
        elif not (stripped := text.strip()) or stripped.startswith(";"):
            in_header = False
        elif stripped.startswith(">"):
            if current is not None:
                yield current.record()
            current, in_header = RecordBuilder(stripped[1:], source, lineno, limit), True
        elif current is None:
            raise TargetError(source, f"line {lineno}: sequence data before the first '>' "
                                      "header: not FASTA (a bare sequence? FASTA needs a "
                                      "'>name' line before each sequence)")
        else:
            current.add(text)
            in_header = False
        if current is not None and len(current.header) > MAX_HEADER_CHARS:
            raise TargetError(source, f"line {current.line}: header longer than "
                                      f"{MAX_HEADER_CHARS} characters")
    if current is not None:
        yield current.record()


def _a3m_query(lines):
    """The lines of an a3m's first record (the query); ColabFold's ``#`` first line skipped."""
    started = False
    for lineno, text, continued in lines:
        if not started and (text.startswith("#") or not text.strip()):
            continue
        if started and text.startswith(">") and not continued:
            return  # the hits that follow are no targets
        started = True
        yield lineno, text, continued


def _table(lines, source: str, delimiter: str, limit: int) -> Iterator[Record]:
    """ColabFold's ``id,sequence`` table (other columns ignored)."""
    numbers = [0]

    def rows():
        for lineno, text, continued in lines:
            if continued:
                raise TargetError(source, f"line {lineno}: longer than {MAX_LINE_CHARS} "
                                          "characters")
            numbers.append(lineno)
            yield text + "\n"
    reader = csv.reader(rows(), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if "id" not in header or "sequence" not in header:
            raise TargetError(source, f"line 1: a table needs columns 'id' and 'sequence' "
                                      f"(ColabFold format); found {header[:6]}")
        i_id, i_seq = header.index("id"), header.index("sequence")
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) <= max(i_id, i_seq):
                yield Record(row[0] if i_id == 0 else "", "", source, numbers[-1],
                             problem=f"{len(row)} columns, expected {len(header)}")
                continue
            build = RecordBuilder(row[i_id].strip(), source, numbers[-1], limit)
            build.add(row[i_seq])
            problem = ("':' separates the chains of a complex, which eksfold does not fold: "
                       "one chain per row") if ":" in row[i_seq] else None
            yield build.record(name=row[i_id].strip(), problem=problem)
    except csv.Error as exc:
        raise TargetError(source, f"line {numbers[-1]}: {exc}") from None
