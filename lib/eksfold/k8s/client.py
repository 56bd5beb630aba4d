"""Kubernetes API configuration: in-cluster service account inside a Pod, kubeconfig elsewhere.

A notebook in JupyterHub on EKS runs in a Pod with the ``eksfold-notebook`` service account, so
``connect()`` picks up its token and namespace; on a laptop it reads ``~/.kube/config`` (or
``$KUBECONFIG``, e.g. written by ``aws eks update-kubeconfig``).

>>> api = connect()                        # doctest: +SKIP
>>> api.namespace, api.version             # doctest: +SKIP
('eksfold', (1, 33))
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, MissingDependencyError
from . import names

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
INDEXED_MIN_VERSION = (1, 29)   # Indexed + backoffLimitPerIndex + podFailurePolicy all on


def _kubernetes():
    try:
        import kubernetes
    except ImportError as exc:
        raise MissingDependencyError("kubernetes", "The Kubernetes executor needs the official "
                                     "client (pinned in requirements.txt): run `make setup`") from exc
    return kubernetes


def in_cluster(sa_dir: Path = SA_DIR) -> bool:
    """True inside a Pod that has a service-account token mounted."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (Path(sa_dir) / "token").exists()


@dataclass
class Api:
    """The configured API client, the namespace to use and the server's (major, minor)."""

    client: object              # kubernetes.client.ApiClient
    namespace: str
    version: tuple[int, int]

    @property
    def core(self):
        return _kubernetes().client.CoreV1Api(self.client)

    @property
    def batch(self):
        return _kubernetes().client.BatchV1Api(self.client)

    def supports_indexed(self) -> bool:
        """Whether Indexed Jobs with per-index backoff and pod failure policies are served."""
        return self.version >= INDEXED_MIN_VERSION

    def close(self) -> None:
        self.client.close()


def parse_version(major: str, minor: str) -> tuple[int, int]:
    """``("1", "29+")`` (EKS appends '+') -> ``(1, 29)``."""
    def num(s):
        m = re.match(r"\d+", s or "")
        return int(m.group()) if m else 0
    return num(major), num(minor)


def connect(kubeconfig: str | os.PathLike | None = None, context: str | None = None,
            namespace: str | None = None, use_in_cluster: bool | None = None,
            sa_dir: str | os.PathLike = SA_DIR) -> Api:
    """Load the configuration and ask the server its version.

    ``use_in_cluster=None`` decides by :func:`in_cluster` (``KUBERNETES_SERVICE_HOST`` set and a
    token in ``sa_dir``). The namespace is, in order: the argument, the Pod's own namespace (in
    cluster) or the kubeconfig context's, ``eksfold``.
    """
    k8s = _kubernetes()
    cfg = k8s.client.Configuration()
    sa_dir = Path(sa_dir)
    if use_in_cluster if use_in_cluster is not None else in_cluster(sa_dir):
        from kubernetes.config.incluster_config import InClusterConfigLoader
        try:
            InClusterConfigLoader(token_filename=str(sa_dir / "token"),
                                  cert_filename=str(sa_dir / "ca.crt")).load_and_set(cfg)
        except k8s.config.ConfigException as exc:
            raise ConfigError(f"in-cluster configuration failed: {exc}") from exc
        ns = (sa_dir / "namespace").read_text().strip() if (sa_dir / "namespace").exists() else None
    else:
        path = str(kubeconfig) if kubeconfig else None
        try:
            k8s.config.load_kube_config(config_file=path, context=context,
                                        client_configuration=cfg)
            _, active = k8s.config.list_kube_config_contexts(config_file=path)
        except (k8s.config.ConfigException, FileNotFoundError) as exc:
            raise ConfigError(f"no Kubernetes configuration ({exc}); inside EKS run in a Pod "
                              "with a service account, elsewhere run `aws eks update-kubeconfig "
                              "--name <cluster>` or pass kubeconfig=") from exc
        if context:
            active = next((c for c in k8s.config.list_kube_config_contexts(path)[0]
                           if c["name"] == context), active)
        ns = (active or {}).get("context", {}).get("namespace")
    api_client = k8s.client.ApiClient(cfg)
    info = k8s.client.VersionApi(api_client).get_code()
    return Api(api_client, namespace or ns or names.NAMESPACE,
               parse_version(info.major, info.minor))
