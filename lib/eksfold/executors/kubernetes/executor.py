"""Run work units as Kubernetes Jobs (EKS), behind the same interface as the local executor.

Each launch goes through the :class:`~.batching.Batcher`: ready targets become shards (one warm
worker each), written as a batch file ``ROOT/batches/<name>.json`` and submitted as one Indexed
Job per size class (index = shard), so the number of Jobs and Pods grows with the shards, not
the targets. Servers older than 1.29 lack Indexed Jobs with per-index backoff and pod failure
policies; there the executor submits one Job per shard and applies the failure policy itself
(:mod:`.retry`). :meth:`poll` reads Jobs and Pods from a watch-fed cache (:mod:`.informer`;
no API call per poll, none per target), and the run store (the authority on success) for the
shards that are running, so units are reported as their worker commits them. The Pods must see the run root:
``/fsx/runs/...`` on the shared volume (``volume_root`` maps a local mount of it) or ``s3://``.

>>> run_pipeline("targets.fasta", "/fsx/runs/cameo", executor="kubernetes",   # doctest: +SKIP
...              executor_options={"image": "...", "kueue": True})
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import fields, replace
from pathlib import Path

from ...errors import ConfigError
from ...k8s import jobs as kjobs
from ...k8s.client import Api
from ...k8s.images import stage_image
from ...k8s.status import unit_status
from ...memory.kills import oom_counts
from ...records import UnitRecord
from ...run import Run
from ...stages import get_stage
from ..base import Executor, UnitEvent
from .admin import RunAdmin
from .batching import Batcher, Shard
from .capacity import ClusterCapacity
from .connection import Connection
from .deaths import DeathWatch
from .informer import Observing
from .observe import ShardTracker
from .retry import RetryPolicy

log = logging.getLogger(__name__)
_JOB_OPTION_FIELDS = {f.name for f in fields(kjobs.JobOptions)}


def _gpu_model():
    """The committed GPU settings profile's cost model (``profiles/gpu-*``), if there is one:
    inference is then routed to GPU classes by predicted memory (see ``k8s.sizing``)."""
    from ...memory.chooser import default_model

    try:
        model = default_model("cuda", os.environ.get("EKSFOLD_PRESET", "demo"))
    except Exception as exc:  # noqa: BLE001 - no GPU profile: the length thresholds apply
        log.debug("no GPU cost model (%s): routing by length", exc)
        return None
    return model if model.device == "cuda" and model.settings else None


class KubernetesExecutor(RunAdmin, Observing, Connection, Executor):
    """Work units as Jobs. Options not listed here are :class:`~eksfold.k8s.jobs.JobOptions`
    fields (``image``, ``kueue``, ``retries``, ``ttl_seconds``, ``service_account``, ...).

    ``max_in_flight``: units per stage handed over at once (Kueue/Karpenter do the real
    queueing). ``max_shards``: at most this many shards (Pods) per stage and launch.
    ``shard_size``: targets per shard (default: by predicted cost, see :mod:`eksfold.sharding`);
    ``fixed_cost_s``: seconds a Pod pays once per stage (start, image, model load).
    ``indexed``: force the Job form; None asks the server. ``unschedulable_timeout``: seconds a
    shard may wait for a node before its units fail with the scheduler's reason.
    ``batch_window``: seconds (or a dict per stage) to gather launches into one Job.
    ``stream``: hand over units whose dependency is in flight; their workers take them as
    their inputs are committed (waiting at most ``follow_s``). ``poll_interval``: minimum
    seconds between two reads of the API. ``$EKSFOLD_IMAGE`` / ``$EKSFOLD_VOLUME_ROOT`` give
    defaults for ``image`` and ``volume_root``.
    """

    name = "kubernetes"

    def __init__(self, *, kubeconfig=None, context: str | None = None,
                 namespace: str | None = None, in_cluster: bool | None = None,
                 api: Api | None = None, sizing: kjobs.Sizing | None = None,
                 max_in_flight: dict | None = None, max_shards: dict | None = None,
                 shard_size: int | None = None, fixed_cost_s: dict | None = None,
                 volume_root: str | None = None, indexed: bool | None = None,
                 unschedulable_timeout: float = 1800.0, batch_window: float | dict = 0.0,
                 poll_interval: float = 2.0, watch: bool = True, stream: bool = False,
                 follow_s: float = 6 * 3600.0, **job_options):
        unknown = set(job_options) - _JOB_OPTION_FIELDS
        if unknown:
            raise ConfigError(f"unknown Kubernetes executor option(s): {', '.join(sorted(unknown))}")
        self._connect_args = dict(kubeconfig=kubeconfig, context=context, namespace=namespace,
                                  use_in_cluster=in_cluster)
        self._api, self._own_api = api, api is None
        if os.environ.get("EKSFOLD_IMAGE"):   # a JupyterHub profile or a shell sets it once
            job_options.setdefault("image", os.environ["EKSFOLD_IMAGE"])
        volume_root = volume_root or os.environ.get("EKSFOLD_VOLUME_ROOT")
        # streaming (issue 23): dependent units are handed over while their inputs run, and
        # their workers wait for them (eksfold.follow) up to follow_s
        self.streams = bool(stream)
        if self.streams:
            from ...follow import FOLLOW_ENV

            job_options["env"] = {**job_options.get("env", {}), FOLLOW_ENV: str(follow_s)}
        self.options = kjobs.JobOptions(**job_options)
        self._namespace = namespace
        self.sizing = sizing or kjobs.Sizing(gpu_model=_gpu_model())
        self.max_in_flight = {"align": 100_000, "infer": 100_000, "relax": 100_000,
                              **(max_in_flight or {})}
        self.batcher = Batcher(self.sizing, batch_window, shard_size,
                               {"align": 256, "infer": 64, "relax": 64, **(max_shards or {})},
                               fixed_cost_s)
        # shards bounded by what the cluster can run at once (nodes, Karpenter NodePool limits)
        self.batcher.slots = ClusterCapacity(lambda: self.api).slots
        self.volume_root = Path(volume_root).resolve() if volume_root else None
        self._indexed = indexed
        self.retry = RetryPolicy(self.options.retries)
        self.tracker = ShardTracker(unschedulable_timeout)
        self.deaths = DeathWatch()
        self._abandoned_jobs: set[str] = set()     # Jobs with an index given up on
        self.poll_interval = poll_interval
        self._seq: dict[str, int] = {}
        self._last_poll = 0.0
        self.watch, self._informer = watch, None   # watch-fed cache instead of lists per poll
        self._seen_jobs: set[str] = set()
        self._list_calls = 0

    # -- Executor hooks -----------------------------------------------------------------
    def capacity(self, stage: str, run: Run | None = None) -> int:
        return self.max_in_flight.get(stage, 100_000)

    def launch(self, run: Run, stage: str, target_ids: list[str]) -> None:
        self.batcher.add(run, stage, target_ids)
        self._submit_due()     # a stage without a window is due at once

    def _submit_due(self, force: bool = False) -> None:
        for sub in self.batcher.take(force):
            self.submit(sub.run, sub.stage, sub.shards, sub.resources)

    def submit(self, run: Run, stage: str, shards: list[list[str]],
               resources: kjobs.Resources) -> list[str]:
        """Write the batch file and create its Job(s); returns the Job names."""
        batch = self._next_batch(run, stage, resources.size)
        run.write_batch(batch, shards)
        rid = self.run_id(run)
        streaming = self.streams and bool(get_stage(stage).depends_on)
        new = [Shard(run, rid, stage, batch, shards, i, resources, self.indexed,
                     streaming=streaming) for i in range(len(shards))]
        if self.indexed:
            created = self._create(new[0], all_shards=new)
            if created.spec.completion_mode == "Indexed":
                return [new[0].job]
            # the server dropped the Indexed fields (old version, feature gate off): fall back
            log.warning("server ignored completionMode=Indexed; using one Job per shard")
            self._delete(new[0].job)
            self.tracker.forget_job(new[0].job)
            self._indexed = False
            for shard in new:
                shard.indexed = False
        for shard in new:
            self._create(shard)
        return [s.job for s in new]

    def _create(self, shard: Shard, all_shards: list[Shard] | None = None):
        from kubernetes.client import V1Job
        image = stage_image(self.options.image, self.options.images, shard.stage,
                            shard.run.config.infer.preset)
        manifest = kjobs.build_job(
            run_id=shard.run_id, pod_root=self.pod_root(shard.run.root), stage=shard.stage,
            batch=shard.batch, shards=shard.shards, resources=shard.resources,
            options=replace(self.options, namespace=self.namespace, image=image),
            index=None if shard.indexed else shard.index, attempt=shard.attempt)
        name = manifest["metadata"]["name"]
        created = self.api.batch.create_namespaced_job(self.namespace, V1Job.from_dict(manifest))
        for s in all_shards or [shard]:
            s.job, s.created = name, time.monotonic()
            self.tracker.add(s)
        return created

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

    def _forget_jobs(self, job_names) -> None:
        for name in job_names:
            self.tracker.forget_job(name)

    def poll(self) -> list[UnitEvent]:
        self._submit_due()
        if not self.tracker.shards or time.monotonic() - self._last_poll < self.poll_interval:
            return []
        self._last_poll = time.monotonic()
        found, pods = self._observe({s.run_id for s in self.tracker.shards.values()})
        events: list[UnitEvent] = []
        for key, shard in list(self.tracker.shards.items()):
            job = found.get(shard.job)
            shard_pods = pods.get((shard.job, shard.index), [])
            self.deaths.observe(shard, shard_pods)    # kill evidence, before any retry
            st = unit_status(job, shard_pods, shard.index, shard.indexed)
            st = self._settled(shard, job, st)
            st = self.tracker.apply_unschedulable_timeout(key, st)
            if st.state == "failed" and not shard.indexed and self._retry(shard, st):
                continue
            events += self.tracker.events(shard, st)
            if st.final:
                if st.state == "failed":
                    self._record_failures(shard, st)
                    if st.reason == "Unschedulable" and job is not None:
                        self._abandon(shard, st, shard_pods)
                self.tracker.remove(key)
                self.deaths.forget(key)
                self._stop_if_done(shard.job, job, st)
        return events

    def _retry(self, shard: Shard, st) -> bool:
        """Fallback form: what podFailurePolicy + backoffLimitPerIndex do on newer servers."""
        key = (shard.batch, shard.index)
        if not self.retry.should_retry(key, st):
            return False
        log.info("%s shard %s/%d: %s; retrying", shard.stage, shard.batch, shard.index, st.detail)
        self.tracker.remove((shard.job, shard.index))
        self.deaths.forget((shard.job, shard.index))
        self._create(replace(shard, job="", attempt=shard.attempt + 1, final_since=None,
                             resources=self._retry_resources(shard)))
        return True

    def _retry_resources(self, shard: Shard):
        """The shard's requests, or a bigger size class when one of its units has had its Pod
        OOMKilled (the death watch recorded it): retrying in the same Pod size would fail again."""
        res = shard.resources
        ooms = oom_counts(shard.run.store, shard.stage)
        for tid in shard.targets:
            unit = self.batcher.unit_resources(shard.run, shard.stage, tid, ooms)
            if float(unit.memory.rstrip("Gi")) > float(res.memory.rstrip("Gi")):
                res = unit
        if res != shard.resources:
            log.info("%s shard %s/%d: OOMKilled; retrying with %s of memory (was %s)",
                     shard.stage, shard.batch, shard.index, res.memory, shard.resources.memory)
        return res

    @staticmethod
    def _record_failures(shard: Shard, st) -> None:
        """Record the units the worker could not (never scheduled, OOM-killed, deleted), so the
        summary table and a later session see Kubernetes' reason."""
        for tid in shard.targets:
            if shard.run.record(shard.stage, tid) is None:
                UnitRecord(shard.stage, tid, error=st.detail, exit_code=st.exit_code,
                           reason=st.reason, executor="kubernetes", pod=st.pod,
                           job=shard.job).write(shard.run.store)

    def _abandon(self, shard: Shard, st, pods) -> None:
        """Stop an index reported failed while its Job still wants to run it (no node within
        ``unschedulable_timeout``): mark its shard abandoned in the batch file, so any Pod of
        that index starting later runs nothing and cannot overwrite the failure records, and
        delete its Pods (the Job controller may create a replacement: it exits 0 at once)."""
        from kubernetes.client.rest import ApiException

        log.warning("%s shard %s/%d abandoned: %s", shard.stage, shard.batch, shard.index,
                    st.detail)
        shard.run.abandon_shard(shard.batch, shard.index, st.detail or "abandoned")
        self._abandoned_jobs.add(shard.job)
        for pod in pods:
            if pod.status.phase in ("Succeeded", "Failed"):
                continue
            try:
                self.api.core.delete_namespaced_pod(pod.metadata.name, self.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def _stop_if_done(self, job_name: str, job, st) -> None:
        """Delete a Job that can do nothing more for us once none of its indexes is tracked:
        one whose last index failed (so it stops retrying / waiting), or one with an abandoned
        index (which would otherwise keep it active for ever). A Job whose indexes all
        finished completes by itself and is kept (TTL) for diagnosis."""
        if self.tracker.has_job(job_name):
            return
        abandoned = job_name in self._abandoned_jobs
        self._abandoned_jobs.discard(job_name)
        if job is None or (st.state == "finished" and not abandoned):
            return
        done = any(c.type in ("Complete", "Failed") and c.status == "True"
                   for c in job.status.conditions or [])
        if not done:
            self._delete(job_name)

    def cancel(self) -> None:
        """Delete every Job in flight (their Pods are stopped by the garbage collector)."""
        self.batcher.clear()
        for name in self.tracker.job_names():
            self._delete(name)
        self.tracker.clear()

    def close(self) -> None:
        if self._informer is not None:
            self._informer.stop()
        if self._api is not None and self._own_api:
            self._api.close()
            self._api = None

