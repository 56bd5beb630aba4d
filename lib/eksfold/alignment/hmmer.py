"""jackhmmer (HMMER 3) against a FASTA database, with AlphaFold2's filter settings."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .msa import truncate_stockholm
from .tools import Tool


class Jackhmmer(Tool):
    """jackhmmer (HMMER 3) against a FASTA database, with AlphaFold2's filter settings."""

    name = "jackhmmer"
    output_name = "uniref90_hits.sto"

    def __init__(self, database: str, cpus: int = 2, iterations: int = 1,
                 evalue: float = 1e-4, max_hits: int = 10000, binary: str = "jackhmmer"):
        if not Path(database).is_file():
            raise ConfigError(f"jackhmmer database {database} not found")
        self.database, self.cpus, self.iterations = database, cpus, iterations
        self.evalue, self.max_hits, self.binary = evalue, max_hits, binary

    def command(self, query: Path, out_sto: Path) -> list[str]:
        return [self.binary, "-o", "/dev/null", "-A", str(out_sto), "--noali",
                "--F1", "0.0005", "--F2", "0.00005", "--F3", "0.0000005",
                "--incE", str(self.evalue), "-E", str(self.evalue),
                "--cpu", str(self.cpus), "-N", str(self.iterations), str(query), self.database]

    def evaluate(self, out: Path) -> None:
        super().evaluate(out)
        truncate_stockholm(out, self.max_hits)


