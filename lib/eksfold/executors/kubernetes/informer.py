"""A watch-fed cache of the run's Jobs and Pods, so polling costs no API calls.

One thread per kind lists the objects once (for a resourceVersion), then follows a watch from
there; events update the cache, an expired watch (410 Gone) or a dropped connection relists.
:meth:`Informer.snapshot` returns the cached objects, the same shape the list calls gave. The
API is asked twice per (re)connection, not per poll, and never per target.
"""
from __future__ import annotations

import logging
import threading
import time

from ...k8s.status import UnitStatus, pod_index

log = logging.getLogger(__name__)


class Informer:
    def __init__(self, api, namespace: str, selector: str, timeout_s: int = 60):
        self.api, self.namespace, self.selector, self.timeout_s = api, namespace, selector, timeout_s
        self.objects = {"jobs": {}, "pods": {}}
        self.synced = {"jobs": threading.Event(), "pods": threading.Event()}
        self.calls = 0                  # list + watch requests made
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._follow, args=(kind,), daemon=True,
                                          name=f"informer-{kind}") for kind in self.objects]
        for thread in self._threads:
            thread.start()

    def _list_fn(self, kind: str):
        return (self.api.batch.list_namespaced_job if kind == "jobs"
                else self.api.core.list_namespaced_pod)

    def _follow(self, kind: str) -> None:
        from kubernetes import watch
        from kubernetes.client.rest import ApiException

        list_fn = self._list_fn(kind)
        while not self._stop.is_set():
            try:
                listed = list_fn(self.namespace, label_selector=self.selector)
                self.calls += 1
                with self._lock:
                    self.objects[kind] = {o.metadata.name: o for o in listed.items}
                self.synced[kind].set()
                version = listed.metadata.resource_version
                while not self._stop.is_set():
                    self.calls += 1
                    stream = watch.Watch().stream(list_fn, self.namespace,
                                                  label_selector=self.selector,
                                                  resource_version=version,
                                                  timeout_seconds=self.timeout_s)
                    for event in stream:
                        obj = event["object"]
                        version = obj.metadata.resource_version
                        with self._lock:
                            if event["type"] == "DELETED":
                                self.objects[kind].pop(obj.metadata.name, None)
                            else:
                                self.objects[kind][obj.metadata.name] = obj
                        if self._stop.is_set():
                            return
            except ApiException as exc:
                if exc.status != 410:   # 410 Gone: the version expired, relist quietly
                    log.warning("watch of %s failed (%s); relisting", kind, exc.reason)
                    time.sleep(1)
            except Exception as exc:  # noqa: BLE001 - connection dropped: relist and go on
                if self._stop.is_set():
                    return
                log.debug("watch of %s interrupted (%s); relisting", kind, exc)
                time.sleep(1)

    def snapshot(self, wait_s: float = 30.0) -> tuple[list, list]:
        """(jobs, pods) as last seen; waits for the first listing of each."""
        for event in self.synced.values():
            event.wait(wait_s)
        with self._lock:
            return list(self.objects["jobs"].values()), list(self.objects["pods"].values())

    def stop(self) -> None:
        self._stop.set()


class Observing:
    """The executor's view of its Jobs and Pods (needs ``api``, ``namespace``, ``watch``,
    ``_informer``, ``_seen_jobs``, ``_list_calls``, ``_selector``)."""

    @property
    def api_calls(self) -> int:
        """List and watch requests made to follow the run (scale test, benchmark)."""
        return self._list_calls + (self._informer.calls if self._informer else 0)

    def _observe(self, run_ids) -> tuple[dict, dict]:
        """(jobs by name, pods by (job name, index)) for the given runs: from the watch-fed
        cache, or two list calls."""
        sel = self._selector(run_ids)
        if self.watch:
            if self._informer is None or self._informer.selector != sel:
                if self._informer is not None:
                    self._list_calls += self._informer.calls
                    self._informer.stop()
                self._informer = Informer(self.api, self.namespace, sel)
            jobs, pod_list = self._informer.snapshot()
        else:
            jobs = self.api.batch.list_namespaced_job(self.namespace, label_selector=sel).items
            pod_list = self.api.core.list_namespaced_pod(self.namespace, label_selector=sel).items
            self._list_calls += 2
        found = {j.metadata.name: j for j in jobs}
        pods: dict[tuple[str, int | None], list] = {}
        for pod in pod_list:
            job = (pod.metadata.labels or {}).get("job-name")
            pods.setdefault((job, pod_index(pod)), []).append(pod)
        return found, pods

    def _settled(self, shard, job, st):
        """With a watch-fed cache Jobs and Pods arrive on two streams: a Job not seen yet is
        pending, not deleted, and a final Job whose Pod's reason has not arrived waits a few
        seconds for it (the retry policy needs the exit code)."""
        if not self.watch:
            return st
        if job is not None:
            self._seen_jobs.add(shard.job)
        elif shard.job not in self._seen_jobs and time.monotonic() - shard.created < 60:
            return UnitStatus("pending")
        if st.state == "failed" and st.exit_code is None and st.reason not in (
                "Unschedulable", "Deleted", "DeadlineExceeded"):
            shard.final_since = shard.final_since or time.monotonic()
            if time.monotonic() - shard.final_since < 10:
                return UnitStatus("pending")
        return st
