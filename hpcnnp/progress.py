"""Progress of long work: the one reporter every stage uses.

A :class:`Progress` turns counts ("123 of 1000 structures done") into two forms of
the same report:

* **log lines** for people and batch logs, throttled (one every ``interval``
  seconds, default 10 s, plus the last)::

      hpcnnp predict: 120/1000 structures (12.0 %), 4.52 structures/s, elapsed 0:00:26, ETA 0:03:14

  On a terminal the line is a bar redrawn in place instead; in a log file or a pipe
  (a batch job, ``hpcnnp run``) every report is a plain line.
* **structured events** for programs: when the environment variable
  ``HPCNNP_EVENTS`` names a file, every report is also appended to it as one JSON
  object per line::

      {"t": 1767225600.123, "kind": "progress", "stage": "hpcnnp predict",
       "done": 120, "total": 1000, "unit": "structures", "rate": 4.52,
       "eta_s": 194.7, "elapsed_s": 26.5, "msg": null}

  ``kind`` is ``"start"``, ``"progress"``, ``"end"`` (with ``"ok"``) or
  ``"message"``; ``rate`` is in ``unit`` per second and ``eta_s`` in seconds (both
  null while unknown).  This is how ``hpcnnp run`` follows a stage
  (:func:`read_events`, :func:`format_event`), never by matching words on stdout.

Under MPI only rank 0 reports (lines and events); the other ranks' reporters are
silent, so every rank can call them in the same place.

Use
---
A loop with a count:

>>> prog = Progress("hpcnnp predict", total=len(paths), unit="structures")
>>> for k, path in enumerate(paths, start=1):
...     evaluate(path)
...     prog.update(k)
>>> prog.close()

An iterable, in one line:

>>> for atoms in track(frames, "active: labelling", unit="structures"):
...     label(atoms)

A library function that takes a ``progress(done, total)`` callback (a
:class:`Progress` is such a callable):

>>> run_md(atoms, progress=Progress("reference MD 1200 K", unit="frames",
...                                 rate_from="first"))

A stage message that is not a count (also written as an event):

>>> message("epoch 3: RMSE E 1.2 meV/atom, F 45 meV/Å", stage="hpcnnp train")

Rates and ETA are measured from the start of the reporter (or, with
``rate_from="first"``, from its first update, so that set-up and equilibration do
not distort them); work already done when the reporter starts (``initial``, e.g.
on a resume) does not count towards the rate.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import warnings

__all__ = ["Progress", "track", "message", "event", "read_events", "format_event",
           "format_duration", "EVENTS_ENV"]

#: Environment variable naming the JSON-lines file the events are appended to.
EVENTS_ENV = "HPCNNP_EVENTS"

#: Seconds between two redraws of the bar on a terminal.
TTY_INTERVAL = 0.2

_BAR_WIDTH = 20

#: The clock of the reporters (monotonic seconds; replaced in tests).
_clock = time.perf_counter


# ---------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------

def format_duration(seconds):
    """``H:MM:SS`` (hours unbounded), ``?`` for None/NaN/inf.

    Parameters
    ----------
    seconds : float or None
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(seconds, 0.0)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


def _per_item(seconds):
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _singular(unit):
    return unit[:-1] if len(unit) > 3 and unit.endswith("s") and not unit.endswith("ss") \
        else unit


def _number(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.2g}"


def _rate_text(rate, unit):
    """``12.3 structures/s``; below one per second also the time per item."""
    if rate is None or not math.isfinite(rate):
        return None
    text = f"{_number(rate)} {unit}/s"
    if 0 < rate < 1:
        text += f" ({_per_item(1.0 / rate)}/{_singular(unit)})"
    return text


