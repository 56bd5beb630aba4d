"""Administration of a run's Jobs from any session: list, cancel, explain a failure, resubmit.

Mixed into :class:`~eksfold.executors.kubernetes.KubernetesExecutor`; everything here reads
the cluster by the run's label and the run root, so a notebook that did not start the run can
ask about it.
"""
from __future__ import annotations

import json

from ...errors import ConfigError, UnitError
from ...k8s import names
from ...k8s.status import UnitStatus, pod_index, pod_status
from ...run import Run


def _finished(job) -> bool:
    return any(c.type in ("Complete", "Failed") and c.status == "True"
               for c in job.status.conditions or [])


class RunAdmin:
    """The executor's administrative verbs (needs ``api``, ``namespace``, ``run_id``)."""

    def run_jobs(self, run: Run) -> list:
        """Every Job of ``run`` in the namespace (``V1Job`` objects), oldest first."""
        sel = self._selector([self.run_id(run)])
        items = self.api.batch.list_namespaced_job(self.namespace, label_selector=sel).items
        return sorted(items, key=lambda j: (j.metadata.creation_timestamp, j.metadata.name))

    def cancel_run(self, run: Run) -> list[str]:
        """Delete every unfinished Job of ``run`` (from any session); returns their names."""
        deleted = []
        for job in self.run_jobs(run):
            if not _finished(job):
                self._delete(job.metadata.name)
                deleted.append(job.metadata.name)
        self._forget_jobs(deleted)
        return deleted

    def resubmit(self, run: Run, stages=None, reporter=None, target_ids=None) -> dict:
        """Run again only the units that are failed or missing (done ones are skipped).

        Refuses while Jobs of the run are still active, so no unit runs twice at once.
        """
        active = [j.metadata.name for j in self.run_jobs(run) if (j.status.active or 0) > 0]
        if active:
            raise ConfigError(f"run {run.root} still has active Jobs ({', '.join(active)}); "
                              "wait for them or cancel_run() first")
        return super().resubmit(run, stages=stages, reporter=reporter, target_ids=target_ids)

    def unit_failure(self, run: Run, stage: str, target_id: str) -> UnitError | None:
        """Why a unit failed: exit code, Kubernetes' reason and the tail of its log.

        Returns None when the unit is done. Reads the newest Pod that ran the unit's shard (the
        scheduler's message when it never got a node), the unit record's error, and the worker
        log from the run root (falling back to the Pod's log from the API).
        """
        record = run.record(stage, target_id)
        if record is not None and record.done:
            return None
        latest = self._latest_pod(run, stage, target_id)
        st = pod_status(latest) if latest is not None else UnitStatus("missing", "no Pod found")
        reason = (record.error if record else None) or st.detail or st.state
        if st.state == "unschedulable":
            reason = st.detail
        log_text = run.read_log(stage, target_id) or self._pod_log(latest)
        exit_code = record.exit_code if record and record.exit_code is not None else st.exit_code
        return UnitError(stage, target_id, exit_code, log_text, reason)

    def _latest_pod(self, run: Run, stage: str, target_id: str):
        jobs_ = {j.metadata.name: j for j in self.run_jobs(run)}
        sel = self._selector([self.run_id(run)]) + f",{names.STAGE_LABEL}={stage}"
        attempts = []
        for pod in self.api.core.list_namespaced_pod(self.namespace, label_selector=sel).items:
            job = jobs_.get((pod.metadata.labels or {}).get("job-name"))
            idx = pod_index(pod)
            if job is None or idx is None:
                continue
            shards = json.loads((job.metadata.annotations or {}).get(names.TARGET_ANNOTATION, "[]"))
            if idx < len(shards) and target_id in shards[idx]:
                attempts.append(pod)
        return max(attempts, key=lambda p: p.metadata.creation_timestamp, default=None)

    def _pod_log(self, pod) -> str:
        if pod is None:
            return ""
        from kubernetes.client.rest import ApiException
        try:
            return self.api.core.read_namespaced_pod_log(pod.metadata.name, self.namespace,
                                                         tail_lines=40)
        except (ApiException, OSError):
            return ""
