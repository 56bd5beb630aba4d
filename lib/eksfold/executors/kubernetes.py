"""Run work units as Kubernetes Jobs (EKS), behind the same interface as the local executor.

Each :meth:`KubernetesExecutor.launch` writes a batch file ``ROOT/batches/<name>.json`` and
submits one Indexed Job per size class (targets of similar length share requests, see
:class:`eksfold.k8s.jobs.Sizing`). Servers older than 1.29 lack Indexed Jobs with per-index
backoff and pod failure policies; there the executor submits one Job per target with the index
passed explicitly, and applies the failure policy itself (exit code 2 fails the unit at once).
:meth:`poll` reads Jobs and Pods (two list calls) and turns them into unit events; the run's
store stays the authority on success. The Pods must see the run root: ``/fsx/runs/...`` on the
shared volume (``volume_root`` maps a local mount of it) or an ``s3://`` URI.

>>> ex = KubernetesExecutor(image="123.dkr.ecr.us-east-1.amazonaws.com/eksfold-worker:1")  # doctest: +SKIP
>>> run_pipeline("targets.fasta", "/fsx/runs/cameo", executor="kubernetes",             # doctest: +SKIP
...              executor_options={"image": "...", "kueue": True})
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ..errors import ConfigError, UnitError
from ..k8s import jobs as kjobs
from ..k8s import names
from ..k8s.client import Api, connect
from ..k8s.status import DISRUPTED, UnitStatus, pod_index, pod_status, unit_status
from ..run import STAGES, Run
from .base import Executor, UnitEvent, execute

log = logging.getLogger(__name__)
_JOB_OPTION_FIELDS = {f.name for f in fields(kjobs.JobOptions)}


@dataclass
class _Job:
    name: str
    run: Run
    run_id: str
    stage: str
    batch: str
    targets: list[str]
    resources: kjobs.Resources
    indexed: bool
    index: int | None = None       # fallback form: the one index this Job runs
    attempt: int = 0


MAX_DISRUPTIONS = 10               # fallback form: uncounted retries after node disruptions


class KubernetesExecutor(Executor):
    """Work units as Jobs. Options not listed here are :class:`~eksfold.k8s.jobs.JobOptions`
    fields (``image``, ``kueue``, ``retries``, ``ttl_seconds``, ``service_account``, ...).

    ``max_in_flight``: units per stage submitted at once (Kueue/Karpenter do the real queueing).
    ``indexed``: force the Job form; None asks the server's version. ``unschedulable_timeout``:
    seconds a unit may wait for a node before it is failed with the scheduler's reason (Karpenter
    needs a few minutes to add nodes). ``batch_window``: seconds to gather launches into one
    Job (0: submit at once). ``poll_interval``: minimum seconds between two reads of the API.
    ``$EKSFOLD_IMAGE`` and ``$EKSFOLD_VOLUME_ROOT`` give defaults for ``image`` and
    ``volume_root`` (so ``eksfold run --executor kubernetes`` needs no further options).
    """

    name = "kubernetes"

    def __init__(self, *, kubeconfig=None, context: str | None = None,
                 namespace: str | None = None, in_cluster: bool | None = None,
                 api: Api | None = None, sizing: kjobs.Sizing | None = None,
                 max_in_flight: dict | None = None, volume_root: str | None = None,
                 indexed: bool | None = None, unschedulable_timeout: float = 1800.0,
                 batch_window: float = 0.0, poll_interval: float = 2.0, **job_options):
        unknown = set(job_options) - _JOB_OPTION_FIELDS
        if unknown:
            raise ConfigError(f"unknown Kubernetes executor option(s): {', '.join(sorted(unknown))}")
        self._connect_args = dict(kubeconfig=kubeconfig, context=context, namespace=namespace,
                                  use_in_cluster=in_cluster)
        self._api, self._own_api = api, api is None
        # a JupyterHub profile (or a shell) can set these once for every run
        if os.environ.get("EKSFOLD_IMAGE"):
            job_options.setdefault("image", os.environ["EKSFOLD_IMAGE"])
        volume_root = volume_root or os.environ.get("EKSFOLD_VOLUME_ROOT")
        self.options = kjobs.JobOptions(**job_options)
        self._namespace = namespace
        self.sizing = sizing or kjobs.Sizing()
        self.max_in_flight = {"align": 256, "infer": 64, **(max_in_flight or {})}
        self.volume_root = Path(volume_root).resolve() if volume_root else None
        self._indexed = indexed
        self.unschedulable_timeout, self.batch_window = unschedulable_timeout, batch_window
        self.poll_interval = poll_interval
        self._jobs: dict[str, _Job] = {}
        self._units: dict[tuple[str, str], tuple[str, int | None]] = {}   # unit -> (job, index)
        self._reported: dict[tuple[str, str], str] = {}
        self._unschedulable_since: dict[tuple[str, str], float] = {}
        self._buffer: list[tuple[float, Run, str, list[str]]] = []
        self._seq: dict[str, int] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._disruptions: dict[tuple[str, str], int] = {}
        self._last_poll = 0.0

    # -- connection ---------------------------------------------------------------------
    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = connect(**self._connect_args)
            self._own_api = True
        return self._api

    @property
    def namespace(self) -> str:
        return self._namespace or self.api.namespace

    @property
    def indexed(self) -> bool:
        if self._indexed is None:
            self._indexed = self.api.supports_indexed()
            if not self._indexed:
                log.info("Kubernetes %d.%d: no Indexed Jobs with per-index backoff; "
                         "submitting one Job per target", *self.api.version)
        return self._indexed

    def pod_root(self, root: str) -> str:
        """The run root as Pods see it: s3:// as is, local paths on the shared volume."""
        if "://" in root:
            return root
        path, mount = Path(root).resolve(), self.options.mount_path.rstrip("/")
        if self.volume_root is not None and path.is_relative_to(self.volume_root):
            return f"{mount}/{path.relative_to(self.volume_root).as_posix()}".rstrip("/")
        if str(path) == mount or str(path).startswith(mount + "/"):
            return str(path)
        raise ConfigError(f"run root {root} is not on the shared volume, so Pods cannot see it: "
                          f"use {mount}/runs/<name> (set volume_root= where this machine mounts "
                          "the volume) or an s3:// run root")

    def run_id(self, run: Run) -> str:
        return kjobs.run_id(self.pod_root(run.root))

    # -- Executor interface -------------------------------------------------------------
    def capacity(self, stage: str) -> int:
        return self.max_in_flight[stage]

    def launch(self, run: Run, stage: str, target_ids: list[str]) -> None:
        if not target_ids:
            return
        self._buffer.append((time.monotonic(), run, stage, list(target_ids)))
        if self.batch_window <= 0:
            self._flush()

    def _flush(self, force: bool = True) -> None:
        if not self._buffer or (not force and
                                time.monotonic() - self._buffer[0][0] < self.batch_window):
            return
        groups: dict[tuple[str, str], tuple[Run, list[str]]] = {}
        for _, run, stage, ids in self._buffer:
            groups.setdefault((run.root, stage), (run, []))[1].extend(ids)
        self._buffer.clear()
        for (_, stage), (run, ids) in groups.items():
            by_size: dict[str, list[str]] = {}
            for tid in ids:
                res = self.sizing.for_length(stage, run.target(tid).length)
                by_size.setdefault(res.size, []).append(tid)
            for size, group in by_size.items():
                self.submit(run, stage, group, self.sizing.for_length(
                    stage, max(run.target(t).length for t in group)))

    def submit(self, run: Run, stage: str, target_ids: list[str],
               resources: kjobs.Resources) -> list[str]:
        """Write the batch file and create its Job(s); returns the Job names."""
        for tid in target_ids:
            for seen in (self._reported, self._failures, self._disruptions):
                seen.pop((stage, tid), None)
        batch = self._next_batch(run, stage, resources.size)
        run.write_batch(batch, target_ids)
        rid = self.run_id(run)
        if self.indexed:
            job = _Job("", run, rid, stage, batch, list(target_ids), resources, True)
            created = self._create(job)
            if created.spec.completion_mode == "Indexed":
                return [job.name]
            # the server dropped the Indexed fields (old version, feature gate off): fall back
            log.warning("server ignored completionMode=Indexed; using one Job per target")
            self._delete(job.name)
            self._indexed = False
        names_ = []
        for i in range(len(target_ids)):
            job = _Job("", run, rid, stage, batch, list(target_ids), resources, False, i)
            self._create(job)
            names_.append(job.name)
        return names_

    def _create(self, job: _Job):
        """Create the Job for ``job`` (Indexed, or one index of the fallback form)."""
        from kubernetes.client import V1Job
        manifest = kjobs.build_job(
            run_id=job.run_id, pod_root=self.pod_root(job.run.root), stage=job.stage,
            batch=job.batch, targets=job.targets, resources=job.resources,
            options=replace(self.options, namespace=self.namespace), index=job.index,
            attempt=job.attempt)
        job.name = manifest["metadata"]["name"]
        created = self.api.batch.create_namespaced_job(self.namespace, V1Job.from_dict(manifest))
        self._jobs[job.name] = job
        for i, tid in enumerate(job.targets):
            if job.index is None or i == job.index:
                self._units[(job.stage, tid)] = (job.name, i)
        return created

    def _retry(self, unit, job: _Job, st: UnitStatus) -> bool:
        """Fallback form: what podFailurePolicy + backoffLimitPerIndex do on newer servers."""
        if job.indexed or st.reason in ("Unschedulable", "Deleted") \
                or st.exit_code == kjobs.EXIT_BAD_INPUT:
            return False
        if st.reason == DISRUPTED:
            if self._disruptions.get(unit, 0) >= MAX_DISRUPTIONS:
                return False
            self._disruptions[unit] = self._disruptions.get(unit, 0) + 1
        elif self._failures.get(unit, 0) >= self.options.retries:
            return False
        else:
            self._failures[unit] = self._failures.get(unit, 0) + 1
        log.info("%s %s: %s; retrying", *unit, st.detail)
        self._create(replace(job, name="", attempt=job.attempt + 1))
        return True

    def _next_batch(self, run: Run, stage: str, size: str) -> str:
        if run.root not in self._seq:
            existing = [p.rsplit("/", 1)[-1] for p in run.store.list("batches/")]
            nums = [int(p.split("-")[1]) for p in existing
                    if p.count("-") >= 2 and p.split("-")[1].isdigit()]
            self._seq[run.root] = max(nums, default=0)
        self._seq[run.root] += 1
        return f"{stage}-{self._seq[run.root]:04d}-{size}"

    def _delete(self, job_name: str) -> None:
        from kubernetes.client.rest import ApiException
        try:
            self.api.batch.delete_namespaced_job(job_name, self.namespace,
                                                 propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _selector(self, run_ids) -> str:
        return f"{names.RUN_LABEL} in ({','.join(sorted(run_ids))})"

    def _observe(self, run_ids) -> tuple[dict, dict]:
        """(jobs by name, pods by (job name, index)) for the given runs: two list calls."""
        sel = self._selector(run_ids)
        found = {j.metadata.name: j
                 for j in self.api.batch.list_namespaced_job(self.namespace, label_selector=sel).items}
        pods: dict[tuple[str, int | None], list] = {}
        for pod in self.api.core.list_namespaced_pod(self.namespace, label_selector=sel).items:
            job = (pod.metadata.labels or {}).get("job-name")
            pods.setdefault((job, pod_index(pod)), []).append(pod)
        return found, pods

    def poll(self) -> list[UnitEvent]:
        self._flush(force=False)
        if not self._units or time.monotonic() - self._last_poll < self.poll_interval:
            return []
        self._last_poll = time.monotonic()
        found, pods = self._observe({self._jobs[j].run_id for j, _ in self._units.values()})
        events = []
        for unit, (job_name, index) in list(self._units.items()):
            job = self._jobs[job_name]
            st = unit_status(found.get(job_name), pods.get((job_name, index), []), index,
                             job.indexed)
            st = self._apply_unschedulable_timeout(unit, st)
            if st.state == "failed" and self._retry(unit, job, st):
                continue
            if st.state == "failed":
                self._record_failure(job, unit, st)
            if st.final:
                events.append(UnitEvent(*unit, st.state, st.detail))
                del self._units[unit]
                self._unschedulable_since.pop(unit, None)
                self._stop_if_abandoned(job_name, found.get(job_name), st)
            elif st.state == "running" and self._reported.get(unit) != "running":
                events.append(UnitEvent(*unit, "running", st.pod))
            elif st.state == "unschedulable" and self._reported.get(unit) != "unschedulable":
                events.append(UnitEvent(*unit, "waiting", st.detail))  # e.g. no free GPU yet
            self._reported[unit] = st.state
        return events

    @staticmethod
    def _record_failure(job: _Job, unit, st: UnitStatus) -> None:
        """Write the unit's metrics.json when the worker could not (never scheduled, OOM-killed,
        deleted), so the summary table and a later session see Kubernetes' reason."""
        stage, tid = unit
        if job.run.unit_metrics(stage, tid) is not None:
            return
        from ..run import metrics_path
        job.run.store.write_json(metrics_path(stage, tid), {
            "stage": stage, "target": tid, "status": "failed", "error": st.detail,
            "wall_s": None, "executor": "kubernetes", "reason": st.reason,
            "exit_code": st.exit_code, "pod": st.pod, "job": job.name})

    def _apply_unschedulable_timeout(self, unit, st: UnitStatus) -> UnitStatus:
        if st.state != "unschedulable":
            self._unschedulable_since.pop(unit, None)
            return st
        since = self._unschedulable_since.setdefault(unit, time.monotonic())
        if time.monotonic() - since < self.unschedulable_timeout:
            return st
        return UnitStatus("failed", st.detail, None, "Unschedulable", st.pod)

    def _stop_if_abandoned(self, job_name: str, job, st: UnitStatus) -> None:
        """Delete a Job that can do nothing more for us (so it stops retrying / waiting)."""
        if job is None or st.state == "finished":
            return
        done = any(c.type in ("Complete", "Failed") and c.status == "True"
                   for c in job.status.conditions or [])
        still_ours = any(name == job_name for name, _ in self._units.values())
        if not done and not still_ours:
            self._delete(job_name)

    def cancel(self) -> None:
        """Delete every Job in flight (their Pods are stopped by the garbage collector)."""
        self._buffer.clear()
        for name in {name for name, _ in self._units.values()}:
            self._delete(name)
        self._units.clear()

    def close(self) -> None:
        if self._api is not None and self._own_api:
            self._api.close()
            self._api = None

    # -- run-level helpers --------------------------------------------------------------
    def run_jobs(self, run: Run) -> list:
        """Every Job of ``run`` in the namespace (``V1Job`` objects), oldest first."""
        sel = self._selector([self.run_id(run)])
        items = self.api.batch.list_namespaced_job(self.namespace, label_selector=sel).items
        return sorted(items, key=lambda j: (j.metadata.creation_timestamp, j.metadata.name))

    def cancel_run(self, run: Run) -> list[str]:
        """Delete every unfinished Job of ``run`` (from any session); returns their names."""
        names_ = []
        for job in self.run_jobs(run):
            if not any(c.type in ("Complete", "Failed") and c.status == "True"
                       for c in job.status.conditions or []):
                self._delete(job.metadata.name)
                names_.append(job.metadata.name)
        self._units = {u: v for u, v in self._units.items() if v[0] not in names_}
        return names_

    def resubmit(self, run: Run, stages=STAGES, reporter=None, target_ids=None) -> dict:
        """Run again only the units that are failed or missing (done ones are skipped).

        Refuses while Jobs of the run are still active, so no unit runs twice at once.
        """
        from ..results import write_summary
        active = [j.metadata.name for j in self.run_jobs(run) if (j.status.active or 0) > 0]
        if active:
            raise ConfigError(f"run {run.root} still has active Jobs ({', '.join(active)}); "
                              "wait for them or cancel_run() first")
        try:
            return execute(run, self, stages=stages, reporter=reporter, target_ids=target_ids)
        finally:
            write_summary(run)

    def unit_failure(self, run: Run, stage: str, target_id: str) -> UnitError | None:
        """Why a unit failed: exit code, Kubernetes' reason and the tail of its log.

        Returns None when the unit is done. Reads the newest Pod that ran the unit (the
        scheduler's message when it never got a node), the unit's metrics.json error, and the
        worker log from the run root (falling back to the Pod's log from the API).
        """
        if run.unit_status(stage, target_id) == "done":
            return None
        attempts = []
        jobs_ = {j.metadata.name: j for j in self.run_jobs(run)}
        sel = self._selector([self.run_id(run)]) + f",{names.STAGE_LABEL}={stage}"
        for pod in self.api.core.list_namespaced_pod(self.namespace, label_selector=sel).items:
            job = jobs_.get((pod.metadata.labels or {}).get("job-name"))
            idx = pod_index(pod)
            if job is None or idx is None:
                continue
            targets = json.loads((job.metadata.annotations or {}).get(names.TARGET_ANNOTATION, "[]"))
            if idx < len(targets) and targets[idx] == target_id:
                attempts.append(pod)
        latest = max(attempts, key=lambda p: p.metadata.creation_timestamp, default=None)
        st = pod_status(latest) if latest is not None else UnitStatus("missing", "no Pod found")
        metrics = run.unit_metrics(stage, target_id) or {}
        reason = metrics.get("error") or st.detail or st.state
        if st.state == "unschedulable":
            reason = st.detail
        log_text = run.read_log(stage, target_id) or self._pod_log(latest)
        exit_code = st.exit_code if st.exit_code is not None else metrics.get("exit_code")
        return UnitError(stage, target_id, exit_code, log_text, reason)

    def _pod_log(self, pod) -> str:
        if pod is None:
            return ""
        from kubernetes.client.rest import ApiException
        try:
            return self.api.core.read_namespaced_pod_log(pod.metadata.name, self.namespace,
                                                         tail_lines=40)
        except (ApiException, OSError):
            return ""
