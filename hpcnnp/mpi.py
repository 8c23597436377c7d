"""The MPI world of hpcnnp: launcher detection, the world communicator, errors that
stop every rank together, and a consistency check of the inputs across ranks.

Every command that can run under ``mpiexec``/``srun`` (``scale``, ``train``,
``predict``, ``md``, ``analyze``) gets its communicator from :func:`world` and runs
its body through :func:`run_collectively`:

>>> from hpcnnp import mpi                                      # doctest: +SKIP
>>> comm = mpi.world()                  # None for a serial run
>>> def body():
...     mpi.check_consistency(comm, {"input.nn": mpi.FileDigest("input.nn"),
...                                  "--epochs": 3})
...     ...                                 # the command's work
>>> mpi.run_collectively(comm, "hpcnnp train", body)

Three rules, so that a parallel run never hangs and never prints a wall of MPI text:

* **Launcher detection.**  mpi4py is imported only when an MPI launcher started the
  process (its environment variables, :data:`LAUNCHER_VARS`), mpi4py is already
  initialised, or ``HPCNNP_MPI=1``: a plain serial command does not initialise MPI
  (``MPI_Init`` outside a launcher fails on some login nodes).  With one rank the
  command runs serially (``world()`` returns None).
* **Collective errors.**  An error that every rank detects at the same point (bad
  input read by all ranks, a failed :func:`agree`) is reported once, by rank 0, as a
  one-line message and all ranks exit with status 2.  An error on *some* ranks at a
  point the others do not share cannot be collected -- the others may be waiting in
  a collective call -- so :func:`run_collectively` prints one line naming the rank and
  the error and aborts the job (``MPI_Abort``): no hang, and no traceback unless the
  error is a bug.
* **Consistency check.**  Before any collective work the ranks compare the SHA-256
  of their settings, data and options (:func:`check_consistency`); a stale copy of
  ``input.nn`` on one node or a different ``--epochs`` on one rank is an error naming
  the rank and the difference, instead of a deadlock later.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from hpcnnp.errors import HpcnnpError

__all__ = ["LAUNCHER_VARS", "launched", "launcher_size", "launcher_rank", "world",
           "rank_size",
           "RankError", "InconsistentRanksError", "agree", "collective",
           "run_collectively", "abort_job", "FileDigest", "check_consistency", "options_items",
           "EXIT_INPUT", "EXIT_ABORT"]

#: environment variables set by MPI launchers: MPICH/Hydra and Intel MPI (PMI_*),
#: PMIx (Open MPI 5, Slurm with --mpi=pmix), Open MPI, MVAPICH, Slurm's srun steps,
#: Cray PALS; ``HPCNNP_MPI=1`` forces MPI on
LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                 "OMPI_COMM_WORLD_RANK", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_SIZE",
                 "SLURM_STEP_NUM_TASKS", "PALS_RANKID", "HPCNNP_MPI")

#: variables holding the number of ranks the launcher started
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE",
              "SLURM_STEP_NUM_TASKS")

#: exit status of a rank for an input error (as ``hpcnnp`` without MPI)
EXIT_INPUT = 2
#: ``MPI_Abort`` error code for an error on some ranks only
EXIT_ABORT = 3


def launched():
    """True when an MPI launcher (or ``HPCNNP_MPI=1``) started this process, or
    mpi4py is already initialised in it."""
    if os.environ.get("HPCNNP_MPI", "") == "0":
        return False
    return "mpi4py.MPI" in sys.modules or any(os.environ.get(v) for v in LAUNCHER_VARS)


def launcher_size():
    """Number of ranks according to the launcher's environment, or None if unknown."""
    for var in _SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return None


