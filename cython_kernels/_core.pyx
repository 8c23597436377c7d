# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Thin Cython layer over the C core (hdnnp_core.c).

It converts numpy arrays, owns the C objects and releases the GIL around
every computation.  No physics lives here.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cnp.import_array()

cdef extern from "hdnnp_core.h":
    ctypedef struct hdnnp_sf_param:
        int type, e1, e2
        double eta, rs, rc, lam, zeta, rl, angle_l, angle_r
        int core, asym
    ctypedef struct hdnnp_element:
        int nsf
        int nweights
        int nlayers
        int nbcount[16]
        int *nbsf
    ctypedef struct hdnnp_model:
        int nelements
        double rc_max
        int maxsf
        int ncut
        hdnnp_element el[16]
        char err[512]
    ctypedef struct hdnnp_nlist:
        int natoms
        int nelements
        int *start
        int *estart
        int *idx
        double *d
        double *r
        size_t n
    ctypedef struct hdnnp_ew:
        int atom
        int sf
        double value, gmin, gmax

    hdnnp_model *hdnnp_model_new(int, int, double, int) nogil
    void hdnnp_model_free(hdnnp_model *) nogil
    hdnnp_model *hdnnp_model_load_n2p2(const char *, char *) nogil
    int hdnnp_sf_type_supported(int) nogil
    const char *hdnnp_sf_layout(int, int) nogil
    void hdnnp_model_set_atomic_numbers(hdnnp_model *, const int *) nogil
    int hdnnp_model_set_sf(hdnnp_model *, int, int, const hdnnp_sf_param *) nogil
    int hdnnp_model_set_scaling(hdnnp_model *, int, int, double, double, const double *) nogil
    int hdnnp_model_set_network(hdnnp_model *, int, int, const int *, const int *,
                                const double *, double, double) nogil
    int hdnnp_model_set_weights(hdnnp_model *, int, const double *) nogil
    void hdnnp_nlist_init(hdnnp_nlist *) nogil
    void hdnnp_nlist_free(hdnnp_nlist *) nogil
    int hdnnp_nlist_build(hdnnp_nlist *, int, const double *, const double *, int,
                          const int *, int, double, double, char *) nogil
    int hdnnp_nlist_from_pairs(hdnnp_nlist *, int, const int *, const int *, const double *,
                               const int *, int, double, double, char *) nogil
    int hdnnp_symmetry_functions(const hdnnp_model *, const hdnnp_nlist *, const int *,
                                 double *, int, double *, int64_t *) nogil
    int hdnnp_symmetry_functions_target(const hdnnp_model *, const hdnnp_nlist *,
                                        const int *, int, const int *, int, double *, int,
                                        double *) nogil
    int64_t hdnnp_dgdr_size(const hdnnp_model *, const hdnnp_nlist *, const int *) nogil
    int64_t hdnnp_scale(const hdnnp_model *, int, const int *, double *, int, hdnnp_ew *,
                        int64_t) nogil
    double hdnnp_network(const hdnnp_model *, int, const double *, double *, double *) nogil
    int hdnnp_network_work_size(const hdnnp_model *) nogil
    double hdnnp_network_gradients(const hdnnp_model *, int, const double *, const double *,
                                   double, double *, double, double *, double *) nogil
    int hdnnp_energy_forces_full(const hdnnp_model *, const hdnnp_nlist *, const int *,
                                 double *, double *, double *, hdnnp_ew *, int64_t, int64_t *,
                                 double *, double *, double *, double *, int) nogil

#: numpy dtype of one extrapolation warning record
EW_DTYPE = np.dtype([("atom", np.int32), ("sf", np.int32), ("value", np.float64),
                     ("min", np.float64), ("max", np.float64)], align=True)


#: numpy dtype of the C struct hdnnp_sf_param (one symmetry function)
SF_PARAM_DTYPE = np.dtype([("type", np.int32), ("e1", np.int32), ("e2", np.int32),
                           ("eta", np.float64), ("rs", np.float64), ("rc", np.float64),
                           ("lam", np.float64), ("zeta", np.float64), ("rl", np.float64),
                           ("angle_l", np.float64), ("angle_r", np.float64),
                           ("core", np.int32), ("asym", np.int32)], align=True)
assert SF_PARAM_DTYPE.itemsize == sizeof(hdnnp_sf_param)

