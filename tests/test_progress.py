import io
from types import SimpleNamespace

from eksfold.progress.widgets import WidgetProgress
from eksfold.progress import Board, TextProgress


RUN = SimpleNamespace(root="/runs/x")  # reporters read only the run's root


STATUS = {("align", "a"): "done", ("align", "b"): "missing", ("infer", "a"): "missing", ("infer", "b"): "missing"}


def test_board_counts_and_elapsed():
    board = Board()
    board.load(STATUS)
    assert board.summary_line("align") == "[align] 1/2 done"
    board.set("align", "b", "running")
    assert board.set("align", "b", "done") is not None
    board.set("infer", "a", "failed", "exit code 1")
    assert board.summary_line("infer") == "[infer] 0/2 done, 1 failed"
    assert board.failures() == [("infer", "a", "exit code 1")]


def test_text_progress_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    rep = TextProgress(stream=out)
    rep.start(RUN, STATUS)
    rep.update("align", "b", "running")
    rep.update("align", "b", "done")
    rep.update("infer", "b", "failed", "exit code 2: bad input")
    rep.close()
    text = out.getvalue()
    assert "align b: done in" in text and "[align] 2/2 done" in text
    assert "infer b: failed" in text and "bad input" in text


def test_widget_progress_tracks_the_same_states(capsys):
    rep = WidgetProgress(refresh_s=0)
    rep.start(RUN, STATUS)
    rep.update("align", "b", "done")
    rep.update("infer", "a", "running")
    assert rep.bars["align"].value == 2 and rep.bars["align"].bar_style == "success"
    assert "running" in rep.table.value and "<code>b</code>" in rep.table.value
    rep.update("infer", "a", "failed", "boom")
    assert rep.bars["infer"].bar_style == "danger"
    rep.close()
    assert "infer a: boom" in capsys.readouterr().out


def test_waiting_is_not_final_and_shows_why():
    out = io.StringIO()
    rep = TextProgress(stream=out)
    rep.start(RUN, STATUS)
    rep.update("infer", "a", "waiting", "0/3 nodes are available: Insufficient nvidia.com/gpu")
    assert "[infer] 0/2 done, 1 waiting" in out.getvalue() and "Insufficient nvidia.com/gpu" in out.getvalue()
    assert rep.board.failures() == []
