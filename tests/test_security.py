"""Security proofs (issue 14): least-privileged containers, least-privilege IAM and RBAC derived
from the calls the code makes, and no credentials in anything a run or a report writes.

Pod checks follow the Kubernetes Pod Security Standard "restricted" (runAsNonRoot,
allowPrivilegeEscalation false, capabilities drop ALL, seccomp RuntimeDefault) plus a read-only
root filesystem. Every departure is listed in EXCEPTIONS with its reason; nothing else is allowed.
"""
from __future__ import annotations

import ast
import base64
import copy
import functools
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cluster_validators as cv
from eksfold.k8s import jobs, names

LIB = cv.REPO / "lib" / "eksfold"
TEST_ENV = {"AWS_ACCOUNT_ID": "111122223333", "AWS_REGION": "eu-west-1", "ZONE_A": "eu-west-1a",
            "ZONE_B": "eu-west-1b", "CLUSTER_NAME": "fold-sec", "EKSFOLD_BUCKET": "fold-sec-bucket",
            "IMAGE_TAG": "t1", "FSX_ID": "fs-0abc12345def67890",
            "FSX_DNS_NAME": "fs-0abc12345def67890.fsx.eu-west-1.amazonaws.com",
            "FSX_MOUNT_NAME": "xyz12345", "FSX_CAPACITY_GIB": "2400"}
BUCKET = TEST_ENV["EKSFOLD_BUCKET"]

# (workload, container) -> {rule: reason}. Rules: "root" (may run as uid 0), "writable-root"
# (no read-only root filesystem), "hostPath", "add:<CAP>" (a capability added back).
EXCEPTIONS = {
    ("eksfold-data-prep", "make-dirs"): {
        "root": "chowns the fresh FSx directories to uid 1000 once; nothing else runs as root",
        "add:CHOWN": "the one capability chown needs; all others dropped"},
    ("nvidia-device-plugin-daemonset", "nvidia-device-plugin-ctr"): {
        "root": "creates its socket in the kubelet's root-owned /var/lib/kubelet/device-plugins",
        "hostPath": "that kubelet directory is how device plugins register (NVIDIA's manifest)"},
    ("jupyter-notebook", "notebook"): {
        "writable-root": "an interactive environment: users pip-install into the image's "
                         "environment and JupyterLab writes settings under the image's prefix"},
}


# -- pod security --------------------------------------------------------------------------------
def pod_findings(workload: str, spec: dict) -> list[str]:
    """Every departure from the restricted profile + read-only root not in EXCEPTIONS."""
    found = []
    pod_sc = spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            found.append(f"{workload}: {key}")
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        ok = EXCEPTIONS.get((workload, c["name"]), {})
        sc = c.get("securityContext") or {}
        where = f"{workload}/{c['name']}"
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if (non_root is not True or uid == 0) and "root" not in ok:
            found.append(f"{where}: may run as root (runAsNonRoot={non_root}, runAsUser={uid})")
        if sc.get("privileged"):
            found.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in caps.get("drop", []):
            found.append(f"{where}: capabilities not dropped (drop: ALL)")
        found += [f"{where}: adds capability {a}" for a in caps.get("add", []) if f"add:{a}" not in ok]
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: no seccomp profile (RuntimeDefault)")
        if sc.get("readOnlyRootFilesystem") is not True and "writable-root" not in ok:
            found.append(f"{where}: root filesystem writable (readOnlyRootFilesystem)")
    for v in spec.get("volumes", []):
        if "hostPath" in v and not any("hostPath" in EXCEPTIONS.get((workload, c["name"]), {})
                                       for c in spec.get("containers", [])):
            found.append(f"{workload}: hostPath volume {v['name']}")
    return found