#: compact-function core numbers of the C core (n2p2 subtypes p1..p4, e)
CORE_FUNCTIONS = {"p1": 1, "p2": 2, "p3": 3, "p4": 4, "e": 5}


class CoreError(RuntimeError):
    """An error reported by the C core (message from the core)."""


def sf_type_supported(int sftype):
    """True if the C core evaluates n2p2 symmetry-function type ``sftype``."""
    return bool(hdnnp_sf_type_supported(sftype))


def sf_layout(int sftype):
    """``(fields, sort key)`` of an SF type in the C loader of n2p2 potentials
    (space-separated names, ``[x]`` optional), or None for an unknown type."""
    cdef const char *f = hdnnp_sf_layout(sftype, 0)
    cdef const char *o = hdnnp_sf_layout(sftype, 1)
    if f == NULL:
        return None
    return f.decode(), o.decode()


cdef _i32(a):
    return np.ascontiguousarray(a, dtype=np.int32)


cdef _f64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


cdef class Model:
    """A potential in the C core: SF groups, scaling and networks per element.

    Parameters
    ----------
    n_elements : int
    cutoff_type : int
        n2p2 cutoff type 0..8.
    cutoff_alpha : float
        Inner cutoff as a fraction of r_c (0 <= alpha < 1).
    normalize_nodes : bool
    """
    cdef hdnnp_model *m

    def __cinit__(self, int n_elements, int cutoff_type, double cutoff_alpha=0.0,
                  bint normalize_nodes=False):
        self.m = hdnnp_model_new(n_elements, cutoff_type, cutoff_alpha, normalize_nodes)
        if self.m == NULL:
            raise CoreError(f"cannot create a model with {n_elements} elements (1..16 supported)")

    def __dealloc__(self):
        if self.m != NULL:
            hdnnp_model_free(self.m)
            self.m = NULL

    cdef _check(self, int rc):
        if rc != 0:
            raise CoreError(self.m.err.decode("utf-8", "replace"))

    def set_atomic_numbers(self, numbers):
        """Atomic numbers of the elements (the weights of SF types 12, 13, 23-25);
        set them before the symmetry functions."""
        cdef int[::1] z = _i32(numbers)
        if z.shape[0] != self.m.nelements:
            raise CoreError(f"expected {self.m.nelements} atomic numbers, got {z.shape[0]}")
        hdnnp_model_set_atomic_numbers(self.m, &z[0])

    def set_symmetry_functions(self, int element, params):
        """Define the SFs of one element: a structured array of
        :data:`SF_PARAM_DTYPE` in n2p2's sorted order."""
        cdef cnp.ndarray table = np.ascontiguousarray(params, dtype=SF_PARAM_DTYPE)
        cdef int n = table.shape[0]
        if n == 0:
            raise CoreError(f"element {element} has no symmetry functions")
        self._check(hdnnp_model_set_sf(self.m, element, n,
                                       <const hdnnp_sf_param *>cnp.PyArray_DATA(table)))

    def set_scaling(self, int element, int scaling_type, double smin, double smax, stats=None):
        """Scaling (0 none, 1 scale, 2 center, 3 scalecenter, 4 scalesigma); stats (nsf, 4)."""
        cdef double[:, ::1] st
        if stats is None:
            self._check(hdnnp_model_set_scaling(self.m, element, scaling_type, smin, smax, NULL))
        else:
            st = _f64(stats).reshape(-1, 4)
            if st.shape[0] != self.m.el[element].nsf:
                raise CoreError("scaling statistics do not match the number of SFs")
            self._check(hdnnp_model_set_scaling(self.m, element, scaling_type, smin, smax,
                                                &st[0, 0]))

    def set_network(self, int element, sizes, activations, weights=None,
                    double energy_scale=1.0, double energy_shift=0.0):
        """Network of one element; activations per layer (index 0 ignored)."""
        cdef int[::1] sz = _i32(sizes), ac = _i32(activations)
        cdef double[::1] w
        if weights is None:
            self._check(hdnnp_model_set_network(self.m, element, sz.shape[0], &sz[0], &ac[0],
                                                NULL, energy_scale, energy_shift))
        else:
            w = _f64(weights)
            self._check(hdnnp_model_set_network(self.m, element, sz.shape[0], &sz[0], &ac[0],
                                                NULL, energy_scale, energy_shift))
            if w.shape[0] != self.m.el[element].nweights:
                raise CoreError(f"expected {self.m.el[element].nweights} weights, got {w.shape[0]}")
            self._check(hdnnp_model_set_weights(self.m, element, &w[0]))

    def set_weights(self, int element, weights):
        cdef double[::1] w = _f64(weights)
        if w.shape[0] != self.m.el[element].nweights:
            raise CoreError(f"expected {self.m.el[element].nweights} weights, got {w.shape[0]}")
        self._check(hdnnp_model_set_weights(self.m, element, &w[0]))

    @property
    def rc_max(self):
        return self.m.rc_max

    @property
    def n_elements(self):
        return self.m.nelements

    @property
    def max_sf(self):
        return self.m.maxsf

    def n_sf(self, int element):
        return self.m.el[element].nsf

    def neighbor_sfs(self, int element, int neighbor_element):
        """Sorted SF indices of `element` that depend on neighbours of `neighbor_element`
        (the SFs stored per neighbour in the compact derivative layout)."""
        cdef int c = self.m.el[element].nbcount[neighbor_element]
        cdef int nsf = self.m.el[element].nsf
        return np.array([self.m.el[element].nbsf[neighbor_element * nsf + t] for t in range(c)],
                        dtype=np.int64)

    def n_weights(self, int element):
        return self.m.el[element].nweights

    def network_gradients(self, int element, Gs, V=None, a_out=None, a_d=None):
        """Gradients of network outputs w.r.t. the connections of one element.

        Gs : (n, nsf) scaled SFs of n atoms of this element.
        V : (n, nsf) or None, input-space directions (for force Jacobians).
        a_out, a_d : (n,) factors (default 1).
        Returns (grad_out, grad_d, D): sum_i a_out_i dOut_i/dw, sum_i a_d_i
        d(v_i . dOut_i/dGs)/dw (zeros without V), and D_i = v_i . dOut_i/dGs.
        """
        cdef int nsf = self.m.el[element].nsf, nw = self.m.el[element].nweights
        cdef double[:, ::1] g = _f64(Gs).reshape(-1, nsf)
        cdef int n = g.shape[0], i
        cdef double[:, ::1] vv
        cdef bint has_v = V is not None
        if has_v:
            vv = _f64(V).reshape(-1, nsf)
            if vv.shape[0] != n:
                raise CoreError("V must have one row per atom")
        cdef double[::1] ao = _f64(np.ones(n) if a_out is None else np.broadcast_to(a_out, (n,)))
        cdef double[::1] ad = _f64(np.ones(n) if a_d is None else np.broadcast_to(a_d, (n,)))
        cdef double[::1] go = np.zeros(max(nw, 1)), gd = np.zeros(max(nw, 1)), D = np.zeros(max(n, 1))
        cdef double[::1] work = np.zeros(hdnnp_network_work_size(self.m))
        with nogil:
            for i in range(n):
                if has_v:
                    D[i] = hdnnp_network_gradients(self.m, element, &g[i, 0], &vv[i, 0], ao[i],
                                                   &go[0], ad[i], &gd[0], &work[0])
                else:
                    hdnnp_network_gradients(self.m, element, &g[i, 0], NULL, ao[i], &go[0],
                                            0.0, NULL, &work[0])
        return np.asarray(go)[:nw], np.asarray(gd)[:nw], np.asarray(D)[:n]

    def network(self, int element, gs):
        """Raw network output and dOut/dGs for one scaled SF vector."""
        cdef double[::1] g = _f64(gs)
        cdef int nsf = self.m.el[element].nsf
        if g.shape[0] != nsf:
            raise CoreError(f"expected {nsf} inputs")
        cdef double[::1] d = np.zeros(nsf)
        cdef double[::1] work = np.zeros(hdnnp_network_work_size(self.m))
        cdef double out
        with nogil:
            out = hdnnp_network(self.m, element, &g[0], &d[0], &work[0])
        return out, np.asarray(d)


