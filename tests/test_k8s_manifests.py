"""Every Job manifest eksfold can emit, validated strictly against the Kubernetes schema.

The schema is the one of the newest Kubernetes minor that both EKS and the pinned
kubernetes-validate support. A "no schema" warning counts as a failure. The same manifests are
also round-tripped through the official client's models (which reject non-string quantities).
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
from kubernetes import client as kclient

from eksfold.contracts import POD_NAME_ENV
from eksfold.k8s import jobs, names
from eksfold.stages import STAGES, get_stage

K8S_SCHEMA_VERSION = "1.33.0"     # EKS standard support 1.31-1.34; kubernetes-validate 1.34 ships <= 1.33
LENGTHS = {"short": 80, "long": 1800, "very-long": 3200}
VALIDATE = [str(Path(sys.executable).with_name("kubernetes-validate")), "--strict",
            "-k", K8S_SCHEMA_VERSION]


def all_manifests() -> dict[str, dict]:
    """name -> manifest for stages x lengths x Kueue x indexed/fallback x volume."""
    out = {}
    sizing = jobs.Sizing()
    for stage, (lname, length), kueue, indexed, pvc in itertools.product(
            STAGES, LENGTHS.items(), (False, True), (True, False), (names.PVC_NAME, None)):
        res = sizing.for_length(stage, length)
        opts = jobs.JobOptions(kueue=kueue, pvc=pvc, env={"EXTRA": "1"},
                               active_deadline_seconds=7200 if kueue else None)
        root = "/fsx/runs/cameo" if pvc else "s3://bucket/runs/cameo"
        batch = f"{stage}-0001-{res.size}"
        for i, job in enumerate(jobs.build_jobs(
                run_id=jobs.run_id(root), pod_root=root, stage=stage, batch=batch,
                targets=["7ABC_A", "7XYZ_B", "8AAA_C"], resources=res, options=opts,
                indexed=indexed)):
            key = (f"{stage}-{lname}-{'kueue' if kueue else 'plain'}-"
                   f"{'indexed' if indexed else 'fallback'}-{'fsx' if pvc else 's3'}-{i}")
            out[key] = job
    # the executor's retry of a fallback unit (attempt 1) on servers without podFailurePolicy
    res = sizing.for_length("infer", 80)
    out["infer-short-plain-fallback-fsx-retry-1"] = jobs.build_job(
        run_id=jobs.run_id("/fsx/runs/cameo"), pod_root="/fsx/runs/cameo", stage="infer",
        batch="infer-0002-std", targets=["7ABC_A", "7XYZ_B"], resources=res, index=1, attempt=1)
    return out


MANIFESTS = all_manifests()


def validate(paths: list[Path]) -> str:
    """Run kubernetes-validate once over the files; raise on an error or any warning."""
    proc = subprocess.run(VALIDATE + [str(p) for p in paths], capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    bad = [line for line in out.splitlines() if not line.startswith("INFO ")]
    if proc.returncode != 0 or bad:
        raise AssertionError(f"kubernetes-validate rc={proc.returncode}:\n" + "\n".join(bad or [out]))
    return out


def test_every_manifest_validates_strictly(tmp_path):
    paths = []
    for key, manifest in MANIFESTS.items():
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(manifest, indent=1))
        paths.append(path)
    out = validate(paths)
    assert out.count("passed") == len(paths) == len(MANIFESTS)


def test_validator_rejects_typos_and_unknown_kinds(tmp_path):
    """The check above is only worth something if it fails on what it should catch."""
    job = next(iter(MANIFESTS.values()))
    typo = dict(job, spec={**job["spec"], "backofLimitPerIndex": 1})
    crd = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
           "metadata": {"name": names.GPU_QUEUE}, "spec": {"clusterQueue": "gpu"}}
    for name, obj in {"typo": typo, "crd": crd}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(obj))
        with pytest.raises(AssertionError):
            validate([tmp_path / f"{name}.json"])


@pytest.mark.parametrize("key", sorted(MANIFESTS))
def test_client_model_round_trip(key):
    manifest = MANIFESTS[key]
    model = kclient.V1Job.from_dict(manifest)
    back = kclient.ApiClient().sanitize_for_serialization(model)
    assert back == manifest     # nothing dropped (unknown field) or retyped


def test_client_rejects_integer_quantities():
    """Why every quantity is emitted as a string: the client's models refuse integers."""
    job = json.loads(json.dumps(MANIFESTS[sorted(MANIFESTS)[0]]))
    job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = 8
    with pytest.raises(Exception, match="valid string"):
        kclient.V1Job.from_dict(job)


