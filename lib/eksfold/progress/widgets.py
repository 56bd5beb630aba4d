"""The run monitor for notebooks: ipywidgets progress per stage and per target.

Same :class:`~eksfold.progress.Board` as the text reporter, drawn as one progress bar per
stage and a table of targets whose cells show each unit's state. When the kernel has no
frontend (papermill), the final state is also printed as plain text so the executed notebook
records it.
"""
from __future__ import annotations

import html
import time

from ..contracts import TERMINAL
from .board import Board

COLOURS = {"done": "#2e7d32", "failed": "#c62828", "blocked": "#8e6c00", "running": "#1565c0", "waiting": "#ef6c00",
           "queued": "#6a1b9a", "pending": "#757575"}


class WidgetProgress:
    """ipywidgets display of a run; redraws the table at most every ``refresh_s`` seconds."""

    def __init__(self, refresh_s: float = 0.5, max_rows: int = 200):
        import ipywidgets as widgets

        self.widgets = widgets
        self.board = Board()
        self.refresh_s, self.max_rows = refresh_s, max_rows
        self.bars: dict[str, object] = {}
        self.table = widgets.HTML()
        self.box = widgets.VBox()
        self._drawn = 0.0

    def start(self, run, status) -> None:
        from IPython.display import display

        self.board.load(status)
        self.title = self.widgets.HTML(f"<b>run</b> <code>{html.escape(run.root)}</code>")
        for stage in self.board.stages:
            self.bars[stage] = self.widgets.IntProgress(
                min=0, max=max(1, self.board.total(stage)), description=stage,
                layout=self.widgets.Layout(width="60%"))
        self.labels = {s: self.widgets.Label() for s in self.board.stages}
        rows = [self.widgets.HBox([self.bars[s], self.labels[s]]) for s in self.board.stages]
        self.box.children = [self.title, *rows, self.table]
        self._draw(force=True)
        display(self.box)

    def update(self, stage: str, tid: str, state: str, detail: str | None = None) -> None:
        self.board.set(stage, tid, state, detail)
        self._draw(force=state in TERMINAL)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < self.refresh_s:
            return
        self._drawn = now
        for stage in self.board.stages:
            counts = self.board.counts(stage)
            self.bars[stage].value = counts["done"]
            self.bars[stage].bar_style = "danger" if counts["failed"] else (
                "success" if counts["done"] == self.board.total(stage) else "info")
            self.labels[stage].value = self.board.summary_line(stage)
        self.table.value = self.render_table()

    def render_table(self) -> str:
        targets = list(dict.fromkeys(t for _, t in self.board.state))[: self.max_rows]
        head = "".join(f"<th>{s}</th>" for s in self.board.stages)
        body = []
        for tid in targets:
            cells = []
            for stage in self.board.stages:
                state = self.board.state.get((stage, tid), "pending")
                detail = self.board.detail.get((stage, tid)) or ""
                cells.append(f'<td style="color:{COLOURS.get(state, "#000")}" '
                             f'title="{html.escape(detail)}">{state}</td>')
            body.append(f"<tr><td><code>{html.escape(tid)}</code></td>{''.join(cells)}</tr>")
        return (f'<table class="eksfold-monitor"><tr><th>target</th>{head}</tr>'
                + "".join(body) + "</table>")

    def close(self, interrupted: bool = False) -> None:
        self._draw(force=True)
        if interrupted:
            print("interrupted: running units were stopped; rerun to resume")
        for stage in self.board.stages:
            print(self.board.summary_line(stage))
        for stage, tid, detail in self.board.failures():
            print(f"{stage} {tid}: {detail}")
