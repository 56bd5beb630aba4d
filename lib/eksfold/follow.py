"""A streaming worker: it starts before its shard's inputs exist and takes each target as
soon as the unit it depends on is committed.

The Kubernetes executor in streaming mode submits a stage's Job together with its dependency's
(GPU capacity is requested while alignments still run) and sets ``$EKSFOLD_FOLLOW_S`` on its
Pods: how long a worker may wait for inputs that do not come. Each time the worker is free it
reads the dependency's records of its waiting targets (final states are remembered, so each
record is read until it is final, in shard order, stopping at the first ready one) and runs
:func:`eksfold.sharding.next_ready`: the longest target whose input is committed. A target whose
dependency failed is skipped with nothing recorded (the driver reports it blocked).
"""
from __future__ import annotations

import logging
import os
import time

from .contracts import ExitCode
from .sharding import WAIT, next_ready

FOLLOW_ENV = "EKSFOLD_FOLLOW_S"
POLL_S = 2.0
log = logging.getLogger("eksfold.worker")


def follow_limit() -> float:
    """Seconds a worker may wait for its inputs (0: do not wait, the classic worker)."""
    try:
        return max(0.0, float(os.environ.get(FOLLOW_ENV, "0") or 0))
    except ValueError:
        return 0.0


def follow_shard(runner, run, shard: list[str], dependency: str, limit_s: float,
                 poll_s: float = POLL_S, sleep=time.sleep, clock=time.monotonic,
                 progress=None) -> list[int]:
    """Run ``shard`` as its ``dependency`` units are committed; returns the exit codes of the
    units run (a target still waiting after ``limit_s`` of idle waiting counts as failed).
    ``progress(running, done)``: told before each unit and after the last, so the driver can
    report units taken out of shard order (:meth:`eksfold.run.Run.write_shard_progress`)."""
    remaining, final, codes, done = list(shard), {}, [], []
    say = progress or (lambda running, finished: None)
    idle_since = clock()
    while remaining:
        state: dict[str, str] = {}
        for tid in remaining:
            st = final.get(tid) or run.unit_status(dependency, tid)
            state[tid] = WAIT if st == "missing" else st
            if st != "missing":
                final[tid] = st
                break                       # the first ready one in shard order is the pick
        tid = next_ready(remaining, state)
        if tid is None:
            if clock() - idle_since > limit_s:
                log.error("%s: %d target(s) still waiting for %s after %.0f s: %s",
                          runner.stage.name, len(remaining), dependency, limit_s,
                          ", ".join(remaining[:5]))
                codes += [ExitCode.FAILED] * len(remaining)
                break
            # many waiting targets: poll less often, so a big shard is not a storm of reads
            sleep(max(poll_s, 0.001 * len(remaining)))
            continue
        remaining.remove(tid)
        if state[tid] != "done":
            log.warning("%s %s: %s %s; skipped", runner.stage.name, tid, dependency, state[tid])
            continue
        say(tid, done)
        codes.append(runner.run(tid))
        done.append(tid)
        idle_since = clock()
    say(None, done)
    return codes