def load_n2p2(directory):
    """A :class:`Model` read by the C loader of n2p2 potential folders (the one the
    LAMMPS plugin uses; ``hdnnp_n2p2.c``).  Raises :class:`CoreError` with the loader's
    message (file and line)."""
    import os

    cdef bytes path = os.fsencode(os.fspath(directory))
    cdef char err[512]
    cdef const char *cpath = path
    cdef hdnnp_model *m
    err[0] = 0
    with nogil:
        m = hdnnp_model_load_n2p2(cpath, err)
    if m == NULL:
        raise CoreError(err.decode("utf-8", "replace"))
    cdef Model model = Model.__new__(Model, 1, 0)
    hdnnp_model_free(model.m)
    model.m = m
    return model


cdef class NeighborList:
    """Neighbour list (all periodic images within r_c, sorted by element)."""
    cdef hdnnp_nlist nl

    def __cinit__(self):
        hdnnp_nlist_init(&self.nl)

    def __dealloc__(self):
        hdnnp_nlist_free(&self.nl)

    def build(self, positions, cell, bint periodic, elements, int n_elements, double cutoff,
              double rmin=0.0):
        """Cell-list build.  positions (n, 3), cell rows = lattice vectors."""
        cdef double[:, ::1] x = _f64(positions).reshape(-1, 3)
        cdef double[:, ::1] h = _f64(cell).reshape(3, 3)
        cdef int[::1] el = _i32(elements)
        cdef int n = x.shape[0], rc
        cdef char err[512]
        err[0] = 0
        if el.shape[0] != n:
            raise CoreError("one element index per atom is needed")
        if n == 0:
            rc = hdnnp_nlist_build(&self.nl, 0, NULL, &h[0, 0], periodic, NULL, n_elements,
                                   cutoff, rmin, err)
        else:
            with nogil:
                rc = hdnnp_nlist_build(&self.nl, n, &x[0, 0], &h[0, 0], periodic, &el[0],
                                       n_elements, cutoff, rmin, err)
        if rc != 0:
            raise CoreError(err.decode("utf-8", "replace"))
        return self

    def from_pairs(self, int natoms, cstart, cidx, xall, eall, int n_elements, double cutoff,
                   double rmin=0.0):
        """Build from candidate pairs (central atoms 0..natoms-1 of xall)."""
        cdef int[::1] cs = _i32(cstart), ci = _i32(cidx), ea = _i32(eall)
        cdef double[:, ::1] x = _f64(xall).reshape(-1, 3)
        cdef int rc
        cdef char err[512]
        if ci.shape[0] == 0:
            ci = np.zeros(1, dtype=np.int32)
        with nogil:
            rc = hdnnp_nlist_from_pairs(&self.nl, natoms, &cs[0], &ci[0], &x[0, 0], &ea[0],
                                        n_elements, cutoff, rmin, err)
        if rc != 0:
            raise CoreError(err.decode("utf-8", "replace"))
        return self

    @property
    def n_atoms(self):
        return self.nl.natoms

    @property
    def n_pairs(self):
        return self.nl.n

    def arrays(self):
        """Copies of (start, index, d, r) for inspection."""
        n = self.nl.n
        start = np.array(<int[:self.nl.natoms + 1]> self.nl.start) if self.nl.natoms else np.zeros(1, np.int32)
        if n == 0:
            return start, np.zeros(0, np.int32), np.zeros((0, 3)), np.zeros(0)
        idx = np.array(<int[:n]> self.nl.idx)
        d = np.array(<double[:n, :3]> self.nl.d)
        r = np.array(<double[:n]> self.nl.r)
        return start, idx, d, r

    def counts(self):
        """Number of neighbours per atom."""
        start = self.arrays()[0]
        return np.diff(start)