def _walk_quantities(manifest):
    for c in manifest["spec"]["template"]["spec"]["containers"]:
        for kind in ("requests", "limits"):
            yield from c["resources"].get(kind, {}).items()
    for v in manifest["spec"]["template"]["spec"]["volumes"]:
        if "emptyDir" in v:
            yield "sizeLimit", v["emptyDir"]["sizeLimit"]


@pytest.mark.parametrize("key", sorted(MANIFESTS))
def test_manifest_contract(key):
    job = MANIFESTS[key]
    stage = job["metadata"]["labels"][names.STAGE_LABEL]
    pod = job["spec"]["template"]
    spec = pod["spec"]
    (c,) = spec["containers"]
    assert all(isinstance(q, str) for _, q in _walk_quantities(job))
    assert len(job["metadata"]["name"]) <= 63
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == names.WORKER_SERVICE_ACCOUNT
    assert pod["metadata"]["annotations"][names.DO_NOT_DISRUPT_ANNOTATION] == "true"
    assert c["command"][:3] == ["python", "-m", "eksfold.worker"]
    args = dict(zip(c["command"][3::2], c["command"][4::2]))
    assert args["--stage"] == stage and args["--batch"].startswith(stage)
    assert {"name": "shm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    if "-fsx-" in key:
        assert {"name": "fsx", "mountPath": names.MOUNT_PATH} in c["volumeMounts"]
        assert args["--root"].startswith(names.MOUNT_PATH + "/")
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    exprs = {e["key"]: e["values"] for e in terms["nodeSelectorTerms"][0]["matchExpressions"]}
    if stage == "infer":
        assert c["resources"]["limits"][names.GPU_RESOURCE] == "1"
        assert exprs[names.POOL_LABEL] == [names.INFER_POOL]
        assert {"key": names.GPU_TAINT_KEY, "operator": "Exists",
                "effect": "NoSchedule"} in spec["tolerations"]
        want = ["large"] if "-long-" in key or "very-long" in key else list(names.GPU_CLASSES)
        assert exprs[names.GPU_CLASS_LABEL] == want
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert ("EKSFOLD_LOW_MEMORY" in env) == ("very-long" in key)
    else:
        assert names.GPU_RESOURCE not in c["resources"]["limits"]
        assert exprs == {names.POOL_LABEL: [names.ALIGN_POOL]} and "tolerations" not in spec
    # the unit record names the real Pod (downward API), not $HOSTNAME (shared on Indexed Jobs)
    assert {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} \
        in c["env"]
    queue = job["metadata"]["labels"].get(names.QUEUE_LABEL)
    pool_queue = {"cpu": names.CPU_QUEUE, "gpu": names.GPU_QUEUE}[get_stage(stage).pool]
    assert queue == (pool_queue if "-kueue-" in key else None)   # every stage, score included
    if "-indexed-" in key:
        s = job["spec"]
        assert s["completionMode"] == "Indexed" and s["completions"] == 3
        assert "--index" not in c["command"]           # the worker reads $JOB_COMPLETION_INDEX
        rules = s["podFailurePolicy"]["rules"]
        assert rules[0]["action"] == "Ignore"
        assert rules[0]["onPodConditions"][0]["type"] == "DisruptionTarget"
        assert rules[1] == {"action": "FailIndex", "onExitCodes": {
            "containerName": "worker", "operator": "In", "values": [2]}}
        assert s["backoffLimitPerIndex"] >= 0 and s["maxFailedIndexes"] == 3
    else:
        index = int(key.rsplit("-", 1)[1])
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env[jobs.INDEX_ENV] == args["--index"] == str(index)
        assert "completionMode" not in job["spec"] and job["spec"]["completions"] == 1
        assert job["spec"]["backoffLimit"] == 0     # the executor applies the retry policy
        assert "podFailurePolicy" not in job["spec"]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_sizing_by_length():
    s = jobs.Sizing()
    assert s.for_length("infer", 300).gpu_class == "standard"
    assert s.for_length("infer", 1001).gpu_class == "large"
    assert s.for_length("infer", 5000).low_memory
    assert s.for_length("align", 50).gpu == 0
    small = s.scaled(cpu="100m", memory="64Mi")
    assert small.for_length("infer", 5000).memory == "64Mi"
    assert small.for_length("infer", 5000).gpu_class == "large"


def test_names_are_dns_labels():
    rid = jobs.run_id("/fsx/runs/A Very_Long Run Name With Spaces/")
    assert len(rid) <= 23 and rid == rid.lower()
    name = jobs.job_name(rid, "infer-0123-xlarge", index=99999)
    assert len(name) <= 63 and name.endswith("-99999")
    retry = jobs.job_name(rid, "infer-0123-xlarge", index=99999, attempt=12)
    assert len(retry) <= 63 and retry.endswith("-99999r12") and retry != name
    assert jobs.run_id("/fsx/runs/a") != jobs.run_id("s3://b/runs/a")


def test_inference_is_routed_by_predicted_gpu_memory_with_a_gpu_profile(tmp_path):
    """With a CUDA cost model the GPU class and memory request come from predicted memory,
    not from length thresholds (table: memory grows ~L^2; 24 GB and 80 GB classes)."""
    import pandas as pd

    from eksfold.errors import TargetError
    from eksfold.memory.costmodel import CostModel

    rows = []
    for setting, scale in (("default", 1.0), ("chunk", 0.5), ("lma", 0.1)):
        for L in (100, 400, 800, 1600):
            rows.append({"length": L, "setting": setting, "preset": "demo", "device": "cuda",
                         "inference_s": L / 100 / scale, "peak_rss_mb": 3000 + L,
                         "peak_cuda_reserved_mb": 2000 + scale * 0.02 * L * L,
                         "peak_cuda_alloc_mb": 1800 + scale * 0.02 * L * L, "error": None})
    model = CostModel.fit(pd.DataFrame(rows), "cuda")
    sizing = jobs.Sizing(gpu_model=model)
    short, mid, huge = (sizing.for_length("infer", L) for L in (300, 2500, 4000))
    assert short.gpu_class == "standard" and not short.low_memory     # fast setting fits 24 GB
    assert mid.gpu_class == "standard" and mid.low_memory             # the cheaper GPU, with LMA
    assert huge.gpu_class == "large" and huge.low_memory              # only LMA on 80 GB fits
    assert int(short.memory[:-2]) >= 8 and huge.memory.endswith("Gi")
    with pytest.raises(TargetError, match="largest GPU class"):
        sizing.for_length("infer", 20000)


def test_inference_pods_run_the_image_their_model_family_names(monkeypatch):
    from eksfold.errors import ConfigError
    from eksfold.k8s.images import family_env, sibling, stage_image

    base = "123.dkr.ecr.us-east-1.amazonaws.com/eksfold-worker:0.1.0"
    of3 = "123.dkr.ecr.us-east-1.amazonaws.com/eksfold-worker-openfold3:0.1.0"
    monkeypatch.delenv(family_env("openfold3"), raising=False)
    # only the stage that loads the model, and only for a family with its own image
    assert stage_image(base, {}, "infer", "of3-tiny") == of3
    assert stage_image(base, {}, "align", "of3-tiny") == base
    assert stage_image(base, {}, "relax", "of3") == base
    assert stage_image(base, {}, "infer", "tiny") == base
    # explicit choices win: the executor option, then the environment
    monkeypatch.setenv(family_env("openfold3"), "elsewhere/of3:9")
    assert stage_image(base, {}, "infer", "of3") == "elsewhere/of3:9"
    assert stage_image(base, {"openfold3": "mine:1"}, "infer", "of3") == "mine:1"
    assert sibling("eksfold-worker", "eksfold-worker-openfold3") == "eksfold-worker-openfold3:latest"
    assert sibling("localhost:5000/eksfold-worker", "x") == "localhost:5000/x:latest"
    with pytest.raises(ConfigError, match="pinned by digest"):
        sibling("r/eksfold-worker@sha256:" + "0" * 64, "eksfold-worker-openfold3")


def test_the_openfold3_worker_image_is_built_and_pushed_under_the_name_the_backend_asks_for():
    from eksfold.models import get_backend

    name = get_backend("of3").worker_image
    script = (PROJECT / "cluster" / "scripts" / "build-push.sh").read_text()
    assert f"/{name}:" in script and name in script.split("for name in", 1)[1].split("\n")[0]
    assert (PROJECT / "cluster" / "images" / name.replace("eksfold-", "")).is_dir()


def test_a_fractional_cpu_request_gets_its_threads_rounded_up():
    """Align Pods ask 7.5 CPUs (to pack a node's allocatable CPU) and run 8 threads."""
    from eksfold.k8s.jobs import _env
    from eksfold.k8s.sizing import Resources, Sizing

    align = Sizing().for_length("align", 300)
    assert align.cpu == "7.5"
    env = {e["name"]: e.get("value") for e in _env(align, jobs.JobOptions(), None, None)}
    assert env["OMP_NUM_THREADS"] == "8"
    env = {e["name"]: e.get("value") for e in _env(Resources("x", cpu="500m", memory="1Gi"),
                                                   jobs.JobOptions(), None, None)}
    assert env["OMP_NUM_THREADS"] == "1"
