"""Target files as biologists have them: format detection and streaming readers.

:func:`read_targets` takes a file or a directory of files and returns validated targets
(:func:`eksfold.targets.assign_ids`). It reads

- FASTA (any name; ``;`` comment lines skipped), multi-line, any case, ``*`` stop, spaces;
- a3m (``.a3m``): only the first record, the query; its id is the file name, as in ColabFold;
- ColabFold-style CSV/TSV (``.csv``, ``.tsv``, or a first line ``id,sequence``/``id<TAB>...``);
- gzip, bzip2 or xz compressed copies of these (recognised by their magic bytes);
- a directory: every such file in it (not recursive, hidden files skipped), by name;

in UTF-8 with or without a byte-order mark, UTF-16 with a mark, or a Windows/Latin-1 code
page (a line that is not UTF-8 is read as cp1252), with LF, CRLF or CR-only line ends. Anything
else is refused with a :class:`~eksfold.errors.TargetError` naming the file, line and problem.

FASTA has no maintained parser that reports line numbers (``Bio.SeqIO`` gives records, not
where they are, and reads lines a biologist's editor writes differently), so this module streams
lines itself; CSV uses the standard library's ``csv``. Files are streamed, never read whole:
at most :data:`MAX_RECORDS` records and :data:`MAX_INPUT_BYTES` of (decompressed) text per
input, lines handled in pieces of :data:`MAX_LINE_CHARS`, and a record longer than the length
limit is counted, not kept.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import TargetError
from .targets import MAX_LENGTH, Record, Target, assign_ids

MAX_RECORDS = 50_000              # more is a sequence database, not a list of targets
MAX_INPUT_BYTES = 2 * 1024 ** 3   # of text, after decompression
MAX_LINE_CHARS = 1024 ** 2        # longer lines are read in pieces (headers may not be longer)
MAX_HEADER_CHARS = 10_000
FILE_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fsa", ".seq", ".pep", ".txt", ".a3m",
                 ".csv", ".tsv", ".tab")
_COMPRESSED = {b"\x1f\x8b": ("gzip", lambda f: gzip.GzipFile(fileobj=f)),
               b"BZh": ("bzip2", bz2.BZ2File), b"\xfd7zXZ\x00": ("xz", lzma.LZMAFile)}
_ARCHIVES = {b"PK\x03\x04": "zip archive", b"\x00\x00\x00\x0cjP": "image"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # tab, CR, LF and form feed are text


def read_targets(path: str | Path, errors: list | None = None,
                 max_length: int | None = None) -> list[Target]:
    """Targets of a file or directory, in file order (directories: by file name).

    ``errors``: collect per-record problems there instead of raising (problems of a whole file,
    such as binary content, are raised). ``max_length``: the longest sequence any memory
    setting can fold (default :data:`eksfold.targets.MAX_LENGTH`).
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
    records: list[Record] = []
    for f in files:
        # a file is read whole or not at all: a binary or truncated one contributes nothing
        try:
            records += _limited(_file_records(f, max_length), str(f), MAX_RECORDS - len(records))
        except TargetError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return _finish(assign_ids(records, errors, max_length), errors, str(path))


def read_text(text: str, source: str = "<fasta>", errors: list | None = None,
              max_length: int | None = None) -> list[Target]:
    """Targets of FASTA (or CSV) text held in memory, as :func:`read_targets` reads files."""
    data = io.BytesIO(text.encode("utf-8", "surrogateescape"))
    records = list(_limited(_stream_records(data, source, source, max_length), source,
                            MAX_RECORDS))
    return _finish(assign_ids(records, errors, max_length), errors, source)


def _finish(targets: list[Target], errors: list | None, source: str) -> list[Target]:
    if not targets and not errors:
        raise TargetError(source, "no target records found")
    return targets


def _limited(records: Iterator[Record], source: str, budget: int) -> Iterator[Record]:
    for n, rec in enumerate(records, 1):
        if n > budget:
            raise TargetError(source, f"more than {MAX_RECORDS} records: this looks like a "
                                      "sequence database, not a list of targets")
        yield rec


def _inner_name(name: str) -> Path:
    """``x.fasta.gz`` -> ``x.fasta``: the name that tells the format of the contents."""
    p = Path(name)
    return p.with_suffix("") if p.suffix.lower() in (".gz", ".bz2", ".xz") else p


def _file_records(path: Path, max_length: int | None) -> Iterator[Record]:
    with open(path, "rb") as raw:
        yield from _stream_records(raw, str(path), path.name, max_length)


def _stream_records(raw: BinaryIO, source: str, name: str,
                    max_length: int | None) -> Iterator[Record]:
    """Records of one byte stream; every failure to read becomes a TargetError on ``source``."""
    buf = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw
    magic = buf.peek(8)[:8]
    for sig, what in _ARCHIVES.items():
        if magic.startswith(sig):
            raise TargetError(source, f"a {what}, not a text file of sequences (unpack it first)")
    stream, kind = buf, None
    for sig, (kind, opener) in _COMPRESSED.items():
        if magic.startswith(sig):
            stream = io.BufferedReader(opener(buf))
            break
    else:
        kind = None
    inner = _inner_name(name)
    try:
        lines = _lines(stream, source)
        fmt = inner.suffix.lower()
        if fmt == ".a3m":
            yield from _a3m(lines, source, inner.stem, max_length)
            return
        first = next(lines, None)
        if first is None:
            return
        lines = _chain(first, lines)
        head = first[1].lstrip().lower()
        if fmt in (".csv", ".tsv", ".tab") or re.match(r"id\s*[,\t]", head):
            delim = "," if fmt == ".csv" or (fmt not in (".tsv", ".tab") and "\t" not in head) \
                else "\t"
            yield from _table(lines, source, delim, max_length)
        else:
            yield from _fasta(lines, source, max_length)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, UnicodeError) as exc:
        what = f"{kind} data" if kind else "file"
        raise TargetError(source, f"cannot read the {what}: {exc}") from None