def symmetry_functions(Model model, NeighborList nl, elements, bint derivatives=False,
                       dgdr_buffer=None):
    """Raw SF values (n_atoms, max_sf) and optionally derivatives.

    Returns ``G`` or ``(G, dgdr, offsets)``.  Compact layout: for atom i,
    ``dgdr[offsets[i]:offsets[i+1]]`` holds first dG_i/dr_i (n_sf_i x 3), then
    for each neighbour q (list order, sorted by element) dG_i,s/dr_q for the
    SFs ``model.neighbor_sfs(elem_i, elem_q)`` only (x 3).  ``dgdr_buffer``: a
    float64 array to reuse when large enough (the result is a view of it).
    """
    cdef int[::1] el = _i32(elements)
    cdef int n = nl.nl.natoms, ldg = max(model.m.maxsf, 1), rc
    cdef double[:, ::1] G = np.zeros((max(n, 1), ldg))
    cdef double[::1] dg
    cdef int64_t[::1] off
    cdef int64_t size
    if n == 0:
        return np.zeros((0, ldg))
    if not derivatives:
        with nogil:
            rc = hdnnp_symmetry_functions(model.m, &nl.nl, &el[0], &G[0, 0], ldg, NULL, NULL)
        if rc != 0:
            raise MemoryError("out of memory in the SF kernel")
        return np.asarray(G)
    size = hdnnp_dgdr_size(model.m, &nl.nl, &el[0])
    if dgdr_buffer is not None and dgdr_buffer.dtype == np.float64 and \
            dgdr_buffer.flags.c_contiguous and dgdr_buffer.size >= size:
        dg = dgdr_buffer.reshape(-1)      # reuse (no page faults for large structures)
    else:
        dg = np.empty(max(size, 1))
    off = np.zeros(n + 1, dtype=np.int64)
    with nogil:
        rc = hdnnp_symmetry_functions(model.m, &nl.nl, &el[0], &G[0, 0], ldg, &dg[0], &off[0])
    if rc != 0:
        raise MemoryError("out of memory in the SF kernel")
    return np.asarray(G), np.asarray(dg)[:size], np.asarray(off)


