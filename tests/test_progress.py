"""The progress reporter: log lines, throttling, the terminal bar, events, MPI ranks."""

import io
import json
import subprocess
import sys
import textwrap

import pytest

from hpcnnp import progress as pg
from hpcnnp.progress import (EVENTS_ENV, Progress, format_duration, format_event, message,
                             read_events, track)


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(pg, "_clock", c)
    return c


@pytest.fixture
def events(monkeypatch, tmp_path):
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv(EVENTS_ENV, str(path))

    def read():
        evs, _ = read_events(path)
        return evs
    return read


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_format_duration():
    assert format_duration(0) == "0:00:00"
    assert format_duration(59.6) == "0:01:00"
    assert format_duration(3 * 3600 + 125) == "3:02:05"
    assert format_duration(250 * 3600) == "250:00:00"
    assert format_duration(None) == "?" and format_duration(float("nan")) == "?"
    assert format_duration(float("inf")) == "?"


def test_lines_rate_eta(clock):
    out = io.StringIO()
    p = Progress("hpcnnp predict", total=10, unit="structures", out=out, interval=0,
                 announce=True)
    clock.t += 4.0
    p.update(2)
    clock.t += 4.0
    p.update(4)
    lines = out.getvalue().splitlines()
    assert lines[0] == "hpcnnp predict: 0/10 structures (0.0 %), started"
    # 2 structures in 4 s: 0.5/s, 8 left -> 16 s
    assert lines[1] == ("hpcnnp predict: 2/10 structures (20.0 %), 0.5 structures/s "
                        "(2 s/structure), elapsed 0:00:04, ETA 0:00:16")
    assert lines[2] == ("hpcnnp predict: 4/10 structures (40.0 %), 0.5 structures/s "
                        "(2 s/structure), elapsed 0:00:08, ETA 0:00:12")
    assert p.rate == pytest.approx(0.5) and p.eta == pytest.approx(12.0)


def test_without_total(clock):
    out = io.StringIO()
    p = Progress("scan", unit="frames", out=out, interval=0)
    clock.t += 2.0
    p.update(50)
    assert out.getvalue() == "scan: 50 frames, 25.0 frames/s, elapsed 0:00:02\n"
    assert p.eta is None


def test_throttle_by_time_and_count(clock):
    out = io.StringIO()
    p = Progress("work", total=100, out=out, interval=10.0)
    for k in range(1, 10):
        clock.t += 1.0
        assert not p.update(k)              # 9 s: nothing due
    clock.t += 1.0
    assert p.update(10)                     # 10 s since the start
    clock.t += 5.0
    assert not p.update(11)
    assert p.update(12, force=True)
    clock.t += 0.1
    assert p.update(100)                    # the last one is always reported
    assert not p.update(100)                # ... once
    p.close()
    assert len(out.getvalue().splitlines()) == 3
    out = io.StringIO()
    p = Progress("work", total=100, out=out, interval=1e9, every=25)
    for k in range(1, 101):
        p.update(k)
    p.close()
    assert [ln.split()[1] for ln in out.getvalue().splitlines()] == \
        ["25/100", "50/100", "75/100", "100/100"]


def test_close_reports_the_last_state(clock):
    out = io.StringIO()
    p = Progress("work", total=10, out=out, interval=100.0)
    clock.t += 1.0
    p.update(3)
    assert out.getvalue() == ""
    p.close()
    assert out.getvalue().startswith("work: 3/10 items (30.0 %), 3.00 items/s")
    p.close()
    assert len(out.getvalue().splitlines()) == 1
    with pytest.raises(RuntimeError):
        with Progress("fail", total=5, out=out, interval=100.0) as q:
            q.update(2)
            raise RuntimeError("boom")
    assert len(out.getvalue().splitlines()) == 1     # the error is the news, no line
    with Progress("fail", total=5, out=out, interval=100.0) as q:
        q.update(2)
        q.close(ok=False, msg="interrupted")
    assert out.getvalue().splitlines()[-1].startswith("fail: 2/5 items")
    assert out.getvalue().splitlines()[-1].endswith("stopped | interrupted")


