"""The executor's connection to the cluster and the names Pods see (run id, run root)."""
from __future__ import annotations

import logging
from pathlib import Path

from ...errors import ConfigError
from ...k8s import jobs as kjobs
from ...k8s import names
from ...k8s.client import Api, connect
from ...run import Run

log = logging.getLogger(__name__)


class Connection:
    """Needs ``_api``, ``_connect_args``, ``_namespace``, ``_indexed``, ``options``,
    ``volume_root`` (set by the executor's constructor)."""

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = connect(**self._connect_args)
            self._own_api = True
        return self._api

    @property
    def namespace(self) -> str:
        return self._namespace or self.api.namespace

    @property
    def indexed(self) -> bool:
        if self._indexed is None:
            self._indexed = self.api.supports_indexed()
            if not self._indexed:
                log.info("Kubernetes %d.%d: no Indexed Jobs with per-index backoff; "
                         "submitting one Job per shard", *self.api.version)
        return self._indexed

    def pod_root(self, root: str) -> str:
        """The run root as Pods see it: s3:// as is, local paths on the shared volume."""
        if "://" in root:
            return root
        path, mount = Path(root).resolve(), self.options.mount_path.rstrip("/")
        if self.volume_root is not None and path.is_relative_to(self.volume_root):
            return f"{mount}/{path.relative_to(self.volume_root).as_posix()}".rstrip("/")
        if str(path) == mount or str(path).startswith(mount + "/"):
            return str(path)
        raise ConfigError(f"run root {root} is not on the shared volume, so Pods cannot see it: "
                          f"use {mount}/runs/<name> (set volume_root= where this machine mounts "
                          "the volume) or an s3:// run root")

    def run_id(self, run: Run) -> str:
        return kjobs.run_id(self.pod_root(run.root))

    def _selector(self, run_ids) -> str:
        return f"{names.RUN_LABEL} in ({','.join(sorted(run_ids))})"
