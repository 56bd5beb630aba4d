"""Build the small MMseqs2 databases the tests and small installs use, from the 20,000 UniProt
sequences (tools/build_db.sh): the plain sequence layout and ColabFold's cluster-profile layout.

    python tools/build_mmseqs_db.py data/db/uniprot20k.fasta data/db/mmseqs
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from eksfold.alignment.mmseqs_db import build_colabfold, build_plain


def main(argv: list[str]) -> int:
    fasta = Path(argv[0] if argv else "data/db/uniprot20k.fasta")
    dest = Path(argv[1] if len(argv) > 1 else "data/db/mmseqs")
    name = fasta.stem
    for label, build, prefix in (("plain", build_plain, dest / name),
                                 ("colabfold", build_colabfold, dest / f"{name}_cf")):
        started = time.perf_counter()
        runs = build(fasta, prefix)
        took = f"{time.perf_counter() - started:.1f} s" if runs else "present"
        print(f"{prefix}: {label} layout ({took})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