def test_initial_and_rate_from_first(clock):
    out = io.StringIO()
    # a resumed run: 500 of 1000 done before; rate only over the new work
    p = Progress("md", total=1000, unit="steps", out=out, interval=0, initial=500,
                 announce=True)
    clock.t += 10.0
    p.update(600)
    assert p.rate == pytest.approx(10.0) and p.eta == pytest.approx(40.0)
    assert out.getvalue().splitlines()[0] == "md: 500/1000 steps (50.0 %), started"
    # rate from the first update: 60 s of equilibration do not count
    q = Progress("frames", total=10, out=out, interval=0, rate_from="first")
    clock.t += 60.0
    q.update(1)
    assert q.rate is None and q.eta is None
    assert "ETA ?" in out.getvalue().splitlines()[-1]
    clock.t += 2.0
    q.update(3)
    assert q.rate == pytest.approx(1.0) and q.eta == pytest.approx(7.0)
    with pytest.raises(ValueError):
        Progress("x", rate_from="end")


def test_rate_override_counts_and_msg(clock):
    out = io.StringIO()
    p = Progress("hpcnnp md", total=1000, unit="steps", out=out, interval=0)
    clock.t += 10.0
    p.update(100, rate=20.0, counts={"atom-steps": 100 * 500},
             msg="segment 1/4 nvt: t = 0.100 ps")
    line = out.getvalue().strip()
    assert line == ("hpcnnp md: 100/1000 steps (10.0 %), 20.0 steps/s, 50000 atom-steps "
                    "(5000 atom-steps/s), elapsed 0:00:10, ETA 0:00:45 | segment 1/4 nvt: "
                    "t = 0.100 ps")


def test_callable_out_and_callback_form(clock):
    got = []
    p = Progress("reference MD 300 K", unit="frames", out=got.append, interval=0)
    clock.t += 1.0
    p(5, 10)                                # the progress(done, total) callback form
    assert got == ["reference MD 300 K: 5/10 frames (50.0 %), 5.00 frames/s, "
                   "elapsed 0:00:01, ETA 0:00:01"]


def test_quiet_out_false_still_writes_events(clock, events):
    p = Progress("quiet", total=2, out=False, interval=0)
    p.update(2)
    p.close()
    assert [e["kind"] for e in events()] == ["start", "progress", "end"]


def test_bar_only_on_a_terminal(clock):
    tty = Tty()
    p = Progress("scale", total=40, unit="structures", out=tty, interval=10.0, announce=True)
    for k in range(1, 41):
        clock.t += 0.25                     # > TTY_INTERVAL: every update redraws
        p.update(k)
    p.close()
    text = tty.getvalue()
    assert "\r" in text and "[" + "#" * 20 + "]" in text and "\x1b[K" in text
    assert text.count("\n") == 1 and text.endswith("\n")    # one line, finished
    assert "[##########..........] 20/40 structures (50.0 %)" in text
    log = io.StringIO()
    q = Progress("scale", total=40, out=log, interval=0)
    q.update(1)
    assert "\r" not in log.getvalue() and "#" not in log.getvalue()


def test_bar_and_messages_share_the_terminal(clock):
    tty = Tty()
    p = Progress("train", total=4, unit="epochs", out=tty, interval=0)
    p.update(1)
    p.message("epoch 1: RMSE E 2.1 meV/atom")
    text = tty.getvalue()
    # the bar is cleared, the message gets its own line, the bar is drawn again below
    assert "\r\x1b[Kepoch 1: RMSE E 2.1 meV/atom\n\r" in text


def test_events(clock, events):
    p = Progress("hpcnnp predict", total=4, unit="structures", out=False, interval=0)
    clock.t += 2.0
    p.update(1, msg="hello", counts={"atoms": 96})
    clock.t += 2.0
    p.update(4)
    p.close()
    message("epoch 3: RMSE 1.2 meV/atom", stage="hpcnnp train", out=False, epoch=3)
    evs = events()
    assert [e["kind"] for e in evs] == ["start", "progress", "progress", "end", "message"]
    for e in evs:
        assert {"t", "kind", "stage", "msg"} <= set(e)
    start, first, last, end, msg = evs
    assert start["done"] == 0 and start["total"] == 4 and start["rate"] is None
    assert first == dict(first, stage="hpcnnp predict", done=1, total=4, unit="structures",
                         rate=0.5, eta_s=6.0, elapsed_s=2.0, msg="hello",
                         counts={"atoms": 96}, rates={"atoms": 48.0})
    assert last["done"] == 4 and last["eta_s"] == 0.0 and last["rate"] == 1.0
    assert end["ok"] is True and end["done"] == 4
    assert msg["msg"] == "epoch 3: RMSE 1.2 meV/atom" and msg["stage"] == "hpcnnp train"
    assert msg["epoch"] == 3
    # the log line of an event is what the reporter prints
    assert format_event(first) == ("hpcnnp predict: 1/4 structures (25.0 %), "
                                   "0.5 structures/s (2 s/structure), 96 atoms "
                                   "(48.0 atoms/s), elapsed 0:00:02, ETA 0:00:06 | hello")
    assert format_event(msg) == "hpcnnp train: epoch 3: RMSE 1.2 meV/atom"


