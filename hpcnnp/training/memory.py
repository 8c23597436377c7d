"""Memory of a training run: the estimate printed before training starts, and the
refusal when the ranks of a node would need more than the node has available.

Per rank the peak resident memory is modelled as::

    resident now (interpreter, libraries, this rank's structures, after reading)
    + update candidates (3 int64 keys, order and error per force component)
    + the stored part of P (owned region, 8 bytes per element; the never-touched
      half of the lazily allocated block is never resident)
    + the filter's work arrays (pending factors N_w × fold_every·m, X, Y, H)
    + SF cache: with ``memorize_symfunc_results`` every structure's SFs and dG/dr,
      else the SF values of at most ``capacity`` structures and ``max_bytes``
      (energy candidates) and one force candidate's neighbourhood (SFs and
      dG/dr_a of at most all atoms of the largest structure)
    + Jacobian row buffers
    + the largest structure's evaluation (SFs, dE/dG, forces) and the status /
      checkpoint buffers (16 MiB + a quarter of the stored P, at most 96 MiB:
      32 MiB status chunks, 8 MiB I/O buffer, BLAS work areas).

The memory *available* is ``MemAvailable`` of /proc/meminfo (or the cgroup
limit minus the cgroup's usage, whichever is smaller); the ranks on one node
(same host name) share it.  Measured against the peak RSS of runs at the
seed's scale, see ``benchmarks/bench_seed_scale.py``.
"""

from __future__ import annotations

import os
import resource
import socket
from pathlib import Path

from hpcnnp.errors import HpcnnpError
from hpcnnp.training.kalman import row_partition

__all__ = ["MemoryEstimate", "estimate_memory", "check_memory", "available_memory",
           "current_rss", "peak_rss", "MIB"]

MIB = 1024.0 ** 2
_FIXED = 96 * 1024 ** 2


class MemoryExceeded(HpcnnpError):
    """The training would need more memory than the node has available."""


def current_rss():
    """Resident set size of this process now (bytes)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):      # pragma: no cover - not Linux
        return peak_rss()


def peak_rss():
    """Peak resident set size of this process (bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def available_memory():
    """Bytes a new allocation can get on this node (None if unknown)."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:                                 # pragma: no cover
        pass
    cg = Path("/sys/fs/cgroup")
    try:
        limit = (cg / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cg / "memory.current").read_text())
            free = int(limit) - used
            avail = free if avail is None else min(avail, free)
    except (OSError, ValueError):
        pass
    return avail


class MemoryEstimate(dict):
    """Bytes per part (see the module docstring); ``total`` is their sum."""

    @property
    def total(self):
        return int(sum(self.values()))


def _filter_bytes(cols, cfg, distributed, ranks, rank, group_sizes, m):
    """(stored P bytes, work bytes) of the updaters of this rank; ``group_sizes(a, b)``
    lists the sizes of the decoupled groups of the updater of columns a … b."""
    stored = work = 0
    for (a, b) in cols:
        n = b - a
        if cfg.updater_type != 1:
            work += 16 * n if cfg.gradient.get("type") == 1 else 0
            continue
        for g in group_sizes(a, b):
            r = ranks if distributed and ranks > 1 else 1
            offs = row_partition(g, r)
            nr = int(offs[min(rank, r - 1) + 1] - offs[min(rank, r - 1)])
            # owned region: half of the row block (diagonal triangle + rectangles)
            stored += 8 * (nr * (nr + 1) // 2 + nr * (g - nr) // 2)
        fold = 16
        work += 8 * n * (fold * m + 4 * m + 4)
    return stored, work


def estimate_memory(tr, baseline=None):
    """:class:`MemoryEstimate` of this rank of trainer ``tr`` (after its data are
    read, before the filter exists)."""
    cfg = tr.cfg
    sf_vals = sf_der = big_v = big_d = 0
    n_force = 0
    big_atoms = 0
    for s in tr.structures:
        v, d = tr.sf.estimate_bytes(s)
        sf_vals += v
        sf_der += d
        big_v, big_d = max(big_v, v), max(big_d, d)
        if s.is_train:
            n_force += 3 * s.n
        big_atoms = max(big_atoms, s.n)
    if cfg.memorize:
        cache = sf_vals + sf_der
    else:
        cache = (min(sf_vals, tr.sf.capacity * big_v, max(tr.sf.max_bytes, big_v))
                 + 4 * big_v)
    m = max(sum(tr.rows[p]) for p in tr.props)          # observations per update
    stored, work = _filter_bytes(tr.updater_cols, cfg, tr.distributed_kalman,
                                 tr.comm.size, tr.comm.rank, tr.group_sizes, m)
    width = tr.n_w_total + tr.n_updaters
    jac = 8 * width * max(tr.rows[p][tr.comm.rank] + sum(tr.rows[p]) for p in tr.props)
    # force candidates: keys (3 int64), order (int64), errors (float64), copies
    cands = n_force * (24 + 8 + 8) + 16 * len(tr.structures)
    nsf = max(tr.sf.nsf)
    evaluation = big_atoms * (nsf * 8 * 3 + 200) + big_d
    return MemoryEstimate(
        resident_now=int(current_rss() if baseline is None else baseline),
        candidates=int(cands), kalman_P=int(stored), filter_work=int(work),
        sf_cache=int(cache), jacobian=int(jac), evaluation=int(evaluation),
        buffers=int(min(_FIXED, 16 * 1024 ** 2 + stored // 4)))


def check_memory(estimate, comm, log=None, enforce=True):
    """Sum the estimates of the ranks on each node, compare with what the node has
    available (collective).  Raises :class:`MemoryExceeded` on every rank if a node
    would run out.  Returns (node total, available) of this rank's node."""
    host = socket.gethostname()
    mine = (host, estimate.total, estimate["resident_now"], available_memory())
    alls = comm.allgather(mine)
    need = sum(t for h, t, _, _ in alls if h == host)
    now = sum(r for h, _, r, _ in alls if h == host)
    avail = next((a for h, _, _, a in alls if h == host and a is not None), None)
    if enforce:
        for h in sorted({h for h, _, _, _ in alls}):
            tot = sum(t for hh, t, _, _ in alls if hh == h)
            cur = sum(r for hh, _, r, _ in alls if hh == h)
            av = next((a for hh, _, _, a in alls if hh == h and a is not None), None)
            if av is not None and tot - cur > av:
                ranks = sum(1 for hh, _, _, _ in alls if hh == h)
                raise MemoryExceeded(
                    f"not enough memory on node {h}: the {ranks} rank(s) there need "
                    f"{tot / 2**30:.2f} GiB (estimate, of which {cur / 2**30:.2f} GiB "
                    f"already in use) but only {av / 2**30:.2f} GiB more is available. "
                    "Use more nodes/ranks (P is distributed), a decoupled filter "
                    "(kalman_decoupling element|layer), drop memorize_symfunc_results, "
                    "or --no-memory-check to try anyway")
    return need, now, avail


def format_estimate(est):
    """Log lines of an estimate (MiB)."""
    labels = (("resident_now", "resident now (code + data)"),
              ("candidates", "update candidates"), ("kalman_P", "Kalman P (stored part)"),
              ("filter_work", "filter work arrays"), ("sf_cache", "SF cache"),
              ("jacobian", "Jacobian buffers"), ("evaluation", "largest evaluation"),
              ("buffers", "status/checkpoint/BLAS buffers"))
    lines = ["  %-31s: %10.1f" % (label, est[key] / MIB) for key, label in labels]
    lines.append("  %-31s: %10.1f" % ("total (estimated peak RSS)", est.total / MIB))
    return lines

