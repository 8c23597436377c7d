"""The trainer's view of MPI: deterministic collectives and a serial stand-in.

The world communicator and the error rules come from :mod:`hpcnnp.mpi` (launcher
detection, one error on all ranks); this wrapper adds what training needs on top:
sums over ranks done by ``Allgather`` + summation in rank order, so every rank gets
the same bits (``MPI_Allreduce`` does not promise that) and a run is reproducible
from a checkpoint.
"""

from __future__ import annotations

import numpy as np

from hpcnnp import mpi

__all__ = ["get_comm", "Comm"]


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
        """Run ``fn`` on every rank; if it raises an :class:`HpcnnpError` (or OSError)
        on any rank, raise the first rank's error on every rank
        (:func:`hpcnnp.mpi.collective`), so that all ranks stop together."""
        return mpi.collective(self.comm, fn, *args, **kwargs)


def get_comm(use_mpi=None):
    """The world communicator (:func:`hpcnnp.mpi.world`) wrapped in :class:`Comm`
    (serial if no MPI launcher started the process or only one rank runs)."""
    return Comm(mpi.world(use_mpi))