def format_event(ev, bar=False, width=None):
    """The log line of an event (what :class:`Progress` prints for it).

    Parameters
    ----------
    ev : dict
        An event as written to ``$HPCNNP_EVENTS`` (see the module docstring).
    bar : bool
        Draw a bar before the counts (terminal form).
    width : int, optional
        Cut the line to this many characters.

    Returns
    -------
    str (no newline)
    """
    stage = ev.get("stage") or ""
    if ev.get("kind") == "message":
        text = ev.get("msg") or ""
        return text if not stage or text.startswith(stage) else f"{stage}: {text}"
    done, total, unit = ev.get("done"), ev.get("total"), ev.get("unit") or "items"
    start = ev.get("kind") == "start"
    parts = []
    if done is not None:
        if total:
            frac = min(max(done / total, 0.0), 1.0)
            count = f"{done}/{total} {unit} ({100.0 * frac:.1f} %)"
            if bar:
                fill = int(round(frac * _BAR_WIDTH))
                count = "[" + "#" * fill + "." * (_BAR_WIDTH - fill) + "] " + count
        else:
            count = f"{done} {unit}"
        parts.append(count)
    rate = None if start else _rate_text(ev.get("rate"), unit)
    if rate:
        parts.append(rate)
    counts = []
    for name, value in (ev.get("counts") or {}).items():
        r = _rate_text((ev.get("rates") or {}).get(name), name)
        counts.append(f"{value} {name}" + (f" ({r})" if r else ""))
    if not bar:
        parts += counts
    if start:
        parts.append("started")
    else:
        if ev.get("elapsed_s") is not None:
            parts.append(f"elapsed {format_duration(ev['elapsed_s'])}")
        if total and ev.get("kind") != "end":
            parts.append(f"ETA {format_duration(ev.get('eta_s'))}")
    if bar:                             # a narrow terminal cuts these, not the ETA
        parts += counts
    if ev.get("kind") == "end" and ev.get("ok") is False:
        parts.append("stopped")
    text = f"{stage}: " + ", ".join(parts) if stage else ", ".join(parts)
    if ev.get("msg"):
        text += f" | {ev['msg']}"
    if width is not None and len(text) > width:
        text = text[:max(width - 1, 0)] + "…"
    return text


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------

_warned = set()


def _json_default(obj):
    if hasattr(obj, "item"):            # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def event(kind, stage, **fields):
    """Append one event to the file named by ``$HPCNNP_EVENTS`` (if set).

    Only the structured form: nothing is printed.  Callers under MPI must call it on
    one rank only (:class:`Progress` and :func:`message` do that themselves).

    Parameters
    ----------
    kind : str
        ``"start"``, ``"progress"``, ``"end"``, ``"message"`` or a kind of your own.
    stage : str
        Who reports (``"hpcnnp train"``, ``"active: committee training"``).
    **fields
        Further JSON-serialisable fields (``done``, ``total``, ``msg`` ...).

    Returns
    -------
    dict : the event (also when no file is set)
    """
    ev = {"t": round(time.time(), 3), "kind": kind, "stage": stage}
    ev.update({k: _clean(v) for k, v in fields.items()})
    path = os.environ.get(EVENTS_ENV)
    if path:
        data = (json.dumps(ev, default=_json_default, ensure_ascii=False) + "\n").encode()
        try:
            # one write() on an O_APPEND descriptor: lines of concurrent writers
            # (Parsl workers, a stage under hpcnnp run) do not interleave
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            if path not in _warned:     # progress must never stop the work
                _warned.add(path)
                warnings.warn(f"{EVENTS_ENV}={path}: cannot write progress events "
                              f"({exc.strerror or exc}); continuing without them",
                              RuntimeWarning, stacklevel=2)
    return ev


