"""Retries where the server cannot apply the Job's own failure policy (the fallback form).

Newer servers retry an index by ``backoffLimitPerIndex`` and ``podFailurePolicy`` (disruptions
ignored, exit code 2 fails the index at once). Servers without them run one Job per shard with
``backoffLimit: 0``; :class:`RetryPolicy` makes the same decisions and the executor submits the
next attempt as a new Job. A retried shard resumes: its worker skips committed targets.
"""
from __future__ import annotations

from ...k8s.jobs import EXIT_BAD_INPUT
from ...k8s.status import DISRUPTED, UnitStatus

MAX_DISRUPTIONS = 10    # uncounted retries after node disruptions (spot reclaims, drains)


class RetryPolicy:
    def __init__(self, retries: int):
        self.retries = retries
        self._failures: dict[tuple, int] = {}
        self._disruptions: dict[tuple, int] = {}

    def forget(self, key: tuple) -> None:
        self._failures.pop(key, None)
        self._disruptions.pop(key, None)

    def should_retry(self, key: tuple, st: UnitStatus) -> bool:
        """Whether a failed attempt of shard ``key`` gets another one (and count it)."""
        if st.reason in ("Unschedulable", "Deleted") or st.exit_code == EXIT_BAD_INPUT:
            return False
        if st.reason == DISRUPTED:
            if self._disruptions.get(key, 0) >= MAX_DISRUPTIONS:
                return False
            self._disruptions[key] = self._disruptions.get(key, 0) + 1
            return True
        if self._failures.get(key, 0) >= self.retries:
            return False
        self._failures[key] = self._failures.get(key, 0) + 1
        return True
