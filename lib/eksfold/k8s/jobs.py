"""Job manifests for work units: pure functions that return plain dicts.

One ``batch/v1`` Job runs one stage over a *batch* (``ROOT/batches/<name>.json``): a list of
*shards*, each a list of targets that one warm worker runs back to back. On servers with Indexed
Jobs, per-index backoff and pod failure policies (Kubernetes >= 1.29, every EKS version in
standard support) that is one Indexed Job whose Pod ``i`` runs shard ``i``:
``python -m eksfold.worker --root ROOT --stage STAGE --batch NAME`` with ``--index`` taken from
``$JOB_COMPLETION_INDEX``. Older servers silently drop those fields, so the *fallback* form is
one Job per shard carrying ``JOB_COMPLETION_INDEX`` and ``--index`` explicitly (the executor
then applies the failure policy itself). A retried index resumes its shard: the worker skips
targets already committed.

Resources depend on the stage and the sequence length (:mod:`.sizing`).

>>> sizing = Sizing()
>>> job = build_job(run_id="demo-1a2b3c4d", pod_root="/fsx/runs/demo", stage="infer",
...                 batch="infer-0001-large", shards=[["T1"], ["T2", "T3"]],
...                 resources=sizing.for_length("infer", 1800))
>>> job["spec"]["completionMode"], job["spec"]["completions"]
('Indexed', 2)
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from ..contracts import POD_NAME_ENV, ROOT_ANNOTATION, ExitCode
from ..stages import get_stage, stage_names
from . import names
from .sizing import Resources, SizeClass, Sizing  # noqa: F401  (part of this module's API)

CONTAINER = "worker"
INDEX_ENV = "JOB_COMPLETION_INDEX"
INDEX_LABEL = "eksfold.io/index"             # fallback form: the shard's index in its batch
SHARD_ENV = "EKSFOLD_TARGETS"                # fallback form: the shard's targets, comma-separated
BATCH_LABEL = "eksfold.io/batch"
EXIT_BAD_INPUT = int(ExitCode.BAD_INPUT)     # worker contract: deterministic, never retry


@dataclass
class JobOptions:
    """Cluster-side settings of the Jobs (everything that is not the unit itself)."""

    namespace: str = names.NAMESPACE
    image: str = f"{names.WORKER_IMAGE}:latest"
    # model family -> image of its inference Pods (eksfold.k8s.images: default, the family's
    # repository beside `image`)
    images: dict = field(default_factory=dict)
    image_pull_policy: str = "IfNotPresent"
    service_account: str = names.WORKER_SERVICE_ACCOUNT
    pvc: str | None = names.PVC_NAME           # None: no shared volume (s3:// run roots)
    mount_path: str = names.MOUNT_PATH
    kueue: bool = False                        # label Jobs with the stage's LocalQueue
    queues: dict = field(default_factory=lambda: {"cpu": names.CPU_QUEUE,   # by stage pool
                                                  "gpu": names.GPU_QUEUE})
    retries: int = 2                           # per index (Job controller or, fallback, executor)
    max_failed_indexes: int | None = None      # fail a whole batch beyond this; None: never
    ttl_seconds: int | None = 86400            # keep finished Jobs a day for logs/diagnosis
    active_deadline_seconds: int | None = None
    python: str = "python"
    env: dict = field(default_factory=dict)


# -- names ------------------------------------------------------------------------------------
_DNS = re.compile(r"[^a-z0-9-]+")


def dns_label(text: str, max_len: int) -> str:
    """Lower-case, [a-z0-9-], starts/ends alphanumeric, at most ``max_len`` characters."""
    out = _DNS.sub("-", text.lower()).strip("-")[:max_len].strip("-")
    return out or "x"


def run_id(pod_root: str) -> str:
    """A stable, label-safe id of a run: its folder name plus a hash of its full root."""
    digest = hashlib.sha256(pod_root.rstrip("/").encode()).hexdigest()[:8]
    base = pod_root.rstrip("/").rsplit("/", 1)[-1]
    return f"{dns_label(base, 14)}-{digest}"


def job_name(run: str, batch: str, index: int | None = None, attempt: int = 0) -> str:
    """``eksfold-<run>-<batch>[-<index>[r<attempt>]]``, at most 63 characters (a label value)."""
    suffix = f"-{index}" if index is not None else ""
    suffix += f"r{attempt}" if attempt else ""
    return dns_label(f"eksfold-{run}-{batch}", 63 - len(suffix)) + suffix


# -- manifests --------------------------------------------------------------------------------
def worker_command(pod_root: str, stage: str, batch: str, index: int | None = None,
                   python: str = "python") -> list[str]:
    """The worker entrypoint (docs/DESIGN.md); without ``index`` it reads $JOB_COMPLETION_INDEX."""
    cmd = [python, "-m", "eksfold.worker", "--root", pod_root, "--stage", stage, "--batch", batch]
    return cmd + (["--index", str(index)] if index is not None else [])


def _affinity(stage: str, res: Resources) -> dict:
    pool = get_stage(stage).pool
    terms = [{"key": names.POOL_LABEL, "operator": "In",
              "values": [names.INFER_POOL if pool == "gpu" else names.ALIGN_POOL]}]
    preferred = []
    if res.gpu_class == "large":
        terms.append({"key": names.GPU_CLASS_LABEL, "operator": "In", "values": ["large"]})
    elif res.gpu_class:
        # a standard unit may use a large GPU when no standard one is free, but prefers its own
        terms.append({"key": names.GPU_CLASS_LABEL, "operator": "In", "values": list(names.GPU_CLASSES)})
        preferred.append({"weight": 100, "preference": {"matchExpressions": [
            {"key": names.GPU_CLASS_LABEL, "operator": "In", "values": [res.gpu_class]}]}})
    node = {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": terms}]}}
    if preferred:
        node["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"nodeAffinity": node}


def _env(res: Resources, opts: JobOptions, index: int | None, shard: list | None) -> list[dict]:
    cpus = float(res.cpu[:-1]) / 1000 if res.cpu.endswith("m") else float(res.cpu)
    # the root filesystem is read-only: caches ($HOME) and scratch go to the /tmp emptyDir
    env = {"PYTHONUNBUFFERED": "1", "EKSFOLD_EXECUTOR": "kubernetes", "HOME": "/tmp",
           "EKSFOLD_SCRATCH": "/tmp",
           # a fractional request (align: 7.5, to pack a node's allocatable CPU) gets the
           # threads of the cores it runs on, rounded up (no CPU limit: nothing throttles it)
           "OMP_NUM_THREADS": str(max(1, math.ceil(cpus)))}
    if res.low_memory:
        env["EKSFOLD_LOW_MEMORY"] = "1"
    if index is not None:
        env[INDEX_ENV] = str(index)
    if shard is not None:
        env[SHARD_ENV] = ",".join(shard)
    env.update({k: str(v) for k, v in opts.env.items()})
    # the unit record names its Pod: metadata.name, not $HOSTNAME (<job>-<index> on Indexed
    # Jobs, shared by an index's retries)
    return [{"name": k, "value": v} for k, v in env.items()] + [
        {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]


def pod_template(*, run: str, pod_root: str, stage: str, batch: str, resources: Resources,
                 options: JobOptions, index: int | None = None, shard: list | None = None) -> dict:
    """The Pod template of a unit Job (index/shard given only in the fallback form)."""
    labels = {names.APP_LABEL: names.APP_NAME, names.RUN_LABEL: run,
              names.STAGE_LABEL: stage, BATCH_LABEL: dns_label(batch, 63)}
    annotations = {names.DO_NOT_DISRUPT_ANNOTATION: "true"}
    if index is not None:
        labels[INDEX_LABEL] = str(index)
    # read-only root filesystem: scratch (/tmp, also $HOME for tool caches) on an emptyDir
    volumes = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": resources.shm}},
               {"name": "tmp", "emptyDir": {"sizeLimit": resources.tmp}}]
    mounts = [{"name": "shm", "mountPath": "/dev/shm"}, {"name": "tmp", "mountPath": "/tmp"}]
    if options.pvc:
        volumes.append({"name": "fsx", "persistentVolumeClaim": {"claimName": options.pvc}})
        mounts.append({"name": "fsx", "mountPath": options.mount_path})
    container = {
        "name": CONTAINER,
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": worker_command(pod_root, stage, batch, index, options.python),
        "env": _env(resources, options, index, shard),
        "resources": resources.requirements(),
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    spec = {
        "restartPolicy": "Never",
        "serviceAccountName": options.service_account,
        "securityContext": {"runAsNonRoot": True, "runAsUser": names.WORKER_UID,
                            "runAsGroup": names.WORKER_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "affinity": _affinity(stage, resources),
        "containers": [container],
        "volumes": volumes,
    }
    if resources.gpu:
        spec["tolerations"] = [{"key": names.GPU_TAINT_KEY, "operator": "Exists",
                                "effect": "NoSchedule"}]
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec}


def build_job(*, run_id: str, pod_root: str, stage: str, batch: str,
              shards: list[list[str]] | None = None, targets: list[str] | None = None,
              resources: Resources, options: JobOptions | None = None,
              index: int | None = None, attempt: int = 0) -> dict:
    """One Job manifest for a batch of ``shards`` (``targets``: one target per shard).

    ``index=None``: the Indexed form over all shards. ``index=i``: the fallback form, one
    Job running only ``shards[i]`` (for servers without Indexed Jobs / per-index backoff). The
    fallback Job never retries by itself (``backoffLimit: 0``): without ``podFailurePolicy`` it
    could not tell bad input or a node disruption from other failures, so the executor decides
    and submits attempt ``attempt + 1`` as a new Job.
    """
    if stage not in stage_names():
        raise ValueError(f"unknown stage {stage!r}")
    shards = shards if shards is not None else [[t] for t in targets or []]
    opts = options or JobOptions()
    shard = shards[index] if index is not None else None
    labels = {names.APP_LABEL: names.APP_NAME, names.RUN_LABEL: run_id,
              names.STAGE_LABEL: stage, BATCH_LABEL: dns_label(batch, 63)}
    if opts.kueue:
        labels[names.QUEUE_LABEL] = opts.queues[get_stage(stage).pool]
    meta = {"name": job_name(run_id, batch, index, attempt), "namespace": opts.namespace,
            "labels": labels,
            "annotations": {names.TARGET_ANNOTATION: json.dumps([list(s) for s in shards]),
                            ROOT_ANNOTATION: pod_root}}
    template = pod_template(run=run_id, pod_root=pod_root, stage=stage, batch=batch,
                            resources=resources, options=opts, index=index, shard=shard)
    if index is None:
        n = len(shards)
        spec = {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            "backoffLimitPerIndex": opts.retries,
            # one bad protein must not stop the others: by default every index runs
            "maxFailedIndexes": n if opts.max_failed_indexes is None
            else min(n, opts.max_failed_indexes),
            "podFailurePolicy": {"rules": [
                # spot reclaim, node drain, preemption: retry without counting a failure
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                          "status": "True"}]},
                # deterministic bad input: fail this index now, retries would fail the same way
                {"action": "FailIndex", "onExitCodes": {"containerName": CONTAINER,
                                                        "operator": "In",
                                                        "values": [EXIT_BAD_INPUT]}},
            ]},
            "template": template,
        }
    else:
        spec = {"completions": 1, "parallelism": 1, "backoffLimit": 0, "template": template}
    if opts.ttl_seconds is not None:
        spec["ttlSecondsAfterFinished"] = opts.ttl_seconds
    if opts.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = opts.active_deadline_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def build_jobs(*, run_id: str, pod_root: str, stage: str, batch: str,
               shards: list[list[str]] | None = None, targets: list[str] | None = None,
               resources: Resources, options: JobOptions | None = None,
               indexed: bool = True) -> list[dict]:
    """The Job(s) for one batch: one Indexed Job, or one fallback Job per shard."""
    shards = shards if shards is not None else [[t] for t in targets or []]
    kw = dict(run_id=run_id, pod_root=pod_root, stage=stage, batch=batch, shards=shards,
              resources=resources, options=options)
    if indexed:
        return [build_job(**kw)]
    return [build_job(**kw, index=i) for i in range(len(shards))]
