"""The worker entrypoint: runs exactly one work unit ``(stage, target)`` of a run.

    python -m eksfold.worker --root ROOT --stage align --target 7elf-c
    python -m eksfold.worker --root ROOT --stage infer --batch infer-0001 --index 3

The local executor runs this as a subprocess and a Kubernetes Job runs it in a Pod: same code,
same outputs. Outputs are computed in a scratch folder, uploaded file by file (each write
atomic), and ``metrics.json`` is written last. Exit codes: 0 done (or already done), 2 bad
input (deterministic: do not retry), 1 other failure, 130/143 interrupted.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .errors import ConfigError, TargetError, ToolError
from .run import STAGES, Run, log_path, metrics_path, unit_dir

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
log = logging.getLogger("eksfold.worker")


def _rusage() -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of this process and its finished children together."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return cpu, max(me.ru_maxrss, kids.ru_maxrss) / 1024


def _scratch_dir(run: Run, stage: str, target_id: str) -> Path:
    # Keep scratch inside a local run root so nothing is written outside it.
    local = run.store.local_path(".scratch")
    base = local if local is not None else Path(os.environ.get("EKSFOLD_SCRATCH", tempfile.gettempdir()))
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{stage}-{target_id}-", dir=base))


def _alignment_dir(run: Run, target_id: str, scratch: Path) -> Path:
    rel = unit_dir("align", target_id)
    local = run.store.local_path(rel)
    if local is not None:
        return local
    dest = scratch / "alignments"
    run.store.download_dir(rel, dest)
    (dest / "metrics.json").unlink(missing_ok=True)
    return dest


def run_unit(run: Run, stage: str, target_id: str) -> int:
    """Run one unit and record its metrics; returns the process exit code."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    target = run.target(target_id)
    if run.unit_status(stage, target_id) == "done":
        log.info("%s %s: already done, skipping", stage, target_id)
        return EXIT_OK
    if stage == "infer" and run.unit_status("align", target_id) != "done":
        raise TargetError(target_id, "inference needs a finished alignment stage first")
    scratch = _scratch_dir(run, stage, target_id)
    logfile = scratch / "worker.log"
    handler = logging.FileHandler(logfile)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    started, (cpu0, _) = time.perf_counter(), _rusage()
    record = {"stage": stage, "target": target_id, "status": "failed",
              "error": "interrupted before completion",
              "host": os.uname().nodename, "pod": os.environ.get("HOSTNAME"),
              "attempt_started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    code = EXIT_FAILED
    try:
        out = scratch / "out"
        log.info("%s %s (%d residues) starting", stage, target_id, target.length)
        if stage == "align":
            from .align import align_target
            record.update(align_target(target, run.config.databases, run.config.align, out))
        else:
            from .inference import infer_target
            record.update(infer_target(target, _alignment_dir(run, target_id, scratch),
                                       _infer_config(run), out))
        run.store.upload_dir(out, unit_dir(stage, target_id))
        record["status"], record["error"], code = "ok", None, EXIT_OK
    except (TargetError, ConfigError) as exc:
        record["error"], code = str(exc), EXIT_BAD_INPUT
        log.error("%s %s: %s", stage, target_id, exc)
    except ToolError as exc:
        record["error"] = str(exc)
        log.error("%s %s: %s", stage, target_id, exc)
    except Exception as exc:  # noqa: BLE001 - any crash becomes a recorded, readable failure
        record["error"] = f"{type(exc).__name__}: {exc}"
        log.error("%s %s failed:\n%s", stage, target_id, traceback.format_exc())
    finally:
        cpu1, peak = _rusage()
        record["wall_s"] = round(time.perf_counter() - started, 3)
        record["unit_cpu_s"] = round(cpu1 - cpu0, 3)
        record["unit_peak_rss_mb"] = round(peak, 1)
        logging.getLogger().removeHandler(handler)
        handler.close()
        try:
            run.store.put_file(logfile, log_path(stage, target_id))
            run.store.write_json(metrics_path(stage, target_id), record)  # the commit marker
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    log.info("%s %s: %s in %.1fs", stage, target_id, record["status"], record["wall_s"])
    return code


def _infer_config(run: Run):
    """The run's inference settings; a Job for a very long target asks for OpenFold's
    low-memory long-sequence settings through EKSFOLD_LOW_MEMORY=1."""
    config = run.config.infer
    if os.environ.get("EKSFOLD_LOW_MEMORY") == "1" and "+long" not in config.preset:
        config = dataclasses.replace(config, preset=config.preset + "+long")
        log.info("EKSFOLD_LOW_MEMORY=1: using preset %s", config.preset)
    return config


def _target_from_args(run: Run, args) -> str:
    if args.target:
        return args.target
    index = args.index if args.index is not None else os.environ.get("JOB_COMPLETION_INDEX")
    if index is None or not args.batch:
        raise ConfigError("give --target, or --batch with --index (or $JOB_COMPLETION_INDEX)")
    ids = run.read_batch(args.batch)
    if not 0 <= int(index) < len(ids):
        raise ConfigError(f"index {index} outside batch {args.batch} of {len(ids)} targets")
    return ids[int(index)]


def _terminate(signum, frame):
    # SIGTERM (Ctrl-C in the executor, Pod eviction): unwind so scratch is cleaned up.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eksfold.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="run root (path or s3:// URI)")
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--target", help="target id")
    parser.add_argument("--batch", help="batch name (ROOT/batches/NAME.json)")
    parser.add_argument("--index", type=int, help="index into the batch (default $JOB_COMPLETION_INDEX)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run = Run.open(args.root)
        return run_unit(run, args.stage, _target_from_args(run, args))
    except (TargetError, ConfigError) as exc:
        log.error("%s", exc)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
