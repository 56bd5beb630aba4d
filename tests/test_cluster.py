"""cluster/ (the EKS deployment as code), validated offline with real validators.

The templates are rendered once with test values by cluster/render.sh (as a user would), and the
rendered files are what every test checks. Each validator is also shown a broken object, so a
validator that silently accepts everything fails its test. See tests/cluster_validators.py.
"""
from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from eksfold.k8s import jobs, names
import cluster_validators as cv

TEST_ENV = {
    "AWS_ACCOUNT_ID": "111122223333", "AWS_REGION": "eu-west-1", "ZONE_A": "eu-west-1a",
    "ZONE_B": "eu-west-1b", "CLUSTER_NAME": "fold-test", "EKSFOLD_BUCKET": "fold-test-bucket",
    "IMAGE_TAG": "t1", "FSX_ID": "fs-0abc12345def67890",
    "FSX_DNS_NAME": "fs-0abc12345def67890.fsx.eu-west-1.amazonaws.com",
    "FSX_MOUNT_NAME": "xyz12345", "FSX_CAPACITY_GIB": "2400",
}
BUCKET = TEST_ENV["EKSFOLD_BUCKET"]
# GPU compute capability of each instance family an inference pool may launch.
FAMILY_SM = {"g4dn": "7.5", "g5": "8.6", "g6": "8.9", "g6e": "8.9", "gr6": "8.9",
             "p4d": "8.0", "p4de": "8.0", "p5": "9.0", "p5e": "9.0", "p5en": "9.0"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    r = cv.render(TEST_ENV, out, out.parent / "env.sh")
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def docs(rendered) -> dict[str, list[dict]]:
    """Relative path -> objects, for every rendered YAML/JSON file."""
    return {str(p.relative_to(rendered)): cv.load_docs(p)
            for p in sorted(rendered.rglob("*")) if p.suffix in (".yaml", ".json")}


def objects(docs, kind=None, api_prefix=None) -> list[dict]:
    return [d for path, ds in docs.items() if path.endswith(".yaml") for d in ds
            if isinstance(d, dict) and "kind" in d and d.get("apiVersion") != "eksctl.io/v1alpha5"
            and (kind is None or d["kind"] == kind)
            and (api_prefix is None or d["apiVersion"].startswith(api_prefix))]


def one(docs, kind, name) -> dict:
    found = [d for d in objects(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def nodepools(docs):
    return objects(docs, "NodePool")


# -- rendering ---------------------------------------------------------------------------------
def test_render_substitutes_every_placeholder(rendered, docs):
    assert len(docs) >= 15
    for path, _ in docs.items():
        text = (rendered / path).read_text()
        if path != "data-prep/configmap.yaml":       # the script's own ${vars} stay
            assert "${" not in text, path
    sa = one(docs, "ServiceAccount", names.WORKER_SERVICE_ACCOUNT)
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == \
        "arn:aws:iam::111122223333:role/fold-test-eksfold-worker"


def test_placeholders_are_exactly_the_documented_variables():
    render_vars = set(re.search(r"VARS=\(([^)]*)\)", (cv.CLUSTER / "render.sh").read_text())
                      .group(1).split())
    example = set(re.findall(r"^([A-Z_]+)=", (cv.CLUSTER / "env.example.sh").read_text(), re.M))
    used = set()
    for p in cv.CLUSTER.rglob("*"):
        if p.suffix in (".yaml", ".json") and "images" not in p.parts:
            used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", p.read_text()))
    assert render_vars == example == set(TEST_ENV)
    assert used <= render_vars, used - render_vars


@pytest.mark.parametrize("name,value", [("AWS_ACCOUNT_ID", "12345"), ("ZONE_A", "us-west-2a"),
                                        ("FSX_CAPACITY_GIB", "3000"), ("CLUSTER_NAME", "")])
def test_render_refuses_bad_values(tmp_path, name, value):
    r = cv.render({**TEST_ENV, name: value}, tmp_path / "out", tmp_path / "env.sh")
    assert r.returncode != 0 and name in r.stderr
    assert not (tmp_path / "out").exists()


def test_data_prep_configmap_carries_the_script_verbatim(docs):
    cm = one(docs, "ConfigMap", "eksfold-data-prep")
    assert cm["data"]["prepare-data.sh"] == \
        (cv.CLUSTER / "data-prep" / "prepare-data.sh").read_text()


# -- Kubernetes core objects: kubernetes-validate --strict -------------------------------------
def test_core_objects_validate_strictly(docs):
    core = [d for d in objects(docs) if not d["apiVersion"].startswith(("karpenter.", "kueue."))]
    kinds = {d["kind"] for d in core}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "StorageClass",
            "PersistentVolume", "PersistentVolumeClaim", "ConfigMap", "Job",
            "DaemonSet"} <= kinds
    errors = {f"{d['kind']}/{d['metadata']['name']}": cv.k8s_errors(d) for d in core}
    assert not {k: v for k, v in errors.items() if v}


def test_core_validator_is_strict(docs):
    job = copy.deepcopy(one(docs, "Job", "eksfold-data-prep"))
    job["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []   # typo
    assert cv.k8s_errors(job)
    pvc = copy.deepcopy(one(docs, "PersistentVolumeClaim", names.PVC_NAME))
    pvc["spec"]["accessModes"] = "ReadWriteMany"                            # not a list
    assert cv.k8s_errors(pvc)
    assert cv.k8s_errors({"apiVersion": "example.com/v1", "kind": "Thing",
                          "metadata": {"name": "x"}})                        # no schema


# -- Karpenter v1 --------------------------------------------------------------------------------
def test_karpenter_objects_validate(docs):
    karp = objects(docs, api_prefix="karpenter.")
    assert {d["kind"] for d in karp} == {"NodePool", "EC2NodeClass"}
    reports = cv.karpenter_reports(karp)
    assert len(reports) == len(karp)
    assert not [r for r in reports if r["errors"]], reports


def test_karpenter_validator_catches_mistakes(docs):
    pool = copy.deepcopy(one(docs, "NodePool", names.ALIGN_POOL))
    pool["spec"]["template"]["spec"]["requirments"] = []                 # unknown field
    pool["spec"]["disruption"]["consolidateAfter"] = "soon"              # bad duration
    cls = copy.deepcopy(one(docs, "EC2NodeClass", names.INFER_POOL))
    cls["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] = "200GB"  # bad quantity
    cls["metadata"]["lables"] = {}                                       # unknown field
    errs = [r["errors"] for r in cv.karpenter_reports([pool, cls])]
    assert any("requirments" in e for e in errs[0]) and any("consolidateAfter" in e for e in errs[0])
    assert any("volumeSize" in e for e in errs[1]) and any("lables" in e for e in errs[1])


def test_nodepools_scale_from_zero_with_limits(docs):
    for np in nodepools(docs):
        spec = np["spec"]
        assert "replicas" not in spec                                   # demand-driven
        assert {"cpu", "memory"} <= set(spec["limits"])
        assert spec["disruption"]["consolidationPolicy"] == "WhenEmpty"
        ref = spec["template"]["spec"]["nodeClassRef"]
        assert one(docs, "EC2NodeClass", ref["name"])["kind"] == ref["kind"]
        reqs = {r["key"]: r for r in spec["template"]["spec"]["requirements"]}
        assert reqs["topology.kubernetes.io/zone"]["values"] == [TEST_ENV["ZONE_A"]]
    align = one(docs, "NodePool", names.ALIGN_POOL)["spec"]["template"]["spec"]
    ct = {r["key"]: r["values"] for r in align["requirements"]}["karpenter.sh/capacity-type"]
    assert set(ct) == {"spot", "on-demand"}


def test_gpu_image_is_built_for_every_gpu_the_pools_can_launch(docs):
    text = (cv.CLUSTER / "images" / "worker" / "Dockerfile").read_text()
    archs = set(re.search(r'TORCH_CUDA_ARCH_LIST="([^"]+)"', text).group(1).split(";"))
    families = set()
    for np in nodepools(docs):
        labels = np["spec"]["template"]["metadata"]["labels"]
        reqs = {r["key"]: r["values"] for r in np["spec"]["template"]["spec"]["requirements"]}
        if labels[names.POOL_LABEL] == names.INFER_POOL:
            assert reqs["karpenter.k8s.aws/instance-gpu-manufacturer"] == ["nvidia"]
            families |= set(reqs["karpenter.k8s.aws/instance-family"])
    assert families and families <= set(FAMILY_SM), families - set(FAMILY_SM)
    assert {FAMILY_SM[f] for f in families} <= archs


# -- Kueue ---------------------------------------------------------------------------------------
def test_kueue_objects_validate_against_pinned_crds(docs):
    kq = objects(docs, api_prefix="kueue.")
    assert {d["kind"] for d in kq} == {"ResourceFlavor", "ClusterQueue", "LocalQueue"}
    errors = {f"{d['kind']}/{d['metadata']['name']}": cv.kueue_errors(d) for d in kq}
    assert not {k: v for k, v in errors.items() if v}


def test_kueue_validator_catches_mistakes(docs):
    cq = copy.deepcopy(one(docs, "ClusterQueue", names.GPU_QUEUE))
    cq["spec"]["cohort"] = "eksfold"                                    # v1beta1 name
    cq["spec"]["queueingStrategy"] = "Random"
    lq = copy.deepcopy(one(docs, "LocalQueue", names.CPU_QUEUE))
    lq["metadata"]["namespace"] = ["eksfold"]
    errs = cv.kueue_errors(cq)
    assert any("cohort" in e for e in errs) and any("Random" in e for e in errs)
    assert cv.kueue_errors(lq)


def test_kueue_quotas_match_nodepool_limits(docs):
    flavors = {f["metadata"]["name"]: f for f in objects(docs, "ResourceFlavor")}
    pools = {}
    for np in nodepools(docs):
        labels = tuple(sorted(np["spec"]["template"]["metadata"]["labels"].items()))
        # NodePools with the same labels (a weighted fallback) share one flavor, whose quota
        # then bounds them together: their limits must agree with it
        assert pools.setdefault(labels, np["spec"]["limits"]) == np["spec"]["limits"], \
            np["metadata"]["name"]
    for cq in objects(docs, "ClusterQueue"):
        for group in cq["spec"]["resourceGroups"]:
            for fl in group["flavors"]:
                labels = tuple(sorted(flavors[fl["name"]]["spec"]["nodeLabels"].items()))
                assert labels in pools, f"flavor {fl['name']} matches no NodePool"
                quota = {r["name"]: str(r["nominalQuota"]) for r in fl["resources"]}
                assert quota == {k: str(v) for k, v in pools[labels].items()}, fl["name"]


# -- eksctl ----------------------------------------------------------------------------------------
def test_eksctl_config_validates(rendered):
    assert cv.eksctl_errors(rendered / "eksctl" / "cluster.yaml") == []


def test_eksctl_validator_catches_mistakes(rendered, tmp_path):
    cfg = yaml.safe_load((rendered / "eksctl" / "cluster.yaml").read_text())
    cfg["iam"]["withOIDC"] = "yes"
    cfg["managedNodeGroups"][0]["instanceTypes"] = "m6i.large"
    cfg["karpenter"]["spotInterruptionQueue"] = True
    bad = tmp_path / "cluster.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    report = " | ".join(cv.eksctl_errors(bad))
    assert "withOIDC" in report and "instanceTypes" in report and "spotInterruptionQueue" in report


def test_eksctl_irsa_roles_match_service_accounts_and_policies(docs):
    cfg = docs["eksctl/cluster.yaml"][0]
    assert cfg["iam"]["withOIDC"] is True and cfg["metadata"]["version"] == cv.K8S_VERSION
    roles = {(s["metadata"]["namespace"], s["metadata"]["name"]): s
             for s in cfg["iam"]["serviceAccounts"]}
    for sa_name, policy in ((names.WORKER_SERVICE_ACCOUNT, "worker-policy.json"),
                            (names.NOTEBOOK_SERVICE_ACCOUNT, "notebook-policy.json")):
        irsa = roles[(names.NAMESPACE, sa_name)]
        sa = one(docs, "ServiceAccount", sa_name)
        arn = f"arn:aws:iam::{TEST_ENV['AWS_ACCOUNT_ID']}:role/{irsa['roleName']}"
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == arn
        assert irsa["roleOnly"] is True
        (policy_arn,) = irsa["attachPolicyARNs"]
        assert policy_arn.endswith(f":policy/{TEST_ENV['CLUSTER_NAME']}-{sa_name}")
        # README step 2 creates that policy from this document
        readme = (cv.CLUSTER / "README.md").read_text()
        assert f"--policy-name \"$CLUSTER_NAME-{sa_name}\"" in readme
        assert f"rendered/iam/{policy}" in readme
    assert cfg["metadata"]["tags"]["karpenter.sh/discovery"] == TEST_ENV["CLUSTER_NAME"]


# -- IAM -----------------------------------------------------------------------------------------
def policy(docs, name) -> dict:
    return docs[f"iam/{name}"][0]


@pytest.mark.parametrize("name,writable", [("worker-policy.json", ("runs",)),
                                           ("notebook-policy.json", ("runs",))])
def test_iam_policies_are_least_privilege(docs, name, writable):
    assert cv.iam_findings(policy(docs, name), BUCKET, writable=writable) == []


def test_ecr_push_policy_uses_star_only_where_aws_requires_it(docs):
    p = policy(docs, "ecr-push-policy.json")
    assert cv.iam_findings(p, BUCKET) == []
    star = [s for s in p["Statement"] if s["Resource"] == "*"]
    assert [s["Action"] for s in star] == [["ecr:GetAuthorizationToken"]]
    for st in p["Statement"]:
        if st["Resource"] != "*":
            assert all(r.startswith(f"arn:aws:ecr:{TEST_ENV['AWS_REGION']}:"
                                    f"{TEST_ENV['AWS_ACCOUNT_ID']}:repository/eksfold-")
                       for r in st["Resource"])


def test_iam_checker_catches_excess():
    base = {"Version": "2012-10-17", "Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": ["s3:*"], "Resource": "*"},
        {"Sid": "B", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": f"arn:aws:s3:::{BUCKET}/db/*"},
        {"Sid": "C", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": "arn:aws:s3:::someone-elses-bucket/*"},
        {"Sid": "D", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": f"arn:aws:s3:::{BUCKET}"},
        {"Sid": "E", "Effect": "Allow", "Action": ["s3:GetObjects"],
         "Resource": f"arn:aws:s3:::{BUCKET}/runs/*"},
        {"Sid": "F", "Effect": "Allow", "Action": "ecr:PutImage", "Resource": "*"}]}
    found = " | ".join(cv.iam_findings(base, BUCKET))
    for expected in ("wildcard action s3:*", "A: Resource '*'", "B: writes to db/",
                     "C: S3 resource arn:aws:s3:::someone-elses-bucket/*",
                     "D: ListBucket without an s3:prefix", "E: s3:GetObjects is no s3 API",
                     "F: Resource '*'"):
        assert expected in found, expected
    assert any("grammar" in f for f in cv.iam_findings({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:b/x"}]}, "b"))


def test_iam_access_matrix(docs):
    worker, notebook = policy(docs, "worker-policy.json"), policy(docs, "notebook-policy.json")
    obj = f"arn:aws:s3:::{BUCKET}/{{}}/x".format
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    for p in (worker, notebook):
        assert cv.iam_allows(p, "s3:GetObject", obj("weights"))
        assert cv.iam_allows(p, "s3:PutObject", obj("runs"))
        assert cv.iam_allows(p, "s3:GetObject", obj("runs"))
        assert cv.iam_allows(p, "s3:ListBucket", bucket_arn, {"s3:prefix": "runs/r1/"})
        assert not cv.iam_allows(p, "s3:ListBucket", bucket_arn, {"s3:prefix": ""})
        assert not cv.iam_allows(p, "s3:PutObject", obj("db"))
        assert not cv.iam_allows(p, "s3:PutObject", obj("weights"))
        assert not cv.iam_allows(p, "s3:GetObject", "arn:aws:s3:::other-bucket/runs/x")
        assert not cv.iam_allows(p, "s3:DeleteBucket", bucket_arn)
    assert cv.iam_allows(worker, "s3:GetObject", obj("db"))
    assert not cv.iam_allows(notebook, "s3:GetObject", obj("db"))


# -- RBAC and service accounts ----------------------------------------------------------------
def test_notebook_rbac_is_namespaced_and_minimal(docs):
    assert not objects(docs, "ClusterRole") and not objects(docs, "ClusterRoleBinding")
    role = one(docs, "Role", "eksfold-notebook")
    assert role["metadata"]["namespace"] == names.NAMESPACE
    grants = {(g, r): set(rule["verbs"]) for rule in role["rules"]
              for g in rule["apiGroups"] for r in rule["resources"]}
    assert grants[("batch", "jobs")] == {"create", "get", "list", "watch", "delete"}
    # delete: the Pods of an index the executor abandoned (nothing else writes Pods)
    assert grants[("", "pods")] == {"get", "list", "watch", "delete"}
    assert grants[("", "pods/log")] == {"get"}
    for (group, res), verbs in grants.items():
        assert "*" not in verbs and res not in ("secrets", "pods/exec", "*"), (group, res)
        if (group, res) not in (("batch", "jobs"), ("", "pods")):
            assert verbs <= {"get", "list", "watch"}, (group, res)
    rb = one(docs, "RoleBinding", "eksfold-notebook")
    assert rb["metadata"]["namespace"] == names.NAMESPACE
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "eksfold-notebook"}
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": names.NOTEBOOK_SERVICE_ACCOUNT,
                               "namespace": names.NAMESPACE}]


# -- the names shared with the executor (docs/DESIGN.md, eksfold.k8s.names) -----------------------
def design_names() -> set[str]:
    text = (cv.REPO / "docs" / "DESIGN.md").read_text()
    section = text.split("## Kubernetes names", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([^`]+)`", section))


def test_design_doc_and_names_module_agree():
    listed = design_names()
    for value in (names.NAMESPACE, names.WORKER_SERVICE_ACCOUNT, names.NOTEBOOK_SERVICE_ACCOUNT,
                  names.PVC_NAME, names.MOUNT_PATH, names.POOL_LABEL, names.ALIGN_POOL,
                  names.INFER_POOL, names.GPU_CLASS_LABEL, names.CPU_QUEUE, names.GPU_QUEUE,
                  names.QUEUE_LABEL, names.WORKER_IMAGE, *names.GPU_CLASSES):
        assert value in listed, value
    assert f"{names.GPU_TAINT_KEY}=true:NoSchedule" in listed
    assert f'{names.DO_NOT_DISRUPT_ANNOTATION}: "true"' in listed


def test_cluster_defines_every_shared_name(docs):
    assert one(docs, "Namespace", names.NAMESPACE)
    for sa in (names.WORKER_SERVICE_ACCOUNT, names.NOTEBOOK_SERVICE_ACCOUNT):
        assert one(docs, "ServiceAccount", sa)["metadata"]["namespace"] == names.NAMESPACE
    pvc = one(docs, "PersistentVolumeClaim", names.PVC_NAME)
    assert pvc["metadata"]["namespace"] == names.NAMESPACE
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    pv = one(docs, "PersistentVolume", pvc["spec"]["volumeName"])
    assert pv["spec"]["claimRef"] == {"namespace": names.NAMESPACE, "name": names.PVC_NAME}
    assert pv["spec"]["csi"]["volumeHandle"] == TEST_ENV["FSX_ID"]
    assert one(docs, "StorageClass", pvc["spec"]["storageClassName"])
    pools = {np["metadata"]["name"]: np for np in nodepools(docs)}
    for pool in (names.ALIGN_POOL, names.INFER_POOL):
        assert pool in pools, f"no NodePool {pool}"
        assert pools[pool]["spec"]["template"]["metadata"]["labels"][names.POOL_LABEL] == pool
    classes, gpu_pools = set(), [np for np in pools.values() if np["spec"]["template"]["metadata"]
                                 ["labels"][names.POOL_LABEL] == names.INFER_POOL]
    for np in gpu_pools:
        classes.add(np["spec"]["template"]["metadata"]["labels"][names.GPU_CLASS_LABEL])
        assert {"key": names.GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"} in \
            np["spec"]["template"]["spec"]["taints"]
        assert names.GPU_RESOURCE in np["spec"]["limits"]
    assert classes == set(names.GPU_CLASSES)
    assert not pools[names.ALIGN_POOL]["spec"]["template"]["spec"].get("taints")
    for queue in (names.CPU_QUEUE, names.GPU_QUEUE):
        lq = one(docs, "LocalQueue", queue)
        assert lq["metadata"]["namespace"] == names.NAMESPACE
        assert one(docs, "ClusterQueue", lq["spec"]["clusterQueue"])
    prep = one(docs, "Job", "eksfold-data-prep")["spec"]["template"]
    assert prep["metadata"]["annotations"][names.DO_NOT_DISRUPT_ANNOTATION] == "true"
    assert {"name": "fsx", "mountPath": names.MOUNT_PATH} in \
        prep["spec"]["containers"][0]["volumeMounts"]
    assert prep["spec"]["securityContext"]["runAsUser"] == names.WORKER_UID
    assert f"/{names.WORKER_IMAGE}:{TEST_ENV['IMAGE_TAG']}" in prep["spec"]["containers"][0]["image"]


def test_renamed_pool_breaks_the_consistency_test(docs):
    broken = copy.deepcopy(docs)
    for d in broken["karpenter/nodepools.yaml"]:
        d["metadata"]["name"] = d["metadata"]["name"].replace("align", "cpu")
        labels = d["spec"]["template"]["metadata"]["labels"]
        labels[names.POOL_LABEL] = labels[names.POOL_LABEL].replace("align", "cpu")
    with pytest.raises(AssertionError):
        test_cluster_defines_every_shared_name(broken)


def executor_pods(kueue: bool = True) -> dict[str, dict]:
    """Pod templates of the Jobs the Kubernetes executor builds, per stage and size class."""
    sizing, out = jobs.Sizing(), {}
    for stage, length in (("align", 300), ("align", 3000), ("infer", 300), ("infer", 1800),
                          ("infer", 3000)):
        res = sizing.for_length(stage, length)
        (job,) = jobs.build_jobs(run_id="r-1", pod_root="/fsx/runs/r", stage=stage,
                                 batch=f"{stage}-{res.size}", targets=["T1"], resources=res,
                                 options=jobs.JobOptions(kueue=kueue))
        out[f"{stage}-{res.size}"] = job
    return out


def test_executor_jobs_validate_against_the_cluster_version():
    for name, job in executor_pods().items():
        assert cv.k8s_errors(job) == [], name


def test_executor_pods_land_on_the_intended_pools_and_flavors(docs):
    nodes = cv.pool_nodes(nodepools(docs))
    flavors = {f["metadata"]["name"]: cv.flavor_node(f) for f in objects(docs, "ResourceFlavor")}
    queues = {q["metadata"]["name"]: q for q in objects(docs, "LocalQueue")}
    cqs = {q["metadata"]["name"]: q for q in objects(docs, "ClusterQueue")}
    expected = {"align-std": {names.ALIGN_POOL}, "align-long": {names.ALIGN_POOL},
                "infer-small": {names.INFER_POOL, "eksfold-infer-l4", "eksfold-infer-large"},
                "infer-std": {names.INFER_POOL, "eksfold-infer-l4", "eksfold-infer-large"},
                "infer-large": {"eksfold-infer-large"}, "infer-xlarge": {"eksfold-infer-large"}}
    for name, job in executor_pods().items():
        spec = job["spec"]["template"]["spec"]
        assert {p for p, n in nodes.items() if cv.fits(spec, n)} == expected[name], name
        # Kueue: the Job's LocalQueue exists, and its ClusterQueue has a flavor this Pod fits
        # covering every resource the Pod requests
        cq = cqs[queues[job["metadata"]["labels"][names.QUEUE_LABEL]]["spec"]["clusterQueue"]]
        requested = set(spec["containers"][0]["resources"]["requests"])
        usable = [fl["name"] for g in cq["spec"]["resourceGroups"] for fl in g["flavors"]
                  if requested <= set(g["coveredResources"])
                  and cv.fits(spec, flavors[fl["name"]])]
        assert usable, name
        if name.startswith("infer-") and name not in ("infer-small", "infer-std"):
            assert usable == ["eksfold-gpu-large"], name


def test_scheduling_check_rejects_mismatches(docs):
    nodes = cv.pool_nodes(nodepools(docs))
    spec = copy.deepcopy(executor_pods()["infer-large"]["spec"]["template"]["spec"])
    spec.pop("tolerations")                                  # GPU taint no longer tolerated
    assert not any(cv.fits(spec, n) for n in nodes.values())
    spec = copy.deepcopy(executor_pods()["align-std"]["spec"]["template"]["spec"])
    spec["nodeSelector"] = {names.POOL_LABEL: "eksfold-cpu"}   # a renamed pool
    assert not any(cv.fits(spec, n) for n in nodes.values())


# -- JupyterHub ---------------------------------------------------------------------------------
def test_jupyterhub_values_use_known_z2jh_keys(docs):
    values = docs["jupyterhub/values.yaml"][0]
    assert cv.z2jh_errors(values) == []
    broken = copy.deepcopy(values)
    broken["singleuser"]["serviceAccount"] = "x"                   # real key: serviceAccountName
    broken["singleuser"]["profileList"][1]["kubespawner_override"]["gpu_limit"] = 1
    broken["cull"]["timeout"] = "1h"
    errs = " | ".join(cv.z2jh_errors(broken))
    assert "serviceAccount'" in errs and "gpu_limit" in errs and "'1h'" in errs


def test_jupyterhub_profiles_as_pods(docs):
    values = docs["jupyterhub/values.yaml"][0]
    su = values["singleuser"]
    assert su["serviceAccountName"] == names.NOTEBOOK_SERVICE_ACCOUNT
    assert su["uid"] == names.WORKER_UID
    assert {"name": names.PVC_NAME, "persistentVolumeClaim": {"claimName": names.PVC_NAME}} in \
        su["storage"]["extraVolumes"]
    assert {"name": names.PVC_NAME, "mountPath": names.MOUNT_PATH} in su["storage"]["extraVolumeMounts"]
    pods = cv.z2jh_pods(values)
    assert set(pods) == {"cpu", "gpu"}
    nodes = cv.pool_nodes(nodepools(docs))
    for slug, pod in pods.items():
        assert cv.k8s_errors(pod) == [], slug
        assert pod["metadata"]["annotations"][names.DO_NOT_DISRUPT_ANNOTATION] == "true"
    landing = {slug: {p for p, n in nodes.items() if cv.fits(pod["spec"], n)}
               for slug, pod in pods.items()}
    assert landing == {"cpu": {names.ALIGN_POOL}, "gpu": {names.INFER_POOL, "eksfold-infer-l4"}}
    gpu = pods["gpu"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu[names.GPU_RESOURCE] == "1"


# -- images --------------------------------------------------------------------------------------
DOCKERFILES = sorted((cv.CLUSTER / "images").glob("*/Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfiles_pass_hadolint(dockerfile):
    assert cv.hadolint_findings(dockerfile) == []


def test_hadolint_catches_mistakes(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get update\nRUN apt-get install curl\n"
                   "RUN pip install requests\nUSER root\n")
    found = " ".join(cv.hadolint_findings(bad))
    for rule in ("DL3006", "DL3009", "DL3013", "DL3014", "DL3002"):
        assert rule in found, rule


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_images_run_as_uid_1000(dockerfile):
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), re.M)
    assert users and users[-1] == f"{names.WORKER_UID}:{names.WORKER_UID}"


def test_worker_image_contents():
    text = (cv.CLUSTER / "images" / "worker" / "Dockerfile").read_text()
    assert re.search(r"^FROM nvidia/cuda:\$\{CUDA_VERSION\}-cudnn-devel-ubuntu22\.04 AS build",
                     text, re.M)
    runtime_apt = text.split("FROM nvidia/cuda:${CUDA_VERSION}-base")[1]
    for pkg in ("hmmer", "hhsuite", "kalign", "aria2", "rsync", "pigz"):
        assert re.search(rf"\b{pkg}\b", runtime_apt), pkg
    assert "openfold-setup.patch" in text and "openfold==0.0.1" in text
    patch = (cv.CLUSTER / "images" / "worker" / "openfold-setup.patch").read_text()
    assert "TORCH_CUDA_ARCH_LIST" in patch and "+    '-std=c++17'" in patch
    ignore = (cv.CLUSTER / "images" / "worker" / "Dockerfile.dockerignore").read_text()
    for path in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, re.M):
        for src in path.split():
            if not src.startswith("--from"):
                top = src.split("/")[0].replace("README.m[d]", "README.md")
                assert f"!{top}" in ignore or f"!{src}" in ignore or \
                    any(f"!{src}".startswith(line) for line in ignore.splitlines()
                        if line.startswith("!")), src


def _pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", path.read_text(), re.M))


def test_image_pins_match_the_repository_pins():
    repo = _pins(cv.REPO / "requirements.txt")
    for image in ("worker", "notebook"):
        pins = _pins(cv.CLUSTER / "images" / image / "requirements.txt")
        assert pins
        drift = {k: (v, repo.get(k)) for k, v in pins.items()
                 if k != "jupyterhub" and repo.get(k) != v}
        assert not drift, (image, drift)


# -- storage ---------------------------------------------------------------------------------------
def test_fsx_request_matches_the_fsx_api_model(docs):
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("fsx")
    shape = model.operation_model("CreateFileSystem").input_shape
    request = dict(docs["storage/fsx.json"][0], SubnetIds=["subnet-0123456789abcdef0"],
                   SecurityGroupIds=["sg-0123456789abcdef0"])   # added by create-fsx.sh
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    lustre = request["LustreConfiguration"]
    assert lustre["ImportPath"] == lustre["ExportPath"] == f"s3://{BUCKET}"
    assert request["StorageCapacity"] == int(TEST_ENV["FSX_CAPACITY_GIB"])
    bad = dict(request, StorageCapacity="2400", LustreConfiguration=dict(lustre, Deploy="x"))
    assert ParamValidator().validate(bad, shape).has_errors()


# -- scripts and README ----------------------------------------------------------------------------
SCRIPTS = sorted(cv.CLUSTER.rglob("*.sh"))


def test_shell_scripts_pass_shellcheck():
    r = subprocess.run([cv.tool("shellcheck"), "-x", *map(str, SCRIPTS)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    for script in SCRIPTS:
        if script.name != "env.example.sh":
            assert "set -euo pipefail" in script.read_text(), script


def test_no_credentials_in_cluster():
    pattern = re.compile(r"AKIA[0-9A-Z]{16}|aws_secret_access_key|aws_session_token|"
                         r"BEGIN (RSA |EC )?PRIVATE KEY", re.I)
    for p in cv.CLUSTER.rglob("*"):
        if p.is_file() and "rendered" not in p.parts:
            assert not pattern.search(p.read_text(errors="replace")), p


def test_readme_covers_every_manifest_costs_sizes_and_teardown():
    readme = (cv.CLUSTER / "README.md").read_text()
    for p in cv.CLUSTER.rglob("*"):
        rel = p.relative_to(cv.CLUSTER)
        if p.suffix in (".yaml", ".json") and rel.parts[0] not in ("images", "rendered"):
            assert f"rendered/{rel}" in readme, rel
    for script in ("render.sh", "scripts/build-push.sh", "scripts/create-fsx.sh",
                   "scripts/teardown.sh"):
        assert script in readme, script
    for heading in ("## Hourly costs", "## Tear down", "## Databases: sizes and times"):
        assert heading in readme, heading
    assert "2.62 TB" in readme and "600 GB" in readme and "us-east-1" in readme
