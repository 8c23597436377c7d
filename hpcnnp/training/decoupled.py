"""Decoupled extended Kalman filter (DEKF): a block-diagonal covariance P.

The global filter (:class:`~hpcnnp.training.kalman.KalmanFilter`) keeps the
full N_w × N_w covariance of all weights: 8·N_w² bytes (4.9 GB for
N_w = 24 805) and O(m·N_w²) work per update.  The decoupled filter of
Puskorius and Feldkamp (IJCNN 1991; element-decoupled for HDNNPs: Gastegger
and Marquetand, JCTC 11, 2187 (2015), doi:10.1021/acs.jctc.5b00211; and the
block-diagonal "RLEKF" of Hu et al., AAAI 2023) drops the covariance between
*groups* of weights: P = diag(P_1, …, P_G).  One update with m observations:

    X_g = P_g H_g,   A = Σ_g H_gᵀ X_g + R          (R = I/η, or λI)
    K_g = X_g A⁻¹,   w_g ← w_g + K_g ξ,   P_g ← P_g − K_g X_gᵀ + q I

The groups stay coupled through the common innovation matrix A: every group
sees the whole error ξ and the whole prediction variance.  With a single
group this is the global filter, bit for bit.

Levels (``kalman_decoupling`` in input.nn, an hpcnnp keyword; n2p2's
decoupled filter is an unfinished pull request):

===========  ==================================================================
level        groups
===========  ==================================================================
``none``     one group: the global filter (default)
``element``  the weights of each element's network (5 groups for LLZO/LCO)
``layer``    each layer of each element's network: connections and biases of
             layer l (15 groups for 5 elements with 2 hidden layers)
===========  ==================================================================

Memory and work per update scale with Σ_g n_g² instead of N_w²: for
5 × (225-20-20-1) networks (N_w = 24 805) ``element`` stores 1/5 of the
covariance (5 × 4961²) and ``layer`` 1/6 (5 × (4520² + 420² + 21²)).
Each group is a :class:`KalmanFilter` of its own (its P distributed over the
MPI ranks as usual, so every rank holds 1/ranks of every group); this class
only couples them through A.
"""

from __future__ import annotations

import numpy as np

from hpcnnp.training.kalman import (KalmanError, KalmanFilter, _check_observation,
                                    _cholesky, _forward_solve, status_line)

__all__ = ["DecoupledKalmanFilter", "DECOUPLING_LEVELS", "decoupling_groups"]

DECOUPLING_LEVELS = ("none", "element", "layer")


def decoupling_groups(level, layer_sizes):
    """Contiguous index ranges (start, stop) of the state vector per group.

    Parameters
    ----------
    level : {"none", "element", "layer"}
    layer_sizes : list of list of int
        Per element (in state order) the layer sizes of its network
        (inputs, hidden…, 1); the state holds the elements' weights one after
        the other, each in weights-file order (per layer: connections, then
        biases).
    """
    if level not in DECOUPLING_LEVELS:
        raise KalmanError(f"unknown decoupling level {level!r} (one of "
                          f"{', '.join(DECOUPLING_LEVELS)})")
    groups = []
    start = 0
    for sizes in layer_sizes:
        layers = [nin * nout + nout for nin, nout in zip(sizes[:-1], sizes[1:])]
        if level == "layer":
            for n in layers:
                groups.append((start, start + n))
                start += n
        else:
            groups.append((start, start + sum(layers)))
            start += sum(layers)
    if level == "none":
        return [(0, start)]
    return groups


