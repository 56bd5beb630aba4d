"""Memory of an MMseqs2 alignment Pod from its database's index: one rule for the Kubernetes
executor (which measures the index files) and the planner (which is told the index size).

MMseqs2's prefilter holds the target database's k-mer index in memory (precomputed by
``mmseqs createindex`` as ``PREFIX.idx*``; otherwise built at search time, about as large).
A Pod asks for the index plus a margin plus the search's own working memory, and never less
than its size class asks for, so several alignment Pods share a node only where their indexes
fit beside each other.

>>> pod_memory_gib(40.0, base_gib=16)
48
>>> pod_memory_gib(5.0, base_gib=16)
16
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

INDEX_MARGIN = 0.15      # page cache and allocator slack above the index itself (stated)
WORKING_GIB = 2.0        # queries, alignments and profiles of one batch (stated)


def index_gib(prefix: str | None) -> float | None:
    """Size in GiB of the database's precomputed index files (``PREFIX.idx*``; for the ColabFold
    layout the larger of the main and environmental databases is passed separately), or None
    when there is no readable index here (an ``s3://`` or unmounted path)."""
    if not prefix or "://" in str(prefix):
        return None
    base = Path(prefix)
    files = [p for p in base.parent.glob(base.name + ".idx*") if p.is_file()] \
        if base.parent.is_dir() else []
    return sum(p.stat().st_size for p in files) / 2**30 if files else None


def pod_memory_gib(index: float, base_gib: float) -> int:
    """Whole GiB an alignment Pod requests for an index of ``index`` GiB."""
    return max(int(base_gib), math.ceil(index * (1 + INDEX_MARGIN) + WORKING_GIB))


def sized_for_index(resources, index: float | None):
    """``resources`` (a :class:`eksfold.k8s.sizing.Resources`) with the memory for ``index``."""
    if not index:
        return resources
    base = float(str(resources.memory).rstrip("Gi"))
    return replace(resources, memory=f"{pod_memory_gib(index, base)}Gi")


def run_index_gib(align_config) -> float | None:
    """The index of the database a run's MMseqs2 alignments search (None: jackhmmer, or none
    readable from here)."""
    if getattr(align_config, "msa_mode", None) != "mmseqs2":
        return None
    from ..site import default_mmseqs_db

    prefix = align_config.mmseqs_db or default_mmseqs_db(align_config.mmseqs_layout)
    return index_gib(prefix)
