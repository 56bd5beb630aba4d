"""Read a unit's state from its Job and Pods, the way a person would with ``kubectl describe``.

Pure functions over the official client's models (``V1Job``, ``V1Pod``). A unit is one index of
an Indexed Job, or a whole fallback Job. States: ``pending`` (waiting for a node or a retry),
``unschedulable`` (the scheduler found no node: the reason says why), ``running``, ``finished``,
``failed`` (final: exit code / reason in ``detail``).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import jobs

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
DISRUPTED = "DisruptionTarget"


@dataclass
class UnitStatus:
    state: str
    detail: str | None = None
    exit_code: int | None = None
    reason: str | None = None        # Kubernetes' word: Unschedulable, OOMKilled, Error, ...
    pod: str | None = None

    @property
    def final(self) -> bool:
        return self.state in ("finished", "failed")


def parse_indexes(text: str | None) -> set[int]:
    """``"1,3-5,7"`` (Job status format) -> ``{1, 3, 4, 5, 7}``."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.update(range(int(lo), int(hi) + 1))
        elif part.strip():
            out.add(int(part))
    return out


def pod_index(pod) -> int | None:
    meta = pod.metadata
    value = (meta.annotations or {}).get(INDEX_ANNOTATION) or (meta.labels or {}).get(jobs.INDEX_LABEL)
    return int(value) if value is not None else None


def _condition(obj, kind: str):
    return next((c for c in obj.status.conditions or [] if c.type == kind), None)


def pod_status(pod) -> UnitStatus:
    """One Pod's contribution: what happened to this attempt."""
    name, phase = pod.metadata.name, pod.status.phase
    if phase == "Succeeded":
        return UnitStatus("finished", pod=name)
    if phase == "Failed":
        term = next((cs.state.terminated for cs in pod.status.container_statuses or []
                     if cs.state and cs.state.terminated), None)
        code = term.exit_code if term else None
        reason = (term.reason if term else None) or pod.status.reason or "Failed"
        detail = f"exit code {code}" if code is not None else reason
        if reason not in ("Error", "Completed", "Failed"):
            detail += f" ({reason})" if code is not None else ""
        if term and term.message:
            detail += ": " + term.message.strip().splitlines()[-1][:300]
        elif pod.status.message:
            detail += ": " + pod.status.message
        disrupted = _condition(pod, "DisruptionTarget")
        if disrupted is not None and disrupted.status == "True":
            # spot reclaim, drain, preemption: not the unit's fault, retried without counting
            return UnitStatus("failed", f"disrupted ({disrupted.reason}): {detail}", code,
                              DISRUPTED, name)
        return UnitStatus("failed", detail, code, reason, name)
    if phase == "Running":
        return UnitStatus("running", pod=name)
    sched = _condition(pod, "PodScheduled")
    if sched is not None and sched.status == "False" and sched.reason == "Unschedulable":
        return UnitStatus("unschedulable", f"unschedulable: {sched.message}", None,
                          "Unschedulable", name)
    return UnitStatus("pending", pod=name)


def _latest(pods):
    return max(pods, key=lambda p: (p.metadata.creation_timestamp, p.metadata.name), default=None)


def unit_status(job, pods: list, index: int | None, indexed: bool) -> UnitStatus:
    """The state of one unit: ``index`` of an Indexed Job, or a fallback Job (``index`` ignored).

    ``job`` None means the Job is gone (deleted, cancelled, or collected by its TTL).
    """
    latest = _latest(pods)
    last = pod_status(latest) if latest is not None else UnitStatus("pending")
    failed_pods = [p for p in pods if pod_status(p).state == "failed"]
    last_failure = pod_status(_latest(failed_pods)) if failed_pods else None
    if job is None:
        if last.state == "finished":
            return last
        return UnitStatus("failed", "job deleted" + (f" after {last_failure.detail}"
                                                     if last_failure else ""),
                          reason="Deleted", pod=last.pod)
    st = job.status
    if indexed:
        if index in parse_indexes(st.completed_indexes):
            return UnitStatus("finished", pod=last.pod)
        if index in parse_indexes(st.failed_indexes):
            return last_failure or UnitStatus("failed", "index failed", reason="FailedIndex")
    elif (st.succeeded or 0) >= 1:
        return UnitStatus("finished", pod=last.pod)
    elif last_failure:
        # the fallback form has backoffLimit 0: a failed Pod ends the attempt (the executor
        # decides about retries from its exit code and reason)
        return last_failure
    job_failed = _condition(job, "Failed")
    if job_failed is not None and job_failed.status == "True":
        why = f"job failed: {job_failed.reason}" + (f" ({job_failed.message})"
                                                    if job_failed.message else "")
        if last_failure:
            return UnitStatus("failed", f"{last_failure.detail}; {why}", last_failure.exit_code,
                              last_failure.reason, last_failure.pod)
        if last.state == "unschedulable":
            return UnitStatus("failed", f"{last.detail}; {why}", reason="Unschedulable",
                              pod=last.pod)
        return UnitStatus("failed", why, reason=job_failed.reason, pod=last.pod)
    if last.state == "failed":     # a retry is coming
        return UnitStatus("pending", f"retrying after {last.detail}", last.exit_code,
                          last.reason, last.pod)
    return last
