"""How many unit Pods of one size the cluster can run at once: the bound on a submission's shards.

More shards than Pods that can run together buy no speed, only API objects (Pods, and Jobs on
servers without Indexed Jobs) and a fixed cost each. So a submission is cut into at most

- the Pods that fit on the pool's nodes now (allocatable CPU, memory and GPUs of the nodes
  labelled with the pool, and of the GPU class a Pod may use), or, where more,
- the Pods the pool's Karpenter NodePools may still grow to (their ``spec.limits``: a pool
  scaled to zero has no nodes, but its limits say what it can become),

and at most the executor's ``max_shards`` for the stage. Where the server has neither nodes of
the pool nor NodePools (an unlabelled cluster), the configured maximum stands alone.
"""
from __future__ import annotations

import logging
import time

from ...k8s import names
from ...k8s.sizing import Resources

log = logging.getLogger(__name__)

CACHE_S = 60.0


def quantity(value) -> float:
    """A Kubernetes quantity as a number (cores, bytes, count)."""
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(str(value)))


def fits(available: dict, res: Resources) -> int:
    """How many Pods with ``res``'s requests fit in ``available`` (cpu, memory, gpu)."""
    counts = [available.get("cpu", 0.0) // quantity(res.cpu),
              available.get("memory", 0.0) // quantity(res.memory)]
    if res.gpu:
        counts.append(available.get(names.GPU_RESOURCE, 0.0) // res.gpu)
    return int(max(0, min(counts)))


def _pool(stage_pool: str) -> str:
    return names.INFER_POOL if stage_pool == "gpu" else names.ALIGN_POOL


def _class_ok(labels: dict, res: Resources) -> bool:
    """A node of the GPU class a Pod may use (large units only on large GPUs)."""
    if not res.gpu_class:
        return True
    node_class = labels.get(names.GPU_CLASS_LABEL)
    return node_class == "large" if res.gpu_class == "large" else node_class in names.GPU_CLASSES


def node_slots(nodes: list[dict], pool: str, res: Resources) -> int | None:
    """Pods of ``res`` the ready, schedulable nodes of ``pool`` hold (None: no such nodes)."""
    mine = [n for n in nodes if n["labels"].get(names.POOL_LABEL) == pool
            and _class_ok(n["labels"], res) and not n["unschedulable"]]
    if not mine:
        return None
    return sum(fits(n["allocatable"], res) for n in mine)


def nodepool_slots(nodepools: list[dict], pool: str, res: Resources) -> int | None:
    """Pods of ``res`` the NodePools of ``pool`` may hold at their limits (None: no limits)."""
    total, seen = 0, False
    for np_ in nodepools:
        spec = np_.get("spec") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if np_["metadata"]["name"] != pool and labels.get(names.POOL_LABEL) != pool:
            continue
        if names.GPU_CLASS_LABEL in labels and not _class_ok(labels, res):
            continue
        limits = spec.get("limits") or {}
        if not limits:
            continue
        seen = True
        available = {k: quantity(v) for k, v in limits.items()}
        for key in ("cpu", "memory", names.GPU_RESOURCE):   # an unlimited dimension
            available.setdefault(key, float("inf"))
        total += fits(available, res)
    return total if seen else None


class ClusterCapacity:
    """Reads nodes and NodePools (cached ``CACHE_S``) and answers :meth:`slots`."""

    def __init__(self, api_of):
        self._api_of = api_of        # a callable: the executor's Api (connected lazily)
        self._read_at, self._nodes, self._nodepools = -1e9, [], []

    def _refresh(self) -> None:
        if time.monotonic() - self._read_at < CACHE_S:
            return
        api = self._api_of()
        nodes = []
        for node in api.core.list_node().items:
            ready = any(c.type == "Ready" and c.status == "True"
                        for c in (node.status.conditions or []))
            nodes.append({"labels": node.metadata.labels or {},
                          "allocatable": {k: quantity(v)
                                          for k, v in (node.status.allocatable or {}).items()},
                          "unschedulable": bool(node.spec.unschedulable) or not ready})
        self._nodes, self._nodepools = nodes, _nodepools(api)
        self._read_at = time.monotonic()

    def slots(self, stage_pool: str, res: Resources) -> int | None:
        """Pods of ``res`` the stage's pool can run at once (None: the cluster does not say)."""
        try:
            self._refresh()
        except Exception as exc:   # noqa: BLE001 - RBAC or a transient error: the configured bound
            log.info("cluster capacity unknown (%s); shards bounded by max_shards only", exc)
            return None
        pool = _pool(stage_pool)
        found = [v for v in (node_slots(self._nodes, pool, res),
                             nodepool_slots(self._nodepools, pool, res)) if v is not None]
        return max(found) if found else None


def _nodepools(api) -> list[dict]:
    """Karpenter's NodePools, or [] where the CRD is not served."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        return client.CustomObjectsApi(api.core.api_client).list_cluster_custom_object(
            "karpenter.sh", "v1", "nodepools").get("items", [])
    except ApiException as exc:
        if exc.status in (403, 404):
            return []
        raise