def launcher_rank():
    """This process's rank according to the launcher's environment (0 if unknown)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PALS_RANKID",
                "SLURM_PROCID"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 0


def world(use_mpi=None):
    """mpi4py's ``COMM_WORLD`` when more than one rank runs, else None (serial).

    Parameters
    ----------
    use_mpi : bool, optional
        Force MPI on/off; default: :func:`launched`.

    Raises
    ------
    HpcnnpError
        Started by a launcher with several ranks while mpi4py is not installed (every
        rank would do the whole job).
    """
    if use_mpi is None:
        use_mpi = launched()
    if not use_mpi:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        size = launcher_size()
        if size is not None and size > 1:
            raise HpcnnpError("started by an MPI launcher with several ranks, but mpi4py "
                              "is not installed (pip install mpi4py): every rank would do "
                              "the whole job") from None
        return None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def rank_size(comm):
    """``(rank, size)`` of a communicator (``(0, 1)`` for None)."""
    if comm is None:
        return 0, 1
    return comm.Get_rank(), comm.Get_size()


# ---------------------------------------------------------------------------------------
# Collective errors
# ---------------------------------------------------------------------------------------

class RankError(HpcnnpError):
    """An error raised on some ranks, re-raised on every rank by :func:`agree`.

    Attributes
    ----------
    rank : int
        The lowest rank that failed.
    """

    collective = True

    def __init__(self, message, rank=0):
        super().__init__(message)
        self.rank = rank


class InconsistentRanksError(RankError):
    """The ranks were started with different inputs (:func:`check_consistency`)."""


def agree(comm, error=None):
    """Collective: raise on every rank if ``error`` is not None on any rank.

    Every rank calls it at the same point with its own error (an exception or None).
    The lowest failing rank's error is raised everywhere: as itself on that rank, as a
    :class:`RankError` with the same message elsewhere (``rank N: message`` when it
    was not rank 0 that failed).
    """
    if comm is None or comm.Get_size() == 1:
        if error is not None:
            _mark_collective(error)
            raise error
        return
    msgs = comm.allgather(None if error is None else str(error))
    failed = [r for r, m in enumerate(msgs) if m is not None]
    if not failed:
        return
    first = failed[0]
    text = msgs[first] if first == 0 else f"rank {first}: {msgs[first]}"
    if error is not None and comm.Get_rank() == first:
        if first == 0 and isinstance(error, HpcnnpError):
            _mark_collective(error)
            raise error
        raise RankError(text, first) from error
    raise RankError(text, first)


def _mark_collective(error):
    try:
        error.collective = True
    except AttributeError:      # pragma: no cover - exceptions with __slots__
        pass


def collective(comm, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on every rank; an :class:`HpcnnpError` (or OSError) on
    any rank is raised on all of them (:func:`agree`).  Returns ``fn``'s result."""
    error = result = None
    try:
        result = fn(*args, **kwargs)
    except (HpcnnpError, OSError) as exc:
        error = exc
    agree(comm, error)
    return result


#: seconds the ranks that failed wait for the others to fail too before aborting
ERROR_GRACE = 30.0
#: seconds a failing rank waits for the launcher to forward its last words before
#: ``MPI_Abort``.
ABORT_FORWARD_S = 0.5


def run_collectively(comm, command, fn, *args, stream=None, grace=None, **kwargs):
    """Run a command body on every rank with hpcnnp's error rules (module doc).

    Parameters
    ----------
    comm : mpi4py communicator or None
    command : str
        Name used in messages (``"hpcnnp train"``).
    fn : callable
        The body; its return value is returned.
    grace : float, optional
        Seconds a failing rank waits for the other ranks to fail as well (default
        :data:`ERROR_GRACE`, or ``$HPCNNP_MPI_ERROR_GRACE``).

    Returns
    -------
    The body's result; on ranks other than 0, :data:`EXIT_INPUT` when the error was
    raised on every rank (rank 0 raises it, so that the CLI prints it once).

    Notes
    -----
    A serial run (``comm`` None) just calls ``fn``.  Under MPI a failing rank enters a
    non-blocking barrier on a private duplicate of ``comm`` (so it cannot be confused
    with the body's own collective calls):

    * every rank failed (bad input all ranks read, an error of :func:`agree`, SIGTERM
      forwarded by the launcher to all ranks): the barrier completes, rank 0 re-raises
      -- one message -- and the other ranks return :data:`EXIT_INPUT`;
    * some ranks failed, others are still working or waiting in a collective call:
      after ``grace`` seconds each failing rank prints one line naming its rank and
      the error (a traceback for an error that is not an :class:`HpcnnpError`, i.e. a
      bug) and the job ends with ``MPI_Abort``: it never hangs.
    """
    if comm is None or comm.Get_size() == 1:
        return fn(*args, **kwargs)
    rank = comm.Get_rank()
    stream = sys.stderr if stream is None else stream
    if grace is None:
        grace = float(os.environ.get("HPCNNP_MPI_ERROR_GRACE", ERROR_GRACE))
    errcomm = comm.Dup()        # not freed: MPI_Comm_free is collective
    try:
        return fn(*args, **kwargs)
    except SystemExit:
        raise
    except BaseException as exc:
        if getattr(exc, "collective", False) or _all_failed(errcomm, grace):
            if rank == 0 or isinstance(exc, KeyboardInterrupt):
                raise               # a signal: every rank exits with its status (143)
            return EXIT_INPUT
        abort_job(comm, command, exc, stream)
        raise                                    # pragma: no cover - after Abort