def tmp_is_writable(spec: dict, container: str) -> bool:
    """A read-only root needs /tmp on an emptyDir (Python, PyTorch and the tools write there)."""
    empty = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    (c,) = [c for c in spec["containers"] if c["name"] == container]
    return any(m["mountPath"] == "/tmp" and m["name"] in empty for m in c.get("volumeMounts", []))


def executor_pods() -> dict[str, dict]:
    """The Pod spec of every Job form the executor renders: both stages, every size class,
    Indexed and one-Job-per-target."""
    out, sizing = {}, jobs.Sizing()
    for stage, classes in sizing.classes.items():
        for cls in classes:
            res = cls.resources
            for indexed in (True, False):
                (job, *_) = jobs.build_jobs(run_id="sec-1a2b3c4d", pod_root="/fsx/runs/sec",
                                            stage=stage, batch=f"{stage}-0001-{res.size}",
                                            targets=["t1", "t2"], resources=res, indexed=indexed)
                out[f"{stage}-{res.size}-{'indexed' if indexed else 'per-target'}"] = \
                    job["spec"]["template"]["spec"]
    return out


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> dict[str, list[dict]]:
    out = tmp_path_factory.mktemp("rendered")
    r = cv.render(TEST_ENV, out, out.parent / "env.sh")
    assert r.returncode == 0, r.stderr
    return {str(p.relative_to(out)): cv.load_docs(p) for p in sorted(out.rglob("*"))
            if p.suffix in (".yaml", ".json")}


def cluster_workloads(docs) -> dict[str, dict]:
    """Pod specs of every workload object in cluster/ (name -> spec)."""
    out = {}
    for path, objs in docs.items():
        for d in objs:
            if not isinstance(d, dict) or path.startswith("jupyterhub/"):
                continue
            if d.get("kind") in ("Job", "DaemonSet", "Deployment", "StatefulSet", "ReplicaSet"):
                out[d["metadata"]["name"]] = d["spec"]["template"]["spec"]
            elif d.get("kind") == "Pod":
                out[d["metadata"]["name"]] = d["spec"]
    return out


def notebook_pod(values: dict) -> dict:
    """The user Pod's security settings as KubeSpawner applies them: ``singleuser.uid`` /
    ``fsGid`` and the chart's default ``allowPrivilegeEscalation: false``, overridden by the
    KubeSpawner traits ``container_security_context`` / ``pod_security_context`` (hub.config)."""
    su = values["singleuser"]
    spawner = values.get("hub", {}).get("config", {}).get("KubeSpawner", {})
    csc = {"runAsUser": su["uid"], "allowPrivilegeEscalation": su.get("allowPrivilegeEscalation", False)}
    csc.update(spawner.get("container_security_context", {}))
    psc = {"fsGroup": su["fsGid"], **spawner.get("pod_security_context", {})}
    return {"securityContext": psc, "containers": [{"name": "notebook", "securityContext": csc}]}


def test_executor_unit_pods_are_restricted_with_a_writable_tmp():
    pods = executor_pods()
    assert {"align-std-indexed", "infer-xlarge-per-target"} <= set(pods)
    found = {form: pod_findings("eksfold-worker", spec)
             + ([] if tmp_is_writable(spec, jobs.CONTAINER) else ["no emptyDir at /tmp"])
             for form, spec in pods.items()}
    assert {form: f for form, f in found.items() if f} == {}
    assert all(spec["securityContext"]["runAsUser"] == names.WORKER_UID != 0
               for spec in pods.values())


def test_cluster_workloads_are_restricted(docs):
    pods = cluster_workloads(docs)
    assert {"eksfold-data-prep", "nvidia-device-plugin-daemonset"} <= set(pods)
    for name, spec in pods.items():
        assert pod_findings(name, spec) == [], name
    assert tmp_is_writable(pods["eksfold-data-prep"], "prepare")


def test_notebook_pods_are_restricted(docs):
    (values,) = docs["jupyterhub/values.yaml"]
    assert pod_findings("jupyter-notebook", notebook_pod(values)) == []
    assert values["singleuser"]["uid"] == names.WORKER_UID


