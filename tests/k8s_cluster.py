"""A real Kubernetes control plane on 127.0.0.1 for the integration tests, plus a stand-in kubelet.

etcd (Debian ``etcd-server``) and kube-apiserver, kube-controller-manager, kube-scheduler 1.20
(built from Debian's ``kubernetes`` source package by ``tools/k8s/build_control_plane.sh``, run by
``make test-setup``) start on random free ports in a temporary directory. Everything except running
containers is the real thing: admission, defaulting, the Job controller creating Pods, the
scheduler placing them by taints, affinity and ``nvidia.com/gpu`` capacity, the PV binder, the
TTL and garbage collectors. ``$EKSFOLD_K8S_BIN`` points at other binaries (e.g. a >= 1.29 build
made by hand): the flags and the service-account set-up follow the server's version.

:class:`Kubelet` plays the node agent for the Node objects registered here (they mirror the
``cluster/`` node pools): it renews the nodes' leases, and for every Pod the scheduler binds to
one of them it runs the container's command locally as a subprocess with the Pod's environment,
the PVC mount path mapped to the PersistentVolume's host path, then writes the Pod's status
(Running, then Succeeded/Failed with the container's exit code) like a kubelet does. As kubelets
>= 1.27 do, a Pod being deleted gets a terminal phase (Failed, the process's exit code, any
``DisruptionTarget`` condition the API server added) before it is removed. Tests can make it
evict a Pod (node-pressure eviction: SIGKILL, Failed, exit 137, ``DisruptionTarget``) or report
a container ``OOMKilled`` (SIGKILL, exit 137).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from eksfold.k8s import client as k8sclient
from eksfold.k8s import names

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "tools" / "k8s" / "build_control_plane.sh"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
PV_NAME = "eksfold-fsx-pv"


def bin_dir() -> Path:
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-bin-dir"], capture_output=True,
                         text=True, check=True)
    return Path(out.stdout.strip())


def binary_version(bins: Path) -> tuple[int, int]:
    """(major, minor) of the kube-apiserver binary (``Kubernetes v1.20.2``)."""
    out = subprocess.run([str(bins / "kube-apiserver"), "--version"], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"v(\d+)\.(\d+)", out)
    if not m:
        raise RuntimeError(f"cannot read the version of {bins / 'kube-apiserver'}: {out!r}")
    return int(m.group(1)), int(m.group(2))


def version_flags(version: tuple[int, int]) -> dict[str, list[str]]:
    """Per-version flags: the ``TTLAfterFinished`` gate (GA in 1.23, removed in 1.25) and the
    insecure ``--port`` of controller-manager and scheduler (gone in 1.23/1.24)."""
    gates = ["--feature-gates=TTLAfterFinished=true"] if version < (1, 23) else []
    port = ["--port=0"] if version < (1, 23) else []
    return {"kube-apiserver": gates, "kube-controller-manager": gates + port,
            "kube-scheduler": port}


def missing_binaries() -> list[str]:
    d = bin_dir()
    missing = [str(d / b) for b in BINARIES if not os.access(d / b, os.X_OK)]
    if not shutil.which("etcd"):
        missing.append("etcd (Debian etcd-server)")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_until(pred, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- nodes mirroring cluster/ ----------------------------------------------------------------
@dataclass
class NodeSpec:
    name: str
    pool: str
    cpu: str
    memory: str
    gpus: int = 0
    gpu_class: str | None = None
    instance_type: str = ""

    def manifest(self) -> dict:
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", names.POOL_LABEL: self.pool,
                  "karpenter.sh/nodepool": self.pool,
                  "node.kubernetes.io/instance-type": self.instance_type}
        capacity = {"cpu": self.cpu, "memory": self.memory, "pods": "110",
                    "ephemeral-storage": "200Gi"}
        taints = []
        if self.gpus:
            labels[names.GPU_CLASS_LABEL] = self.gpu_class
            capacity[names.GPU_RESOURCE] = str(self.gpus)
            taints.append({"key": names.GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"})
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": labels},
                "spec": {"taints": taints} if taints else {},
                "status": {"capacity": capacity, "allocatable": capacity,
                           "conditions": ready_conditions(),
                           "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                         {"type": "Hostname", "address": self.name}],
                           "nodeInfo": {"kubeletVersion": "v1.20.2", "architecture": "amd64",
                                        "operatingSystem": "linux", "machineID": "", "systemUUID": "",
                                        "bootID": "", "kernelVersion": "", "osImage": "",
                                        "containerRuntimeVersion": "", "kubeProxyVersion": ""}}}


def ready_conditions() -> list[dict]:
    t = now()
    conds = [("Ready", "True", "KubeletReady"), ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
             ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
             ("PIDPressure", "False", "KubeletHasSufficientPID")]
    return [{"type": c, "status": s, "reason": r, "message": r, "lastHeartbeatTime": t,
             "lastTransitionTime": t} for c, s, r in conds]


DEFAULT_NODES = (
    NodeSpec("align-0", names.ALIGN_POOL, cpu="16", memory="64Gi", instance_type="r6i.4xlarge"),
    NodeSpec("infer-standard-0", names.INFER_POOL, cpu="8", memory="64Gi", gpus=1,
             gpu_class="standard", instance_type="g6.2xlarge"),
    NodeSpec("infer-large-0", names.INFER_POOL, cpu="16", memory="192Gi", gpus=1,
             gpu_class="large", instance_type="p4de.24xlarge"),
)


# -- the control plane ------------------------------------------------------------------------
@dataclass
class ControlPlane:
    workdir: Path
    procs: dict = field(default_factory=dict)
    logs: dict = field(default_factory=dict)
    kubeconfig: Path | None = None
    port: int = 0
    version: tuple[int, int] = (0, 0)
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    def _start(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")
        self.logs[name] = self.workdir / f"{name}.log"
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def log_tail(self, name: str, n: int = 30) -> str:
        try:
            return "\n".join(self.logs[name].read_text(errors="replace").splitlines()[-n:])
        except (KeyError, OSError):
            return ""

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def start(self, bins: Path) -> None:
        w = self.workdir
        pki = w / "pki"
        pki.mkdir(parents=True)
        subprocess.run(["openssl", "genrsa", "-out", str(pki / "sa.key"), "2048"], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(pki / "sa.key"), "-pubout", "-out",
                        str(pki / "sa.pub")], check=True, capture_output=True)
        (pki / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')
        self.version = binary_version(bins)
        flags = version_flags(self.version)
        etcd_port, etcd_peer, self.port = free_port(), free_port(), free_port()
        self._start("etcd", [
            shutil.which("etcd"), "--name", "test", "--data-dir", str(w / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"test=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync", "--quota-backend-bytes", str(2 << 30)])
        self._start("kube-apiserver", [
            str(bins / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}",
            f"--advertise-address={_host_ip()}", f"--cert-dir={pki}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            # test-only: one static admin token (1.20 refuses anonymous with AlwaysAllow)
            f"--token-auth-file={pki / 'tokens.csv'}", "--authorization-mode=AlwaysAllow",
            "--enable-priority-and-fairness=false", "--event-ttl=30m",
            *flags["kube-apiserver"]])
        self.kubeconfig = w / "kubeconfig"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{self.port}\n"
            f"    certificate-authority: {pki / 'apiserver.crt'}\n"
            f"users:\n- name: admin\n  user:\n    token: {self.token}\n"
            f"contexts:\n- name: test\n  context: {{cluster: test, user: admin, "
            f"namespace: {names.NAMESPACE}}}\n"
            "current-context: test\n")
        self._wait_ready(90)
        self._start("kube-controller-manager", [
            str(bins / "kube-controller-manager"), f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'apiserver.crt'}",   # ca.crt in service-account secrets
            "--controllers=*", *flags["kube-controller-manager"],
            # the stand-in kubelet renews leases; a generous grace period keeps a busy 2-core
            # machine from declaring the nodes lost mid-test
            "--node-monitor-grace-period=300s",
            "--concurrent-gc-syncs=5"])
        self._start("kube-scheduler", [
            str(bins / "kube-scheduler"), f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            *flags["kube-scheduler"]])

    def _wait_ready(self, timeout: float) -> None:
        ctx = ssl._create_unverified_context()

        def ready():
            self._check_alive()
            req = urllib.request.Request(f"https://127.0.0.1:{self.port}/readyz",
                                         headers={"Authorization": f"Bearer {self.token}"})
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_until(ready, timeout, "kube-apiserver /readyz", interval=0.5)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _host_ip() -> str:
    """A non-loopback address for the ``kubernetes`` Service endpoint (loopback is refused)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
        if not ip.startswith("127."):
            return ip
    except OSError:
        pass
    return "10.0.0.1"


