"""Leases: a unit runs in one process at a time, and a crashed holder cannot keep it forever.

Before a worker runs a unit it takes the unit's lease, ``leases/<stage>/<target>.json`` in the
run root: ``{"holder", "host", "pid", "expires"}``. Taking is atomic create-if-absent (the
store's :meth:`~eksfold.storage.Store.create_exclusive`: ``O_EXCL`` on a filesystem, a
conditional ``PutObject`` with ``If-None-Match: *`` on S3); the holder renews it while the unit
runs and deletes it when the unit is committed. A lease is taken over when it has expired, or
at once when its holder was a process on this host that no longer exists (a ``kill -9``): the
takeover is a compare-and-swap on the lease's version (:meth:`~eksfold.storage.Store.replace_if`),
so of two workers stealing the same stale lease exactly one wins.

>>> with Lease(store, "infer", "7elf-c") as lease:   # doctest: +SKIP
...     lease.held                                   # False: someone else runs it now
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

from .errors import StorageError

log = logging.getLogger(__name__)

TTL_S = 30.0           # a holder that stops renewing loses the lease after this long


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, belongs to someone else
        return True
    return True


class Lease:
    """Context manager: ``held`` says whether this process got the unit."""

    def __init__(self, store, stage: str, target_id: str, ttl_s: float = TTL_S):
        self.store, self.rel, self.ttl = store, f"leases/{stage}/{target_id}.json", ttl_s
        self.me = {"holder": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}
        self.held, self.other = False, None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps({**self.me, "expires": time.time() + self.ttl}).encode()

    def _stale(self, lease: dict) -> bool:
        if lease.get("expires", 0) < time.time():
            return True
        same_host = lease.get("host") == self.me["host"]
        return same_host and lease.get("pid") != os.getpid() and not _alive(int(lease.get("pid", 0)))

    def acquire(self) -> bool:
        if self.store.create_exclusive(self.rel, self._body()):
            self.held = True
        else:
            current = self.store.read_with_version(self.rel)
            if current is None:                       # released meanwhile: try once more
                self.held = self.store.create_exclusive(self.rel, self._body())
            else:
                data, version = current
                try:
                    lease = json.loads(data)
                except ValueError:                    # a torn write can't happen; be safe
                    lease = {}
                self.other = lease
                if self._stale(lease):
                    self.held = self.store.replace_if(self.rel, self._body(), version)
        if self.held:
            self._renewer = threading.Thread(target=self._renew, daemon=True)
            self._renewer.start()
        return self.held

    def acquire_waiting(self, max_wait_s: float | None = None, poll_s: float = 1.0) -> bool:
        """Acquire, waiting up to ``max_wait_s`` (default: one TTL) for a holder that may have
        died elsewhere (a retried Pod on another node) to let its lease expire."""
        deadline = time.monotonic() + (self.ttl + 5 if max_wait_s is None else max_wait_s)
        while not self.acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                current = self.store.read_with_version(self.rel)
                if current is None or json.loads(current[0]).get("holder") != self.me["holder"]:
                    return                            # lost it (expired and taken): stop
                self.store.replace_if(self.rel, self._body(), current[1])
            except StorageError as exc:   # a store outage: keep trying while the unit runs
                log.warning("lease %s not renewed: %s", self.rel, exc)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self.held:
            current = self.store.read_with_version(self.rel)
            if current is not None and json.loads(current[0]).get("holder") == self.me["holder"]:
                self.store.delete(self.rel)
        self.held = False

    def describe_other(self) -> str:
        o = self.other or {}
        left = o.get("expires", 0) - time.time()
        return f"{o.get('host')}:{o.get('pid')} (lease expires in {left:.0f} s)"

    def __enter__(self) -> "Lease":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
