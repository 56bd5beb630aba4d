"""``eksfold verify RUN``: does every committed output still match what its unit recorded?

Each unit record lists its output files with their SHA-256 digests (written when the unit was
committed) and the manifest holds the digest of the run's target list. Verification reads
every output back from the run root (local or ``s3://``) and reports files that are missing,
changed, or present without being recorded (e.g. left by an interrupted copy).

>>> problems = verify_run("runs/demo")      # doctest: +SKIP
>>> [str(p) for p in problems]               # doctest: +SKIP
['targets/7elf-c/infer/unrelaxed.pdb: changed (sha256 differs from the unit record)']
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .records import unit_dir
from .run import MANIFEST, TARGETS, Run


@dataclass(frozen=True)
class Problem:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class Verification:
    units: int = 0
    files: int = 0
    problems: list = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_run(root: str) -> Verification:
    run = Run.open(root)
    store, result = run.store, Verification(problems=[])
    digest = hashlib.sha256(store.read_bytes(TARGETS)).hexdigest()
    if digest != run.manifest.get("targets_sha256"):
        result.problems.append(Problem(TARGETS, f"changed (sha256 differs from {MANIFEST})"))
    for target in run.targets:
        for stage in run.stages:
            record = run.record(stage, target.id)
            if record is None or not record.done:
                continue
            result.units += 1
            base = unit_dir(stage, target.id)
            present = {rel[len(base) + 1:] for rel in store.list(base + "/")} - {"metrics.json"}
            for name, want in sorted(record.outputs.items()):
                rel = f"{base}/{name}"
                if name not in present:
                    result.problems.append(Problem(rel, "missing"))
                    continue
                result.files += 1
                if hashlib.sha256(store.read_bytes(rel)).hexdigest() != want:
                    result.problems.append(Problem(rel, "changed (sha256 differs from the unit record)"))
            for name in sorted(present - set(record.outputs)):
                result.problems.append(Problem(f"{base}/{name}", "not recorded by the unit"))
    return result
