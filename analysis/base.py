"""The analysis base class: one frame loop, split over MPI ranks, reduced once.

Every analysis of :mod:`hpcnnp.analysis` is a class built on :class:`AnalysisBase`
in the MDAnalysis pattern::

    >>> from hpcnnp.analysis import Segregation                    # doctest: +SKIP
    >>> seg = Segregation("traj.h5", species="Co").run(step=10)
    >>> seg.results.profile, seg.results.excess                     # c(x)/c_bulk, Γ

``__init__`` takes the trajectory and the parameters and checks them (bad input
fails here, before any frame is read); :meth:`AnalysisBase.run` reads the frames
and fills :attr:`AnalysisBase.results`.

Trajectories
============
Anything :func:`~hpcnnp.analysis.trajectory.as_trajectory` accepts: an open
``hpcnnp.io.h5md.H5MDTrajectory``, the path of an H5MD file, a list of
``ase.Atoms`` or an :class:`~hpcnnp.analysis.trajectory.ArrayTrajectory` (arrays in
memory, for tests and small data).

What a subclass writes
======================
``_prepare()``
    Create the accumulators with :meth:`_add_sum` (summed over frames) and
    :meth:`_add_series` (one row per frame, kept in frame order).
``_single_frame(frame)`` or ``_chunk(chunk)``
    Work on one frame (``frame.position``, ``frame.box``, ``frame.image``,
    ``frame.index`` (global frame number), ``frame.row`` (row of the series)) or on a
    whole chunk of frames read at once (stacked arrays, faster for vectorised code).
``_conclude()``
    Turn the reduced accumulators into ``self.results``.

Parallel runs and reproducibility
=================================
``run(comm=MPI.COMM_WORLD)`` gives every rank a contiguous block of the selected
frames.  After the frame loop the accumulators are reduced **exactly once**:

* integer sums (histogram counts) with one ``Allreduce`` -- integer addition is exact,
  so counts are bit-identical for any number of ranks;
* floating-point sums with one ``Allgather`` and summation in rank order (the same
  bits on every rank);
* per-frame series are concatenated in frame order, so anything computed from them in
  ``_conclude`` is bit-identical for any number of ranks.

Prefer integer counts and per-frame series over float sums: then a result does not
depend on the rank count at all.  Time-correlation analyses (MSD, vDOS) need every
frame of an atom on one rank; they set ``_split = "atoms"`` and the ranks share the
atoms instead, in fixed blocks of :data:`ATOM_BLOCK` atoms whose partial sums are
added in block order (again independent of the rank count).

An error on one rank (e.g. a corrupt frame) is re-raised on every rank instead of
leaving the others waiting in the reduction.

Pitfalls
========
* ``results`` raises :class:`NotComputedError` until ``run()`` has finished.
* ``run()`` resets the accumulators: calling it twice gives the same result, not a
  sum of two runs.
* An empty frame selection (e.g. ``start=10, stop=5``) is an :class:`AnalysisError`.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.progress import Progress

from .trajectory import as_trajectory

__all__ = ["AnalysisBase", "AnalysisError", "NotComputedError", "Results", "Frame",
           "ATOM_BLOCK", "frame_blocks", "species_order"]

#: atoms per block of atom-split analyses (MSD, vDOS); partial sums per block are
#: added in block order, so results do not depend on the number of ranks.
ATOM_BLOCK = 16


class AnalysisError(HpcnnpError, ValueError):
    """Bad input to an analysis (missing species, metadata, empty frame range, ...)."""


class NotComputedError(HpcnnpError, RuntimeError):
    """``results`` (or a method needing them) was used before ``run()``."""


class Results(dict):
    """Dictionary of results with attribute access (``r.profile == r["profile"]``)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no result {key!r}; available: "
                                 f"{', '.join(sorted(self)) or 'none'}") from None

    def __setattr__(self, key, value):
        self[key] = value

    def __delattr__(self, key):
        del self[key]

    def __dir__(self):
        return list(self) + list(super().__dir__())


class Frame:
    """One frame handed to ``_single_frame``: arrays of this frame and its indices."""

    __slots__ = ("index", "row", "time", "step", "position", "box", "image", "velocity",
                 "force")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def species_order(species):
    """Distinct species in hpcnnp's order (Li La Zr Co O, then the others A-Z)."""
    from hpcnnp.structures._common import ELEMENT_ORDER

    present = set(np.asarray(species).tolist())
    return ([e for e in ELEMENT_ORDER if e in present] +
            sorted(present - set(ELEMENT_ORDER)))


