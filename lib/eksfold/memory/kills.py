"""How a unit's process died, as its executor saw it: the only evidence that may step a setting down.

A process killed by the kernel or the kubelet writes nothing itself, so the executor that saw
the death records it here, in the run root, before the unit is tried again:

- ``cause="oom"``: known to be for memory (the Pod's termination reason ``OOMKilled``; locally
  the kernel's or the worker cgroup's OOM record of that process);
- ``cause="unknown"``: anything else (SIGKILL from a user, a spot reclaim, an eviction, a node
  that vanished, the driver dying with its workers).

Only an ``oom`` record makes the next attempt start one setting lower; an unknown kill retries
the same setting. Records are kept per (stage, target) until the unit is committed.
"""
from __future__ import annotations

import time

OOM, UNKNOWN = "oom", "unknown"
CAUSES = (OOM, UNKNOWN)


def kill_path(stage: str, target: str) -> str:
    """Where the kills of one unit are kept, relative to the run root."""
    return f"attempts/{stage}/{target}.kills.json"


def read_kills(store, stage: str, target: str) -> list[dict]:
    """Every kill recorded for the unit, oldest first (``[]`` when none)."""
    try:
        kills = store.read_json(kill_path(stage, target))
    except (FileNotFoundError, ValueError):
        return []
    return kills if isinstance(kills, list) else []


def record_kill(store, stage: str, target: str, cause: str, evidence: str,
                executor: str) -> dict:
    """Append one observed kill (``cause`` in :data:`CAUSES`) and return the entry."""
    if cause not in CAUSES:
        raise ValueError(f"kill cause must be one of {CAUSES}, not {cause!r}")
    entry = {"cause": cause, "evidence": evidence, "executor": executor,
             "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    store.write_json(kill_path(stage, target), read_kills(store, stage, target) + [entry])
    return entry


def oom_counts(store, stage: str) -> dict[str, int]:
    """target -> the ``oom`` kills recorded for its unit of ``stage``, for every unit that has
    any: one listing of the stage's attempts folder, then only the kill files it holds (a
    run's units mostly have none, and on S3 a read per unit would be a request per unit)."""
    suffix, out = ".kills.json", {}
    for rel in store.list(f"attempts/{stage}/"):
        if rel.endswith(suffix):
            target = rel.rsplit("/", 1)[-1][:-len(suffix)]
            n = sum(1 for k in read_kills(store, stage, target) if k.get("cause") == OOM)
            if n:
                out[target] = n
    return out


def clear_kills(store, stage: str, target: str) -> None:
    """Forget the unit's kills (after it is committed, or when a user's rerun starts afresh)."""
    try:
        store.delete(kill_path(stage, target))
    except FileNotFoundError:
        pass
