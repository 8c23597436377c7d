"""Batch scripts from ``jobs/templates``: MD segment chains and single stage jobs.

A production MD run (say 10 ns) rarely fits into one job's walltime.  It is cut
into segments (say 0.5 ns -> 20 jobs); segment *k* runs::

    <mpi launcher> hpcnnp md PROTOCOL --resume --until-ns <k * segment>

which continues from the newest restart file and stops at the segment's end, so
re-running a finished segment does nothing.  ``submit_chain.sh`` submits all
segments at once, each depending on the previous one having ended successfully
(``sbatch --dependency=afterok``, ``qsub -W depend=afterok``, ``bsub -w
'done()'``, ``flux batch --dependency=afterok``); on the ``local`` site it runs
them one after the other.  A failed segment stops the chain;
``./submit_chain.sh K`` continues from segment *K*.

Any other stage (``hpcnnp train`` under MPI, a Parsl-driven ``hpcnnp sample``
campaign) gets one script ``job.sh`` plus ``submit.sh``.

Templates are plain shell with ``%{name}`` placeholders
(:mod:`hpcnnp.hpc.templates`): ``{scheduler}.sh.tmpl`` (header and layout),
``prologue.sh.tmpl`` (environment), ``md_segment.sh.tmpl`` / ``command.sh.tmpl``
(payload), ``submit/{scheduler}.sh.tmpl`` (a ``submit SCRIPT [AFTER]``
function), ``submit_chain.sh.tmpl`` and ``submit_job.sh.tmpl``.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from decimal import Decimal, InvalidOperation
from pathlib import Path

from hpcnnp import __version__
from hpcnnp.errors import HpcnnpError
from hpcnnp.hpc.sites import (
    SCHEDULERS,
    _positive_int,
    jobs_dir,
    load_site,
    parse_walltime,
    walltime_minutes,
)
from hpcnnp.hpc.templates import render_text

#: most segments one chain may have
MAX_SEGMENTS = 9999

#: text in every rendered script (stale segment scripts carrying it are removed)
MARKER = "rendered by hpcnnp"

LAUNCH_MODES = ("mpi", "plain")


def _decimal(value, what):
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise HpcnnpError(f"{what} must be a number, got {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise HpcnnpError(f"{what} must be a positive number, got {value!r}")
    return number


def _fmt(number):
    """Plain decimal text: Decimal('10.0') -> '10', Decimal('0.50') -> '0.5'."""
    return format(number.normalize(), "f")


def segment_bounds(total_ns, segment_ns):
    """``[(start, end), ...]`` in ns (as :class:`~decimal.Decimal`, exact) of the segments.

    The last segment is shorter when *segment_ns* does not divide *total_ns*.

    Raises
    ------
    HpcnnpError
        Non-positive or non-numeric lengths, or more than :data:`MAX_SEGMENTS` segments.
    """
    total = _decimal(total_ns, "total time (ns)")
    step = _decimal(segment_ns, "segment length (ns)")
    count = math.ceil(total / step)
    if count > MAX_SEGMENTS:
        raise HpcnnpError(f"{_fmt(total)} ns in segments of {_fmt(step)} ns makes {count} "
                          f"jobs (at most {MAX_SEGMENTS}); use longer segments")
    return [(step * k, min(step * (k + 1), total)) for k in range(count)]


def _template(name):
    path = jobs_dir() / "templates" / name
    try:
        return path, path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HpcnnpError(f"cannot read template {path}: {exc.strerror}") from None


def _render(name, values):
    path, text = _template(name)
    return render_text(text, values, source=str(path))


def _job_name(text):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "hpcnnp"
    if not name[0].isalpha():
        name = "j" + name
    return name[:40]


def _write_atomic(path, text, executable=True):
    from hpcnnp.fileio import write_atomic
    write_atomic(path, text, executable=executable)


#: characters that must not reach a batch script inside a file name: a line break
#: would end a comment or a command there and make the rest a command of its own
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def _shell_safe(path, what):
    """``path`` unchanged, or an HpcnnpError if it cannot be put into a shell script
    (control characters: newline, carriage return, escape, ...)."""
    text = str(path)
    if _UNSAFE.search(text):
        raise HpcnnpError(f"{what} {text!r} contains a line break or another control "
                          "character, which cannot go into a batch script safely; rename it")
    return path


def render_jobs(site, nodes, walltime=None, command=None, protocol=None, total_time_ns=None,
                segment_ns=None, out_dir=None, account=None, queue=None, *,
                ranks_per_node=None, threads=1, launch="mpi", workdir=None, venv=None,
                job_name=None):
    """Write batch scripts for *site* into *out_dir*; returns the written paths.

    Give either *protocol* with *total_time_ns* and *segment_ns* (an MD segment
    chain: ``segment_NNN.sh`` + ``submit_chain.sh``) or *command* (one job:
    ``job.sh`` + ``submit.sh``).

    Parameters
    ----------
    site : Site or str
        Site or its name/path (:func:`~hpcnnp.hpc.sites.load_site`).
    nodes : int
        Nodes per job.
    walltime : str, optional
        ``HH:MM:SS`` per job (default: the site's default); checked against the
        queue's limit for *nodes*.
    command : str, optional
        Shell command of a single job, e.g. ``"hpcnnp train"``.
    protocol : str or path, optional
        MD protocol file given to ``hpcnnp md``.
    total_time_ns, segment_ns : float or str, optional
        Simulated time of the whole run and of one segment, ns.
    out_dir : str or path
        Folder for the scripts (created; existing scripts are replaced atomically).
    account, queue : str, optional
        Account/project/bank and queue/partition (default: ``$HPCNNP_ACCOUNT``,
        ``$HPCNNP_QUEUE``, the site's defaults).
    ranks_per_node : int, optional
        MPI ranks per node (default: usable cores // *threads*).
    threads : int
        OpenMP threads per rank (``OMP_NUM_THREADS``).
    launch : {'mpi', 'plain'}
        Start the payload with the site's MPI launcher, or run it as is on the
        first node (a Parsl driver, a serial tool).
    workdir : str or path, optional
        Folder the jobs run in (default: the current folder).
    venv : str, optional
        Python environment prefix on the compute nodes (default: this Python's).
    job_name : str, optional
        Base of the job names (default: from the protocol or command).

    Returns
    -------
    list of pathlib.Path
        Job scripts first, then the submit script.

    Raises
    ------
    HpcnnpError
        Bad input (the message names it); nothing is written then.
    """
    site = load_site(site)
    nodes = _positive_int(nodes, "nodes")
    seconds = site.default_walltime if walltime is None else parse_walltime(walltime)
    account = site.resolve_account(account)
    queue = site.resolve_queue(queue)
    site.check_request(nodes, seconds, queue)
    if launch not in LAUNCH_MODES:
        raise HpcnnpError(f"launch must be one of {', '.join(LAUNCH_MODES)}, got {launch!r}")
    if out_dir is None:
        raise HpcnnpError("no output folder given")
    for value, what in ((protocol, "protocol file"), (workdir, "work folder"),
                        (out_dir, "output folder"), (venv, "Python environment"),
                        (job_name, "job name")):
        if value is not None:
            _shell_safe(value, what)
    what = _what_to_run(command, protocol, total_time_ns, segment_ns, job_name)
    values = site.values(nodes=nodes, ranks_per_node=ranks_per_node, threads=threads,
                         walltime=seconds, account=account, queue=queue, venv=venv)
    workdir = _shell_safe(Path(workdir or os.getcwd()).expanduser().resolve(), "work folder")
    out_dir = _shell_safe(Path(out_dir).expanduser().resolve(), "output folder")
    _shell_safe(site.path, "site file")
    values.update(_script_values(site, values, nodes, seconds, launch, workdir))
    if what["protocol"] is not None:
        scripts = _chain_scripts(site, values, what)
    else:
        scripts = _single_job_scripts(site, values, what, nodes)
    return _write_scripts(scripts, out_dir)


def _what_to_run(command, protocol, total_time_ns, segment_ns, job_name):
    """Checked payload: ``{"protocol", "bounds", "command", "base"}`` (base = job name)."""
    if (command is None) == (protocol is None):
        raise HpcnnpError("give either a protocol (MD segment chain) or a command (one job)")
    if protocol is not None:
        protocol = Path(protocol).expanduser().resolve()
        if not protocol.is_file():
            raise HpcnnpError(f"protocol file {protocol} does not exist")
        if total_time_ns is None or segment_ns is None:
            raise HpcnnpError("an MD chain needs the total time and the segment length (ns)")
        return {"protocol": protocol, "bounds": segment_bounds(total_time_ns, segment_ns),
                "command": None, "base": _job_name(job_name or protocol.stem)}
    if not isinstance(command, str) or not command.strip():
        raise HpcnnpError("the command is empty")
    if "\n" in command or "\r" in command:
        raise HpcnnpError("the command must be a single line")
    if total_time_ns is not None or segment_ns is not None:
        raise HpcnnpError("total time and segment length apply only to an MD chain "
                          "(with a protocol)")
    return {"protocol": None, "bounds": None, "command": command.strip(),
            "base": _job_name(job_name or "-".join(command.split()[:2]))}


def _script_values(site, values, nodes, seconds, launch, workdir):
    """Placeholder values shared by every script of one rendering."""
    ranks_per_node, threads = values["ranks_per_node"], values["threads"]
    prefix = ""
    if launch == "mpi":
        argv = site.mpi_command(nodes * ranks_per_node, ranks_per_node, threads,
                                venv=values["venv"])
        prefix = shlex.join(argv) + " "
    info = SCHEDULERS[site.scheduler]
    return {
        "site": site.name,
        "site_file": str(site.path),
        "site_ref": shlex.quote(site.name if site.path.parent == jobs_dir() / "sites"
                                else str(site.path)),
        "version": __version__,
        "workdir": shlex.quote(str(workdir)),
        "module_lines": "\n".join(f"module load {m}" for m in site.modules),
        "setup_lines": "\n".join(site.environment_lines(values)[len(site.modules):]),
        "launch": prefix,
        "walltime_hhmm": _hhmm(seconds),
        "submit_function": _render(f"submit/{site.scheduler}.sh.tmpl", values).rstrip("\n"),
        "dependency": info["dependency"],
    }


def _job_script(site, v, body_template):
    v["directives"] = _directives(site, v)
    v["prologue"] = _render("prologue.sh.tmpl", v).rstrip("\n")
    v["body"] = _render(body_template, v).rstrip("\n")
    return _render(f"{site.scheduler}.sh.tmpl", v)


def _chain_scripts(site, values, what):
    """``segment_NNN.sh`` for every segment and ``submit_chain.sh``."""
    protocol, bounds, base = what["protocol"], what["bounds"], what["base"]
    submit = SCHEDULERS[site.scheduler]["submit"]
    n = len(bounds)
    width = max(3, len(str(n)))
    names = [f"segment_{k:0{width}d}.sh" for k in range(1, n + 1)]
    total, step = bounds[-1][1], bounds[0][1] - bounds[0][0]
    scripts = {}
    for k, ((start, end), script) in enumerate(zip(bounds, names), 1):
        v = dict(values, job_name=f"{base}-{k:0{width}d}", segment=k, n_segments=n,
                 start_ns=_fmt(start), end_ns=_fmt(end), total_ns=_fmt(total),
                 protocol=shlex.quote(str(protocol)),
                 title=f"MD {protocol.name}: segment {k}/{n}, "
                       f"{_fmt(start)} -> {_fmt(end)} ns",
                 submit_hint=f"./submit_chain.sh (all segments in order); "
                             f"{submit.format(script=script)} (this one)")
        scripts[script] = _job_script(site, v, "md_segment.sh.tmpl")
    chain = dict(values, n_segments=n,
                 segment_list="\n".join(f"    {name}" for name in names),
                 title=f"MD {protocol.name}: {_fmt(total)} ns in {n} segments of "
                       f"{_fmt(step)} ns")
    scripts["submit_chain.sh"] = _render("submit_chain.sh.tmpl", chain)
    return scripts


def _single_job_scripts(site, values, what, nodes):
    """``job.sh`` and ``submit.sh``."""
    submit = SCHEDULERS[site.scheduler]["submit"]
    v = dict(values, job_name=what["base"], command=what["command"],
             title=f"{what['command']} on {nodes} node(s)",
             submit_hint=f"./submit.sh or {submit.format(script='job.sh')}")
    scripts = {"job.sh": _job_script(site, v, "command.sh.tmpl")}
    scripts["submit.sh"] = _render("submit_job.sh.tmpl", dict(v, script="job.sh"))
    return scripts


def _write_scripts(scripts, out_dir):
    for name, text in scripts.items():
        if MARKER not in text:  # pragma: no cover - guards edits of the templates
            raise HpcnnpError(f"template for {name} lost the line naming hpcnnp ({MARKER!r})")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HpcnnpError(f"cannot create {out_dir}: {exc.strerror}") from None
    paths = []
    for name, text in scripts.items():
        path = out_dir / name
        _write_atomic(path, text)
        paths.append(path)
    _remove_stale_segments(out_dir, set(scripts))
    return paths


def _directives(site, values):
    text = "\n".join(site.directives)
    return render_text(text, values, source=str(site.path)).strip("\n") if text else ""


def _hhmm(seconds):
    minutes = walltime_minutes(seconds)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _remove_stale_segments(out_dir, keep):
    """Delete ``segment_*.sh`` of an earlier, longer rendering (only hpcnnp's own)."""
    for path in out_dir.glob("segment_*.sh"):
        if path.name in keep:
            continue
        try:
            if MARKER in path.read_text(encoding="utf-8", errors="replace"):
                path.unlink()
        except OSError:
            pass


__all__ = ["render_jobs", "segment_bounds", "MAX_SEGMENTS", "LAUNCH_MODES"]
