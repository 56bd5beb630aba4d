"""How a unit's Pod died, recorded for the unit it was running (:mod:`eksfold.memory.kills`).

A worker killed by the kubelet or the kernel writes nothing itself; the executor sees its Pod
and records the kill for the unit the Pod was running, before the unit is tried again:
``oom`` only for a container terminated with reason ``OOMKilled``; ``unknown`` for any other
death (eviction / ``DisruptionTarget``, deletion, a node gone, exit 137 without ``OOMKilled``,
a Pod that vanished while running). A worker that exited by itself (0, 1, 2) is no kill: its
unit records say what happened. Each Pod is judged once.
"""
from __future__ import annotations

import logging

from ...contracts import ExitCode
from ...k8s.jobs import CONTAINER
from ...k8s.status import DISRUPTED
from ...memory.kills import OOM, UNKNOWN, record_kill

log = logging.getLogger(__name__)
_OWN_EXITS = (ExitCode.OK, ExitCode.FAILED, ExitCode.BAD_INPUT)
_INTERRUPTED = (None, ExitCode.INTERRUPTED, ExitCode.TERMINATED)


def _terminated(pod):
    return next((cs.state.terminated for cs in pod.status.container_statuses or []
                 if cs.name == CONTAINER and cs.state and cs.state.terminated), None)


def classify(pod) -> tuple[str, str] | None:
    """(cause, evidence) for a Pod in phase Failed, or None when its worker exited by itself."""
    name, term = pod.metadata.name, _terminated(pod)
    code = term.exit_code if term else None
    if term is not None and term.reason == "OOMKilled":
        return OOM, f"Pod {name} OOMKilled (exit code {code})"
    disrupted = next((c for c in pod.status.conditions or []
                      if c.type == DISRUPTED and c.status == "True"), None)
    if disrupted is not None or pod.status.reason == "Evicted":
        why = disrupted.reason if disrupted is not None else pod.status.reason
        return UNKNOWN, (f"Pod {name} disrupted ({why}), exit code {code}"
                         + (f": {pod.status.message}" if pod.status.message else ""))
    if code in _OWN_EXITS:
        return None
    return UNKNOWN, f"Pod {name} exit code {code} ({term.reason if term else pod.status.reason})"


def running_unit(shard, pod_name: str) -> str | None:
    """The target the Pod was running: the first of its shard, in order, not committed and not
    finished (failed) by this very Pod. None when every target is settled."""
    for tid in shard.targets:
        rec = shard.run.record(shard.stage, tid)
        if rec is None or (not rec.done and (rec.pod != pod_name
                                             or rec.exit_code in _INTERRUPTED)):
            return tid
    return None


class DeathWatch:
    """Judges each Pod of the tracked shards once, when it fails or vanishes while running."""

    def __init__(self):
        self._judged: set[str] = set()                       # Pod uids
        self._running: dict[tuple, dict[str, str]] = {}      # shard key -> {pod name: uid}

    def forget(self, key) -> None:
        self._running.pop(key, None)

    def observe(self, shard, pods: list) -> list[dict]:
        """Record the kills seen in ``pods`` (this shard's Pods as listed now)."""
        key, out = (shard.job, shard.index), []
        running = self._running.setdefault(key, {})
        listed = {p.metadata.name for p in pods}
        for pod in pods:
            name, uid, phase = pod.metadata.name, pod.metadata.uid, pod.status.phase
            if phase == "Running":
                running[name] = uid
                continue
            running.pop(name, None)
            if phase != "Failed" or uid in self._judged:
                continue
            self._judged.add(uid)
            found = classify(pod)
            if found:
                out += self._record(shard, name, *found)
        for name, uid in list(running.items()):
            if name not in listed and uid not in self._judged:
                # deleted without a terminal phase (force delete, a node gone, PodGC)
                self._judged.add(uid)
                del running[name]
                out += self._record(shard, name, UNKNOWN,
                                    f"Pod {name} disappeared while running (deleted, or its "
                                    "node is gone)")
        return out

    @staticmethod
    def _record(shard, pod_name: str, cause: str, evidence: str) -> list[dict]:
        target = running_unit(shard, pod_name)
        if target is None:
            return []
        log.warning("%s %s: %s (kill recorded as %s)", shard.stage, target, evidence, cause)
        return [record_kill(shard.run.store, shard.stage, target, cause, evidence,
                            executor="kubernetes")]
