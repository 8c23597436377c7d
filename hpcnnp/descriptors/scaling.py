"""Symmetry-function statistics of a data set: the job of n2p2's ``nnp-scaling``.

:func:`run_scaling` reads an ``input.nn`` and streams an ``input.data``
(n2p2-formats.md §1, §2) and writes, like ``nnp-scaling NBINS`` (§7, §13):

``scaling.data``
    min, max, mean and sigma (divisor n - 1) of every raw symmetry function
    over all atoms of its element, in n2p2's format
    (:func:`hpcnnp.io.n2p2.write_scaling`).
``sf.ZZZ.SSSS.histo``
    one histogram per element (Z) and sorted SF index (1-based), exactly n2p2's
    file: ``#SFINFO`` lines (the SF's parameters, then min/max/mean/sigma),
    n2p2's column header, then ``symfunc_l symfunc_r hist`` (``%16.8E``) per bin.
    Binning as n2p2 (GSL): NBINS uniform bins starting at the minimum, of width
    (max - min)/(NBINS - 1), so that the maximum is inside the range (in the last
    bin, or in the one before when GSL's rounded edge lies just above it); a value
    x is in bin i when edge_i <= x < edge_i+1, edges computed as GSL does.  SFs
    with min == max get no histogram (as n2p2).
``neighbors.histo``
    the neighbour-count histogram: n2p2's three columns ``neigh_l neigh_r
    hist`` (bins of width 1 centred on 0 ... max neighbours, all atoms,
    ``%9.1f %9.1f %16.8E``) followed by one column ``hist_El`` per element
    (central atoms of that element) -- an hpcnnp extension; readers of n2p2's
    file use the first three columns.
``neighbors.out``
    hpcnnp's file (nnp-scaling has none; the closest n2p2 file is nnp-atomenv's
    ``neighbor-list.data``): one line per atom, ``struct atom Z neigh`` and the
    neighbours per element (``neigh_El``), structure and atom index 0-based as
    in n2p2's ``forces.comp``.
``function.data`` (optional, off by default)
    n2p2's RuNNer-style SF file (``%14.10f``).
``scale.log``
    the log printed by the command (settings, neighbour statistics, memory
    estimate, warnings, timings).

"Neighbours" follow n2p2 (§6): all atoms and periodic images within the
largest SF cutoff of the potential, the atom itself excluded (its own periodic
images included).

How it runs
-----------
Pass 1 (cheap): neighbour lists only.  It validates every structure (parse
errors, unknown elements, atoms closer than 0.1 Å) *before* the expensive
part, counts neighbours per atom and element, and gives the memory estimate
of training with ``memorize_symfunc_results``: per atom ``n_sf * 8`` bytes of
SF values plus, with ``use_short_forces``, the SF derivatives dG/dr in the
layout of hpcnnp's C core and of n2p2: ``n_sf * 3 * 8`` bytes for the atom
itself and, per neighbour j, ``3 * 8`` bytes for each SF that depends on j's
element (about a third of the dense bound ``(neighbours + 1) * n_sf * 3 * 8``
for the LLZO/LCO set, which is printed too).  The totals are exact for the
whole data set (from the neighbour lists of every structure), not an
extrapolation from the first structures; n2p2's own estimate adds its
bookkeeping (neighbour lists, caches).

Pass 2: the symmetry functions (values only: derivatives do not enter the
statistics, so they are not computed even with ``use_short_forces``, unlike
n2p2 which computes them to measure its memory).  Per element a
:class:`RunningStats` accumulates count, min, max, a compensated sum and
Welford's M2; the SF values are kept (in memory up to ``cache_limit`` bytes per
rank, beyond in a temporary file) for the histograms, whose range is only
known at the end.

SF values do not depend on the unit normalisation (``mean_energy``,
``conv_energy``, ``conv_length``): n2p2 converts positions and SF parameters
together, so G is unit-invariant and is computed here in the file's units.

MPI
---
With an mpi4py communicator every rank streams the whole ``input.data`` but
parses and evaluates only its share, structures k with ``k % size == rank``
(round robin; the other blocks are only delimited at their ``begin``/``end``
lines, which costs ~1 % of parsing them, and no structure is ever sent).  A
defect in a structure is therefore found by the rank that owns it; the error
reported (by every rank) is the one earliest in the file, with its file line.  The statistics are reduced exactly and
independent of timing: min/max with ``MPI_MIN``/``MPI_MAX`` (bit-identical to
a serial run), counts and histograms as integers, and (count, sum, M2) of
every rank combined on rank 0 with Chan et al.'s parallel formula in rank
order 0, 1, ..., size-1.  Mean and sigma then agree with a serial run to a few
ulp (the partition of the additions differs).  Only rank 0 writes files, each
to a temporary file first and renamed into place after the whole data set has
been processed: a failing run leaves no half-written file.  Errors of one
rank are reported consistently by all (the one earliest in the file); every
rank raises the same :class:`~hpcnnp.errors.HpcnnpError`.

>>> from hpcnnp.descriptors.scaling import run_scaling          # doctest: +SKIP
>>> result = run_scaling("input.nn", "input.data", ".", nbins=500)
>>> result.statistics["Li"][:, 0]          # SF minima of Li
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError, InputFileError, StructureError
from hpcnnp.fileio import AtomicFiles
from hpcnnp.progress import Progress

__all__ = [
    "DEFAULT_NBINS", "SCALING_FILE", "NEIGHBOR_HISTO_FILE", "NEIGHBOR_OUT_FILE",
    "FUNCTION_DATA_FILE", "LOG_FILE", "HISTO_FORMAT", "ScalingWarning", "RunningStats",
    "ScalingResult", "ScalingRun", "run_scaling", "compute_scaling", "histogram_edges",
    "histogram_counts", "sf_histogram_text", "sfinfo_lines", "memory_estimate_bytes",
]

#: number of histogram bins when none is given (n2p2's examples use 500)
DEFAULT_NBINS = 500
SCALING_FILE = "scaling.data"
NEIGHBOR_HISTO_FILE = "neighbors.histo"
NEIGHBOR_OUT_FILE = "neighbors.out"
FUNCTION_DATA_FILE = "function.data"
LOG_FILE = "scale.log"
#: n2p2's file name of the SF histograms: atomic number, 1-based sorted SF index
HISTO_FORMAT = "sf.%03d.%04d.histo"
#: SFs whose |min| and |max| stay below this are reported as "essentially unused"
TINY_SF = 1e-8
#: default bytes of SF values a rank keeps in memory for the histograms
DEFAULT_CACHE_LIMIT = 2 << 30


class ScalingWarning(UserWarning):
    """A statistic n2p2 could not use (e.g. an SF with zero range)."""


# ---------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------

class RunningStats:
    """Column statistics of row blocks: count, min, max, sum and M2 (Welford/Chan).

    ``add(block)`` folds in the rows of a (m, n) block, ``merge(other)`` another
    accumulator (Chan, Golub & LeVeque's parallel formula,
    M2 = M2_a + M2_b + delta^2 n_a n_b / n).  The sum is kept with a Neumaier
    compensation term, so the mean is accurate to a few ulp whatever the number of
    blocks.  The result depends only on the blocks and the order of the merges,
    never on timing.
    """

    __slots__ = ("count", "total", "comp", "m2", "min", "max")

    def __init__(self, n):
        self.count = 0
        self.total = np.zeros(n)
        self.comp = np.zeros(n)
        self.m2 = np.zeros(n)
        self.min = np.full(n, np.inf)
        self.max = np.full(n, -np.inf)

    def add(self, block):
        """Fold in the rows of ``block`` (m, n)."""
        block = np.asarray(block, dtype=float)
        m = block.shape[0]
        if m == 0:
            return
        cols = np.ascontiguousarray(block.T)      # rows contiguous: pairwise sums
        bsum = cols.sum(axis=1)
        d = cols - (bsum / m)[:, None]
        bm2 = (d * d).sum(axis=1)
        np.minimum(self.min, cols.min(axis=1), out=self.min)
        np.maximum(self.max, cols.max(axis=1), out=self.max)
        self._combine(m, bsum, 0.0, bm2)

    def merge(self, other):
        """Fold in another accumulator (``self`` first, then ``other``)."""
        np.minimum(self.min, other.min, out=self.min)
        np.maximum(self.max, other.max, out=self.max)
        self._combine(other.count, other.total, other.comp, other.m2)

    def _combine(self, nb, total_b, comp_b, m2_b):
        if nb == 0:
            return
        na = self.count
        if na == 0:
            self.count = int(nb)
            self.total = np.array(total_b, dtype=float)
            self.comp = np.zeros_like(self.total) + comp_b
            self.m2 = np.array(m2_b, dtype=float)
            return
        n = na + nb
        delta = (total_b + comp_b) / nb - (self.total + self.comp) / na
        self.m2 = self.m2 + m2_b + delta * delta * (float(na) * float(nb) / float(n))
        a, b = self.total, np.asarray(total_b, dtype=float)
        t = a + b
        c = np.where(np.abs(a) >= np.abs(b), (a - t) + b, (b - t) + a)
        self.comp = self.comp + comp_b + c
        self.total = t
        self.count = int(n)

    def state(self):
        """(count, total, comp, m2): what :meth:`from_state` needs (without min/max)."""
        return self.count, self.total, self.comp, self.m2

    def merge_state(self, state):
        """Fold in a :meth:`state` of another accumulator (min/max untouched)."""
        self._combine(*state)

    @property
    def mean(self):
        return (self.total + self.comp) / self.count if self.count else np.full_like(
            self.total, np.nan)

    @property
    def sigma(self):
        """Sample standard deviation (divisor n - 1, as n2p2); 0 for n < 2."""
        if self.count < 2:
            return np.zeros_like(self.m2)
        return np.sqrt(self.m2 / (self.count - 1))

    def table(self):
        """(n, 4) array: min, max, mean, sigma."""
        return np.column_stack([self.min, self.max, self.mean, self.sigma])


# ---------------------------------------------------------------------------------------
# Histograms (n2p2 uses GSL's gsl_histogram)
# ---------------------------------------------------------------------------------------

def histogram_edges(lo, hi, nbins):
    """Bin edges of n2p2's SF histograms, (n_sf, nbins + 1).

    n2p2 (Dataset::writeSymmetryFunctionHistograms) uses ``nbins - 1`` bins over
    [min, max] plus one more bin of the same width, i.e. ``nbins`` uniform bins over
    [min, max + (max - min)/(nbins - 1)]; GSL's edges are
    ``edge_i = (n - i)/n * xmin + i/n * xmax``.
    """
    lo = np.atleast_1d(np.asarray(lo, dtype=float))
    hi = np.atleast_1d(np.asarray(hi, dtype=float))
    top = hi + (hi - lo) / (nbins - 1)
    return _uniform_edges(lo, top, nbins)


def _uniform_edges(xmin, xmax, n):
    i = np.arange(n + 1, dtype=float)
    f1 = (n - i) / float(n)
    f2 = i / float(n)
    return f1[None, :] * np.asarray(xmin, float)[:, None] + f2[None, :] * np.asarray(
        xmax, float)[:, None]


def histogram_counts(values, edges, active=None, chunk_values=1 << 21):
    """Counts per bin of every column of ``values`` (m, n_sf) -> int64 (n_sf, n_bins).

    A value x is counted in bin i when ``edges[s, i] <= x < edges[s, i + 1]`` (GSL's
    rule; values outside [edges[s, 0], edges[s, -1]) are not counted).  ``active``
    (bool, n_sf) selects the columns to count (others stay 0).
    """
    values = np.asarray(values, dtype=float)
    n_sf, n = edges.shape[0], edges.shape[1] - 1
    counts = np.zeros(n_sf * n, dtype=np.int64)
    cols = np.arange(n_sf) if active is None else np.flatnonzero(active)
    if len(cols) == 0 or values.shape[0] == 0:
        return counts.reshape(n_sf, n)
    e = edges[cols]
    lo, hi = e[:, 0], e[:, -1]
    width = hi - lo
    safe = np.where(width > 0, width, 1.0)
    rows = max(1, chunk_values // len(cols))
    ci = np.arange(len(cols))[None, :]
    for start in range(0, values.shape[0], rows):
        x = values[start:start + rows][:, cols]
        inside = (x >= lo) & (x < hi)
        idx = np.floor((x - lo) / safe * n)
        idx = np.clip(np.nan_to_num(idx, nan=0.0), 0, n - 1).astype(np.int64)
        for _ in range(8):          # the linear guess is off by at most one bin
            down = x < e[ci, idx]
            idx -= down & (idx > 0)
            up = x >= e[ci, idx + 1]
            idx += up & (idx < n - 1)
            if not (down.any() or up.any()):
                break
        flat = (cols[None, :] * n + idx)[inside]
        counts += np.bincount(flat, minlength=n_sf * n)
    return counts.reshape(n_sf, n)


def _file_header(title, columns):
    from hpcnnp.io.n2p2_output import file_header
    return file_header(title, columns)


def sfinfo_lines(sf, index, cutoff_type, cutoff_alpha):
    """n2p2's ``#SFINFO`` parameter lines (SymFnc*::parameterInfo) of one SF.

    ``index`` is the 1-based sorted SF index; ``sf`` a
    :class:`hpcnnp.io.n2p2.SymmetryFunction`.
    """
    from hpcnnp.descriptors.sftypes import parameter_info

    return [f"#SFINFO {name:<12}{value}\n"
            for name, value in parameter_info(sf, index, cutoff_type, cutoff_alpha)]


_SF_HISTO_HEADER = None


def sf_histogram_text(sf, index, cutoff_type, cutoff_alpha, row, edges, counts):
    """The text of one ``sf.ZZZ.SSSS.histo`` file, as n2p2 writes it.

    ``row`` = (min, max, mean, sigma); ``edges`` (nbins + 1,), ``counts`` (nbins,).
    """
    global _SF_HISTO_HEADER
    if _SF_HISTO_HEADER is None:
        _SF_HISTO_HEADER = _file_header("Symmetry function histogram.", [
            (16, "symfunc_l", "Symmetry function value, left bin limit."),
            (16, "symfunc_r", "Symmetry function value, right bin limit."),
            (16, "hist", "Histogram count.")])
    out = sfinfo_lines(sf, index, cutoff_type, cutoff_alpha)
    out += ["#SFINFO min         %15.8E\n" % row[0], "#SFINFO max         %15.8E\n" % row[1],
            "#SFINFO mean        %15.8E\n" % row[2], "#SFINFO sigma       %15.8E\n" % row[3]]
    out.append(_SF_HISTO_HEADER)
    es = ["%16.8E" % x for x in np.asarray(edges, dtype=float).tolist()]
    cache = {}
    cs = [cache[x] if x in cache else cache.setdefault(x, "%16.8E" % x)
          for x in np.asarray(counts, dtype=float).tolist()]
    out += [f"{es[i]} {es[i + 1]} {c}\n" for i, c in enumerate(cs)]
    return "".join(out)


def memory_estimate_bytes(n_sf, neighbours, forces, neighbour_sfs=None):
    """Bytes of the SF values (and, with ``forces``, derivatives) of one atom.

    ``n_sf * 8`` plus ``(n_sf + neighbour_sfs) * 3 * 8``, where ``neighbour_sfs`` is
    the sum over the neighbours of the number of SFs that depend on each neighbour's
    element (compact layout); by default ``neighbours * n_sf`` (dense bound
    ``(neighbours + 1) * n_sf * 3 * 8``).
    """
    if neighbour_sfs is None:
        neighbour_sfs = neighbours * n_sf
    return 8 * n_sf + (24 * (n_sf + neighbour_sfs) if forces else 0)


# ---------------------------------------------------------------------------------------
# MPI helpers (serial when comm is None)
# ---------------------------------------------------------------------------------------

class _Comm:
    def __init__(self, comm):
        self.comm = comm if comm is not None and comm.Get_size() > 1 else None
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        if self.comm is not None:
            from mpi4py import MPI
            self._ops = {"min": MPI.MIN, "max": MPI.MAX, "sum": MPI.SUM}

    def allreduce(self, arr, op):
        arr = np.ascontiguousarray(arr)
        if self.comm is None:
            return arr
        out = np.empty_like(arr)
        self.comm.Allreduce(arr, out, op=self._ops[op])
        return out

    def reduce_sum(self, arr):
        """Sum of int/float arrays on rank 0 (other ranks get None)."""
        arr = np.ascontiguousarray(arr)
        if self.comm is None:
            return arr
        out = np.empty_like(arr) if self.rank == 0 else None
        self.comm.Reduce(arr, out, op=self._ops["sum"], root=0)
        return out

    def idle_barrier(self, poll=0.005):
        """Barrier that sleeps while waiting (MPI implementations busy-poll in
        blocking collectives, which steals the CPU of ranks still working when
        ranks share cores)."""
        if self.comm is None:
            return
        req = self.comm.Ibarrier()
        while not req.Test():
            time.sleep(poll)

    def allgather(self, obj):
        return [obj] if self.comm is None else self.comm.allgather(obj)

    def gather(self, obj):
        return [obj] if self.comm is None else self.comm.gather(obj, root=0)

    def bcast(self, obj):
        return obj if self.comm is None else self.comm.bcast(obj, root=0)


# ---------------------------------------------------------------------------------------
# Per-rank storage of SF values (for the histograms)
# ---------------------------------------------------------------------------------------

class _ValueStore:
    """Row blocks per element: in memory up to ``limit`` bytes, then in a temp file."""

    def __init__(self, n_sf, limit, spill_dir=None):
        self.n_sf = dict(n_sf)
        self.limit = limit
        self.spill_dir = spill_dir
        self.blocks = {el: [] for el in n_sf}
        self.files = {}
        self.file_rows = {el: 0 for el in n_sf}
        self.nbytes = 0

    def add(self, el, block):
        block = np.ascontiguousarray(block, dtype=float)
        if self.nbytes + block.nbytes <= self.limit:
            self.blocks[el].append(block)
            self.nbytes += block.nbytes
            return
        f = self.files.get(el)
        if f is None:
            f = self.files[el] = tempfile.TemporaryFile(prefix="hpcnnp-scale-",
                                                        dir=self.spill_dir)
        f.write(block.tobytes())
        self.file_rows[el] += block.shape[0]

    @property
    def spilled_bytes(self):
        return sum(8 * self.n_sf[el] * r for el, r in self.file_rows.items())

    def chunks(self, el, rows=1 << 16):
        """The stored rows of ``el`` as (k, n_sf) arrays of at most ~``rows`` rows."""
        n_sf = self.n_sf[el]
        group, size = [], 0
        for b in self.blocks[el]:
            group.append(b)
            size += b.shape[0]
            if size >= rows:
                yield np.concatenate(group)
                group, size = [], 0
        if group:
            yield np.concatenate(group)
        f = self.files.get(el)
        if f is not None:
            f.flush()
            f.seek(0)
            left = self.file_rows[el]
            while left:
                k = min(rows, left)
                data = f.read(8 * n_sf * k)
                yield np.frombuffer(data, dtype=float).reshape(k, n_sf)
                left -= k

    def close(self):
        for f in self.files.values():
            f.close()
        self.files = {}
        self.blocks = {el: [] for el in self.n_sf}


# ---------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------

@dataclass
class ScalingResult:
    """What :func:`run_scaling` / :func:`compute_scaling` return (same on every rank).

    Attributes
    ----------
    elements : list of str, n2p2 order
    statistics : dict element -> (n_sf, 4) array (min, max, mean, sigma); None after a
        dry run
    n_structures : int
    n_atoms : dict element -> int
    neighbors : dict element -> dict(min, max, mean, per_element=(n_el,) mean
        neighbours of each element) for the central atoms of that element, plus
        key ``"all"``
    memory : dict of bytes for the whole data set: ``values`` (n_sf*8 per atom),
        ``derivatives`` (compact layout: (n_sf + sum over neighbours j of the number of
        SFs depending on j's element)*3*8 per atom, 0 without use_short_forces),
        ``derivatives_dense`` ((neighbours+1)*n_sf*3*8), ``total`` (values +
        derivatives), ``total_dense``; ``per_structure_mean``/``_max`` (of total),
        ``forces`` (bool)
    zero_range : list of (element, sf index 1-based, type, input.nn line, value)
    histograms : dict element -> (edges (n_sf, nbins+1), counts (n_sf, nbins)) on
        rank 0 (None elsewhere or without histograms)
    neighbor_histogram : (max+1, 1 + n_el) int64 on rank 0: all atoms, per element
    files : list of Path written (rank 0)
    log : list of str, the log lines (rank 0)
    timings : dict phase -> seconds
    """

    elements: list
    statistics: dict | None
    n_structures: int
    n_atoms: dict
    neighbors: dict
    memory: dict
    zero_range: list = field(default_factory=list)
    histograms: dict | None = None
    neighbor_histogram: np.ndarray | None = None
    files: list = field(default_factory=list)
    log: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    nbins: int = DEFAULT_NBINS


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------

def _as_settings(settings):
    from hpcnnp.io import n2p2
    if isinstance(settings, n2p2.Settings):
        return settings
    return n2p2.read_settings(settings)


def _first_error(comm, err):
    """Same HpcnnpError on every rank: the earliest (by line) of all ranks, or None."""
    if err is None:
        key = None
    else:
        line = getattr(err, "line", None)
        key = (0 if line is None else int(line), str(err), type(err).__name__,
               getattr(err, "path", None), getattr(err, "message", None))
    comm.idle_barrier()
    keys = [k for k in comm.allgather(key) if k is not None]
    if not keys:
        return None
    line, text, kind, path, message = min(keys, key=lambda k: k[0])
    if err is not None and str(err) == text:
        return err
    if kind == "InputFileError" and path is not None:
        return InputFileError(path, line or None, message)
    return HpcnnpError(text)


class _NeighbourTally:
    """Pass-1 sums of one rank: atoms and neighbours per element, the histogram of
    neighbour counts and the memory estimate of memorised SF values/derivatives.

    Parameters
    ----------
    n_sf : (n_el,) int array
        SFs per element.
    dep : (n_el, n_el) int array
        SFs of central element e that depend on neighbours of element q.
    forces : bool
        Count SF derivatives too (use_short_forces).
    """

    def __init__(self, n_sf, dep, forces):
        n_el = len(n_sf)
        self.n_el, self.n_sf, self.dep, self.forces = n_el, n_sf, dep, forces
        self.n_atoms = np.zeros(n_el, dtype=np.int64)
        self.nb_min = np.full(n_el, np.iinfo(np.int64).max, dtype=np.int64)
        self.nb_max = np.zeros(n_el, dtype=np.int64)
        self.nb_sum = np.zeros((n_el, n_el), dtype=np.int64)  # central x neighbour element
        self.hist = np.zeros((1, 1 + n_el), dtype=np.int64)
        self.mem = np.zeros(3, dtype=np.int64)       # values, derivatives compact, dense
        self.mem_struct_max = np.zeros(1, dtype=np.int64)

    def _grow_hist(self, rows):
        if rows > self.hist.shape[0]:
            self.hist = np.vstack([self.hist, np.zeros((rows - self.hist.shape[0],
                                                        1 + self.n_el), dtype=np.int64)])

    def add(self, elem, start, idx):
        """Count one structure.

        Parameters
        ----------
        elem : (n,) int64 array
            Element index of each atom.
        start, idx : arrays
            Neighbour list in CSR form (first neighbour of each atom, neighbours).

        Returns
        -------
        (n, n_el) int64 array
            Neighbours of each element per atom.
        """
        n_el, n_sf = self.n_el, self.n_sf
        n = len(elem)
        nn = np.diff(np.asarray(start, dtype=np.int64))
        owner = np.repeat(np.arange(n), nn)
        per = np.bincount(owner * n_el + elem[np.asarray(idx, dtype=np.int64)],
                          minlength=n * n_el).reshape(n, n_el)
        self.n_atoms += np.bincount(elem, minlength=n_el)
        np.minimum.at(self.nb_min, elem, nn)
        np.maximum.at(self.nb_max, elem, nn)
        np.add.at(self.nb_sum, elem, per)
        self._grow_hist((int(nn.max()) if n else 0) + 1)
        np.add.at(self.hist, (nn, 0), 1)
        np.add.at(self.hist, (nn, 1 + elem), 1)
        v = int((8 * n_sf[elem]).sum())
        d = dd = 0
        if self.forces:
            d = int(24 * (n_sf[elem].sum() + (per * self.dep[elem]).sum()))
            dd = int((24 * n_sf[elem] * (nn + 1)).sum())
        self.mem += (v, d, dd)
        self.mem_struct_max[0] = max(self.mem_struct_max[0], v + d)
        return per

    def reduce(self, c):
        """Sum over the ranks of ``c`` (collective); the histogram ends on rank 0 only
        (None elsewhere)."""
        self.n_atoms = c.allreduce(self.n_atoms, "sum")
        self.nb_min = c.allreduce(self.nb_min, "min")
        self.nb_max = c.allreduce(self.nb_max, "max")
        self.nb_sum = c.allreduce(self.nb_sum, "sum")
        self.mem = c.allreduce(self.mem, "sum")
        self.mem_struct_max = c.allreduce(self.mem_struct_max, "max")
        self._grow_hist(int(c.allreduce(np.array([self.hist.shape[0]], dtype=np.int64),
                                        "max")[0]))
        hist = c.reduce_sum(self.hist)
        self.hist = hist if c.rank == 0 else None

    def neighbors(self, elements):
        """Neighbour numbers per central element and for ``"all"``: ``min``, ``max``,
        ``mean`` and ``per_element`` (mean neighbours of each element)."""
        n_el, n_atoms, nb_min, nb_max, nb_sum = (self.n_el, self.n_atoms, self.nb_min,
                                                 self.nb_max, self.nb_sum)
        neighbors = {}
        for e, el in enumerate(elements):
            na = int(n_atoms[e])
            neighbors[el] = dict(
                min=int(nb_min[e]) if na else 0, max=int(nb_max[e]) if na else 0,
                mean=float(nb_sum[e].sum()) / na if na else 0.0,
                per_element=nb_sum[e] / na if na else np.zeros(n_el))
        tot = int(n_atoms.sum())
        present = n_atoms > 0
        neighbors["all"] = dict(min=int(nb_min[present].min()) if tot else 0,
                                max=int(nb_max.max()) if tot else 0,
                                mean=float(nb_sum.sum()) / tot if tot else 0.0,
                                per_element=nb_sum.sum(axis=0) / tot if tot else
                                np.zeros(n_el))
        return neighbors

    def memory(self, count):
        """Memory estimate (bytes) of the whole data set of ``count`` structures."""
        mem = self.mem
        return dict(values=int(mem[0]), derivatives=int(mem[1]),
                    derivatives_dense=int(mem[2]), total=int(mem[0] + mem[1]),
                    total_dense=int(mem[0] + mem[2]),
                    per_structure_mean=float(mem[0] + mem[1]) / count,
                    per_structure_max=int(self.mem_struct_max[0]), forces=self.forces)


class ScalingRun:
    """One nnp-scaling run in steps: :meth:`scan` (pass 1), :meth:`compute` (pass 2),
    :meth:`write` (rank 0 writes; collective).  :func:`run_scaling` does all three.

    Parameters
    ----------
    settings : path or hpcnnp.io.n2p2.Settings
        ``input.nn`` (needs the symmetry functions and the network keywords).
    data : path
        ``input.data``.
    comm : mpi4py communicator, optional
        Distribute the structures round robin over its ranks (collective calls).
    nbins : int >= 2
        Histogram bins (n2p2's NBINS).
    histograms, neighbors_out, function_data : bool
        Which optional files :meth:`write` produces.
    cache_limit : int
        Bytes of SF values a rank keeps in memory for the histograms; the rest goes
        to a temporary file in ``spill_dir`` (default: the system's temp folder).
    progress_interval : float
        Seconds between progress lines (0: none).
    log, progress : callable(str), optional
        Receive the log lines and the progress lines (rank 0 only).
    """

    def __init__(self, settings, data, *, comm=None, nbins=DEFAULT_NBINS, histograms=True,
                 neighbors_out=True, function_data=False, cache_limit=DEFAULT_CACHE_LIMIT,
                 spill_dir=None, progress_interval=10.0, log=None, progress=None):
        from hpcnnp.potential import Potential

        self.c = _Comm(comm)
        if isinstance(nbins, bool) or not isinstance(nbins, (int, np.integer)) or nbins < 2:
            raise HpcnnpError(f"number of histogram bins must be an integer >= 2, "
                              f"got {nbins!r}")
        self.nbins = int(nbins)
        self.histograms = bool(histograms)
        self.neighbors_out = bool(neighbors_out)
        self.function_data = bool(function_data)
        self.cache_limit = int(cache_limit)
        self.spill_dir = spill_dir
        self.progress_interval = float(progress_interval)
        self._log_cb = log if self.c.rank == 0 else None
        self._progress_cb = progress if self.c.rank == 0 else None
        self.log_lines = []
        self.data = os.fspath(data)
        self.settings = st = _as_settings(settings)
        self.elements = list(st.elements)
        self.n_el = len(self.elements)
        self.sfs = {el: st.symmetry_functions[el] for el in self.elements}
        self.n_sf = {el: len(self.sfs[el]) for el in self.elements}
        self.forces = st.get_flag("use_short_forces")
        self.potential = Potential(st)          # PotentialError: unsupported SF types ...
        self.cutoff = float(self.potential.cutoff)
        lut = np.full(128, -1, dtype=np.int64)
        from ase.data import atomic_numbers
        self.z = {el: atomic_numbers[el] for el in self.elements}
        for e, el in enumerate(self.elements):
            lut[self.z[el]] = e
        self._lut = lut
        self.timings = {}
        self.scanned = False
        self._store = None
        self._fdata = None
        self.total_structures = None

    # ------------------------------------------------------------------ logging
    def log(self, text=""):
        if self.c.rank != 0:
            return
        for line in str(text).split("\n"):
            self.log_lines.append(line)
            if self._log_cb is not None:
                self._log_cb(line)

    def _progress(self, what, total):
        """Progress reporter of one pass over the structures (rank 0 reports)."""
        lines = bool(self._progress_cb and self.progress_interval)
        return Progress(f"hpcnnp scale: {what}", total=total, unit="structures",
                        out=self._progress_cb if lines else False, comm=self.c,
                        interval=self.progress_interval or float("inf"))

    def _structures(self):
        """(index, atoms) for every structure of the file; atoms is None for the
        structures of other ranks, which are only delimited, not parsed (parse errors
        of a structure are raised by the rank that owns it, with the file's line)."""
        from hpcnnp.io import n2p2
        for k, (first, lines) in enumerate(_split_structures(self.data)):
            if not self._owned(k):
                yield k, None
                continue
            stream = io.StringIO("".join(lines))
            stream.name = self.data
            try:
                images = list(n2p2.iter_data(stream, self.elements))
            except InputFileError as exc:
                line = None if exc.line is None else exc.line + first - 1
                message = _BEGAN_RE.sub(lambda m: m.group(1) + str(int(m.group(2)) + first - 1),
                                        exc.message)
                raise InputFileError(self.data, line, message) from None
            for atoms in images:            # exactly one for a well-formed block
                atoms.info["n2p2_index"] = k
                atoms.info["n2p2_line"] = atoms.info.get("n2p2_line", 1) + first - 1
                yield k, atoms

    def _owned(self, k):
        return k % self.c.size == self.c.rank

    def _structure_error(self, atoms, k, exc):
        line = atoms.info.get("n2p2_line")
        return InputFileError(self.data, line, f"structure {k + 1}: {exc}")

    # ------------------------------------------------------------------ pass 1
    def _count_structures(self):
        """Structures in the data file (rank 0 counts; None if it cannot); collective."""
        total = None
        if self.c.rank == 0:
            try:
                from hpcnnp.io.n2p2 import count_structures
                total = count_structures(self.data)
            except (OSError, ImportError):
                total = None
        return self.c.bcast(total)

    def scan(self):
        """Pass 1: neighbour lists of every structure (validation, neighbour
        statistics, memory estimate).  Collective."""
        t0 = time.perf_counter()
        self._header()
        self.total_structures = total = self._count_structures()
        n_sf = np.array([self.n_sf[el] for el in self.elements], dtype=np.int64)
        tally = _NeighbourTally(n_sf, self._neighbor_sf_counts(), self.forces)
        self._nbr = []                                      # (k, elem, counts) owned
        progress = self._progress("pass 1 (neighbour lists)", total)
        err = None
        count = 0
        try:
            for k, atoms in self._structures():
                progress.update(k)
                count = k + 1
                if err is not None or atoms is None:
                    continue
                try:
                    if len(atoms) == 0:
                        raise StructureError("structure has no atoms")
                    nl, elem = self.potential.neighbor_list(atoms)
                except HpcnnpError as exc:
                    err = self._structure_error(atoms, k, exc)
                    continue
                elem = np.asarray(elem, dtype=np.int64)
                per = tally.add(elem, *nl.arrays()[:2])
                if self.neighbors_out:
                    self._nbr.append((k, elem.astype(np.int16), per.astype(np.int32)))
        except HpcnnpError as exc:        # parse errors: identical on every rank
            if err is None or (getattr(exc, "line", None) or 0) < (err.line or 0):
                err = exc
        err = _first_error(self.c, err)
        if err is None:
            progress.update(count)
        progress.close(ok=err is None)
        if err is not None:
            raise err
        if count == 0:
            raise InputFileError(self.data, None, "no structures (empty file?): nothing "
                                 "to compute statistics from")
        self.n_structures = count
        tally.reduce(self.c)
        self.neighbor_histogram = tally.hist
        self.n_atoms = {el: int(tally.n_atoms[e]) for e, el in enumerate(self.elements)}
        self.neighbors = tally.neighbors(self.elements)
        self.memory = tally.memory(count)
        self.timings["pass1"] = time.perf_counter() - t0
        self._log_scan()
        missing = [el for el in self.elements if self.n_atoms[el] == 0]
        if missing:
            raise InputFileError(self.data, None,
                                 f"no atoms of element(s) {' '.join(missing)} (listed in "
                                 f"{self.settings.path}): their symmetry-function "
                                 "statistics cannot be computed; remove them from "
                                 "'elements' or add structures that contain them")
        self.scanned = True
        return self

    def _neighbor_sf_counts(self):
        """(n_el, n_el) int64: number of SFs of central element e that depend on
        neighbours of element q (n2p2's checkRelevantElement; weighted types depend on
        every element).  With forces, hpcnnp's C core and n2p2 store dG/dr per
        neighbour only for these SFs."""
        idx = {el: e for e, el in enumerate(self.elements)}
        dep = np.zeros((self.n_el, self.n_el), dtype=np.int64)
        for e, el in enumerate(self.elements):
            for sf in self.sfs[el]:
                if sf.e1 is None and sf.e2 is None:
                    dep[e] += 1
                else:
                    for q in {sf.e1, sf.e2} - {None}:
                        dep[e, idx[q]] += 1
        return dep

    def _header(self):
        st = self.settings
        self.log("hpcnnp scale: symmetry-function statistics (n2p2's nnp-scaling)")
        self.log(f"settings   : {st.path}")
        self.log(f"data       : {self.data}")
        self.log(f"elements   : {' '.join(self.elements)} (n2p2 order); SFs per element: "
                 + ", ".join(f"{el} {self.n_sf[el]}" for el in self.elements))
        self.log(f"cutoff     : {self.cutoff:g} (largest SF cutoff; neighbours are all "
                 "atoms and periodic images within it)")
        self.log(f"scaling    : {st.scaling_type} (scale_min_short {st.scale_min:g}, "
                 f"scale_max_short {st.scale_max:g}); statistics are of the raw SFs")
        self.log(f"histograms : {self.nbins} bins" if self.histograms else
                 "histograms : off")
        if self.c.size > 1:
            self.log(f"MPI        : {self.c.size} ranks; structure k is evaluated by "
                     f"rank k % {self.c.size}")
        for w in st.warnings:
            self.log(f"warning: {w}")

    def _log_scan(self):
        els = self.elements
        t = self.timings["pass1"]
        self.log("")
        self.log(f"Pass 1 (neighbour lists): {self.n_structures} structures, "
                 f"{sum(self.n_atoms.values())} atoms in {t:.2f} s "
                 f"({self.n_structures / t if t > 0 else 0.0:.1f} structures/s)")
        self.log("")
        self.log(f"Neighbours within r_c = {self.cutoff:g} per central element "
                 "(min, max, mean; then the mean number of neighbours of each element):")
        self.log(f"  {'el':>3} {'atoms':>10} {'min':>6} {'max':>6} {'mean':>8}   "
                 + " ".join(f"{el:>7}" for el in els))
        for el in els + ["all"]:
            nb = self.neighbors[el]
            na = sum(self.n_atoms.values()) if el == "all" else self.n_atoms[el]
            self.log(f"  {el:>3} {na:>10d} {nb['min']:>6d} {nb['max']:>6d} "
                     f"{nb['mean']:>8.2f}   "
                     + " ".join(f"{x:>7.2f}" for x in nb["per_element"]))
        m = self.memory
        self.log("")
        self.log("Estimated memory for training with memorize_symfunc_results "
                 "(whole data set, 8-byte doubles):")
        rows = [("SF values: n_sf x 8 B per atom", m["values"])]
        if self.forces:
            rows += [("SF derivatives: (n_sf + sum_j n_sf(el_j)) x 3 x 8 B per atom",
                      m["derivatives"]),
                     ("  [dense bound: (neighbours + 1) x n_sf x 3 x 8 B per atom]",
                      m["derivatives_dense"])]
        rows.append(("total (values + derivatives)", m["total"]))
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.log(f"  {label:<{width}} : {_bytes(value)}")
        if self.forces:
            self.log("  (derivatives: dG/dr of the atom itself and, per neighbour j, of the "
                     "SFs that depend on j's element -- the layout of hpcnnp's C core and "
                     "of n2p2)")
        else:
            self.log("  (no use_short_forces: energies only, no SF derivatives)")
        self.log(f"  per structure: mean {_bytes(m['per_structure_mean'])}, "
                 f"max {_bytes(m['per_structure_max'])}")
        if self.c.size > 1:
            self.log(f"  per rank with {self.c.size} ranks: ~{_bytes(m['total'] / self.c.size)}")
        hist_mem = m["values"] / self.c.size
        self.log(f"This run keeps the SF values for the histograms: ~{_bytes(hist_mem)} per "
                 f"rank (in memory up to {_bytes(self.cache_limit)}, the rest in a "
                 "temporary file)")

    # ------------------------------------------------------------------ pass 2
    def compute(self):
        """Pass 2: symmetry functions, statistics, histograms.  Collective."""
        if not self.scanned:
            self.scan()
        t0 = time.perf_counter()
        els = self.elements
        stats = {el: RunningStats(self.n_sf[el]) for el in els}
        store = None
        if self.histograms:
            store = self._store = _ValueStore(self.n_sf, self.cache_limit, self.spill_dir)
        fdata = None
        if self.function_data:
            fdata = self._fdata = _BlockFile(self.spill_dir)
        progress = self._progress("pass 2 (symmetry functions)", self.n_structures)
        err = None
        try:
            for k, atoms in self._structures():
                progress.update(k)
                if err is not None or atoms is None:
                    continue
                try:
                    G = self.potential.symmetry_functions(atoms)
                except HpcnnpError as exc:
                    err = self._structure_error(atoms, k, exc)
                    continue
                elem = self._lut[np.asarray(atoms.numbers)]
                for e, el in enumerate(els):
                    sel = np.flatnonzero(elem == e)
                    if len(sel) == 0:
                        continue
                    block = np.array([G[i] for i in sel])
                    if not np.isfinite(block).all():
                        err = self._structure_error(
                            atoms, k, "non-finite symmetry-function value")
                        break
                    stats[el].add(block)
                    if store is not None:
                        store.add(el, block)
                if fdata is not None and err is None:
                    fdata.add(_function_data_block(atoms, G, self.z))
        except HpcnnpError as exc:
            err = exc
        err = _first_error(self.c, err)
        if err is None:
            progress.update(self.n_structures)
        progress.close(ok=err is None)
        if err is not None:
            self.close()
            raise err
        t1 = time.perf_counter()
        self.timings["pass2"] = t1 - t0
        table = self._reduce(stats)
        self.statistics = table
        self.zero_range = []
        for el in els:
            flat = np.flatnonzero(table[el][:, 0] == table[el][:, 1])
            for s in flat:
                sf = self.sfs[el][s]
                self.zero_range.append((el, int(s) + 1, sf.sftype, sf.line,
                                        float(table[el][s, 0])))
        hist = None
        if self.histograms:
            hist = {}
            for el in els:
                lo, hi = table[el][:, 0], table[el][:, 1]
                edges = histogram_edges(lo, hi, self.nbins)
                active = hi > lo
                counts = np.zeros((self.n_sf[el], self.nbins), dtype=np.int64)
                for chunk in store.chunks(el):
                    counts += histogram_counts(chunk, edges, active)
                counts = self.c.reduce_sum(counts)
                hist[el] = (edges, counts) if self.c.rank == 0 else None
            spilled = self.c.allreduce(np.array([store.spilled_bytes], dtype=np.int64),
                                       "sum")[0]
            store.close()
            self._spilled = int(spilled)
        self.histogram_data = hist if self.c.rank == 0 else None
        self.timings["reduce"] = time.perf_counter() - t1
        self._log_compute()
        return self

    def _reduce(self, stats):
        """Exact, order-fixed reduction over the ranks; the same table on every rank."""
        c = self.c
        table = {}
        for el in self.elements:
            s = stats[el]
            gmin = c.allreduce(s.min, "min")
            gmax = c.allreduce(s.max, "max")
            states = c.gather(s.state())
            if c.rank == 0:
                acc = RunningStats(self.n_sf[el])
                for st in states:               # fixed order: rank 0, 1, ..., size-1
                    acc.merge_state(st)
                acc.min, acc.max = gmin, gmax
                tab = acc.table()
            else:
                tab = None
            table[el] = c.bcast(tab)
        return table

    def _log_compute(self):
        t = self.timings["pass2"]
        n_at = sum(self.n_atoms.values())
        self.log("")
        self.log(f"Pass 2 (symmetry functions): {self.n_structures} structures in {t:.2f} s "
                 f"({self.n_structures / t if t > 0 else 0.0:.2f} structures/s, "
                 f"{n_at / t if t > 0 else 0.0:.0f} atoms/s on {self.c.size} rank(s)); "
                 f"reduction and histograms {self.timings['reduce']:.2f} s")
        if self.histograms and self._spilled:
            self.log(f"  ({_bytes(self._spilled)} of SF values went through temporary "
                     "files)")
        self.log("")
        self.log("Symmetry-function ranges per element (smallest and largest max - min, "
                 "mean sigma):")
        for el in self.elements:
            tab = self.statistics[el]
            rng = tab[:, 1] - tab[:, 0]
            self.log(f"  {el:>3}: {self.n_sf[el]} SFs, {self.n_atoms[el]} atoms, range "
                     f"{rng.min():.3e} ... {rng.max():.3e}, mean sigma {tab[:, 3].mean():.3e}")
        for el in self.elements:
            tab = self.statistics[el]
            tiny = np.flatnonzero((tab[:, 1] > tab[:, 0]) & (np.abs(tab[:, 1]) < TINY_SF)
                                  & (np.abs(tab[:, 0]) < TINY_SF))
            if len(tiny):
                self.log(f"note: {el}: {len(tiny)} SF(s) stay below {TINY_SF:g} on this data "
                         "set (essentially unused; scaling by their tiny max - min gives "
                         "huge factors): SF " + " ".join(str(i + 1) for i in tiny))
        if self.zero_range:
            self._warn_zero_range()

    def _warn_zero_range(self):
        st = self.settings.scaling_type
        what = {"scale": "scale_symmetry_functions divides by max - min",
                "scalecenter": "scale_symmetry_functions divides by max - min",
                "scalesigma": "scale_symmetry_functions_sigma divides by sigma"}.get(
            st, f"scaling '{st}' does not divide by the range, but the SF carries no "
                "information")
        from collections import Counter

        per_el = Counter(el for el, *_ in self.zero_range)
        counts = ", ".join(f"{el} {n}" for el, n in per_el.items())
        first = "; ".join(f"{el} SF {s} (type {t}, {self.settings.path} line {line})"
                          for el, s, t, line, v in self.zero_range[:3])
        msg = (f"{len(self.zero_range)} symmetry function(s) have zero range (min == max) "
               f"in {self.data} ({counts}), e.g. {first}: {what}; hpcnnp maps them to "
               "scale_min (n2p2 would divide by zero); no histogram is written for them "
               "(full list in the log)")
        self.log("zero-range SFs: " + "; ".join(
            f"{el} SF {s} (type {t}, line {line}, value {v:.6e})"
            for el, s, t, line, v in self.zero_range))
        self.log(f"warning: {msg}")
        if self.c.rank == 0:
            warnings.warn(msg, ScalingWarning, stacklevel=3)

    # ------------------------------------------------------------------ output
    def write(self, output_dir):
        """Write the files into ``output_dir`` (rank 0; collective).  Returns the paths.

        Files streamed from all ranks (neighbors.out, function.data) are received by
        rank 0 in structure order; if rank 0 cannot write, it still drains the
        messages so that no rank is left waiting, and every rank raises the error."""
        out = Path(output_dir)
        c = self.c
        files = AtomicFiles(out) if c.rank == 0 else None
        err = None
        written = []
        try:
            if c.rank == 0:
                try:
                    out.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    err = exc
            if self.neighbors_out:
                err = self._stream_file(files, NEIGHBOR_OUT_FILE, self._neighbors_out_header(),
                                        self._neighbors_out_payloads(), 11, err)
                self._nbr = []
            if self.function_data:
                err = self._stream_file(files, FUNCTION_DATA_FILE, "",
                                        self._fdata.blocks(), 12, err)
            if c.rank == 0 and err is None:
                self._write_rank0(files)
                self.log("")
                self.log(f"Files written to {out}: {SCALING_FILE}, {NEIGHBOR_HISTO_FILE}"
                         + (f", {NEIGHBOR_OUT_FILE}" if self.neighbors_out else "")
                         + (f", {FUNCTION_DATA_FILE}" if self.function_data else "")
                         + (f", {self._n_histo} x sf.ZZZ.SSSS.histo" if self.histograms
                            else "")
                         + f", {LOG_FILE}")
                with files.open(LOG_FILE) as fh:
                    fh.write("\n".join(self.log_lines) + "\n")
                written = files.commit(last=SCALING_FILE)   # complete set: scaling.data
        except OSError as exc:
            err = exc
        except HpcnnpError as exc:
            err = exc
        finally:
            if files is not None and files.files:
                files.abort()
            if self._fdata is not None:
                self._fdata.close()
        if isinstance(err, OSError):
            err = HpcnnpError(f"{out}: cannot write the output files: {err}")
        err = _first_error(c, err)
        if err is not None:
            raise err
        return written

    def _stream_file(self, files, name, header, own_blocks, tag, err):
        """Rank 0 writes ``header`` and the blocks of all ranks (structure order) to
        ``name``; returns the first OSError (or the given ``err``)."""
        blocks = self._ordered_blocks(own_blocks, tag)
        if self.c.rank != 0:
            for _ in blocks:
                pass
            return err
        fh = None
        if err is None:
            try:
                fh = files.open(name)
                fh.write(header)
            except OSError as exc:
                err = exc
        try:
            for text in blocks:                 # drain even after an error
                if err is None:
                    try:
                        fh.write(text)
                    except OSError as exc:
                        err = exc
        finally:
            if fh is not None:
                try:
                    fh.finish(sync=err is None)
                except OSError as exc:
                    err = err or exc
        return err

    def _write_rank0(self, files):
        from hpcnnp.io import n2p2
        st = self.settings
        tmp = files.reserve(SCALING_FILE)
        n2p2.write_scaling(tmp, self.elements, self.statistics)
        with files.open(NEIGHBOR_HISTO_FILE) as fh:
            fh.write(self._neighbor_histo_text())
        self._n_histo = 0
        if self.histograms:
            for el in self.elements:
                edges, counts = self.histogram_data[el]
                tab = self.statistics[el]
                for s, sf in enumerate(self.sfs[el]):
                    if not tab[s, 1] > tab[s, 0]:
                        continue
                    name = HISTO_FORMAT % (self.z[el], s + 1)
                    with files.open(name, fsync=False) as fh:
                        fh.write(sf_histogram_text(sf, s + 1, st.cutoff_type, st.cutoff_alpha,
                                                   tab[s], edges[s], counts[s]))
                    self._n_histo += 1

    def _neighbor_histo_text(self):
        hist = self.neighbor_histogram
        n = hist.shape[0]
        cols = [(9, "neigh_l", "Number of neighbors, left bin limit."),
                (9, "neigh_r", "Number of neighbors, right bin limit."),
                (16, "hist", "Histogram count (all atoms).")]
        cols += [(16, f"hist_{el}", f"Histogram count, central atoms of element {el} "
                  "(hpcnnp).") for el in self.elements]
        text = [_file_header("Neighbor count histogram.", cols)]
        edges = _uniform_edges([-0.5], [n - 1 + 0.5], n)[0].tolist()
        fmt = "%9.1f %9.1f" + " %16.8E" * (1 + self.n_el) + "\n"
        for i in range(n):
            text.append(fmt % (edges[i], edges[i + 1], *hist[i].astype(float).tolist()))
        return "".join(text)

    def _ordered_blocks(self, own_blocks, tag):
        """Yield (on rank 0) the per-structure payloads of all ranks in structure order;
        other ranks send theirs.  ``own_blocks``: iterator over this rank's payloads in
        its structure order."""
        c = self.c
        if c.comm is None:
            yield from own_blocks
            return
        if c.rank != 0:
            for block in own_blocks:
                c.comm.send(block, dest=0, tag=tag)
            return
        own = iter(own_blocks)
        for k in range(self.n_structures):
            r = k % c.size
            yield next(own) if r == 0 else c.comm.recv(source=r, tag=tag)

    def _neighbors_out_header(self):
        cols = [(10, "struct", "Structure index (0-based)."),
                (10, "atom", "Atom index in the structure (0-based)."),
                (3, "Z", "Atomic number of the atom."),
                (10, "neigh", f"Neighbours within r_c = {self.cutoff:g} (all periodic "
                 "images, the atom itself excluded).")]
        cols += [(10, f"neigh_{el}", f"Neighbours of element {el}.") for el in self.elements]
        return _file_header("Neighbor counts per atom (hpcnnp scale).", cols)

    def _neighbors_out_payloads(self):
        z = [self.z[el] for el in self.elements]
        fmt = "%10d %10d %3d %10d" + " %10d" * self.n_el + "\n"
        for k, elem, per in self._nbr:
            tot = per.sum(axis=1).tolist()
            rows = per.tolist()
            yield "".join(fmt % (k, i, z[e], tot[i], *rows[i])
                          for i, e in enumerate(elem.tolist()))

    def close(self):
        if self._store is not None:
            self._store.close()
        if self._fdata is not None:
            self._fdata.close()

    def make_result(self, files=()):
        return ScalingResult(
            elements=self.elements, statistics=getattr(self, "statistics", None),
            n_structures=self.n_structures, n_atoms=self.n_atoms, neighbors=self.neighbors,
            memory=self.memory, zero_range=list(getattr(self, "zero_range", [])),
            histograms=getattr(self, "histogram_data", None),
            neighbor_histogram=self.neighbor_histogram, files=list(files),
            log=list(self.log_lines), timings=dict(self.timings), nbins=self.nbins)


#: "... the structure that began at line N" in iter_data's messages
_BEGAN_RE = re.compile(r"(began at\s+line\s+)(\d+)")


def _split_structures(path):
    """Yield ``(first line number, lines)`` per structure of an input.data: from a
    ``begin`` line to the next ``end`` line, without parsing.  Stray lines before a
    ``begin`` (or at the end of the file) stay with the following block, so that
    :func:`hpcnnp.io.n2p2.iter_data` reports them when the block is parsed."""
    from hpcnnp.io.n2p2.data import open_text

    f = open_text(path)[0]
    with f:
        buf, first, in_block = [], 1, False
        for number, line in enumerate(f, start=1):
            if not buf:
                first = number
            buf.append(line)
            if line[:5] == "atom ":
                continue
            tokens = line.split(None, 1)
            key = tokens[0] if tokens else ""
            if key == "begin":
                in_block = True
            elif key == "end" and in_block:
                yield first, buf
                buf, in_block = [], False
        if buf:
            yield first, buf


def _bytes(n):
    n = float(n)
    return f"{n:,.0f} bytes ({n / 2**20:,.2f} MiB = {n / 2**30:,.3f} GiB)"


def _function_data_block(atoms, G, z_of):
    """One structure of n2p2's function.data (Dataset::writeSymmetryFunctionFile)."""
    n = len(atoms)
    out = ["%6d\n" % n]
    for sym, g in zip(atoms.get_chemical_symbols(), G):
        out.append("%3d " % z_of[sym] + "".join(" %14.10f" % x for x in g.tolist()) + "\n")
    energy = float(atoms.calc.results.get("energy", 0.0)) if atoms.calc is not None else 0.0
    e = energy / n
    out.append(" %19.10f %19.10f %19.10f %19.10f\n" % (0.0, e, e, 0.0))
    return "".join(out)


class _BlockFile:
    """Text blocks of one rank in a temporary file (for function.data)."""

    def __init__(self, folder=None):
        self.f = tempfile.TemporaryFile(prefix="hpcnnp-scale-fdata-", dir=folder)
        self.sizes = []

    def add(self, text):
        data = text.encode("ascii")
        self.f.write(data)
        self.sizes.append(len(data))

    def blocks(self):
        self.f.flush()
        self.f.seek(0)
        for size in self.sizes:
            yield self.f.read(size).decode("ascii")

    def close(self):
        if self.f is not None:
            self.f.close()
            self.f = None


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------

def run_scaling(settings="input.nn", data="input.data", output_dir=".", *, nbins=DEFAULT_NBINS,
                comm=None, dry_run=False, **options):
    """nnp-scaling: compute the SF statistics of ``data`` and write the files.

    Parameters
    ----------
    settings : path or Settings
        ``input.nn``.
    data : path
        ``input.data``.
    output_dir : path
        Folder for the files (created if missing).
    nbins : int
        Histogram bins (n2p2's NBINS, >= 2).
    comm : mpi4py communicator, optional
        Collective over its ranks; only rank 0 writes.
    dry_run : bool
        Only pass 1 (validation, neighbour statistics, memory estimate); no files.
    **options
        See :class:`ScalingRun` (histograms, neighbors_out, function_data,
        cache_limit, spill_dir, progress_interval, log, progress).

    Returns
    -------
    ScalingResult

    Raises
    ------
    HpcnnpError
        (usually InputFileError with file and line) on bad input; nothing is written.
    """
    run = ScalingRun(settings, data, comm=comm, nbins=nbins, **options)
    try:
        run.scan()
        if dry_run:
            return run.make_result()
        run.compute()
        files = run.write(output_dir)
        return run.make_result(files)
    finally:
        run.close()


def compute_scaling(settings, data, *, comm=None, nbins=DEFAULT_NBINS, **options):
    """Like :func:`run_scaling` but writes nothing; returns the :class:`ScalingResult`
    (``statistics`` on every rank, ``histograms`` on rank 0)."""
    options.setdefault("neighbors_out", False)
    run = ScalingRun(settings, data, comm=comm, nbins=nbins, **options)
    try:
        run.scan()
        run.compute()
        return run.make_result()
    finally:
        run.close()
