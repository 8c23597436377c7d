"""The training data of one MPI rank: structures, units and cached symmetry functions.

Data layout per rank
--------------------
Every rank streams ``input.data`` once (validating every structure as n2p2
would) and keeps only the structures it owns (:func:`schedule.distribute`), as
:class:`TrainStructure` objects: the ``ase.Atoms``, element indices, reference
energy and forces converted to training units (offsets removed, normalised), the
train/test flag and, per atom, the number of neighbours of each element (for the
per-element error split of US_ELEMENT).

Symmetry functions (:class:`SFCache`) are computed on demand by hpcnnp's C
core.  Without ``memorize_symfunc_results`` at most ``capacity`` structures
(default 2, least recently used) and ``max_bytes`` keep their SFs and dG/dr —
the data set's derivatives are never held at once (memorising them is
hundreds of GB at the seed's scale); with it every structure keeps them after
first use (n2p2's "HIGH MEMORY USAGE" mode).

One cache entry (:class:`StructureSF`) holds, for a structure of N atoms with
S neighbour slots in total (each atom itself + every neighbour image):

* ``gs[e]``: scaled SFs of the atoms of element e, (n_e, nsf_e);
* with derivatives: the C core's flat dG/dr array in its compact layout (per
  atom i: dG_i/dr_i for all nsf_i SFs, then per neighbour q, in list order,
  dG_i/dr_q for only the SFs of element e_i that depend on neighbours of
  q's element, ``Model.neighbor_sfs(e_i, e_q)``; raw, 1/length) and four int
  arrays over the S slots — ``slot_atom`` (which atom the slot is),
  ``slot_owner`` (whose SFs), ``slot_kind`` (−1: the atom itself, else the
  neighbour's element) and ``slot_pos`` (offset of the slot's width × 3 block
  in the flat array).

The force Jacobian of candidate (a, c) needs exactly the slots with
``slot_atom == a`` (see :mod:`hpcnnp.training.jacobian`): the SFs of the
atoms that have a in their neighbourhood and their derivatives with respect
to r_a (:class:`AtomSF`).  Without ``memorize_symfunc_results`` these come
straight from the C core (:meth:`SFCache.atom`: values of a's neighbourhood,
only the pairs that involve a differentiated, ~10x cheaper than a whole
structure with derivatives); with it they are cut out of the memorised
structure (:meth:`StructureSF.atom_sf`), with the same numbers bit for bit.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from hpcnnp import _core
from hpcnnp.errors import HpcnnpError

__all__ = ["Units", "TrainStructure", "StructureSF", "AtomSF", "SFCache", "scale_factors"]


class Units:
    """Conversion between physical and training ("internal") units (§9.2).

    Internal units: E* = (E − Σ E0 − N μ)·c_E,  F* = F·c_E/c_L.
    """

    def __init__(self, mean_energy=0.0, conv_energy=1.0, conv_length=1.0):
        self.mean_energy = float(mean_energy)
        self.conv_energy = float(conv_energy)
        self.conv_length = float(conv_length)

    @property
    def normalized(self):
        return not (self.mean_energy == 0.0 and self.conv_energy == 1.0
                    and self.conv_length == 1.0)

    def energy(self, e_phys, n_atoms, offset_sum):
        return (e_phys - offset_sum - n_atoms * self.mean_energy) * self.conv_energy

    def force(self, f_phys):
        return f_phys * (self.conv_energy / self.conv_length)

    def energy_metric_phys(self, v):
        return v / self.conv_energy

    def force_metric_phys(self, v):
        return v * self.conv_length / self.conv_energy

    def energy_per_atom_phys(self, e_int_per_atom):
        """Per-atom energy (offsets removed) back in physical units."""
        return e_int_per_atom / self.conv_energy + self.mean_energy

    def force_phys(self, f_int):
        return f_int * (self.conv_length / self.conv_energy)

    def as_tuple(self):
        return (self.mean_energy, self.conv_energy, self.conv_length)


class TrainStructure:
    """One structure owned by this rank (reference data in physical units; the
    training-unit values are set by :meth:`set_units`)."""

    __slots__ = ("index", "local", "atoms", "elem", "n", "n_per_elem", "is_train",
                 "e_phys", "f_phys", "offset_sum", "e_ref", "f_ref", "nn_per_elem",
                 "n_pairs")

    def __init__(self, index, local, atoms, elem, is_train, n_elements, atom_energy):
        self.index = int(index)
        self.local = int(local)
        self.atoms = atoms
        self.elem = np.asarray(elem, dtype=np.int32)
        self.n = len(atoms)
        self.n_per_elem = np.bincount(self.elem, minlength=n_elements)
        self.is_train = bool(is_train)
        res = atoms.calc.results
        self.e_phys = float(res.get("energy", 0.0))
        self.f_phys = np.asarray(res.get("forces", np.zeros((self.n, 3))), dtype=float)
        self.offset_sum = float(sum(atom_energy[e] for e in self.elem.tolist()))
        self.e_ref = None
        self.f_ref = None
        self.nn_per_elem = None
        self.n_pairs = 0

    def set_units(self, units):
        self.e_ref = units.energy(self.e_phys, self.n, self.offset_sum)
        self.f_ref = units.force(self.f_phys)


def scale_factors(potential):
    """Per element: factor s of the SF scaling (§7) that multiplies dG/dr."""
    st = potential.settings.scaling_type
    smin, smax = potential.settings.scale_min, potential.settings.scale_max
    out = []
    for el in potential.elements:
        n = len(potential.symmetry_function_list[el])
        if st in ("none", "center"):
            out.append(np.ones(n))
            continue
        gmin, gmax, _, gsig = np.asarray(potential.scaling[el], dtype=float).T
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (smax - smin) / (gsig if st == "scalesigma" else gmax - gmin)
        out.append(np.where(np.isfinite(f), f, 0.0))      # zero spread: as the C core
    return out


class AtomSF:
    """What a force component on atom ``atom`` needs: per element e, the atoms
    whose SFs depend on r_atom (``owners[e]``, ascending; the atom itself and
    every atom with an image of it among its neighbours), their scaled SFs
    ``gs[e]`` (k_e, nsf_e) and ``dg[e]`` (k_e, nsf_e, 3) = Σ over the slots of
    the owner that are ``atom`` (itself first, then the images in neighbour-list
    order) of dG/dr_slot (raw SFs, 1/length).  Elements without owners: empty."""

    __slots__ = ("atom", "owners", "gs", "dg")

    def __init__(self, atom, owners, gs, dg):
        self.atom, self.owners, self.gs, self.dg = int(atom), owners, gs, dg


class StructureSF:
    """Cached symmetry functions of one structure (see the module docstring)."""

    __slots__ = ("gs", "atoms_of", "local_index", "dg", "slot_atom", "slot_owner",
                 "slot_pos", "slot_kind", "nbytes")

    @property
    def has_derivatives(self):
        return self.dg is not None

    def atom_sf(self, atom, struct_elem, nb_sfs):
        """The :class:`AtomSF` of ``atom`` cut out of the stored derivatives.

        Parameters
        ----------
        atom : int
        struct_elem : (n,) element index of every atom
        nb_sfs : nb_sfs[e][q] SF indices of element e stored per neighbour of
            element q (the C core's compact layout, :attr:`SFCache.nb_sfs`)
        """
        sel = np.flatnonzero(self.slot_atom == atom)
        owners = self.slot_owner[sel]
        oel = struct_elem[owners]
        n_el = len(self.gs)
        out = AtomSF(atom, [np.zeros(0, dtype=np.int64)] * n_el,
                     [g[:0] for g in self.gs],
                     [np.zeros((0, g.shape[1], 3)) for g in self.gs])
        xyz = np.arange(3, dtype=np.int64)
        for e in np.unique(oel).tolist():
            m = oel == e
            s_e = sel[m]
            uo, row = np.unique(owners[m], return_inverse=True)   # owners, their rows
            nsf = self.gs[e].shape[1]
            V = np.zeros((len(uo), nsf, 3))
            kinds = self.slot_kind[s_e]
            for q in np.unique(kinds).tolist():       # the atom itself (-1) first
                mk = kinds == q
                cols = np.arange(nsf, dtype=np.int64) if q < 0 else nb_sfs[e][q]
                if len(cols) == 0:
                    continue
                idx = (self.slot_pos[s_e[mk]][:, None, None]
                       + np.arange(len(cols), dtype=np.int64)[None, :, None] * 3 + xyz)
                vals = self.dg[idx]                    # (k, width, 3)
                r = row[mk]
                if len(np.unique(r)) == len(r):
                    V[r[:, None], cols[None, :]] += vals
                else:                                  # periodic images of the atom
                    np.add.at(V, (r[:, None], cols[None, :]), vals)
            out.owners[e] = uo
            out.gs[e] = self.gs[e][self.local_index[uo]]
            out.dg[e] = V
        return out


class SFCache:
    """Computes (and caches) SFs and dG/dr of a rank's structures.

    Parameters
    ----------
    potential : hpcnnp.potential.Potential
        Supplies the C model (SF definitions and scaling) and neighbour lists.
    memorize : bool
        Keep every structure's results (``memorize_symfunc_results``).
    capacity : int
        Entries kept otherwise (least recently used are dropped).
    max_bytes : int
        Without ``memorize``: also drop entries while the cache holds more than
        this (the newest entry is always kept).
    """

    def __init__(self, potential, memorize=False, capacity=2, max_bytes=256 << 20):
        self.potential = potential
        self.model = potential._model
        self.n_el = len(potential.elements)
        self.nsf = [len(potential.symmetry_function_list[el]) for el in potential.elements]
        # compact derivative layout: SFs of element e stored per neighbour of element q
        self.nb_sfs = [[np.asarray(self.model.neighbor_sfs(e, q), dtype=np.int64)
                        for q in range(self.n_el)] for e in range(self.n_el)]
        self.nb_width = np.array([[len(self.nb_sfs[e][q]) for q in range(self.n_el)]
                                  for e in range(self.n_el)], dtype=np.int64)
        self.memorize = bool(memorize)
        self.capacity = max(1, int(capacity))
        self.max_bytes = int(max_bytes)
        self._cache = OrderedDict()
        self.time = 0.0            # seconds spent computing SFs and derivatives
        self.computed = 0          # structures computed (cache misses)
        self.bytes = 0             # bytes currently cached

    def clear(self):
        self._cache.clear()
        self.bytes = 0

    def get(self, struct, derivatives):
        """The :class:`StructureSF` of ``struct`` (with dG/dr if asked)."""
        entry = self._cache.get(struct.local)
        if entry is not None and (entry.has_derivatives or not derivatives):
            self._cache.move_to_end(struct.local)
            return entry
        t0 = time.perf_counter()
        entry = self.compute(struct, derivatives)
        self.time += time.perf_counter() - t0
        self.computed += 1
        old = self._cache.pop(struct.local, None)
        if old is not None:
            self.bytes -= old.nbytes
        self._cache[struct.local] = entry
        self.bytes += entry.nbytes
        if not self.memorize:
            while len(self._cache) > self.capacity or (
                    self.bytes > self.max_bytes and len(self._cache) > 1):
                _, dropped = self._cache.popitem(last=False)
                self.bytes -= dropped.nbytes
        return entry

    def atom(self, struct, atom):
        """The :class:`AtomSF` of atom ``atom`` of ``struct`` (a force candidate).

        With ``memorize`` cut out of the structure's memorised derivatives; else
        computed by the C core for the atom's neighbourhood only (not cached: a
        candidate atom is rarely drawn twice in a row)."""
        if self.memorize:
            return self.get(struct, derivatives=True).atom_sf(atom, struct.elem,
                                                              self.nb_sfs)
        t0 = time.perf_counter()
        pot = self.potential
        nl, elem = pot.neighbor_list(struct.atoms)
        atoms, G, D = _core.symmetry_functions_target(self.model, nl, elem, atom)
        aelem = elem[atoms]
        out = AtomSF(atom, [], [], [])
        for e, el in enumerate(pot.elements):
            rows = np.flatnonzero(aelem == e)
            nsf = self.nsf[e]
            out.owners.append(atoms[rows])
            gs = pot._scaled_block(el, G[rows, :nsf]) if len(rows) else np.zeros((0, nsf))
            out.gs.append(np.ascontiguousarray(gs))
            out.dg.append(D[rows, :nsf])
        self.time += time.perf_counter() - t0
        self.computed += 1
        return out

    def compute(self, struct, derivatives):
        pot = self.potential
        nl, elem = pot.neighbor_list(struct.atoms)
        out = StructureSF()
        if derivatives:
            G, dg, off = _core.symmetry_functions(self.model, nl, elem, derivatives=True)
        else:
            G = _core.symmetry_functions(self.model, nl, elem)
            dg = None
        n = len(elem)
        out.gs, out.atoms_of = [], []
        out.local_index = np.zeros(n, dtype=np.int64)
        nbytes = 0
        for e, el in enumerate(pot.elements):
            idx = np.flatnonzero(elem == e)
            out.atoms_of.append(idx)
            out.local_index[idx] = np.arange(len(idx))
            gs = pot._scaled_block(el, G[idx, :self.nsf[e]]) if len(idx) else \
                np.zeros((0, self.nsf[e]))
            gs = np.ascontiguousarray(gs)
            out.gs.append(gs)
            nbytes += gs.nbytes
        out.dg = dg
        out.slot_atom = out.slot_owner = out.slot_pos = out.slot_kind = None
        if derivatives:
            start, nidx, _, _ = nl.arrays()
            counts = np.diff(start).astype(np.int64) + 1          # slots per atom
            total = int(counts.sum())
            first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            owner = np.repeat(np.arange(n, dtype=np.int64), counts)
            slot_atom = np.empty(total, dtype=np.int64)
            kind = np.empty(total, dtype=np.int64)             # -1 self, else nb element
            is_self = np.zeros(total, dtype=bool)
            is_self[first] = True
            slot_atom[first] = np.arange(n)
            slot_atom[~is_self] = nidx
            kind[first] = -1
            kind[~is_self] = elem[nidx]
            oel = np.asarray(elem, dtype=np.int64)[owner]
            width = np.where(kind < 0, np.asarray(self.nsf, dtype=np.int64)[oel],
                             self.nb_width[oel, np.maximum(kind, 0)])
            size = 3 * width
            slot_pos = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
            if total and (slot_pos[first] != np.asarray(off[:n], dtype=np.int64)).any():
                raise HpcnnpError("internal: unexpected SF-derivative layout of the C core")
            out.slot_atom, out.slot_owner, out.slot_pos = slot_atom, owner, slot_pos
            out.slot_kind = kind
            nbytes += dg.nbytes + 4 * slot_atom.nbytes
        out.nbytes = nbytes
        return out

    # ------------------------------------------------------------------ setup
    def neighbour_statistics(self, struct):
        """Per atom neighbour counts by element (n, n_el) and the number of pairs."""
        nl, elem = self.potential.neighbor_list(struct.atoms)
        start, nidx, _, _ = nl.arrays()
        n = len(elem)
        counts = np.zeros((n, self.n_el), dtype=np.int32)
        if len(nidx):
            owner = np.repeat(np.arange(n), np.diff(start))
            np.add.at(counts, (owner, elem[nidx]), 1)
        return counts, int(len(nidx))

    def estimate_bytes(self, struct):
        """(SF values, derivatives) bytes of one structure's cache entry."""
        nsf = np.asarray(self.nsf)[struct.elem]
        vals = int(8 * nsf.sum())
        slots = struct.nn_per_elem.sum(axis=1) + 1
        width = nsf + (struct.nn_per_elem * self.nb_width[struct.elem]).sum(axis=1)
        der = int(8 * 3 * width.sum() + 32 * slots.sum())
        return vals, der


def check_structures(structures, elements):
    """Errors n2p2 would stop on that :func:`hpcnnp.io.n2p2.iter_data` lets pass."""
    for s in structures:
        if s.n == 0:
            raise HpcnnpError(f"structure {s.index} (0-based) has no atoms")
        if not np.isfinite(s.f_phys).all() or not np.isfinite(s.e_phys):
            raise HpcnnpError(f"structure {s.index} (0-based) has a non-finite reference "
                              "energy or force")
