"""hhblits (HH-suite 3) against one or more HH-suite databases, writing A3M."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .tools import Tool


class HHblits(Tool):
    """hhblits (HH-suite 3) against one or more HH-suite databases, writing A3M."""

    name = "hhblits"
    output_name = "bfd_uniclust_hits.a3m"

    def __init__(self, databases: list[str], cpus: int = 2, iterations: int = 3,
                 binary: str = "hhblits"):
        for db in databases:
            if not Path(db + "_cs219.ffdata").exists():
                raise ConfigError(f"hhblits database {db} not found (expected {db}_cs219.ffdata)")
        self.databases, self.cpus, self.iterations, self.binary = databases, cpus, iterations, binary

    def command(self, query: Path, out_a3m: Path) -> list[str]:
        cmd = [self.binary, "-i", str(query), "-cpu", str(self.cpus), "-oa3m", str(out_a3m),
               "-o", "/dev/null", "-n", str(self.iterations), "-e", "0.001", "-maxseq", "1000000",
               "-realign_max", "100000", "-maxfilt", "100000", "-min_prefilter_hits", "1000"]
        for db in self.databases:
            cmd += ["-d", db]
        return cmd
