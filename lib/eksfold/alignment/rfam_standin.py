"""A small real RNA database for the ``rfam`` role: Rfam seed alignments, unaligned.

The Debian package ``infernal`` ships real Rfam seed alignments in its test suite
(``/usr/share/doc/infernal/examples/testsuite/``: tRNA RF00005, Vault RF00006, snR75 RF01185,
Plant_SRP RF01855, PK-HAV RF01096, U1/U2/U3 RF00003/RF00004/RF00012). Each sequence becomes one
FASTA record under its ENA name (``AAVX01043580.1/1126-1028``, as Rfam names seed members),
gaps removed, upper case, exact duplicates dropped (the families appear in more than one file).
Rfam is CC0 (public domain). AlphaFold3 searches the real Rfam (``rfam_14_9_clust_seq_id_90_cov_80_rep_seq.fasta``)
the same way (:mod:`eksfold.alignment.nhmmer`); this stand-in gives tests and the demo real
homologues of those families within a second.

    python -m eksfold.alignment.rfam_standin OUT.fasta [SOURCE_DIR]

Biopython's Stockholm reader parses the alignments (several per file).
"""
from __future__ import annotations

import sys
from pathlib import Path

SOURCE_DIR = Path("/usr/share/doc/infernal/examples/testsuite")
# the files that are Rfam seed alignments (each family has a "#=GF AC RFnnnnn" line)
RFAM_FILES = ("4.sto", "tRNA.sto", "Vault.sto", "snR75.sto", "Plant_SRP.sto", "PK-HAV.sto",
              "3.4.12.rf.stk")
GAPS = str.maketrans("", "", "-._~")


def standin_records(source: Path = SOURCE_DIR) -> list[tuple[str, str]]:
    """``(name, sequence)`` of every distinct seed sequence, in file order."""
    from Bio import AlignIO

    missing = [name for name in RFAM_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"Rfam seed alignments {', '.join(missing)} not in {source}: "
                                "install the Debian package infernal (make setup)")
    seen: set[str] = set()
    records = []
    for name in RFAM_FILES:
        for alignment in AlignIO.parse(str(source / name), "stockholm"):
            for row in alignment:
                seq = str(row.seq).translate(GAPS).upper().replace("T", "U")
                if seq and seq not in seen:
                    seen.add(seq)
                    records.append((row.id, seq))
    return records


def build(out: str | Path, source: Path = SOURCE_DIR) -> int:
    """Write the stand-in FASTA (atomically); the number of sequences."""
    records = standin_records(Path(source))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w") as fh:
        for name, seq in records:
            fh.write(f">{name}\n")
            for start in range(0, len(seq), 80):
                fh.write(seq[start:start + 80] + "\n")
    tmp.replace(out)
    return len(records)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not 1 <= len(argv) <= 2:
        print(__doc__.split("\n\n")[-2].strip(), file=sys.stderr)
        return 2
    count = build(argv[0], Path(argv[1]) if len(argv) > 1 else SOURCE_DIR)
    print(f"rfam stand-in: {count} RNA sequences -> {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
