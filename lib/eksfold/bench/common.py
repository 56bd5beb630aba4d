"""Helpers every benchmark shares: synthetic queries, power-law fits, printed tables.

Absolute times depend on the machine; compare the ratios and the fitted scaling exponents
measured in one run.
"""
from __future__ import annotations

import math
import random

AMINO = "ACDEFGHIKLMNPQRSTVWY"


def synthetic_sequence(length: int, seed: int = 0) -> str:
    """A deterministic sequence of ``length`` residues (runtime/memory do not depend on it)."""
    rng = random.Random(seed * 100003 + length)
    return "M" + "".join(rng.choice(AMINO) for _ in range(length - 1))


def fit_exponent(lengths, values) -> float | None:
    """Least-squares slope of log(value) against log(length): value ~ length**slope."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(lengths, values) if x and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    var = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else None


def format_table(df, value_columns) -> str:
    """The table plus ratios to the first row and fitted exponents for ``value_columns``."""
    df = df.copy()
    lines = []
    for col in value_columns:
        if col in df and df[col].notna().any() and df[col].iloc[0]:
            df[f"{col}_x"] = (df[col] / df[col].iloc[0]).round(2)
    lines.append(df.to_string(index=False))
    for col in value_columns:
        if col in df and df[col].notna().sum() >= 2:
            k = fit_exponent(df["length"], df[col])
            if k is not None:
                lines.append(f"{col} ~ length^{k:.2f}")
    return "\n".join(lines)


def parse_lengths(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]




def page_in(*paths, chunk: int = 1 << 24) -> float:
    """Read ``paths`` once (sequentially) so they sit in the page cache; returns the seconds.

    An MMseqs2 search touches only the index pages its queries' k-mers hit: a one-query warm-up
    leaves most of a large index on disk, and the measured search then waits on reads that a
    server with the index in memory never sees."""
    import time
    from pathlib import Path

    started = time.perf_counter()
    for path in paths:
        if Path(path).is_file():
            with open(path, "rb", buffering=0) as fh:
                while fh.read(chunk):
                    pass
    return round(time.perf_counter() - started, 2)
