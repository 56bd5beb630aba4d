"""The worker: runs units of one stage of a run, each committed as soon as it finishes.

    python -m eksfold.worker --root ROOT --stage align --target 7elf-c
    python -m eksfold.worker --root ROOT --stage infer --targets 7elf-c,7lt7-a
    python -m eksfold.worker --root ROOT --stage infer --batch infer-0001-std --index 3
    python -m eksfold.worker --root ROOT --stage infer --serve   # target ids on stdin

One process loads the stage's tools or model once (:meth:`eksfold.stages.Stage.open`) and then
runs many units: a Kubernetes index runs its shard (``--batch``/``--index``, the index from
``$JOB_COMPLETION_INDEX`` by default), the local executor feeds a warm worker over a pipe
(``--serve``: one target id per line in, one JSON line per event out). Done units are skipped,
so a retried shard resumes where it stopped; a bad target fails alone and the worker goes on.
With ``$EKSFOLD_FOLLOW_S`` (streaming Jobs) a shard's targets are taken as their inputs are
committed, longest ready first (:mod:`eksfold.follow`).

Per unit, outputs are computed in a scratch folder, uploaded file by file (each write atomic),
and the unit record is written last. Exit codes (:class:`eksfold.contracts.ExitCode`), per
unit and for the process: 0 all done, 2 bad input only (deterministic: do not retry), 1 any
other failure (retry), 130/143 interrupted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys

from .contracts import ExitCode
from .errors import ConfigError, StorageError, TargetError
from .follow import follow_limit, follow_shard
from .run import Run
from .stages import stage_names
from .units import UnitRunner

log = logging.getLogger("eksfold.worker")


def _shard(run: Run, args) -> list[str]:
    if args.target:
        return [args.target]
    if args.targets:
        return [t for t in args.targets.split(",") if t]
    index = args.index if args.index is not None else os.environ.get("JOB_COMPLETION_INDEX")
    if index is None or not args.batch:
        raise ConfigError("give --target, --targets, --serve, or --batch with --index "
                          "(or $JOB_COMPLETION_INDEX)")
    shards = run.read_batch(args.batch)
    if not 0 <= int(index) < len(shards):
        raise ConfigError(f"index {index} outside batch {args.batch} of {len(shards)} shards")
    abandoned = run.abandoned_shards(args.batch).get(int(index))
    if abandoned is not None:   # the executor gave up on it: its failures stand, run nothing
        log.warning("shard %s/%s was abandoned (%s); nothing to run", args.batch, index, abandoned)
        return []
    return shards[int(index)]


def process_exit_code(codes: list[int]) -> int:
    """A retryable failure anywhere -> 1; else bad input anywhere -> 2; else 0."""
    if any(c not in (ExitCode.OK, ExitCode.BAD_INPUT) for c in codes):
        return ExitCode.FAILED
    return ExitCode.BAD_INPUT if ExitCode.BAD_INPUT in codes else ExitCode.OK


def serve(runner: UnitRunner, inbox, outbox) -> int:
    """Run each target id read from ``inbox``; report on ``outbox`` until EOF.

    A line is one target id, or a JSON list of ids: a batch, prepared at once
    (:meth:`UnitRunner.prepare`, e.g. one MMseqs2 search) and then run unit by unit."""
    def say(**event):
        outbox.write(json.dumps(event) + "\n")
        outbox.flush()

    say(event="ready", pid=os.getpid())
    for line in inbox:
        line = line.strip()
        if not line:
            continue
        batch = json.loads(line) if line.startswith("[") else [line]
        if len(batch) > 1:
            runner.prepare(batch)
        for tid in batch:
            say(event="started", target=tid)
            try:
                code = runner.run(tid)
            except StorageError as exc:   # the root is unusable now (full, unreachable):
                code, runner.last_error = ExitCode.FAILED, str(exc)   # this unit only
                log.error("%s: %s", tid, exc)
            say(event="finished", target=tid, exit_code=int(code), error=runner.last_error,
                deferred=runner.deferred)
    return ExitCode.OK


def _terminate(signum, frame):
    # SIGTERM (executor cancel, Pod eviction): unwind so the unit's scratch is cleaned up
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eksfold.worker",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="run root (path or s3:// URI)")
    parser.add_argument("--stage", required=True, choices=stage_names())
    parser.add_argument("--target", help="one target id")
    parser.add_argument("--targets", help="comma-separated target ids")
    parser.add_argument("--batch", help="batch name (ROOT/batches/NAME.json: shards by index)")
    parser.add_argument("--index", type=int, help="shard index (default $JOB_COMPLETION_INDEX)")
    parser.add_argument("--serve", action="store_true",
                        help="read target ids from stdin, report JSON lines on stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run = Run.open(args.root)
        runner = UnitRunner(run, args.stage)
        if args.serve:
            # the protocol owns stdout; anything else printed (C libraries too) goes to stderr
            outbox = os.fdopen(os.dup(1), "w")
            os.dup2(2, 1)
            with runner:
                return serve(runner, sys.stdin, outbox)
        with runner:
            shard = _shard(run, args)
            follow = follow_limit()
            if follow and runner.stage.depends_on:   # streaming: inputs still being computed
                index = (args.index if args.index is not None
                         else os.environ.get("JOB_COMPLETION_INDEX"))
                progress = (None if not args.batch or index is None else
                            lambda running, done: run.write_shard_progress(
                                args.batch, int(index), running, done))
                return process_exit_code(follow_shard(runner, run, shard,
                                                      runner.stage.depends_on, follow,
                                                      progress=progress))
            runner.prepare(shard)     # e.g. one MMseqs2 search for the whole shard
            codes, deferred = [], []
            for tid in shard:         # units held by another process: after the others
                code = runner.run(tid, wait=False)
                (deferred.append(tid) if runner.deferred else codes.append(code))
            return process_exit_code(codes + [runner.run(tid) for tid in deferred])
    except (TargetError, ConfigError) as exc:
        log.error("%s", exc)
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt:
        log.warning("interrupted")
        return ExitCode.INTERRUPTED


def _exit(code: int) -> None:
    """Leave without the interpreter's teardown of torch (~0.5 s after a fold): every unit is
    committed and every stream flushed by now, so nothing is lost by skipping it."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
