"""The unit record: what ``targets/<id>/<stage>/metrics.json`` holds, read and written only here.

A unit ``(stage, target)`` is committed when its record is written (last, atomically, after its
outputs). The record is the authority on a unit's state: ``status == "ok"`` means done.
Executors that must record a failure the worker could not write (a Pod that never got a node,
an OOM kill) write the same record, with ``executor`` and ``reason`` set.

Stage-specific figures (alignment depth, pLDDT, timings of the forward pass, ...) go to
``metrics``; each stage documents its keys (:mod:`eksfold.stages`).

>>> rec = UnitRecord("infer", "7elf-c", status="ok", metrics={"mean_plddt": 50.0})
>>> UnitRecord.from_json(rec.to_json()).done
True
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field

from .contracts import Status

SCHEMA_VERSION = 2
OK, FAILED = "ok", "failed"
# Keys of schema 1 (flat metrics.json) that became record fields; the rest moved to `metrics`.
_V1_FIELDS = {"stage", "target", "status", "error", "wall_s", "host", "pod", "executor",
              "reason", "exit_code", "job", "attempt_started"}


def unit_dir(stage: str, target_id: str) -> str:
    return f"targets/{target_id}/{stage}"


def record_path(stage: str, target_id: str) -> str:
    return f"{unit_dir(stage, target_id)}/metrics.json"


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class UnitRecord:
    """One unit's outcome and measurements."""

    stage: str
    target: str
    status: str = FAILED                 # "ok" | "failed"
    error: str | None = "interrupted before completion"
    exit_code: int | None = None         # the worker's exit code for this unit
    reason: str | None = None            # an executor's word: Unschedulable, OOMKilled, ...
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None     # this unit's own peak RSS (see peak_rss_scope)
    peak_rss_scope: str | None = None    # "unit"/"unit-sampled"; "process": lifetime figure
    rss_start_mb: float | None = None    # the worker's resident memory when the unit started
    rss_end_mb: float | None = None      # ... after it, once freed memory was given back
    started: str | None = None
    finished: str | None = None
    host: str | None = None
    pod: str | None = None
    job: str | None = None
    executor: str | None = None
    attempts: list = field(default_factory=list)   # earlier tries within this unit (OOM fallback)
    outputs: dict = field(default_factory=dict)    # file name -> sha256
    metrics: dict = field(default_factory=dict)    # stage-specific
    schema: int = SCHEMA_VERSION

    @property
    def done(self) -> bool:
        return self.status == OK

    @property
    def state(self) -> Status:
        return Status.DONE if self.done else Status.FAILED

    def succeed(self, metrics: dict, outputs: dict) -> None:
        self.status, self.error, self.exit_code = OK, None, 0
        self.metrics.update(metrics)
        self.outputs = dict(outputs)

    def fail(self, error: str, exit_code: int, reason: str | None = None) -> None:
        self.status, self.error, self.exit_code = FAILED, error, exit_code
        self.reason = reason or self.reason

    # -- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> "UnitRecord":
        if data.get("schema", 1) < 2:   # schema 1: one flat dict
            data = {**{k: v for k, v in data.items() if k in _V1_FIELDS},
                    "metrics": {k: v for k, v in data.items() if k not in _V1_FIELDS},
                    "started": data.get("attempt_started"), "schema": SCHEMA_VERSION}
            data.pop("attempt_started", None)
        if data.get("peak_rss_mb") is not None and not data.get("peak_rss_scope"):
            # written before per-unit measurement: ru_maxrss, cumulative in a warm worker
            data = {**data, "peak_rss_scope": "process"}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json(cls, text: str | bytes) -> "UnitRecord":
        return cls.from_dict(json.loads(text))

    # -- the store ------------------------------------------------------------------------
    @classmethod
    def read(cls, store, stage: str, target_id: str) -> "UnitRecord | None":
        """The unit's record, or None when there is none (or it cannot be parsed)."""
        try:
            return cls.from_json(store.read_bytes(record_path(stage, target_id)))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def write(self, store) -> None:
        """Commit the record (atomic: a reader sees the old record or this one)."""
        store.write_bytes(record_path(self.stage, self.target), self.to_json().encode())


def unit_status(record: UnitRecord | None) -> Status:
    """done / failed / missing: the one rule, used by the driver, the CLI and the summary."""
    return Status.MISSING if record is None else record.state
