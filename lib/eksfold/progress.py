"""Progress of a run, per stage and per target, for the terminal and for notebooks.

Executors do not print; the driver calls a reporter: ``start(run, status)`` once,
``update(stage, target, state, detail)`` on every change, ``close()`` at the end. Every
reporter keeps the same :class:`Board` of unit states, so the local and Kubernetes executors
show the same display.
"""
from __future__ import annotations

import sys
import time
from collections import Counter

TERMINAL = ("done", "failed", "blocked")


class Board:
    """Unit states of one run, and the counts a display needs."""

    def __init__(self):
        self.state: dict[tuple[str, str], str] = {}
        self.detail: dict[tuple[str, str], str | None] = {}
        self.started: dict[tuple[str, str], float] = {}
        self.stages: list[str] = []

    def load(self, status: dict[tuple[str, str], str]) -> None:
        for (stage, tid), st in status.items():
            self.state[(stage, tid)] = "done" if st == "done" else "pending"
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


class TextProgress:
    """tqdm bars per stage on a terminal; one plain line per event otherwise (logs, CI)."""

    def __init__(self, stream=None, bars: bool | None = None):
        self.stream = stream or sys.stderr
        self.bars_enabled = self.stream.isatty() if bars is None else bars
        self.board, self.bars = Board(), {}

    def start(self, run, status) -> None:
        self.board.load(status)
        if self.bars_enabled:
            from tqdm.auto import tqdm
            for i, stage in enumerate(self.board.stages):
                c = self.board.counts(stage)
                self.bars[stage] = tqdm(total=self.board.total(stage), initial=c["done"],
                                        desc=f"{stage:>5}", unit="target", position=i,
                                        file=self.stream, dynamic_ncols=True)
        else:
            for stage in self.board.stages:
                print(self.board.summary_line(stage), file=self.stream, flush=True)

    def update(self, stage: str, tid: str, state: str, detail: str | None = None) -> None:
        elapsed = self.board.set(stage, tid, state, detail)
        if self.bars_enabled:
            bar = self.bars[stage]
            if state in TERMINAL:
                bar.update(1)
            running = [t for (s, t), st in self.board.state.items() if s == stage and st == "running"]
            bar.set_postfix_str(("running: " + ",".join(running[:3])) if running else "")
            if state in ("failed", "blocked"):
                bar.write(f"{stage} {tid}: {state}: {detail}", file=self.stream)
            return
        took = f" in {elapsed:.1f}s" if elapsed is not None else ""
        reason = f": {detail}" if detail and state in ("failed", "blocked", "waiting") else ""
        print(f"{stage} {tid}: {state}{took}{reason}   {self.board.summary_line(stage)}",
              file=self.stream, flush=True)

    def close(self, interrupted: bool = False) -> None:
        for bar in self.bars.values():
            bar.close()
        if interrupted:
            print("interrupted: running units were stopped; finished units are kept, "
                  "rerun the same command to resume", file=self.stream, flush=True)
        for stage in self.board.stages:
            print(self.board.summary_line(stage), file=self.stream, flush=True)


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def make_reporter(kind: str = "auto"):
    """"text", "widget", or "auto" (widgets inside a Jupyter kernel when available)."""
    if kind == "widget" or (kind == "auto" and in_notebook()):
        try:
            from .monitor import WidgetProgress
            return WidgetProgress()
        except ImportError:
            pass
    return TextProgress()