def test_events_are_throttled_like_lines(clock, events):
    p = Progress("x", total=1000, out=Tty(), interval=10.0)
    for k in range(1, 1000):
        clock.t += 0.05
        p.update(k)
    p.close()
    # 50 s of updates: one event per 10 s (not one per bar redraw) + the end event
    kinds = [e["kind"] for e in events()]
    assert kinds.count("progress") == 4 and kinds[-1] == "end"


def test_event_file_problem_warns_and_continues(clock, monkeypatch, tmp_path):
    monkeypatch.setenv(EVENTS_ENV, str(tmp_path / "missing" / "events.jsonl"))
    out = io.StringIO()
    with pytest.warns(RuntimeWarning, match="cannot write progress events"):
        p = Progress("x", total=2, out=out, interval=0)
    p.update(2)                             # warned once, the work goes on
    assert "x: 2/2 items" in out.getvalue()


def test_read_events_leaves_partial_lines(tmp_path):
    path = tmp_path / "ev.jsonl"
    assert read_events(path) == ([], 0)
    path.write_bytes(b'{"kind": "progress", "done": 1}\nnot json\n[1]\n{"kind": "pro')
    evs, off = read_events(path)
    assert evs == [{"kind": "progress", "done": 1}]
    with open(path, "ab") as fh:
        fh.write(b'gress", "done": 2}\n')
    evs, off2 = read_events(path, off)
    assert evs == [{"kind": "progress", "done": 2}] and off2 == path.stat().st_size


def test_non_root_rank_is_silent(clock, events):
    class Comm:
        rank = 1

    class Mpi4pyComm:
        def Get_rank(self):
            return 1

    out = io.StringIO()
    for comm in (Comm(), Mpi4pyComm()):
        p = Progress("x", total=2, out=out, comm=comm, interval=0)
        p.update(1)
        p.message("note")
        p.close()
        assert message("stage note", out=out, comm=comm) is None
    assert out.getvalue() == "" and events() == []


def test_track(clock, events):
    out = io.StringIO()
    items = list(track(range(5), "labelling", unit="structures", out=out, interval=0,
                       announce=True))
    assert items == list(range(5))
    lines = out.getvalue().splitlines()
    assert lines[0] == "labelling: 0/5 structures (0.0 %), started"
    assert lines[-1].startswith("labelling: 5/5 structures (100.0 %)")
    gen = (i for i in range(3))             # no len(): rate without total
    assert list(track(gen, "scan", out=out, interval=0)) == [0, 1, 2]
    assert out.getvalue().splitlines()[-1].startswith("scan: 3 items")
    n = len(out.getvalue())
    for x in track([1, 2, 3, 4], "early", out=out, interval=100.0):
        if x == 2:
            break
    assert len(out.getvalue()) == n
    ends = [e for e in events() if e["kind"] == "end"]
    assert [e["ok"] for e in ends] == [True, True, False]


@pytest.mark.mpi
def test_only_rank_zero_reports_under_mpiexec(tmp_path, mpiexec):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent("""
        from mpi4py import MPI
        from hpcnnp.progress import Progress, message
        r = MPI.COMM_WORLD.Get_rank()
        p = Progress("ranks", total=3, interval=0)      # rank from MPI's world
        for k in range(1, 4):
            p.update(k, msg=f"rank {r}")
        p.close()
        message(f"hello from rank {r}", stage="ranks")
    """))
    events = tmp_path / "ev.jsonl"
    env = dict(__import__("os").environ, **{EVENTS_ENV: str(events)})
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    evs = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(evs) == 6 and all(e.get("msg") in ("rank 0", None, "hello from rank 0")
                                 for e in evs)
    assert "rank 1" not in proc.stderr and proc.stderr.count("ranks: 3/3 items") == 1
