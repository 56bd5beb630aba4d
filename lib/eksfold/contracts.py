"""Names and numbers shared across modules, defined once: exit codes, unit states, defaults.

Every module that needs one of these imports it from here, so two definitions cannot drift.

Unit states come in three vocabularies, one per place a state is read from, mapped to each other
only here:

============== ============================ ===========================================
vocabulary     values                       where it comes from
============== ============================ ===========================================
``Status``     done, failed, missing        the run store: a unit's ``metrics.json``
``Event``      running, waiting, finished,  an executor, about a unit in flight
               failed
``Board``      pending, queued, waiting,    what a progress display shows
               running, done, failed,
               blocked, invalid
============== ============================ ===========================================

A run's overall outcome is an :class:`ExitCode` of ``eksfold run``.
"""
from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """Process exit codes of the worker (per unit) and of ``eksfold run`` (per run)."""

    OK = 0
    FAILED = 1            # worker: a unit failed (retryable); run: some units failed
    BAD_INPUT = 2         # worker: deterministic bad input, never retry; CLI: usage/config error
    SOME_INVALID = 3      # run: every valid target finished, but some input records were refused
    INTERRUPTED = 130     # Ctrl-C (SIGINT)
    TERMINATED = 143      # SIGTERM (Pod eviction, executor cancel)


# UnitRecord.reason of a unit that did not fit the memory it had (killed for memory with the
# most frugal setting, or out of memory in every setting tried): exit 1, retryable elsewhere
RESOURCE_REFUSAL = "InsufficientMemory"


class Status(StrEnum):
    """A unit's state as the run store records it (the authority)."""

    DONE = "done"
    FAILED = "failed"
    MISSING = "missing"


class Event(StrEnum):
    """What an executor reports about a unit it launched."""

    RUNNING = "running"
    WAITING = "waiting"      # not placed yet (no free node/GPU); detail says why
    FINISHED = "finished"    # the process ended well; the store still decides done/failed
    FAILED = "failed"


class Board(StrEnum):
    """What a progress display shows for a unit."""

    PENDING = "pending"
    QUEUED = "queued"
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"      # its dependency did not finish
    INVALID = "invalid"      # its input record was refused


TERMINAL = frozenset({Board.DONE, Board.FAILED, Board.BLOCKED, Board.INVALID})


def board_from_status(status: str) -> Board:
    """The display state of a unit known only from the store (at the start of a run)."""
    return Board.DONE if status == Status.DONE else Board.PENDING


def board_from_event(event: str) -> Board:
    """The display state of a non-final executor event (final ones are read from the store)."""
    return {Event.RUNNING: Board.RUNNING, Event.WAITING: Board.WAITING}[Event(event)]


# -- defaults, one place ------------------------------------------------------------------
DEFAULT_PRESET = "model_1_ptm"
DEFAULT_WEIGHTS = "random"
DEFAULT_DATABASE_ENV = "EKSFOLD_DATABASE"       # a FASTA for jackhmmer when none is given
DEFAULT_DATABASE_NAME = "uniprot20k.fasta"      # what `make setup` builds under data/db/

# -- Kubernetes annotation/label keys the executor writes and reads ----------------------
TARGETS_ANNOTATION = "eksfold.io/targets"       # JSON: the Job's shards (index order)
ROOT_ANNOTATION = "eksfold.io/root"
# The Pod's own name, from the downward API (metadata.name): on Indexed Jobs $HOSTNAME is
# <job>-<index>, shared by an index's retries, so unit records name their Pod from this.
POD_NAME_ENV = "EKSFOLD_POD_NAME"
