"""Running one work unit ``(stage, target)`` and committing it: the worker's inner loop.

:class:`UnitRunner` holds one opened stage (tools checked, model built) and runs units of it
one after another. Per unit: skip if done, check the dependency, compute the outputs in a
scratch folder, upload them (each file atomic), record their SHA-256 digests, upload the log,
and write the unit record last. A failure becomes a recorded, readable error with the unit's
exit code; the runner then goes on with the next unit.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import resource
import time
import traceback
from pathlib import Path

from .contracts import POD_NAME_ENV, RESOURCE_REFUSAL, ExitCode
from .errors import ConfigError, ResourceError, StorageError, TargetError, ToolError
from .leases import Lease
from .memory.kills import clear_kills
from .memory.usage import UnitMemory
from .records import UnitRecord, now_utc, unit_dir
from .run import Run, log_path
from .stages import get_stage

log = logging.getLogger("eksfold.worker")
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children together."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def process_age_s() -> float | None:
    """Seconds since this process started (Linux), to measure interpreter + import cost."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return round(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError):
        return None


def digests(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class UnitRunner:
    """Runs units of ``stage`` for ``run`` in this process; use as a context manager."""

    def __init__(self, run: Run, stage: str):
        self.run_ = run
        self.stage = get_stage(stage)(run)
        self.opened, self.open_error = False, None
        self.last_error: str | None = None    # why the last run() returned without a record
        self.deferred = False                 # the last run() found the unit held elsewhere
        self.fixed_cost: dict = {}

    def __enter__(self) -> "UnitRunner":
        self._scratch = contextlib.ExitStack()
        return self

    def __exit__(self, *exc) -> None:
        if self.opened:
            self.stage.close()
        self._scratch.close()

    def prepare(self, target_ids: list[str]) -> None:
        """Let the stage work on the whole shard first (``Stage.prepare_batch``); a failure
        here only costs the batching: the units then run one by one."""
        run, stage = self.run_, self.stage
        self._scratch.close()   # the previous batch's results: its units have run by now
        todo = [run.target(t) for t in target_ids if run.unit_status(stage.name, t) != "done"
                and (not stage.depends_on or run.unit_status(stage.depends_on, t) == "done")]
        if len(todo) < 2:
            return
        self._open()
        if self.open_error:
            return
        scratch = self._scratch.enter_context(run.store.scratch(f"{stage.name}-batch"))
        try:
            stage.prepare_batch(todo, scratch)
        except Exception as exc:  # noqa: BLE001 - each unit will run (and report) on its own
            log.warning("%s: batch of %d failed (%s: %s); running them one by one",
                        stage.name, len(todo), type(exc).__name__, exc)

    def _open(self) -> None:
        if self.opened or self.open_error:
            return
        started = time.perf_counter()
        self.fixed_cost["worker_start_s"] = process_age_s()
        try:
            self.stage.open()
            self.opened = True
        except (ConfigError, TargetError) as exc:  # every unit would fail the same way
            self.open_error = exc
        self.fixed_cost["stage_open_s"] = round(time.perf_counter() - started, 3)

    def run(self, target_id: str, wait: bool = True) -> int:
        """Run one unit and commit its record; returns the unit's exit code.

        A unit another live process holds (its lease) is not run: with ``wait`` the runner
        waits up to one lease TTL for it, else it returns at once with ``self.deferred`` set.
        """
        run, stage = self.run_, self.stage
        target = run.target(target_id)
        if run.unit_status(stage.name, target_id) == "done":
            log.info("%s %s: already done, skipping", stage.name, target_id)
            return ExitCode.OK
        self.last_error, self.deferred = None, False
        if stage.depends_on and run.unit_status(stage.depends_on, target_id) != "done":
            dep = get_stage(stage.depends_on)
            self.last_error = str(TargetError(target_id, f"{stage.title} needs a finished "
                                                         f"{dep.title} first"))
            log.error("%s %s: %s", stage.name, target_id, self.last_error)
            return ExitCode.BAD_INPUT     # nothing recorded: the unit did not run
        lease = Lease(run.store, stage.name, target_id)
        if not lease.acquire_waiting(None if wait else 0):
            self.deferred = True
            self.last_error = f"running elsewhere ({lease.describe_other()}); not run here"
            log.warning("%s %s: %s", stage.name, target_id, self.last_error)
            return ExitCode.FAILED
        try:
            if run.unit_status(stage.name, target_id) == "done":   # its holder finished it
                return ExitCode.OK
            return self._run_leased(target)
        finally:
            lease.release()

    def _run_leased(self, target) -> int:
        run, stage, target_id = self.run_, self.stage, target.id
        # what a killed earlier attempt left half-written (never taken for a result)
        run.store.clean_partial(unit_dir(stage.name, target_id))
        run.store.clean_partial(f"attempts/{stage.name}", f"{target_id}.json.")
        run.store.clean_partial(f"attempts/{stage.name}", f"{target_id}.kills.json.")
        record = UnitRecord(stage.name, target_id, started=now_utc(), host=os.uname().nodename,
                            pod=os.environ.get(POD_NAME_ENV) or os.environ.get("HOSTNAME"),
                            executor=os.environ.get("EKSFOLD_EXECUTOR", "local"))
        with run.store.scratch(f"{stage.name}-{target_id}") as scratch:
            handler = logging.FileHandler(scratch / "worker.log")
            handler.setFormatter(_FORMAT)
            logging.getLogger().addHandler(handler)
            started, cpu0 = time.perf_counter(), _cpu_s()
            # this unit's own peak, not the warm worker's lifetime one (ru_maxrss)
            memory = UnitMemory().start()
            try:
                self._run_into(record, target, scratch / "out")
            except KeyboardInterrupt:
                record.fail("interrupted before completion", ExitCode.INTERRUPTED)
                raise
            finally:
                record.wall_s = round(time.perf_counter() - started, 3)
                record.cpu_s = round(_cpu_s() - cpu0, 3)
                self._record_memory(record, memory.finish())
                record.finished = now_utc()
                logging.getLogger().removeHandler(handler)
                handler.close()
                run.store.put_file(scratch / "worker.log", log_path(stage.name, target_id))
                record.write(run.store)   # the commit marker, last
        if record.done:   # kills of earlier attempts matter no more (they are in the record)
            clear_kills(run.store, stage.name, target_id)
        log.info("%s %s: %s in %.1fs", stage.name, target_id, record.status, record.wall_s)
        return record.exit_code

    @staticmethod
    def _record_memory(record: UnitRecord, figures: dict) -> None:
        """The unit's peak and the worker's resident memory before/after it (freed memory
        given back first: what stays is what the worker keeps, :mod:`eksfold.memory.usage`)."""
        record.peak_rss_mb, record.peak_rss_scope = figures["peak_rss_mb"], figures["peak_rss_scope"]
        record.rss_start_mb, record.rss_end_mb = figures["rss_start_mb"], figures["rss_end_mb"]
        if record.done:
            record.metrics["rss_before_release_mb"] = figures.get("rss_before_release_mb")
            if figures.get("child_peak_rss_mb"):   # counted in peak_rss_mb (OpenFold3's runner)
                record.metrics["child_peak_rss_mb"] = figures["child_peak_rss_mb"]

    def _run_into(self, record: UnitRecord, target, out: Path) -> None:
        stage, store = self.stage, self.run_.store
        log.info("%s %s (%d residues) starting", stage.name, target.id, target.length)
        try:
            self._open()
            if self.open_error:
                raise self.open_error
            dep = unit_dir(stage.depends_on, target.id) if stage.depends_on else None
            if dep:
                with store.staged(dep) as inputs:
                    metrics = stage.run_unit(target, Path(inputs), out)
            else:
                metrics = stage.run_unit(target, None, out)
            if self.fixed_cost:   # the one-time costs, on the unit that paid them
                metrics["fixed_cost"], self.fixed_cost = self.fixed_cost, {}
            record.attempts = metrics.pop("attempts", [])
            store.upload_dir(out, unit_dir(stage.name, target.id))
            record.succeed(metrics, digests(out))
        except ResourceError as exc:   # does not fit here: retryable elsewhere, not bad input
            record.attempts = getattr(exc, "attempts", record.attempts)
            record.fail(str(exc), ExitCode.FAILED, reason=RESOURCE_REFUSAL)
            log.error("%s %s: %s", stage.name, target.id, exc)
        except (TargetError, ConfigError) as exc:
            record.attempts = getattr(exc, "attempts", record.attempts)
            record.fail(str(exc), ExitCode.BAD_INPUT)
            log.error("%s %s: %s", stage.name, target.id, exc)
        except (ToolError, StorageError) as exc:   # retryable: a tool, a database, the root
            record.fail(str(exc), ExitCode.FAILED)
            log.error("%s %s: %s", stage.name, target.id, exc)
        except Exception as exc:  # noqa: BLE001 - any crash becomes a recorded, readable failure
            record.fail(f"{type(exc).__name__}: {exc}", ExitCode.FAILED)
            log.error("%s %s failed:\n%s", stage.name, target.id, traceback.format_exc())