def abort_job(comm, command, exc, stream=None):
    """End an MPI job because of ``exc`` on this rank: one line naming the rank (a
    traceback if ``exc`` is not an :class:`HpcnnpError`), then ``MPI_Abort``.  For an
    error the other ranks cannot share (they wait in a collective call or in LAMMPS);
    never returns."""
    stream = sys.stderr if stream is None else stream
    rank = comm.Get_rank()
    if isinstance(exc, HpcnnpError):
        stream.write(f"{command}: error on MPI rank {rank} (aborting the job): {exc}\n")
    elif isinstance(exc, KeyboardInterrupt):
        stream.write(f"{command}: interrupted on MPI rank {rank} (aborting the job)\n")
    else:
        import traceback
        stream.write(f"{command}: unexpected error on MPI rank {rank} (aborting the job):\n")
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=stream)
    stream.flush()
    _abort(comm, EXIT_INPUT if isinstance(exc, HpcnnpError) else EXIT_ABORT)


def _all_failed(errcomm, grace):
    """Non-blocking barrier of the failing ranks: True if every rank arrives in time."""
    import time
    request = errcomm.Ibarrier()
    deadline = time.monotonic() + grace
    while not request.Test():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _abort(comm, code):
    # the other ranks may wait in a collective call forever: end the whole job
    import time
    try:
        sys.stdout.flush()
    except Exception:                            # noqa: BLE001 pragma: no cover
        pass
    # Hydra forwards a rank's stdio through its proxy asynchronously and MPI_Abort
    # tears the proxy down: without a pause the message naming the error is lost
    # (seen in 3 of 15 runs)
    time.sleep(ABORT_FORWARD_S)
    comm.Abort(code)
    os._exit(code)      # MPICH's MPI_Abort may return to the caller after notifying mpiexec


# ---------------------------------------------------------------------------------------
# Consistency of the inputs across ranks
# ---------------------------------------------------------------------------------------

#: files up to this size are hashed whole; larger ones by a sample (see FileDigest)
FULL_HASH_LIMIT = 256 * 2**20
_BLOCK = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    """The identity of a file's content for :func:`check_consistency`.

    Files up to :data:`FULL_HASH_LIMIT` are hashed whole (SHA-256); larger ones
    (multi-GB data sets, trajectories) by their size and 64 blocks of 1 MiB spread
    over the file including its first and last -- enough to tell a stale copy from
    the current one, at the cost of 64 MiB of reading per rank.
    """

    path: str

    def describe(self):
        """``(digest text, detail)``: the value compared across ranks."""
        path = Path(self.path)
        try:
            if path.is_dir():
                return "folder", f"{path} is a folder"
            size = path.stat().st_size
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                if size <= FULL_HASH_LIMIT:
                    for chunk in iter(lambda: fh.read(_BLOCK), b""):
                        h.update(chunk)
                else:
                    n = 64
                    for k in range(n):
                        fh.seek((size - _BLOCK) * k // (n - 1))
                        h.update(fh.read(_BLOCK))
            digest = h.hexdigest()
            return f"{size}:{digest}", f"{size} bytes, sha256 {digest[:12]}"
        except FileNotFoundError:
            return "missing", "file not found"
        except OSError as exc:
            return f"unreadable:{exc.strerror}", f"cannot read: {exc.strerror}"


def options_items(args, skip=("func",)):
    """``{"--name": value}`` of an argparse namespace, for :func:`check_consistency`.

    Put file items (:class:`FileDigest`) in after these: an option naming a file then
    compares the file's content, not only its name.
    """
    return {"--" + k.replace("_", "-"): v for k, v in sorted(vars(args).items())
            if k not in skip and not callable(v)}


def _describe(value):
    if isinstance(value, FileDigest):
        return value.describe()
    text = repr(value)
    return text, (text if len(text) <= 80 else text[:77] + "...")


def check_consistency(comm, items):
    """Collective: check that every rank has the same ``items``.

    Parameters
    ----------
    comm : mpi4py communicator or None (nothing to check)
    items : dict
        name -> value; a :class:`FileDigest` compares the file's content, anything
        else its ``repr`` (options, environment).

    Raises
    ------
    InconsistentRanksError
        On every rank, naming the first differing item and rank, e.g.
        ``MPI ranks disagree on input.nn (/p/input.nn): rank 0 has
        1234 bytes, sha256 0a1b..., rank 1 has 1240 bytes, sha256 9f8e...`` .
    """
    if comm is None or comm.Get_size() == 1:
        return
    mine = {name: _describe(value) for name, value in items.items()}
    everyone = comm.allgather(mine)
    ref = everyone[0]
    for rank, theirs in enumerate(everyone[1:], start=1):
        for name in sorted(set(ref) | set(theirs)):
            a, b = ref.get(name), theirs.get(name)
            if a is None or b is None or a[0] != b[0]:
                where = name
                value = items.get(name)
                if isinstance(value, FileDigest) and value.path != name:
                    where = f"{name} ({value.path})"
                raise InconsistentRanksError(
                    f"MPI ranks disagree on {where}: rank 0 has "
                    f"{a[1] if a else 'nothing'}, rank {rank} has {b[1] if b else 'nothing'}"
                    " (all ranks must be started with the same inputs and options; a "
                    "stale copy of a file on one node?)", rank)
