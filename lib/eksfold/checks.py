"""Set-up checks for this machine and for the EKS cluster, as tables (notebook 00).

Each check is a row ``(area, check, status, detail)`` with status ``ok``, ``missing``
(needed and absent), ``optional`` (absent, only some features need it), ``forbidden`` (the
Kubernetes identity may not read it) or ``info``. Nothing here changes anything.

>>> from eksfold import checks
>>> checks.local_checks("data/db/uniprot20k.fasta")           # doctest: +SKIP
>>> checks.cluster_checks()                                    # doctest: +SKIP
"""
from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path

from .alignment.tools import tool_version as _tool_version

# (tool, needed for, required?)
TOOLS = (("jackhmmer", "the align stage", True),
         ("hhblits", "alignments with --bfd/--uniclust30", False),
         ("TMalign", "checking the accuracy metrics", False),
         ("kalign", "alignment benchmarks", False),
         ("chromium", "the report tests (headless browser)", False))


def _row(area, check, status, detail=""):
    return {"area": area, "check": check, "status": status, "detail": str(detail)}


def _table(rows):
    import pandas as pd
    return pd.DataFrame(rows, columns=["area", "check", "status", "detail"])


def _python_rows():
    in_venv = sys.prefix != sys.base_prefix
    from . import __file__ as pkg, __version__
    return [_row("python", "interpreter", "ok", f"{platform.python_version()} {sys.executable}"),
            _row("python", "virtual environment", "ok" if in_venv else "info",
                 sys.prefix if in_venv else "not in a venv (fine inside the worker/notebook image)"),
            _row("python", "eksfold", "ok", f"{__version__} at {Path(pkg).parent}")]


def _tool_rows():
    rows = []
    for tool, purpose, required in TOOLS:
        path = shutil.which(tool)
        if path:
            version = _tool_version([tool, "-h"]) if tool in ("jackhmmer", "hhblits") else None
            rows.append(_row("tools", tool, "ok", f"{path}" + (f" ({version})" if version else "")))
        else:
            rows.append(_row("tools", tool, "missing" if required else "optional",
                             f"not on PATH; needed for {purpose} (make setup installs it)"))
    return rows


def _openfold_rows():
    try:
        import torch
        import openfold  # noqa: F401
        from openfold.model.model import AlphaFold  # noqa: F401
    except Exception as exc:  # ImportError, or a broken build raising anything
        return [_row("openfold", "import", "missing",
                     f"{type(exc).__name__}: {exc} (make setup runs tools/install_openfold.sh)")]
    rows = [_row("openfold", "import", "ok", Path(openfold.__file__).parent)]
    try:
        import attn_core_inplace_cuda  # noqa: F401  (OpenFold's extension; a CPU stub without nvcc)
        rows.append(_row("openfold", "attention extension", "ok", "attn_core_inplace_cuda"))
    except ImportError as exc:
        rows.append(_row("openfold", "attention extension", "missing", exc))
    rows.append(_row("device", "torch", "ok", f"{torch.__version__}, {torch.get_num_threads()} threads"))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            rows.append(_row("device", f"cuda:{i}", "ok",
                             f"{p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}"))
    else:
        rows.append(_row("device", "cuda", "info",
                         "no GPU: inference runs on CPU (device='auto' picks it)"))
    return rows


def _machine_rows():
    mem = ""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        mem = f", {int(info['MemTotal'].split()[0]) / 2**20:.1f} GiB RAM"
    except (OSError, KeyError, ValueError):
        pass
    return [_row("device", "cpu", "ok", f"{os.cpu_count()} cores{mem}")]


def _database_rows(database):
    if not database:
        from .site import BUILD_HINT, default_database
        database = default_database()
        if database is None:
            return [_row("database", "sequence database", "missing", f"none configured: {BUILD_HINT}")]
    path = Path(database)
    if not path.exists():
        return [_row("database", str(path), "missing", "not found (make setup builds data/db)")]
    if path.is_file() and path.stat().st_size < 2**30:
        with path.open("rb") as fh:
            n = sum(chunk.count(b"\n>") for chunk in iter(lambda: fh.read(2**20), b""))
        with path.open("rb") as fh:
            n += fh.read(1) == b">"
        return [_row("database", str(path), "ok",
                     f"{path.stat().st_size / 2**20:.1f} MiB, {n} sequences")]
    return [_row("database", str(path), "ok", "present")]


def _viewer_rows():
    from .errors import MissingDependencyError
    try:
        from .views import threedmol_js_path
        return [_row("notebooks", "3Dmol.js (offline)", "ok", threedmol_js_path())]
    except MissingDependencyError as exc:
        return [_row("notebooks", "3Dmol.js (offline)", "missing", exc)]


def local_checks(database=None, openfold: bool = True):
    """Tools, Python environment, OpenFold, device and the sequence database on this machine.

    Parameters
    ----------
    database : str or path-like, optional
        A FASTA or database path to check (count sequences of files under 1 GiB).
    openfold : bool
        Import OpenFold and torch (a few seconds).

    Returns
    -------
    pandas.DataFrame
        ``area, check, status, detail``; ``status == "missing"`` rows need fixing.
    """
    rows = _python_rows() + _tool_rows()
    if openfold:
        rows += _openfold_rows()
    rows += _machine_rows() + _database_rows(database) + _viewer_rows()
    return _table(rows)


# -------------------------------------------------------------------------- the cluster

def _api_call(area, what, call):
    """Run one API call; a refused or failed one becomes a row instead of an exception."""
    from kubernetes.client.rest import ApiException
    try:
        return call(), None
    except ApiException as exc:
        status = "forbidden" if exc.status == 403 else ("missing" if exc.status == 404 else "error")
        return None, _row(area, what, status, f"HTTP {exc.status} {exc.reason}")


def _node_rows(api):
    from .k8s import names
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

    from .k8s import names
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
    from .k8s import names
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
    from .k8s import names
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
    from .k8s import client as k8sclient
    from .k8s import names
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


def problems(table) -> list[str]:
    """The rows of a check table that need fixing, as lines."""
    bad = table[table.status == "missing"]
    return [f"{r.area}/{r.check}: {r.detail}" for r in bad.itertuples()]


if __name__ == "__main__":  # python -m eksfold.checks [DATABASE]
    t = local_checks(sys.argv[1] if len(sys.argv) > 1 else None)
    print(t.to_string(index=False))
    sys.exit(1 if problems(t) else 0)