# -- the stand-in kubelet ---------------------------------------------------------------------
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass
class PodRun:
    name: str
    namespace: str
    node: str
    argv: list[str]
    env: dict
    proc: subprocess.Popen
    log: Path
    started: str
    exit_code: int | None = None
    killed_for: str | None = None    # "OOMKilled" / "Evicted": why the kubelet killed it


class Kubelet:
    """Runs the Pods bound to ``nodes`` as local subprocesses and reports their status."""

    def __init__(self, api: k8sclient.Api, nodes: list[str], workdir: Path, base_env: dict,
                 interval: float = 0.25, images: dict | None = None):
        self.api, self.nodes, self.workdir = api, set(nodes), workdir
        self.base_env, self.interval = base_env, interval
        # image repository name -> what that image adds to the environment (its contents, as
        # far as a local process can have them); an image not listed gets the base env only
        self.images = images or {}
        self.runs: dict[str, PodRun] = {}        # pod uid -> run
        self.history: list[PodRun] = []          # every Pod ever started, in order
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)
        self._last_lease = 0.0
        self._lock = threading.Lock()            # the loop and a test's evict()/oom_kill()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for run in self.runs.values():
            if run.proc.poll() is None:
                _kill(run.proc)

    # one pass: leases, new Pods, finished processes, deletions
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._last_lease > 10:
                    self.heartbeat()
                    self._last_lease = time.monotonic()
                self._sync()
            except Exception as exc:  # keep the node alive; tests read .errors
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)

    def heartbeat(self) -> None:
        coord = kclient.CoordinationV1Api(self.api.client)
        for node in self.nodes:
            body = {"metadata": {"name": node, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": node, "leaseDurationSeconds": 40,
                             "renewTime": datetime.now(timezone.utc).strftime(
                                 "%Y-%m-%dT%H:%M:%S.%fZ")}}
            try:
                coord.patch_namespaced_lease(node, "kube-node-lease", body)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                coord.create_namespaced_lease("kube-node-lease", body)
            self.api.core.patch_node_status(node, {"status": {"conditions": ready_conditions()}})

    def _sync(self) -> None:
        pods = self.api.core.list_pod_for_all_namespaces().items
        seen = set()
        for pod in pods:
            uid, node = pod.metadata.uid, pod.spec.node_name
            if node not in self.nodes:
                continue
            seen.add(uid)
            run = self.runs.get(uid)
            if pod.metadata.deletion_timestamp is not None:
                if run and run.exit_code is None:
                    # kubelets >= 1.27: stop the container, write the terminal phase, then
                    # remove the Pod (a Job with a podFailurePolicy needs that phase)
                    if run.proc.poll() is None:
                        _kill(run.proc)
                    with self._lock:
                        run.exit_code = exit_status(run.proc.returncode)
                        self._report_exit(pod, run)
                self._delete_now(pod)
                continue
            if run is None and pod.status.phase == "Pending":
                self._start_pod(pod)
            elif run is not None and run.exit_code is None and run.proc.poll() is not None:
                with self._lock:
                    run.exit_code = exit_status(run.proc.returncode)
                    self._report_exit(pod, run)
        for uid in list(self.runs):
            if uid not in seen:          # deleted behind our back (e.g. force delete)
                run = self.runs.pop(uid)
                if run.proc.poll() is None:
                    _kill(run.proc)

    def _pod_env(self, pod, container) -> dict:
        env = dict(self.base_env)
        repository = container.image.rpartition("/")[2].partition(":")[0].partition("@")[0]
        env.update(self.images.get(repository, {}))
        for e in container.env or []:
            if e.value is not None:
                env[e.name] = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), e.value)
            elif e.value_from is not None and e.value_from.field_ref is not None:
                env[e.name] = _field(pod, e.value_from.field_ref.field_path)
        return env

    def _host_paths(self, pod, container) -> dict[str, str]:
        """mountPath -> host directory, for PVC volumes bound to hostPath PVs."""
        out = {}
        vols = {v.name: v for v in pod.spec.volumes or []}
        for m in container.volume_mounts or []:
            vol = vols.get(m.name)
            if vol is None or vol.persistent_volume_claim is None:
                continue
            pvc = self.api.core.read_namespaced_persistent_volume_claim(
                vol.persistent_volume_claim.claim_name, pod.metadata.namespace)
            pv = self.api.core.read_persistent_volume(pvc.spec.volume_name)
            out[m.mount_path.rstrip("/")] = pv.spec.host_path.path.rstrip("/")
        return out

    def _start_pod(self, pod) -> None:
        (container,) = pod.spec.containers
        env = self._pod_env(pod, container)
        mounts = self._host_paths(pod, container)

        def mapped(s: str) -> str:
            s = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), s)
            for mount, host in mounts.items():
                if s == mount or s.startswith(mount + "/"):
                    return host + s[len(mount):]
            return s
        argv = [mapped(a) for a in (container.command or []) + (container.args or [])]
        env = {k: mapped(v) for k, v in env.items()}
        # as a kubelet: spec.hostname when set (Indexed Jobs: <job>-<index>), else the Pod name
        env["HOSTNAME"] = pod.spec.hostname or pod.metadata.name
        log = self.workdir / f"{pod.metadata.namespace}_{pod.metadata.name}.log"
        started = now()
        proc = subprocess.Popen(argv, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=self.workdir, start_new_session=True)
        run = PodRun(pod.metadata.name, pod.metadata.namespace, pod.spec.node_name, argv, env,
                     proc, log, started)
        self.runs[pod.metadata.uid] = run
        self.history.append(run)
        self._patch_status(pod, {
            "phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": started,
            "conditions": _conditions(pod, ready=True),
            "containerStatuses": [{"name": container.name, "image": container.image,
                                   "imageID": "", "ready": True, "restartCount": 0,
                                   "started": True,
                                   "state": {"running": {"startedAt": started}}}]})

    def _report_exit(self, pod, run: PodRun) -> None:
        (container,) = pod.spec.containers
        code = run.exit_code
        message = None
        if code != 0 and container.termination_message_policy == "FallbackToLogsOnError":
            message = "\n".join(run.log.read_text(errors="replace").splitlines()[-20:])[-4096:]
        reason = "Completed" if code == 0 else "Error"
        if run.killed_for == "OOMKilled":
            reason = "OOMKilled"
        terminated = {"exitCode": code, "reason": reason,
                      "startedAt": run.started, "finishedAt": now()}
        if message:
            terminated["message"] = message
        status = {"phase": "Succeeded" if code == 0 else "Failed",
                  "conditions": _conditions(pod, ready=False),
                  "containerStatuses": [{"name": container.name, "image": container.image,
                                         "imageID": "", "ready": False, "restartCount": 0,
                                         "started": False, "state": {"terminated": terminated}}]}
        if run.killed_for == "Evicted":
            # node-pressure eviction as a kubelet >= 1.27 reports it
            status.update(reason="Evicted", message="The node was low on resource: memory.")
            status["conditions"].append({
                "type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                "message": "The node was low on resource: memory.", "lastTransitionTime": now()})
        self._patch_status(pod, status)

    def evict(self, pod_name: str) -> PodRun:
        """Evict a running Pod as a kubelet under node pressure does: SIGKILL, then phase
        Failed, reason Evicted, exit code 137 and the DisruptionTarget condition."""
        return self._kill_for(pod_name, "Evicted")

    def oom_kill(self, pod_name: str) -> PodRun:
        """The kernel's OOM killer in the Pod's cgroup: SIGKILL, container terminated with
        reason OOMKilled and exit code 137 (the Pod is not deleted)."""
        return self._kill_for(pod_name, "OOMKilled")

    def _kill_for(self, pod_name: str, why: str) -> PodRun:
        run = next(r for r in list(self.runs.values()) if r.name == pod_name)
        with self._lock:   # the loop reports the exit with this reason, not as a plain error
            run.killed_for = why
            try:
                os.killpg(run.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return run

    def _patch_status(self, pod, status: dict) -> None:
        try:
            self.api.core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace,
                                                      {"status": status})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _delete_now(self, pod) -> None:
        try:
            self.api.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace,
                                                grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise
        self.runs.pop(pod.metadata.uid, None)

    def wait_idle(self, timeout: float = 60) -> None:
        wait_until(lambda: all(r.proc.poll() is not None for r in list(self.runs.values())),
                   timeout, "the kubelet's processes to end")


def exit_status(returncode: int) -> int:
    """A container's exit code as runtimes report it: 128 + N for a death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _conditions(pod, ready: bool) -> list[dict]:
    t = now()
    status = "True" if ready else "False"
    ours = [{"type": "Initialized", "status": "True", "lastTransitionTime": t},
            {"type": "Ready", "status": status, "lastTransitionTime": t},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": t},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": t}]
    # keep conditions others set (DisruptionTarget from the Eviction API, PodGC, preemption)
    kept = [{"type": c.type, "status": c.status, "reason": c.reason, "message": c.message,
             "lastTransitionTime": c.last_transition_time.strftime("%Y-%m-%dT%H:%M:%SZ")
             if c.last_transition_time else t}
            for c in pod.status.conditions or [] if c.type not in {o["type"] for o in ours}]
    return ours + kept


def _field(pod, path: str) -> str:
    m = re.fullmatch(r"metadata\.(annotations|labels)\['(.+)'\]", path)
    if m:
        return (getattr(pod.metadata, m.group(1)) or {}).get(m.group(2), "")
    return {"metadata.name": pod.metadata.name, "metadata.namespace": pod.metadata.namespace,
            "metadata.uid": pod.metadata.uid, "spec.nodeName": pod.spec.node_name,
            "spec.serviceAccountName": pod.spec.service_account_name,
            "status.hostIP": "127.0.0.1", "status.podIP": "127.0.0.1"}.get(path, "")


def _kill(proc: subprocess.Popen, grace: float = 5) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# -- the assembled test cluster ---------------------------------------------------------------
class Cluster:
    """Control plane + namespace, service account, FSx stand-in volume, nodes and kubelet."""

    def __init__(self, workdir: Path, nodes=DEFAULT_NODES):
        self.workdir = Path(workdir)
        self.volume_dir = self.workdir / "fsx"        # what the PVC eksfold-fsx holds
        self.volume_dir.mkdir(parents=True, exist_ok=True)
        self.node_specs = list(nodes)
        self.plane = ControlPlane(self.workdir / "control-plane")
        self.plane.workdir.mkdir(parents=True, exist_ok=True)
        self.api: k8sclient.Api | None = None
        self.kubelet: Kubelet | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def version(self) -> tuple[int, int]:
        """The server's (major, minor), as the API reports it."""
        return self.api.version

    def service_account_files(self, account: str, sa_dir: Path) -> Path:
        """What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount for a Pod
        of ``account``: ``token`` (from the TokenRequest API, served since 1.20; >= 1.24 creates
        no token Secret), ``ca.crt`` and ``namespace``."""
        token = self.api.core.create_namespaced_service_account_token(
            account, names.NAMESPACE, {"spec": {"expirationSeconds": 3600}}).status.token
        sa_dir.mkdir(parents=True, exist_ok=True)
        (sa_dir / "token").write_text(token)
        (sa_dir / "ca.crt").write_bytes((self.plane.workdir / "pki" / "apiserver.crt").read_bytes())
        (sa_dir / "namespace").write_text(names.NAMESPACE)
        return sa_dir

    def start(self, image_env: dict | None = None, images: dict | None = None) -> "Cluster":
        """Start everything; ``image_env`` is added to the Pods' base environment (what the
        worker image would provide, e.g. PATH to its Python); ``images`` maps an image
        repository name to what that image adds on top (e.g. OpenFold3's interpreter)."""
        missing = missing_binaries()
        if missing:
            raise RuntimeError("Kubernetes control-plane binaries are missing: "
                               + ", ".join(missing) + ". Run `make test-setup` (it builds them once "
                               "per machine with tools/k8s/build_control_plane.sh).")
        t0 = time.monotonic()
        self.plane.start(bin_dir())
        self.api = k8sclient.connect(kubeconfig=self.kubeconfig)
        self._objects()
        (self.workdir / "kubelet").mkdir(exist_ok=True)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        base_env.update(image_env or {})
        self.kubelet = Kubelet(self.api, [n.name for n in self.node_specs],
                               self.workdir / "kubelet", base_env, images=images)
        self.kubelet.heartbeat()
        self.kubelet.start()
        self._wait_nodes_schedulable(120)
        self.startup_s = time.monotonic() - t0
        return self

    def _objects(self) -> None:
        core = self.api.core
        core.create_namespace({"metadata": {"name": names.NAMESPACE}})
        core.create_namespaced_service_account(
            names.NAMESPACE, {"metadata": {"name": names.WORKER_SERVICE_ACCOUNT}})
        if self.version < (1, 24):
            # before 1.24 the ServiceAccount admission plugin refuses Pods until the SA has its
            # auto-created token Secret (>= 1.24 creates none: Pods get projected tokens)
            wait_until(lambda: core.read_namespaced_service_account(
                names.WORKER_SERVICE_ACCOUNT, names.NAMESPACE).secrets, 60,
                "the worker service account's token")
        wait_until(lambda: _exists(lambda: core.read_namespaced_service_account(
            "default", names.NAMESPACE)), 60, "the default service account")
        # the shared volume: a static PV pre-bound to the claim, as cluster/ does for FSx
        core.create_persistent_volume({
            "metadata": {"name": PV_NAME},
            "spec": {"capacity": {"storage": "1200Gi"}, "accessModes": ["ReadWriteMany"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                     "hostPath": {"path": str(self.volume_dir), "type": "Directory"},
                     "claimRef": {"namespace": names.NAMESPACE, "name": names.PVC_NAME}}})
        core.create_namespaced_persistent_volume_claim(names.NAMESPACE, {
            "metadata": {"name": names.PVC_NAME},
            "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "",
                     "volumeName": PV_NAME, "resources": {"requests": {"storage": "1200Gi"}}}})
        wait_until(lambda: core.read_namespaced_persistent_volume_claim(
            names.PVC_NAME, names.NAMESPACE).status.phase == "Bound", 60, "the PVC to bind")
        for spec in self.node_specs:
            core.create_node(spec.manifest())

    def _wait_nodes_schedulable(self, timeout: float) -> None:
        def ok():
            nodes = self.api.core.list_node().items
            return len(nodes) == len(self.node_specs) and all(
                not any(t.key.startswith("node.kubernetes.io/") for t in n.spec.taints or [])
                for n in nodes)
        wait_until(ok, timeout, "the nodes' not-ready taints to clear", interval=0.5)

    def stop(self) -> None:
        if self.kubelet:
            self.kubelet.stop()
        if self.api:
            self.api.close()
        self.plane.stop()

    def diagnostics(self) -> str:
        parts = [f"--- {n} ---\n{self.plane.log_tail(n, 15)}" for n in self.plane.logs]
        if self.kubelet and self.kubelet.errors:
            parts.append("--- kubelet errors ---\n" + "\n".join(self.kubelet.errors[-10:]))
        return "\n".join(parts)


def _exists(read) -> bool:
    try:
        read()
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