def frame_blocks(n, size):
    """Contiguous blocks ``[(lo, hi), ...]`` of ``range(n)`` for ``size`` ranks."""
    return [(r * n // size, (r + 1) * n // size) for r in range(size)]


class _Comm:
    """Thin wrapper of an mpi4py communicator (``None`` or 1 rank: serial)."""

    def __init__(self, comm):
        if comm is not None and comm.Get_size() > 1:
            self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
        else:
            self.comm, self.rank, self.size = None, 0, 1


class AnalysisBase:
    """Base class of the trajectory analyses (see the module docstring).

    Parameters
    ----------
    trajectory : H5MDTrajectory, path, list of ase.Atoms or ArrayTrajectory
        The trajectory (see :func:`~hpcnnp.analysis.trajectory.as_trajectory`).
    """

    #: per-frame fields read for each chunk (``box`` is always read)
    _fields = ("position",)
    #: "frames": ranks share the frames; "atoms": ranks share the atoms (see module doc)
    _split = "frames"
    #: frames read at once
    chunk_size = 64

    def __init__(self, trajectory):
        self._trajectory = as_trajectory(trajectory)
        self._results = None
        self.n_reductions = 0
        self.timing = {}

    # ------------------------------------------------------------------ properties
    @property
    def trajectory(self):
        """The trajectory (adapter) the analysis reads."""
        return self._trajectory

    @property
    def results(self):
        """:class:`Results` of the last :meth:`run`; raises before the first run."""
        if self._results is None:
            raise NotComputedError(f"{type(self).__name__}.results: no results yet; "
                                   "call run() first")
        return self._results

    # ------------------------------------------------------------------ helpers
    def _species_indices(self, species, what="species"):
        """Indices of the atoms of one element (clear error when absent)."""
        names = self._trajectory.species
        idx = np.flatnonzero(names == species)
        if len(idx) == 0:
            present = ", ".join(sorted(set(names.tolist())))
            raise AnalysisError(f"{self._trajectory.name}: {what} {species!r} not present "
                                f"in the trajectory (species present: {present})")
        return idx

    def _add_sum(self, name, shape, dtype=np.int64):
        """Accumulator summed over frames (and ranks); int64 sums are exact."""
        arr = np.zeros(shape, dtype=dtype)
        self._sums[name] = arr
        return arr

    def _add_series(self, name, shape=(), dtype=np.float64):
        """Accumulator with one row per local frame (concatenated in frame order)."""
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(x) for x in shape)
        arr = np.zeros((self._n_local_rows,) + shape, dtype=dtype)
        self._series[name] = arr
        return arr

    def _frame_range(self, start, stop, step):
        n = self._trajectory.n_frames
        if step is not None and int(step) < 1:
            raise AnalysisError(f"{self._trajectory.name}: step must be >= 1, got {step}")
        frames = range(n)[slice(start, stop, step)]
        if len(frames) == 0:
            raise AnalysisError(
                f"{self._trajectory.name}: empty frame range (start={start}, stop={stop}, "
                f"step={step}) selects no frame of the {n} frames")
        return frames

    # ------------------------------------------------------------------ run
    def run(self, start=None, stop=None, step=None, comm=None, progress=False):
        """Read the frames ``[start:stop:step]`` and compute the results.

        Parameters
        ----------
        start, stop, step : int, optional
            Frame selection with Python slice semantics (negative indices count from
            the end).
        comm : mpi4py communicator, optional
            Split the work over its ranks; every rank gets the same results.
        progress : bool
            Report frames done, frames/s and ETA on standard error (rank 0 only;
            :mod:`hpcnnp.progress`).

        Returns
        -------
        self
        """
        frames = self._frame_range(start, stop, step)
        mpi = _Comm(comm)
        self._comm = mpi
        self.frames = np.asarray(frames, dtype=np.int64)
        self.n_frames = len(frames)
        self.times = self._trajectory.times[self.frames]
        if self._split == "frames":
            lo, hi = frame_blocks(len(frames), mpi.size)[mpi.rank]
            local = frames[lo:hi]
            self._n_local_rows = len(local)
            self._frame_offset = lo
        else:
            local = frames
            self._n_local_rows = len(frames)
            self._frame_offset = 0
        self._local_frames = local
        self._sums, self._series = {}, {}
        self._results = None
        t0 = time.perf_counter()
        self._prepare()
        t_read = 0.0
        error = None
        reporter = Progress(type(self).__name__, len(local), unit="frames", comm=mpi,
                            out=sys.stderr) if progress else None
        try:
            fields = [f for f in self._fields if f in self._trajectory.fields]
            row = 0
            tr = time.perf_counter()
            for idx, data in self._trajectory.iter_chunks(
                    local.start, local.stop, local.step, chunk=self.chunk_size,
                    fields=tuple(fields)) if len(local) else ():
                t_read += time.perf_counter() - tr
                n = len(idx)
                data = dict(data)
                data["frames"] = np.asarray(idx, dtype=np.int64)
                data["rows"] = np.arange(row, row + n)
                data["time"] = self._trajectory.times[data["frames"]]
                self._chunk(data)
                row += n
                if reporter is not None:
                    reporter.update(row)
                tr = time.perf_counter()
            if reporter is not None:
                reporter.close()
            self._finish_local()
        except Exception as exc:  # re-raised on every rank after the collective
            if mpi.comm is None:
                raise
            error = f"rank {mpi.rank}: {type(exc).__name__}: {exc}"
        t1 = time.perf_counter()
        self._reduce(mpi, error)
        t2 = time.perf_counter()
        self._results = Results()
        try:
            self._conclude()
        except BaseException:
            self._results = None
            raise
        self.timing = {"read": t_read, "compute": t1 - t0 - t_read, "reduce": t2 - t1,
                       "conclude": time.perf_counter() - t2, "ranks": mpi.size}
        return self

    def _reduce(self, mpi, error=None):
        """Reduce the accumulators over the ranks (exactly once per run)."""
        self.n_reductions += 1
        if mpi.comm is None:
            return
        int_names = [k for k, a in self._sums.items() if a.dtype.kind in "iub"]
        flt_names = [k for k in self._sums if k not in int_names]
        payload = (error, {k: self._sums[k] for k in flt_names}, self._series)
        gathered = mpi.comm.allgather(payload)
        errors = [g[0] for g in gathered if g[0]]
        if errors:
            raise AnalysisError(f"{type(self).__name__}.run failed: " + "; ".join(errors))
        for k in flt_names:
            total = gathered[0][1][k].astype(np.float64, copy=True)
            for g in gathered[1:]:
                total += g[1][k]
            self._sums[k] = total
        for k in self._series:
            self._series[k] = np.concatenate([g[2][k] for g in gathered], axis=0)
        if int_names:
            from mpi4py import MPI
            buf = np.concatenate([self._sums[k].astype(np.int64).ravel()
                                  for k in int_names])
            out = np.empty_like(buf)
            mpi.comm.Allreduce(buf, out, op=MPI.SUM)
            pos = 0
            for k in int_names:
                a = self._sums[k]
                self._sums[k] = out[pos:pos + a.size].reshape(a.shape).astype(a.dtype)
                pos += a.size

    # ------------------------------------------------------------------ hooks
    def _prepare(self):
        """Create accumulators (called at the start of every run)."""

    def _chunk(self, chunk):
        """Process a chunk of frames; the default calls :meth:`_single_frame` per frame."""
        n = len(chunk["frames"])
        steps = self._trajectory.steps
        for k in range(n):
            f = Frame(index=int(chunk["frames"][k]), row=int(chunk["rows"][k]),
                      time=float(chunk["time"][k]), step=int(steps[chunk["frames"][k]]),
                      **{key: chunk[key][k] for key in
                         ("position", "box", "image", "velocity", "force") if key in chunk})
            self._single_frame(f)

    def _single_frame(self, frame):
        raise NotImplementedError(f"{type(self).__name__} implements neither _chunk "
                                  "nor _single_frame")

    def _finish_local(self):
        """Rank-local work after the frame loop, before the reduction."""

    def _conclude(self):
        """Fill ``self.results`` from the reduced accumulators."""

    # ------------------------------------------------------------------ misc
    @property
    def rank(self):
        """MPI rank of this process in the last run (0 when serial)."""
        return getattr(self, "_comm", _Comm(None)).rank

    def _block_slices(self, n_rows, n_blocks, what="blocks"):
        """``n_blocks`` contiguous row ranges of ``range(n_rows)`` (error if too few)."""
        n_blocks = int(n_blocks)
        if n_blocks < 1:
            raise AnalysisError(f"{type(self).__name__}: {what} must be >= 1")
        if n_rows < n_blocks:
            raise AnalysisError(f"{type(self).__name__}: {n_blocks} {what} need at least "
                                f"{n_blocks} frames, the run has {n_rows}")
        return [slice(lo, hi) for lo, hi in frame_blocks(n_rows, n_blocks)]
