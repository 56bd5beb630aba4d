"""The board every progress display keeps: unit states of one run and the counts to show."""
from __future__ import annotations

import time
from collections import Counter

from ..contracts import TERMINAL, board_from_status


class Board:
    """Unit states of one run, and the counts a display needs."""

    def __init__(self):
        self.state: dict[tuple[str, str], str] = {}
        self.detail: dict[tuple[str, str], str | None] = {}
        self.started: dict[tuple[str, str], float] = {}
        self.stages: list[str] = []

    def load(self, status: dict[tuple[str, str], str]) -> None:
        for (stage, tid), st in status.items():
            self.state[(stage, tid)] = board_from_status(st)
            if stage not in self.stages:
                self.stages.append(stage)

    def set(self, stage: str, tid: str, state: str, detail: str | None = None) -> float | None:
        """Record a change; returns the unit's elapsed seconds when it reaches a final state."""
        self.state[(stage, tid)], self.detail[(stage, tid)] = state, detail
        if state == "running" or (state == "queued" and (stage, tid) not in self.started):
            self.started.setdefault((stage, tid), time.monotonic())
        if state in TERMINAL and (stage, tid) in self.started:
            return time.monotonic() - self.started.pop((stage, tid))
        return None

    def counts(self, stage: str) -> Counter:
        return Counter(st for (s, _), st in self.state.items() if s == stage)

    def total(self, stage: str) -> int:
        return sum(1 for (s, _) in self.state if s == stage)

    def summary_line(self, stage: str) -> str:
        c = self.counts(stage)
        parts = [f"{c['done']}/{self.total(stage)} done"]
        parts += [f"{c[k]} {k}" for k in ("running", "waiting", "queued", "failed", "blocked") if c[k]]
        return f"[{stage}] " + ", ".join(parts)

    def failures(self) -> list[tuple[str, str, str | None]]:
        return [(s, t, self.detail.get((s, t))) for (s, t), st in self.state.items()
                if st in ("failed", "blocked")]


