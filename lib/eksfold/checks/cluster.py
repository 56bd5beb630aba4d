"""Checks of the EKS cluster: API server, node pools, Kueue queues, the shared volume, Jobs."""
from __future__ import annotations

from pathlib import Path

from .rows import _row, _table


def _api_call(area, what, call):
    """Run one API call; a refused or failed one becomes a row instead of an exception."""
    from kubernetes.client.rest import ApiException
    try:
        return call(), None
    except ApiException as exc:
        status = "forbidden" if exc.status == 403 else ("missing" if exc.status == 404 else "error")
        return None, _row(area, what, status, f"HTTP {exc.status} {exc.reason}")


def _node_rows(api):
    from ..k8s import names
    nodes, err = _api_call("nodes", "list nodes", lambda: api.core.list_node())
    if err:
        err["detail"] += (" - the notebook service account reads no cluster-wide objects; "
                          "ask an admin for `kubectl get nodes -L eksfold.io/pool`")
        return [err]
    rows = []
    for node in nodes.items:
        labels, cap = node.metadata.labels or {}, node.status.capacity or {}
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        pool = labels.get(names.POOL_LABEL, "-")
        detail = (f"pool={pool} gpu-class={labels.get(names.GPU_CLASS_LABEL, '-')} "
                  f"type={labels.get('node.kubernetes.io/instance-type', '-')} "
                  f"cpu={cap.get('cpu')} memory={cap.get('memory')} "
                  f"gpus={cap.get(names.GPU_RESOURCE, 0)}")
        rows.append(_row("nodes", node.metadata.name, "ok" if ready else "info",
                         detail + ("" if ready else " (not ready)")))
    if not rows:
        rows.append(_row("nodes", "nodes", "info", "none yet: Karpenter adds nodes when Jobs wait"))
    return rows


def _queue_rows(api):
    from kubernetes import client as kclient

    from ..k8s import names
    custom = kclient.CustomObjectsApi(api.client)
    found, err = None, None
    for version in ("v1beta2", "v1beta1"):
        found, err = _api_call("queues", "Kueue LocalQueues", lambda: custom.list_namespaced_custom_object(
            "kueue.x-k8s.io", version, api.namespace, "localqueues"))
        if found is not None:
            break
    if found is None:
        err["detail"] += " (is Kueue installed? cluster/kueue/)"
        return [err]
    queues = {q["metadata"]["name"]: q for q in found.get("items", [])}
    rows = []
    for name in (names.CPU_QUEUE, names.GPU_QUEUE):
        q = queues.get(name)
        if q is None:
            rows.append(_row("queues", name, "missing", f"no LocalQueue in {api.namespace}"))
            continue
        st = q.get("status", {})
        rows.append(_row("queues", name, "ok",
                         f"clusterQueue={q.get('spec', {}).get('clusterQueue')} "
                         f"pending={st.get('pendingWorkloads', 0)} "
                         f"admitted={st.get('admittedWorkloads', 0)}"))
    return rows


def _storage_rows(api, mount):
    from ..k8s import names
    rows = []
    pvc, err = _api_call("storage", f"PVC {names.PVC_NAME}", lambda: api.core.read_namespaced_persistent_volume_claim(
        names.PVC_NAME, api.namespace))
    if err:
        rows.append(err)
    else:
        bound = pvc.status.phase == "Bound"
        rows.append(_row("storage", f"PVC {names.PVC_NAME}", "ok" if bound else "missing",
                         f"{pvc.status.phase}, {(pvc.status.capacity or {}).get('storage')}, "
                         f"class={pvc.spec.storage_class_name}"))
    mount = Path(mount)
    for sub in ("", "db", "weights", "runs"):
        path = mount / sub if sub else mount
        rows.append(_row("storage", str(path), "ok" if path.is_dir() else "info",
                         "mounted here" if path.is_dir() else "not visible from this machine"))
    return rows


def _job_rows(api):
    from ..k8s import names
    jobs, err = _api_call("jobs", "eksfold Jobs", lambda: api.batch.list_namespaced_job(
        api.namespace, label_selector=f"{names.APP_LABEL}={names.APP_NAME}"))
    if err:
        return [err]
    active = sum(1 for j in jobs.items if (j.status.active or 0) > 0)
    return [_row("jobs", "eksfold Jobs", "ok", f"{len(jobs.items)} in {api.namespace}, {active} active")]


def cluster_checks(api=None, mount: str | None = None, **connect_options):
    """Nodes and node pools, Kueue queues, shared storage and Jobs of the EKS cluster.

    Parameters
    ----------
    api : eksfold.k8s.client.Api, optional
        A connected client; default :func:`eksfold.k8s.client.connect` with
        ``connect_options`` (in-cluster service account in a JupyterHub Pod, else kubeconfig).
    mount : str, optional
        Where this machine mounts the shared volume (default ``/fsx``).

    Returns
    -------
    pandas.DataFrame
        ``area, check, status, detail``; what the identity may not read shows ``forbidden``.
    """
    from ..k8s import client as k8sclient
    from ..k8s import names
    own = api is None
    api = api or k8sclient.connect(**connect_options)
    try:
        rows = [_row("cluster", "API server", "ok",
                     f"v{api.version[0]}.{api.version[1]}, namespace {api.namespace}, "
                     f"{'in-cluster service account' if k8sclient.in_cluster() else 'kubeconfig'}, "
                     f"Indexed Jobs {'yes' if api.supports_indexed() else 'no (per-unit Jobs)'}")]
        rows += _node_rows(api) + _queue_rows(api) + _storage_rows(api, mount or names.MOUNT_PATH)
        rows += _job_rows(api)
    finally:
        if own:
            api.close()
    return _table(rows)
