"""MPI helpers of the trainer: deterministic collectives and a serial stand-in.

Sums over ranks are done by ``Allgather`` + summation in rank order, so every rank
gets the same bits (``MPI_Allreduce`` does not promise that) and a run is
reproducible from a checkpoint.
"""

from __future__ import annotations

import os

import numpy as np

from hpcnnp.errors import HpcnnpError

__all__ = ["get_comm", "Comm", "CollectiveError"]


class CollectiveError(HpcnnpError):
    """An error raised on one rank, re-raised on every rank."""


class Comm:
    """Wrapper of an mpi4py communicator (or ``None`` for a serial run)."""

    def __init__(self, mpi_comm=None):
        self.comm = mpi_comm
        if mpi_comm is not None and mpi_comm.Get_size() > 1:
            from mpi4py import MPI
            self.MPI = MPI
            self.rank = mpi_comm.Get_rank()
            self.size = mpi_comm.Get_size()
        else:
            self.comm = None
            self.MPI = None
            self.rank = 0
            self.size = 1

    @property
    def parallel(self):
        return self.size > 1

    @property
    def kalman_comm(self):
        """Communicator for :class:`KalmanFilter` (None when serial)."""
        return self.comm

    def barrier(self):
        if self.comm is not None:
            self.comm.Barrier()

    def bcast(self, obj, root=0):
        return obj if self.comm is None else self.comm.bcast(obj, root=root)

    def allgather(self, obj):
        return [obj] if self.comm is None else self.comm.allgather(obj)

    def gather(self, obj, root=0):
        return [obj] if self.comm is None else self.comm.gather(obj, root=root)

    def allsum(self, a):
        """Sum of a float array over ranks in rank order (same bits everywhere)."""
        a = np.ascontiguousarray(a, dtype=np.float64)
        if self.comm is None:
            return a.copy()
        buf = np.empty((self.size,) + a.shape)
        self.comm.Allgather(a, buf)
        out = buf[0].copy()
        for r in range(1, self.size):
            out += buf[r]
        return out

    def allmax_int(self, value):
        if self.comm is None:
            return int(value)
        return int(self.comm.allreduce(int(value), op=self.MPI.MAX))

    def allgather_rows(self, local, counts):
        """Concatenate (m_r, n) float arrays of all ranks (rank order)."""
        local = np.ascontiguousarray(local, dtype=np.float64)
        if self.comm is None:
            return local
        n = local.shape[1]
        total = int(sum(counts))
        out = np.empty((total, n))
        sizes = [int(c) * n for c in counts]
        displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
        self.comm.Allgatherv(local, [out, sizes, displs, self.MPI.DOUBLE])
        return out

    def collective(self, fn, *args, **kwargs):
        """Run ``fn`` on every rank; if it raises an :class:`HpcnnpError` on any rank,
        raise the first rank's error on every rank (so all ranks stop together)."""
        err = None
        result = None
        try:
            result = fn(*args, **kwargs)
        except HpcnnpError as exc:
            err = exc
        if self.comm is None:
            if err is not None:
                raise err
            return result
        msgs = self.comm.allgather(None if err is None else str(err))
        first = next((m for m in msgs if m is not None), None)
        if first is not None:
            if err is not None and str(err) == first:
                raise err
            raise CollectiveError(first)
        return result


_LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                  "MPI_LOCALNRANKS", "SLURM_STEP_NUM_TASKS", "HPCNNP_MPI")


def get_comm(use_mpi=None):
    """The world communicator wrapped in :class:`Comm` (serial if mpi4py is missing
    or only one rank runs).

    ``use_mpi`` None: MPI is initialised only when the process was started by an MPI
    launcher (PMI/PMIx/Open MPI/Slurm environment variables, or ``HPCNNP_MPI=1``) or
    mpi4py is already initialised, so a plain serial ``hpcnnp train`` does not
    start MPI."""
    if use_mpi is None:
        import sys
        use_mpi = ("mpi4py.MPI" in sys.modules
                   or any(os.environ.get(k) for k in _LAUNCHER_VARS))
    if not use_mpi:
        return Comm(None)
    try:
        from mpi4py import MPI
    except ImportError:            # pragma: no cover - mpi4py is a dependency
        return Comm(None)
    return Comm(MPI.COMM_WORLD)
