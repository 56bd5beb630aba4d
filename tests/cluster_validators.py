"""Offline validators for ``cluster/`` (used by tests/test_cluster.py).

Each validator wraps a real one and returns a list of findings (empty = valid):

- :func:`k8s_errors`: ``kubernetes-validate`` strict, against the OpenAPI schema of the Kubernetes
  version EKS runs (``K8S_VERSION``); a kind without a schema is a finding, not a warning.
- :func:`karpenter_reports`: the Karpenter v1 validators compiled into the npm package
  ``@kubernetes-models/karpenter`` (run by node, see cluster_karpenter_validate.mjs), made strict
  about unknown fields.
- :func:`kueue_errors`: the ``openAPIV3Schema`` of the pinned Kueue CRDs (jsonschema), with
  ``additionalProperties: false`` added wherever the API server would prune/reject unknown fields.
- :func:`eksctl_errors`: jsonschema against eksctl's ClusterConfig schema (v0.230.0).
- :func:`hadolint_findings`: hadolint with cluster/images/.hadolint.yaml, style level.
- :func:`iam_findings`: IAM grammar (moto's policy validator, as IAM's CreatePolicy applies it),
  actions that exist in botocore's service models, and least-privilege rules for eksfold.
- :func:`z2jh_errors`: the zero-to-jupyterhub values keys this project uses, transcribed from the
  chart's values.schema.yaml (chart 4.2.0), plus KubeSpawner trait names for profile overrides.
"""
from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
SCHEMAS = REPO / "tests" / "data" / "schemas"  # vendored: CI must not depend on files beside the clone
K8S_VERSION = "1.33"            # EKS version of cluster/eksctl/cluster.yaml
EKSCTL_SCHEMA = SCHEMAS / "eksctl-v0.230.0" / "clusterconfig.schema.json"
KUEUE_CRDS = SCHEMAS / "kueue-v0.19.2"
KARPENTER_PKG = Path(os.environ.get(
    "EKSFOLD_KARPENTER_SCHEMAS",
    REPO / ".setup" / "npm-karpenter" / "node_modules" / "@kubernetes-models" / "karpenter"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A validator's executable: the venv's first, then PATH; a clear error when missing."""
    for cand in (BIN / name, shutil.which(name)):
        if cand and Path(cand).exists():
            return str(cand)
    raise FileNotFoundError(f"{name} not found: run `make setup` (see mk/cluster.mk)")


# -- rendering ---------------------------------------------------------------------------------
def render(env: dict[str, str], out: Path, env_file: Path) -> subprocess.CompletedProcess:
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return subprocess.run(["bash", str(CLUSTER / "render.sh"), str(env_file), str(out)],
                          capture_output=True, text=True, timeout=60)


def load_docs(path: Path) -> list[dict]:
    if path.suffix == ".json":
        return [json.loads(path.read_text())]
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# -- Kubernetes core -------------------------------------------------------------------------
def k8s_errors(doc: dict, version: str = K8S_VERSION) -> list[str]:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.path))}: {e.message}"]
    except SchemaNotFoundError as e:
        return [e.message]
    return []


# -- Karpenter ---------------------------------------------------------------------------------
def karpenter_reports(docs: list[dict]) -> list[dict]:
    if not (KARPENTER_PKG / "package.json").exists():
        raise FileNotFoundError(f"{KARPENTER_PKG} missing: run `make setup` (mk/cluster.mk)")
    r = subprocess.run([tool("node"), str(REPO / "tests" / "cluster_karpenter_validate.mjs"),
                        str(KARPENTER_PKG)], input=json.dumps(docs), capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"karpenter validator failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


# -- Kueue -------------------------------------------------------------------------------------
def _strict(schema):
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=None)
def kueue_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict schema of every served version of the pinned CRDs."""
    out = {}
    for path in sorted(KUEUE_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                out[(f"{group}/{v['name']}", kind)] = _strict(v["schema"]["openAPIV3Schema"])
    return out


def kueue_errors(doc: dict) -> list[str]:
    schema = kueue_schemas().get((doc.get("apiVersion"), doc.get("kind")))
    if schema is None:
        return [f"no Kueue CRD serves {doc.get('apiVersion')} {doc.get('kind')}"]
    errors = [f"{e.json_path}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    # metadata is free-form in a CRD schema: check it as the API server does (ObjectMeta)
    meta = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
    return errors + [f"metadata: {e}" for e in k8s_errors(meta)]


# -- eksctl ------------------------------------------------------------------------------------
def eksctl_errors(path: Path) -> list[str]:
    # (check-jsonschema refuses this schema file: its $refs contain "|", which is not a valid
    # URI reference under the metaschema's format check; jsonschema resolves them fine.)
    schema = json.loads(EKSCTL_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{e.json_path}: {e.message}"
            for e in validator.iter_errors(yaml.safe_load(path.read_text()))]


# -- Dockerfiles -------------------------------------------------------------------------------
def hadolint_findings(dockerfile: Path) -> list[str]:
    r = subprocess.run([tool("hadolint"), "--config", str(CLUSTER / "images" / ".hadolint.yaml"),
                        "--failure-threshold", "style", "--no-color", str(dockerfile)],
                       capture_output=True, text=True, timeout=60)
    return [] if r.returncode == 0 else (r.stdout + r.stderr).strip().splitlines()


# -- IAM ---------------------------------------------------------------------------------------
# IAM actions that are not API operation names (permission-only names) -> the operation.
PERMISSION_ONLY = {"s3:ListBucket": "ListObjectsV2", "s3:ListMultipartUploadParts": "ListParts"}
# Actions AWS authorizes only on Resource "*" (no resource-level permissions).
STAR_ONLY_ACTIONS = {"ecr:GetAuthorizationToken"}
S3_WRITE = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


@functools.lru_cache(maxsize=None)
def _operations(service: str) -> frozenset[str]:
    import botocore.session
    return frozenset(botocore.session.get_session().get_service_model(service).operation_names)


def _as_list(x) -> list:
    return x if isinstance(x, list) else [x]


def iam_findings(policy: dict, bucket: str, readable: tuple[str, ...] = ("db", "weights", "runs"),
                 writable: tuple[str, ...] = ("runs",)) -> list[str]:
    """Grammar + least privilege for one identity policy of eksfold."""
    from moto.iam.policy_validation import IAMPolicyDocumentValidator

    found = []
    try:
        IAMPolicyDocumentValidator(json.dumps(policy)).validate()
    except Exception as e:  # moto raises MalformedPolicyDocument, as IAM would
        found.append(f"grammar: {e}")
    for st in _as_list(policy.get("Statement", [])):
        sid = st.get("Sid", "?")
        for key in ("NotAction", "NotResource", "NotPrincipal"):
            if key in st:
                found.append(f"{sid}: {key} grants by exclusion")
        if st.get("Effect") != "Allow":
            continue
        actions, resources = _as_list(st.get("Action", [])), _as_list(st.get("Resource", []))
        for a in actions:
            if "*" in a or "?" in a:
                found.append(f"{sid}: wildcard action {a}")
                continue
            service, _, name = a.partition(":")
            if PERMISSION_ONLY.get(a, name) not in _operations(service):
                found.append(f"{sid}: {a} is no {service} API action")
        if "*" in resources and not set(actions) <= STAR_ONLY_ACTIONS:
            found.append(f"{sid}: Resource '*' for {sorted(set(actions) - STAR_ONLY_ACTIONS)}")
        s3_actions = [a for a in actions if a.startswith("s3:")]
        for r in resources if s3_actions else ():
            if r == f"arn:aws:s3:::{bucket}":
                if set(s3_actions) != {"s3:ListBucket"}:
                    found.append(f"{sid}: bucket ARN with object actions {s3_actions}")
                prefixes = st.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
                if not prefixes:
                    found.append(f"{sid}: ListBucket without an s3:prefix condition")
                for p in _as_list(prefixes or []):
                    if p.split("/", 1)[0] not in readable:
                        found.append(f"{sid}: lists prefix {p}")
                continue
            m = re.fullmatch(rf"arn:aws:s3:::{re.escape(bucket)}/([a-z0-9-]+)/\*", r)
            if not m or m.group(1) not in readable:
                found.append(f"{sid}: S3 resource {r} outside the eksfold prefixes")
            elif set(s3_actions) & S3_WRITE and m.group(1) not in writable:
                found.append(f"{sid}: writes to {m.group(1)}/")
    return found


def iam_allows(policy: dict, action: str, resource: str, context: dict | None = None) -> bool:
    """Whether an identity policy (Allow statements, StringLike conditions) allows a request."""
    for st in _as_list(policy["Statement"]):
        if st["Effect"] != "Allow" or action not in _as_list(st["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _as_list(st["Resource"])):
            continue
        conds = st.get("Condition", {}).get("StringLike", {})
        if all(any(fnmatch.fnmatchcase((context or {}).get(k, ""), v) for v in _as_list(vs))
               for k, vs in conds.items()):
            return True
    return False


# -- zero-to-jupyterhub ------------------------------------------------------------------------
def _obj(props: dict | None = None, required: tuple = (), free: bool = False) -> dict:
    s = {"type": "object"}
    if props is not None:
        s["properties"] = props
    if not free:
        s["additionalProperties"] = False
    if required:
        s["required"] = list(required)
    return s


_STR, _INT, _BOOL, _ARR = ({"type": ["string", "null"]}, {"type": ["integer", "null"]},
                           {"type": "boolean"}, {"type": "array"})
_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_IMAGE = _obj({"name": _STR, "tag": _STR, "pullPolicy": {"enum": [None, "", "IfNotPresent",
                                                                 "Always", "Never"]},
               "pullSecrets": _ARR})
# The keys of chart 4.2.0's values.schema.yaml that cluster/jupyterhub/values.yaml may use; each
# level is closed (additionalProperties: false) exactly where the chart's schema closes it.
Z2JH_SCHEMA = _obj({
    "hub": _obj({"config": _obj(free=True), "nodeSelector": _MAP,
                 "db": _obj({"type": {"enum": ["sqlite-pvc", "sqlite-memory", "mysql",
                                               "postgres", "other"]},
                             "pvc": _obj({"storage": {"type": "string"},
                                          "storageClassName": _STR})})}),
    "proxy": _obj({"service": _obj({"type": {"enum": ["ClusterIP", "NodePort",
                                                      "LoadBalancer", "ExternalName"]}}),
                   "chp": _obj({"nodeSelector": _MAP})}),
    "singleuser": _obj({
        "image": _IMAGE, "serviceAccountName": _STR, "uid": _INT, "fsGid": _INT,
        "defaultUrl": _STR, "startTimeout": _INT, "nodeSelector": _MAP,
        "extraTolerations": _ARR, "extraAnnotations": _MAP, "extraLabels": _MAP,
        "extraEnv": {"type": ["object", "array"]},
        "cloudMetadata": _obj({"blockWithIptables": _BOOL, "ip": {"type": "string"}},
                              required=("blockWithIptables", "ip")),
        "cpu": _obj({"limit": {"type": ["number", "null"]},
                     "guarantee": {"type": ["number", "null"]}}),
        "memory": _obj({"limit": {"type": ["number", "string", "null"]},
                        "guarantee": {"type": ["number", "string", "null"]}}),
        "storage": _obj({"type": {"enum": ["dynamic", "static", "none"]},
                         "capacity": _STR, "homeMountPath": {"type": "string"},
                         "extraVolumes": {"type": ["object", "array"]},
                         "extraVolumeMounts": {"type": ["object", "array"]},
                         "dynamic": _obj({"storageClass": _STR}),
                         "static": _obj({"pvcName": _STR, "subPath": _STR})},
                        required=("type", "homeMountPath")),
        "profileList": {"type": "array", "items": _obj({
            "display_name": {"type": "string"}, "slug": {"type": "string"},
            "description": {"type": "string"}, "default": _BOOL,
            "kubespawner_override": _obj({k: {} for k in (
                # KubeSpawner traits (jupyterhub-kubespawner 7.x) a profile may override
                "image", "cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit",
                "extra_resource_guarantees", "extra_resource_limits", "node_selector",
                "tolerations", "extra_annotations", "extra_labels", "environment",
                "volumes", "volume_mounts", "service_account")})},
            required=("display_name",))},
    }),
    "scheduling": _obj({"userScheduler": _obj({"enabled": _BOOL}),
                        "podPriority": _obj({"enabled": _BOOL}),
                        "userPlaceholder": _obj({"enabled": _BOOL})}),
    "prePuller": _obj({"hook": _obj({"enabled": _BOOL}, required=("enabled",)),
                       "continuous": _obj({"enabled": _BOOL}, required=("enabled",))}),
    "cull": _obj({"enabled": _BOOL, "timeout": _INT, "every": _INT, "users": _BOOL}),
})


def z2jh_errors(values: dict) -> list[str]:
    return [f"{e.json_path}: {e.message}"
            for e in jsonschema.Draft7Validator(Z2JH_SCHEMA).iter_errors(values)]


def z2jh_pods(values: dict) -> dict[str, dict]:
    """One Pod per profile, as KubeSpawner would build it from these values (the parts that
    matter for validation and scheduling): service account, image, resources, volumes, mounts,
    node selector, tolerations, annotations."""
    su = values["singleuser"]
    pods = {}
    for prof in su["profileList"]:
        o = prof.get("kubespawner_override", {})
        requests = {"cpu": str(o.get("cpu_guarantee", su["cpu"]["guarantee"])),
                    "memory": str(o.get("mem_guarantee", su["memory"]["guarantee"]))}
        limits = {"cpu": str(o.get("cpu_limit", su["cpu"]["limit"])),
                  "memory": str(o.get("mem_limit", su["memory"]["limit"]))}
        requests.update(o.get("extra_resource_guarantees", {}))
        limits.update(o.get("extra_resource_limits", {}))
        pods[prof["slug"]] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"jupyter-test-{prof['slug']}",
                         "annotations": dict(su.get("extraAnnotations", {}))},
            "spec": {
                "serviceAccountName": su["serviceAccountName"],
                "securityContext": {"runAsUser": su["uid"], "fsGroup": su["fsGid"]},
                "nodeSelector": o.get("node_selector", su.get("nodeSelector", {})),
                "tolerations": list(su.get("extraTolerations", [])) + o.get("tolerations", []),
                "containers": [{
                    "name": "notebook", "image": f"{su['image']['name']}:{su['image']['tag']}",
                    "resources": {"requests": requests, "limits": limits},
                    "volumeMounts": [{"name": "home", "mountPath":
                                      su["storage"]["homeMountPath"]}]
                    + su["storage"]["extraVolumeMounts"]}],
                "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-test"}}]
                + su["storage"]["extraVolumes"],
            }}
    return pods


# -- scheduling --------------------------------------------------------------------------------
def pool_nodes(nodepools: list[dict]) -> dict[str, dict]:
    """What a node of each NodePool looks like to the scheduler: fixed labels, the values its
    requirements allow for other labels, taints."""
    out = {}
    for np in nodepools:
        t = np["spec"]["template"]
        allowed = {r["key"]: set(r["values"]) for r in t["spec"].get("requirements", [])
                   if r["operator"] == "In"}
        out[np["metadata"]["name"]] = {
            "labels": dict(t.get("metadata", {}).get("labels", {}),
                           **{"karpenter.sh/nodepool": np["metadata"]["name"]}),
            "allowed": allowed, "taints": t["spec"].get("taints", [])}
    return out


def _expr_ok(node: dict, key: str, op: str, values: list[str]) -> bool:
    if node.get("only_own_keys") and key not in node["labels"]:
        return True
    if key in node["labels"]:
        v = node["labels"][key]
        return {"In": v in values, "NotIn": v not in values, "Exists": True,
                "DoesNotExist": False}[op]
    if key in node["allowed"]:
        return {"In": bool(node["allowed"][key] & set(values)), "Exists": True}.get(op, False)
    return op in ("NotIn", "DoesNotExist")


def fits(pod_spec: dict, node: dict) -> bool:
    """Required node selection (nodeSelector + required node affinity) and taints."""
    for k, v in pod_spec.get("nodeSelector", {}).items():
        if not _expr_ok(node, k, "In", [v]):
            return False
    req = (pod_spec.get("affinity", {}).get("nodeAffinity", {})
           .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if req and not any(all(_expr_ok(node, e["key"], e["operator"], e.get("values", []))
                           for e in term.get("matchExpressions", []))
                       for term in req["nodeSelectorTerms"]):
        return False
    for taint in node["taints"]:
        if taint["effect"] not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tol.get("key") in (None, taint["key"])
                   and (tol.get("operator") == "Exists" or tol.get("value") == taint.get("value"))
                   and tol.get("effect") in (None, taint["effect"])
                   for tol in pod_spec.get("tolerations", [])):
            return False
    return True


def flavor_node(flavor: dict) -> dict:
    """A Kueue ResourceFlavor as a node: Kueue matches a Pod's node selection only on the label
    keys the flavor defines, and requires its taints to be tolerated."""
    spec = flavor["spec"]
    return {"labels": dict(spec.get("nodeLabels", {})), "allowed": {},
            "taints": spec.get("nodeTaints", []), "only_own_keys": True}