def symmetry_functions_target(Model model, NeighborList nl, elements, int target):
    """The SFs a force component on atom ``target`` depends on.

    Returns ``(atoms, G, dgdr)``: ``atoms`` the sorted indices of the central
    atoms with ``target`` in their neighbourhood (``target`` itself and every
    atom that has an image of it among its neighbours), ``G`` their raw SF
    values (len(atoms), max_sf) and ``dgdr`` (len(atoms), max_sf, 3) their
    derivatives with respect to the position of ``target``, all its periodic
    images summed -- equal, bit for bit, to the sums of the matching blocks of
    :func:`symmetry_functions` (central atom first, then the images in list
    order), at the cost of the values of these atoms only.
    """
    cdef int[::1] el = _i32(elements)
    cdef int n = nl.nl.natoms, ldg = max(model.m.maxsf, 1), rc, i, k, nsub = 0
    cdef int64_t p
    if not 0 <= target < n:
        raise CoreError(f"atom {target} is not a central atom of the neighbour list")
    if el.shape[0] < n:
        raise CoreError("one element index per atom is needed")
    cdef unsigned char[::1] mark = np.zeros(n, dtype=np.uint8)
    mark[target] = 1
    with nogil:
        for i in range(n):
            for p in range(nl.nl.start[i], nl.nl.start[i + 1]):
                if nl.nl.idx[p] == target:
                    mark[i] = 1
                    break
    cdef int[::1] atoms = np.flatnonzero(np.asarray(mark)).astype(np.int32)
    nsub = atoms.shape[0]
    cdef double[:, ::1] G = np.empty((nsub, ldg))
    cdef double[:, :, ::1] D = np.empty((nsub, ldg, 3))
    with nogil:
        rc = hdnnp_symmetry_functions_target(model.m, &nl.nl, &el[0], nsub, &atoms[0],
                                             target, &G[0, 0], ldg, &D[0, 0, 0])
    if rc != 0:
        raise MemoryError("out of memory in the SF kernel")
    return np.asarray(atoms).astype(np.int64), np.asarray(G), np.asarray(D)


def energy_forces(Model model, NeighborList nl, elements, int n_all=-1, bint forces=True,
                  bint full=False, int ew_capacity=10000):
    """Atomic energies, forces on all atoms, dE/d(strain) and extrapolation warnings.

    Returns a dict with ``energies`` (n_atoms), ``forces`` (n_all, 3),
    ``dEde`` (3, 3), ``n_warnings``, ``warnings`` (structured array, at most
    ``ew_capacity`` records) and ``output`` (raw network outputs, training
    units); with ``full`` also ``G``, ``Gs`` and ``dEdGs``.
    """
    cdef int[::1] el = _i32(elements)
    cdef int n = nl.nl.natoms, ldg = max(model.m.maxsf, 1), rc
    if n_all < 0:
        n_all = n
    if el.shape[0] < n_all:
        raise CoreError("one element index per atom (including ghosts) is needed")
    cdef double[::1] e = np.zeros(max(n, 1))
    cdef double[:, ::1] f = np.zeros((max(n_all, 1), 3))
    cdef double[::1] v = np.zeros(9)
    cdef int64_t nw = 0
    ew = np.zeros(max(ew_capacity, 1), dtype=EW_DTYPE)
    cdef char[::1] ewbuf = ew.view(np.int8)
    cdef double *pG = NULL
    cdef double *pGs = NULL
    cdef double *pD = NULL
    cdef double *pO = NULL
    cdef double[:, ::1] G, Gs, D
    cdef double[::1] O
    cdef double *pf = &f[0, 0] if forces else NULL
    cdef double *pv = &v[0] if forces else NULL
    if n == 0:
        return {"energies": np.zeros(0), "forces": np.zeros((max(n_all, 0), 3)),
                "dEde": np.zeros((3, 3)), "n_warnings": 0, "warnings": ew[:0],
                "output": np.zeros(0)}
    O = np.zeros(n)
    pO = &O[0]
    if full:
        G = np.zeros((n, ldg)); Gs = np.zeros((n, ldg)); D = np.zeros((n, ldg))
        pG = &G[0, 0]; pGs = &Gs[0, 0]; pD = &D[0, 0]
    with nogil:
        rc = hdnnp_energy_forces_full(model.m, &nl.nl, &el[0], &e[0], pf, pv,
                                      <hdnnp_ew *> &ewbuf[0], ew_capacity, &nw,
                                      pG, pGs, pD, pO, ldg)
    if rc != 0:
        raise MemoryError("out of memory in the energy/force kernel")
    res = {"energies": np.asarray(e)[:n], "forces": np.asarray(f)[:n_all],
           "dEde": np.asarray(v).reshape(3, 3), "n_warnings": int(nw),
           "warnings": ew[:min(nw, ew_capacity)], "output": np.asarray(O)}
    if full:
        res.update(G=np.asarray(G), Gs=np.asarray(Gs), dEdGs=np.asarray(D))
    return res


