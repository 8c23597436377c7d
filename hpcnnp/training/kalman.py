"""Extended Kalman filter of n2p2 (global EKF), with P distributed over MPI ranks.

This is an independent implementation of the filter described in
``n2p2-formats.md`` §11 (the behaviour of n2p2's ``KalmanFilter``), written
for memory-bandwidth efficiency.  The filter treats the weights ``w`` (length
N_w) of all atomic networks as the state of a nonlinear system and updates
them from one *observation* per update: the errors ξ (m values, reference
minus prediction) and the Jacobian H = ∂(prediction)/∂w (N_w × m); see
§10.5 for what goes into ξ and H and how the m rows are formed (JM_SUM,
JM_TASK, JM_FULL).  References: R. E. Kalman, J. Basic Eng. 82, 35 (1960);
S. Singhal and L. Wu, NIPS 1988; A. Singraber, T. Morawietz, J. Behler and
C. Dellago, J. Chem. Theory Comput. 15, 3075 (2019),
doi:10.1021/acs.jctc.8b01092 (multi-stream training in n2p2).

The mathematics
---------------
P (N_w × N_w, symmetric positive definite) starts as I/ε.  One update of
the *standard* filter (``kalman_type=0``), in n2p2's order:

1. if η < η_max: η ← η·exp(τ_η)
2. X = P H;  A = Hᵀ X + (1/η) I_m
3. K = X A⁻¹
4. P ← P − K Xᵀ + q I
5. w ← w + K ξ
6. if q > q_min: q ← q·exp(−τ_q)

with τ_q = ``qtau``/U and τ_η = ``etatau``/U, U = ``updates_per_epoch``
(the caller's planned updates per epoch, energy + force).  The floor/cap
tests come *before* the multiplication, so q undershoots q_min (η overshoots
η_max) by at most one factor.  Without ``etatau`` or ``etamax`` η stays at
η₀ forever (η_max := η₀).  The *fading-memory* filter (``kalman_type=1``)
uses A = HᵀX + λI, P ← (P − K Xᵀ)/λ + q I and afterwards λ ← νλ + 1 − ν
(and γ ← 1/(1 + λ/γ), reported as ``kgamma`` = n·γ); η is not used.

How it is computed (same result in exact arithmetic, equal to round-off)
-------------------------------------------------------------------------
*Cholesky instead of an inverse.*  A = L Lᵀ (m × m, SPD).  With
Y = X L⁻ᵀ (a triangular solve) the gain is K = Y L⁻¹, K Xᵀ = Y Yᵀ and
K ξ = Y (L⁻¹ ξ).  The covariance correction is therefore a symmetric
rank-m update, and P stays *exactly* symmetric.

*One triangle only.*  Because P is symmetric, only one triangle is ever read
or written: X = P H is a ``dsymv`` over the lower triangle for m = 1 and
the C kernel ``cython_kernels/kalman_product.c`` for m > 1 (each stored
element is read once, for all m columns, and used for both P[i,j] and
P[j,i]), and updates of P
are ``dsyrk`` / ``dgemm`` on the same triangle.  The other triangle is never
touched.  (n2p2's ``Pasym`` column is therefore exactly 0 here; in n2p2 it
is rounding noise, ~1e-17.)

*Deferred low-rank folding.*  Write the current covariance as

    P = α P₀ − Y_p diag(c) Y_pᵀ + β I,

where P₀ is the stored matrix and the k pending columns Y_p (N_w × k,
k = m × updates since the last fold) hold the corrections of the last few
updates.  An update then needs only

    X = α (P₀ H) − Y_p (c ∘ (Y_pᵀ H)) + β H,

one read of P₀ plus O(N_w·k·m) work on the thin factors, and appends its own
Y as new pending columns: standard filter c_new = 1, β ← β + q; fading
memory α ← α/λ, c ← c/λ (all columns, including the new ones), β ← β/λ + q.
Every ``fold_every`` updates the pending corrections are folded into P₀ with
one BLAS-3 call per block (``dsyrk``: P₀ ← α P₀ − Y_s Y_sᵀ, Y_s = Y_p·√c,
then β on the diagonal), so P₀ is read and written once per *fold* instead
of once per *update*.  ``fold_every=1`` is the plain (non-deferred)
algorithm.

Memory-traffic model (bytes moved over P per update)
----------------------------------------------------
The update is bound by memory bandwidth: the flops per byte of P are tiny
(2 m flops per 8 bytes read in X = P H).  With T = 8·N_w(N_w+1)/2 bytes (one
triangle; 2.46 GB for N_w = 24 805):

* product X = P₀ H: T per update for any m (m > 1: the C kernel keeps the
  H and X rows of a row block in L2 and streams the columns of P past them
  four at a time; m calls of ``dsymv`` would read P m times, and OpenBLAS's
  ``dsymm``/``dgemm`` pack their operands and are slower still for thin H);
* fold (read + write of the triangle): 2T every ``fold_every`` updates.

Total ≈ T·(1 + 2/fold_every) per update (2.77 GB for N_w = 24 805 and
``fold_every=16``), against ≥ 20·N_w² bytes for n2p2's Eigen code (read one
triangle for P H, read + write all of P for P −= K Xᵀ: 12.3 GB).  See
:func:`traffic_model`.  The fold's flops (k·N_w² for k pending columns) make
it compute-bound above k ≈ 20–30 on current CPUs, so ``fold_every`` of 8–32
(× m) is the sweet spot; the thin-factor work grows like N_w·k·m.

Distribution over MPI ranks
---------------------------
With ``distributed=True`` rank r stores one contiguous block of rows of P,
rows [o_r, o_{r+1}) (balanced: N_w/R rows, the first N_w mod R ranks get
one more), as an N_w × n_r Fortran-ordered array (= the C-ordered n_r × N_w
row block), so P memory per rank is exactly 8·N_w·n_r bytes = total/R.
Inside its row block a rank *owns* (reads and writes) a balanced half:

* the lower triangle of its diagonal block P[rows_r, rows_r];
* for every rank s > r: columns [o_s, o_s + n_s//2) (the first half of s);
* for every rank s < r: its own second-half rows [o_r + n_r//2, o_{r+1}),
  all columns of s.

Every unordered pair (i, j) is owned by exactly one rank, and every rank
owns ≈ N_w²/(2R) elements.  An update is then

1. local partial products of the owned blocks (each owned off-diagonal
   element contributes to X[i] and X[j]);
2. ``Reduce_scatter`` of the partial X (N_w × m doubles) → each rank gets
   the complete rows X[rows_r];
3. A = Σ_r H[rows_r]ᵀ X[rows_r]: the m × m partial sums are all-gathered
   and summed in rank order, so every rank has the same bits;
4. each rank computes Y[rows_r] and its new w[rows_r] and one
   ``Allgatherv`` distributes [Y | w_new] (N_w × (m+1) doubles).  Every
   element of w is computed by exactly one rank, so w is bit-identical on
   all ranks after every update;
5. folds are local (the owned blocks need rows of the gathered Y only).

Communication per update is O(N_w·m) doubles, against O(N_w²/R) bytes of
memory traffic.  With ``distributed=False`` (n2p2's PM_TRAIN_ALL) every
rank holds the full P and does the whole update; w is then broadcast from
rank 0 so that all ranks hold the same bytes even if their BLAS libraries
round differently.  All MPI ranks must call :meth:`KalmanFilter.update`
and :meth:`KalmanFilter.status` together (they are collective).

Measured (``benchmarks/bench_kalman.py``, N_w = 24 805, m = 1,
``fold_every=16``, 2-core AMD EPYC VM shared with other jobs, so the
spread is large): 1 rank with 2 BLAS threads 0.08–0.11 s per update (n2p2:
≈1.5 s), P 4.58 GiB allocated and 2.49 GiB peak RSS; 2 ranks distributed
0.10–0.18 s per update with 2.29 GiB allocated / 1.28 GiB RSS per rank;
2 ranks replicated 0.20 s; ``fold_every=1`` (no deferral) 0.27 s.  The
off-diagonal blocks of the distributed layout are processed with a pair of
``dgemv`` per cache tile (≈1.5× slower per byte than ``dsymv``), so on one
node the distributed filter is not faster than one rank with all cores;
its purpose is memory per rank.

m > 1 (multi-stream: one observation per rank, more with jacobian_mode 2
and task batches), N_w = 22 865, 2 ranks distributed, one thread each:
m = 2 / 4 / 8 take 0.098 / 0.125 / 0.196 s per update with the C product
kernel, against 0.14 / – / 0.45 s with m passes of ``dsymv``/``dgemv``;
eight observations cost twice one.  (The C kernel is single-threaded: with
one undivided P, m = 2 therefore still uses two multi-threaded ``dsymv``.)
Above m = 8 (a node: one observation per rank) the kernel keeps tiles of P
in L2 while the observations pass over them eight at a time; N_w = 24 805,
2 ranks, folds included: m = 2 / 8 / 16 / 36 take 0.101 / 0.176 / 0.348 /
0.836 s (a generic loop over m: 0.948 s at m = 16, 1.589 s at m = 36).  The
work per update then grows like m (product, fold and thin factors, ≈ 6 m
flops per owned element of P): one rank of 36 with m = 36 measured 0.072 s
on one core here (``benchmarks/bench_seed_scale.py``, rank emulation).

Threads: on a node, give every rank its share of the cores for the BLAS
(e.g. ``OPENBLAS_NUM_THREADS=1`` with 2 ranks on 2 cores).

Pages: by default P is allocated with an anonymous ``mmap`` (4 KiB pages,
no transparent huge pages), and only the owned half is ever written, so the
never-touched half is never backed by RAM: the resident size of P is about
half of its allocated size.  ``lazy_pages=False`` uses numpy's allocator
(huge pages where the kernel offers them: ~20 % faster updates because of
fewer TLB misses, but the whole block becomes resident).

Examples
--------
>>> import numpy as np
>>> from hpcnnp.training.kalman import KalmanFilter
>>> kf = KalmanFilter(3, epsilon=0.01, q0=0.0, qtau=0.0, qmin=0.0, eta=1.0,
...                   updates_per_epoch=1)
>>> w = np.zeros(3)
>>> kf.update(w, np.array([1.0, 0.0, 0.0]), np.array([2.0]))
>>> w.round(6).tolist()
[1.980198, 0.0, 0.0]
"""

