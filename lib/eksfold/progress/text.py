"""Progress for terminals and logs: tqdm bars per stage, or one plain line per event."""
from __future__ import annotations

import sys

from ..contracts import TERMINAL
from .board import Board


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