# ---------------------------------------------------------------------------
# Kalman covariance products (kalman_product.c), used by hpcnnp.training.kalman
# ---------------------------------------------------------------------------
cdef extern from "kalman_product.h":
    void hp_kalman_rect_product(int64_t p, int64_t q, const double *A,
                                int64_t lda, int m, const double *Hi,
                                const double *Hj, double *Xi, double *Xj) nogil
    void hp_kalman_sym_lower_product(int64_t n, const double *A, int64_t lda,
                                     int m, const double *H, double *X) nogil


def _check_block(Py_ssize_t size, Py_ssize_t offset, Py_ssize_t lda,
                 Py_ssize_t rows, Py_ssize_t cols):
    if rows < 0 or cols < 0 or offset < 0 or lda < rows:
        raise ValueError("invalid block of P")
    if rows and cols and offset + (cols - 1) * lda + rows > size:
        raise ValueError("block exceeds the storage of P")


def kalman_sym_lower_product(const double[::1] P, Py_ssize_t offset, Py_ssize_t lda,
                             Py_ssize_t n, const double[:, ::1] H, double[:, ::1] X,
                             Py_ssize_t row0):
    """X[row0:row0+n] += sym(A) H[row0:row0+n] for the n × n symmetric block A of
    the column-major storage ``P`` starting at element ``offset`` (leading
    dimension ``lda``, lower triangle read).  H, X: row-major (N, m)."""
    cdef int m = H.shape[1]
    _check_block(P.shape[0], offset, lda, n, n)
    if X.shape[1] != m or row0 < 0 or row0 + n > H.shape[0] or row0 + n > X.shape[0]:
        raise ValueError("H/X do not match the block")
    if n == 0 or m == 0:
        return
    with nogil:
        hp_kalman_sym_lower_product(n, &P[offset], lda, m, &H[row0, 0], &X[row0, 0])


def kalman_rect_product(const double[::1] P, Py_ssize_t offset, Py_ssize_t lda,
                        Py_ssize_t p, Py_ssize_t q, const double[:, ::1] H,
                        double[:, ::1] X, Py_ssize_t i0, Py_ssize_t j0):
    """For the p × q block A of the column-major storage ``P`` at element
    ``offset`` (leading dimension ``lda``) standing for P[i0:i0+p, j0:j0+q]:
    X[i0:i0+p] += A H[j0:j0+q] and X[j0:j0+q] += Aᵀ H[i0:i0+p]."""
    cdef int m = H.shape[1]
    _check_block(P.shape[0], offset, lda, p, q)
    if (X.shape[1] != m or i0 < 0 or j0 < 0 or i0 + p > H.shape[0]
            or j0 + q > H.shape[0] or X.shape[0] != H.shape[0]):
        raise ValueError("H/X do not match the block")
    if p == 0 or q == 0 or m == 0:
        return
    with nogil:
        hp_kalman_rect_product(p, q, &P[offset], lda, m, &H[i0, 0], &H[j0, 0],
                               &X[i0, 0], &X[j0, 0])
