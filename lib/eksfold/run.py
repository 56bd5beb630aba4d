"""A run: one root directory (local or ``s3://``) holding manifest, targets, outputs, summary.

The layout is documented in ``docs/DESIGN.md``. A unit ``(stage, target)`` is done when its
record (:class:`eksfold.records.UnitRecord`, ``targets/<id>/<stage>/metrics.json``) says so;
the record is written last.
"""
from __future__ import annotations

import getpass
import hashlib
import platform
import socket
import time
from functools import cached_property
from pathlib import Path

from .alignment.tools import tool_version
from .config import RunConfig
from .errors import ConfigError, TargetError
from .records import UnitRecord, record_path, unit_dir, unit_status  # noqa: F401
from .stages import stage_names
from .storage import Store, open_store
from .targets import Target, dump_targets, load_targets
from .version import __version__

MANIFEST, TARGETS, SUMMARY = "manifest.json", "targets.json", "summary.csv"
REFUSED = "refused.json"   # targets this machine cannot fold now (memory), rewritten per run
metrics_path = record_path   # the record's file name predates the record


def log_path(stage: str, target_id: str) -> str:
    return f"logs/{stage}/{target_id}.log"


def _describe_database(path: str) -> dict:
    """Size and, for small files, a hash: enough to tell two databases apart cheaply."""
    p = Path(path)
    if not p.exists():
        return {"path": path, "exists": False}
    info = {"path": path, "exists": True, "bytes": p.stat().st_size if p.is_file() else None}
    if p.is_file() and p.stat().st_size < 256 * 2**20:
        info["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return info


def environment_versions() -> dict:
    return {
        "eksfold": __version__, "python": platform.python_version(),
        "jackhmmer": tool_version(["jackhmmer", "-h"]),
        "hhblits": tool_version(["hhblits", "-h"]),
    }


class Run:
    """Handle on a run root. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, store: Store):
        self.store = store
        self.root = store.uri()

    # -- creation -----------------------------------------------------------------------
    @classmethod
    def create(cls, root: str, targets: list[Target], config: RunConfig,
               inputs: dict | None = None, rejected: list[TargetError] = ()) -> "Run":
        """Create a run, or reopen it when ``root`` already holds the same targets and config."""
        store = open_store(root)
        targets_json = dump_targets(targets)
        targets_hash = hashlib.sha256(targets_json.encode()).hexdigest()
        if store.exists(MANIFEST):
            manifest = store.read_json(MANIFEST)
            if manifest.get("targets_sha256") != targets_hash or not _same_settings(
                    manifest.get("config") or {}, config.to_dict()):
                raise ConfigError(
                    f"{store.uri()} already holds a run with other targets or settings; "
                    "choose a new --root (or delete the old run) instead of mixing results")
            return cls(store)
        manifest = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "created_by": {"user": getpass.getuser(), "host": socket.gethostname()},
            "inputs": inputs or {},
            "targets_sha256": targets_hash,
            "n_targets": len(targets),
            "rejected_targets": [{"target": e.target, "problem": e.problem} for e in rejected],
            "config": config.to_dict(),
            "databases": {k: _describe_database(v) for k, v in config.databases.configured().items()},
            "versions": environment_versions(),
        }
        store.write_text(TARGETS, targets_json)
        store.write_json(MANIFEST, manifest)  # last: a manifest means the run is complete
        return cls(store)

    @classmethod
    def open(cls, root: str) -> "Run":
        store = open_store(root)
        if not store.exists(MANIFEST):
            raise ConfigError(f"{store.uri()} is not an eksfold run (no {MANIFEST})")
        return cls(store)

    # -- contents -----------------------------------------------------------------------
    @cached_property
    def manifest(self) -> dict:
        return self.store.read_json(MANIFEST)

    @cached_property
    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.manifest["config"])

    @cached_property
    def targets(self) -> list[Target]:
        return load_targets(self.store.read_text(TARGETS))

    def target(self, target_id: str) -> Target:
        for target in self.targets:
            if target.id == target_id:
                return target
        raise TargetError(target_id, f"not a target of run {self.root}")

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this run includes (optional ones only when its config asks)."""
        return stage_names(self.config)

    def record(self, stage: str, target_id: str) -> UnitRecord | None:
        return UnitRecord.read(self.store, stage, target_id)

    def unit_status(self, stage: str, target_id: str) -> str:
        """"done", "failed" or "missing"."""
        return unit_status(self.record(stage, target_id))

    def write_refused(self, refused: dict[str, str]) -> None:
        """Targets refused for this invocation (too large for the memory here), with why."""
        self.store.write_json(REFUSED, refused)

    @property
    def refused(self) -> dict[str, str]:
        try:
            return self.store.read_json(REFUSED)
        except FileNotFoundError:
            return {}

    def read_log(self, stage: str, target_id: str, tail: int = 40) -> str:
        try:
            lines = self.store.read_text(log_path(stage, target_id)).splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])

    def write_batch(self, name: str, shards: list[list[str]]) -> str:
        """Record a batch: the shards (lists of target ids) of one Job, by index."""
        rel = f"batches/{name}.json"
        self.store.write_json(rel, {"shards": [list(s) for s in shards]})
        return rel

    def read_batch(self, name: str) -> list[list[str]]:
        data = self.store.read_json(f"batches/{name}.json")
        # a plain list is the older form: one target per index
        return [[t] for t in data] if isinstance(data, list) else data["shards"]

    def progress_path(self, name: str, index: int) -> str:
        return f"progress/{name}/{index}.json"

    def write_shard_progress(self, name: str, index: int, running: str | None,
                             done: list[str]) -> None:
        """A streaming shard's worker says what it runs now and what it has committed: it takes
        targets out of shard order (as their inputs arrive), so the driver cannot infer this."""
        self.store.write_json(self.progress_path(name, index),
                              {"running": running, "done": list(done)})

    def read_shard_progress(self, name: str, index: int) -> dict | None:
        try:
            return self.store.read_json(self.progress_path(name, index))
        except (FileNotFoundError, ValueError):
            return None

    def abandon_shard(self, name: str, index: int, reason: str) -> None:
        """Withdraw shard ``index`` of a batch (its units were reported failed, e.g. never
        scheduled): a Pod of that index that starts later runs nothing (the worker checks)."""
        rel = f"batches/{name}.json"
        data = self.store.read_json(rel)
        data = {"shards": [[t] for t in data]} if isinstance(data, list) else data
        data.setdefault("abandoned", {})[str(index)] = reason
        self.store.write_json(rel, data)

    def abandoned_shards(self, name: str) -> dict[int, str]:
        """The withdrawn shards of a batch: index -> why."""
        data = self.store.read_json(f"batches/{name}.json")
        return {} if isinstance(data, list) else {int(i): why for i, why
                                                   in data.get("abandoned", {}).items()}


def _same_settings(recorded: dict, current: dict) -> bool:
    """Whether a run's recorded config matches this invocation's, setting by setting.

    Sections and fields a later version added (``score``, ``templates``, ...) are not in an
    older run's manifest; its workers read that manifest and fill them with their defaults,
    so they are not compared: an old run root resumes with the same command."""
    for section, fields in recorded.items():
        now = current.get(section)
        if not isinstance(fields, dict) or not isinstance(now, dict):
            if fields != now:
                return False
        elif any(now.get(k) != v for k, v in fields.items()):
            return False
    return True