class DecoupledKalmanFilter:
    """Kalman filter with a block-diagonal covariance (see the module docstring).

    Parameters
    ----------
    groups : list of (start, stop)
        Contiguous, ordered index ranges covering 0 … N_w.
    **kwargs
        Parameters of :class:`KalmanFilter` (``epsilon``, ``q0`` …, ``comm``,
        ``distributed``, ``fold_every``), the same for every group.

    The interface is that of :class:`KalmanFilter`: :meth:`update`,
    :meth:`status`, :meth:`status_line`, :meth:`status_header`,
    :meth:`state_dict`, :meth:`load_state_dict`, :meth:`p_chunks`, :meth:`full_P`.
    """

    def __init__(self, groups, **kwargs):
        groups = [(int(a), int(b)) for a, b in groups]
        if not groups or groups[0][0] != 0 or any(
                b <= a for a, b in groups) or any(
                g[1] != h[0] for g, h in zip(groups[:-1], groups[1:])):
            raise KalmanError(f"decoupling groups must be non-empty contiguous ranges "
                              f"from 0 (got {groups[:4]}…)")
        self.groups = groups
        self.n_weights = groups[-1][1]
        self.filters = [KalmanFilter(b - a, **kwargs) for a, b in groups]
        first = self.filters[0]
        self.kalman_type = first.kalman_type
        self.fold_every = first.fold_every
        self.distributed = first.distributed

    # ------------------------------------------------------------ properties
    def __getattr__(self, name):
        # scalars shared by all groups (same schedules): q, eta, lambda_, gamma …
        if name in ("q", "eta", "lambda_", "gamma", "n_updates", "etamax", "qmin",
                    "updates_per_epoch", "n_pending"):
            return getattr(self.filters[0], name)
        raise AttributeError(name)

    @property
    def before_fold(self):
        return self.filters[0].before_fold

    @before_fold.setter
    def before_fold(self, fn):
        for f in self.filters:
            f.before_fold = fn

    @property
    def p_block_bytes(self):
        return sum(f.p_block_bytes for f in self.filters)

    @property
    def p_stored_bytes(self):
        return sum(f.p_stored_bytes for f in self.filters)

    def memory_bytes(self):
        return sum(f.memory_bytes() for f in self.filters)

    def p_chunks(self):
        for f in self.filters:
            yield from f.p_chunks()

    # ---------------------------------------------------------------- update
    def update(self, w, H, xi):
        """One decoupled update (collective, like :meth:`KalmanFilter.update`)."""
        Hf, xi = _check_observation(self.n_weights, w, H, xi)
        parts = []
        A = None
        for f, (a, b) in zip(self.filters, self.groups):
            f._advance_eta()
            X, Ag = f._observe(np.asfortranarray(Hf[a:b]))
            parts.append(X)
            A = Ag if A is None else A + Ag          # group order: same bits everywhere
        L = _cholesky(self.filters[0]._innovation(A), self.n_updates)
        z = _forward_solve(L, xi)
        for f, (a, b), X in zip(self.filters, self.groups, parts):
            f._correct(w[a:b], X, L, z)

    def fold(self):
        for f in self.filters:
            f.fold()

    # ---------------------------------------------------------------- status
    def status(self, epoch=None):
        """n2p2's status numbers of the whole (block-diagonal) P (collective):
        the covariances between groups are zero and count as such."""
        n = self.n_weights
        sums = np.sum([f._status_sums() for f in self.filters], axis=0)
        sdiag, soff, ksum, kcount = (float(v) for v in sums)
        noff = n * n - n
        f = self.filters[0]
        st = {"epoch": epoch, "nupdates": f.n_updates, "Pdiag": sdiag / n,
              "Poffdiag": soff / noff if noff else 0.0, "Pasym": 0.0,
              "Kmean": ksum / kcount if kcount else 0.0, "q": f.q}
        if self.kalman_type == 0:
            st["eta"] = f.eta
        else:
            st["lambda"] = f.lambda_
            st["kgamma"] = f.n_updates * f.gamma
        return st

    def status_line(self, epoch):
        return status_line(self.status(epoch), self.kalman_type)

    def status_header(self):
        """The header of ``updater.000.out`` (the columns of the global filter)."""
        return self.filters[0].status_header()

    def full_P(self, root=0):
        """Dense block-diagonal P (verification only; collective)."""
        blocks = [f.full_P(root=root) for f in self.filters]
        if blocks[0] is None:
            return None
        out = np.zeros((self.n_weights, self.n_weights))
        for (a, b), B in zip(self.groups, blocks):
            out[a:b, a:b] = B
        return out

    # ----------------------------------------------------------- checkpoints
    def state_dict(self, fold=False, include_P=True):
        return {"groups": [list(g) for g in self.groups],
                "filters": [f.state_dict(fold=fold, include_P=include_P)
                            for f in self.filters]}

    def load_state_dict(self, state):
        groups = [tuple(int(v) for v in g) for g in state.get("groups", [])]
        if groups != self.groups:
            raise KalmanError(f"Kalman checkpoint has {len(groups)} decoupling groups "
                              f"{groups[:3]}…, this filter {len(self.groups)} "
                              f"{self.groups[:3]}…")
        for f, st in zip(self.filters, state["filters"]):
            f.load_state_dict(st)