from __future__ import annotations

import ctypes
import math
import mmap

import numpy as np
from scipy.linalg import solve_triangular

from hpcnnp import _core
from hpcnnp.errors import HpcnnpError

__all__ = ["KalmanFilter", "KalmanError", "traffic_model", "row_partition",
           "STANDARD", "FADING_MEMORY"]

STANDARD = 0
FADING_MEMORY = 1

_STATE_VERSION = 1


class KalmanError(HpcnnpError, ValueError):
    """Invalid Kalman filter parameters, inputs or checkpoints."""


# --------------------------------------------------------------------------
# Raw BLAS with leading dimensions (scipy's Cython BLAS function pointers).
# scipy.linalg.blas copies every non-contiguous operand; sub-blocks of P must
# be passed in place, so we call the Fortran-interface routines directly.
# --------------------------------------------------------------------------
class _Blas:
    _c_int = ctypes.c_int
    _c_dbl = ctypes.c_double

    def __init__(self):
        import scipy.linalg.cython_blas as cython_blas

        caps = cython_blas.__pyx_capi__
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype = ctypes.c_char_p
        get_name.argtypes = [ctypes.py_object]
        get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
        get_ptr.restype = ctypes.c_void_p
        get_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
        ch = ctypes.c_char_p
        pi = ctypes.POINTER(ctypes.c_int)
        pd = ctypes.POINTER(ctypes.c_double)
        vp = ctypes.c_void_p

        def load(name, *argtypes):
            cap = caps[name]
            address = get_ptr(cap, get_name(cap))
            return ctypes.CFUNCTYPE(None, *argtypes)(address)

        self._dsymv = load("dsymv", ch, pi, pd, vp, pi, vp, pi, pd, vp, pi)
        self._dgemv = load("dgemv", ch, pi, pi, pd, vp, pi, vp, pi, pd, vp, pi)
        self._dsyrk = load("dsyrk", ch, ch, pi, pi, pd, vp, pi, pd, vp, pi)
        self._dgemm = load("dgemm", ch, ch, pi, pi, pi, pd, vp, pi, vp, pi,
                           pd, vp, pi)

    def _i(self, v):
        return ctypes.byref(self._c_int(int(v)))

    def _d(self, v):
        return ctypes.byref(self._c_dbl(float(v)))

    def dsymv(self, uplo, n, alpha, a, lda, x, beta, y):
        """y ← α·sym(A) x + β y (unit strides; a, x, y are addresses)."""
        if n > 0:
            self._dsymv(uplo, self._i(n), self._d(alpha), a, self._i(lda),
                        x, self._i(1), self._d(beta), y, self._i(1))

    def dgemv(self, trans, m, n, alpha, a, lda, x, beta, y):
        """y ← α op(A) x + β y, A m × n column-major (unit strides)."""
        if m > 0 and n > 0:
            self._dgemv(trans, self._i(m), self._i(n), self._d(alpha), a,
                        self._i(lda), x, self._i(1), self._d(beta), y,
                        self._i(1))

    def dsyrk(self, uplo, n, k, alpha, a, lda, beta, c, ldc):
        """C ← α A Aᵀ + β C on one triangle of the n × n C (A is n × k)."""
        if n > 0:
            self._dsyrk(uplo, b"N", self._i(n), self._i(k), self._d(alpha),
                        a, self._i(lda), self._d(beta), c, self._i(ldc))

    def dgemm(self, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta,
              c, ldc):
        """C ← α op(A) op(B) + β C (C m × n, column-major)."""
        if m > 0 and n > 0:
            self._dgemm(transa, transb, self._i(m), self._i(n), self._i(k),
                        self._d(alpha), a, self._i(lda), b, self._i(ldb),
                        self._d(beta), c, self._i(ldc))

    def dgemm_nt(self, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        """C ← α A Bᵀ + β C (A m × k, B n × k, C m × n, column-major)."""
        self.dgemm(b"N", b"T", m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


_BLAS = None


def _blas():
    global _BLAS
    if _BLAS is None:
        _BLAS = _Blas()
    return _BLAS


def _addr(a, offset=0):
    """Address of element ``offset`` (in elements) of a float64 array."""
    return a.ctypes.data + 8 * int(offset)


def _fmat(a):
    """(address, leading dimension) of a column-major 2-D float64 view."""
    if a.dtype != np.float64 or a.ndim != 2 or (a.strides[0] != 8
                                                and a.shape[0] > 1):
        raise ValueError("internal: not a column-major float64 matrix")
    ld = a.strides[1] // 8 if a.shape[1] > 1 else a.shape[0]
    return a.ctypes.data, max(1, ld, a.shape[0])


# --------------------------------------------------------------------------
# Layout helpers
# --------------------------------------------------------------------------
def row_partition(n, size):
    """Balanced contiguous row ranges: offsets o_0 = 0 < … < o_size = n.

    The first ``n % size`` ranks get one row more than the others.
    """
    base, extra = divmod(int(n), int(size))
    counts = [base + (1 if r < extra else 0) for r in range(size)]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _owned_blocks(offsets, rank):
    """Owned region of ``rank`` in its row block.

    Returns (diag, rects): ``diag`` = (o_r, n_r) — the lower triangle of the
    diagonal block; ``rects`` = list of (row0, col0, p, q) rectangles in the
    coordinates of the rank's N × n_r column-major array M (M[j, i] =
    P[o_r + i, j]): M[row0:row0+p, col0:col0+q], i.e. P rows
    o_r+col0 … o_r+col0+q-1 and P columns row0 … row0+p-1.
    """
    o = [int(v) for v in offsets]
    size = len(o) - 1
    o_r, n_r = o[rank], o[rank + 1] - o[rank]
    rects = []
    for s in range(size):
        n_s = o[s + 1] - o[s]
        if s > rank:
            rect = (o[s], 0, n_s // 2, n_r)
        elif s < rank:
            half = n_r // 2
            rect = (o[s], half, n_s, n_r - half)
        else:
            continue
        if rect[2] > 0 and rect[3] > 0:
            rects.append(rect)
    return (o_r, n_r), rects


def _product_kernel(m, ranks):
    """Whether X = P H goes to the C kernel (every element of P read once for all
    m columns) rather than m multi-threaded ``dsymv`` passes.  The kernel is
    single-threaded, so an undivided P with m = 2 stays with ``dsymv``."""
    return m > 2 or (m == 2 and ranks > 1)


def traffic_model(n_weights, fold_every=16, m=1, ranks=1):
    """Bytes moved over P per update (summed over all ranks of a node).

    Parameters
    ----------
    n_weights : int
        N_w, length of the state vector.
    fold_every : int
        Updates between folds of the pending low-rank corrections.
    m : int
        Observations (Jacobian columns) per update.
    ranks : int
        MPI ranks holding P (``distributed=True``).

    Returns
    -------
    dict
        ``product`` (X = P H), ``fold`` (amortised per update), ``total``,
        ``n2p2`` (n2p2's Eigen code: one triangle read for P H plus read and
        write of the full P for P −= K Xᵀ) and ``triangle`` (bytes of one
        triangle).
    """
    n = int(n_weights)
    offsets = row_partition(n, ranks)
    diag = sum(int(b) * (int(b) + 1) // 2 for b in np.diff(offsets))
    tri = n * (n + 1) // 2
    if _product_kernel(m, ranks):               # P read once for all m
        product = 8.0 * tri
    else:                                      # m dsymv passes over the diagonal blocks
        product = 8.0 * (m * diag + (tri - diag))
    fold = 2.0 * 8.0 * tri / max(1, int(fold_every))
    return {"triangle": 8.0 * tri, "product": product, "fold": fold,
            "total": product + fold,
            "n2p2": 8.0 * tri + 16.0 * n * n}


def _alloc_f(nrows, ncols, lazy):
    """Zeroed column-major float64 array; anonymous mmap if ``lazy``."""
    nbytes = 8 * nrows * ncols
    if not lazy or nbytes < (1 << 22):
        return np.zeros((nrows, ncols), order="F")
    buf = mmap.mmap(-1, nbytes)  # zero pages, backed by RAM only once written
    return np.frombuffer(buf, dtype=np.float64).reshape((nrows, ncols),
                                                          order="F")


# --------------------------------------------------------------------------
class KalmanFilter:
    """n2p2's extended Kalman filter with a row-distributed covariance.

    Parameters
    ----------
    n_weights : int
        N_w, length of the state (all weights of all elements, §10.5).
    epsilon : float
        ``kalman_epsilon``: P starts as I/ε.
    q0, qtau, qmin : float
        Process noise q (``kalman_q0``), its decay rate per *epoch*
        (``kalman_qtau``) and floor (``kalman_qmin``).
    eta : float, optional
        η₀ = ``kalman_eta`` (standard filter only; required there).
    etatau, etamax : float or None
        Growth rate of η per epoch and its cap; if either is ``None`` η stays
        at η₀.
    kalman_type : {0, 1}
        0 standard, 1 fading memory.
    lambda_, nu : float, optional
        λ₀ = ``kalman_lambda_short`` and ν = ``kalman_nue_short`` (fading
        memory only; required there).
    updates_per_epoch : int
        U, the caller's planned updates per epoch (energy + force):
        τ_q = qtau/U, τ_η = etatau/U.
    comm : mpi4py communicator or None
        ``None``: serial.
    distributed : bool
        ``True``: rows of P distributed over ``comm``; ``False``: every rank
        holds the whole P (n2p2's PM_TRAIN_ALL).
    fold_every : int
        Updates between folds of the deferred corrections into P (1 = fold
        at every update).
    dtype : numpy dtype
        Only float64 is supported.
    lazy_pages : bool
        Allocate P so that its never-touched half is not resident (see the
        module notes).
    tile_bytes : int
        Size of the cache tiles of the off-diagonal blocks (bytes).
    """

    def __init__(self, n_weights, epsilon, q0, qtau, qmin, eta=None,
                 etatau=None, etamax=None, kalman_type=STANDARD,
                 lambda_=None, nu=None, updates_per_epoch=1, comm=None,
                 distributed=True, fold_every=16, dtype=np.float64,
                 lazy_pages=True, tile_bytes=4 << 20):
        n = int(n_weights)
        if n < 1:
            raise KalmanError(f"n_weights must be >= 1 (got {n_weights})")
        if np.dtype(dtype) != np.float64:
            raise KalmanError(f"only float64 is supported (got {np.dtype(dtype)})")
        if kalman_type not in (STANDARD, FADING_MEMORY):
            raise KalmanError(f"unknown kalman_type {kalman_type!r} "
                              "(0 = standard, 1 = fading memory)")
        if not epsilon > 0:
            raise KalmanError(f"kalman_epsilon must be > 0 (got {epsilon})")
        if int(updates_per_epoch) < 1:
            raise KalmanError("updates_per_epoch must be >= 1 "
                              f"(got {updates_per_epoch})")
        if int(fold_every) < 1:
            raise KalmanError(f"fold_every must be >= 1 (got {fold_every})")
        if kalman_type == STANDARD and (eta is None or not eta > 0):
            raise KalmanError("the standard Kalman filter needs kalman_eta > 0 "
                              f"(got {eta})")
        if kalman_type == FADING_MEMORY and (lambda_ is None or nu is None):
            raise KalmanError("the fading-memory Kalman filter needs "
                              "kalman_lambda_short and kalman_nue_short")

        self.n_weights = n
        self.kalman_type = int(kalman_type)
        self.epsilon = float(epsilon)
        self.q0, self.qtau, self.qmin = float(q0), float(qtau), float(qmin)
        self.updates_per_epoch = int(updates_per_epoch)
        self.fold_every = int(fold_every)
        self._tile_bytes = int(tile_bytes)
        u = self.updates_per_epoch
        self._q_factor = math.exp(-self.qtau / u)
        self.eta0 = float(eta) if eta is not None else 0.0
        self.etatau = etatau
        if etatau is None or etamax is None:
            self.etamax = self.eta0          # η frozen (n2p2 behaviour)
            self._eta_factor = 1.0
        else:
            self.etamax = float(etamax)
            self._eta_factor = math.exp(float(etatau) / u)
        self.lambda0 = float(lambda_) if lambda_ is not None else 0.0
        self.nu = float(nu) if nu is not None else 0.0

        # dynamic scalars
        self.q = self.q0
        self.eta = self.eta0
        self.lambda_ = self.lambda0
        self.gamma = 1.0
        self.n_updates = 0

        # MPI layout
        self._comm = comm
        self._mpi = None
        size = 1 if comm is None else comm.Get_size()
        self._rank_world = 0 if comm is None else comm.Get_rank()
        self._size_world = size
        self.distributed = bool(distributed) and size > 1
        if comm is not None:
            from mpi4py import MPI
            self._mpi = MPI
        if self.distributed:
            self._size, self._rank = size, self._rank_world
        else:
            self._size, self._rank = 1, 0
        self._offsets = row_partition(n, self._size)
        self.row_range = (int(self._offsets[self._rank]),
                          int(self._offsets[self._rank + 1]))
        (self._d0, self._nr), self._rects = _owned_blocks(self._offsets,
                                                          self._rank)

        # P0 block (N × n_r column-major) and the pending factors
        self._lazy = bool(lazy_pages)
        self._M = _alloc_f(n, self._nr, self._lazy)
        self._alpha = 1.0
        self._beta = 0.0
        self._Y = np.zeros((n, 0), order="F")
        self._c = np.zeros(0)
        self._k = 0                # pending columns
        self._pending = 0          # pending updates
        self._last_Y = None        # Y of the last update (for Kmean)
        self._last_L = None
        #: called before the stored P is changed (a fold): a background
        #: checkpoint writer of P waits there (see :meth:`p_chunks`)
        self.before_fold = None
        self._touch_owned()
        self._diag_view()[:] = 1.0 / self.epsilon

    # ------------------------------------------------------------------ info
    @property
    def p_block_bytes(self):
        """Bytes of P stored on this rank (8·N_w·n_r, allocated)."""
        return int(self._M.nbytes)

    def memory_bytes(self):
        """Bytes allocated by this filter on this rank (P block + factors)."""
        return int(self._M.nbytes + self._Y.nbytes + 16 * self.n_weights)

    @property
    def p_stored_bytes(self):
        """Bytes of the owned (stored, read and written) region of P on this
        rank: the lower triangle of the diagonal block and the owned
        rectangles — what a checkpoint writes (≈ 8·N_w²/(2R))."""
        nr = self._nr
        return 8 * (nr * (nr + 1) // 2 + sum(p * q for _, _, p, q in self._rects))

    def p_chunks(self):
        """The owned region of the stored P₀ as contiguous 1-D views, in a
        fixed order (columns of the diagonal block's lower triangle, then
        the columns of the owned rectangles).

        A checkpoint writes them (no copy, no page of the never-touched
        half is read) and a restart reads into them.  P₀ changes only in
        :meth:`fold`, which first calls :attr:`before_fold`; with the
        pending factors and scalars of :meth:`state_dict` (``include_P=False``)
        taken at the same moment they describe the whole filter.
        """
        M = self._M
        d0, nr = self._d0, self._nr
        for j in range(nr):
            yield M[d0 + j:d0 + nr, j]
        for (row0, col0, p, q) in self._rects:
            for c in range(q):
                yield M[row0:row0 + p, col0 + c]

    @property
    def n_pending(self):
        """Updates whose corrections are not yet folded into the stored P."""
        return self._pending

    # ------------------------------------------------------------ internals
    def _diag_view(self):
        """View of the diagonal of this rank's diagonal block of P."""
        flat = self._M.ravel(order="F")
        n = self.n_weights
        return flat[self._d0::n + 1][:self._nr]

    def _diag_chunks(self, width):
        """Column chunks covering the lower triangle of the diagonal block.

        Yields (b0, b1, view) with view = M[d0+b0 : d0+n_r, b0:b1] (the
        chunk's top b1−b0 rows also hold a few upper-triangle elements).
        """
        d0, nr = self._d0, self._nr
        for b0 in range(0, nr, width):
            b1 = min(nr, b0 + width)
            yield b0, b1, self._M[d0 + b0:d0 + nr, b0:b1]

    def _rect_chunks(self, rect, width):
        row0, col0, p, q = rect
        for c0 in range(0, q, width):
            c1 = min(q, c0 + width)
            yield c0, c1, self._M[row0:row0 + p, col0 + c0:col0 + c1]

    def _chunk_width(self, rows, budget=32 << 20):
        return max(16, min(4096, budget // (8 * max(1, rows))))

    def _touch_owned(self):
        """Write zeros into the owned region (pre-faults its pages)."""
        for _, _, v in self._diag_chunks(256):
            v[...] = 0.0
        for rect in self._rects:
            for _, _, v in self._rect_chunks(rect, 256):
                v[...] = 0.0

    def _allsum(self, a):
        """Sum of a small array over the ranks, in rank order (same bits
        everywhere)."""
        if not self.distributed:
            return a
        a = np.ascontiguousarray(a, dtype=np.float64)
        buf = np.empty((self._size,) + a.shape)
        self._comm.Allgather(a, buf)
        acc = buf[0].copy()
        for r in range(1, self._size):
            acc += buf[r]
        return acc

    def _product(self, Hf, m):
        """Complete rows X0[rows_r] of X0 = P0 H (n_r × m, column-major)."""
        b = _blas()
        n = self.n_weights
        M = self._M
        d0, nr = self._d0, self._nr
        if _product_kernel(m, self._size):
            # (m dsymv/dgemv calls would read P m times; OpenBLAS's dsymm/dgemm
            # are slower still for thin H because they pack their operands)
            flat = M.reshape(-1, order="F")
            Hr = np.ascontiguousarray(Hf)
            Xp = np.zeros((n, m))                      # row-major for the kernel
            _core.kalman_sym_lower_product(flat, d0, n, nr, Hr, Xp, d0)
            for (row0, col0, p, q) in self._rects:
                _core.kalman_rect_product(flat, row0 + col0 * n, n, p, q, Hr,
                                          Xp, row0, self._offsets[self._rank]
                                          + col0)
        else:
            Xp = np.zeros((n, m), order="F")
            # diagonal block: lower triangle, M offset d0, leading dim N
            for j in range(m):
                b.dsymv(b"L", nr, 1.0, _addr(M, d0), n, _addr(Hf, d0 + j * n),
                        1.0, _addr(Xp, d0 + j * n))
            # off-diagonal owned rectangles, in cache-sized tiles read once
            for (row0, col0, p, q) in self._rects:
                r0 = self._offsets[self._rank] + col0      # first P row
                width = max(8, min(q, self._tile_bytes // (8 * p)))
                for c0 in range(0, q, width):
                    cw = min(width, q - c0)
                    a = _addr(M, row0 + (col0 + c0) * n)
                    for j in range(m):
                        # X[rows] += P[rows, cols] H[cols]  (= tileᵀ H[cols])
                        b.dgemv(b"T", p, cw, 1.0, a, n,
                                _addr(Hf, row0 + j * n), 1.0,
                                _addr(Xp, r0 + c0 + j * n))
                        # X[cols] += P[cols, rows] H[rows]  (= tile H[rows])
                        b.dgemv(b"N", p, cw, 1.0, a, n,
                                _addr(Hf, r0 + c0 + j * n), 1.0,
                                _addr(Xp, row0 + j * n))
        lo, hi = self.row_range
        if self.distributed:
            send = np.ascontiguousarray(Xp)            # C order: rows together
            recv = np.empty((nr, m))
            counts = [int(c) * m for c in np.diff(self._offsets)]
            self._comm.Reduce_scatter(send, recv, recvcounts=counts,
                                      op=self._mpi.SUM)
            return np.asfortranarray(recv)
        return np.asfortranarray(Xp[lo:hi])

    def _scaled_pending(self):
        """Y_s = Y_p·√c (column-major, N × k)."""
        k = self._k
        if self.kalman_type == STANDARD:   # all c = 1
            return self._Y[:, :k]
        return np.asfortranarray(self._Y[:, :k] * np.sqrt(self._c[:k]))

    def fold(self):
        """Fold the pending corrections into the stored P.

        No communication, but with ``distributed=True`` all ranks must call
        it at the same point (between the same two updates): the
        representation P = αP₀ − Y diag(c) Yᵀ + βI is shared by all ranks.
        ``update`` folds by itself every ``fold_every`` updates.
        """
        if self.before_fold is not None:
            self.before_fold()
        b = _blas()
        n = self.n_weights
        k = self._k
        if k == 0 and self._alpha == 1.0 and self._beta == 0.0:
            self._pending = 0
            return
        Ys = self._scaled_pending()
        if k > 0:
            ysa = Ys if Ys.flags["F_CONTIGUOUS"] else np.asfortranarray(Ys)
        else:
            ysa = np.zeros((n, 1), order="F")
        kk = max(k, 1)
        alpha_y = -1.0 if k > 0 else 0.0
        M = self._M
        d0, nr = self._d0, self._nr
        b.dsyrk(b"L", nr, kk, alpha_y, _addr(ysa, d0), n, self._alpha,
                _addr(M, d0), n)
        for (row0, col0, p, q) in self._rects:
            r0 = self._offsets[self._rank] + col0
            b.dgemm_nt(p, q, kk, alpha_y, _addr(ysa, row0), n,
                       _addr(ysa, r0), n, self._alpha,
                       _addr(M, row0 + col0 * n), n)
        if self._beta != 0.0:
            self._diag_view()[:] += self._beta
        self._alpha, self._beta = 1.0, 0.0
        self._k = 0
        self._pending = 0

    def _append_pending(self, Ynew, c_new):
        m = Ynew.shape[1]
        k = self._k
        if k + m > self._Y.shape[1]:
            cap = max(k + m, self.fold_every * m)
            Y = np.zeros((self.n_weights, cap), order="F")
            Y[:, :k] = self._Y[:, :k]
            c = np.zeros(cap)
            c[:k] = self._c[:k]
            self._Y, self._c = Y, c
        self._Y[:, k:k + m] = Ynew
        self._c[k:k + m] = c_new
        self._k = k + m

    # ---------------------------------------------------------------- update
    def update(self, w, H, xi):
        """One Kalman update; ``w`` is changed in place.

        Collective: every rank calls it with the *same* full-length ``w``,
        ``H`` and ``xi`` (the caller all-gathers the Jacobian rows and errors
        of all streams first, §10.5 PM_TRAIN_ALL).  After the call ``w``
        holds the same bytes on every rank.

        Parameters
        ----------
        w : ndarray, shape (N_w,), float64, contiguous
            State (weights), updated in place.
        H : ndarray, shape (N_w, m) or (N_w,)
            Jacobian ∂prediction/∂w, one column per observation.
        xi : ndarray, shape (m,)
            Errors (reference − prediction).
        """
        Hf, xi = _check_observation(self.n_weights, w, H, xi)
        self._advance_eta()
        X, A = self._observe(Hf)
        L = _cholesky(self._innovation(A), self.n_updates)
        self._correct(w, X, L, _forward_solve(L, xi))

    # The update in three phases (the decoupled filter couples its groups
    # through A and calls them for every group).
    def _advance_eta(self):
        """Step 1: the learning rate."""
        if self.kalman_type == STANDARD and self.eta < self.etamax:
            self.eta *= self._eta_factor

    def _innovation(self, A):
        """A + R: 1/η (standard) or λ (fading memory) on the diagonal, symmetrised."""
        A = np.array(A, order="F")
        m = A.shape[0]
        if self.kalman_type == STANDARD:
            A[np.diag_indices(m)] += 1.0 / self.eta
        else:
            A[np.diag_indices(m)] += self.lambda_
        return 0.5 * (A + A.T)

    def _observe(self, Hf):
        """Step 2: X = P H for the owned rows (pending corrections included) and
        A = Hᵀ P H summed over the ranks (m × m, same bits everywhere)."""
        # (All BLAS calls of the update go to scipy's OpenBLAS through
        # _blas(): numpy's own BLAS has a second thread pool whose spinning
        # threads would slow down the next pass over P.)
        b = _blas()
        n = self.n_weights
        m = Hf.shape[1]
        lo, hi = self.row_range
        X = self._product(Hf, m)
        xa, ldx = _fmat(X)
        nr = hi - lo
        if self._alpha != 1.0:
            X *= self._alpha
        k = self._k
        if k > 0:
            G = np.empty((k, m), order="F")            # Y_pᵀ H
            b.dgemm(b"T", b"N", k, m, n, 1.0, _addr(self._Y), n,
                    _addr(Hf), n, 0.0, _addr(G), k)
            G *= self._c[:k, None]
            b.dgemm(b"N", b"N", nr, m, k, -1.0, _addr(self._Y, lo), n,
                    _addr(G), k, 1.0, xa, ldx)         # X −= Y_p[rows] G
        if self._beta != 0.0:
            X += self._beta * Hf[lo:hi]
        A = np.empty((m, m), order="F")
        b.dgemm(b"T", b"N", m, m, nr, 1.0, _addr(Hf, lo), n, xa, ldx,
                0.0, _addr(A), m)
        return X, self._allsum(A)

    def _correct(self, w, X, L, z):
        """Steps 3–6 with A = L Lᵀ and z = L⁻¹ ξ: Y = X L⁻ᵀ (K = Y L⁻¹,
        K Xᵀ = Y Yᵀ), w ← w + Y z, P ← P − Y Yᵀ (/λ) + q I (pending), q and
        λ schedules."""
        n = self.n_weights
        m = L.shape[0]
        lo, hi = self.row_range
        nr = hi - lo
        Yrows = _right_solve_lt(X, L)
        out = np.empty((nr, m + 1))
        out[:, :m] = Yrows
        dw = Yrows[:, 0] * z[0]
        for j in range(1, m):
            dw += Yrows[:, j] * z[j]
        out[:, m] = w[lo:hi] + dw
        if self.distributed:
            gathered = np.empty((n, m + 1))
            counts = [int(c) * (m + 1) for c in np.diff(self._offsets)]
            displs = [int(o) * (m + 1) for o in self._offsets[:-1]]
            self._comm.Allgatherv(
                out, [gathered, counts, displs, self._mpi.DOUBLE])
        else:
            gathered = out
        w[:] = gathered[:, m]
        Ynew = gathered[:, :m]
        self._last_Y = np.array(Ynew, order="F")
        self._last_L = L

        # P ← P − Y Yᵀ (/λ) + q I, kept as pending factors
        if self.kalman_type == STANDARD:
            self._append_pending(Ynew, 1.0)
            self._beta += self.q
        else:
            inv = 1.0 / self.lambda_
            self._c[:self._k] *= inv
            self._append_pending(Ynew, inv)
            self._alpha *= inv
            self._beta = self._beta * inv + self.q

        # 6. anneal q; fading memory: forgetting factor
        if self.q > self.qmin:
            self.q *= self._q_factor
        if self.kalman_type == FADING_MEMORY:
            self.lambda_ = self.nu * self.lambda_ + 1.0 - self.nu
            self.gamma = 1.0 / (1.0 + self.lambda_ / self.gamma)
        self.n_updates += 1
        self._pending += 1
        if self._pending >= self.fold_every:
            self.fold()

        if self._comm is not None and not self.distributed \
                and self._size_world > 1:
            self._comm.Bcast(w, root=0)

    # --------------------------------------------------- true values of P
    def _true_chunks(self):
        """Yield (kind, T, rows, cols) with T the current P (pending
        corrections applied) on chunks of the owned region.

        kind ``"diag"``: T[a, b] = P[d0+b0+b, d0+b0+a] for a ≥ b (entries
        a < b are not owned and are set to 0); rows = d0+b0 (first P index),
        cols unused.  kind ``"rect"``: T[jj, ii] = P[rows+ii, cols+jj].
        """
        k = self._k
        Yc = self._Y[:, :k] * self._c[:k] if k else None
        Y = self._Y[:, :k]
        d0, nr = self._d0, self._nr
        width = self._chunk_width(nr)
        for b0, b1, v in self._diag_chunks(width):
            T = self._alpha * v
            if k:
                T -= Yc[d0 + b0:d0 + nr] @ Y[d0 + b0:d0 + b1].T
            cw = b1 - b0
            top = T[:cw]
            top[np.triu_indices(cw, 1)] = 0.0
            top[np.diag_indices(cw)] += self._beta
            yield "diag", T, d0 + b0, None
        o_r = int(self._offsets[self._rank])
        for rect in self._rects:
            row0, col0, p, q = rect
            width = self._chunk_width(p)
            for c0, c1, v in self._rect_chunks(rect, width):
                T = self._alpha * v
                if k:
                    T -= Yc[row0:row0 + p] @ Y[o_r + col0 + c0:o_r + col0 + c1].T
                yield "rect", T, o_r + col0 + c0, row0

    def _status_sums(self):
        """(Σ|P_ii|, Σ_{i≠j}|P_ij|, Σ|K|, entries of K) of this filter
        (collective over the ranks of a distributed P)."""
        sdiag = 0.0
        soff = 0.0
        for kind, T, _, _ in self._true_chunks():
            if kind == "diag":
                cw = min(T.shape[0], T.shape[1])
                d = np.abs(np.diagonal(T[:cw])).sum()
                sdiag += d
                soff += np.abs(T).sum() - d
            else:
                soff += np.abs(T).sum()
        sums = self._allsum(np.array([sdiag, soff]))
        if self._last_Y is None:
            return float(sums[0]), 2.0 * float(sums[1]), 0.0, 0
        K = solve_triangular(self._last_L, self._last_Y.T, lower=True,
                             trans="T").T
        return float(sums[0]), 2.0 * float(sums[1]), float(np.abs(K).sum()), K.size

    def status(self, epoch=None):
        """Filter status as in n2p2's ``updater.000.out`` (collective).

        Returns
        -------
        dict
            ``epoch``, ``nupdates``, ``Pdiag`` (mean |P_ii|), ``Poffdiag``
            (mean |P_ij| over i ≠ j), ``Pasym`` (mean |½(P − Pᵀ)| over i ≠ j;
            exactly 0 here, P being stored as one triangle), ``Kmean`` (mean
            |K_ij| of the last update's gain, 0 before the first update),
            ``q``, and ``eta`` (standard) or ``lambda`` and ``kgamma``
            (fading memory).
        """
        n = self.n_weights
        sdiag, soff, ksum, kcount = self._status_sums()
        kmean = ksum / kcount if kcount else 0.0
        noff = n * n - n
        st = {"epoch": epoch, "nupdates": self.n_updates,
              "Pdiag": sdiag / n,
              "Poffdiag": soff / noff if noff else 0.0,
              "Pasym": 0.0, "Kmean": kmean, "q": self.q}
        if self.kalman_type == STANDARD:
            st["eta"] = self.eta
        else:
            st["lambda"] = self.lambda_
            st["kgamma"] = self.n_updates * self.gamma
        return st

    def status_line(self, epoch):
        """One line of ``updater.000.out`` (n2p2's format, with newline)."""
        return status_line(self.status(epoch), self.kalman_type)

    def status_header(self):
        """Header lines of ``updater.000.out`` as n2p2 writes them."""
        cols = [("epoch", "Training epoch.", 10),
                ("nupdates", "Number of updates performed.", 10),
                ("Pdiag", "Mean of absolute diagonal values of error "
                 "covariance matrix P.", 16),
                ("Poffdiag", "Mean of absolute off-diagonal values of error "
                 "covariance matrix P.", 16),
                ("Pasym", "Asymmetry of P, i.e. mean of absolute values of "
                 "asymmetric part 0.5*(P - P^T).", 16),
                ("Kmean", "Mean of abolute compontents of Kalman gain "
                 "matrix K.", 16),
                ("q", "Magnitude of process noise (= diagonal entries of "
                 "Q).", 16)]
        if self.kalman_type == STANDARD:
            cols.append(("eta", "Learning rate.", 16))
        else:
            cols.append(("lambda", "Forgetting factor for fading memory "
                         "KF.", 16))
            cols.append(("kgamma", "Forgetting gain k * gamma(k).", 16))
        return _file_header("Kalman filter status report.", cols)

    def full_P(self, root=0):
        """The whole current P as a dense array (collective; verification
        only: allocates N_w² on every rank).  Returned on ``root`` (on every
        rank if ``root is None``), ``None`` elsewhere."""
        n = self.n_weights
        out = np.zeros((n, n))
        for kind, T, rows, cols in self._true_chunks():
            if kind == "diag":
                a = T.shape[0]
                out[rows:rows + T.shape[1], rows:rows + a] = T.T
            else:
                out[rows:rows + T.shape[1], cols:cols + T.shape[0]] = T.T
        if self.distributed:
            if root is None:
                self._comm.Allreduce(self._mpi.IN_PLACE, out, op=self._mpi.SUM)
            else:
                recv = np.zeros_like(out) if self._rank == root else None
                self._comm.Reduce(out, recv, op=self._mpi.SUM, root=root)
                out = recv
        elif root is not None and self._rank_world != root:
            return None
        if out is None:
            return None
        d = np.diag(out).copy()
        out += out.T
        out[np.diag_indices(n)] = d
        return out

    # --------------------------------------------------------- checkpoints
    def state_dict(self, fold=False, include_P=True):
        """Everything needed for an exact restart on the same layout.

        The P block is returned *without a copy* (it is 8·N_w·n_r bytes):
        serialise the dict before the next update.  By default the pending
        low-rank factors are stored as they are, so that a restored filter
        continues bit-identically with a run that never checkpointed;
        ``fold=True`` folds them into P first (this changes the rounding of
        the continuing run in the same way for the saved and the live
        filter).  Entries of ``P_block`` outside this rank's owned region
        (see the module notes) are unused and may be zero.  Bit-identical
        continuation also needs the same ``fold_every`` and BLAS threads.
        Local (no communication); every rank saves its own dict.
        ``include_P=False`` leaves ``P_block`` out (the caller saves the
        owned region from :meth:`p_chunks`).
        """
        if fold:
            self.fold()
        k = self._k
        state = {
            "version": _STATE_VERSION,
            "n_weights": self.n_weights,
            "kalman_type": self.kalman_type,
            "distributed": self.distributed,
            "ranks": self._size,
            "rank": self._rank,
            "row_range": self.row_range,
            "P_block": self._M,
            "alpha": self._alpha,
            "beta": self._beta,
            "Y_pending": self._Y[:, :k].copy(order="F"),
            "c_pending": self._c[:k].copy(),
            "n_pending": self._pending,
            "q": self.q,
            "eta": self.eta,
            "lambda": self.lambda_,
            "gamma": self.gamma,
            "n_updates": self.n_updates,
            "last_Y": None if self._last_Y is None else self._last_Y.copy(),
            "last_L": None if self._last_L is None else self._last_L.copy(),
        }
        if not include_P:
            del state["P_block"]
        return state

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` (same N_w, type and rank layout)."""
        want = {"n_weights": self.n_weights, "kalman_type": self.kalman_type,
                "distributed": self.distributed, "ranks": self._size,
                "rank": self._rank}
        if state.get("version") != _STATE_VERSION:
            raise KalmanError(f"Kalman checkpoint version {state.get('version')}"
                              f" is not supported (expected {_STATE_VERSION})")
        for key, val in want.items():
            if state.get(key) != val:
                raise KalmanError(f"Kalman checkpoint has {key}="
                                  f"{state.get(key)!r}, this filter {val!r}")
        if "P_block" in state:          # else: read into p_chunks() by the caller
            P = np.asarray(state["P_block"])
            if P.shape != self._M.shape:
                raise KalmanError(f"Kalman checkpoint P block has shape {P.shape}, "
                                  f"expected {self._M.shape}")
            d0, nr = self._d0, self._nr
            for b0, b1, v in self._diag_chunks(256):
                v[...] = P[d0 + b0:d0 + nr, b0:b1]
            for rect in self._rects:
                row0, col0, p, q = rect
                for c0, c1, v in self._rect_chunks(rect, 256):
                    v[...] = P[row0:row0 + p, col0 + c0:col0 + c1]
        Y = np.asarray(state["Y_pending"], dtype=np.float64)
        k = Y.shape[1]
        cap = max(k, self.fold_every)
        self._Y = np.zeros((self.n_weights, cap), order="F")
        self._Y[:, :k] = Y
        self._c = np.zeros(cap)
        self._c[:k] = state["c_pending"]
        self._k = k
        self._pending = int(state["n_pending"])
        self._alpha = float(state["alpha"])
        self._beta = float(state["beta"])
        self.q = float(state["q"])
        self.eta = float(state["eta"])
        self.lambda_ = float(state["lambda"])
        self.gamma = float(state["gamma"])
        self.n_updates = int(state["n_updates"])
        ly, ll = state.get("last_Y"), state.get("last_L")
        self._last_Y = None if ly is None else np.array(ly, order="F")
        self._last_L = None if ll is None else np.array(ll)


def status_line(st, kalman_type):
    """One line of ``updater.000.out`` from a status dict (n2p2's format)."""
    keys = ["Pdiag", "Poffdiag", "Pasym", "Kmean", "q"]
    keys += ["eta"] if kalman_type == STANDARD else ["lambda", "kgamma"]
    return (f"{int(st['epoch']):10d} {st['nupdates']:10d}"
            + "".join(f" {st[k]:16.8E}" for k in keys) + "\n")


def _check_observation(n, w, H, xi):
    """Validated (H column-major (n, m), ξ (m,)) of an update."""
    if (not isinstance(w, np.ndarray) or w.dtype != np.float64
            or w.shape != (n,) or not w.flags["C_CONTIGUOUS"]
            or not w.flags["WRITEABLE"]):
        raise KalmanError("w must be a writeable contiguous float64 array "
                          f"of shape ({n},)")
    H = np.asarray(H, dtype=np.float64)
    if H.ndim == 1:
        H = H.reshape(n, 1)
    if H.ndim != 2 or H.shape[0] != n or H.shape[1] < 1:
        raise KalmanError(f"H must have shape ({n}, m) (got {H.shape})")
    m = H.shape[1]
    xi = np.asarray(xi, dtype=np.float64).reshape(-1)
    if xi.shape != (m,):
        raise KalmanError(f"xi must have {m} values (got {xi.size})")
    return np.asfortranarray(H), xi


def _cholesky(A, done):
    """Lower Cholesky factor of the innovation matrix A (update ``done`` + 1)."""
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError as exc:
        raise KalmanError(
            f"Kalman update {done + 1}: A = HᵀPH + R is not positive definite "
            f"(diag {np.diag(A)}); is P or H finite?") from exc


def _right_solve_lt(X, L):
    """Y = X L⁻ᵀ for lower-triangular L (m × m), column by column.

    Plain elementwise numpy (no BLAS threading inside), m is small.
    """
    m = L.shape[0]
    Y = np.empty_like(X, order="F")
    for j in range(m):
        col = X[:, j].copy()
        for i in range(j):
            col -= L[j, i] * Y[:, i]
        Y[:, j] = col / L[j, j]
    return Y


def _forward_solve(L, b):
    """z = L⁻¹ b for lower-triangular L (m × m)."""
    m = L.shape[0]
    z = np.empty(m)
    for j in range(m):
        z[j] = (b[j] - L[j, :j] @ z[:j]) / L[j, j]
    return z


def _file_header(title, cols):
    """n2p2's createFileHeader layout for a column file."""
    width = max(len(name) for name, _, _ in cols)
    rule = "#" * 80
    lines = [rule, f"# {title}", rule,
             f"# {'Col':<4} {'Name':<{width}} Description", rule]
    for i, (name, info, _) in enumerate(cols, 1):
        lines.append(f"# {i:<4} {name:<{width}} {info}")
    nums = "".join(f" {i:>{w}}" for i, (_, _, w) in enumerate(cols, 1))
    names = "".join(f" {name:>{w}}" for name, _, w in cols)
    long_rule = "#" * (len(nums) - 1)
    lines += [long_rule, "#" + nums[2:], "#" + names[2:], long_rule]
    return [line + "\n" for line in lines]