def _chain(first, rest):
    yield first
    yield from rest


def _lines(stream: BinaryIO, source: str) -> Iterator[tuple[int, str, bool]]:
    """``(line number, text without line end, continued)``; ``continued`` marks later pieces
    of a line longer than MAX_LINE_CHARS."""
    head = stream.peek(8192)[:8192]
    utf16 = head[:2] in (b"\xff\xfe", b"\xfe\xff")
    bad = None if utf16 else _CONTROL.search(head.decode("latin-1"))
    if bad:  # as git and file(1) decide: control bytes near the start mean binary
        before = head[:bad.start()]
        line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
        raise TargetError(source, f"line {line}: non-text byte "
                                  f"{ord(bad.group()):#04x}: not a text file of sequences "
                                  "(binary or corrupt?)")
    # latin-1 maps each byte to one character, so universal newlines (CR, LF, CRLF) work
    # on raw bytes and each line is decoded afterwards: UTF-8 if it is, else cp1252.
    text = io.TextIOWrapper(stream, encoding="utf-16" if utf16 else "latin-1", newline=None)
    lineno, total, continued = 0, 0, False
    while True:
        piece = text.readline(MAX_LINE_CHARS)
        if not piece:
            return
        total += len(piece)
        if total > MAX_INPUT_BYTES:
            raise TargetError(source, f"more than {MAX_INPUT_BYTES // 1024 ** 3} GiB of text: "
                                      "split the input")
        complete = piece.endswith("\n")
        lineno += 0 if continued else 1
        piece = piece.rstrip("\n")
        if not utf16:
            piece = _decode(piece.encode("latin-1"), source, lineno)
        if lineno == 1 and not continued:
            piece = piece.lstrip("\ufeff")  # UTF-8 byte-order mark
        bad = _CONTROL.search(piece)
        if bad:
            raise TargetError(source, f"line {lineno}: non-text byte {ord(bad.group()):#04x}: "
                                      "not a text file of sequences (binary or corrupt?)")
        yield lineno, piece, continued
        continued = not complete


def _decode(data: bytes, source: str, lineno: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")  # Windows/Latin-1 editors; headers with accents
    except UnicodeDecodeError:
        raise TargetError(source, f"line {lineno}: bytes that are neither UTF-8 nor "
                                  "Latin-1 text (binary file?)") from None


class _Builder:
    """One record's header and sequence, keeping at most ``limit + 1`` characters."""

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
        # the final '*' is not a residue: do not count it against the limit
        length = self.seen if self.seen > self.limit + 1 else None
        return Record(self.header.strip(), "".join(self.parts), self.source, self.line, length, name,
                      problem)


def _check_header(header: str, source: str, lineno: int) -> None:
    if len(header) > MAX_HEADER_CHARS:
        raise TargetError(source, f"line {lineno}: header longer than {MAX_HEADER_CHARS} "
                                  "characters")


def _fasta(lines, source: str, max_length: int | None) -> Iterator[Record]:
    limit = max_length or MAX_LENGTH
    current, in_header = None, False
    for lineno, text, continued in lines:
        if continued and current is not None:
            if in_header:  # a header longer than one piece
                current.header += text
                _check_header(current.header, source, lineno)
            else:
                current.add(text)
            continue
        in_header = False
        stripped = text.strip()
        if not stripped or stripped.startswith(";"):
            continue
        if stripped.startswith(">"):
            if current is not None:
                yield current.record()
            _check_header(stripped, source, lineno)
            current, in_header = _Builder(stripped[1:], source, lineno, limit), True
        elif current is None:
            raise TargetError(source, f"line {lineno}: sequence data before the first '>' "
                                      "header (FASTA needs a '>name' line before each sequence)")
        else:
            current.add(text)
    if current is not None:
        yield current.record()


def _a3m(lines, source: str, name: str, max_length: int | None) -> Iterator[Record]:
    """The query (first record) of an a3m; ColabFold's ``#`` first line is skipped."""
    def query_lines():
        started = False
        for lineno, text, continued in lines:
            if not started and (text.startswith("#") or not text.strip()):
                continue
            if started and text.startswith(">") and not continued:
                return  # the hits that follow are no targets
            started = True
            yield lineno, text, continued
    for rec in _fasta(query_lines(), source, max_length):
        yield Record(rec.header, rec.sequence, rec.source, rec.line, rec.length, name)


def _table(lines, source: str, delimiter: str, max_length: int | None) -> Iterator[Record]:
    """ColabFold's ``id,sequence`` table (other columns ignored)."""
    limit = max_length or MAX_LENGTH
    numbers: list[int] = []

    def rows():
        for lineno, text, continued in lines:
            if continued:
                raise TargetError(source, f"line {lineno}: line longer than {MAX_LINE_CHARS} "
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
            line = numbers[-1] if numbers else 0
            if not any(c.strip() for c in row):
                continue
            if len(row) <= max(i_id, i_seq):
                yield Record(row[0] if i_id == 0 else "", "", source, line, None, None,
                             f"{len(row)} columns, expected {len(header)}")
                continue
            rid, seq = row[i_id].strip(), row[i_seq]
            build = _Builder(rid, source, line, limit)
            build.add(seq)
            problem = ("':' separates the chains of a complex, which eksfold does not fold: "
                       "one chain per row") if ":" in seq else None
            yield build.record(name=rid, problem=problem)
    except csv.Error as exc:
        raise TargetError(source, f"line {numbers[-1] if numbers else 0}: {exc}") from None