def test_exceptions_are_only_those_still_needed(docs):
    """An exception whose reason went away must be removed, not kept as a silent allowance."""
    pods = {**cluster_workloads(docs), "jupyter-notebook": notebook_pod(docs["jupyterhub/values.yaml"][0])}
    for (workload, container) in list(EXCEPTIONS):
        spec = pods[workload]
        saved = EXCEPTIONS.pop((workload, container))
        try:
            assert pod_findings(workload, spec), f"{workload}/{container}: exception unused"
        finally:
            EXCEPTIONS[(workload, container)] = saved


@pytest.mark.parametrize("mutate, finding", [
    (lambda c, p: c["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    (lambda c, p: c["securityContext"]["capabilities"].update(drop=[]), "capabilities not dropped"),
    (lambda c, p: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "adds capability NET_ADMIN"),
    (lambda c, p: p["securityContext"].update(runAsUser=0), "may run as root"),
    (lambda c, p: p["securityContext"].pop("runAsNonRoot"), "may run as root"),
    (lambda c, p: c["securityContext"].update(privileged=True), "privileged"),
    (lambda c, p: c["securityContext"].update(readOnlyRootFilesystem=False), "root filesystem writable"),
    (lambda c, p: p.update(hostPID=True), "hostPID"),
    (lambda c, p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath volume h"),
])
def test_pod_checker_catches_each_weakening(mutate, finding):
    spec = copy.deepcopy(executor_pods()["infer-std-indexed"])
    spec["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = True
    assert pod_findings("eksfold-worker", spec) == []
    mutate(spec["containers"][0], spec)
    assert any(finding in f for f in pod_findings("eksfold-worker", spec)), finding


# -- the calls the code makes ---------------------------------------------------------------------
def attribute_names(path: Path) -> list[tuple[str, list]]:
    """``(attribute, constant positional args)`` of every ``x.attr(...)`` call and every bare
    ``x.attr`` reference (methods passed as callbacks) in a Python file."""
    tree, out = ast.parse(path.read_text(), str(path)), []
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            out.append((node.func.attr, [a.value if isinstance(a, ast.Constant) else None
                                         for a in node.args]))
        elif isinstance(node, ast.Attribute) and id(node) not in called:
            out.append((node.attr, []))
    return out


# Modules that never run under the cluster identities: a local S3 server for tests/demos
# (creates its own buckets on 127.0.0.1).
NOT_UNDER_IRSA = {"data/locals3.py"}


def package_files():
    return sorted(p for p in LIB.rglob("*.py") if str(p.relative_to(LIB)) not in NOT_UNDER_IRSA)


def s3_operations() -> dict[str, str]:
    """snake_case client method -> S3 operation name, from botocore's service model."""
    import botocore.session
    from botocore import xform_name
    model = botocore.session.get_session().get_service_model("s3")
    return {xform_name(op): op for op in model.operation_names}


def s3transfer_operations(*modules: str) -> set[str]:
    import s3transfer
    ops, base = s3_operations(), Path(s3transfer.__file__).parent
    return {ops[a] for m in modules for a, _ in attribute_names(base / m) if a in ops}


# boto3's managed transfers: the S3 operations s3transfer itself calls (read from its source)
TRANSFERS = {"upload_file": ("upload.py", "tasks.py"), "upload_fileobj": ("upload.py", "tasks.py"),
             "download_file": ("download.py",), "download_fileobj": ("download.py",)}
# S3 operations authorised by an IAM action of another name (AWS Service Authorization
# Reference for S3); every other operation is authorised by s3:<OperationName>.
S3_ACTION = {"HeadObject": "s3:GetObject", "HeadBucket": "s3:ListBucket",
             "DeleteObjects": "s3:DeleteObject", "CreateMultipartUpload": "s3:PutObject",
             "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
             **{op: action for action, op in cv.PERMISSION_ONLY.items()}}


def s3_calls() -> dict[str, set[str]]:
    """S3 operation -> files calling it, over the whole package."""
    ops, calls = s3_operations(), {}
    for path in package_files():
        for attr, args in attribute_names(path):
            found = set()
            if attr in ops:
                found = {ops[attr]}
            elif attr == "get_paginator" and args and args[0] in ops:
                found = {ops[args[0]]}
            elif attr in TRANSFERS:
                found = s3transfer_operations(*TRANSFERS[attr])
            for op in found:
                calls.setdefault(op, set()).add(str(path.relative_to(LIB)))
    return calls


def iam_actions_needed() -> set[str]:
    return {S3_ACTION.get(op, f"s3:{op}") for op in s3_calls()}


def test_s3_call_extraction_sees_every_kind_of_call():
    calls = s3_calls()
    for op in ("HeadObject", "GetObject", "PutObject", "ListObjectsV2", "DeleteObjects",
               "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
               "AbortMultipartUpload"):
        assert op in calls, op
    assert "CreateBucket" not in calls  # only locals3 creates buckets, and it is excluded
    assert iam_actions_needed() == {"s3:GetObject", "s3:PutObject", "s3:ListBucket",
                                    "s3:DeleteObject", "s3:AbortMultipartUpload"}


def granted_actions(policy: dict) -> set[str]:
    return {a for st in cv._as_list(policy["Statement"]) if st["Effect"] == "Allow"
            for a in cv._as_list(st["Action"])}


@pytest.mark.parametrize("name", ["worker-policy.json", "notebook-policy.json"])
def test_irsa_policies_grant_exactly_the_s3_actions_the_code_calls(docs, name):
    policy = docs[f"iam/{name}"][0]
    needed = iam_actions_needed()
    obj = f"arn:aws:s3:::{BUCKET}/runs/r1/targets/t/infer/metrics.json"
    for action in sorted(needed - {"s3:ListBucket"}):
        assert cv.iam_allows(policy, action, obj), f"{name} lacks {action} on run roots"
    assert cv.iam_allows(policy, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "runs/r1/"})
    assert cv.iam_allows(policy, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/weights/openfold/x.pt")
    extra = granted_actions(policy) - needed
    assert not extra, f"{name} grants {sorted(extra)}, which no code calls"


# -- Kubernetes API calls -> RBAC -----------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def k8s_methods() -> dict[str, tuple[str, str]]:
    """Client method -> (HTTP method, resource path), from the kubernetes client's own code."""
    import kubernetes.client as kc
    out = {}
    for name in dir(kc):
        cls = getattr(kc, name)
        if not (inspect.isclass(cls) and name.endswith("Api") and name != "ApiClient"):
            continue
        src = Path(inspect.getsourcefile(cls)).read_text()  # one class per generated module
        for m in re.finditer(r"def _(\w+)_serialize\(.*?method='(\w+)',\s*resource_path='([^']+)'",
                             src, re.S):
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def rbac_request(http: str, path: str, args: list) -> tuple[str, str, str, bool] | None:
    """``(apiGroup, resource, verb, namespaced)`` of one request; None for non-resource URLs."""
    m = re.fullmatch(r"(?:/api|/apis/(?P<group>[^/]+))/(?P<version>[^/]+)"
                     r"(?P<ns>/namespaces/\{namespace\})?/(?P<rest>.+)", path)
    if not m:
        return None
    group = m["group"]
    parts = m["rest"].split("/")
    resource, named = parts[0], len(parts) > 1 and parts[1] == "{name}"
    if group == "{group}":  # CustomObjectsApi: group and plural are the call's arguments
        group, resource = args[0], args[3] if m["ns"] else args[2]
    if len(parts) > 2:
        resource += "/" + parts[2]  # a subresource: pods/log
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if named else "deletecollection",
            "GET": "get" if named else "list"}[http]
    return group or "", resource, verb, bool(m["ns"])


def k8s_calls() -> dict[tuple, set[str]]:
    methods, calls = k8s_methods(), {}
    for path in package_files():
        for attr, args in attribute_names(path):
            if attr in methods:
                req = rbac_request(*methods[attr], args)
                if req:
                    calls.setdefault(req, set()).add(f"{path.relative_to(LIB)}:{attr}")
    return calls


# Granted beyond the calls: read-only, namespaced, and each with the reason a person needs it.
RBAC_EXTRAS = {
    ("batch", "jobs", "get"): "kubectl get/describe job from the notebook terminal",
    ("batch", "jobs", "watch"): "kubectl get jobs -w (list already shows the same objects)",
    ("", "pods", "get"): "kubectl describe pod: why a unit waits",
    ("", "pods", "watch"): "kubectl get pods -w",
    ("", "events", "get"): "kubectl describe shows a Pod's scheduling events",
    ("", "events", "list"): "kubectl get events",
    ("", "events", "watch"): "kubectl get events -w",
    ("kueue.x-k8s.io", "localqueues", "get"): "kubectl get localqueue <name>",
    ("kueue.x-k8s.io", "localqueues", "watch"): "kubectl get localqueues -w",
    ("kueue.x-k8s.io", "workloads", "get"): "kubectl describe workload: Kueue admission",
    ("kueue.x-k8s.io", "workloads", "list"): "kubectl get workloads",
    ("kueue.x-k8s.io", "workloads", "watch"): "kubectl get workloads -w",
}
# Called but deliberately not granted, with how the code copes.
RBAC_NOT_GRANTED = {
    ("", "nodes", "list"): "cluster-wide; checks.py shows 'forbidden' with a kubectl hint, and "
                           "the executor's shard bound (capacity.py) falls back to max_shards",
    ("karpenter.sh", "nodepools", "list"): "cluster-wide; capacity.py falls back to max_shards",
}


def test_k8s_call_extraction_sees_the_executor_and_checks():
    calls = k8s_calls()
    for req in (("batch", "jobs", "create", True), ("batch", "jobs", "delete", True),
                ("batch", "jobs", "list", True), ("", "pods", "list", True),
                ("", "pods/log", "get", True), ("", "nodes", "list", False),
                ("kueue.x-k8s.io", "localqueues", "list", True)):
        assert req in calls, req


def test_notebook_role_grants_exactly_the_calls_plus_documented_read_only_extras(docs):
    role = [d for d in docs["k8s/rbac.yaml"] if d["kind"] == "Role"][0]
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}
    calls = k8s_calls()
    needed = {req[:3] for req in calls if req[3]}
    missing = needed - granted
    assert not missing, {m: calls[m + (True,)] for m in missing}
    assert {req[:3] for req in calls if not req[3]} == set(RBAC_NOT_GRANTED)
    extra = granted - needed
    assert extra <= set(RBAC_EXTRAS), sorted(extra - set(RBAC_EXTRAS))
    assert all(v in ("get", "list", "watch") for _, _, v in RBAC_EXTRAS)
    assert not set(RBAC_EXTRAS) & needed, "an extra is now called: move it out of the list"


def test_worker_identity_has_no_kubernetes_access(docs):
    bindings = [d for ds in docs.values() for d in ds
                if isinstance(d, dict) and d.get("kind") in ("RoleBinding", "ClusterRoleBinding")]
    subjects = {s["name"] for b in bindings for s in b["subjects"]}
    assert names.WORKER_SERVICE_ACCOUNT not in subjects
    worker_modules = [LIB / "worker.py", *sorted((LIB / "stages").glob("*.py"))]
    assert not any(attr in k8s_methods() for p in worker_modules for attr, _ in attribute_names(p))


# -- no credentials in what a run writes ----------------------------------------------------------
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAEKSFOLDLEAKTEST7",
    "AWS_SECRET_ACCESS_KEY": "eksfold+Leak/Test0Secret9Access8Key7Value6x",
    "AWS_SESSION_TOKEN": "FQoGZXIvYXdzEKSFOLD-fake-session-token-3b1f0c7e9d",
}
SA_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eksfold-fake-service-account-token.c2lnbmF0dXJl"


def leaks(data: bytes, secrets: list[str]) -> list[str]:
    """Secrets found in ``data``, also base64-encoded (as in notebooks' embedded outputs)."""
    found = []
    for s in secrets:
        forms = [s.encode()] + [base64.b64encode(b"\0" * k + s.encode())[4 * k // 3 + 2: -4]
                                for k in range(3)]
        if any(f and f in data for f in forms):
            found.append(s)
    return found


def test_leak_scanner_finds_plain_and_base64_copies():
    s = SA_TOKEN
    assert leaks(f"x {s} y".encode(), [s]) == [s]
    for k in range(3):
        assert leaks(base64.b64encode(b"p" * k + s.encode() + b"q"), [s]) == [s]
    assert leaks(b"nothing here", [s]) == []


def test_run_and_report_write_no_credentials(cameo_fasta, small_db, tmp_path):
    token = tmp_path / "sa" / "token"
    token.parent.mkdir()
    token.write_text(SA_TOKEN)
    env = {**os.environ, **SECRETS, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
           "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/eksfold-leak-test",
           "PYTHONPATH": str(LIB.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    root, cwd = tmp_path / "run", tmp_path / "cwd"
    cwd.mkdir()
    cli = [sys.executable, "-m", "eksfold.cli"]
    outputs = []
    for args in (["run", str(cameo_fasta), "--root", str(root), "--limit", "2", "--shortest",
                  "--preset", "tiny", "--weights", "random", "--uniref90", str(small_db)],
                 ["report", str(root)]):
        r = subprocess.run(cli + args, cwd=cwd, env=env, capture_output=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:].decode(errors="replace")
        outputs += [r.stdout, r.stderr]
    # control: the same environment does reach a child, and a leak would be seen
    echo = subprocess.run([sys.executable, "-c", "import os; print(os.environ['AWS_SECRET_ACCESS_KEY'])"],
                          env=env, capture_output=True, timeout=60)
    assert leaks(echo.stdout, [*SECRETS.values()]) == [SECRETS["AWS_SECRET_ACCESS_KEY"]]
    files = [p for p in [*root.rglob("*"), *cwd.rglob("*")] if p.is_file()]
    assert (root / "report.html").is_file() and list(root.rglob("*.ipynb"))
    assert len(files) > 10
    secrets = [*SECRETS.values(), SA_TOKEN]
    found = {str(p.relative_to(tmp_path)): leaks(p.read_bytes(), secrets) for p in files}
    found.update({f"output {i}": leaks(o, secrets) for i, o in enumerate(outputs)})
    assert {k: v for k, v in found.items() if v} == {}


# AWS access key ids, secret keys assigned in text, and JWTs (service-account tokens)
CREDENTIAL = re.compile(rb"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|aws_secret_access_key\s*[=:]\s*\S{20,}"
                        rb"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


def test_committed_notebooks_carry_no_credentials_in_saved_outputs():
    books = sorted(cv.REPO.glob("notebooks/*.ipynb")) + sorted(cv.REPO.glob("tests/data/*.ipynb"))
    assert books
    assert {str(p.relative_to(cv.REPO)): CREDENTIAL.findall(p.read_bytes())[:3] for p in books
            if CREDENTIAL.search(p.read_bytes())} == {}
    assert CREDENTIAL.search(SECRETS["AWS_ACCESS_KEY_ID"].encode() + b" ")
    assert CREDENTIAL.search(b"aws_secret_access_key = " + SECRETS["AWS_SECRET_ACCESS_KEY"].encode())