def read_events(path, offset=0):
    """Events appended to ``path`` since byte ``offset`` (for following a stage).

    Only complete lines are returned; a line being written is left for the next
    call.  Lines that are not JSON objects are skipped.

    Parameters
    ----------
    path : str or Path
    offset : int
        Byte offset returned by the previous call (0: from the start).

    Returns
    -------
    events : list of dict
    offset : int
        Where the next call continues.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            events.append(ev)
    return events, offset + end


# ---------------------------------------------------------------------------------------
# Where a reporter writes
# ---------------------------------------------------------------------------------------

def _rank(comm):
    """Rank of this process: of ``comm`` if given, else of MPI's world if mpi4py is
    already initialised (never initialises MPI itself), else 0."""
    if comm is not None:
        rank = getattr(comm, "rank", None)
        if rank is None and hasattr(comm, "Get_rank"):
            rank = comm.Get_rank()
        return int(rank or 0)
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None:
        try:
            if mpi.Is_initialized() and not mpi.Is_finalized():
                return mpi.COMM_WORLD.Get_rank()
        except Exception:               # pragma: no cover - a broken MPI: report anyway
            return 0
    return 0


def _is_tty(out):
    if out is None or callable(out) and not hasattr(out, "write"):
        return False
    try:
        return bool(out.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError, OSError):
        return False


def _write_line(out, text):
    if out is None:
        return
    if callable(out) and not hasattr(out, "write"):
        out(text)
        return
    out.write(text + "\n")
    try:
        out.flush()
    except (AttributeError, ValueError, OSError):   # pragma: no cover
        pass


def message(text, stage="", out=None, comm=None, **fields):
    """Print a stage message that is not a count and write it as an event.

    Parameters
    ----------
    text : str
        The line, e.g. ``"hpcnnp train: epoch 3/10 | E RMSE ..."``.
    stage : str
        Who reports (the event's ``stage``).
    out : file or callable(str) or None
        Where the line goes (default ``sys.stderr``; a callable receives the text;
        ``False``: event only).
    comm : MPI communicator, optional
        Only its rank 0 reports (default: MPI's world if mpi4py is initialised).
    **fields
        Extra event fields (numbers a program may want: ``epoch=3, rmse_e=...``).
    """
    if _rank(comm) != 0:
        return None
    if out is not False:
        _write_line(sys.stderr if out is None else out, text)
    return event("message", stage, msg=text, **fields)


# ---------------------------------------------------------------------------------------
# The reporter
# ---------------------------------------------------------------------------------------

class Progress:
    """Progress of one piece of long work, as log lines (or a bar) and events.

    Parameters
    ----------
    stage : str
        What is done, first word of every line: ``"hpcnnp predict"``,
        ``"hpcnnp md: segment 3/10"``, ``"active: committee training"``.
    total : int, optional
        Number of units when done (None: rate without percentage and ETA).
    unit : str
        Plural name of what is counted: structures, frames, steps, tasks, members.
    out : file or callable(str) or None
        Where lines go: a stream (default ``sys.stderr``; a bar if it is a terminal)
        or a callable receiving each line (a logger).  ``False``: no lines (events
        are still written).
    interval : float, s
        At most one line (and one event) per ``interval`` seconds; 0 reports every
        update.  The last report (``done == total``) is always made.
    every : int, optional
        Also report whenever ``every`` units were done since the last report.
    initial : int
        Units already done when the reporter starts (a resumed run); they count in
        ``done`` but not in the rate.
    rate_from : {"start", "first"}
        Measure the rate from the creation of the reporter or from its first
        update (excludes set-up such as equilibration before the first unit).
    comm : MPI communicator, optional
        Only its rank 0 reports; default: MPI's world if mpi4py is initialised.
    bar : bool, optional
        Force the terminal bar on/off (default: on if ``out`` is a terminal).
    announce : bool
        Also print a line at creation (``0/N ... started``), so that a log says what
        the job is doing before the first unit is done (the ``start`` event is
        always written).
    """

    def __init__(self, stage, total=None, unit="items", *, out=None, interval=10.0,
                 every=None, initial=0, rate_from="start", comm=None, bar=None,
                 announce=False):
        if rate_from not in ("start", "first"):
            raise ValueError(f"rate_from must be 'start' or 'first', not {rate_from!r}")
        if not interval >= 0:
            raise ValueError(f"interval must be >= 0 s, not {interval!r}")
        self.stage = str(stage)
        self.total = None if total is None else int(total)
        self.unit = unit
        self.out = sys.stderr if out is None else (None if out is False else out)
        self.interval = float(interval)
        self.every = int(every) if every else None
        self.active = _rank(comm) == 0
        self.bar = _is_tty(self.out) if bar is None else bool(bar and self.out is not None)
        self.done = int(initial)
        self.counts = {}
        self.closed = False
        self._rate_from = rate_from
        self._t_start = _clock()
        self._base = None if rate_from == "first" else (self._t_start, self.done, {})
        self._last_line = self._last_event = self._t_start
        self._last_done = self.done
        self._reported_done = None
        self._rate_override = None
        self._drawn = False            # a bar is on the terminal line
        if self.active:
            if announce:
                self._report("start", force=True)
            else:
                event(**self._event("start"))

    # ------------------------------------------------------------------ numbers
    @property
    def elapsed(self):
        """Seconds since the reporter was created."""
        return _clock() - self._t_start

    @property
    def rate(self):
        """Units per second since the rate baseline (None while unknown)."""
        if self._rate_override is not None:
            return self._rate_override
        if self._base is None:
            return None
        t0, d0, _ = self._base
        dt = _clock() - t0
        n = self.done - d0
        return n / dt if dt > 0 and n > 0 else None

    @property
    def eta(self):
        """Seconds until ``total`` at the current rate (None while unknown)."""
        if self.total is None:
            return None
        left = self.total - self.done
        if left <= 0:
            return 0.0
        rate = self.rate
        return left / rate if rate else None

    def _count_rates(self):
        if self._base is None:
            return {}
        t0, _, c0 = self._base
        dt = _clock() - t0
        return {k: (v - c0.get(k, 0)) / dt for k, v in self.counts.items()
                if dt > 0 and v > c0.get(k, 0)}

    # ------------------------------------------------------------------ updates
    def update(self, done=None, total=None, *, msg=None, counts=None, rate=None,
               force=False):
        """Record progress; print/write a report if one is due.

        Parameters
        ----------
        done : int, optional
            Units done so far (absolute; None: unchanged).
        total : int, optional
            A new total (when it becomes known or changes).
        msg : str, optional
            Text appended to the line (``| t = 1.2 ps, 4.3 ns/day``) and stored as
            the event's ``msg``.
        counts : dict, optional
            Other running totals whose rates are shown too, e.g. ``{"atoms": 51200}``.
        rate : float, optional
            Units per second measured by the caller (e.g. pure MD time without
            I/O); replaces the reporter's own rate for this and later reports.
        force : bool
            Report now regardless of the throttle.

        Returns
        -------
        bool : whether a report was made
        """
        if done is not None:
            self.done = int(done)
        if total is not None:
            self.total = int(total)
        if counts:
            self.counts.update(counts)
        if rate is not None:
            self._rate_override = float(rate) if rate > 0 else None
        if self._base is None:          # rate_from="first": baseline = first update
            self._base = (_clock(), self.done, dict(self.counts))
        if not self.active or self.closed:
            return False
        self._msg = msg
        return self._report("progress", force=force)

    def advance(self, n=1, **kw):
        """``update(done + n, ...)``."""
        return self.update(self.done + n, **kw)

    def __call__(self, done, total=None):
        """Callback form ``progress(done, total)`` used by library loops."""
        return self.update(done, total)

    def message(self, text, **fields):
        """A line that is not a count (printed in full, also as an event)."""
        if not self.active:
            return None
        self._clear_bar()
        if self.out is not None:
            _write_line(self.out, text)
        ev = event("message", self.stage, msg=text, **fields)
        if self.bar and self._reported_done is not None and not self.closed:
            self._draw(self._event("progress"))
        return ev

    def close(self, ok=True, msg=None):
        """Final report (if the last update was not reported) and the ``end`` event.

        Parameters
        ----------
        ok : bool
            False: the work stopped early (an error, an interrupt); only the event
            says so, no line is printed (the error message is the user's news).
        msg : str, optional
            Text for a last line (printed also when ``ok`` is False).
        """
        if self.closed:
            return
        if self.active:
            self._msg = msg
            if msg or (ok and self._reported_done != self.done):
                self._print(self._event("end", ok=bool(ok)), final=True)
            elif self.bar and self._drawn:
                self._finish_bar()      # (after an error, the error says the rest)
            event(**self._event("end", ok=bool(ok)))
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(ok=exc_type is None)
        return False

    # ------------------------------------------------------------------ reports
    _msg = None

    def _event(self, kind, **extra):
        ev = {"kind": kind, "stage": self.stage, "done": self.done, "total": self.total,
              "unit": self.unit, "rate": self.rate, "eta_s": self.eta,
              "elapsed_s": round(self.elapsed, 3), "msg": self._msg}
        if self.counts:
            ev["counts"] = dict(self.counts)
            ev["rates"] = self._count_rates()
        ev.update(extra)
        return ev

    def _due(self, now, interval):
        if self.every and self.done - self._last_done >= self.every:
            return True
        return now - self._last_line >= interval if interval else True

    def _report(self, kind, force=False):
        now = _clock()
        final = self.total is not None and self.done >= self.total and \
            self._reported_done != self.done
        line_due = force or final or self._due(now, self.interval)
        draw_due = self.bar and (now - self._last_event >= TTY_INTERVAL or line_due)
        if not (line_due or draw_due):
            return False
        ev = self._event(kind)
        if line_due:
            self._last_line = now
            self._last_done = self.done
            self._reported_done = self.done
            event(**ev)
        if self.bar:
            self._last_event = now
            self._draw(ev)
            if final:
                self._finish_bar()
        elif line_due:
            _write_line(self.out, format_event(ev))
        return line_due

    def _print(self, ev, final=False):
        if self.bar:
            self._draw(ev)
            if final:
                self._finish_bar()
        else:
            _write_line(self.out, format_event(ev))
        self._reported_done = self.done

    # ------------------------------------------------------------------ terminal
    def _draw(self, ev):
        width = shutil.get_terminal_size((100, 24)).columns - 1
        self.out.write("\r" + format_event(ev, bar=True, width=width) + "\x1b[K")
        self.out.flush()
        self._drawn = True

    def _clear_bar(self):
        if self.bar and self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False

    def _finish_bar(self):
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = False


def track(iterable, stage, total=None, unit="items", **options):
    """Iterate with progress: ``for x in track(items, "labelling", unit="structures")``.

    Parameters
    ----------
    iterable : iterable
    stage, unit : str
        As for :class:`Progress`.
    total : int, optional
        Default: ``len(iterable)`` when it has one.
    **options
        Further :class:`Progress` options (``out``, ``interval``, ``comm`` ...).

    Yields
    ------
    the items of ``iterable``; each counts as done when the loop asks for the next.
    """
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    prog = Progress(stage, total=total, unit=unit, **options)
    ok = False
    try:
        for item in iterable:
            yield item
            prog.advance()
        ok = True
    finally:
        prog.close(ok=ok or (prog.total is not None and prog.done >= prog.total))
